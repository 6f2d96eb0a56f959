"""Statistics of a score: pure functions ``Score -> number or array``, vectorised numpy.

Every function reads the pitched notes of all tracks (drum tracks are left out) and returns
NaN (or an array of NaN) when there is nothing to measure. Time is in quarter notes unless a
name says beats or bars; a beat is the time signature's unit (see :mod:`musegen.metrics._time`).
The definitions follow the ideas of MusPy and of Yang & Lerch (2018), written down here:

=============================  =================================================================
pitch_count                    distinct MIDI pitches used
pitch_class_count              distinct pitch classes used
pitch_range                    highest minus lowest pitch, in semitones
pitch_class_histogram          share of notes per pitch class (12 values, sum 1)
pitch_class_entropy            Shannon entropy of that histogram, in bits (0 .. log2 12)
pitch_class_transition_matrix  12 x 12 counts of pitch class -> pitch class between successive
                               notes of a track (ordered by onset, then pitch), normalised
scale_consistency              largest share of notes inside one scale, over the 12 major and
                               12 harmonic-minor scales (natural minor = its relative major)
polyphony                      mean number of notes sounding, over the time anything sounds
polyphony_rate                 share of the sounding time with two or more notes sounding
note_density                   notes per quarter note, over the span from 0 to the last note-off
empty_beat_rate                share of beats (0 .. last note-off) during which nothing sounds
note_length_histogram          share of notes per length class (nearest on a log scale):
                               whole, half, quarter, 8th, 16th, dotted half, dotted quarter,
                               dotted 8th, dotted 16th, half / quarter / 8th triplet
mean_note_length               mean note duration, in quarter notes
inter_onset_intervals          gaps between successive distinct onsets, in quarter notes
mean_ioi                       their mean
groove_consistency             1 - mean Hamming distance between the onset patterns of
                               neighbouring bars (12 positions per quarter), per position
bar_similarity_matrix          cosine similarity of bars' onset grids (16ths x pitch classes)
self_similarity                mean, over bars with notes after the first, of the best
                               similarity to an earlier bar (1: every bar repeats an earlier one)
repetition_rate                share of bars with notes (after the first) that repeat an earlier
                               bar exactly (same pitches, positions and durations)
=============================  =================================================================

Functions take a :class:`Score` or a :class:`NoteView` (the columns a score's features need,
computed once: :func:`compute_features` makes one and passes it to every feature).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from musegen.metrics._time import TimeGrid, time_grid
from musegen.score import Score
from musegen.theory import HARMONIC_MINOR_SCALE, MAJOR_SCALE

NAN = float("nan")
LENGTH_CLASSES = np.array([4, 2, 1, 1 / 2, 1 / 4, 3, 3 / 2, 3 / 4, 3 / 8, 4 / 3, 2 / 3, 1 / 3])
LENGTH_NAMES = (
    "whole", "half", "quarter", "8th", "16th",
    "dotted half", "dotted quarter", "dotted 8th", "dotted 16th",
    "half triplet", "quarter triplet", "8th triplet",
)  # fmt: skip
GROOVE_POSITIONS_PER_QUARTER = 12
SIMILARITY_POSITIONS_PER_QUARTER = 4


def _scale_masks() -> np.ndarray:
    """[24, 12] membership of the 12 major and 12 harmonic-minor scales."""
    rows = []
    for steps in (MAJOR_SCALE, HARMONIC_MINOR_SCALE):
        base = np.zeros(12)
        base[list(steps)] = 1.0
        rows += [np.roll(base, tonic) for tonic in range(12)]
    return np.array(rows)


SCALE_MASKS = _scale_masks()


class NoteView:
    """A score's pitched notes as int64 columns sorted by onset then pitch, and its grid."""

    def __init__(self, score: Score) -> None:
        table = score.note_table()
        drums = [i for i, t in enumerate(score.tracks) if t.is_drum]
        if drums:
            table = table[~np.isin(table["track"], drums)]
        table = table[np.lexsort((table["pitch"], table["start"]))]
        self.score = score
        self.tpq = score.tpq
        self.start = table["start"].astype(np.int64)
        self.duration = np.maximum(table["duration"].astype(np.int64), 0)
        self.pitch = table["pitch"].astype(np.int64)
        self.track = table["track"].astype(np.int64)
        self.end = self.start + self.duration

    def __len__(self) -> int:
        return len(self.start)

    @property
    def empty(self) -> bool:
        return len(self.start) == 0

    @cached_property
    def last_tick(self) -> int:
        """Where the last note ends (at least one tick past the last onset)."""
        return int(max(self.end.max(), self.start.max() + 1)) if len(self) else 0

    @cached_property
    def grid(self) -> TimeGrid:
        return time_grid(self.score, self.last_tick)

    @cached_property
    def pitch_class(self) -> np.ndarray:
        return self.pitch % 12


