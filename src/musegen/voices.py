"""Voice separation: the notes of a merged score dealt out to ``n`` monophonic voices.

A model that writes four-part chorales as one stream of notes (the shipped ``bach`` model: its
REMI tokens carry no voice), a MIDI file whose chorale sits on one piano track, or a user's
chord sketch all come as one track; voice-leading analysis, notation and part-wise rendering
need the voices apart. :func:`separate_voices` deals the notes out onset by onset, high to low,
choosing for the new notes at each onset the voices that cost least:

* a voice's distance from the pitch it sang last (before its first note, the middle of its
  usual range), in semitones: voices move by small steps;
* ``cut`` for a voice still holding a note (the held note is cut short at the onset);
* ``cross`` for each holding voice the new note would cross (a new alto note above the held
  soprano note).

The new notes keep their order (the highest goes to the highest of the chosen voices), so the
choice is among the order-preserving ways to place ``k`` notes in ``n`` voices: at most
``C(n, k)``. More new notes than voices: the highest and lowest always stay, the inner ones
that fit best fill the inner voices, and the rest go to an extra track (nothing is lost).

How often the notes land in the voice that sings them, on Bach's chorales merged to one
track and dealt out again: ``benchmarks/voice_separation.py`` (figures in docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import numpy as np

from musegen.score import VOICES, Score, Track, notes_array, sort_notes

# the middle of each voice's usual range in four-part chorales (S, A, T, B)
SATB_CENTRES = (67, 62, 55, 48)
CUT = 16.0  # cost of cutting a held note short to give its voice a new one
CROSS = 24.0  # cost of each held voice a new note crosses
SATB_NAMES = ("Soprano", "Alto", "Tenor", "Bass")


def separate_voices(score: Score, n: int = 4, cut: float = CUT, cross: float = CROSS) -> Score:
    """``score``'s pitched notes dealt out to ``n`` voices, highest voice first (four voices:
    tracks labelled S, A, T, B and named Soprano … Bass). Notes that find no voice (more at
    one onset than there are voices) go to a last track named "Other"; drum tracks are kept
    as they are. Held notes may be cut short; no note is dropped."""
    if n < 1:
        raise ValueError(f"voices must be >= 1, got {n}")
    pitched = [t for t in score.tracks if not t.is_drum]
    drums = [t.copy() for t in score.tracks if t.is_drum]
    notes = np.concatenate([t.notes for t in pitched]) if pitched else notes_array()
    voice, duration = _deal(notes, n, _centres(n), cut, cross)
    notes["duration"] = duration
    program = pitched[0].program if pitched else 0
    four = n == len(VOICES)
    tracks = [
        Track(
            sort_notes(notes[voice == v]),
            program=program,
            name=SATB_NAMES[v] if four else f"Voice {v + 1}",
            voice=VOICES[v] if four else None,
        )
        for v in range(n)
    ]
    if (voice == n).any():
        tracks.append(Track(sort_notes(notes[voice == n]), program=program, name="Other"))
    return replace(score, tracks=[*tracks, *drums])


def _centres(n: int) -> np.ndarray:
    """Where each of ``n`` voices starts, high to low: SATB's centres spread to ``n``."""
    if n == 1:
        return np.array([60.0])
    return np.interp(np.linspace(0, 3, n), np.arange(4), SATB_CENTRES)


def _deal(
    notes: np.ndarray, n: int, centres: np.ndarray, cut: float, cross: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each note's voice (``n`` = none) and its duration after cuts."""
    start = notes["start"].astype(np.int64)
    pitch = notes["pitch"].astype(np.int64)
    duration = notes["duration"].astype(np.int64).copy()
    order = np.lexsort((-pitch, start))  # by onset, high to low
    voice = np.full(len(notes), n, dtype=np.int64)
    last = centres.astype(float).copy()  # the pitch each voice sang last
    held = np.full(n, -1, dtype=np.int64)  # the note each voice holds (-1: none)
    cuts = np.flatnonzero(np.diff(start[order])) + 1
    for group in np.split(order, cuts) if len(order) else []:
        t = int(start[group[0]])
        ends = np.where(held >= 0, start[held] + duration[held], t)
        holding = ends > t
        placed = _choose(pitch[group], pitch[held], holding, last, n, cut, cross)
        for note, v in placed:
            i = int(group[note])
            if holding[v]:  # cut the held note short
                duration[held[v]] = t - start[held[v]]
            voice[i], held[v], last[v] = v, i, pitch[i]
    return voice, duration


def _choose(
    new: np.ndarray,
    held_pitch: np.ndarray,
    holding: np.ndarray,
    last: np.ndarray,
    n: int,
    cut: float,
    cross: float,
) -> list[tuple[int, int]]:
    """(new note, voice) pairs for the new notes at one onset (``new`` high to low)."""
    k = len(new)
    candidates: list[tuple[int, ...]] = [tuple(range(k))]
    if k > n == 1:  # one voice: the top note
        candidates = [(0,)]
    elif k > n:  # the outer notes stay; the inner ones that fit best fill the inner voices
        candidates = [(0, *inner, k - 1) for inner in combinations(range(1, k - 1), n - 2)]
    best: tuple[float, list[tuple[int, int]]] | None = None
    for chosen in candidates:
        for voices in combinations(range(n), len(chosen)):
            cost = 0.0
            for note, v in zip(chosen, voices, strict=True):
                p = new[note]
                cost += abs(p - last[v]) + (cut if holding[v] else 0.0)
                for u in np.flatnonzero(holding):
                    if u in voices:
                        continue
                    if (u < v and held_pitch[u] < p) or (u > v and held_pitch[u] > p):
                        cost += cross
            if best is None or cost < best[0]:
                best = (cost, list(zip(chosen, voices, strict=True)))
    assert best is not None
    return best[1]
