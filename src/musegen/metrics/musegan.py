"""MuseGAN's metrics (Dong et al. 2018, section 5): pure functions of one :class:`Score`.

Each figure is per track, from the score's own bars (:func:`~musegen.metrics._time.time_grid`;
``n_bars`` counts trailing silent bars too). A track with no bars to measure gives NaN; a
score-level figure is the mean over the tracks that have one (NaN if none):

* ``empty_bar_rate``: the share of bars in which the track plays nothing (EB).
* ``used_pitch_classes``: pitch classes played in a bar, averaged over non-empty bars (UPC).
* ``qualified_note_rate``: the share of notes at least ``min_quarters`` long (QN; the paper
  counts notes of 3 or more of its 96 steps per 4/4 bar, a 32nd note: 0.125 quarters).
* ``drum_pattern_rate``: the share of drum onsets on the 16th-note grid, the 8- and 16-beat
  patterns of 4/4 rock (DP); NaN when the score has no drum track.
* ``tonal_distance``: the Euclidean distance between two tracks' tonal centroids (Harte et
  al. 2006: the chroma projected on circles of fifths, minor and major thirds), per bar where
  both play, averaged (TD); ``mean_tonal_distance`` averages it over all pairs of tracks.

:func:`musegan_metrics` returns all five as one dict, the shape ``evaluate report`` shows.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from musegen.metrics._time import TimeGrid, time_grid
from musegen.score import Score, Track
from musegen.theory import tonal_centroids

QN_MIN_QUARTERS = 0.125  # a 32nd note: the paper's 3 steps at 24 steps per quarter
METRIC_NAMES = (
    "empty_bar_rate",
    "used_pitch_classes",
    "qualified_note_rate",
    "drum_pattern_rate",
    "tonal_distance",
)


def _grid(score: Score, n_bars: int | None) -> TimeGrid:
    """The score's bars, or its first ``n_bars`` bars (silent ones past its end included)."""
    if n_bars is None:
        return time_grid(score)
    bar = time_grid(score, end=1).bar_lengths[0]
    grid = time_grid(score, end=max(int(n_bars * bar), 1))
    keep = max(n_bars, 0)
    return TimeGrid(
        grid.bar_starts[:keep], grid.bar_lengths[:keep], grid.beat_starts, grid.beat_lengths,
        grid.end,
    )  # fmt: skip


def _pitched(score: Score) -> list[Track]:
    return [t for t in score.tracks if not t.is_drum]


def _bar_pcs(track: Track, grid: TimeGrid) -> np.ndarray:
    """``[bars, 12]`` note-ticks per pitch class sounding in each bar."""
    out = np.zeros((grid.n_bars, 12))
    if not len(track) or not grid.n_bars:
        return out
    starts = grid.bar_starts
    ends = starts + grid.bar_lengths
    n = track.notes
    s = n["start"].astype(np.int64)
    e = s + n["duration"].astype(np.int64)
    overlap = np.minimum(e[:, None], ends[None, :]) - np.maximum(s[:, None], starts[None, :])
    overlap = np.clip(overlap, 0, None).astype(np.float64)  # [notes, bars]
    pcs = n["pitch"].astype(np.int64) % 12
    for pc in range(12):
        out[:, pc] = overlap[pcs == pc].sum(axis=0)
    return out


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def empty_bar_rates(score: Score, n_bars: int | None = None) -> list[float]:
    """EB of each pitched track: the share of its bars with no sounding note."""
    grid = _grid(score, n_bars)
    if not grid.n_bars:
        return [math.nan for _ in _pitched(score)]
    return [float((_bar_pcs(t, grid).sum(1) == 0).mean()) for t in _pitched(score)]


def empty_bar_rate(score: Score, n_bars: int | None = None) -> float:
    """EB averaged over the pitched tracks."""
    return _mean(empty_bar_rates(score, n_bars))


def used_pitch_classes(score: Score, n_bars: int | None = None) -> float:
    """UPC: pitch classes per non-empty bar, averaged over bars, then over tracks."""
    grid = _grid(score, n_bars)
    per_track = []
    for t in _pitched(score):
        used = (_bar_pcs(t, grid) > 0).sum(1)
        used = used[used > 0]
        per_track.append(float(used.mean()) if len(used) else math.nan)
    return _mean(per_track)


def qualified_note_rate(score: Score, min_quarters: float = QN_MIN_QUARTERS) -> float:
    """QN: the share of pitched notes lasting at least ``min_quarters`` quarter notes."""
    durations = [t.notes["duration"] for t in _pitched(score) if len(t)]
    if not durations:
        return math.nan
    d = np.concatenate(durations).astype(np.float64) / score.tpq
    return float((d >= min_quarters - 1e-9).mean())


def drum_pattern_rate(score: Score) -> float:
    """DP: the share of drum onsets on a 16th-note position (NaN without drum notes)."""
    starts = [t.notes["start"] for t in score.tracks if t.is_drum and len(t)]
    if not starts:
        return math.nan
    step = score.tpq / 4
    s = np.concatenate(starts).astype(np.float64)
    return float((np.abs(s / step - np.round(s / step)) < 1e-6).mean())


def tonal_distance(score: Score, a: int, b: int, n_bars: int | None = None) -> float:
    """TD between tracks ``a`` and ``b`` of ``score`` (indices into ``score.tracks``): the
    mean over bars where both sound of the distance between their tonal centroids."""
    grid = _grid(score, n_bars)
    ca, cb = _bar_pcs(score.tracks[a], grid), _bar_pcs(score.tracks[b], grid)
    both = (ca.sum(1) > 0) & (cb.sum(1) > 0)
    if not both.any():
        return math.nan
    d = np.linalg.norm(tonal_centroids(ca[both]) - tonal_centroids(cb[both]), axis=1)
    return float(d.mean())


def mean_tonal_distance(score: Score, n_bars: int | None = None) -> float:
    """TD averaged over every pair of pitched tracks (NaN with fewer than two)."""
    idx = [i for i, t in enumerate(score.tracks) if not t.is_drum]
    return _mean([tonal_distance(score, i, j, n_bars) for i, j in itertools.combinations(idx, 2)])


def musegan_metrics(
    score: Score, n_bars: int | None = None, min_quarters: float = QN_MIN_QUARTERS
) -> dict[str, float]:
    """The five figures of one score, named as :data:`METRIC_NAMES`."""
    return {
        "empty_bar_rate": empty_bar_rate(score, n_bars),
        "used_pitch_classes": used_pitch_classes(score, n_bars),
        "qualified_note_rate": qualified_note_rate(score, min_quarters),
        "drum_pattern_rate": drum_pattern_rate(score),
        "tonal_distance": mean_tonal_distance(score, n_bars),
    }


def set_metrics(
    scores: list[Score], n_bars: int | None = None, min_quarters: float = QN_MIN_QUARTERS
) -> dict[str, float]:
    """Each figure averaged over a set of scores (pieces where it is NaN left out)."""
    rows = [musegan_metrics(s, n_bars, min_quarters) for s in scores]
    return {k: _mean([r[k] for r in rows]) for k in METRIC_NAMES}
