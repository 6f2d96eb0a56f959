"""The session loop between in-process ports: a melody played in, the answer read out, and
the recording written however the session ends. No timing is asserted: the checks are
voices, ranges and order, and the scheduler's own fake-clock tests cover time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from musegen.compose import csp
from musegen.io import load
from musegen.live.modes import VOICE_CHANNELS
from musegen.live.ports import MidiEvent, PortClosed, note_off, note_on, port_pair
from musegen.live.session import LiveConfig, LiveSession, run_session

MELODY = [67, 69, 71, 72, 74, 72, 71, 69, 67, 66, 67, 74]


def _player(out, pitches: list[int], step: float = 0.02, close: bool = True) -> threading.Thread:
    def play() -> None:
        for p in pitches:
            out.send(note_on(p, 90))
            time.sleep(step * 0.8)
            out.send(note_off(p))
            time.sleep(step * 0.2)
        time.sleep(0.2)  # let the voices be released
        if close:
            out.close()

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    return thread


def _collect(inp) -> list[MidiEvent]:
    events = []
    try:
        while True:
            ev = inp.receive(0)
            if ev is None:
                return events
            events.append(ev)
    except PortClosed:
        return events


def test_harmonize_through_in_process_ports_then_input_closes(tmp_path: Path) -> None:
    player_out, session_in = port_pair("player")
    session_out, listener = port_pair("listener")
    session = LiveSession(LiveConfig(mode="harmonize", bpm=120))
    thread = _player(player_out, MELODY)
    result = run_session(
        session, session_in, session_out, duration=20, record_to=tmp_path / "rec.mid"
    )
    thread.join()
    assert result.reason == "input closed"
    events = _collect(listener)
    ons = [e for e in events if e.kind == "note_on"]
    assert {e.channel for e in ons} == set(VOICE_CHANNELS.values())
    for name, ch in VOICE_CHANNELS.items():
        lo, hi = csp.RANGES[name]
        assert all(lo <= e.note <= hi for e in ons if e.channel == ch)
    # every note-on is followed by its note-off: nothing left sounding
    sounding: dict[tuple[int, int], int] = {}
    for e in events:
        k = (e.channel, e.note)
        if e.kind == "note_on":
            sounding[k] = sounding.get(k, 0) + 1
        elif e.kind == "note_off":
            sounding[k] = max(sounding.get(k, 0) - 1, 0)
    assert not any(sounding.values())
    score = load(tmp_path / "rec.mid")
    names = [t.name for t in score.tracks]
    assert names == ["player", "Alto", "Tenor", "Bass"]
    assert [int(p) for p in score.tracks[0].notes["pitch"]] == MELODY
    assert result.stats["played"] == len(MELODY)


class _InterruptingPort:
    """An input port that plays a few notes, then 'the user presses Ctrl-C'."""

    name = "ctrl-c"

    def __init__(self, pitches: list[int]) -> None:
        self.events = [e for p in pitches for e in (note_on(p, 90), note_off(p))]

    def receive(self, timeout: float | None) -> MidiEvent | None:
        if not self.events:
            raise KeyboardInterrupt
        return self.events.pop(0)

    def close(self) -> None:
        pass


def test_ctrl_c_ends_cleanly_silences_and_writes_the_recording(tmp_path: Path) -> None:
    session_out, listener = port_pair()
    session = LiveSession(LiveConfig(mode="harmonize", bpm=120))
    session.mode.on_note_off = lambda pitch, t: None  # keep the voices sounding until the end
    result = run_session(
        session, _InterruptingPort(MELODY[:4]), session_out, record_to=tmp_path / "r.mid"
    )
    assert result.reason == "interrupted"
    events = _collect(listener)
    assert events[-3:] == [MidiEvent("control_change", 123, 0, ch) for ch in (1, 2, 3)]
    offs = {(e.channel, e.note) for e in events if e.kind == "note_off"}
    assert {(e.channel, e.note) for e in events if e.kind == "note_on"} <= offs
    score = load(tmp_path / "r.mid")
    assert len(score.tracks[0]) == 4


def test_closed_output_port_ends_cleanly_and_writes_the_recording(tmp_path: Path) -> None:
    player_out, session_in = port_pair()
    session_out, listener = port_pair()
    listener.close()  # the other program went away
    session = LiveSession(LiveConfig(mode="harmonize"))
    thread = _player(player_out, MELODY[:3], close=False)
    result = run_session(
        session, session_in, session_out, duration=20, record_to=tmp_path / "r.mid"
    )
    thread.join()
    assert result.reason == "output closed"
    assert load(tmp_path / "r.mid").tracks[0].name == "player"


def test_stop_event_and_duration_end_the_session(tmp_path: Path) -> None:
    _, session_in = port_pair()
    session_out, _listener = port_pair()
    stop = threading.Event()
    stop.set()
    session = LiveSession(LiveConfig(mode="accompany"))
    result = run_session(session, session_in, session_out, stop=stop, record_to=tmp_path / "s.mid")
    assert result.reason == "stopped" and (tmp_path / "s.mid").exists()
    result = run_session(
        LiveSession(LiveConfig(mode="accompany")), session_in, session_out, duration=0.01
    )
    assert result.reason == "duration" and result.recording is None


def test_unknown_mode_is_a_one_line_error() -> None:
    from musegen.errors import MusegenError

    with pytest.raises(MusegenError, match="unknown live mode"):
        LiveSession(LiveConfig(mode="jam"))
