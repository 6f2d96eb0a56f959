"""benchmarks/latent.py's piano-roll peer: linear pitch interpolation, voice by voice."""

from __future__ import annotations

import numpy as np

from benchhelpers import load_benchmark
from musegen.models.vae_steps import HOLD, REST


def test_roll_midpoint_of_interleaved_voices_is_each_voice_alone() -> None:
    bench = load_benchmark("latent")
    a = np.array([10, HOLD, 12, HOLD])  # one voice: 10 held, then 12 held
    b = np.array([20, HOLD, REST, REST])
    assert bench.roll_midpoint(a, b).tolist() == [15, HOLD, 12, HOLD]
    lower_a, lower_b = np.array([4, HOLD, HOLD, HOLD]), np.array([6, HOLD, 8, HOLD])
    two_a = np.stack([a, lower_a], axis=1).reshape(-1)
    two_b = np.stack([b, lower_b], axis=1).reshape(-1)
    mid = bench.roll_midpoint(two_a, two_b, voices=2).reshape(-1, 2)
    assert mid[:, 0].tolist() == bench.roll_midpoint(a, b).tolist()
    assert (
        mid[:, 1].tolist() == bench.roll_midpoint(lower_a, lower_b).tolist() == [5, HOLD, 6, HOLD]
    )
