"""How well chords fit a melody: Yeh et al. (2021)'s six harmonization metrics and RL-Chord's
harmonic rewards, as pure functions of a :class:`Harmonization`.

Yeh, Hsiao, Fukayama, Kitahara, Genchel, Liu, Dong, Chen, Leong, Yang (2021), "Automatic
melody harmonization with triad chords: a comparative study" (J. New Music Research):

=====================  ==================================================================
``che``                chord histogram entropy (nats) of the chords counted per beat:
                       higher, more varied chords
``cc``                 chord coverage: distinct chords used (``N`` not counted)
``ctd``                chord tonal distance: mean distance between the tonal centroids
                       (Harte et al. 2006) of successive different chords: lower, smoother
``ctnctr``             chord-tone to non-chord-tone ratio ``(n_c + n_p) / (n_c + n_n)``
                       over melody notes (``n_p``: non-chord tones followed by a note at
                       most 2 semitones away): higher, better fit
``pcs``                pitch consistency score: over every melody frame and chord tone,
                       +1 for a unison, third, fifth or sixth between them, 0 for a fourth,
                       -1 otherwise: higher, more consonant
``mctd``               melody-chord tonal distance: each melody note's tonal centroid to its
                       chord's, weighted by duration: lower, closer
=====================  ==================================================================

Rewards (RL-Chord's modules, our definitions): :func:`fit_reward` (the share of melody time
on chord tones) and :func:`cadence_reward` (tonic or dominant at phrase ends, a V-I at the
end); the progression reward needs a corpus's chord bigram and lives with the trainer
(:mod:`musegen.train.rl_chord`). All functions return NaN (metrics) or 0 (rewards) when
there is nothing to measure.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from musegen.metrics.rewards import equal_runs
from musegen.theory import TONAL_CENTROID

NAN = float("nan")
CONSONANT = frozenset({0, 3, 4, 7, 8, 9})  # unison/octave, thirds, fifth, sixths
LONG_NOTE_BEATS = 2  # a melody note this long (or a rest) ends a phrase


@dataclass(frozen=True)
class Harmonization:
    """A melody on a frame grid (MIDI pitch per frame, -1 for a rest; ``frames_per_beat``
    frames a beat) and one chord per beat (its pitch classes, root first; empty: none)."""

    melody: np.ndarray
    frames_per_beat: int
    chords: tuple[tuple[int, ...], ...]

    @property
    def beats(self) -> int:
        return len(self.chords)

    def frame_chords(self) -> list[tuple[int, ...]]:
        """The chord of each melody frame."""
        n = len(self.melody)
        return [self.chords[min(f // self.frames_per_beat, self.beats - 1)] for f in range(n)]

    def notes(self) -> list[tuple[int, int, int]]:
        """The melody's notes as (start frame, frames, pitch): runs of one pitch."""
        m = np.asarray(self.melody)
        return [(f, n, int(m[f])) for f, n in equal_runs(m) if m[f] >= 0]


def tonal_centroid(pcs: tuple[int, ...] | list[int]) -> np.ndarray:
    """Harte, Sandler & Gasser (2006)'s 6-D tonal centroid of a set of pitch classes
    (:data:`musegen.theory.TONAL_CENTROID`: circles of fifths, minor thirds and major thirds,
    radii 1, 1, 0.5), each listed class weighed once; zeros if empty."""
    if not len(pcs):
        return np.zeros(6)
    return TONAL_CENTROID[:, np.asarray(pcs, dtype=np.int64) % 12].mean(axis=1)


def chord_key(chord: tuple[int, ...]) -> tuple[int, ...]:
    """A chord's identity: its pitch classes as a sorted set with the root first."""
    return (chord[0], *sorted(set(chord[1:]) - {chord[0]})) if chord else ()


