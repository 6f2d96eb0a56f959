"""Harmony of a score: a chord per beat with its Roman numeral, and cadences.

* :func:`chords_per_beat`: a chord per beat by matching the beat's pitch classes against
  major / minor / diminished / augmented triads and dominant / minor / major / half-diminished /
  diminished sevenths (:func:`musegen.theory.label_chords` says how templates are scored).
* :func:`detect_cadences`: authentic, plagal, deceptive and half cadences at phrase ends.

Keys, chord templates and Roman numerals themselves live in :mod:`musegen.theory`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musegen.metrics._time import TimeGrid, time_grid
from musegen.score import NOTE_DTYPE, Score
from musegen.theory import (
    DOMINANT_QUALITIES,
    Chord,
    estimate_key,
    label_chords,
    roman_numeral,
)


def beat_pitch_classes(score: Score) -> tuple[np.ndarray, np.ndarray, TimeGrid]:
    """Per beat: how long each pitch class sounds in it ``[beats, 12]`` (ticks) and the lowest
    sounding pitch (-1 where nothing sounds), with the beat grid."""
    from musegen.metrics.stats import view

    v = view(score)
    grid = v.grid if not v.empty else time_grid(score, max(score.end, 1))
    weights = np.zeros((grid.n_beats, 12))
    low = np.full(grid.n_beats, 999, np.int64)
    if v.empty:
        return weights, np.full(grid.n_beats, -1, np.int64), grid
    first = grid.beat_index(v.start)
    last = grid.beat_index(np.maximum(v.end - 1, v.start))
    span = last - first + 1
    note = np.repeat(np.arange(len(v)), span)
    beat = np.repeat(first, span) + np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span)
    b0 = grid.beat_starts[beat]
    b1 = b0 + grid.beat_lengths[beat]
    overlap = np.minimum(v.end[note], b1) - np.maximum(v.start[note], b0)
    overlap = np.maximum(overlap, 0)
    np.add.at(weights, (beat, v.pitch_class[note]), overlap)
    np.minimum.at(low, beat, v.pitch[note])
    return weights, np.where(low == 999, -1, low), grid


@dataclass(frozen=True)
class BeatChord:
    """The chord of one beat (None where nothing sounds) and where the beat is (1-based)."""

    tick: int
    bar: int
    beat: float
    chord: Chord | None
    numeral: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "bar": self.bar,
            "beat": self.beat,
            "chord": self.chord.name if self.chord else None,
            "numeral": self.numeral,
        }


def chords_per_beat(score: Score, key: tuple[int, bool] | None = None) -> list[BeatChord]:
    """A chord label for every beat of ``score`` by template matching (see
    :func:`musegen.theory.label_chords`), with its Roman numeral in ``key`` (a
    :class:`~musegen.theory.Key` or ``(tonic, minor)``; default: the estimated key)."""
    weights, bass, grid = beat_pitch_classes(score)
    key = key if key is not None else estimate_key(score)
    labels = label_chords(weights, bass)
    bars, beats = grid.locate(grid.beat_starts)
    return [
        BeatChord(
            int(t),
            int(b),
            round(float(q), 4),
            c,
            roman_numeral(c, key) if c is not None and key is not None else None,
        )
        for t, b, q, c in zip(grid.beat_starts, bars, beats, labels, strict=True)
    ]


# ----------------------------------------------------------------------------- cadences
CADENCE_KINDS = ("authentic", "half", "plagal", "deceptive")


@dataclass(frozen=True)
class Cadence:
    """A cadence arriving at ``bar``/``beat`` (1-based): its kind and the two chords.

    ``perfect`` (authentic cadences only): both chords in root position and the top voice on
    the tonic.
    """

    kind: str
    bar: int
    beat: float
    tick: int
    chords: tuple[str, str]
    perfect: bool | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "bar": self.bar,
            "beat": self.beat,
            "chords": list(self.chords),
            "perfect": self.perfect,
        }


def _chord_events(chords: list[BeatChord]) -> list[tuple[int, int]]:
    """Runs of beats with the same chord: ``(first beat, last beat)`` indices (silence ends a
    run and starts none)."""
    events: list[tuple[int, int]] = []
    for i, bc in enumerate(chords):
        if bc.chord is None:
            continue
        prev = chords[i - 1].chord if i else None
        if events and events[-1][1] == i - 1 and prev is not None and _same(prev, bc.chord):
            events[-1] = (events[-1][0], i)
        else:
            events.append((i, i))
    return events


def _same(a: Chord, b: Chord) -> bool:
    return a.root == b.root and a.quality == b.quality


def _top_voice(score: Score) -> np.ndarray:
    """The notes of the top voice: the track labelled S, else the highest pitched track."""
    pitched = [t for t in score.tracks if not t.is_drum and len(t)]
    if not pitched:
        return np.zeros(0, NOTE_DTYPE)
    for t in pitched:
        if t.voice == "S":
            return t.notes
    return max(pitched, key=lambda t: float(t.notes["pitch"].mean())).notes


def phrase_end_ticks(score: Score) -> np.ndarray:
    """Ticks where a phrase ends: the onset of a long top-voice note (at least one beat and
    twice the voice's median length), of a note followed by a rest in every voice, and of the
    last onset of the piece."""
    from musegen.metrics.stats import view

    v = view(score)
    if v.empty:
        return np.zeros(0, np.int64)
    top = _top_voice(score)
    beat = v.grid.beat_lengths[0]
    ends = [v.start.max()]
    if len(top):
        dur = top["duration"].astype(np.int64)
        long_enough = max(int(beat), 2 * int(np.median(dur)))
        ends += list(top["start"][dur >= long_enough])
    counts_end = np.maximum.accumulate(v.end)  # latest note-off so far, in onset order
    gaps = v.start[1:] > counts_end[:-1]
    ends += list(v.start[:-1][gaps])
    return np.unique(np.asarray(ends, dtype=np.int64))


def detect_cadences(
    score: Score,
    key: tuple[int, bool] | None = None,
    chords: list[BeatChord] | None = None,
) -> list[Cadence]:
    """Cadences at phrase ends (:func:`phrase_end_ticks`), judged from the chord arriving
    there and the chord before it, in ``key`` (default: the estimated key of the whole piece):

    * authentic: V or V7 -> I/i (``perfect`` when both in root position, top voice on tonic)
    * plagal: IV/iv -> I/i
    * deceptive: V or V7 -> vi (major) / VI (minor)
    * half: any other chord -> V
    """
    key = key if key is not None else estimate_key(score)
    if key is None:
        return []
    tonic, minor = key
    chords = chords if chords is not None else chords_per_beat(score, (tonic, minor))
    events = _chord_events(chords)
    event_of_beat = np.full(len(chords), -1)
    for k, (a, b) in enumerate(events):
        event_of_beat[a : b + 1] = k
    beat_ticks = np.array([c.tick for c in chords])
    top = _top_voice(score)
    found: dict[int, Cadence] = {}
    for t in phrase_end_ticks(score):
        k = int(event_of_beat[max(int(np.searchsorted(beat_ticks, t, side="right")) - 1, 0)])
        if k < 1:
            continue
        prev, cur = chords[events[k - 1][0]], chords[events[k][0]]
        cad = _classify(prev, cur, tonic, minor, _top_pitch_class(top, cur.tick))
        if cad is not None:
            found[cur.tick] = cad
    return [found[t] for t in sorted(found)]


def _top_pitch_class(top: np.ndarray, tick: int) -> int | None:
    if len(top) == 0:
        return None
    sounding = (top["start"] <= tick) & (top["start"] + top["duration"] > tick)
    if not sounding.any():
        sounding = top["start"] >= tick
        if not sounding.any():
            return None
    return int(top["pitch"][np.flatnonzero(sounding)[0]]) % 12


def _classify(
    prev: BeatChord, cur: BeatChord, tonic: int, minor: bool, top_pc: int | None
) -> Cadence | None:
    a, b = prev.chord, cur.chord
    if a is None or b is None:
        return None
    da, db = (a.root - tonic) % 12, (b.root - tonic) % 12
    a_dominant = da == 7 and a.quality in DOMINANT_QUALITIES
    b_tonic = db == 0 and b.quality in ("maj", "min")
    kind = None
    perfect = None
    if a_dominant and b_tonic:
        kind = "authentic"
        perfect = a.bass == a.root and b.bass == b.root and top_pc == tonic
    elif da == 5 and a.quality in ("maj", "min") and b_tonic:
        kind = "plagal"
    elif a_dominant and (
        (not minor and db == 9 and b.quality == "min") or (minor and db == 8 and b.quality == "maj")
    ):
        kind = "deceptive"
    elif db == 7 and b.quality in DOMINANT_QUALITIES and not _same(a, b):
        kind = "half"
    if kind is None:
        return None
    return Cadence(
        kind, cur.bar, cur.beat, cur.tick, (prev.numeral or "", cur.numeral or ""), perfect
    )
