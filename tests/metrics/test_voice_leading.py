"""The voice-leading checker: a clean progression has no errors, and each planted error is
found with its kind, voices, bar and beat."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metricshelpers import CLEAN, TPQ, satb
from musegen.errors import MusegenError
from musegen.metrics.voice_leading import KINDS, check_voice_leading, is_augmented, summarize
from musegen.score import Note, Score, TimeSignature, Track

# name -> (chords replaced in CLEAN by index, the one error expected: kind, voices, bar, beat)
PLANTED = {
    "parallel fifths": ({5: (74, 69, 62, 55)}, ("parallel_fifths", ("T", "B"), 2, 2.0)),
    "parallel octaves": ({1: (77, 69, 65, 53)}, ("parallel_octaves", ("S", "B"), 1, 2.0)),
    "parallel unisons": (
        {4: (72, 72, 64, 57), 5: (74, 74, 62, 50)},
        ("parallel_octaves", ("S", "A"), 2, 2.0),
    ),
    "hidden fifths": (
        {6: (76, 67, 62, 55), 7: (67, 64, 60, 48)},
        ("hidden_fifths", ("S", "B"), 2, 4.0),
    ),
    "hidden octaves": ({2: (76, 67, 62, 55)}, ("hidden_octaves", ("S", "B"), 1, 4.0)),
    "voice crossing": (
        {1: (72, 65, 67, 53), 2: (71, 65, 62, 55)},
        ("voice_crossing", ("A", "T"), 1, 2.0),
    ),
    "voice overlap": (
        {5: (74, 65, 53, 50), 6: (74, 67, 62, 43)},
        ("voice_overlap", ("T", "B"), 2, 2.0),
    ),
    "spacing": ({4: (72, 69, 64, 40)}, ("spacing", ("T", "B"), 2, 1.0)),
    "range": ({5: (81, 69, 62, 50)}, ("range", ("S",), 2, 2.0)),
    "unresolved leading tone": (
        {3: (74, 67, 64, 48)},
        ("unresolved_leading_tone", ("S",), 1, 3.0),
    ),
    "large leap": (
        {3: (72, 67, 64, 60), 4: (72, 69, 64, 45)},
        ("large_leap", ("B",), 2, 1.0),
    ),
    "augmented interval": ({2: (71, 67, 62, 59)}, ("augmented_interval", ("B",), 1, 3.0)),
}


def planted(changes: dict[int, tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    chords = list(CLEAN)
    for i, chord in changes.items():
        chords[i] = chord
    return chords


def found(report) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [(e.kind, e.voices, e.bar, e.beat) for e in report.errors]


def test_the_clean_progression_has_no_errors() -> None:
    report = check_voice_leading(satb(CLEAN))
    assert report.key == "C major"
    assert report.errors == []
    assert (report.n_beats, report.n_transitions) == (8, 7)
    assert report.rates_per_100_beats()["total"] == 0.0


@pytest.mark.parametrize("name", list(PLANTED))
def test_each_planted_error_is_found_where_it_is(name: str) -> None:
    changes, expected = PLANTED[name]
    report = check_voice_leading(satb(planted(changes)))
    assert found(report) == [expected]
    assert report.counts()[expected[0]] == 1
    assert report.rates_per_100_beats()[expected[0]] == 100 / 8
    assert report.rates_per_100_transitions()["total"] == pytest.approx(100 / report.n_transitions)


def test_every_kind_is_planted() -> None:
    assert {kind for _, (kind, *_rest) in PLANTED.values()} == set(KINDS)


def test_four_unlabelled_tracks_and_step_arrays_give_the_same_errors() -> None:
    chords = planted(PLANTED["parallel fifths"][0])
    labelled = found(check_voice_leading(satb(chords)))
    assert found(check_voice_leading(satb(chords, labels=False))) == labelled
    steps = np.repeat(np.array(chords, dtype=np.int16), 4, axis=0)  # 4 sixteenths per chord
    assert found(check_voice_leading(steps)) == labelled


def test_bar_and_beat_follow_the_time_signature() -> None:
    score = satb(planted(PLANTED["parallel fifths"][0]))  # chord 6 of a 3/4 piece: bar 2 beat 3
    score.time_signatures = [TimeSignature(0, 3, 4)]
    assert found(check_voice_leading(score)) == [("parallel_fifths", ("T", "B"), 2, 3.0)]
    eighths = satb(planted(PLANTED["range"][0]), beat=TPQ // 2)  # chord 6 in eighths: beat 3.5
    assert found(check_voice_leading(eighths)) == [("range", ("S",), 1, 3.5)]


def test_a_given_key_is_used() -> None:
    chords = planted(PLANTED["unresolved leading tone"][0])
    report = check_voice_leading(satb(chords), key=(7, False))  # G major: F# is the leading tone
    assert report.key == "G major"
    assert report.counts()["unresolved_leading_tone"] == 0


def test_augmented_intervals_are_spelled_in_the_key() -> None:
    assert is_augmented(65, 71, 0, False)  # F-B in C major: augmented fourth
    assert not is_augmented(71, 77, 0, False)  # B-F: diminished fifth
    assert is_augmented(68, 71, 0, True)  # Ab-B in C minor: augmented second
    assert not is_augmented(68, 71, 0, False)  # Ab is not in C major: not judged
    assert not is_augmented(60, 67, 0, False)


def test_not_four_voices_is_an_error_that_says_what_is_needed() -> None:
    three = Score(tracks=[Track.from_notes([Note(60 + k, 0, TPQ)]) for k in range(3)])
    with pytest.raises(MusegenError, match="four voices"):
        check_voice_leading(three)


def test_summary_pools_pieces_and_serialises() -> None:
    reports = [
        check_voice_leading(satb(CLEAN)),
        check_voice_leading(satb(planted(PLANTED["range"][0]))),
    ]
    s = summarize(reports)
    assert (s["pieces"], s["beats"], s["errors_total"]) == (2, 16, 1)
    assert s["per_100_beats"]["range"] == 100 / 16
    d = reports[1].to_dict()
    assert d["errors"] == [
        {"kind": "range", "voices": "S", "bar": 2, "beat": 2.0, "detail": "A5 outside C4-G5"}
    ]
    assert math.isnan(summarize([])["per_100_beats"]["total"])