ScoreLike = Score | NoteView


def view(score: ScoreLike) -> NoteView:
    """The :class:`NoteView` of a score (the view itself if given one)."""
    return score if isinstance(score, NoteView) else NoteView(score)


def _nan_array(*shape: int) -> np.ndarray:
    return np.full(shape, NAN)


# ----------------------------------------------------------------------------- pitch
def pitch_count(score: ScoreLike) -> float:
    """Number of distinct MIDI pitches used."""
    v = view(score)
    return NAN if v.empty else float(len(np.unique(v.pitch)))


def pitch_class_count(score: ScoreLike) -> float:
    """Number of distinct pitch classes used (1..12)."""
    v = view(score)
    return NAN if v.empty else float(len(np.unique(v.pitch_class)))


def pitch_range(score: ScoreLike) -> float:
    """Highest minus lowest pitch, in semitones."""
    v = view(score)
    return NAN if v.empty else float(v.pitch.max() - v.pitch.min())


def pitch_class_histogram(score: ScoreLike, weight: str = "count") -> np.ndarray:
    """Share of notes (``weight="count"``) or of total duration (``"duration"``) per pitch
    class, C first; sums to 1."""
    v = view(score)
    if weight not in ("count", "duration"):
        raise ValueError(f"weight must be 'count' or 'duration', got {weight!r}")
    w = v.duration.astype(np.float64) if weight == "duration" else None
    counts = np.bincount(v.pitch_class, weights=w, minlength=12).astype(np.float64)
    total = counts.sum()
    return counts / total if total > 0 else _nan_array(12)


def pitch_class_entropy(score: ScoreLike) -> float:
    """Shannon entropy of the pitch-class histogram, in bits: 0 for one pitch class,
    log2(12) ~ 3.585 when all twelve are equally common."""
    h = pitch_class_histogram(score)
    if np.isnan(h).any():
        return NAN
    h = h[h > 0]
    return float(-(h * np.log2(h)).sum())


def pitch_class_transition_matrix(score: ScoreLike, normalize: str = "all") -> np.ndarray:
    """``[from, to]`` counts of pitch-class transitions between successive notes of each
    track (ordered by onset, then pitch). ``normalize``: ``"all"`` (sums to 1), ``"row"``
    (each row with transitions sums to 1) or ``"none"`` (counts)."""
    v = view(score)
    if normalize not in ("all", "row", "none"):
        raise ValueError(f"normalize must be 'all', 'row' or 'none', got {normalize!r}")
    order = np.lexsort((v.pitch, v.start, v.track))
    pc, track = v.pitch_class[order], v.track[order]
    same = track[:-1] == track[1:]
    pairs = pc[:-1][same] * 12 + pc[1:][same]
    m = np.bincount(pairs, minlength=144).reshape(12, 12).astype(np.float64)
    total = m.sum()
    if normalize == "none":
        return m
    if total == 0:
        return _nan_array(12, 12)
    if normalize == "all":
        return m / total
    rows = m.sum(axis=1, keepdims=True)
    return np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)


def scale_consistency(score: ScoreLike) -> float:
    """Largest share of notes inside one major or harmonic-minor scale (1: all diatonic)."""
    v = view(score)
    if v.empty:
        return NAN
    counts = np.bincount(v.pitch_class, minlength=12)
    return float((SCALE_MASKS @ counts).max() / len(v))


# ----------------------------------------------------------------------------- texture
def _sounding_profile(v: NoteView) -> tuple[np.ndarray, np.ndarray]:
    """Number of notes sounding in each span between note events, and the spans' lengths."""
    times = np.concatenate([v.start, v.end])
    delta = np.concatenate([np.ones(len(v), np.int64), -np.ones(len(v), np.int64)])
    order = np.lexsort((delta, times))  # at equal times note-offs come first
    counts = np.cumsum(delta[order])[:-1]
    spans = np.diff(times[order])
    return counts, spans


def polyphony(score: ScoreLike) -> float:
    """Mean number of notes sounding, averaged over the time when at least one sounds."""
    v = view(score)
    if v.empty:
        return NAN
    counts, spans = _sounding_profile(v)
    sounding = counts > 0
    total = spans[sounding].sum()
    return float((counts * spans)[sounding].sum() / total) if total > 0 else NAN


