"""Live playing without wall-clock timing: ports, clock, scheduler, harmony and the modes, with
every time given by the test (a fake clock)."""

from __future__ import annotations

import numpy as np
import pytest

from musegen.compose import csp
from musegen.live.clock import BeatGrid, FakeClock, MidiClockFollower, OnsetFollower
from musegen.live.harmony import CausalHarmonizer, KeyTracker, detect_chord
from musegen.live.modes import BASS_CH, CHORD_CH, VOICE_CHANNELS, close_triad
from musegen.live.ports import PortClosed, note_off, note_on, port_pair
from musegen.live.scheduler import Scheduler
from musegen.live.session import LiveConfig, LiveSession
from musegen.theory import Key

# "Ode to joy" in 16ths, then a cadence: E E F G G F E D C C D E E D D
MELODY = [64, 64, 65, 67, 67, 65, 64, 62, 60, 60, 62, 64, 64, 62, 62, 60]
STEP = 0.125  # 16ths at 120 bpm


def play(
    session: LiveSession,
    pitches: list[int],
    step: float = STEP,
    gate: float = 0.8,
    tail: float = 1.0,
):
    """Feed ``pitches`` one per ``step`` from t=0, ticking the session every 5 ms of fake time;
    returns [(scheduled time, sent time, event)] of what the session sent."""
    events = []
    for i, p in enumerate(pitches):
        events.append((i * step, note_on(p, 90)))
        events.append((i * step + gate * step, note_off(p)))
    events.sort(key=lambda e: e[0])
    out = []
    clock = FakeClock()
    end = len(pitches) * step + tail
    k = 0
    while clock.now() <= end:
        t = clock.now()
        while k < len(events) and events[k][0] <= t + 1e-12:
            session.feed(events[k][1], t)
            k += 1
        session.update(t)
        for item in session.due(t):
            session.sent(item, t)
            out.append((item.time, t, item.event))
        clock.advance(0.005)
    return out


def test_port_pair_delivers_in_order_and_closes() -> None:
    out, inp = port_pair()
    out.send(note_on(60))
    out.send(note_off(60))
    assert inp.receive(0) == note_on(60)
    assert inp.pending() == [note_off(60)]
    assert inp.receive(0) is None
    inp.close()
    with pytest.raises(PortClosed):
        inp.receive(0.01)
    with pytest.raises(PortClosed):
        out.send(note_on(61))


def test_note_on_of_velocity_zero_is_a_note_off() -> None:
    assert note_on(60, 0).normal() == note_off(60)


def test_scheduler_sends_in_time_order() -> None:
    s = Scheduler()
    s.add_note(0.5, 0.6, 62)
    s.add_note(0.0, 0.1, 60)
    assert s.next_time() == 0.0
    assert [(i.time, i.event.kind, i.event.note) for i in s.due(0.0)] == [(0.0, "note_on", 60)]
    assert s.due(0.05) == []
    assert [(i.event.kind, i.event.note) for i in s.due(0.1)] == [("note_off", 60)]
    assert [(i.event.kind, i.event.note) for i in s.due(0.5)] == [("note_on", 62)]
    assert [(i.event.kind, i.event.note) for i in s.due(0.6)] == [("note_off", 62)]


def test_late_rule_shifts_a_little_late_note_and_drops_a_very_late_one() -> None:
    s = Scheduler(late_limit=0.03)
    s.add_note(1.0, 1.2, 60)  # due at 1.0, looked at 20 ms late: sent (shifted)
    s.add_note(2.0, 2.2, 62)  # looked at 50 ms late: dropped with its note-off
    sent = s.due(1.02)
    assert [i.event.kind for i in sent] == ["note_on"]
    s.mark_sent(sent[0], 1.02)
    assert s.stats.shifted == 1 and s.stats.lateness == [pytest.approx(0.02)]
    # at 2.05 the first note's off (due 1.2) still goes, however late; the second note is
    # dropped, and its off with it
    assert [(i.event.kind, i.event.note) for i in s.due(2.05)] == [("note_off", 60)]
    assert s.stats.dropped == 1
    assert s.stats.missed(0.03) == 1
    assert s.due(10.0) == []  # and the dropped note's off never comes


