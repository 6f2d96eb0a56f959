"""MuseGAN's metrics on hand-made scores with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musegen.metrics.musegan import (
    drum_pattern_rate,
    empty_bar_rate,
    empty_bar_rates,
    mean_tonal_distance,
    musegan_metrics,
    qualified_note_rate,
    set_metrics,
    tonal_centroids,
    tonal_distance,
    used_pitch_classes,
)
from musegen.score import Score, Track, make_notes

TPQ = 4  # a 16th note is one tick
BAR = 16


def track(notes: list[tuple[int, int, int]], drum: bool = False) -> Track:
    """A track from ``(pitch, start, duration)`` triples."""
    if not notes:
        return Track(is_drum=drum)
    p, s, d = zip(*notes, strict=True)
    return Track(make_notes(s, d, p), is_drum=drum)


def test_empty_bars_counted_per_track_and_over_n_bars() -> None:
    a = track([(60, 0, 16), (62, 32, 16)])  # bars 1 and 3 of 4
    b = track([(48, 0, 64)])  # one note through all four bars
    score = Score(TPQ, [a, b])
    assert empty_bar_rates(score, n_bars=4) == [0.25 * 2, 0.0]
    assert empty_bar_rate(score, n_bars=4) == pytest.approx(0.25)
    # by default the score's own bars: 4 (b ends at tick 64)
    assert empty_bar_rate(score) == pytest.approx(0.25)
    # a window of 8 bars counts the silent bars past the end
    assert empty_bar_rates(score, n_bars=8) == [0.75, 0.5]


def test_used_pitch_classes_over_non_empty_bars() -> None:
    a = track([(60, 0, 4), (64, 4, 4), (72, 8, 4), (67, 32, 16)])  # bar 1: C E C = 2; bar 3: G = 1
    score = Score(TPQ, [a])
    assert used_pitch_classes(score, n_bars=4) == pytest.approx(1.5)
    assert math.isnan(used_pitch_classes(Score(TPQ, [Track()]), n_bars=2))


def test_qualified_note_rate_threshold() -> None:
    # at tpq 4 a tick is a 16th: notes of 1, 1, 2 and 4 ticks
    score = Score(TPQ, [track([(60, 0, 1), (62, 1, 1), (64, 2, 2), (65, 4, 4)])])
    assert qualified_note_rate(score) == 1.0  # all at least a 32nd
    assert qualified_note_rate(score, min_quarters=0.5) == pytest.approx(0.5)
    assert math.isnan(qualified_note_rate(Score(TPQ, [])))


def test_drum_pattern_rate() -> None:
    score = Score(8, [track([(36, 0, 1), (38, 2, 1), (42, 3, 1), (42, 4, 1)], drum=True)])
    # tpq 8: 16ths fall on even ticks; the onset at tick 3 is off the grid
    assert drum_pattern_rate(score) == pytest.approx(0.75)
    assert math.isnan(drum_pattern_rate(Score(TPQ, [track([(60, 0, 4)])])))


def test_tonal_centroid_known_values() -> None:
    c = np.zeros(12)
    c[0] = 1
    z = tonal_centroids(c)[0]
    assert z == pytest.approx([0, 1, 0, 1, 0, 0.5])
    assert tonal_centroids(np.zeros(12))[0] == pytest.approx(np.zeros(6))


def test_tonal_distance_same_and_different_harmony() -> None:
    c_major = track([(60, 0, 16), (64, 0, 16), (67, 0, 16)])
    same = track([(48, 0, 16), (52, 0, 16), (55, 0, 16)])  # C major an octave down
    tritone = track([(54, 0, 16), (58, 0, 16), (61, 0, 16)])  # F# major
    assert tonal_distance(Score(TPQ, [c_major, same]), 0, 1) == pytest.approx(0.0)
    far = tonal_distance(Score(TPQ, [c_major, tritone]), 0, 1)
    near = tonal_distance(
        Score(TPQ, [c_major, track([(55, 0, 16), (59, 0, 16), (62, 0, 16)])]), 0, 1
    )
    assert far > near > 0  # G major is nearer C major than F# major is
    # no bar where both sound: NaN
    apart = Score(TPQ, [track([(60, 0, 16)]), track([(60, 16, 16)])])
    assert math.isnan(tonal_distance(apart, 0, 1))
    assert math.isnan(mean_tonal_distance(Score(TPQ, [c_major])))


def test_all_metrics_and_set_means() -> None:
    a = Score(TPQ, [track([(60, 0, 16)]), track([(48, 0, 16)])])
    b = Score(TPQ, [track([(60, 0, 8), (62, 8, 8)]), track([])])
    row = musegan_metrics(a)
    assert set(row) == {
        "empty_bar_rate", "used_pitch_classes", "qualified_note_rate",
        "drum_pattern_rate", "tonal_distance",
    }  # fmt: skip
    assert row["tonal_distance"] == pytest.approx(0.0)
    assert math.isnan(row["drum_pattern_rate"])
    both = set_metrics([a, b])
    assert both["empty_bar_rate"] == pytest.approx((0.0 + 0.5) / 2)
    assert both["used_pitch_classes"] == pytest.approx((1.0 + 2.0) / 2)
    assert both["tonal_distance"] == pytest.approx(0.0)  # b has no pair: left out


def test_report_shows_the_musegan_figures() -> None:
    from musegen.evaluate.report import Report, _harmony_html
    from musegen.evaluate.sets import PieceSet

    a = Score(TPQ, [track([(60, 0, 16)]), track([(48, 0, 16)])])
    report = Report(PieceSet("gen", [("a", a)]), PieceSet("ref", [("a", a)]))
    assert report.musegan_summary("generated")["tonal_distance"] == pytest.approx(0.0)
    assert "MuseGAN metrics" in _harmony_html(report)