def polyphony_rate(score: ScoreLike) -> float:
    """Share of the sounding time during which two or more notes sound."""
    v = view(score)
    if v.empty:
        return NAN
    counts, spans = _sounding_profile(v)
    total = spans[counts > 0].sum()
    return float(spans[counts > 1].sum() / total) if total > 0 else NAN


def note_density(score: ScoreLike) -> float:
    """Notes per quarter note, from tick 0 to the last note-off."""
    v = view(score)
    return NAN if v.empty else float(len(v) * v.tpq / v.last_tick)


def empty_beat_rate(score: ScoreLike) -> float:
    """Share of the beats from tick 0 to the last note-off during which no note sounds."""
    v = view(score)
    if v.empty:
        return NAN
    g = v.grid
    first = g.beat_index(v.start)
    last = g.beat_index(np.maximum(v.end - 1, v.start))
    cover = np.zeros(g.n_beats + 1, np.int64)
    np.add.at(cover, first, 1)
    np.add.at(cover, last + 1, -1)
    return float(np.mean(np.cumsum(cover)[:-1] == 0))


# ----------------------------------------------------------------------------- rhythm
def note_length_histogram(score: ScoreLike) -> np.ndarray:
    """Share of notes per length class (:data:`LENGTH_NAMES`), each note in the class nearest
    to its duration on a log scale; sums to 1."""
    v = view(score)
    if v.empty:
        return _nan_array(len(LENGTH_CLASSES))
    q = np.maximum(v.duration / v.tpq, 1e-6)
    nearest = np.abs(np.log2(q)[:, None] - np.log2(LENGTH_CLASSES)[None, :]).argmin(axis=1)
    return np.bincount(nearest, minlength=len(LENGTH_CLASSES)) / len(v)


def mean_note_length(score: ScoreLike) -> float:
    """Mean note duration, in quarter notes."""
    v = view(score)
    return NAN if v.empty else float(v.duration.mean() / v.tpq)


def inter_onset_intervals(score: ScoreLike) -> np.ndarray:
    """Gaps between successive distinct onsets (all tracks together), in quarter notes."""
    v = view(score)
    return np.diff(np.unique(v.start)) / v.tpq


def mean_ioi(score: ScoreLike) -> float:
    """Mean inter-onset interval, in quarter notes (NaN with fewer than two onsets)."""
    ioi = inter_onset_intervals(score)
    return float(ioi.mean()) if len(ioi) else NAN


def _bar_positions(v: NoteView, per_quarter: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each note's bar index and grid position in its bar, and each bar's number of positions."""
    g = v.grid
    bar = g.bar_index(v.start)
    pos = (v.start - g.bar_starts[bar]) * per_quarter // v.tpq
    n_pos = -(-g.bar_lengths * per_quarter // v.tpq)
    return bar, np.minimum(pos, n_pos[bar] - 1), n_pos


def groove_consistency(score: ScoreLike) -> float:
    """1 - mean Hamming distance between neighbouring bars' onset patterns (12 positions per
    quarter), each distance divided by the bar's number of positions. 1: every bar has the same
    rhythm. NaN with fewer than two bars."""
    v = view(score)
    if v.empty or v.grid.n_bars < 2:
        return NAN
    bar, pos, n_pos = _bar_positions(v, GROOVE_POSITIONS_PER_QUARTER)
    onsets = np.zeros((v.grid.n_bars, int(n_pos.max())), bool)
    onsets[bar, pos] = True
    differ = (onsets[1:] != onsets[:-1]).sum(axis=1)
    size = np.maximum(n_pos[1:], n_pos[:-1])
    return float(1.0 - np.mean(differ / size))


def _bar_grids(v: NoteView) -> np.ndarray:
    """``[bars, positions * 12]`` onset counts per (16th position, pitch class) of each bar."""
    bar, pos, n_pos = _bar_positions(v, SIMILARITY_POSITIONS_PER_QUARTER)
    width = int(n_pos.max())
    grid = np.zeros((v.grid.n_bars, width * 12))
    np.add.at(grid, (bar, pos * 12 + v.pitch_class), 1.0)
    return grid


def bar_similarity_matrix(score: ScoreLike) -> np.ndarray:
    """``[bars, bars]`` cosine similarity of the bars' onset grids; 0 where a bar is empty."""
    v = view(score)
    if v.empty:
        return _nan_array(0, 0)
    x = _bar_grids(v)
    norm = np.linalg.norm(x, axis=1)
    unit = np.divide(x, norm[:, None], out=np.zeros_like(x), where=norm[:, None] > 0)
    return unit @ unit.T