def test_note_offs_are_always_sent_and_cancel_never_leaves_a_note_hanging() -> None:
    s = Scheduler()
    a = s.start_note(0.0, 60, part="m")
    (item,) = s.due(0.0)
    s.mark_sent(item, 0.0)
    s.end_note(a, 5.0, 60, part="m")
    s.add_note(1.0, 1.5, 64, part="m")
    s.add_note(1.0, 1.5, 40, part="other")
    gone = s.cancel(part="m", after=0.5)
    assert sorted(i.event.note for i in gone) == [64, 64]  # the unsent note, on and off
    due = s.due(0.5)  # the sounding note's off moved to 0.5
    assert [(i.event.kind, i.event.note) for i in due] == [("note_off", 60)]
    assert [i.event.note for i in s.due(1.0)] == [40]
    assert [i.event.note for i in s.due(1.5)] == [40]


def test_release_all_silences_what_sounds() -> None:
    s = Scheduler()
    s.start_note(0.0, 60, channel=2)
    for item in s.due(0.0):
        s.mark_sent(item, 0.0)
    assert [(i.event.kind, i.event.note, i.event.channel) for i in s.release_all(1.0)] == [
        ("note_off", 60, 2)
    ]


def test_beat_grid_keeps_the_beat_when_the_tempo_changes() -> None:
    g = BeatGrid(120.0, origin=10.0)
    assert g.step_at(10.5) == pytest.approx(4.0)
    assert g.next_bar_step(10.1) == 16
    g.set_bpm(60.0, at=11.0)  # beat 2 at 11.0, then one beat per second
    assert g.beat_at(11.0) == pytest.approx(2.0)
    assert g.beat_at(12.0) == pytest.approx(3.0)


def test_midi_clock_in_sets_tempo_and_start_sets_beat_zero() -> None:
    g = BeatGrid(120.0)
    f = MidiClockFollower(g)
    f.start(3.0)
    pulse = 60.0 / 100 / 24  # 100 bpm
    for k in range(48):
        f.pulse(3.0 + k * pulse)
    assert g.bpm == pytest.approx(100.0, abs=0.01)
    assert g.beat_at(3.0 + 24 * pulse) == pytest.approx(1.0, abs=0.01)


def test_onset_follower_moves_towards_the_players_tempo() -> None:
    g = BeatGrid(120.0)
    f = OnsetFollower(g, rate=0.2)
    step = 60.0 / 110 / 4  # the player plays 16ths at 110 bpm
    for k in range(80):
        f.onset(k * step)
    assert g.bpm == pytest.approx(110.0, abs=0.5)
    f.onset(80 * step + 3.0)  # a long pause says nothing about the tempo
    assert g.bpm == pytest.approx(110.0, abs=0.5)


def test_key_tracker_finds_the_key_and_holds_it() -> None:
    k = KeyTracker()
    for i, p in enumerate([67, 71, 74, 72, 71, 69, 67, 66, 67, 74, 71, 67]):  # G major
        k.add(p, 1.0, float(i))
    assert k.key == Key(7, False)
    k.add(63, 0.25, 12.0)  # one chromatic note does not move it
    assert k.key == Key(7, False)
    fixed = KeyTracker(default=Key(2, False), fixed=True)
    for i in range(20):
        fixed.add(60, 1.0, float(i))
    assert fixed.key == Key(2, False)


