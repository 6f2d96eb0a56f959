"""Compare a generated set of pieces with a reference set, feature by feature (Yang & Lerch 2018).

For each feature (:data:`musegen.metrics.stats.FEATURES`) every piece gives a value (a number,
or a histogram compared as a vector). From those:

* **intra-set distances**: ``|a - b|`` (Euclidean for vectors) between every pair of pieces of
  one set (each unordered pair once);
* **inter-set distances**: between every generated piece and every reference piece;
* their probability densities, by Gaussian kernel density estimation (scipy's
  ``gaussian_kde``, Scott's bandwidth), evaluated on one grid that covers all three;
* **overlapping area** (OA, 0..1, the integral of the smaller density) and **Kullback-Leibler
  divergence** (KLD, nats, ``KL(p || q)``) between densities.

Headline figures, as in Yang & Lerch: ``oa``/``kld`` compare the *reference* set's intra-set
distances with the inter-set distances (high OA, low KLD: a generated piece is as far from the
reference pieces as they are from each other). Also given: ``oa_gen``/``kld_gen`` (generated
intra-set vs inter-set) and ``oa_intra``/``kld_intra`` (generated vs reference intra-set: does
the generated set vary as much as the reference does).

Pieces whose value is NaN for a feature are left out of that feature. A feature with no value
in one of the sets (say one short generated piece, too short for a bar-based feature) cannot be
compared: :attr:`FeatureComparison.problem` says so and its figures are NaN. Each pair of
densities is compared where both have distances: one generated piece has no intra-set
distances, yet the headline ``oa``/``kld`` (reference intra-set vs inter-set) still stand.
Densities use at most ``max_samples`` distances per distribution (a seeded random subset),
means and spreads use all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from musegen.metrics.stats import FEATURES, jsonable

GRID_POINTS = 512
MAX_SAMPLES = 4000
PDF_FLOOR = 1e-10  # densities below this count as this in the KL divergence


def pairwise_distances(values: np.ndarray) -> np.ndarray:
    """Distances between every unordered pair of rows (scalars: ``|a - b|``)."""
    from scipy.spatial.distance import pdist

    x = _rows(values)
    return pdist(x) if len(x) > 1 else np.zeros(0)


def cross_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances between every row of ``a`` and every row of ``b``, flattened."""
    from scipy.spatial.distance import cdist

    x, y = _rows(a), _rows(b)
    return cdist(x, y).ravel() if len(x) and len(y) else np.zeros(0)


def _rows(values: np.ndarray) -> np.ndarray:
    """One row per piece (a scalar feature: one column); no pieces: zero rows."""
    x = np.asarray(values, dtype=np.float64)
    return x.reshape(len(x), int(np.prod(x.shape[1:], dtype=np.int64)))


def _bandwidth(samples: np.ndarray) -> float:
    """Scott's-rule kernel width of ``samples`` (0 when they do not vary)."""
    if len(samples) < 2:
        return 0.0
    return float(samples.std(ddof=1) * len(samples) ** (-1 / 5))


def kernel_width(samples: np.ndarray) -> float:
    """The Gaussian kernel's standard deviation that ``scipy.stats.gaussian_kde`` picks
    (Scott's rule) for 1-D ``samples``; 0 when they do not vary."""
    from scipy.stats import gaussian_kde

    s = np.asarray(samples, dtype=np.float64)
    if _bandwidth(s) <= 0:
        return 0.0
    try:
        return float(np.sqrt(gaussian_kde(s).covariance[0, 0]))
    except np.linalg.LinAlgError:
        return 0.0


def density(samples: np.ndarray, grid: np.ndarray, floor_width: float) -> np.ndarray:
    """Gaussian KDE of ``samples`` on ``grid``, with ``gaussian_kde``'s kernel width (at
    least ``floor_width``, so samples that do not vary get one narrow Gaussian). Evaluated
    here in chunks of plain numpy: the same sum as ``gaussian_kde(samples)(grid)``, many times
    faster in one dimension."""
    s = np.asarray(samples, dtype=np.float64)
    width = max(kernel_width(s), floor_width, 1e-12)
    out = np.zeros(len(grid))
    for i in range(0, len(s), 1024):
        z = (grid[:, None] - s[None, i : i + 1024]) / width
        out += np.exp(-0.5 * z**2).sum(axis=1)
    return out / (len(s) * width * np.sqrt(2 * np.pi))


def density_grid(*samples: np.ndarray, points: int = GRID_POINTS) -> tuple[np.ndarray, float]:
    """An evaluation grid covering every sample set with 4 kernel widths to spare, and the
    narrow width used for sets that do not vary."""
    every = np.concatenate([np.asarray(s, np.float64) for s in samples if len(s)])
    lo, hi = float(every.min()), float(every.max())
    spread = hi - lo
    floor = max(spread, abs(hi), 1.0) * 1e-3
    widths = [max(_bandwidth(np.asarray(s, np.float64)), floor) for s in samples if len(s)]
    pad = 4 * max(widths)
    return np.linspace(lo - pad, hi + pad, points), floor


def overlap_area(p: np.ndarray, q: np.ndarray, grid: np.ndarray) -> float:
    """The integral of ``min(p, q)`` over the grid: 1 for equal densities, 0 for disjoint."""
    m = np.minimum(p, q)
    return float(np.sum((m[1:] + m[:-1]) / 2 * np.diff(grid)))


