"""Tiny scores for the metric tests, built note by note so every expected value is known."""

from __future__ import annotations

from collections.abc import Sequence

from musegen.score import Note, Score, TimeSignature, Track

TPQ = 480
VOICE_NAMES = {"S": "Soprano", "A": "Alto", "T": "Tenor", "B": "Bass"}

# A clean four-part progression in C major, one chord per quarter note, two bars of 4/4:
# I IV V I | vi ii V I. Each chord is (S, A, T, B) as MIDI pitches.
CLEAN = [
    (72, 67, 64, 48), (72, 69, 65, 53), (71, 67, 62, 55), (72, 67, 64, 48),
    (72, 69, 64, 57), (74, 69, 62, 50), (74, 71, 62, 55), (72, 67, 64, 48),
]  # fmt: skip


def one_track(
    notes: Sequence[tuple[int, int, int]], numerator: int = 4, denominator: int = 4
) -> Score:
    """A one-track score from ``(pitch, start, duration)`` in ticks at 480 per quarter."""
    return Score(
        tpq=TPQ,
        tracks=[Track.from_notes([Note(p, s, d) for p, s, d in notes])],
        time_signatures=[TimeSignature(0, numerator, denominator)],
    )


def satb(
    chords: Sequence[tuple[int, int, int, int]],
    beat: int = TPQ,
    labels: bool = True,
    beats: Sequence[int] | None = None,
) -> Score:
    """Four tracks (S, A, T, B) holding one note per chord; chord ``i`` lasts ``beats[i]``
    beats of ``beat`` ticks (default: one each)."""
    lengths = [beat * b for b in beats] if beats is not None else [beat] * len(chords)
    starts = [sum(lengths[:i]) for i in range(len(chords))]
    tracks = []
    for v, name in enumerate(("S", "A", "T", "B")):
        notes = [Note(c[v], s, n) for c, s, n in zip(chords, starts, lengths, strict=True)]
        tracks.append(
            Track.from_notes(notes, voice=name if labels else None, name=VOICE_NAMES[name])
        )
    return Score(tpq=TPQ, tracks=tracks, time_signatures=[TimeSignature(0, 4, 4)])


def block_chords(chords: Sequence[Sequence[int]], beat: int = TPQ) -> Score:
    """One track: each chord's pitches together for one beat, one chord per beat."""
    notes = [Note(p, i * beat, beat) for i, chord in enumerate(chords) for p in chord]
    return Score(
        tpq=TPQ, tracks=[Track.from_notes(notes)], time_signatures=[TimeSignature(0, 4, 4)]
    )
