"""The composers' chord alphabet: symbols ``root * 4 + quality``, labels and Roman numerals."""

from __future__ import annotations

import numpy as np
import pytest

from musegen.compose.chords import (
    NO_CHORD,
    QUALITIES,
    chord_pcs,
    chord_symbol_name,
    label_chords,
    roman_symbol,
)
from musegen.compose.scores import chord_track_parts
from musegen.errors import MusegenError


def test_symbols_are_root_times_four_plus_quality() -> None:
    assert QUALITIES == ("maj", "min", "dim", "dom7") and NO_CHORD == 48
    assert chord_pcs(7 * 4 + 3) == (7, 11, 2, 5)  # G7, root first
    assert chord_pcs(9 * 4 + 1) == (9, 0, 4)
    assert chord_pcs(NO_CHORD) == ()
    names = [chord_symbol_name(s) for s in (0, 9 * 4 + 1, 11 * 4 + 2, 7 * 4 + 3, NO_CHORD)]
    assert names == ["C", "Am", "Bdim", "G7", "N.C."]


def test_labels_prefer_triads_and_silence_is_no_chord() -> None:
    w = np.zeros((4, 12))
    w[0, [0, 4, 7]] = 480
    w[1, [7, 11, 2]] = 480
    w[1, 5] = 120  # a passing F over G: still weight inside minus half outside
    w[2, [0, 4]] = 480  # C and E only: C major (first of the tied)
    assert label_chords(w).tolist() == [0, 7 * 4 + 3, 0, NO_CHORD]
    assert label_chords(w[0]).tolist() == [0]  # a single row


def test_roman_numerals_become_symbols() -> None:
    major, minor = (0, False), (9, True)
    assert [roman_symbol(r, major) for r in ("I", "vi", "V7", "vii°", "bVII")] == [
        0,
        9 * 4 + 1,
        7 * 4 + 3,
        11 * 4 + 2,
        10 * 4,
    ]
    assert [roman_symbol(r, minor) for r in ("i", "iv", "V", "VI", "viio")] == [
        9 * 4 + 1,
        2 * 4 + 1,
        4 * 4,
        5 * 4,
        8 * 4 + 2,
    ]
    # seventh chords the alphabet lacks become their triads; the inversion is dropped
    assert roman_symbol("ii7", major) == roman_symbol("ii", major) == 2 * 4 + 1
    assert roman_symbol("vii°7", minor) == 8 * 4 + 2
    assert roman_symbol("V65", major) == 7 * 4 + 3
    with pytest.raises(MusegenError, match="only major, minor"):
        roman_symbol("III+", minor)
    with pytest.raises(MusegenError, match="Roman numerals"):
        roman_symbol("Q", major)


def test_chord_track_holds_repeated_symbols() -> None:
    start, dur, pitch = chord_track_parts(np.array([0, 0, NO_CHORD, 7 * 4 + 3]), unit=480)
    assert start.tolist() == [0, 0, 0, 1440, 1440, 1440, 1440]
    assert dur.tolist() == [960] * 3 + [480] * 4
    assert pitch.tolist() == [48, 52, 55, 55, 59, 62, 65]
