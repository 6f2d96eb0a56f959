"""Yeh et al.'s harmonization metrics and RL-Chord's rewards on hand-made harmonizations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musegen.metrics import harmonization as H

C, F, G, FS = (0, 4, 7), (5, 9, 0), (7, 11, 2), (6, 10, 1)


def harm(melody: list[int], chords: list[tuple[int, ...]], fpb: int = 1) -> H.Harmonization:
    return H.Harmonization(np.array(melody), fpb, tuple(chords))


def test_chord_histogram_entropy_and_coverage() -> None:
    h = harm([60, 60, 65, 67], [C, C, F, G])
    assert H.chord_histogram_entropy(h) == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(4))
    assert H.chord_coverage(h) == 3
    assert H.chord_histogram_entropy(harm([60, 60], [C, C])) == 0.0
    assert H.chord_coverage(harm([60], [()])) == 0


def test_chord_tonal_distance_is_transposition_invariant() -> None:
    assert H.chord_tonal_distance(harm([60] * 3, [C, C, G])) == pytest.approx(
        H.chord_tonal_distance(harm([60] * 2, [C, F]))
    )
    assert math.isnan(H.chord_tonal_distance(harm([60, 60], [C, C])))  # no change
    assert H.chord_tonal_distance(harm([60] * 2, [C, G])) < H.chord_tonal_distance(
        harm([60] * 2, [C, FS])
    )


def test_chord_tone_ratio_counts_proper_non_chord_tones() -> None:
    assert H.ctnctr(harm([60, 64, 67], [C, C, C])) == 1.0
    assert H.ctnctr(harm([60, 62, 64], [C, C, C])) == 1.0  # D passes to E
    assert H.ctnctr(harm([60, 66], [C, C])) == 0.5  # F# goes nowhere
    assert H.ctnctr(harm([60, 60, 66], [C, C, C])) == 0.5  # one C note held two beats


def test_pitch_consistency_scores_intervals() -> None:
    assert H.pitch_consistency(harm([60, 64, 67], [C, C, C])) == pytest.approx(8 / 9)
    assert H.pitch_consistency(harm([66], [C])) == -1.0  # F#: tritone, 2nd, 7th over C, E, G
    assert H.pitch_consistency(harm([61], [C])) == pytest.approx(-1 / 3)  # a 6th over E
    assert math.isnan(H.pitch_consistency(harm([-1], [C])))


def test_melody_chord_tonal_distance() -> None:
    assert H.melody_chord_tonal_distance(harm([60], [C])) < H.melody_chord_tonal_distance(
        harm([60], [FS])
    )
    assert H.melody_chord_tonal_distance(harm([60], [(0,)])) == pytest.approx(0.0)


def test_fit_and_cadence_rewards() -> None:
    assert H.fit_reward(harm([60, 64, 66], [C, C, C])) == pytest.approx(2 / 3)
    assert H.fit_reward(harm([-1], [C])) == 0.0
    # two beats a note: every note ends a phrase, as does the last beat; the end is V-I
    h = harm([60, 60, 62, 62, 67, 67, 60, 60], [C, C, G, G, G, G, G, C])
    assert H.phrase_ends(h) == [0, 2, 4, 6, 7]
    assert H.cadence_reward(h) == pytest.approx((1 + 0.5 + 0.5 + 0.5 + 1) / 5 + 0.5)
    assert H.cadence_reward(harm([60], [F])) == 0.0


def test_yeh_metrics_names_all_six() -> None:
    values = H.yeh_metrics(harm([60, 62, 64, 65], [C, C, G, C]))
    assert list(values) == ["che", "cc", "ctd", "ctnctr", "pcs", "mctd"]
