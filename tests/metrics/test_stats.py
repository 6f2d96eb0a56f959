"""Each statistic on a tiny score whose value is worked out by hand, NaN on empty input, and
the vectorised code against a plain-Python reference on random scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metricshelpers import TPQ, one_track
from musegen.metrics import stats
from musegen.score import Note, Score, TimeSignature, Track, make_notes
from reference_stats import features as reference_features
from reference_stats import histograms as reference_histograms

Q = TPQ  # a quarter note


def quarters(pitches: list[int], start: int = 0) -> list[tuple[int, int, int]]:
    """Consecutive quarter notes."""
    return [(p, start + i * Q, Q) for i, p in enumerate(pitches)]


def test_pitch_counts_and_range() -> None:
    s = one_track(quarters([60, 64, 67, 60, 72]))
    assert stats.pitch_count(s) == 4  # C4 E4 G4 C5
    assert stats.pitch_class_count(s) == 3  # C E G
    assert stats.pitch_range(s) == 12


def test_pitch_class_histogram_by_count_and_duration() -> None:
    s = one_track([(60, 0, Q), (72, Q, Q), (60, 2 * Q, Q), (67, 3 * Q, 5 * Q)])
    h = stats.pitch_class_histogram(s)
    assert h[0] == 0.75 and h[7] == 0.25 and h.sum() == 1
    d = stats.pitch_class_histogram(s, weight="duration")
    assert d[0] == pytest.approx(3 / 8) and d[7] == pytest.approx(5 / 8)


def test_pitch_class_entropy() -> None:
    assert stats.pitch_class_entropy(one_track(quarters([60, 62, 64, 65]))) == pytest.approx(2.0)
    assert stats.pitch_class_entropy(one_track(quarters([60, 72, 48]))) == 0.0
    assert stats.pitch_class_entropy(one_track(quarters(list(range(60, 72))))) == pytest.approx(
        math.log2(12)
    )


def test_pitch_class_transition_matrix_stays_within_tracks() -> None:
    melody = Track.from_notes([Note(p, i * Q, Q) for i, p in enumerate([60, 62, 60, 62])])
    other = Track.from_notes([Note(67, 4 * Q, Q), Note(69, 5 * Q, Q)])
    s = Score(tpq=TPQ, tracks=[melody, other])
    counts = stats.pitch_class_transition_matrix(s, normalize="none")
    assert counts[0, 2] == 2 and counts[2, 0] == 1 and counts[7, 9] == 1 and counts.sum() == 4
    assert stats.pitch_class_transition_matrix(s)[0, 2] == 0.5
    rows = stats.pitch_class_transition_matrix(s, normalize="row")
    assert rows[0, 2] == 1.0 and rows[2, 0] == 1.0 and rows[5].sum() == 0


def test_scale_consistency() -> None:
    c_major = [60, 62, 64, 65, 67, 69, 71]
    assert stats.scale_consistency(one_track(quarters(c_major))) == 1.0
    assert stats.scale_consistency(one_track(quarters([*c_major, 66]))) == 7 / 8
    # A harmonic minor (with G#) is one of the scales: all eight notes fit
    assert stats.scale_consistency(one_track(quarters([57, 59, 60, 62, 64, 65, 68, 69]))) == 1.0


def test_polyphony_and_polyphony_rate() -> None:
    s = one_track([(60, 0, 2 * Q), (64, 0, Q)])  # two notes for a beat, then one
    assert stats.polyphony(s) == 1.5
    assert stats.polyphony_rate(s) == 0.5
    gap = one_track([(60, 0, Q), (67, 4 * Q, Q)])  # silence does not count
    assert stats.polyphony(gap) == 1.0 and stats.polyphony_rate(gap) == 0.0


def test_note_density() -> None:
    s = one_track([(60 + i, i * Q // 2, Q // 2) for i in range(8)])  # 8 eighths in 4 quarters
    assert stats.note_density(s) == 2.0


def test_empty_beat_rate_uses_the_time_signature_beat() -> None:
    s = one_track([(60, 0, Q), (62, 3 * Q, Q)])  # beats 2 and 3 of a 4/4 bar are silent
    assert stats.empty_beat_rate(s) == 0.5
    held = one_track([(60, 0, 3 * Q), (62, 3 * Q, Q)])  # a held note fills its beats
    assert stats.empty_beat_rate(held) == 0.0
    six_eight = one_track([(60, 0, Q // 2), (62, 5 * Q // 2, Q // 2)], 6, 8)  # eighth beats
    assert stats.empty_beat_rate(six_eight) == 4 / 6


def test_note_length_histogram() -> None:
    s = one_track([(60, 0, Q), (62, Q, Q), (64, 2 * Q, 3 * Q // 2), (65, 4 * Q, Q // 3)])
    h = stats.note_length_histogram(s)
    by_name = dict(zip(stats.LENGTH_NAMES, h, strict=True))
    assert by_name == pytest.approx(
        {n: 0.0 for n in stats.LENGTH_NAMES}
        | {"quarter": 0.5, "dotted quarter": 0.25, "8th triplet": 0.25}
    )


def test_mean_note_length() -> None:
    assert stats.mean_note_length(one_track([(60, 0, Q), (62, Q, 2 * Q)])) == 1.5


def test_inter_onset_intervals() -> None:
    s = one_track([(60, 0, Q), (62, Q, Q), (65, Q, Q), (67, 3 * Q, Q)])  # chord counts once
    assert stats.inter_onset_intervals(s).tolist() == [1.0, 2.0]
    assert stats.mean_ioi(s) == 1.5
    assert math.isnan(stats.mean_ioi(one_track([(60, 0, Q), (64, 0, Q)])))


def test_groove_consistency() -> None:
    bar = quarters([60, 62, 64, 65])
    notes = bar + quarters([60, 62, 64, 65], 4 * Q) + [(60, 8 * Q, 4 * Q)]
    # bars 1 and 2 agree; bar 3 lacks 3 of bar 2's 4 onsets out of 48 positions
    assert stats.groove_consistency(one_track(notes)) == pytest.approx(1 - (0 + 3 / 48) / 2)
    assert math.isnan(stats.groove_consistency(one_track(bar)))  # one bar: nothing to compare


def test_self_similarity_and_repetition_rate() -> None:
    same = quarters([60, 62, 64, 65]) + quarters([60, 62, 64, 65], 4 * Q)
    other = quarters([67, 69, 71, 68], 8 * Q)  # no pitch class of bar 1
    s = one_track(same + other)
    sim = stats.bar_similarity_matrix(s)
    assert sim.shape == (3, 3)
    assert sim[0, 1] == pytest.approx(1.0) and sim[0, 2] == 0.0
    assert stats.self_similarity(s) == pytest.approx(0.5)  # bar 2: 1, bar 3: 0
    assert stats.repetition_rate(s) == 0.5  # bar 2 repeats bar 1, bar 3 does not
    up = one_track(quarters([60, 62, 64, 65]) + quarters([72, 74, 76, 77], 4 * Q))
    assert stats.self_similarity(up) == pytest.approx(1.0)  # same pitch classes and rhythm
    assert stats.repetition_rate(up) == 0.0  # but not the same pitches


@pytest.mark.parametrize("name", list(stats.FEATURES))
def test_every_feature_is_nan_on_an_empty_score(name: str) -> None:
    for empty in (
        Score(),
        Score(tracks=[Track()]),
        Score(tracks=[Track.from_notes([Note(36, 0, 10)], is_drum=True)]),
    ):
        value = np.asarray(stats.FEATURES[name].fn(empty), dtype=float)
        assert np.isnan(value).all()


def test_drum_tracks_are_left_out() -> None:
    melody = Track.from_notes([Note(p, i * Q, Q) for i, p in enumerate([60, 64, 67])])
    drums = Track.from_notes([Note(36, i * Q, Q) for i in range(3)], is_drum=True)
    with_drums = stats.scalar_features(Score(tpq=TPQ, tracks=[melody, drums]))
    assert with_drums == stats.scalar_features(Score(tpq=TPQ, tracks=[melody]))


def test_compute_features_and_registry() -> None:
    s = one_track(quarters([60, 64, 67, 72]))
    f = stats.compute_features(s)
    assert set(f) == set(stats.FEATURES)
    assert f["pitch_class_histogram"].shape == (12,)
    assert f["pitch_class_transition_matrix"].shape == (12, 12)
    for name, feat in stats.FEATURES.items():
        assert np.shape(f[name]) == feat.shape
    assert stats.jsonable(np.array([1.0, np.nan])) == [1.0, None]
    with pytest.raises(Exception, match="unknown feature"):
        stats.compute_features(s, ["nope"])


def random_score(seed: int) -> Score:
    """Two tracks on a 16th/triplet grid with a change from 4/4 to 3/4."""
    rng = np.random.default_rng(seed)
    tracks = []
    for program in (0, 40):
        n = int(rng.integers(1, 40))
        grid = rng.choice([Q // 4, Q // 3], n)
        start = np.sort(rng.integers(0, 60, n) * grid)
        tracks.append(
            Track(
                make_notes(start, rng.integers(1, 9, n) * Q // 4, rng.integers(40, 90, n)),
                program=program,
            )
        )
    sigs = [TimeSignature(0, 4, 4), TimeSignature(8 * Q, 3, 4)]
    return Score(tpq=TPQ, tracks=tracks, time_signatures=sigs)


@pytest.mark.parametrize("seed", range(12))
def test_vectorised_features_equal_the_plain_python_reference(seed: int) -> None:
    score = random_score(seed)
    notes = [
        (int(n["start"]), int(n["duration"]), int(n["pitch"]), k)
        for k, t in enumerate(score.tracks)
        for n in t.notes
    ]
    sigs = [(ts.time, ts.numerator, ts.denominator) for ts in score.time_signatures]
    want = reference_features(notes, TPQ, sigs)
    got = stats.scalar_features(score)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, nan_ok=True, abs=1e-9), name
    hist = stats.compute_features(score, list(stats.HISTOGRAM_FEATURES))
    for name, value in reference_histograms(notes, TPQ).items():
        np.testing.assert_allclose(hist[name], np.array(value), atol=1e-12, err_msg=name)
