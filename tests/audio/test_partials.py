"""Partials of a stiff string: measured and fitted back from a synthetic note."""

from __future__ import annotations

import numpy as np
import pytest

from musegen.audio.partials import fit_stretch, measure_partials, midi_hz, stretch_table

RATE = 16_000


def stiff_note(pitch: int, tuning: float, b: float, seconds: float = 0.8) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    f0 = midi_hz(pitch)
    out = np.zeros_like(t)
    for k in range(1, 40):
        hz = k * f0 * tuning * np.sqrt(1.0 + b * k * k)
        if hz < 0.9 * RATE / 2:
            out += np.sin(2 * np.pi * hz * t + k) / k
    return out


@pytest.mark.parametrize(("pitch", "tuning", "b"), [(40, 1.0, 1e-4), (60, 0.998, 4e-4)])
def test_fit_recovers_the_law(pitch: int, tuning: float, b: float) -> None:
    ks, ratios = measure_partials(stiff_note(pitch, tuning, b), pitch, RATE)
    assert len(ks) >= 10
    t_fit, b_fit = fit_stretch(ks, ratios)
    assert t_fit == pytest.approx(tuning, abs=2e-4)
    assert b_fit == pytest.approx(b, rel=0.05)


def test_fit_leaves_out_a_stray_partial() -> None:
    ks = np.arange(1, 13)
    ratios = np.sqrt(1.0 + 2e-4 * ks**2)
    ratios[6] *= 1.02
    assert fit_stretch(ks, ratios)[1] == pytest.approx(2e-4, rel=0.01)


def test_table_fills_keys_from_the_nearest_fitted_one() -> None:
    table = stretch_table(lambda p: stiff_note(p, 1.0, 2e-4), range(60, 62), RATE)
    assert table.shape == (128, 2)
    assert table[0, 1] == pytest.approx(2e-4, rel=0.05)
    assert table[127, 1] == pytest.approx(table[61, 1])
    silent = stretch_table(lambda p: np.zeros(RATE), range(60, 62), RATE)
    np.testing.assert_array_equal(silent, np.tile([1.0, 0.0], (128, 1)))
