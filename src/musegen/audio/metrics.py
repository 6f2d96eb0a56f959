"""Audio metrics: multi-resolution STFT distance and a Fréchet distance over frame embeddings.

* :func:`mr_stft_distance`: for each of three STFT sizes, spectral convergence
  (``||S_a - S_b||_F / ||S_b||_F``) plus the mean absolute difference of log magnitudes;
  averaged over the sizes (Yamamoto et al. 2020's training loss, used here as a distance).
  Both signals are mixed to mono, cut to the shorter length and scaled to the same RMS, so
  the figure compares sound, not loudness or a few samples of tail.
* :func:`frame_embeddings`: a fixed embedding available offline, with no weights: log-mel
  energies (64 bands) per 32 ms frame, their DCT (20 cepstral coefficients) and the
  coefficients' deltas (40 dimensions).
* :func:`frechet_distance`: Fréchet distance between Gaussians fitted to two sets of
  embeddings (Heusel et al. 2017's FID, Kilgour et al. 2019's FAD with this embedding).

numpy and scipy only (scipy for the matrix square root).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from musegen.errors import MusegenError

STFT_SIZES = (512, 1024, 2048)  # window sizes; hop = size // 4
EPS = 1e-3  # magnitude floor of the log term (signals at unit RMS): about -60 dB
N_MELS = 64
N_CEPS = 20


def to_mono(audio: np.ndarray) -> np.ndarray:
    """``(samples,)`` or ``(samples, channels)`` float audio as a float64 mono vector."""
    x = np.asarray(audio, np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.ndim != 1:
        raise MusegenError(f"audio must be (samples,) or (samples, channels), got {x.shape}")
    return x


def stft_magnitude(x: np.ndarray, size: int, hop: int | None = None) -> np.ndarray:
    """Magnitudes ``(frames, size // 2 + 1)`` of a Hann-windowed STFT (reflect-padded)."""
    hop = hop or size // 4
    pad = size // 2
    if len(x) < 2:
        x = np.zeros(2)
    x = np.pad(x, pad, mode="reflect" if len(x) > pad else "constant")
    n_frames = 1 + max(0, (len(x) - size) // hop)
    if len(x) < size:
        x = np.pad(x, (0, size - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, size)[::hop][:n_frames]
    window = np.hanning(size + 1)[:-1]
    return np.abs(np.fft.rfft(frames * window, axis=1))


def _matched(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = to_mono(a), to_mono(b)
    n = min(len(x), len(y))
    if n == 0:
        raise MusegenError("cannot compare empty audio")
    x, y = x[:n], y[:n]
    rx, ry = np.sqrt(np.mean(x**2)), np.sqrt(np.mean(y**2))
    x = x / rx if rx > 1e-9 else x
    y = y / ry if ry > 1e-9 else y
    return x, y


def mr_stft_distance(
    audio: np.ndarray, reference: np.ndarray, sizes: Sequence[int] = STFT_SIZES
) -> float:
    """Multi-resolution STFT distance of ``audio`` from ``reference`` (0 when identical).

    Spectral convergence plus mean absolute log-magnitude difference, averaged over
    ``sizes``; both signals mono, cut to the shorter one and scaled to equal RMS.
    """
    x, y = _matched(audio, reference)
    total = 0.0
    for size in sizes:
        sx, sy = stft_magnitude(x, size), stft_magnitude(y, size)
        sc = np.linalg.norm(sx - sy) / max(np.linalg.norm(sy), EPS)
        mag = np.mean(np.abs(np.log(sx + EPS) - np.log(sy + EPS)))
        total += float(sc + mag)
    return total / len(sizes)


def mel_filterbank(sample_rate: int, size: int, n_mels: int = N_MELS) -> np.ndarray:
    """Triangular mel filters ``(n_mels, size // 2 + 1)`` from 30 Hz to the Nyquist frequency."""

    def mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(np.array(30.0)), mel(np.array(sample_rate / 2)), n_mels + 2))
    bins = np.linspace(0, sample_rate / 2, size // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (bins[None] - lo) / np.maximum(mid - lo, 1e-9)
    down = (hi - bins[None]) / np.maximum(hi - mid, 1e-9)
    return np.maximum(0.0, np.minimum(up, down))


def frame_embeddings(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Cepstral frame embeddings ``(frames, 40)``: 20 mel-cepstral coefficients and deltas.

    The audio is scaled to unit RMS first, so loudness alone does not move the embedding.
    Frames are 32 ms long with a 16 ms hop.
    """
    x = to_mono(audio)
    rms = np.sqrt(np.mean(x**2)) if len(x) else 0.0
    x = x / rms if rms > 1e-9 else x
    size = 1 << int(np.ceil(np.log2(0.032 * sample_rate)))
    mag = stft_magnitude(x, size, hop=size // 2)
    logmel = np.log(mag**2 @ mel_filterbank(sample_rate, size).T + 1e-6)
    k = np.arange(N_CEPS)[:, None]
    n = np.arange(N_MELS)[None, :]
    dct = np.cos(np.pi * k * (2 * n + 1) / (2 * N_MELS))
    ceps = logmel @ dct.T / N_MELS
    delta = np.gradient(ceps, axis=0) if len(ceps) > 1 else np.zeros_like(ceps)
    return np.concatenate([ceps, delta], axis=1)


def embed_set(clips: Iterable[np.ndarray], sample_rate: int) -> np.ndarray:
    """All frame embeddings of several clips, stacked."""
    parts = [frame_embeddings(c, sample_rate) for c in clips]
    if not parts:
        raise MusegenError("no audio clips to embed")
    return np.concatenate(parts)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to embeddings ``a`` and ``b`` (rows = frames).

    ``|mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2))``.
    """
    from scipy import linalg

    if len(a) < 2 or len(b) < 2:
        raise MusegenError("the Fréchet distance needs at least two frames on each side")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(ca @ cb)
    if not np.isfinite(covmean).all():  # near-singular: nudge the diagonals
        off = np.eye(len(ca)) * 1e-6
        covmean = linalg.sqrtm((ca + off) @ (cb + off))
    covmean = np.real(covmean)
    d = float(np.sum((mu_a - mu_b) ** 2) + np.trace(ca + cb - 2.0 * covmean))
    return max(d, 0.0)


def audio_frechet(
    clips: Iterable[np.ndarray], reference: Iterable[np.ndarray], sample_rate: int
) -> float:
    """Fréchet distance of a set of clips from a reference set, over :func:`frame_embeddings`."""
    return frechet_distance(embed_set(clips, sample_rate), embed_set(reference, sample_rate))
