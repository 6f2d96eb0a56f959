"""Chords per beat and cadences on hand-made progressions (the theory under them, keys,
templates and numerals, is tested in tests/test_theory.py)."""

from __future__ import annotations

import pytest

from metricshelpers import CLEAN, TPQ, block_chords, satb
from musegen.metrics.harmony import chords_per_beat, detect_cadences, phrase_end_ticks
from musegen.score import Note, Score, Track
from musegen.theory import estimate_key

C, D, E, F, G, A, B = 60, 62, 64, 65, 67, 69, 71


def labels(chords: list[list[int]]) -> list[str | None]:
    return [
        c.chord.name if c.chord else None for c in chords_per_beat(block_chords(chords), (0, False))
    ]


def test_template_chords_are_recognised() -> None:
    got = labels(
        [
            [C, E, G], [A - 12, C, E], [B - 12, D, F], [C, E, G + 1], [G - 12, B - 12, D, F],
            [C, E, G, B], [F - 12, A - 12, C, D], [B - 12, D, F, A], [B - 12, D, F, A - 1],
        ]
    )  # fmt: skip
    assert got == ["C", "Am", "Bdim", "Caug", "G7", "Cmaj7", "Dm7/F", "Bø7", "B°7"]


def test_silent_beats_have_no_chord() -> None:
    score = Score(
        tpq=TPQ,
        tracks=[Track.from_notes([Note(p, 0, TPQ) for p in (C, E, G)] + [Note(C, 2 * TPQ, TPQ)])],
    )
    beats = chords_per_beat(score, (0, False))
    assert beats[1].chord is None and beats[1].numeral is None
    assert (beats[2].bar, beats[2].beat) == (1, 3.0)


def test_a_passing_seventh_does_not_make_a_seventh_chord() -> None:
    held = [Note(p, 0, TPQ) for p in (C - 12, E - 12, G - 12)]
    passing = Score(
        tpq=TPQ,
        tracks=[Track.from_notes([*held, Note(C, 0, TPQ // 2), Note(70, TPQ // 2, TPQ // 2)])],
    )
    assert chords_per_beat(passing, (0, False))[0].chord.name == "C"  # type: ignore[union-attr]
    seventh = Score(tpq=TPQ, tracks=[Track.from_notes([*held, Note(70, 0, TPQ)])])
    assert chords_per_beat(seventh, (0, False))[0].chord.name == "C7"  # type: ignore[union-attr]


def test_final_authentic_cadence() -> None:
    score = satb(CLEAN)
    assert estimate_key(score) is not None and str(estimate_key(score)) == "C major"
    cads = detect_cadences(score)
    assert [(c.kind, c.bar, c.beat, c.chords, c.perfect) for c in cads] == [
        ("authentic", 2, 4.0, ("V", "I"), True)
    ]


def test_half_cadence_at_a_long_note_then_authentic() -> None:
    chords = [CLEAN[0], CLEAN[1], CLEAN[2], CLEAN[0], CLEAN[1], CLEAN[2], (72, 67, 64, 52)]
    score = satb(chords, beats=[1, 1, 2, 1, 1, 1, 1])  # V held two beats ends phrase 1
    assert (phrase_end_ticks(score) // TPQ).tolist() == [2, 7]
    cads = detect_cadences(score)
    assert [(c.kind, c.bar, c.beat) for c in cads] == [("half", 1, 3.0), ("authentic", 2, 4.0)]
    assert cads[1].perfect is False  # I6 (E in the bass): an imperfect authentic cadence


def test_rest_ends_a_phrase() -> None:
    score = satb([CLEAN[1], CLEAN[2], CLEAN[0], CLEAN[0]])
    for t in score.tracks:  # silence on beat 3, then the tonic again
        t.notes = t.notes[[0, 1, 3]]
    assert (phrase_end_ticks(score) // TPQ).tolist() == [1, 3]
    assert [c.kind for c in detect_cadences(score, (0, False))] == ["half", "authentic"]


@pytest.mark.parametrize(
    ("last_two", "kind"),
    [
        ([(72, 69, 65, 53), (72, 67, 64, 48)], "plagal"),  # IV - I
        ([(71, 67, 62, 55), (72, 69, 64, 57)], "deceptive"),  # V - vi
        ([(72, 69, 65, 53), (71, 67, 62, 55)], "half"),  # IV - V
    ],
)
def test_final_cadence_kinds(last_two: list[tuple[int, int, int, int]], kind: str) -> None:
    score = satb([CLEAN[0], CLEAN[1], CLEAN[2], CLEAN[0], *last_two])
    cads = detect_cadences(score, (0, False))
    assert cads[-1].kind == kind and (cads[-1].bar, cads[-1].beat) == (2, 2.0)


def test_deceptive_cadence_in_minor_goes_to_VI() -> None:
    # A minor: i iv V VI
    score = satb([(72, 69, 64, 57), (74, 69, 65, 50), (71, 68, 64, 52), (72, 69, 65, 53)])
    assert [c.kind for c in detect_cadences(score, (9, True))] == ["deceptive"]
