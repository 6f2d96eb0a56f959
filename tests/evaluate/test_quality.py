"""Musical-quality figures of sets: note-length distance, the classifier two-sample test and
the report with its ceiling, on tiny scores and synthetic features."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from metricshelpers import CLEAN, TPQ, one_track, satb
from musegen.evaluate.c2st import (
    classifier_two_sample_test,
    knn_predict,
    logistic_predict,
    stumps_predict,
)
from musegen.evaluate.quality import (
    excerpt,
    fraction_of_ceiling,
    note_length_histogram_distance,
    quality_report,
)
from musegen.score import Score


def test_note_length_distance() -> None:
    quarters = one_track([(60, i * TPQ, TPQ) for i in range(4)])
    halves = one_track([(60, i * 2 * TPQ, 2 * TPQ) for i in range(2)])
    mixed = one_track([(60, 0, TPQ), (60, TPQ, TPQ), (60, 2 * TPQ, 2 * TPQ)])
    assert note_length_histogram_distance([quarters], [quarters, quarters]) == 0.0
    assert note_length_histogram_distance([quarters], [halves]) == 1.0
    assert note_length_histogram_distance([quarters], [mixed]) == pytest.approx(1 / 3)
    assert math.isnan(note_length_histogram_distance([], [quarters]))
    assert math.isnan(note_length_histogram_distance([quarters], [Score(tpq=TPQ)]))


def test_excerpt_keeps_the_first_whole_bars() -> None:
    sixteen = one_track([(60, i * TPQ, TPQ) for i in range(64)])  # 16 bars of 4/4
    assert excerpt(sixteen, 8).n_bars == 8
    assert excerpt(sixteen, None) is sixteen and excerpt(sixteen, 20) is sixteen
    assert excerpt(sixteen, 8).tracks[0].notes["start"].max() == 31 * TPQ


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


def test_benchmark_prints_table_and_json_lines(
    tiny_report: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    """A smoke test of benchmarks/musical_quality.py's output on the tiny report (the
    generation and the corpora are not touched)."""
    import json

    from benchhelpers import load_benchmark

    bench = load_benchmark("musical_quality")
    bench.print_table("tiny", tiny_report, tiny_report["ceiling"])
    bench.emit_lines("tiny", tiny_report, None, {"pieces": 5})
    out = capsys.readouterr().out
    assert "| C2ST accuracy (best of 3) |" in out
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert {r["benchmark"] for r in rows} >= {"musical_quality.tiny.c2st_accuracy"}
    assert all({"ours", "peer", "ratio", "unit"} <= set(r) for r in rows)


def test_excerpts_hide_the_ending_from_the_classifier(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real pieces cut to the generated length end mid-phrase: with ``bars`` the classifier
    sees no ``end.*`` feature (the ending is judged against whole pieces); without, it does."""
    import musegen.evaluate.quality as quality

    seen: list[set[str]] = []
    real = quality.classifier_two_sample_test

    def spy(a, b, **kw):  # type: ignore[no-untyped-def]
        seen.append(set(a[0]) | set(b[0]))
        return real(a, b, **kw)

    monkeypatch.setattr(quality, "classifier_two_sample_test", spy)
    pieces = [_shifted(k, 4) for k in (-2, -1, 0, 1, 2)]
    quality_report(pieces[:3], pieces[2:], bars=2, folds=2)
    assert seen and not any(name.startswith("end.") for name in seen[-1])
    quality_report(pieces[:3], pieces[2:], folds=2)
    assert {"end.cadence", "end.tonic"} <= seen[-1]


def test_folk_units_reference_writes_the_tunes_in_4_4_units(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``--reference folk-units``: the tunes at least ``bars`` units long, cut to them and
    written as 4/4 bars (the latent models' view); a seeded sample when asked."""
    from benchhelpers import load_benchmark
    from latenthelpers import tiny_dataset

    bench = load_benchmark("musical_quality")
    data = str(tiny_dataset(tmp_path / "tunes"))  # 4-bar 4/4 tunes and one in 3/4
    scores = bench.units_reference(data, "train", 3)
    assert len(scores) == 8  # the 3/4 tune has no units
    for s in scores:
        assert s.time_signatures[0].numerator == 4 and s.end <= 3 * 4 * s.tpq
    assert bench.units_reference(data, "train", 5) == []  # none has 5 units
    few = bench.units_reference(data, "train", 3, limit=3, seed=1)
    again = bench.units_reference(data, "train", 3, limit=3, seed=1)
    assert len(few) == 3
    assert [s.tracks[0].notes.tolist() for s in few] == [s.tracks[0].notes.tolist() for s in again]


def test_default_reference_follows_the_model(tmp_path: Path) -> None:
    from benchhelpers import load_benchmark
    from latenthelpers import tiny_chorale_vae

    bench = load_benchmark("musical_quality")
    assert bench.default_reference("bach", None) == "bach"
    assert bench.default_reference("folk", None) == "folk"
    assert bench.default_reference("bach", "folk") == "folk"  # a melody token model
    assert bench.default_reference("bach", "latent-diffusion") == "folk-units"
    assert bench.default_reference("bach", "folk-vae") == "folk-units"
    assert bench.default_reference("bach", "coconet") == "bach"
    assert bench.default_reference("folk", str(tiny_chorale_vae(tmp_path / "v"))) == "bach"
