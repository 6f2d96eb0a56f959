"""Musical-quality figures: four-voice share, cadence and tonic endings, note-length distance,
the classifier two-sample test and the report, on tiny scores and synthetic features."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metricshelpers import CLEAN, TPQ, one_track, satb
from musegen.metrics.quality import (
    classifier_two_sample_test,
    ending_cadence,
    ends_on_cadence,
    ends_on_tonic,
    four_voice_counts,
    four_voice_share,
    fraction_of_ceiling,
    knn_predict,
    logistic_predict,
    note_length_histogram_distance,
    piece_features,
    quality_report,
    stumps_predict,
)
from musegen.score import Note, Score, TimeSignature, Track

C_MAJOR = (0, False)


def test_four_voice_share_counts_beats_and_16ths() -> None:
    score = satb(CLEAN)  # 8 beats, all four voices everywhere
    assert four_voice_share(score) == 1.0
    assert four_voice_share(score, "16th") == 1.0
    # the alto rests on beat 3 (a whole beat) and on the second half of beat 6
    alto = score.tracks[1]
    keep = [n for n in alto.note_list() if n.start != 2 * TPQ]
    keep = [Note(n.pitch, n.start, TPQ // 2) if n.start == 5 * TPQ else n for n in keep]
    score.tracks[1] = Track.from_notes(keep, voice="A")
    assert four_voice_counts(score) == (7, 8)
    assert four_voice_counts(score, "16th") == (32 - 4 - 2, 32)
    assert four_voice_share(score) == pytest.approx(7 / 8)


def test_four_voice_share_is_nan_without_four_voices() -> None:
    melody = one_track([(60, 0, TPQ), (62, TPQ, TPQ)])
    assert math.isnan(four_voice_share(melody))
    assert math.isnan(four_voice_share(Score(tpq=TPQ)))
    with pytest.raises(ValueError, match="step"):
        four_voice_share(satb(CLEAN), "8th")


def test_authentic_ending_found_and_ending_on_v_not() -> None:
    ending_v_i = satb(CLEAN)  # ... ii V I
    assert ending_cadence(ending_v_i, C_MAJOR) == "authentic"
    assert ends_on_cadence(ending_v_i, C_MAJOR)
    assert ends_on_cadence(ending_v_i)  # the estimated key is C major too
    ending_on_v = satb(CLEAN[:7])  # ... vi ii V
    assert ending_cadence(ending_on_v, C_MAJOR) is None
    assert not ends_on_cadence(ending_on_v, C_MAJOR)


def test_plagal_and_leading_tone_endings() -> None:
    plagal = satb([*CLEAN[:4], (72, 69, 65, 53), (72, 67, 64, 48)])  # ... IV I
    assert ending_cadence(plagal, C_MAJOR) == "plagal"
    vii_i = satb([*CLEAN[:4], (74, 65, 62, 59), (72, 64, 60, 60)])  # ... vii°6 I
    assert ending_cadence(vii_i, C_MAJOR) == "authentic"
    # a minor key ending on a major tonic (Picardy third): V - I in a minor still counts
    picardy = satb([(69, 64, 60, 45), (68, 64, 59, 52), (69, 64, 61, 45)])
    assert ending_cadence(picardy, (9, True)) == "authentic"


def test_endings_of_empty_scores() -> None:
    assert not ends_on_cadence(Score(tpq=TPQ))
    assert not ends_on_tonic(Score(tpq=TPQ))


def test_ends_on_tonic() -> None:
    tune = one_track([(60, 0, TPQ), (64, TPQ, TPQ), (67, 2 * TPQ, TPQ), (72, 3 * TPQ, TPQ)])
    assert ends_on_tonic(tune, C_MAJOR)
    up = one_track([(60, 0, TPQ), (64, TPQ, TPQ), (67, 2 * TPQ, TPQ), (71, 3 * TPQ, TPQ)])
    assert not ends_on_tonic(up, C_MAJOR)
    # several notes at the last onset: the lowest counts
    assert ends_on_tonic(satb(CLEAN), C_MAJOR)


def test_note_length_distance() -> None:
    quarters = one_track([(60, i * TPQ, TPQ) for i in range(4)])
    halves = one_track([(60, i * 2 * TPQ, 2 * TPQ) for i in range(2)])
    mixed = one_track([(60, 0, TPQ), (60, TPQ, TPQ), (60, 2 * TPQ, 2 * TPQ)])
    assert note_length_histogram_distance([quarters], [quarters, quarters]) == 0.0
    assert note_length_histogram_distance([quarters], [halves]) == 1.0
    assert note_length_histogram_distance([quarters], [mixed]) == pytest.approx(1 / 3)
    assert math.isnan(note_length_histogram_distance([], [quarters]))
    assert math.isnan(note_length_histogram_distance([quarters], [Score(tpq=TPQ)]))


def test_piece_features_four_voices_and_melody() -> None:
    f = piece_features(satb(CLEAN))
    assert f["four_voice_share.beats"] == 1.0
    assert f["vl.total"] == 0.0
    assert f["end.cadence"] == 1.0
    assert f["voice.B.mean_pitch"] == pytest.approx(np.mean([c[3] for c in CLEAN]))
    tune = piece_features(one_track([(60 + 2 * i, i * TPQ, TPQ) for i in range(8)]))
    assert set(tune) == set(f)  # one vector layout for every piece
    assert math.isnan(tune["vl.total"]) and math.isnan(tune["four_voice_share.beats"])
    assert tune["melody.step_share"] == 1.0
    assert all(math.isfinite(v) for k, v in f.items() if not k.startswith("cadence"))


def _normal(seed: int, n: int = 40, d: int = 20, shift: float = 0.0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d))
    x[:, 0] += shift
    return x


def test_c2st_near_chance_on_one_distribution() -> None:
    accs = [
        classifier_two_sample_test(_normal(2 * s), _normal(2 * s + 1), seed=s)["accuracy"]
        for s in range(4)
    ]
    # the best of three classifiers reads a little above 0.5 under the null
    assert 0.4 <= float(np.mean(accs)) <= 0.65


def test_c2st_near_one_on_different_distributions() -> None:
    r = classifier_two_sample_test(_normal(0, shift=6.0), _normal(1))
    assert r["accuracy"] >= 0.95
    assert min(r["logistic"], r["knn"], r["stumps"]) >= 0.8
    assert r["top_features"][0][0] == "0" and r["top_features"][0][1] > 3
    assert 0 < r["se"] < 0.05
    assert r["p_values"]["logistic"] < 1e-6


def test_c2st_balances_and_handles_nan() -> None:
    gen = [{"a": 5.0 + i % 3, "b": math.nan, "c": 1.0} for i in range(30)]
    real = [{"a": float(i % 3), "c": 1.0} for i in range(60)]  # 'b' missing: NaN
    real[0]["a"] = math.nan
    r = classifier_two_sample_test(gen, real, folds=5)
    assert r["n_per_class"] == 30 and r["n_features"] == 3
    assert r["accuracy"] == 1.0
    tiny = classifier_two_sample_test(gen[:3], real, folds=5)
    assert math.isnan(tiny["accuracy"]) and tiny["best"] is None


def test_classifiers_separate_a_threshold() -> None:
    x = np.linspace(-1, 1, 40)[:, None]
    y = (x[:, 0] > 0.1).astype(float)
    test = np.array([[-0.9], [0.9]])
    for predict in (logistic_predict, knn_predict, stumps_predict):
        p = predict(x, y, test)
        assert p[0] < 0.5 < p[1], predict.__name__


def test_fraction_of_ceiling() -> None:
    assert fraction_of_ceiling("oa_mean", 0.8, 0.9) == pytest.approx(0.8 / 0.9)
    assert fraction_of_ceiling("vl_total_per_100_beats", 40.0, 10.0) == 0.25
    assert fraction_of_ceiling("c2st_accuracy", 0.9, 0.6) == pytest.approx(0.25)
    assert math.isnan(fraction_of_ceiling("oa_mean", math.nan, 0.9))


def _shifted(k: int, bars: int = 2) -> Score:
    chords = [tuple(p + k for p in c) for c in CLEAN] * (bars // 2)
    return satb(chords)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_report() -> dict:
    real = [_shifted(k, 4) for k in (-2, -1, 0, 1, 2, 2)]
    train = [_shifted(k, 4) for k in (-3, 0, 2, 1, -1)]
    gen = [_shifted(k) for k in (0, 1, 2, -2, -1)]  # in range: no voice-leading errors
    return quality_report(gen, real, train, bars=2, folds=2)


def test_quality_report_on_tiny_sets(tiny_report: dict) -> None:
    r = tiny_report
    real = [_shifted(k, 4) for k in (-2, -1, 0, 1, 2, 2)]
    g, c = r["generated"], r["ceiling"]
    assert r["reference_pieces"] == 6 and g["pieces"] == 5 and c["pieces"] == 5
    assert g["ending_kind"] == "cadence"
    assert g["vl_total_per_100_beats"] == 0.0 and g["four_voice_share_beats"] == 1.0
    assert g["note_length_tv"] == 0.0
    assert 0 <= g["c2st_accuracy"] <= 1 and 0 <= g["oa_mean"] <= 1
    assert c["ending_share"] == 1.0 and c["ending_share_cut"] == 1.0
    assert set(r["fraction"]) >= {"oa_mean", "c2st_accuracy", "ending_share"}
    empty = quality_report([], real)
    assert math.isnan(empty["generated"]["oa_mean"])
    assert math.isnan(empty["generated"]["ending_share"])
    assert empty["ceiling"] is None


def test_meter_is_respected_by_beats() -> None:
    score = satb(CLEAN)
    score.time_signatures = [TimeSignature(0, 6, 8)]  # beats are eighths: 16 of them
    assert four_voice_counts(score) == (16, 16)


def test_benchmark_prints_table_and_json_lines(
    tiny_report: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    """A smoke test of benchmarks/musical_quality.py's output on the tiny report (the
    generation and the corpora are not touched)."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "musical_quality.py"
    spec = importlib.util.spec_from_file_location("musical_quality_bench", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.print_table("tiny", tiny_report, tiny_report["ceiling"])
    bench.emit_lines("tiny", tiny_report, None, {"pieces": 5})
    out = capsys.readouterr().out
    assert "| C2ST accuracy (best of 3) |" in out
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert {r["benchmark"] for r in rows} >= {"musical_quality.tiny.c2st_accuracy"}
    assert all({"ours", "peer", "ratio", "unit"} <= set(r) for r in rows)
