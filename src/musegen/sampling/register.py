"""A key that fits the singers: move a written piece to where its voices sit in their ranges.

A model trained on transposed chorales writes in any key at any height; forbidding the notes
above a range while it writes does not lower the piece, it bends the lines (voices pressed
against the top of their range, chords respaced). So the model writes freely, and a finished
piece is moved, as a whole, by the shift that leaves the fewest notes outside the voices'
ranges (the smallest shift among equals), as a musician picks the key a choir can sing.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from musegen.score import Score


def best_shift(
    score: Score,
    ranges: Mapping[str, tuple[int, int]],
    max_shift: int = 6,
    centres: Mapping[str, float] | None = None,
) -> int:
    """The shift in ``[-max_shift, max_shift]`` leaving fewest notes of the voice-labelled
    tracks outside ``ranges`` (voice label -> inclusive MIDI range); among equals, with
    ``centres`` (voice label -> a mean pitch, e.g. the corpus's), the one that brings the
    voices' mean pitches nearest them; then the smaller shift. 0 when nothing is labelled."""
    pitches = {
        t.voice: t.notes["pitch"].astype(np.int64)
        for t in score.tracks
        if t.voice in ranges and len(t)
    }
    if not pitches:
        return 0

    def cost(shift: int) -> tuple[int, float, int]:
        outside, off_centre = 0, 0.0
        for voice, p in pitches.items():
            lo, hi = ranges[voice]
            q = p + shift
            outside += int(((q < lo) | (q > hi)).sum())
            if centres and voice in centres:
                off_centre += (float(q.mean()) - float(centres[voice])) ** 2
        return outside, round(off_centre, 6), abs(shift)

    return min(range(-max_shift, max_shift + 1), key=cost)


def fit_ranges(
    score: Score,
    ranges: Mapping[str, tuple[int, int]],
    max_shift: int = 6,
    centres: Mapping[str, float] | None = None,
) -> Score:
    """``score`` moved by :func:`best_shift` (the score itself when no shift helps)."""
    shift = best_shift(score, ranges, max_shift, centres)
    return score.transpose(shift) if shift else score