def chord_histogram_entropy(h: Harmonization) -> float:
    keys = [chord_key(c) for c in h.chords]
    if not keys:
        return NAN
    _, counts = np.unique(np.array([str(k) for k in keys]), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def chord_coverage(h: Harmonization) -> float:
    return float(len({chord_key(c) for c in h.chords if c})) if h.beats else NAN


def chord_tonal_distance(h: Harmonization) -> float:
    events = [
        c
        for i, c in enumerate(h.chords)
        if c and (i == 0 or chord_key(c) != chord_key(h.chords[i - 1]))
    ]
    if len(events) < 2:
        return NAN
    d = [
        np.linalg.norm(tonal_centroid(a) - tonal_centroid(b)) for a, b in itertools.pairwise(events)
    ]
    return float(np.mean(d))


def ctnctr(h: Harmonization) -> float:
    notes = h.notes()
    chords = h.frame_chords()
    n_c = n_n = n_p = 0
    for i, (start, _, pitch) in enumerate(notes):
        tones = {p % 12 for p in chords[start]}
        if pitch % 12 in tones:
            n_c += 1
            continue
        n_n += 1
        if i + 1 < len(notes) and abs(notes[i + 1][2] - pitch) <= 2:
            n_p += 1
    return (n_c + n_p) / (n_c + n_n) if n_c + n_n else NAN


def pitch_consistency(h: Harmonization) -> float:
    chords = h.frame_chords()
    scores = []
    for f, pitch in enumerate(np.asarray(h.melody)):
        if pitch < 0:
            continue
        for tone in chords[f]:
            interval = (int(pitch) - tone) % 12
            scores.append(1 if interval in CONSONANT else 0 if interval == 5 else -1)
    return float(np.mean(scores)) if scores else NAN


def melody_chord_tonal_distance(h: Harmonization) -> float:
    chords = h.frame_chords()
    total = weight = 0.0
    for start, frames, pitch in h.notes():
        chord = chords[start]
        if not chord:
            continue
        total += frames * float(
            np.linalg.norm(tonal_centroid([pitch % 12]) - tonal_centroid(chord))
        )
        weight += frames
    return total / weight if weight else NAN


YEH_METRICS = {  # name -> (function, higher is better)
    "che": (chord_histogram_entropy, True),
    "cc": (chord_coverage, True),
    "ctd": (chord_tonal_distance, False),
    "ctnctr": (ctnctr, True),
    "pcs": (pitch_consistency, True),
    "mctd": (melody_chord_tonal_distance, False),
}


def yeh_metrics(h: Harmonization) -> dict[str, float]:
    """All six metrics of one harmonization."""
    return {name: fn(h) for name, (fn, _) in YEH_METRICS.items()}


# ----------------------------------------------------------------------------- rewards
def fit_reward(h: Harmonization) -> float:
    """The share of sounding melody frames whose pitch class is a tone of their chord."""
    chords = h.frame_chords()
    m = np.asarray(h.melody)
    on = [f for f in range(len(m)) if m[f] >= 0]
    if not on:
        return 0.0
    return float(np.mean([m[f] % 12 in chords[f] for f in on]))


def phrase_ends(h: Harmonization) -> list[int]:
    """Beats that end a phrase: the beat of a melody note (or rest) at least
    :data:`LONG_NOTE_BEATS` long, and the last beat."""
    ends = set()
    long = LONG_NOTE_BEATS * h.frames_per_beat
    for f, n in equal_runs(np.asarray(h.melody)):
        if n >= long:
            ends.add(min(f // h.frames_per_beat, h.beats - 1))
    if h.beats:
        ends.add(h.beats - 1)
    return sorted(ends)


def cadence_reward(h: Harmonization, tonic: int = 0) -> float:
    """At each phrase end: 1 for the tonic chord, 0.5 for the dominant (a half cadence), else
    0, averaged; plus 0.5 when the piece ends on a dominant-to-tonic (V-I) change."""
    ends = phrase_ends(h)
    if not ends:
        return 0.0
    dominant = (tonic + 7) % 12

    def root(c: tuple[int, ...]) -> int | None:
        return c[0] if c else None

    score = np.mean(
        [
            1.0 if root(h.chords[b]) == tonic else 0.5 if root(h.chords[b]) == dominant else 0.0
            for b in ends
        ]
    )
    last = h.beats - 1
    before = next(
        (
            h.chords[b]
            for b in range(last - 1, -1, -1)
            if chord_key(h.chords[b]) != chord_key(h.chords[last])
        ),
        (),
    )
    v_i = root(h.chords[last]) == tonic and root(before) == dominant
    return float(score + 0.5 * v_i)
