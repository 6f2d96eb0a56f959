"""Bar and beat locations (1-based) under time-signature changes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.metrics._time import time_grid
from musegen.score import Score, TimeSignature

TPQ = 480
SCORE = Score(tpq=TPQ, time_signatures=[TimeSignature(0, 3, 4), TimeSignature(3 * TPQ * 2, 6, 8)])


def test_grid_by_hand() -> None:
    g = time_grid(SCORE, 12 * TPQ)  # two bars of 3/4, then 6/8 bars of six eighths
    assert (g.bar_starts // TPQ).tolist() == [0, 3, 6, 9]
    assert g.n_beats == 6 + 12
    assert g.bar_beat(4 * TPQ) == (2, 2.0)
    assert g.bar_beat(7 * TPQ + TPQ // 4) == (3, 3.5)  # eighth beats in 6/8


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 40 * TPQ))
def test_locate_inverts(tick: int) -> None:
    g = time_grid(SCORE, 40 * TPQ + 1)
    bar, beat = g.bar_beat(tick)
    beat_len = TPQ if tick < 6 * TPQ else TPQ // 2
    numerator = 3 if tick < 6 * TPQ else 6
    assert 1 <= beat < numerator + 1
    assert g.bar_starts[bar - 1] + round((beat - 1) * beat_len) == tick
