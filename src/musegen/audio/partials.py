"""Where a note's partials lie: measured from a render, fitted by a stiff-string law.

A piano string is stiff, so its partials are not exact multiples of the fundamental: partial
``k`` sounds at ``k f0 sqrt(1 + B k^2)`` (Fletcher 1964, "Normal vibration frequencies of a
stiff piano string"), with ``B`` about 1e-4 in the middle of the keyboard and growing towards
the treble. A sample-based SoundFont keeps its recordings' stretch (resampling a recording
scales all its partials alike), so a harmonic model's partial 12 of middle C is off by about
2% (55 Hz), which the spectral loss can only answer by leaving it out.

:func:`measure_partials` finds the partials of one rendered note (peaks of a long,
zero-padded spectrum, followed upwards from the fundamental with the law fitted so far);
:func:`fit_stretch` fits ``f_k = k f0 t sqrt(1 + B k^2)`` (``t``: the sample's tuning) by
weighted least squares; :func:`stretch_table` does both for every key of an instrument,
rendering each key alone through the SoundFont. numpy only (the renders come from the caller).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

WINDOW = 8192  # samples analysed (0.5 s at 16 kHz), after SKIP
SKIP = 0.05  # seconds of attack left out
FFT = 65536  # zero-padded transform size (0.24 Hz bins at 16 kHz)
FLOOR_DB = -50.0  # partials weaker than this, relative to the strongest, are left out
MIN_PARTIALS = 4
B_MAX = 0.01
TUNING = (0.97, 1.03)
MAX_MISS = 0.01  # a peak further than this (relative) from where it is expected is not kept
OUTLIER = 0.003  # partials further than this from the first fit are left out of the second


def midi_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def measure_partials(
    audio: np.ndarray, pitch: int, sample_rate: int, max_k: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Partial numbers ``k`` and their measured frequency ratios ``f_k / (k f0)`` of one note.

    The search climbs from the fundamental: partial ``k`` is looked for within a quarter of
    the partial spacing of where the law fitted to the partials found so far puts it (``k
    f0`` times the last ratio found, until ``MIN_PARTIALS`` are found); a peak below ``FLOOR_DB``, or further than ``MAX_MISS`` from that place
    (aliasing near Nyquist, a neighbour's peak), is not kept and the search goes on above it."""
    f0 = midi_hz(pitch)
    start = round(SKIP * sample_rate)
    x = np.asarray(audio, np.float64)[start : start + WINDOW]
    if len(x) < WINDOW // 4:
        return np.zeros(0, np.int64), np.zeros(0)
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x)), FFT))
    bin_hz = sample_rate / FFT
    floor = mag.max() * 10.0 ** (FLOOR_DB / 20.0)
    ks: list[int] = []
    ratios: list[float] = []
    law = None
    for k in range(1, max_k + 1):
        if law is None:
            guess = k * f0 * (ratios[-1] if ratios else 1.0)
        else:
            guess = k * f0 * law[0] * np.sqrt(1.0 + law[1] * k * k)
        if guess > 0.95 * sample_rate / 2:
            break
        lo = max(1, int((guess - 0.25 * f0) / bin_hz))
        hi = min(len(mag) - 2, int((guess + 0.25 * f0) / bin_hz) + 1)
        i = lo + int(np.argmax(mag[lo:hi]))
        if mag[i] < floor or i in (lo, hi - 1):  # too weak, or no peak inside the window
            continue
        a, c, e = np.log(mag[i - 1 : i + 2] + 1e-30)
        shift = 0.5 * (a - e) / (a - 2 * c + e) if a - 2 * c + e < 0 else 0.0
        found = (i + shift) * bin_hz
        if abs(found - guess) > MAX_MISS * guess:
            continue
        ks.append(k)
        ratios.append(found / (k * f0))
        if len(ks) >= MIN_PARTIALS:
            law = fit_stretch(np.array(ks), np.array(ratios))
    return np.array(ks, np.int64), np.array(ratios)


def fit_stretch(ks: np.ndarray, ratios: np.ndarray) -> tuple[float, float]:
    """``(t, B)`` of ``ratio_k = t sqrt(1 + B k^2)``: least squares on ``ratio^2 = t^2 +
    t^2 B k^2``, fitted again without the partials more than ``OUTLIER`` (relative) off the
    first fit, clipped to a plausible tuning and ``0 <= B <= B_MAX``; ``(1, 0)`` from fewer
    than two partials."""
    if len(ks) < 2:
        return (float(ratios[0]) if len(ks) else 1.0), 0.0
    design = np.stack([np.ones(len(ks)), ks.astype(np.float64) ** 2], axis=1)
    target = ratios**2
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    keep = np.abs(np.sqrt(np.maximum(design @ coef, 1e-12)) - ratios) <= OUTLIER * ratios
    if keep.sum() >= 2:
        coef, *_ = np.linalg.lstsq(design[keep], target[keep], rcond=None)
    alpha, beta = coef
    if alpha <= 0:
        return 1.0, 0.0
    tuning = float(np.clip(np.sqrt(alpha), *TUNING))
    return tuning, float(np.clip(beta / alpha, 0.0, B_MAX))


def stretch_table(
    render: Callable[[int], np.ndarray],
    pitches: range,
    sample_rate: int,
    max_k: int = 64,
) -> np.ndarray:
    """``(128, 2)`` table of ``(t, B)`` per MIDI key: fitted for each key in ``pitches`` from
    ``render(key)`` (that key alone, mono), ``(1, 0)`` where fewer than ``MIN_PARTIALS``
    partials were found; keys outside ``pitches`` take the nearest fitted key's values."""
    table = np.tile(np.array([1.0, 0.0]), (128, 1))
    fitted: list[int] = []
    for p in pitches:
        ks, ratios = measure_partials(render(p), p, sample_rate, max_k)
        if len(ks) >= MIN_PARTIALS:
            table[p] = fit_stretch(ks, ratios)
            fitted.append(p)
    if fitted:
        known = np.array(fitted)
        for p in range(128):
            table[p] = table[known[np.argmin(np.abs(known - p))]]
    return table
