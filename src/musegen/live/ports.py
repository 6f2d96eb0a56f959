"""MIDI ports for live playing: one small event type, an in-process port pair, and mido ports.

Everything in :mod:`musegen.live` speaks :class:`MidiEvent` (no outside library's type), so the
session, the scheduler and the tests need nothing installed. Real ports go through ``mido``
with the ``python-rtmidi`` backend (the optional extra ``musegen[live]``): ALSA sequencer or
JACK ports, virtual ones included (``virtual:NAME`` opens a port of that name that other
programs connect to).

An input port's :meth:`~InPort.receive` blocks until an event comes or a timeout passes, and
raises :class:`PortClosed` once the port is closed (by us, by the other end of an in-process
pair, or because a device went away), so the session loop needs no polling.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from musegen.errors import MusegenError

KINDS = ("note_on", "note_off", "control_change", "clock", "start", "stop", "continue")
VIRTUAL = "virtual:"
LIVE_EXTRA = "install the live extra: pip install 'musegen[live]' (mido and python-rtmidi)"


@dataclass(frozen=True, slots=True)
class MidiEvent:
    """One MIDI message: a note (``note``, ``velocity``), a control change (``note`` is the
    controller, ``velocity`` the value), or a real-time message (clock, start, stop,
    continue). A note-on of velocity 0 is a note-off (:meth:`normal`)."""

    kind: str
    note: int = 0
    velocity: int = 0
    channel: int = 0

    def normal(self) -> MidiEvent:
        if self.kind == "note_on" and self.velocity == 0:
            return MidiEvent("note_off", self.note, 0, self.channel)
        return self


def note_on(note: int, velocity: int = 80, channel: int = 0) -> MidiEvent:
    return MidiEvent("note_on", int(note), int(velocity), int(channel))


def note_off(note: int, channel: int = 0) -> MidiEvent:
    return MidiEvent("note_off", int(note), 0, int(channel))


def all_notes_off(channel: int) -> MidiEvent:
    return MidiEvent("control_change", 123, 0, channel)


class PortClosed(MusegenError):
    """The port was closed (by us, by the other end, or its device went away)."""


class InPort(Protocol):
    name: str

    def receive(self, timeout: float | None) -> MidiEvent | None: ...

    def close(self) -> None: ...


class OutPort(Protocol):
    name: str

    def send(self, event: MidiEvent) -> None: ...

    def close(self) -> None: ...


# ----------------------------------------------------------------------------- in-process
_CLOSED = object()


class _Pipe:
    """What one sender and one receiver share: a queue and a closed flag."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Any] = queue.Queue()
        self.closed = threading.Event()

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self.queue.put(_CLOSED)


class PipeOut:
    """The sending end of an in-process pair."""

    def __init__(self, pipe: _Pipe, name: str) -> None:
        self._pipe, self.name = pipe, name

    def send(self, event: MidiEvent) -> None:
        if self._pipe.closed.is_set():
            raise PortClosed(f"port {self.name!r} is closed")
        self._pipe.queue.put(event)

    def close(self) -> None:
        self._pipe.close()

    @property
    def closed(self) -> bool:
        return self._pipe.closed.is_set()


class PipeIn:
    """The receiving end of an in-process pair: events in the order they were sent."""

    def __init__(self, pipe: _Pipe, name: str) -> None:
        self._pipe, self.name = pipe, name

    def receive(self, timeout: float | None = None) -> MidiEvent | None:
        """The next event, None after ``timeout`` seconds; :class:`PortClosed` once closed
        and drained."""
        try:
            item = (
                self._pipe.queue.get(timeout=timeout)
                if timeout != 0
                else self._pipe.queue.get_nowait()
            )
        except queue.Empty:
            return None
        if item is _CLOSED:
            self._pipe.queue.put(_CLOSED)  # stays closed for later calls
            raise PortClosed(f"port {self.name!r} is closed")
        return item  # type: ignore[no-any-return]

    def pending(self) -> list[MidiEvent]:
        """Every event waiting now (without blocking; stops at a close)."""
        out = []
        while True:
            try:
                item = self._pipe.queue.get_nowait()
            except queue.Empty:
                return out
            if item is _CLOSED:
                self._pipe.queue.put(_CLOSED)
                return out
            out.append(item)

    def close(self) -> None:
        self._pipe.close()


def port_pair(name: str = "inprocess") -> tuple[PipeOut, PipeIn]:
    """An in-process port pair: what is sent on the first comes out of the second. Closing
    either end closes both."""
    pipe = _Pipe()
    return PipeOut(pipe, name), PipeIn(pipe, name)


# ----------------------------------------------------------------------------- mido
def _mido() -> Any:
    try:
        import mido
    except ImportError as e:
        raise MusegenError(f"real MIDI ports need mido: {LIVE_EXTRA}") from e
    try:
        import rtmidi  # noqa: F401  (mido's default backend)
    except ImportError as e:
        raise MusegenError(f"real MIDI ports need python-rtmidi: {LIVE_EXTRA}") from e
    return mido


BACKENDS = ("mido.backends.rtmidi", "mido.backends.rtmidi/UNIX_JACK")
_chosen: list[Any] = []


