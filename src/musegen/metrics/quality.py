"""What the musical-quality figures measure in one piece (:func:`analyse`): four-voice share,
the ending (cadence or tonic), note lengths, and the feature vector the classifier
two-sample test compares (:func:`piece_features`).

The figures themselves, a generated set against real music with the real corpus against
itself as the ceiling, are :mod:`musegen.evaluate.quality`'s.

Endings are judged in the Krumhansl-Schmuckler key of the whole piece (never in a key read
from the ending itself, which would make every piece end "on the tonic"). That estimate
sometimes takes a piece for its dominant or relative key, so even real pieces fall short of
a full share of cadence endings.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
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
    """``(steps on which all four voices sound, steps)`` from the first note-on to the last
    note-off (the rests that pad a pickup to a whole bar are no music); ``(0, 0)`` when the
    score is not four voices or has no notes. ``step``: ``"beat"`` (the time signature's
    unit, as voice-leading rates count beats) or ``"16th"``."""
    voices = voice_tracks(score)
    if voices is None:
        return 0, 0
    ends = [int((v["start"].astype(np.int64) + v["duration"]).max()) for v in voices if len(v)]
    end = max(ends, default=0)
    if end <= 0:
        return 0, 0
    first = min(int(v["start"].min()) for v in voices if len(v))
    if step == "beat":
        ticks = time_grid(score, end).beat_starts
    elif step == "16th":
        ticks = np.unique(
            (np.arange(math.ceil(end * STEPS_PER_QUARTER / score.tpq)) * score.tpq)
            // STEPS_PER_QUARTER
        ).astype(np.int64)
    else:
        raise ValueError(f"step must be 'beat' or '16th', got {step!r}")
    ticks = ticks[ticks >= first]
    all_four = np.ones(len(ticks), bool)
    for v in voices:
        all_four &= _sounding(v, ticks)
    return int(all_four.sum()), len(ticks)


def four_voice_share(score: Score, step: str = "beat") -> float:
    """Share of beats (``step="beat"``: the time signature's unit, a quarter in 4/4) or of
    16th-note steps (``"16th"``) on whose first tick all four voice tracks (S, A, T, B) sound,
    from the first note-on to the last note-off. NaN when the score is not four voices or is empty.

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
