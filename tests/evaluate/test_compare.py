"""Set comparison (Yang & Lerch): distances, densities, overlap and divergence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musegen.evaluate.compare import (
    compare_feature,
    compare_sets,
    cross_distances,
    density,
    density_grid,
    kernel_width,
    kl_divergence,
    overlap_area,
    pairwise_distances,
)


def test_distances_by_hand() -> None:
    assert sorted(pairwise_distances(np.array([0.0, 1.0, 3.0]))) == [1.0, 2.0, 3.0]
    assert sorted(cross_distances(np.array([0.0, 1.0]), np.array([3.0]))) == [2.0, 3.0]
    vectors = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert pairwise_distances(vectors).tolist() == [5.0]
    assert len(pairwise_distances(np.array([1.0]))) == 0


def test_density_is_scipys_gaussian_kde() -> None:
    from scipy.stats import gaussian_kde

    rng = np.random.default_rng(0)
    samples = rng.normal(2.0, 0.5, 300)
    grid = np.linspace(-1, 5, 200)
    np.testing.assert_allclose(
        density(samples, grid, 1e-6), gaussian_kde(samples)(grid), rtol=1e-10
    )
    assert kernel_width(np.ones(5)) == 0.0


def test_overlap_and_divergence_of_known_densities() -> None:
    grid = np.linspace(-10, 10, 4001)
    p = np.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi)
    q = np.exp(-0.5 * (grid - 1) ** 2) / math.sqrt(2 * math.pi)
    assert overlap_area(p, p, grid) == pytest.approx(1.0, abs=1e-6)
    assert kl_divergence(p, p, grid) == pytest.approx(0.0, abs=1e-9)
    # two unit Gaussians one apart: OA = 2 * Phi(-1/2), KL = 1/2
    assert overlap_area(p, q, grid) == pytest.approx(2 * 0.3085375387, abs=1e-6)
    assert kl_divergence(p, q, grid) == pytest.approx(0.5, abs=1e-6)
    far = np.exp(-0.5 * (grid - 8) ** 2) / math.sqrt(2 * math.pi)
    assert overlap_area(p, far, grid) == pytest.approx(2 * 3.167124e-05, rel=1e-3)  # 2 Phi(-4)


def test_grid_covers_every_set() -> None:
    grid, floor = density_grid(np.array([0.0, 1.0]), np.array([5.0, 5.0]))
    assert grid[0] < 0 and grid[-1] > 5 and floor > 0


def test_identical_sets_overlap_and_far_sets_do_not() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, 60)
    same = compare_feature("x", a, a.copy())
    assert same.oa_intra == pytest.approx(1.0, abs=1e-4)  # the grid holds all but the tails
    assert same.kld_intra == pytest.approx(0.0, abs=1e-9)
    assert same.oa > 0.8
    far = compare_feature("x", a, a + 20)
    assert far.oa < 0.01 and far.kld > 5
    summary = far.summary()
    assert summary["gen_mean"] == pytest.approx(a.mean(), abs=1e-6)
    assert summary["inter_mean"] == pytest.approx(20, abs=1)


def test_constant_features_and_nan_pieces() -> None:
    fc = compare_feature("x", [1.0, 1.0, float("nan")], [1.0, 1.0, 1.0])
    assert len(fc.gen_values) == 2  # the NaN piece is left out
    assert fc.oa == pytest.approx(1.0, abs=1e-3)  # all distances 0 on both sides
    few = compare_feature("x", [1.0], [2.0])  # one piece a side: no intra-set distances
    assert math.isnan(few.oa) and few.summary()["oa"] is None and few.problem is None


def test_compare_sets_over_feature_dicts() -> None:
    gen = [{"a": 1.0, "h": np.array([1.0, 0.0])}, {"a": 2.0, "h": np.array([0.0, 1.0])}]
    ref = [{"a": 1.5, "h": np.array([0.5, 0.5])}, {"a": 3.0, "h": np.array([1.0, 0.0])}]
    out = compare_sets(gen, ref, names=["a", "h"])
    assert out["a"].intra_gen.tolist() == [1.0] and sorted(out["a"].inter) == [0.5, 0.5, 1.0, 2.0]
    assert out["h"].intra_gen.tolist() == [pytest.approx(math.sqrt(2))]
    assert not out["h"].is_scalar and "gen_mean" not in out["h"].summary()


def test_a_feature_without_values_in_a_set_is_not_comparable() -> None:
    nan12 = np.full(12, np.nan)
    for gen, ref in (
        ([math.nan], [1.0, 2.0, 4.0]),
        ([nan12], [np.ones(12) / 12, np.eye(12)[0]]),
        ([], [1.0, 2.0]),
    ):
        fc = compare_feature("f", gen, ref, labels=("A", "B"))
        assert fc.problem == "not comparable: no values in A"
        assert math.isnan(fc.oa) and len(fc.inter) == 0
        assert fc.summary()["comparable"] is False
    both = compare_feature("f", [math.nan], [], labels=("A", "B"))
    assert both.problem == "not comparable: no values in A or B"


def test_one_piece_still_gives_the_headline_figures() -> None:
    fc = compare_feature("f", [3.0], [1.0, 2.0, 4.0, 5.0])
    assert fc.problem is None and 0 < fc.oa <= 1 and math.isfinite(fc.kld)
    assert math.isnan(fc.oa_gen) and math.isnan(fc.oa_intra)
