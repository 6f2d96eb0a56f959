"""Building the scores the algorithmic composers write: parts with tempo, meter and key, and
block chords for a chord track."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from musegen.compose.chords import chord_pcs
from musegen.score import Score, Tempo, TimeSignature, Track, make_notes
from musegen.theory import key_signature


def build_score(
    parts: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    *,
    tpq: int = 480,
    qpm: float = 100.0,
    key: tuple[int, bool] | None = None,
    time_signature: tuple[int, int] = (4, 4),
    voices: Sequence[str | None] | None = None,
    program: int = 0,
) -> Score:
    """A score from ``(name, start, duration, pitch)`` parts in ticks, with tempo/meter/key."""
    tracks = []
    for i, (name, start, duration, pitch) in enumerate(parts):
        voice = voices[i] if voices else None
        tracks.append(
            Track(make_notes(start, duration, pitch, 80), program=program, name=name, voice=voice)
        )
    return Score(
        tpq=tpq,
        tracks=tracks,
        tempos=[Tempo(0, qpm)],
        time_signatures=[TimeSignature(0, *time_signature)],
        key_signatures=[key_signature(key)] if key is not None else [],
    )


def chord_track_parts(
    symbols: np.ndarray, unit: int, low: int = 48
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block chords (root position, close, from the octave above ``low``) for one symbol per
    ``unit`` ticks; a run of equal symbols becomes one held chord; N.C. is silent."""
    starts, durs, pitches = [], [], []
    i = 0
    while i < len(symbols):
        j = i
        while j + 1 < len(symbols) and symbols[j + 1] == symbols[i]:
            j += 1
        pcs = chord_pcs(int(symbols[i]))
        if pcs:
            root = low + (pcs[0] - low) % 12
            prev = root
            for k, pc in enumerate(pcs):
                p = root if k == 0 else prev + (pc - prev) % 12
                starts.append(i * unit)
                durs.append((j - i + 1) * unit)
                pitches.append(p)
                prev = p
        i = j + 1
    return np.array(starts, np.int64), np.array(durs, np.int64), np.array(pitches, np.int64)
