"""MusicVAE's step rows: classes to tokenizer cells and back, cutting segments, no torch."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from latenthelpers import chorale_tokenizer, melody_tokenizer
from musegen.models.vae_steps import (
    FIRST_PITCH,
    HOLD,
    REST,
    cells_to_steps,
    cut_segment,
    fold_pitches,
    steps_to_cells,
)

RANGE = SimpleNamespace(
    low_pitch=43, n_pitches=54, voices=1
)  # the shipped melody VAEs' pitch range


def test_reading_a_row_loads_no_torch() -> None:
    code = "import sys, musegen.models.vae_steps; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_model_uses_the_same_classes() -> None:
    from musegen.models import vae

    assert (vae.REST, vae.HOLD, vae.FIRST_PITCH) == (REST, HOLD, FIRST_PITCH)


def test_cells_round_trip() -> None:
    tok = melody_tokenizer()
    p = tok.pitch_offset
    cells = np.array([p + 60, tok.hold_id, tok.rest_id, p + 100, tok.hold_id, p + 30])
    steps = cells_to_steps(cells, tok, RANGE)
    assert steps.tolist() == [60 - 43 + 2, HOLD, REST, 88 - 43 + 2, HOLD, 42 - 43 + 2 + 12]
    back = steps_to_cells(steps, tok, RANGE)
    assert back[:3].tolist() == cells[:3].tolist()
    # a HOLD after a rest is a rest
    assert steps_to_cells(np.array([REST, HOLD]), tok, RANGE).tolist() == [tok.rest_id] * 2
    assert fold_pitches(np.array([20, 43, 96, 110]), 43, 54).tolist() == [44, 43, 96, 86]


def test_cut_segment_starts_a_held_note() -> None:
    row = np.array([5, HOLD, HOLD, HOLD, REST, HOLD, 7, HOLD])  # a HOLD after a rest: none
    assert cut_segment(row, 0, 4).tolist() == [5, HOLD, HOLD, HOLD]
    assert cut_segment(row, 2, 3).tolist() == [5, HOLD, REST]  # the held 5 starts at the cut
    assert cut_segment(row, 5, 3).tolist() == [REST, 7, HOLD]  # nothing sounds: rests
    assert cut_segment(np.array([HOLD, HOLD, 4]), 0, 3).tolist() == [REST, REST, 4]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=40), st.integers(0, 39), st.integers(1, 8))
def test_cut_segment_is_the_slice_but_its_held_start(
    classes: list[int], start: int, n: int
) -> None:
    row = np.array(classes)
    row[1:][(row[1:] == HOLD) & (row[:-1] == REST)] = REST  # melodies hold only what sounds
    row[0] = REST if row[0] == HOLD else row[0]
    out, plain = cut_segment(row, start, n), row[start : start + n]
    assert len(out) == len(plain)
    if len(out):
        assert out[0] != HOLD
        assert np.array_equal(out[1:], plain[1:]) or (out[0] == REST and plain[0] == HOLD)
        if plain[0] == HOLD and out[0] >= 2:  # the pitch of the note sounding at the cut
            assert out[0] == row[np.flatnonzero(row[:start] >= 2)[-1]]


def test_voices_are_cut_and_held_each_alone() -> None:
    """Two interleaved voices: each voice's held note starts at the cut, and a HOLD continues
    its own voice's note, not the class before it in the row."""
    s, a = np.array([5, HOLD, HOLD, REST]), np.array([REST, 9, HOLD, HOLD])
    row = np.stack([s, a], axis=1).reshape(-1)  # S A S A ...
    cut = cut_segment(row, 4, 4, voices=2).reshape(-1, 2)  # rows 2 and 3
    assert cut[:, 0].tolist() == [5, REST] and cut[:, 1].tolist() == [9, HOLD]
    assert cut_segment(row, 4, 4, voices=2).tolist() == [
        *np.stack([cut_segment(s, 2, 2), cut_segment(a, 2, 2)], axis=1).reshape(-1)
    ]
    tok = chorale_tokenizer()
    two = SimpleNamespace(low_pitch=30, n_pitches=60, voices=2)
    # voice 1 holds its note although voice 0 rests just before it in the row
    cells = steps_to_cells(np.array([5, 9, REST, HOLD, HOLD, HOLD]), tok, two)
    assert cells.tolist()[2:] == [tok.rest_id, tok.hold_id, tok.rest_id, tok.hold_id]
