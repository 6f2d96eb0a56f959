"""Musical quality of a generator's pieces, measured against real music and read against the
real corpus measured against itself.

One set of figures for any generator (a token model, Coconet, a compose method): a set of
*candidate* pieces is compared with a *reference* set of real held-out pieces.

=============================  ===============================================================
``oa_mean``                    mean Yang & Lerch (2018) overlapping area over every feature of
                               :data:`musegen.metrics.stats.FEATURES`
                               (:func:`~musegen.metrics.compare.compare_sets`): 1 when a
                               candidate is as far from the real pieces as they are from each
                               other
``vl_per_100_beats``           four-part voice-leading errors per 100 beats, by kind and in
                               total, pooled over the four-voice pieces
                               (:mod:`~musegen.metrics.voice_leading`)
``parallels_per_100_beats``    parallel fifths + parallel octaves per 100 beats
``four_voice_share_beats``     share of beats on whose first tick all four voice tracks
                               (S, A, T, B) sound, pooled over pieces
                               (``four_voice_share_16ths``: the same over 16th-note steps)
``cadence_ending_share``       share of pieces ending on an authentic or plagal cadence
                               (:func:`ends_on_cadence`)
``tonic_ending_share``         share of pieces whose last note is the tonic (for melodies;
                               :func:`ends_on_tonic`)
``note_length_tv``             total-variation distance between the pooled note-length
                               histograms (:func:`note_length_histogram_distance`)
``c2st_accuracy``              classifier two-sample test: cross-validated accuracy of
                               classifiers telling candidate from real pieces by
                               :func:`piece_features` (0.5: indistinguishable;
                               :func:`classifier_two_sample_test`; details in ``c2st``)
=============================  ===============================================================

Why a ceiling: small real sets differ from each other too (sampling noise, the classifier's
optimism when the best of several is taken), so every figure is also computed for real
training pieces (the same number as the candidates) against the same reference
(:func:`quality_report`), and a generator's figure reads as a fraction of that.

Why excerpts: generated pieces are as long as asked (8 bars), real pieces are whole, and
almost every statistic grows with length, so a classifier would tell them apart by length
alone. With ``bars`` set, real pieces are cut to their first ``bars`` bars for every figure
except the ending, which is judged on whole real pieces (how real pieces end) and also
reported for the cut ones (what cutting alone gives).

Endings are judged in the Krumhansl-Schmuckler key of the whole piece (never in a key read
from the ending itself, which would make every piece end "on the tonic"). That estimate
sometimes takes a piece for its dominant or relative key, so even real pieces fall short of
a full share; the ceiling row carries the same misreadings.

Everything here is numpy (scipy only through :func:`compare_sets`); no figure is tuned on any
split: the classifiers' settings are fixed constants.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from musegen.errors import MusegenError
from musegen.metrics._time import time_grid
from musegen.metrics.harmony import BeatChord, chords_per_beat, detect_cadences
from musegen.metrics.stats import (
    LENGTH_NAMES,
    SCALAR_FEATURES,
    NoteView,
    compute_features,
    note_length_histogram,
    pitch_class_histogram,
    pitch_class_transition_matrix,
    view,
)
from musegen.metrics.voice_leading import (
    KINDS,
    VoiceLeadingReport,
    check_voice_leading,
    four_voices,
    summarize,
)
from musegen.score import VOICES, Score
from musegen.theory import (
    DOMINANT_QUALITIES,
    HARMONIC_MINOR_SCALE,
    LEADING_TONE_QUALITIES,
    MAJOR_SCALE,
    NATURAL_MINOR_SCALE,
    Key,
    estimate_key,
    key_confidence,
    pitch_class_weights,
)

NAN = float("nan")
STEPS_PER_QUARTER = 4  # the 16th-note steps of four_voice_share(step="16th")
LENGTH_BINS_PER_QUARTER = 12  # note-length histogram bins: 1/12 quarter (16ths and triplets)
MAX_LENGTH_QUARTERS = 8  # longer notes share the last bin
LOGISTIC_L2 = 1.0  # ridge penalty of the logistic regression, on standardised features
STUMP_ROUNDS = 100  # gradient-boosted stumps: rounds and learning rate
STUMP_RATE = 0.1
CLASSIFIERS = ("logistic", "knn", "stumps")
MINOR_SCALE = tuple(sorted({*NATURAL_MINOR_SCALE, *HARMONIC_MINOR_SCALE}))  # both sevenths


# ----------------------------------------------------------------------------- voices
def voice_tracks(score: Score) -> list[np.ndarray] | None:
    """The note arrays of S, A, T, B (see :func:`~musegen.metrics.voice_leading.four_voices`),
    or None when the score is not four voices."""
    try:
        return four_voices(score)
    except MusegenError:
        return None


def _sounding(notes: np.ndarray, ticks: np.ndarray) -> np.ndarray:
    """Whether some note of ``notes`` sounds at each tick (``start <= t < end``)."""
    if len(notes) == 0:
        return np.zeros(len(ticks), bool)
    start = notes["start"].astype(np.int64)
    order = np.argsort(start, kind="stable")
    start = start[order]
    latest_end = np.maximum.accumulate(start + notes["duration"].astype(np.int64)[order])
    i = np.searchsorted(start, ticks, side="right") - 1
    return (i >= 0) & (latest_end[np.maximum(i, 0)] > ticks)


def four_voice_counts(score: Score, step: str = "beat") -> tuple[int, int]:
    """``(steps on which all four voices sound, steps)`` from tick 0 to the last note-off;
    ``(0, 0)`` when the score is not four voices or has no notes. ``step``: ``"beat"`` (the
    time signature's unit, as voice-leading rates count beats) or ``"16th"``."""
    voices = voice_tracks(score)
    if voices is None:
        return 0, 0
    ends = [int((v["start"].astype(np.int64) + v["duration"]).max()) for v in voices if len(v)]
    end = max(ends, default=0)
    if end <= 0:
        return 0, 0
    if step == "beat":
        ticks = time_grid(score, end).beat_starts
    elif step == "16th":
        ticks = np.unique(
            (np.arange(math.ceil(end * STEPS_PER_QUARTER / score.tpq)) * score.tpq)
            // STEPS_PER_QUARTER
        ).astype(np.int64)
    else:
        raise ValueError(f"step must be 'beat' or '16th', got {step!r}")
    all_four = np.ones(len(ticks), bool)
    for v in voices:
        all_four &= _sounding(v, ticks)
    return int(all_four.sum()), len(ticks)


def four_voice_share(score: Score, step: str = "beat") -> float:
    """Share of beats (``step="beat"``: the time signature's unit, a quarter in 4/4) or of
    16th-note steps (``"16th"``) on whose first tick all four voice tracks (S, A, T, B) sound,
    from tick 0 to the last note-off. NaN when the score is not four voices or is empty.

    Why: a chorale generator whose notes are dealt out to four voices may still leave voices
    silent for long stretches (fewer than four notes at an onset); real chorales almost never
    do."""
    hits, total = four_voice_counts(score, step)
    return hits / total if total else NAN


# ----------------------------------------------------------------------------- endings
def _runs(chords: Sequence[BeatChord]) -> list[tuple[int, int]]:
    """Runs of beats with one chord (root and quality): ``(first, last)`` beat indices;
    silent beats end a run and start none."""
    runs: list[tuple[int, int]] = []
    for i, bc in enumerate(chords):
        c = bc.chord
        if c is None:
            continue
        prev = chords[i - 1].chord if i else None
        if (
            runs
            and runs[-1][1] == i - 1
            and prev is not None
            and (prev.root, prev.quality) == (c.root, c.quality)
        ):
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def ending_cadence(
    score: Score,
    key: tuple[int, bool] | None = None,
    chords: Sequence[BeatChord] | None = None,
) -> str | None:
    """``"authentic"`` or ``"plagal"`` when the piece ends on one in ``key`` (default: the
    estimated key of the whole piece), else None.

    The last chord (the last run of beats with one template chord, :func:`chords_per_beat`)
    must be the tonic triad, major or minor (so i, I and a Picardy I in minor); the chord
    before it V, V7 or vii° / vii°7 / viiø7 (authentic) or IV / iv (plagal).
    """
    k = key if key is not None else estimate_key(score)
    if k is None:
        return None
    tonic = k[0]
    chords = chords if chords is not None else chords_per_beat(score, k)
    runs = _runs(chords)
    if len(runs) < 2:
        return None
    last, before = chords[runs[-1][0]].chord, chords[runs[-2][0]].chord
    assert last is not None and before is not None
    if (last.root - tonic) % 12 != 0 or last.quality not in ("maj", "min"):
        return None
    degree = (before.root - tonic) % 12
    if (degree == 7 and before.quality in DOMINANT_QUALITIES) or (
        degree == 11 and before.quality in LEADING_TONE_QUALITIES
    ):
        return "authentic"
    if degree == 5 and before.quality in ("maj", "min"):
        return "plagal"
    return None


def ends_on_cadence(score: Score, key: tuple[int, bool] | None = None) -> bool:
    """Whether the piece ends on an authentic or plagal cadence (:func:`ending_cadence`);
    False for an empty score."""
    return ending_cadence(score, key) is not None


def ends_on_tonic(score: Score, key: tuple[int, bool] | None = None) -> bool:
    """Whether the last note is the tonic (pitch class) of ``key`` (default: estimated); of
    several notes at the last onset the lowest counts (the bass of a final chord). False for
    an empty score. The ending figure for melodies, where no chord can be read."""
    v = view(score)
    if v.empty:
        return False
    k = key if key is not None else estimate_key(score)
    if k is None:
        return False
    tonic = k[0]
    last = v.start == v.start.max()
    return int(v.pitch[last].min()) % 12 == tonic


# ----------------------------------------------------------------------------- note lengths
def note_length_counts(scores: Sequence[Score]) -> np.ndarray:
    """Notes of all pitched tracks of ``scores`` counted per length bin: bin ``i`` holds
    lengths nearest ``i / 12`` quarter notes (so 16ths, 8ths and triplets all have their own
    bin), the last bin every note of 8 quarters or more."""
    n_bins = MAX_LENGTH_QUARTERS * LENGTH_BINS_PER_QUARTER + 1
    counts = np.zeros(n_bins)
    for s in scores:
        v = view(s)
        if v.empty:
            continue
        q = np.rint(v.duration * LENGTH_BINS_PER_QUARTER / v.tpq).astype(np.int64)
        counts += np.bincount(np.clip(q, 0, n_bins - 1), minlength=n_bins)
    return counts


def note_length_histogram_distance(a_scores: Sequence[Score], b_scores: Sequence[Score]) -> float:
    """Total-variation distance (half the L1 distance, 0..1: the share of notes that would
    have to change length to make the histograms equal) between the note-length histograms of
    two sets, every note of a set pooled (:func:`note_length_counts`). NaN when a set has no
    notes."""
    a, b = note_length_counts(a_scores), note_length_counts(b_scores)
    if a.sum() == 0 or b.sum() == 0:
        return NAN
    return float(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())


# ----------------------------------------------------------------------------- per-piece features
def _melodic(notes: np.ndarray | None, prefix: str, beats: int) -> dict[str, float]:
    """Melodic statistics of one line (the highest note of each onset when it has chords);
    NaN for a missing line."""
    names = (
        "mean_pitch",
        "range",
        "notes_per_beat",
        "mean_abs_interval",
        "repeat_share",
        "step_share",
        "leap_share",
        "max_leap",
        "contour_change_rate",
    )
    out = {f"{prefix}.{n}": NAN for n in names}
    if notes is None or len(notes) == 0:
        return out
    start = notes["start"].astype(np.int64)
    pitch = notes["pitch"].astype(np.int64)
    order = np.lexsort((-pitch, start))
    start, pitch = start[order], pitch[order]
    first = np.concatenate([[True], start[1:] != start[:-1]])
    pitch = pitch[first]
    out[f"{prefix}.mean_pitch"] = float(pitch.mean())
    out[f"{prefix}.range"] = float(pitch.max() - pitch.min())
    out[f"{prefix}.notes_per_beat"] = len(pitch) / beats if beats else NAN
    if len(pitch) < 2:
        return out
    d = np.diff(pitch)
    a = np.abs(d)
    out[f"{prefix}.mean_abs_interval"] = float(a.mean())
    out[f"{prefix}.repeat_share"] = float(np.mean(a == 0))
    out[f"{prefix}.step_share"] = float(np.mean((a >= 1) & (a <= 2)))
    out[f"{prefix}.leap_share"] = float(np.mean(a >= 5))
    out[f"{prefix}.max_leap"] = float(a.max())
    moves = np.sign(d[d != 0])
    if len(moves) >= 2:
        out[f"{prefix}.contour_change_rate"] = float(np.mean(moves[1:] != moves[:-1]))
    return out


def _top_line(score: Score) -> np.ndarray | None:
    """The soprano: the track labelled S, else the pitched track highest on average."""
    pitched = [t for t in score.tracks if not t.is_drum and len(t)]
    if not pitched:
        return None
    for t in pitched:
        if t.voice == "S":
            return t.notes
    return max(pitched, key=lambda t: float(t.notes["pitch"].mean())).notes


def _rhythm(v: NoteView) -> dict[str, float]:
    """Where onsets fall in the beat and bar, and the spread of lengths and gaps."""
    out: dict[str, float] = {}
    g = v.grid
    onsets = np.unique(v.start)
    beat = g.beat_index(onsets)
    pos = (onsets - g.beat_starts[beat]) / g.beat_lengths[beat]
    twelfths = np.rint(pos * 12).astype(np.int64) % 12
    exact = np.abs(pos * 12 - np.rint(pos * 12)) < 1e-6
    out["onset.on_beat"] = float(np.mean(exact & (twelfths == 0)))
    out["onset.half_beat"] = float(np.mean(exact & (twelfths == 6)))
    out["onset.quarter_beat"] = float(np.mean(exact & np.isin(twelfths, (3, 9))))
    out["onset.third_beat"] = float(np.mean(exact & np.isin(twelfths, (4, 8))))
    out["onset.other"] = float(np.mean(~exact | np.isin(twelfths, (1, 2, 5, 7, 10, 11))))
    bar = g.bar_index(onsets)
    out["onset.downbeat"] = float(np.mean(onsets == g.bar_starts[bar]))
    q = v.duration / v.tpq
    out["length.std"] = float(q.std())
    out["length.max"] = float(q.max())
    ioi = np.diff(onsets) / v.tpq
    out["ioi.std"] = float(ioi.std()) if len(ioi) else NAN
    out["ioi.median"] = float(np.median(ioi)) if len(ioi) else NAN
    out["ioi.short_share"] = float(np.mean(ioi <= 0.25)) if len(ioi) else NAN
    out["duration_quarters"] = float(v.last_tick / v.tpq)
    out["notes"] = float(len(v))
    return out


def _harmony(
    chords: Sequence[BeatChord], score: Score, key: Key | None, n_beats: int
) -> dict[str, float]:
    """Chord vocabulary, rate of change, diatonic share, functions and cadences per beat."""
    qualities = ("maj", "min", "dim", "aug", "dom7")
    names = [
        "chord.silent_share",
        *(f"chord.{q}" for q in qualities),
        "chord.other_seventh",
        "chord.change_rate",
        "chord.root_position",
        "chord.diatonic",
        "chord.tonic",
        "chord.dominant",
        "chord.subdominant",
    ]
    out = dict.fromkeys(names, NAN)
    out |= {f"cadence.{k}_per_100_beats": NAN for k in ("authentic", "half", "plagal", "deceptive")}
    if not chords or key is None:
        return out
    labelled = [c.chord for c in chords if c.chord is not None]
    out["chord.silent_share"] = 1.0 - len(labelled) / len(chords)
    if not labelled:
        return out
    n = len(labelled)
    for q in qualities:
        out[f"chord.{q}"] = sum(c.quality == q for c in labelled) / n
    out["chord.other_seventh"] = (
        sum(c.quality in ("min7", "maj7", "hdim7", "dim7") for c in labelled) / n
    )
    pairs = list(itertools.pairwise(labelled))
    if pairs:
        out["chord.change_rate"] = sum(
            (a.root, a.quality) != (b.root, b.quality) for a, b in pairs
        ) / len(pairs)
    out["chord.root_position"] = sum(c.bass == c.root for c in labelled) / n
    scale = {(key.tonic + s) % 12 for s in (MINOR_SCALE if key.minor else MAJOR_SCALE)}
    out["chord.diatonic"] = sum(c.pitch_classes <= scale for c in labelled) / n
    deg = [(c.root - key.tonic) % 12 for c in labelled]
    out["chord.tonic"] = sum(d == 0 for d in deg) / n
    out["chord.dominant"] = (
        sum(
            (d == 7 and c.quality in DOMINANT_QUALITIES)
            or (d == 11 and c.quality in LEADING_TONE_QUALITIES)
            for d, c in zip(deg, labelled, strict=True)
        )
        / n
    )
    out["chord.subdominant"] = sum(d in (2, 5) for d in deg) / n
    cadences = detect_cadences(score, key, list(chords))
    for kind in ("authentic", "half", "plagal", "deceptive"):
        count = sum(c.kind == kind for c in cadences)
        out[f"cadence.{kind}_per_100_beats"] = 100.0 * count / n_beats if n_beats else NAN
    return out


@dataclass
class PieceAnalysis:
    """What the quality figures need of one piece, computed once."""

    features: dict[str, float]  # the classifier's feature vector (piece_features)
    stats: dict[str, Any]  # musegen.metrics.stats features, for the Yang-Lerch comparison
    voice_leading: VoiceLeadingReport | None  # None: not four voices
    four_beats: tuple[int, int]  # (beats with all four voices, beats)
    four_16ths: tuple[int, int]
    cadence_ending: bool
    tonic_ending: bool


def analyse(score: Score) -> PieceAnalysis:
    """Every per-piece quantity of the quality figures (see the module docstring)."""
    v = view(score)
    stats = compute_features(v)
    feats: dict[str, float] = {name: float(stats[name]) for name in SCALAR_FEATURES}
    if v.empty:
        return PieceAnalysis(feats, stats, None, (0, 0), (0, 0), False, False)
    for name, share in zip(LENGTH_NAMES, note_length_histogram(v), strict=True):
        feats[f"note_length.{name}"] = float(share)
    key = estimate_key(score)
    tonic = key.tonic if key is not None else 0
    feats["key.minor"] = float(key.minor) if key is not None else NAN
    feats["key.confidence"] = (
        key_confidence(pitch_class_weights(score), key) if key is not None else NAN
    )
    # pitch classes relative to the estimated tonic: the shipped models train on transposed
    # pieces, so absolute pitch classes would tell the key distribution, not the music
    rel = np.roll(pitch_class_histogram(v), -tonic)
    feats |= {f"pc_rel.{i}": float(x) for i, x in enumerate(rel)}
    trans = pitch_class_transition_matrix(v)
    trans = np.roll(np.roll(trans, -tonic, axis=0), -tonic, axis=1)
    feats |= {f"pc_trans_rel.{i}_{j}": float(trans[i, j]) for i in range(12) for j in range(12)}
    feats["pitch.mean"] = float(v.pitch.mean())
    feats["pitch.std"] = float(v.pitch.std())
    feats["pitch.lowest"] = float(v.pitch.min())
    feats["pitch.highest"] = float(v.pitch.max())
    feats |= _rhythm(v)
    n_beats = v.grid.n_beats
    feats |= _melodic(_top_line(score), "melody", n_beats)
    voices = voice_tracks(score)
    for name, notes in zip(VOICES, voices or [None] * 4, strict=True):
        feats |= _melodic(notes, f"voice.{name}", n_beats)
    four_beats = four_voice_counts(score, "beat")
    four_16ths = four_voice_counts(score, "16th")
    feats["four_voice_share.beats"] = four_beats[0] / four_beats[1] if four_beats[1] else NAN
    feats["four_voice_share.16ths"] = four_16ths[0] / four_16ths[1] if four_16ths[1] else NAN
    report = check_voice_leading(score) if voices is not None else None
    rates = report.rates_per_100_beats() if report is not None else {}
    for kind in (*KINDS, "total"):
        feats[f"vl.{kind}"] = rates.get(kind, NAN)
    chords = chords_per_beat(score, key) if key is not None else []
    feats |= _harmony(chords, score, key, n_beats)
    cadence = ending_cadence(score, key, chords) is not None if key is not None else False
    tonic_end = ends_on_tonic(score, key)
    feats["end.cadence"] = float(cadence)
    feats["end.tonic"] = float(tonic_end)
    return PieceAnalysis(feats, stats, report, four_beats, four_16ths, cadence, tonic_end)


def piece_features(score: Score) -> dict[str, float]:
    """One piece's feature vector for :func:`classifier_two_sample_test` (NaN where a feature
    does not apply, e.g. voice leading of a melody):

    * the scalar statistics of :mod:`musegen.metrics.stats` (pitch count and range, entropy,
      scale consistency, polyphony, note density, empty beats, note length, IOI, groove,
      self-similarity, repetition) and its note-length histogram;
    * the pitch-class histogram and pitch-class transition matrix relative to the estimated
      tonic, the key's mode and confidence, register (mean, spread, lowest, highest pitch);
    * rhythm: where onsets fall in the beat (on it, half, quarter, third of it, elsewhere) and
      on downbeats, spread of note lengths and of inter-onset intervals, length, note count;
    * melody (the soprano or top line) and, for four-voice scores, each voice: mean pitch,
      range, notes per beat, mean interval, shares of repeats, steps and leaps, largest leap,
      changes of direction;
    * four-voice share of beats and of 16ths; voice-leading errors per 100 beats by kind;
    * harmony (chord per beat): silent beats, chord qualities, rate of change, root position,
      diatonic chords, tonic / dominant / subdominant shares, cadences per 100 beats by kind,
      and whether the piece ends on a cadence or on the tonic.

    A rich vector is the point: a stronger classifier is stronger evidence that generated
    pieces are (or are not) like real ones.
    """
    return analyse(score).features


# ----------------------------------------------------------------------------- classifiers
def _feature_matrix(
    rows: Sequence[Mapping[str, float]] | np.ndarray, columns: list[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Rows of feature dicts (or a matrix) as a float matrix, with the column names (the
    union of the dicts' keys in order of appearance; a missing key is NaN)."""
    if isinstance(rows, np.ndarray):
        x = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
        return x, columns or [str(i) for i in range(x.shape[1])]
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    x = np.array([[float(r.get(c, NAN)) for c in columns] for r in rows], dtype=np.float64)
    return x.reshape(len(rows), len(columns)), columns


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Impute NaN with the training fold's column means (0 where a column is all NaN there),
    then scale by the training fold's mean and spread (constant columns become 0)."""
    finite = np.isfinite(train)
    count = finite.sum(axis=0)
    mean = np.where(finite, train, 0.0).sum(axis=0) / np.maximum(count, 1)
    tr = np.where(np.isfinite(train), train, mean)
    te = np.where(np.isfinite(test), test, mean)
    sd = tr.std(axis=0)
    sd = np.where(sd > 1e-12, sd, np.inf)
    return (tr - mean) / sd, (te - mean) / sd


def logistic_predict(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, l2: float = LOGISTIC_L2
) -> np.ndarray:
    """L2-penalised logistic regression (intercept unpenalised) fitted by Newton's method;
    the probability of class 1 for each test row."""
    n, d = x_train.shape
    a = np.hstack([np.ones((n, 1)), x_train])
    w = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[0] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -30, 30)))
        grad = a.T @ (p - y_train) + penalty * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    z = np.hstack([np.ones((len(x_test), 1)), x_test]) @ w
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def knn_predict(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, k: int | None = None
) -> np.ndarray:
    """Share of class 1 among the ``k`` nearest training rows (Euclidean; default ``k``: the
    odd number nearest the square root of the training size)."""
    if k is None:
        k = max(1, round(math.sqrt(len(x_train))) // 2 * 2 + 1)
    k = min(k, len(x_train))
    d = ((x_test[:, None, :] - x_train[None, :, :]) ** 2).sum(axis=2)
    nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
    return y_train[nearest].mean(axis=1)


def stumps_predict(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    rounds: int = STUMP_ROUNDS,
    rate: float = STUMP_RATE,
) -> np.ndarray:
    """Gradient boosting of depth-1 trees (stumps) on the logistic loss: each round fits the
    residual ``y - p`` with the best single threshold on one feature (least squares), leaf
    values by one Newton step; returns the probability of class 1 for each test row."""
    n = len(x_train)
    order = np.argsort(x_train, axis=0, kind="stable")
    xs = np.take_along_axis(x_train, order, axis=0)
    can_split = xs[1:] > xs[:-1]  # [n-1, d]: a threshold between sorted rows i and i+1
    base = math.log(max(y_train.mean(), 1e-6) / max(1 - y_train.mean(), 1e-6))
    f_train = np.full(n, base)
    f_test = np.full(len(x_test), base)
    left_n = np.arange(1, n)[:, None]
    for _ in range(rounds):
        p = 1.0 / (1.0 + np.exp(-f_train))
        r = y_train - p
        h = p * (1 - p)
        rs = r[order]  # [n, d]
        cl = np.cumsum(rs, axis=0)[:-1]
        total = r.sum()
        gain = cl**2 / left_n + (total - cl) ** 2 / (n - left_n)
        gain = np.where(can_split, gain, -np.inf)
        if not np.isfinite(gain).any():
            break
        i, j = np.unravel_index(int(np.argmax(gain)), gain.shape)
        threshold = (xs[i, j] + xs[i + 1, j]) / 2
        left = x_train[:, j] <= threshold
        values = []
        for side in (left, ~left):
            values.append(r[side].sum() / max(h[side].sum(), 1e-12))
        f_train += rate * np.where(left, values[0], values[1])
        f_test += rate * np.where(x_test[:, j] <= threshold, values[0], values[1])
    return 1.0 / (1.0 + np.exp(-f_test))


_PREDICTORS = {"logistic": logistic_predict, "knn": knn_predict, "stumps": stumps_predict}


def binomial_se(accuracy: float, n: int) -> float:
    """Standard error of an accuracy over ``n`` predictions, Agresti-Coull style (two
    successes and two failures added), so that 0 % or 100 % does not claim an error of 0."""
    if n <= 0 or not math.isfinite(accuracy):
        return NAN
    p = (accuracy * n + 2) / (n + 4)
    return math.sqrt(p * (1 - p) / (n + 4))


def _binomial_tail(correct: int, n: int) -> float:
    """P(X >= correct) for X ~ Binomial(n, 1/2): how often chance does as well."""
    return float(sum(math.comb(n, k) for k in range(correct, n + 1)) / 2**n) if n else NAN


def classifier_two_sample_test(
    gen_features: Sequence[Mapping[str, float]] | np.ndarray,
    real_features: Sequence[Mapping[str, float]] | np.ndarray,
    folds: int = 5,
    seed: int = 0,
    repeats: int = 1,
    columns: list[str] | None = None,
) -> dict[str, Any]:
    """Classifier two-sample test (Lopez-Paz & Oquab 2017): how well classifiers tell
    generated pieces from real ones by their features, cross-validated.

    The larger set is subsampled (seeded) to the size of the smaller, so chance is 0.5. Folds
    are stratified; in each, NaN are imputed with the training fold's column means and the
    columns standardised by the training fold. Three fixed classifiers, none tuned:
    L2 logistic regression (penalty :data:`LOGISTIC_L2`), k-nearest neighbours (k ~ sqrt of
    the training size) and gradient-boosted stumps (:data:`STUMP_ROUNDS` rounds). Accuracy is
    over every held-out prediction; with ``repeats`` > 1 it is averaged over that many
    subsamples and fold assignments.

    Returns ``accuracy`` (the best classifier's: a stronger classifier is better evidence; under
    the null the best of three reads slightly above 0.5, which the real-vs-real ceiling shows),
    ``best``, each classifier's accuracy, ``se`` (binomial standard error of the headline
    over the ``n`` held-out predictions of one repeat, :func:`binomial_se`), ``p_values``
    (one-sided binomial, per classifier, first repeat), ``n_per_class``, ``n_features`` and
    ``top_features`` (the five largest standardised mean differences, generated minus real).
    NaN figures when a set has fewer pieces than ``folds``.
    """
    xg, cols = _feature_matrix(gen_features, columns)
    xr, _ = _feature_matrix(real_features, cols)
    n = min(len(xg), len(xr))
    out: dict[str, Any] = {
        "accuracy": NAN,
        "best": None,
        "se": NAN,
        "n_per_class": n,
        "n_features": len(cols),
        "folds": folds,
        "repeats": repeats,
        **dict.fromkeys(CLASSIFIERS, NAN),
        "p_values": dict.fromkeys(CLASSIFIERS, NAN),
        "top_features": [],
    }
    if n < max(folds, 2) or folds < 2:
        return out
    rng = np.random.default_rng(seed)
    accs: dict[str, list[float]] = {c: [] for c in CLASSIFIERS}
    for rep in range(repeats):
        g = xg[rng.choice(len(xg), n, replace=False)] if len(xg) > n else xg
        r = xr[rng.choice(len(xr), n, replace=False)] if len(xr) > n else xr
        x = np.vstack([g, r])
        y = np.concatenate([np.ones(n), np.zeros(n)])
        fold = np.empty(2 * n, np.int64)
        for cls in (1.0, 0.0):
            idx = np.flatnonzero(y == cls)
            fold[rng.permutation(idx)] = np.arange(len(idx)) % folds
        correct = dict.fromkeys(CLASSIFIERS, 0)
        for f in range(folds):
            test = fold == f
            if not test.any():
                continue
            tr, te = _standardise(x[~test], x[test])
            for name, predict in _PREDICTORS.items():
                p = predict(tr, y[~test], te)
                correct[name] += int(((p > 0.5) == (y[test] == 1)).sum())
        for name in CLASSIFIERS:
            accs[name].append(correct[name] / (2 * n))
            if rep == 0:
                out["p_values"][name] = _binomial_tail(correct[name], 2 * n)
    for name in CLASSIFIERS:
        out[name] = float(np.mean(accs[name]))
    best = max(CLASSIFIERS, key=lambda c: out[c])
    a = out[best]
    out["accuracy"], out["best"] = a, best
    out["se"] = binomial_se(a, 2 * n)
    out["top_features"] = _top_features(xg, xr, cols)
    return out


def _top_features(xg: np.ndarray, xr: np.ndarray, cols: list[str], k: int = 5) -> list[list]:
    """The ``k`` columns whose means differ most between the sets, in pooled standard
    deviations (generated minus real): ``[name, effect]``."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN, left out
        mg, mr = np.nanmean(xg, axis=0), np.nanmean(xr, axis=0)
        sd = np.sqrt((np.nanvar(xg, axis=0) + np.nanvar(xr, axis=0)) / 2)
        effect = (mg - mr) / np.where(sd > 1e-12, sd, np.nan)
    ok = np.flatnonzero(np.isfinite(effect))
    best = ok[np.argsort(-np.abs(effect[ok]))[:k]]
    return [[cols[i], round(float(effect[i]), 3)] for i in best]


# ----------------------------------------------------------------------------- the report
HIGHER_IS_BETTER = {
    "oa_mean": True,
    "vl_total_per_100_beats": False,
    "parallels_per_100_beats": False,
    "four_voice_share_beats": True,
    "four_voice_share_16ths": True,
    "ending_share": True,
    "cadence_ending_share": True,
    "tonic_ending_share": True,
    "note_length_tv": False,
    "c2st_accuracy": False,
}


def fraction_of_ceiling(figure: str, ours: float, ceiling: float) -> float:
    """A figure as a fraction of what real music scores (1: as real music; above 1: better
    than the real-vs-real row). Higher-is-better figures: ``ours / ceiling``; lower-is-better
    (error rates, distances): ``ceiling / ours``; the C2ST accuracy as the classifier's
    error rate, ``(1 - ours) / (1 - ceiling)``."""
    if not (math.isfinite(ours) and math.isfinite(ceiling)):
        return NAN
    if figure == "c2st_accuracy":
        num, den = 1 - ours, 1 - ceiling
    elif HIGHER_IS_BETTER.get(figure, True):
        num, den = ours, ceiling
    else:
        num, den = ceiling, ours
    if den == 0:
        return NAN if num == 0 else math.inf
    return num / den


def _share(flags: Sequence[bool]) -> float:
    return float(np.mean(flags)) if len(flags) else NAN


def _pooled(pairs: Sequence[tuple[int, int]]) -> float:
    total = sum(t for _, t in pairs)
    return sum(h for h, _ in pairs) / total if total else NAN


def set_figures(
    candidates: Sequence[PieceAnalysis],
    reference: Sequence[PieceAnalysis],
    chorale: bool,
    candidate_scores: Sequence[Score],
    reference_scores: Sequence[Score],
    folds: int = 5,
    seed: int = 0,
    repeats: int = 1,
) -> dict[str, Any]:
    """Every figure of one candidate set against the reference (see the module docstring).
    ``chorale``: the ending figure is the cadence share (else the tonic share)."""
    from musegen.metrics.compare import compare_sets

    out: dict[str, Any] = {"pieces": len(candidates)}
    if not candidates or not reference:
        oa: dict[str, float] = {}
    else:
        cmp = compare_sets([a.stats for a in candidates], [a.stats for a in reference], seed=seed)
        oa = {name: fc.oa for name, fc in cmp.items()}
    values = [x for x in oa.values() if math.isfinite(x)]
    out["oa_mean"] = float(np.mean(values)) if values else NAN
    out["oa"] = oa
    reports = [a.voice_leading for a in candidates if a.voice_leading is not None]
    out["four_voice_pieces"] = len(reports)
    if reports:
        s = summarize(reports)
        rates = s["per_100_beats"]
        out["vl_per_100_beats"] = rates
        out["vl_total_per_100_beats"] = rates["total"]
        parallels = s["counts"]["parallel_fifths"] + s["counts"]["parallel_octaves"]
        out["parallels_per_100_beats"] = 100.0 * parallels / s["beats"] if s["beats"] else NAN
    else:
        out["vl_per_100_beats"] = {k: NAN for k in (*KINDS, "total")}
        out["vl_total_per_100_beats"] = NAN
        out["parallels_per_100_beats"] = NAN
    out["four_voice_share_beats"] = _pooled([a.four_beats for a in candidates])
    out["four_voice_share_16ths"] = _pooled([a.four_16ths for a in candidates])
    out["cadence_ending_share"] = _share([a.cadence_ending for a in candidates])
    out["tonic_ending_share"] = _share([a.tonic_ending for a in candidates])
    out["ending_kind"] = "cadence" if chorale else "tonic"
    out["ending_share"] = out["cadence_ending_share" if chorale else "tonic_ending_share"]
    out["note_length_tv"] = note_length_histogram_distance(candidate_scores, reference_scores)
    c2st = classifier_two_sample_test(
        [a.features for a in candidates],
        [a.features for a in reference],
        folds=folds,
        seed=seed,
        repeats=repeats,
    )
    out["c2st"] = c2st
    out["c2st_accuracy"] = c2st["accuracy"]
    return out


def _has_pickup(score: Score) -> bool:
    """Whether the first bar is a pickup padded with rests (nothing sounds on its downbeat)."""
    starts = score.bar_starts()
    if len(starts) < 2:
        return False
    first = min((int(t.notes["start"].min()) for t in score.tracks if len(t)), default=0)
    return 0 < first < int(starts[1])


def _cut(score: Score, bars: int | None) -> Score:
    """The first ``bars`` whole bars of ``score``, after its pickup if it has one (a
    generated piece of ``bars`` bars has its pickup on top of them too)."""
    if bars is not None and _has_pickup(score):
        bars += 1
    if bars is None or score.n_bars <= bars:
        return score
    return score.slice_bars(0, bars)


def quality_report(
    generated: Sequence[Score],
    real_heldout: Sequence[Score],
    real_train: Sequence[Score] | None = None,
    *,
    bars: int | None = None,
    folds: int = 5,
    seed: int = 0,
    repeats: int = 1,
) -> dict[str, Any]:
    """All the quality figures of ``generated`` against ``real_heldout``, and with
    ``real_train`` the ``ceiling``: the same figures for a seeded sample of as many real
    training pieces as there are generated ones, against the same held-out pieces (the
    corpus against itself), and ``fraction``: each headline figure as a fraction of the
    ceiling (:func:`fraction_of_ceiling`).

    ``bars``: cut real pieces to their first ``bars`` bars (the length the generated pieces
    were asked for) for every figure but the ending; the ceiling's ending is judged on whole
    training pieces, and ``ending_share_cut`` gives it for the cut ones. The ending figure is
    the cadence share when most held-out pieces are four voices, else the tonic share.
    """
    gen = [analyse(s) for s in generated]
    ref_scores = [_cut(s, bars) for s in real_heldout]
    ref = [analyse(s) for s in ref_scores]
    four = [a.voice_leading is not None for a in ref]
    chorale = bool(four) and float(np.mean(four)) >= 0.5
    report: dict[str, Any] = {
        "bars": bars,
        "reference_pieces": len(ref),
        "generated": set_figures(gen, ref, chorale, generated, ref_scores, folds, seed, repeats),
        "ceiling": None,
        "fraction": {},
    }
    if real_train is None:
        return report
    rng = np.random.default_rng(seed)
    pool = list(real_train)
    if len(generated) and len(pool) > len(generated):
        keep = np.sort(rng.choice(len(pool), len(generated), replace=False))
        pool = [pool[i] for i in keep]
    train_scores = [_cut(s, bars) for s in pool]
    train = [analyse(s) for s in train_scores]
    ceiling = set_figures(train, ref, chorale, train_scores, ref_scores, folds, seed, repeats)
    cut_cadence, cut_tonic = ceiling["cadence_ending_share"], ceiling["tonic_ending_share"]
    if bars is not None:  # how whole real pieces end
        whole_key = [estimate_key(s) for s in pool]
        ceiling["cadence_ending_share"] = _share(
            [k is not None and ends_on_cadence(s, k) for s, k in zip(pool, whole_key, strict=True)]
        )
        ceiling["tonic_ending_share"] = _share(
            [k is not None and ends_on_tonic(s, k) for s, k in zip(pool, whole_key, strict=True)]
        )
    ceiling["ending_share"] = ceiling["cadence_ending_share" if chorale else "tonic_ending_share"]
    ceiling["ending_share_cut"] = cut_cadence if chorale else cut_tonic
    report["ceiling"] = ceiling
    report["fraction"] = {
        name: fraction_of_ceiling(name, report["generated"][name], ceiling[name])
        for name in HEADLINE
    }
    return report


HEADLINE = (
    "oa_mean",
    "vl_total_per_100_beats",
    "parallels_per_100_beats",
    "four_voice_share_beats",
    "ending_share",
    "note_length_tv",
    "c2st_accuracy",
)
