"""The listening test's statistics on synthetic answers with known outcomes, its plan of
pairs, and its answer files."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.errors import MusegenError
from musegen.evaluate import listening as L


def answers(question: str, chose_b: int, n: int) -> list[dict]:
    return [
        {"question": question, "choice": "b" if i < chose_b else "a", "pair": i} for i in range(n)
    ]


def test_binomial_test_known_values():
    assert L.binom_test(5, 10) == pytest.approx(1.0)
    assert L.binom_test(0, 10) == pytest.approx(2 / 1024)  # both tails: all A or all B
    assert L.binom_test(10, 10) == pytest.approx(2 / 1024)
    # 15 of 20: P(X >= 15) = 21700 / 2**20, doubled by symmetry
    assert L.binom_test(15, 20) == pytest.approx(2 * 21700 / 2**20)
    assert L.binom_test(0, 0) == 1.0


def test_pmf_sums_to_one_and_cdf():
    assert sum(L.binom_pmf(k, 17, 0.3) for k in range(18)) == pytest.approx(1.0)
    assert L.binom_cdf(3, 6, 0.5) == pytest.approx(42 / 64)


def test_intervals_known_values():
    # Wilson, 95 %, 8 of 10: (0.4902, 0.9433) (Newcombe 1998's method 3 by hand)
    lo, hi = L.wilson_interval(8, 10)
    assert (lo, hi) == pytest.approx((0.4902, 0.9433), abs=5e-4)
    # Clopper-Pearson with k = 0: upper end 1 - (alpha/2) ** (1/n)
    lo, hi = L.clopper_pearson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-9)
    lo, hi = L.clopper_pearson(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 10), abs=1e-9)
    assert L.clopper_pearson(0, 0) == (0.0, 1.0)


def test_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    for k, n in [(3, 7), (12, 20), (40, 57), (1, 30), (33, 33)]:
        ref = stats.binomtest(k, n)
        assert L.binom_test(k, n) == pytest.approx(ref.pvalue, rel=1e-9)
        exact = ref.proportion_ci(0.95, method="exact")
        assert L.clopper_pearson(k, n) == pytest.approx((exact.low, exact.high), abs=1e-9)
        wilson = ref.proportion_ci(0.95, method="wilson")
        assert L.wilson_interval(k, n) == pytest.approx((wilson.low, wilson.high), abs=1e-9)


def test_summarize_synthetic_outcomes():
    # no preference: 10 of 20 -> p = 1, the interval holds 0.5
    # a strong preference for B: 18 of 20 -> p < 0.001, the interval excludes 0.5
    rows = answers("musical", 10, 20) + answers("human", 18, 20)
    musical, human = L.summarize(rows)
    assert (musical.question, musical.chose_b, musical.n) == ("musical", 10, 20)
    assert musical.p_value == pytest.approx(1.0)
    assert musical.wilson[0] < 0.5 < musical.wilson[1]
    assert human.rate_b == pytest.approx(0.9)
    assert human.p_value < 0.001
    assert human.wilson[0] > 0.5 and human.exact[0] > 0.5
    assert "18/20" in human.line()


def test_summarize_rejects_bad_choice_and_reports_empty():
    with pytest.raises(MusegenError, match="not a or b"):
        L.summarize([{"question": "musical", "choice": "c"}])
    empty = L.preference("musical", 0, 0)
    assert math.isnan(empty.rate_b) and "no answers" in empty.line()
    assert L.report([empty])["questions"][0]["rate_b"] is None


def test_plan_pairs_balanced_and_reproducible():
    a, b = ["a1", "a2", "a3"], ["b1", "b2"]
    plan = L.plan_pairs(a, b, 6, seed=4)
    assert plan == L.plan_pairs(a, b, 6, seed=4)
    assert sorted(p.a for p in plan) == sorted(a * 2)
    assert sorted(p.b for p in plan) == sorted(b * 3)
    for p in plan:
        sides = {p.side(1), p.side(2)}
        assert sides == {"a", "b"}
        assert p.piece(1 if p.b_first else 2) == p.b
    orders = {p.b_first for p in L.plan_pairs(a, b, 40, seed=1)}
    assert orders == {True, False}
    with pytest.raises(MusegenError):
        L.plan_pairs([], b, 3)


def test_answers_round_trip(tmp_path):
    rows = [
        {"listener": "x", "pair": 0, "question": "musical", "choice": "b", "a": "a1", "b": "b1"},
        {"listener": "x", "pair": 1, "question": "musical", "choice": "a", "a": "a2", "b": "b2"},
    ]
    path = tmp_path / "answers.json"
    L.save_answers(path, {"pairs": 2}, rows)
    assert json.loads(path.read_text())["setup"] == {"pairs": 2}
    for f in (path, path.with_suffix(".csv")):
        (pref,) = L.summarize(L.read_answers(f))
        assert (pref.chose_b, pref.n) == (1, 2)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(MusegenError, match="not JSON"):
        L.read_answers(tmp_path / "bad.json")


@given(n=st.integers(1, 80), data=st.data())
@settings(max_examples=60, deadline=None)
def test_statistics_properties(n, data):
    k = data.draw(st.integers(0, n))
    p = L.binom_test(k, n)
    assert 0 < p <= 1 and p == pytest.approx(L.binom_test(n - k, n))  # symmetric under 0.5
    for low, high in (L.wilson_interval(k, n), L.clopper_pearson(k, n)):
        assert 0 <= low <= k / n <= high <= 1
    wide, narrow = L.clopper_pearson(k, n, 0.99), L.clopper_pearson(k, n, 0.9)
    assert wide[0] <= narrow[0] + 1e-12 and narrow[1] <= wide[1] + 1e-12
