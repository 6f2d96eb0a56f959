"""Bars and beats of a score as arrays, for metrics that count beats or report locations.

A beat is one unit of the time signature's denominator (a quarter in 4/4 and 3/4, an eighth
in 6/8). A time-signature change starts a new bar, as in :meth:`Score.bar_starts`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musegen.score import Score, TimeSignature


@dataclass(frozen=True)
class TimeGrid:
    """Start ticks of every bar and beat in ``[0, end)`` (at least one of each)."""

    bar_starts: np.ndarray
    bar_lengths: np.ndarray
    beat_starts: np.ndarray
    beat_lengths: np.ndarray
    end: int

    @property
    def n_bars(self) -> int:
        return len(self.bar_starts)

    @property
    def n_beats(self) -> int:
        return len(self.beat_starts)

    def bar_index(self, ticks: np.ndarray | int) -> np.ndarray:
        """0-based bar of each tick (ticks before 0 count as bar 0)."""
        t = np.asarray(ticks, dtype=np.int64)
        return np.clip(np.searchsorted(self.bar_starts, t, side="right") - 1, 0, None)

    def beat_index(self, ticks: np.ndarray | int) -> np.ndarray:
        """0-based beat of each tick."""
        t = np.asarray(ticks, dtype=np.int64)
        return np.clip(np.searchsorted(self.beat_starts, t, side="right") - 1, 0, None)

    def locate(self, ticks: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """1-based bar numbers and 1-based beats within the bar (2.5 = halfway through beat 2)."""
        t = np.asarray(ticks, dtype=np.int64)
        bar = self.bar_index(t)
        beat_len = self.beat_lengths[self.beat_index(t)]
        beat = 1.0 + (t - self.bar_starts[bar]) / beat_len
        return bar + 1, beat

    def bar_beat(self, tick: int) -> tuple[int, float]:
        """``(bar, beat)`` of one tick, both 1-based."""
        bar, beat = self.locate(np.array([tick]))
        return int(bar[0]), round(float(beat[0]), 4)


def time_grid(score: Score, end: int | None = None) -> TimeGrid:
    """The bars and beats of ``score`` up to ``end`` (default: the score's end)."""
    end = score.end if end is None else int(end)
    sigs = [ts for ts in score.time_signatures if ts.time < max(end, 1)]
    if not sigs or sigs[0].time > 0:
        sigs = [TimeSignature(0), *sigs]
    bars, bar_len, beats, beat_len = [], [], [], []
    for k, ts in enumerate(sigs):
        seg_end = sigs[k + 1].time if k + 1 < len(sigs) else max(end, ts.time + 1)
        if seg_end <= ts.time:
            continue
        step = max(ts.bar_ticks(score.tpq), 1)
        unit = max(score.tpq * 4 // max(ts.denominator, 1), 1)
        b = np.arange(ts.time, seg_end, step, dtype=np.int64)
        bars.append(b)
        bar_len.append(np.full(len(b), step, np.int64))
        q = np.arange(ts.time, seg_end, unit, dtype=np.int64)
        beats.append(q)
        beat_len.append(np.full(len(q), unit, np.int64))
    return TimeGrid(
        np.concatenate(bars),
        np.concatenate(bar_len),
        np.concatenate(beats),
        np.concatenate(beat_len),
        end,
    )