def test_causal_harmonizer_voices_are_in_range_and_ordered() -> None:
    h = CausalHarmonizer()
    key = Key(0, False)
    prev = None
    for i, p in enumerate(MELODY):
        v = h.note(p, i // 4, key)
        s = p
        assert csp.RANGES["A"][0] <= v.alto <= csp.RANGES["A"][1]
        assert csp.RANGES["T"][0] <= v.tenor <= csp.RANGES["T"][1]
        assert csp.RANGES["B"][0] <= v.bass <= csp.RANGES["B"][1]
        assert s >= v.alto >= v.tenor >= v.bass
        if i % 4 == 0:  # a beat's first note is a tone of its chord
            assert {s % 12, v.alto % 12, v.tenor % 12, v.bass % 12} <= _chord_pcs(v.chord, key) | {
                s % 12
            }
        elif prev is not None:  # later notes of a beat pass over a held chord
            assert v == prev
        prev = v
    assert h.note(60, 99, key).chord in ("I", "vi", "IV")  # a tonic note on a new beat


def _chord_pcs(label: str, key: Key) -> set[int]:
    chord = next(c for c in csp.vocabulary(key[1]) if c.label == label)
    return set(chord.pcs(key[0]))


def test_detect_chord_and_close_voicing() -> None:
    w = np.zeros(12)
    w[[7, 11, 2]] = 1.0
    assert detect_chord(w, Key(0, False)).label in ("V", "V7")
    assert detect_chord(np.zeros(12), Key(0, False)).label == "I"
    triad = close_triad((7, 11, 2), (55, 60, 64))
    assert {p % 12 for p in triad} == {7, 11, 2} and max(triad) - min(triad) < 12


def test_harmonize_mode_gives_three_voices_under_every_note_at_once() -> None:
    session = LiveSession(LiveConfig(mode="harmonize", key="C major"))
    out = play(session, MELODY)
    ons = [(due, sent, e) for due, sent, e in out if e.kind == "note_on"]
    assert all(sent == due for due, sent, _ in ons)  # nothing late with a fake clock
    sounding: dict[int, int] = {}
    for i in range(len(MELODY)):  # what sounds on each voice channel just after each note
        t = i * STEP
        for due, _, e in out:
            if due <= t + 1e-9:
                if e.kind == "note_on":
                    sounding[e.channel] = e.note
                elif e.kind == "note_off" and sounding.get(e.channel) == e.note:
                    del sounding[e.channel]
        assert set(sounding) == set(VOICE_CHANNELS.values()), f"note {i}"
        a, tn, b = (sounding[VOICE_CHANNELS[v]] for v in "ATB")
        assert MELODY[i] >= a >= tn >= b
        for v, p in zip("ATB", (a, tn, b), strict=True):
            assert csp.RANGES[v][0] <= p <= csp.RANGES[v][1]
    last_on = max(due for due, _, e in ons)
    offs = [
        due for due, _, e in out if e.kind == "note_off" and e.channel in VOICE_CHANNELS.values()
    ]
    assert max(offs) > last_on  # the voices are let go after the melody stops
    assert not session.scheduler.sounding  # ... all of them
    score = session.recorder.score()
    assert [t.name for t in score.tracks] == ["player", "Alto", "Tenor", "Bass"]
    assert len(score.tracks[0]) == len(MELODY)


def test_accompany_mode_plays_chords_and_bass_on_the_beat_in_the_key() -> None:
    session = LiveSession(LiveConfig(mode="accompany", key="C major", drums=True))
    out = play(session, MELODY * 2, tail=0.2)
    beat = 0.5
    ons = [(due, e) for due, _, e in out if e.kind == "note_on"]
    assert ons and all(abs(due / beat * 2 - round(due / beat * 2)) < 1e-9 for due, _ in ons)
    first = min(due for due, _ in ons)
    assert first == pytest.approx(beat)  # the first beat after the first note
    chords = [e.note for due, e in ons if e.channel == CHORD_CH]
    bass = [e.note for due, e in ons if e.channel == BASS_CH]
    scale = {0, 2, 4, 5, 7, 9, 11}
    assert chords and {p % 12 for p in chords} <= scale
    assert bass and all(40 <= p <= 52 for p in bass)
    assert all(due in {0.5 * k for k in range(40)} for due, e in ons if e.channel == BASS_CH)
    assert any(e.channel == 9 for _, e in ons)
    # two bars of silence: it stops
    assert max(due for due, _ in ons) < len(MELODY) * 2 * STEP + 0.2 + 1e-9
