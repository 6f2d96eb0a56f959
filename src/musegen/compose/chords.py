"""The chord alphabet of the algorithmic composers: major, minor and diminished triads and
dominant sevenths on 12 roots, as integer symbols ``root * 4 + quality`` (:data:`QUALITIES`),
plus :data:`NO_CHORD`. Markov chains count these symbols and saved models store them, so the
numbering is fixed.

Labelling and Roman numerals are :mod:`musegen.theory`'s, with this alphabet and its scoring
rule (:data:`SYMBOL_RULE`).
"""

from __future__ import annotations

import numpy as np

from musegen.errors import MusegenError
from musegen.theory import ROMAN_HELP, Chord, ChordRule, ChordVocabulary, best_chords, parse_roman

QUALITIES = ("maj", "min", "dim", "dom7")
NO_CHORD = len(QUALITIES) * 12  # symbol of "no chord" (one past the last chord)
SYMBOLS = ChordVocabulary(QUALITIES, by_root=True)  # row k is symbol k
# Weight inside the chord minus half the weight outside it, on the raw weights; of equal
# scores the chord with fewer notes wins (triads over seventh chords).
SYMBOL_RULE = ChordRule(normalise=False, outside=0.5, simpler=1e-6)
# Qualities of parsed numerals that the alphabet holds as a simpler chord.
_REDUCED = {"min7": "min", "maj7": "maj", "hdim7": "dim", "dim7": "dim"}


def label_chords(weights: np.ndarray) -> np.ndarray:
    """Chord symbol (or :data:`NO_CHORD`) per row of pitch-class weights ``[n, 12]``."""
    out = best_chords(weights, vocabulary=SYMBOLS, rule=SYMBOL_RULE)
    out[out < 0] = NO_CHORD
    return out


def chord_symbol(chord: Chord) -> int:
    """The symbol of a chord of one of :data:`QUALITIES` (its bass is not kept)."""
    return chord.root * len(QUALITIES) + QUALITIES.index(chord.quality)


def chord_pcs(symbol: int) -> tuple[int, ...]:
    """Pitch classes of a chord symbol, root first (empty for :data:`NO_CHORD`)."""
    if symbol >= NO_CHORD or symbol < 0:
        return ()
    root, quality = SYMBOLS.labels[int(symbol)]
    return Chord(root, quality, root).tones


def chord_symbol_name(symbol: int) -> str:
    """'C', 'Am', 'Bdim', 'G7' or 'N.C.'."""
    if symbol >= NO_CHORD or symbol < 0:
        return "N.C."
    root, quality = SYMBOLS.labels[int(symbol)]
    return Chord(root, quality, root).name


def roman_symbol(text: str, key: tuple[int, bool]) -> int:
    """A Roman numeral in ``key`` (:func:`musegen.theory.parse_roman`) as a chord symbol:
    seventh chords other than the dominant seventh become their triad, the inversion is
    dropped; an augmented chord has no symbol."""
    chord = parse_roman(text, key)
    quality = _REDUCED.get(chord.quality, chord.quality)
    if quality not in QUALITIES:
        raise MusegenError(
            f"chord {text!r}: only major, minor, diminished and dominant-seventh chords here; "
            f"{ROMAN_HELP}"
        )
    return chord_symbol(Chord(chord.root, quality, chord.root))
