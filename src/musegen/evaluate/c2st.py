"""Classifier two-sample test (Lopez-Paz & Oquab 2017): how well fixed classifiers tell two
sets of feature vectors apart, cross-validated (0.5: indistinguishable).

Three classifiers, none tuned on any split (their settings are the constants below): L2
logistic regression, k-nearest neighbours and gradient-boosted stumps, all plain numpy.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

NAN = float("nan")
LOGISTIC_L2 = 1.0  # ridge penalty of the logistic regression, on standardised features
STUMP_ROUNDS = 100  # gradient-boosted stumps: rounds and learning rate
STUMP_RATE = 0.1
CLASSIFIERS = ("logistic", "knn", "stumps")


def _feature_matrix(
    rows: Sequence[Mapping[str, float]] | np.ndarray, columns: list[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Rows of feature dicts (or a matrix) as a float matrix, with the column names (the
    union of the dicts' keys in order of appearance; a missing key is NaN)."""
    if isinstance(rows, np.ndarray):
        x = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
        return x, columns or [str(i) for i in range(x.shape[1])]
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    x = np.array([[float(r.get(c, NAN)) for c in columns] for r in rows], dtype=np.float64)
    return x.reshape(len(rows), len(columns)), columns


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Impute NaN with the training fold's column means (0 where a column is all NaN there),
    then scale by the training fold's mean and spread (constant columns become 0)."""
    finite = np.isfinite(train)
    count = finite.sum(axis=0)
    mean = np.where(finite, train, 0.0).sum(axis=0) / np.maximum(count, 1)
    tr = np.where(np.isfinite(train), train, mean)
    te = np.where(np.isfinite(test), test, mean)
    sd = tr.std(axis=0)
    sd = np.where(sd > 1e-12, sd, np.inf)
    return (tr - mean) / sd, (te - mean) / sd


