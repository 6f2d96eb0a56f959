"""The key filter (:func:`musegen.sampling.filters.key_bias`)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.errors import MusegenError
from musegen.sampling.filters import KEY_MIN_NOTES, build_filters, key_bias
from musegen.theory import key_correlations

LO = 4  # pitch block: ids 4..131 = MIDI 0..127
HI = LO + 128


def _ids(pitches: list[int], other: int = 1) -> np.ndarray:
    """A row of pitch tokens (with a non-pitch id between them, as holds would be)."""
    row: list[int] = []
    for p in pitches:
        row += [LO + p, other]
    return np.array([row], dtype=np.int64)


def _penalised(out: np.ndarray, logits: np.ndarray) -> set[int]:
    """Pitch classes whose pitch ids were lowered."""
    lowered = np.flatnonzero((out < logits)[0, LO:HI])
    return {int(p) % 12 for p in lowered}


def test_a_c_major_line_makes_the_five_black_keys_less_likely() -> None:
    logits = np.zeros((1, HI + 2), dtype=np.float32)
    ids = _ids([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60])
    out = key_bias(logits, ids, 2.0, LO, HI)
    assert _penalised(out, logits) == {1, 3, 6, 8, 10}
    assert np.allclose(out[0, LO + 61], -2.0) and out[0, LO + 60] == 0.0
    assert np.array_equal(out[0, :LO], logits[0, :LO])  # holds, rests, bars untouched
    assert np.array_equal(out[0, HI:], logits[0, HI:])


def test_a_minor_key_keeps_its_raised_sixth_and_seventh() -> None:
    logits = np.zeros((1, HI), dtype=np.float32)
    ids = _ids([57, 60, 64, 57, 59, 60, 62, 64, 68, 69, 64, 57, 69, 60, 57])  # A minor, G#
    out = key_bias(logits, ids, 1.5, LO, HI)
    # A natural minor + F# and G#: out are A#, C#, D#
    assert _penalised(out, logits) == {10, 1, 3}


def test_rows_with_too_few_notes_are_left_alone() -> None:
    logits = np.random.default_rng(0).normal(size=(2, HI)).astype(np.float32)
    few = _ids([60, 64, 67][: KEY_MIN_NOTES - 1])
    enough = _ids([60, 62, 64, 65, 67, 69, 71, 72])
    width = max(few.shape[1], enough.shape[1])
    ids = np.zeros((2, width), dtype=np.int64)
    ids[0, : few.shape[1]] = few[0]
    ids[1, : enough.shape[1]] = enough[0]
    out = key_bias(logits, ids, 3.0, LO, HI)
    assert np.array_equal(out[0], logits[0])
    assert (out[1] <= logits[1]).all() and (out[1] < logits[1]).any()
    assert key_bias(logits, ids[:, :0], 3.0, LO, HI) is logits  # nothing written yet


def test_a_block_that_starts_above_pitch_zero() -> None:
    base = 21  # a block of the 88 piano keys
    logits = np.zeros((1, LO + 88), dtype=np.float32)
    ids = _ids([p - base for p in (60, 62, 64, 65, 67, 69, 71, 72)])
    out = key_bias(logits, ids, 1.0, LO, LO + 88, base=base)
    lowered = {int(i + base) % 12 for i in np.flatnonzero(out[0, LO:] < 0)}
    assert lowered == {1, 3, 6, 8, 10}


def test_build_filters_checks_the_key_bias() -> None:
    assert build_filters(key_bias_=0.0, pitch_ids=(LO, HI)) == []
    assert len(build_filters(key_bias_=1.0, pitch_ids=(LO, HI))) == 1
    with pytest.raises(MusegenError, match="pitches"):
        build_filters(key_bias_=1.0)
    with pytest.raises(MusegenError, match="key bias"):
        build_filters(key_bias_=-1.0, pitch_ids=(LO, HI))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.integers(0, 20), min_size=12, max_size=12), min_size=1, max_size=5))
def test_rows_of_weights_correlate_as_each_row_alone(rows: list[list[int]]) -> None:
    weights = np.array(rows, dtype=np.float64)
    together = key_correlations(weights)
    assert together.shape == (len(rows), 24)
    for w, r in zip(weights, together, strict=True):
        assert np.allclose(r, key_correlations(w), atol=1e-12)


def test_hold_meter_forces_the_first_meter_and_forbids_the_others() -> None:
    from musegen.sampling.filters import hold_meter

    lo, hi, meter = 10, 14, 12  # four time-signature ids, the third one kept
    logits = np.zeros((3, 20), dtype=np.float32)
    logits[2, 12] = -np.inf  # row 2: the grammar allows no meter here
    ids = np.array([[1, 5], [1, 12], [1, 5]])  # row 1 already wrote its meter
    out = hold_meter(logits, ids, meter, lo, hi)
    assert np.isfinite(out[0]).tolist() == [i == meter for i in range(20)]  # due: only it
    assert np.isinf(out[1, lo:hi]).all()  # written: no meter again
    assert np.isfinite(out[1, :10]).all() and np.isfinite(out[1, 14:]).all()
    assert np.isinf(out[2, lo:hi]).all() and np.isfinite(out[2, :10]).all()
