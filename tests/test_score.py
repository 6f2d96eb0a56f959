from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.score import (
    FERMATA,
    KeySignature,
    Marker,
    Note,
    Score,
    Tempo,
    TimeSignature,
    Track,
    make_notes,
    pitch_name,
)
from strategies import scores


def simple() -> Score:
    return Score(
        tpq=480,
        tracks=[Track.from_notes([Note(60, 0, 480), Note(64, 480, 960, 80)])],
        tempos=[Tempo(0, 120), Tempo(960, 60)],
        time_signatures=[TimeSignature(0, 3, 4)],
        key_signatures=[KeySignature(0, 1)],
    )


def test_seconds_follow_tempo_map() -> None:
    s = simple()
    assert s.ticks_to_seconds(960) == pytest.approx(1.0)
    assert s.ticks_to_seconds(1440) == pytest.approx(2.0)
    assert s.duration_seconds() == pytest.approx(2.0)
    assert s.seconds_to_ticks(1.5) == 1200


@given(scores(), st.lists(st.integers(0, 100_000), min_size=1, max_size=20))
@settings(max_examples=50, deadline=None)
def test_ticks_seconds_round_trip(score: Score, ticks: list[int]) -> None:
    t = np.array(ticks)
    back = score.seconds_to_ticks(score.ticks_to_seconds(t))
    assert np.array_equal(back, t)


def test_bars_with_meter_change() -> None:
    s = Score(
        tpq=4,
        tracks=[Track.from_notes([Note(60, 0, 40)])],
        time_signatures=[TimeSignature(0, 4, 4), TimeSignature(32, 3, 4)],
    )
    assert s.bar_starts().tolist() == [0, 16, 32]
    assert s.ticks_to_bars(np.array([0, 8, 16, 38])).tolist() == [0.0, 0.5, 1.0, 2.5]
    assert s.n_bars == 3


def test_quantize_snaps_and_keeps_notes_audible() -> None:
    s = Score(tpq=480, tracks=[Track.from_notes([Note(60, 130, 10), Note(62, 500, 700)])])
    q = s.quantize(120)
    assert [(n.start, n.duration) for n in q.tracks[0].note_list()] == [(120, 120), (480, 720)]


def test_transpose_moves_key_and_spares_drums() -> None:
    s = simple()
    s.tracks.append(Track.from_notes([Note(36, 0, 10)], is_drum=True))
    t = s.transpose(2)
    assert t.tracks[0].notes["pitch"].tolist() == [62, 66]
    assert t.tracks[1].notes["pitch"].tolist() == [36]
    assert str(t.key_signatures[0]) == "A major"
    with pytest.raises(ValueError, match="outside MIDI range"):
        s.transpose(100)
    assert len(s.transpose(100, drop_out_of_range=True).tracks[0]) == 0


def test_slice_bars_shifts_and_cuts() -> None:
    s = Score(tpq=4, tracks=[Track.from_notes([Note(60, 0, 16), Note(62, 14, 8), Note(64, 20, 4)])])
    part = s.slice_bars(1, 2)
    assert [(n.pitch, n.start, n.duration) for n in part.tracks[0].note_list()] == [(64, 4, 4)]
    assert part.time_signatures == []


def test_markers_follow_the_notes_through_slices_and_resampling() -> None:
    s = Score(
        tpq=4,
        tracks=[Track.from_notes([Note(60, 0, 16), Note(64, 20, 4)])],
        markers=[Marker(20, FERMATA), Marker(6, FERMATA)],
    )
    assert [m.time for m in s.markers] == [6, 20]  # kept in time order
    assert s.slice_bars(1, 2).markers == [Marker(4, FERMATA)]
    assert s.resample(8).markers == [Marker(12, FERMATA), Marker(40, FERMATA)]
    assert s.quantize(4).markers == [Marker(8, FERMATA), Marker(20, FERMATA)]


def test_merge_and_split_tracks() -> None:
    s = Score(
        tracks=[
            Track.from_notes([Note(72, 0, 10)], name="rh"),
            Track.from_notes([Note(48, 0, 10)], name="lh"),
        ]
    )
    m = s.merge_tracks()
    assert len(m.tracks) == 1 and m.tracks[0].notes["pitch"].tolist() == [48, 72]
    sp = m.split_track(0, at_pitch=60)
    assert [t.notes["pitch"].tolist() for t in sp.tracks] == [[72], [48]]


def test_resample_and_note_table() -> None:
    s = simple().resample(4)
    assert s.tracks[0].notes["start"].tolist() == [0, 4]
    table = simple().note_table()
    assert table["track"].tolist() == [0, 0] and table["pitch"].tolist() == [60, 64]


def test_names() -> None:
    assert pitch_name(60) == "C4"
    assert str(KeySignature(0, -3, minor=True)) == "C minor"
    assert KeySignature(0, -3, minor=True).tonic == 0


def test_empty_score_facts() -> None:
    s = Score()
    assert s.end == 0 and s.n_bars == 0 and s.is_empty() and s.pitch_range() is None
    assert s.duration_seconds() == 0.0


def test_opening_keeps_whole_bars_after_a_pickup() -> None:
    notes = make_notes([1440 + 1920 * k for k in range(6)], [480] * 6, [60] * 6)  # beat 4 pickup
    score = Score(tracks=[Track(name="x", notes=notes)])
    assert score.opening(2).n_bars == 3 and score.opening(2).end <= 3 * 1920
    plain = Score(tracks=[Track(name="x", notes=make_notes([0, 1920, 3840], [480] * 3, [60] * 3))])
    assert plain.opening(2).n_bars == 2 and plain.opening(9) is plain
