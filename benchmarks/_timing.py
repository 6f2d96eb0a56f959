"""Speed figures that hold on a shared machine: ours and the peer timed in alternating short
rounds, the figure being the median of the per-round ratios.

Other processes slow a machine down in bursts. Timing ours for a minute and then the peer
for a minute lets a burst land on one side only (``benchmarks/train.py`` once gave 1.60-1.86x
on a quiet host and 0.64x beside another job). Timing them round by round (ours, peer,
peer, ours, ... the order rotating so neither always runs first) puts both sides of a round
under nearly the same load, and the ratio of the two within a round cancels it; the median
over rounds drops the rounds a burst split. The spread of the per-round ratios says how
much to trust the figure.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved(
    runs: dict[str, Callable[[], object]], rounds: int
) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of each run in each of ``rounds`` rounds: every run once per
    round, the order rotated by one each round. CPU time is this process's, which other
    processes taking turns on the cores do not add to."""
    names = list(runs)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            wall, cpu = time.perf_counter(), time.process_time()
            runs[name]()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def paired_ratios(ours: list[float], peer: list[float]) -> list[float]:
    """Per-round speed ratios (peer seconds / our seconds: > 1 means ours is faster)."""
    return [p / o for o, p in zip(ours, peer, strict=True)]


def spread(ratios: list[float]) -> dict[str, object]:
    """The figure and its spread, for a JSON line: ``ratio`` (median of the paired ratios),
    ``ratio_quartiles`` (first and third), ``ratio_range`` (min, max) and ``rounds``."""
    q = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios * 3
    return {
        "ratio": round(statistics.median(ratios), 3),
        "ratio_quartiles": [round(q[0], 3), round(q[2], 3)],
        "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
        "rounds": len(ratios),
    }
