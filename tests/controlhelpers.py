"""Tiny scores with known chords and densities, for the describe and chord-control tests."""

from __future__ import annotations

from musegen.score import Score, TimeSignature, Track, make_notes

Q = 480
TRIADS = {"C": (60, 64, 67), "G": (55, 59, 62), "Am": (57, 60, 64), "F": (53, 57, 60)}


def progression(names: list[str], per_bar: list[int], program: int = 0) -> Score:
    """4/4 bars, each ``per_bar[i]`` even repeated triads of ``names[i]``."""
    notes = []
    for b, (name, n) in enumerate(zip(names, per_bar, strict=True)):
        for k in range(n):
            notes += [(b * 4 * Q + k * 4 * Q // n, 4 * Q // n, p) for p in TRIADS[name]]
    start, dur, pitch = zip(*notes, strict=True)
    track = Track(make_notes(start, dur, pitch, 80), program=program)
    return Score(tpq=Q, tracks=[track], time_signatures=[TimeSignature(0, 4, 4)])
