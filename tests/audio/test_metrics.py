"""Audio metrics: identity, symmetry of inputs' loudness, and growth with distortion."""

from __future__ import annotations

import numpy as np
import pytest

from musegen.audio.metrics import (
    audio_frechet,
    frame_embeddings,
    frechet_distance,
    mr_stft_distance,
)
from musegen.errors import MusegenError

SR = 16_000


def tone(seconds: float = 1.0, freq: float = 220.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    amps = rng.uniform(0.2, 1.0, 6)
    x = sum(a / (k + 1) * np.sin(2 * np.pi * freq * (k + 1) * t) for k, a in enumerate(amps))
    return (x * np.exp(-2.0 * t)).astype(np.float32)


def distort(x: np.ndarray, level: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clipped = np.tanh((1 + 4 * level) * x) / np.tanh(1 + 4 * level)
    noise = rng.standard_normal(len(x)) * level * np.sqrt(np.mean(x**2))
    return (clipped + noise).astype(np.float32)


def test_mr_stft_zero_for_identical_and_ignores_level_and_channels() -> None:
    x = tone()
    assert mr_stft_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    stereo = np.stack([0.3 * x, 0.3 * x], axis=1)
    assert mr_stft_distance(stereo, x) < 1e-3


def test_mr_stft_grows_with_distortion() -> None:
    x = tone()
    d = [mr_stft_distance(distort(x, lv), x) for lv in (0.01, 0.1, 0.3, 1.0)]
    assert d == sorted(d) and d[0] < d[-1]


def test_frechet_grows_with_distortion() -> None:
    clean = [tone(1.0, f, s) for s, f in enumerate((110.0, 196.0, 262.0, 330.0))]
    ref = [tone(1.0, f, s + 10) for s, f in enumerate((123.0, 175.0, 247.0, 349.0))]
    d = [
        audio_frechet([distort(c, lv, i) for i, c in enumerate(clean)], ref, SR)
        for lv in (0.0, 0.1, 0.3, 1.0)
    ]
    assert d == sorted(d) and d[-1] > 2 * d[0]


def test_frechet_of_a_set_with_itself_is_zero() -> None:
    e = frame_embeddings(tone(2.0), SR)
    assert e.shape[1] == 40
    assert frechet_distance(e, e) == pytest.approx(0.0, abs=1e-6)


def test_errors_are_one_line() -> None:
    with pytest.raises(MusegenError):
        mr_stft_distance(np.zeros(0), np.zeros(10))
    with pytest.raises(MusegenError):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
