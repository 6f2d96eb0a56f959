"""Reading the melody of a score: its top line as one monophonic line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from musegen.errors import MusegenError
from musegen.score import Score, pitch_name


@dataclass
class Line:
    """A monophonic line: note columns in ticks, and whether a polyphonic input was reduced."""

    start: np.ndarray
    duration: np.ndarray
    pitch: np.ndarray
    tpq: int
    reduced: bool = False

    def __len__(self) -> int:
        return len(self.pitch)


def melody_line(score: Score, what: str = "melody") -> Line:
    """The top line of a score: its 'S' track if labelled, else the skyline of all tracks.

    A polyphonic input is reduced (documented choice, reported in ``Line.reduced``): at each
    onset the highest note wins, a lower note starting under a sounding higher one is
    dropped, and every kept note ends where the next kept note starts. No notes at all is a
    :class:`MusegenError`.
    """
    tracks = [t for t in score.tracks if not t.is_drum and len(t)]
    if not tracks:
        raise MusegenError(f"the {what} has no notes")
    soprano = [t for t in tracks if t.voice == "S"]
    notes = soprano[0].notes if soprano else np.concatenate([t.notes for t in tracks])
    order = np.lexsort((-notes["pitch"].astype(np.int64), notes["start"]))
    notes = notes[order]
    keep: list[int] = []
    end = -1
    for i in range(len(notes)):
        s = int(notes["start"][i])
        if keep:
            j = keep[-1]
            if s == int(notes["start"][j]):
                continue  # a lower note at the same onset
            if s < end and notes["pitch"][i] < notes["pitch"][j]:
                continue  # under a sounding higher note
        keep.append(i)
        end = s + int(notes["duration"][i])
    kept = notes[keep].copy()
    nxt = np.append(kept["start"][1:], np.iinfo(np.int64).max)
    kept["duration"] = np.maximum(np.minimum(kept["duration"], nxt - kept["start"]), 1)
    return Line(
        kept["start"].astype(np.int64),
        kept["duration"].astype(np.int64),
        kept["pitch"].astype(np.int64),
        score.tpq,
        reduced=len(kept) < len(notes),
    )


def pitches_text(pitches: Sequence[int]) -> str:
    """``[60, 62]`` -> ``"C4 D4"``."""
    return " ".join(pitch_name(int(p)) for p in pitches)