def self_similarity(score: ScoreLike) -> float:
    """Mean over bars with notes (after the first such bar) of the highest cosine similarity
    to an earlier bar: 1 when every bar repeats an earlier one (in pitch class and rhythm)."""
    sim = bar_similarity_matrix(score)
    if sim.size == 0:
        return NAN
    full = np.flatnonzero(np.diag(sim) > 0)
    if len(full) < 2:
        return NAN
    sub = sim[np.ix_(full, full)]
    earlier = np.tril(np.ones_like(sub, dtype=bool), k=-1)
    best = np.where(earlier, sub, -np.inf).max(axis=1)[1:]
    return float(best.mean())


def repetition_rate(score: ScoreLike) -> float:
    """Share of bars with notes (after the first such bar) whose notes (pitch, position in
    the bar, duration) are exactly those of an earlier bar."""
    v = view(score)
    if v.empty:
        return NAN
    g = v.grid
    bar = g.bar_index(v.start)
    rel = v.start - g.bar_starts[bar]
    order = np.lexsort((v.duration, v.pitch, rel, bar))
    rows = np.stack([rel, v.pitch, v.duration], axis=1)[order]
    cuts = np.flatnonzero(np.diff(bar[order])) + 1
    seen: set[bytes] = set()
    repeats = 0
    chunks = np.split(rows, cuts)
    for chunk in chunks:
        key = chunk.tobytes()
        repeats += key in seen
        seen.add(key)
    return float(repeats / (len(chunks) - 1)) if len(chunks) > 1 else NAN


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Feature:
    """A named statistic for set comparison: its function, meaning, unit and value shape."""

    name: str
    fn: Callable[[ScoreLike], float | np.ndarray]
    description: str
    unit: str = ""
    shape: tuple[int, ...] = ()

    @property
    def is_scalar(self) -> bool:
        return self.shape == ()


SCALAR_FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature("pitch_count", pitch_count, "distinct pitches", "pitches"),
        Feature("pitch_class_count", pitch_class_count, "distinct pitch classes", "classes"),
        Feature("pitch_range", pitch_range, "highest - lowest pitch", "semitones"),
        Feature("pitch_class_entropy", pitch_class_entropy, "pitch-class entropy", "bits"),
        Feature("scale_consistency", scale_consistency, "share of notes in the best scale"),
        Feature("polyphony", polyphony, "mean notes sounding", "notes"),
        Feature("polyphony_rate", polyphony_rate, "share of time with 2+ notes"),
        Feature("note_density", note_density, "notes per quarter", "notes/quarter"),
        Feature("empty_beat_rate", empty_beat_rate, "share of silent beats"),
        Feature("mean_note_length", mean_note_length, "mean note length", "quarters"),
        Feature("mean_ioi", mean_ioi, "mean inter-onset interval", "quarters"),
        Feature("groove_consistency", groove_consistency, "rhythm similarity of neighbour bars"),
        Feature("self_similarity", self_similarity, "best similarity to an earlier bar"),
        Feature("repetition_rate", repetition_rate, "share of bars repeating an earlier one"),
    )
}
HISTOGRAM_FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature("pitch_class_histogram", pitch_class_histogram, "share per pitch class", "", (12,)),
        Feature(
            "pitch_class_transition_matrix",
            pitch_class_transition_matrix,
            "pitch-class transitions",
            "",
            (12, 12),
        ),
        Feature(
            "note_length_histogram",
            note_length_histogram,
            "share per note-length class",
            "",
            (len(LENGTH_CLASSES),),
        ),
    )
}
FEATURES: dict[str, Feature] = {**SCALAR_FEATURES, **HISTOGRAM_FEATURES}


def compute_features(
    score: ScoreLike, names: Iterable[str] | None = None
) -> dict[str, float | np.ndarray]:
    """The named features (default: all of :data:`FEATURES`) of one score."""
    v = view(score)
    chosen = list(FEATURES) if names is None else list(names)
    unknown = [n for n in chosen if n not in FEATURES]
    if unknown:
        from musegen.errors import MusegenError

        raise MusegenError(f"unknown feature(s) {', '.join(unknown)}; known: {', '.join(FEATURES)}")
    return {n: FEATURES[n].fn(v) for n in chosen}


def scalar_features(score: ScoreLike) -> dict[str, float]:
    """Every scalar feature of one score (NaN where undefined)."""
    return {k: float(v) for k, v in compute_features(score, SCALAR_FEATURES).items()}  # type: ignore[arg-type]


def jsonable(value: float | np.ndarray) -> float | list | None:
    """A feature value for JSON: NaN becomes None, arrays become (nested) lists."""
    if isinstance(value, np.ndarray):
        return [jsonable(x) for x in value]  # type: ignore[misc]
    x = float(value)
    return None if math.isnan(x) else round(x, 6)
