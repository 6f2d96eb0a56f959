"""A finished chorale is moved to the key whose ranges fit its voices best."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from musegen.sampling.register import best_shift, fit_ranges
from musegen.score import Note, Score, Track

RANGES = {"S": (60, 79), "A": (55, 74), "T": (48, 67), "B": (36, 60)}


def chorale(s: int, a: int, t: int, b: int) -> Score:
    return Score(
        tracks=[
            Track.from_notes([Note(p, 0, 480, 80)], voice=v)
            for v, p in zip("SATB", (s, a, t, b), strict=True)
        ]
    )


def test_a_piece_too_high_moves_down() -> None:
    piece = chorale(82, 76, 70, 62)  # each voice 2 or 3 semitones over
    assert best_shift(piece, RANGES) == -3
    moved = fit_ranges(piece, RANGES)
    assert [int(t.notes["pitch"][0]) for t in moved.tracks] == [79, 73, 67, 59]


def test_a_piece_that_fits_stays() -> None:
    piece = chorale(72, 65, 57, 48)
    assert best_shift(piece, RANGES) == 0
    assert fit_ranges(piece, RANGES) is piece


def test_unlabelled_tracks_are_left_alone() -> None:
    piece = Score(tracks=[Track.from_notes([Note(100, 0, 480, 80)])])
    assert best_shift(piece, RANGES) == 0


@given(st.integers(-6, 6))
def test_a_fitting_piece_moved_away_comes_back(shift: int) -> None:
    piece = chorale(70, 64, 57, 48)  # fits with room to spare
    moved = piece.transpose(shift)
    back = best_shift(moved, RANGES)
    assert abs(back) <= abs(shift)  # never moves further than it was taken
    outside = sum(
        not RANGES[t.voice][0] <= int(t.notes["pitch"][0]) + back <= RANGES[t.voice][1]
        for t in moved.tracks
    )
    assert outside == 0


def test_among_keys_that_fit_the_one_nearest_the_centres_wins() -> None:
    piece = chorale(66, 60, 53, 45)  # fits as it is, and up to 6 semitones higher
    assert best_shift(piece, RANGES) == 0  # no centres: the smallest shift
    centres = {"S": 70.7, "A": 65.1, "T": 59.4, "B": 51.0}  # Bach's mean pitches
    assert best_shift(piece, RANGES, centres=centres) == 6
    assert [
        int(t.notes["pitch"][0]) for t in fit_ranges(piece, RANGES, centres=centres).tracks
    ] == [72, 66, 59, 51]
