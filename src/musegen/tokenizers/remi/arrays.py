"""Run helpers on 1-d int arrays, shared by the REMI encoder and decoder.

Small and loop-free: they stand in for ``np.unique`` and friends, whose generality costs more
than the work on the short arrays of one piece.
"""

from __future__ import annotations

import numpy as np


def first_of_runs(a: np.ndarray) -> np.ndarray:
    """True where an element differs from the previous one (and at the start)."""
    out = np.ones(len(a), bool)
    np.not_equal(a[1:], a[:-1], out=out[1:])
    return out


def last_of_runs(a: np.ndarray) -> np.ndarray:
    """True where an element differs from the next one (and at the end)."""
    out = np.ones(len(a), bool)
    np.not_equal(a[1:], a[:-1], out=out[:-1])
    return out


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique`` for a 1-d int array, without its overhead."""
    a = np.sort(a, kind="stable")  # timsort: linear on a few sorted runs (one per track)
    return a[last_of_runs(a)]


def sorted_capped(a: np.ndarray, cap: int) -> np.ndarray:
    """``a`` sorted, each value kept at most ``cap`` times (1: :func:`sorted_unique`)."""
    if cap == 1:
        return sorted_unique(a)
    a = np.sort(a, kind="stable")
    index = np.arange(len(a))
    run_start = np.maximum.accumulate(np.where(first_of_runs(a), index, 0))
    return a[index - run_start < cap]


def forward_fill_index(mask: np.ndarray) -> np.ndarray:
    """For each element, the index of the last True at or before it (-1 if none)."""
    idx = np.where(mask, np.arange(len(mask)), -1)
    return np.maximum.accumulate(idx) if len(idx) else idx
