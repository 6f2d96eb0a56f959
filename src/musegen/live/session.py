"""One live session: the player's input, the mode that answers it, the scheduler, the recording,
and the loop that runs them against real time.

:class:`LiveSession` is the logic with time passed in (``feed(event, t)``, ``update(t)``,
``due(t)``), so tests drive it with any times they like. :func:`run_session` is the loop: it
waits for the next input event or the next scheduled event (whichever is first, at most
``max_wait``), lets the mode plan ahead, and sends what is due. It ends when ``duration``
passes, ``stop`` is set, the input or output port closes, or on Ctrl-C; in every case it
silences what still sounds and writes the recording (atomically) before returning.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musegen.live.clock import (
    BeatGrid,
    Clock,
    MidiClockFollower,
    OnsetFollower,
    SystemClock,
)
from musegen.live.harmony import DEFAULT_KEY, KeyTracker
from musegen.live.ports import InPort, MidiEvent, OutPort, PortClosed, all_notes_off
from musegen.live.recorder import PLAYER, Recorder
from musegen.live.scheduler import LATE_LIMIT, Scheduled, Scheduler
from musegen.theory import Key

MAX_WAIT = 0.005  # seconds: the loop looks at the time at least this often


@dataclass
class LiveConfig:
    """Settings of a session (saved beside the recording)."""

    mode: str = "accompany"
    bpm: float = 120.0
    follow: bool = False
    key: str | None = None  # None: found from the playing
    beats_per_bar: int = 4
    late_limit: float = LATE_LIMIT
    lookahead: float = 0.05  # seconds: grid-timed parts are planned this far ahead
    velocity: int = 80
    drums: bool = False  # accompany: add a drum pattern (channel 10)
    bars: int = 2  # answer: bars the model answers with
    pause_beats: float = 1.0  # answer/continue: silence that hands over to the model
    ahead_steps: int = 16  # answer/continue: 16ths the model may work ahead of the music
    model: str | None = None
    seed: int = 0
    temperature: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PlayedNote:
    pitch: int
    velocity: int
    start: float
    end: float | None = None


@dataclass
class RunResult:
    reason: str  # "duration", "stopped", "interrupted", "input closed", "output closed"
    recording: Path | None
    stats: dict[str, Any] = field(default_factory=dict)


class LiveSession:
    """The player's notes in, the mode's notes out, all with explicit times."""

    def __init__(self, config: LiveConfig, mode_factory: Any = None, start: float = 0.0) -> None:
        from musegen.live.modes import make_mode

        self.config = config
        self.grid = BeatGrid(config.bpm, start, config.beats_per_bar)
        self.scheduler = Scheduler(config.late_limit)
        self.recorder = Recorder(self.grid)
        self.clock_follower = MidiClockFollower(self.grid)
        self.onset_follower = OnsetFollower(self.grid) if config.follow else None
        key = _parse_key(config.key)
        self.keys = KeyTracker(default=key or DEFAULT_KEY, fixed=key is not None)
        self.played: list[PlayedNote] = []
        self.sounding: dict[int, PlayedNote] = {}
        self.last_input = start
        self.mode = (mode_factory or make_mode)(config.mode, self)
        self.recorder.names.update(self.mode.track_names())

    # ------------------------------------------------------------------ input
    def feed(self, event: MidiEvent, t: float) -> None:
        """One event from the player at time ``t``."""
        ev = event.normal()
        if ev.kind == "clock":
            if self.config.follow:
                self.clock_follower.pulse(t)
            return
        if ev.kind == "start":
            self.clock_follower.start(t)
            return
        if ev.kind not in ("note_on", "note_off"):
            return
        self.recorder.add(t, PLAYER, ev)
        self.last_input = t
        if ev.kind == "note_on":
            if self.onset_follower is not None and self.clock_follower.pulses == 0:
                self.onset_follower.onset(t)
            note = PlayedNote(ev.note, ev.velocity, t)
            self.played.append(note)
            self.sounding[ev.note] = note
            self.mode.on_note_on(ev.note, ev.velocity, t)
        else:
            note = self.sounding.pop(ev.note, None)
            if note is not None:
                note.end = t
                beats = (t - note.start) / self.grid.beat_seconds
                self.keys.add(note.pitch, beats, self.grid.beat_at(note.start))
            self.mode.on_note_off(ev.note, t)

    # ------------------------------------------------------------------ output
    def update(self, t: float) -> None:
        """Let the mode plan ahead up to time ``t`` (+ its lookahead)."""
        self.mode.update(t)

    def due(self, t: float) -> list[Scheduled]:
        return self.scheduler.due(t)

    def sent(self, item: Scheduled, t: float) -> None:
        self.scheduler.mark_sent(item, t)
        self.recorder.add(t, item.part, item.event)

    def closing(self, t: float) -> list[Scheduled]:
        """What to send when the session ends: note-offs for everything sounding, then
        all-notes-off on every channel the mode uses."""
        self.mode.close()
        out = self.scheduler.release_all(t)
        for ch in self.mode.channels():
            out.append(Scheduled(t, 0, all_notes_off(ch), ""))
        return out

    def stats(self) -> dict[str, Any]:
        s = self.scheduler.stats
        late = np.array(s.lateness) * 1000 if s.lateness else np.zeros(1)
        return {
            "played": len(self.played),
            "sent": s.sent,
            "shifted": s.shifted,
            "dropped": s.dropped,
            "missed": s.missed(self.scheduler.late_limit),
            "late_ms": {  # each note-on's send time minus its due time
                "p50": round(float(np.percentile(late, 50)), 3),
                "p95": round(float(np.percentile(late, 95)), 3),
                "max": round(float(late.max()), 3),
                "std": round(float(late.std()), 3),
            },
            "bpm_end": round(self.grid.bpm, 2),
            "key_end": str(self.keys.key),
            **self.mode.stats(),
        }


def _parse_key(text: str | None) -> Key | None:
    from musegen.theory import parse_key

    return None if text is None else parse_key(text)


def run_session(
    session: LiveSession,
    inport: InPort,
    outport: OutPort,
    *,
    clock: Clock | None = None,
    duration: float | None = None,
    stop: threading.Event | None = None,
    record_to: str | Path | None = None,
    max_wait: float = MAX_WAIT,
    on_sent: Any = None,
) -> RunResult:
    """Run ``session`` between two ports until it ends (see the module docstring).

    ``on_sent(item, t)``, if given, is called after each event goes out (benchmarks).
    """
    clock = clock or SystemClock()
    t0 = clock.now()
    session.grid.restart(t0)
    session.recorder.origin = t0
    reason = "duration"
    t = t0
    try:
        while True:
            if stop is not None and stop.is_set():
                reason = "stopped"
                break
            if duration is not None and t - t0 >= duration:
                break
            nxt = session.scheduler.next_time()
            wait = max_wait if nxt is None else min(max(nxt - t, 0.0), max_wait)
            try:
                event = inport.receive(wait)
            except PortClosed:
                reason = "input closed"
                break
            t = clock.now()
            if event is not None:
                session.feed(event, t)
            session.update(t)
            for item in session.due(t):
                outport.send(item.event)
                sent = clock.now()
                session.sent(item, sent)
                if on_sent is not None:
                    on_sent(item, sent)
    except KeyboardInterrupt:
        reason = "interrupted"
    except PortClosed:
        reason = "output closed"
    finally:
        t = clock.now()
        for item in session.closing(t):
            try:  # notes still open in the recording end at t there
                outport.send(item.event)
            except PortClosed:
                break
        path = None
        if record_to is not None:
            path = session.recorder.write(record_to, end=t)
    return RunResult(reason, path, session.stats())