def kl_divergence(p: np.ndarray, q: np.ndarray, grid: np.ndarray) -> float:
    """``KL(p || q)`` in nats of two densities on a grid (renormalised there, ``q`` floored)."""
    dx = np.gradient(grid)
    pm = np.maximum(p, 0) * dx
    qm = np.maximum(q, PDF_FLOOR) * dx
    pm, qm = pm / pm.sum(), qm / qm.sum()
    nz = pm > 0
    return float(np.sum(pm[nz] * np.log(pm[nz] / qm[nz])))


@dataclass
class FeatureComparison:
    """One feature compared across the two sets (see the module docstring)."""

    name: str
    gen_values: np.ndarray
    ref_values: np.ndarray
    intra_gen: np.ndarray
    intra_ref: np.ndarray
    inter: np.ndarray
    grid: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pdf_intra_gen: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pdf_intra_ref: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pdf_inter: np.ndarray = field(default_factory=lambda: np.zeros(0))
    oa: float = float("nan")
    kld: float = float("nan")
    oa_gen: float = float("nan")
    kld_gen: float = float("nan")
    oa_intra: float = float("nan")
    kld_intra: float = float("nan")
    problem: str | None = None  # why the feature cannot be compared, e.g. no values in a set

    @property
    def is_scalar(self) -> bool:
        return self.gen_values.ndim <= 1 and self.ref_values.ndim <= 1

    def summary(self) -> dict[str, Any]:
        """The numbers, for tables and JSON (NaN as None)."""
        out: dict[str, Any] = {"feature": self.name, "n_gen": len(self.gen_values)}
        out["n_ref"] = len(self.ref_values)
        if self.is_scalar:
            out |= _mean_std("gen", self.gen_values) | _mean_std("ref", self.ref_values)
        for name in ("intra_gen", "intra_ref", "inter"):
            out |= _mean_std(name, getattr(self, name))
        for name in ("oa", "kld", "oa_gen", "kld_gen", "oa_intra", "kld_intra"):
            out[name] = jsonable(getattr(self, name))
        out["comparable"] = self.problem is None
        if self.problem is not None:
            out["problem"] = self.problem
        return out


def _mean_std(prefix: str, x: np.ndarray) -> dict[str, float | None]:
    if len(x) == 0:
        return {f"{prefix}_mean": None, f"{prefix}_std": None}
    return {
        f"{prefix}_mean": jsonable(float(np.mean(x))),
        f"{prefix}_std": jsonable(float(np.std(x))),
    }


def _finite_rows(values: Sequence[Any]) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        return x
    return x[np.isfinite(_rows(x)).all(axis=1)]


def _subsample(x: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= limit else rng.choice(x, size=limit, replace=False)


def compare_feature(
    name: str,
    gen_values: Sequence[Any],
    ref_values: Sequence[Any],
    max_samples: int = MAX_SAMPLES,
    seed: int = 0,
    labels: tuple[str, str] = ("the generated set", "the reference set"),
) -> FeatureComparison:
    """Compare one feature's values (one per piece) of the generated and reference sets
    (``labels`` name them in :attr:`FeatureComparison.problem`)."""
    gen, ref = _finite_rows(gen_values), _finite_rows(ref_values)
    fc = FeatureComparison(
        name,
        gen,
        ref,
        pairwise_distances(gen),
        pairwise_distances(ref),
        cross_distances(gen, ref),
    )
    empty = [label for label, x in zip(labels, (gen, ref), strict=True) if len(x) == 0]
    if empty:
        fc.problem = "not comparable: no values in " + " or ".join(empty)
        return fc
    if len(fc.inter) == 0 or len(fc.intra_gen) + len(fc.intra_ref) == 0:
        return fc
    rng = np.random.default_rng(seed)
    samples = [_subsample(d, max_samples, rng) for d in (fc.intra_gen, fc.intra_ref, fc.inter)]
    grid, floor = density_grid(*samples)
    fc.grid = grid
    fc.pdf_intra_gen, fc.pdf_intra_ref, fc.pdf_inter = (
        density(s, grid, floor) if len(s) else np.zeros(0) for s in samples
    )
    for suffix, p, q in (
        ("", fc.pdf_intra_ref, fc.pdf_inter),
        ("_gen", fc.pdf_intra_gen, fc.pdf_inter),
        ("_intra", fc.pdf_intra_gen, fc.pdf_intra_ref),
    ):
        if len(p) and len(q):
            setattr(fc, "oa" + suffix, overlap_area(p, q, grid))
            setattr(fc, "kld" + suffix, kl_divergence(p, q, grid))
    return fc


def compare_sets(
    gen_features: Sequence[dict[str, Any]],
    ref_features: Sequence[dict[str, Any]],
    names: Sequence[str] | None = None,
    max_samples: int = MAX_SAMPLES,
    seed: int = 0,
    labels: tuple[str, str] = ("the generated set", "the reference set"),
) -> dict[str, FeatureComparison]:
    """Compare per-piece feature dicts (from :func:`~musegen.metrics.stats.compute_features`)
    of two sets, for the named features (default: every feature both sets have)."""
    if names is None:
        have = set(gen_features[0]) if gen_features else set()
        have &= set(ref_features[0]) if ref_features else set()
        names = [n for n in FEATURES if n in have]
    return {
        n: compare_feature(
            n,
            [f[n] for f in gen_features],
            [f[n] for f in ref_features],
            max_samples,
            seed,
            labels,
        )
        for n in names
    }