def backend() -> Any:
    """The mido backend: ``$MIDO_BACKEND`` if set, else rtmidi's default API (ALSA on Linux)
    where it works, else JACK (a container without ALSA's sequencer, with a JACK server
    running, e.g. ``jackd --no-realtime -d dummy``)."""
    if _chosen:
        return _chosen[0]
    mido = _mido()
    names = [os.environ["MIDO_BACKEND"]] if os.environ.get("MIDO_BACKEND") else list(BACKENDS)
    errors = []
    for name in names:
        try:
            b = mido.Backend(name, load=True)
            b.get_input_names()
        except Exception as e:  # rtmidi raises its own errors when an API is unreachable
            errors.append(f"{name}: {e}")
            continue
        _chosen.append(b)
        return b
    raise MusegenError(
        "no MIDI system reachable (" + "; ".join(errors) + "): on Linux load ALSA's "
        "snd-seq, or start JACK (jackd --no-realtime -d dummy)"
    )


def list_ports() -> dict[str, list[str]]:
    """Names of the system's MIDI input and output ports."""
    b = backend()
    return {"inputs": list(b.get_input_names()), "outputs": list(b.get_output_names())}


def _resolve(name: str, names: list[str], direction: str) -> str:
    """A port name from an exact name, else the one name that contains ``name``."""
    if name in names:
        return name
    hits = [n for n in names if name.lower() in n.lower()]
    if len(hits) == 1:
        return hits[0]
    known = ", ".join(repr(n) for n in names) or "none"
    what = "matches several" if hits else "matches no"
    raise MusegenError(
        f"{direction} port {name!r} {what} port (known: {known}); "
        f"use '{VIRTUAL}NAME' to open a virtual port, or --list-ports"
    )


def to_mido(event: MidiEvent) -> Any:
    mido = _mido()
    if event.kind in ("note_on", "note_off"):
        return mido.Message(
            event.kind, note=event.note, velocity=event.velocity, channel=event.channel
        )
    if event.kind == "control_change":
        return mido.Message(
            "control_change", control=event.note, value=event.velocity, channel=event.channel
        )
    return mido.Message(event.kind)


def from_mido(message: Any) -> MidiEvent | None:
    """Our event for a mido message (None for kinds the session does not use)."""
    kind = message.type
    if kind in ("note_on", "note_off"):
        return MidiEvent(kind, message.note, message.velocity, message.channel).normal()
    if kind == "control_change":
        return MidiEvent(kind, message.control, message.value, message.channel)
    if kind in ("clock", "start", "stop", "continue"):
        return MidiEvent(kind)
    return None


class MidoIn:
    """A mido input port; rtmidi's callback thread hands messages to a queue."""

    def __init__(self, name: str, client: str = "musegen-in") -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        virtual = name.startswith(VIRTUAL)
        self.name = (
            name[len(VIRTUAL) :] if virtual else _resolve(name, list_ports()["inputs"], "input")
        )
        try:
            named = {"client_name": client} if virtual else {}  # (rtmidi's JACK input
            # connecting to a port under a client name of its own receives nothing)
            self._port = backend().open_input(
                self.name, virtual=virtual, callback=self._on_message, **named
            )
        except Exception as e:
            raise MusegenError(f"cannot open MIDI input {self.name!r} ({e})") from e

    def _on_message(self, message: Any) -> None:
        event = from_mido(message)
        if event is not None:
            self._queue.put(event)

    def receive(self, timeout: float | None = None) -> MidiEvent | None:
        if self._port.closed:
            raise PortClosed(f"port {self.name!r} is closed")
        try:
            item = self._queue.get(timeout=timeout) if timeout != 0 else self._queue.get_nowait()
        except queue.Empty:
            return None
        if item is _CLOSED:
            raise PortClosed(f"port {self.name!r} is closed")
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        if not self._port.closed:
            self._port.close()
        self._queue.put(_CLOSED)


class MidoOut:
    """A mido output port."""

    def __init__(self, name: str, client: str = "musegen-out") -> None:
        virtual = name.startswith(VIRTUAL)
        self.name = (
            name[len(VIRTUAL) :] if virtual else _resolve(name, list_ports()["outputs"], "output")
        )
        try:
            named = {"client_name": client} if virtual else {}
            self._port = backend().open_output(self.name, virtual=virtual, **named)
        except Exception as e:
            raise MusegenError(f"cannot open MIDI output {self.name!r} ({e})") from e

    def send(self, event: MidiEvent) -> None:
        if self._port.closed:
            raise PortClosed(f"port {self.name!r} is closed")
        try:
            self._port.send(to_mido(event))
        except (OSError, ValueError) as e:
            raise PortClosed(f"port {self.name!r} failed ({e})") from e

    def close(self) -> None:
        if not self._port.closed:
            self._port.close()


def open_ports(in_name: str, out_name: str) -> tuple[MidoIn, MidoOut]:
    """Open the input and output named on the command line (see :func:`_resolve`)."""
    inport = MidoIn(in_name)
    try:
        return inport, MidoOut(out_name)
    except BaseException:
        inport.close()
        raise