def logistic_predict(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, l2: float = LOGISTIC_L2
) -> np.ndarray:
    """L2-penalised logistic regression (intercept unpenalised) fitted by Newton's method;
    the probability of class 1 for each test row."""
    n, d = x_train.shape
    a = np.hstack([np.ones((n, 1)), x_train])
    w = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[0] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -30, 30)))
        grad = a.T @ (p - y_train) + penalty * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    z = np.hstack([np.ones((len(x_test), 1)), x_test]) @ w
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def knn_predict(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, k: int | None = None
) -> np.ndarray:
    """Share of class 1 among the ``k`` nearest training rows (Euclidean; default ``k``: the
    odd number nearest the square root of the training size)."""
    if k is None:
        k = max(1, round(math.sqrt(len(x_train))) // 2 * 2 + 1)
    k = min(k, len(x_train))
    d = ((x_test[:, None, :] - x_train[None, :, :]) ** 2).sum(axis=2)
    nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
    return y_train[nearest].mean(axis=1)


def stumps_predict(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    rounds: int = STUMP_ROUNDS,
    rate: float = STUMP_RATE,
) -> np.ndarray:
    """Gradient boosting of depth-1 trees (stumps) on the logistic loss: each round fits the
    residual ``y - p`` with the best single threshold on one feature (least squares), leaf
    values by one Newton step; returns the probability of class 1 for each test row."""
    n = len(x_train)
    order = np.argsort(x_train, axis=0, kind="stable")
    xs = np.take_along_axis(x_train, order, axis=0)
    can_split = xs[1:] > xs[:-1]  # [n-1, d]: a threshold between sorted rows i and i+1
    base = math.log(max(y_train.mean(), 1e-6) / max(1 - y_train.mean(), 1e-6))
    f_train = np.full(n, base)
    f_test = np.full(len(x_test), base)
    left_n = np.arange(1, n)[:, None]
    for _ in range(rounds):
        p = 1.0 / (1.0 + np.exp(-f_train))
        r = y_train - p
        h = p * (1 - p)
        rs = r[order]  # [n, d]
        cl = np.cumsum(rs, axis=0)[:-1]
        total = r.sum()
        gain = cl**2 / left_n + (total - cl) ** 2 / (n - left_n)
        gain = np.where(can_split, gain, -np.inf)
        if not np.isfinite(gain).any():
            break
        i, j = np.unravel_index(int(np.argmax(gain)), gain.shape)
        threshold = (xs[i, j] + xs[i + 1, j]) / 2
        left = x_train[:, j] <= threshold
        values = []
        for side in (left, ~left):
            values.append(r[side].sum() / max(h[side].sum(), 1e-12))
        f_train += rate * np.where(left, values[0], values[1])
        f_test += rate * np.where(x_test[:, j] <= threshold, values[0], values[1])
    return 1.0 / (1.0 + np.exp(-f_test))


_PREDICTORS = {"logistic": logistic_predict, "knn": knn_predict, "stumps": stumps_predict}


def binomial_se(accuracy: float, n: int) -> float:
    """Standard error of an accuracy over ``n`` predictions, Agresti-Coull style (two
    successes and two failures added), so that 0 % or 100 % does not claim an error of 0."""
    if n <= 0 or not math.isfinite(accuracy):
        return NAN
    p = (accuracy * n + 2) / (n + 4)
    return math.sqrt(p * (1 - p) / (n + 4))


def _binomial_tail(correct: int, n: int) -> float:
    """P(X >= correct) for X ~ Binomial(n, 1/2): how often chance does as well."""
    return float(sum(math.comb(n, k) for k in range(correct, n + 1)) / 2**n) if n else NAN


def classifier_two_sample_test(
    gen_features: Sequence[Mapping[str, float]] | np.ndarray,
    real_features: Sequence[Mapping[str, float]] | np.ndarray,
    folds: int = 5,
    seed: int = 0,
    repeats: int = 1,
    columns: list[str] | None = None,
) -> dict[str, Any]:
    """Classifier two-sample test (Lopez-Paz & Oquab 2017): how well classifiers tell
    generated pieces from real ones by their features, cross-validated.

    The larger set is subsampled (seeded) to the size of the smaller, so chance is 0.5. Folds
    are stratified; in each, NaN are imputed with the training fold's column means and the
    columns standardised by the training fold. Three fixed classifiers, none tuned:
    L2 logistic regression (penalty :data:`LOGISTIC_L2`), k-nearest neighbours (k ~ sqrt of
    the training size) and gradient-boosted stumps (:data:`STUMP_ROUNDS` rounds). Accuracy is
    over every held-out prediction; with ``repeats`` > 1 it is averaged over that many
    subsamples and fold assignments.

    Returns ``accuracy`` (the best classifier's: a stronger classifier is better evidence; under
    the null the best of three reads slightly above 0.5, which the real-vs-real ceiling shows),
    ``best``, each classifier's accuracy, ``se`` (binomial standard error of the headline
    over the ``n`` held-out predictions of one repeat, :func:`binomial_se`), ``p_values``
    (one-sided binomial, per classifier, first repeat), ``n_per_class``, ``n_features`` and
    ``top_features`` (the five largest standardised mean differences, generated minus real).
    NaN figures when a set has fewer pieces than ``folds``.
    """
    xg, cols = _feature_matrix(gen_features, columns)
    xr, _ = _feature_matrix(real_features, cols)
    n = min(len(xg), len(xr))
    out: dict[str, Any] = {
        "accuracy": NAN,
        "best": None,
        "se": NAN,
        "n_per_class": n,
        "n_features": len(cols),
        "folds": folds,
        "repeats": repeats,
        **dict.fromkeys(CLASSIFIERS, NAN),
        "p_values": dict.fromkeys(CLASSIFIERS, NAN),
        "top_features": [],
    }
    if n < max(folds, 2) or folds < 2:
        return out
    rng = np.random.default_rng(seed)
    accs: dict[str, list[float]] = {c: [] for c in CLASSIFIERS}
    for rep in range(repeats):
        g = xg[rng.choice(len(xg), n, replace=False)] if len(xg) > n else xg
        r = xr[rng.choice(len(xr), n, replace=False)] if len(xr) > n else xr
        x = np.vstack([g, r])
        y = np.concatenate([np.ones(n), np.zeros(n)])
        fold = np.empty(2 * n, np.int64)
        for cls in (1.0, 0.0):
            idx = np.flatnonzero(y == cls)
            fold[rng.permutation(idx)] = np.arange(len(idx)) % folds
        correct = dict.fromkeys(CLASSIFIERS, 0)
        for f in range(folds):
            test = fold == f
            if not test.any():
                continue
            tr, te = _standardise(x[~test], x[test])
            for name, predict in _PREDICTORS.items():
                p = predict(tr, y[~test], te)
                correct[name] += int(((p > 0.5) == (y[test] == 1)).sum())
        for name in CLASSIFIERS:
            accs[name].append(correct[name] / (2 * n))
            if rep == 0:
                out["p_values"][name] = _binomial_tail(correct[name], 2 * n)
    for name in CLASSIFIERS:
        out[name] = float(np.mean(accs[name]))
    best = max(CLASSIFIERS, key=lambda c: out[c])
    a = out[best]
    out["accuracy"], out["best"] = a, best
    out["se"] = binomial_se(a, 2 * n)
    out["top_features"] = _top_features(xg, xr, cols)
    return out


def _top_features(xg: np.ndarray, xr: np.ndarray, cols: list[str], k: int = 5) -> list[list]:
    """The ``k`` columns whose means differ most between the sets, in pooled standard
    deviations (generated minus real): ``[name, effect]``."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN, left out
        mg, mr = np.nanmean(xg, axis=0), np.nanmean(xr, axis=0)
        sd = np.sqrt((np.nanvar(xg, axis=0) + np.nanvar(xr, axis=0)) / 2)
        effect = (mg - mr) / np.where(sd > 1e-12, sd, np.nan)
    ok = np.flatnonzero(np.isfinite(effect))
    best = ok[np.argsort(-np.abs(effect[ok]))[:k]]
    return [[cols[i], round(float(effect[i]), 3)] for i in best]
