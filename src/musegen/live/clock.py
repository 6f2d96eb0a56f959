"""Time for live playing: a clock to read (real or fake), and the beat grid on it.

* :class:`SystemClock` reads ``time.perf_counter``; :class:`FakeClock` is moved by hand, so
  tests check timing logic exactly, without depending on how busy the machine is.
* :class:`BeatGrid` maps seconds to beats and 16th-note steps at a tempo. Changing the tempo
  keeps the beat position at that moment (the grid bends, it does not jump).
* Tempo following (``--follow``): :class:`MidiClockFollower` reads MIDI clock in (24 pulses
  per quarter; *start* puts beat 0 at the pulse); without clock messages
  :class:`OnsetFollower` follows the player's note onsets, reading each interval between
  onsets as the nearest whole number of 16ths and nudging the tempo towards it.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from musegen.errors import MusegenError

STEPS_PER_BEAT = 4  # the live grid is 16th notes
PULSES_PER_QUARTER = 24  # MIDI clock
MIN_BPM, MAX_BPM = 30.0, 300.0


class Clock(Protocol):
    def now(self) -> float: ...


class SystemClock:
    """Seconds from ``time.perf_counter`` (monotonic, high resolution)."""

    def now(self) -> float:
        return time.perf_counter()


class FakeClock:
    """A clock that moves only when told (for tests)."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = float(start)

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t

    def set(self, t: float) -> float:
        self.t = float(t)
        return self.t


def check_bpm(bpm: float) -> float:
    if not MIN_BPM <= bpm <= MAX_BPM:
        raise MusegenError(f"tempo must be {MIN_BPM:g}..{MAX_BPM:g} beats per minute, got {bpm:g}")
    return float(bpm)


@dataclass
class BeatGrid:
    """Beats and 16th steps on a clock: beat 0 at ``origin`` seconds, at ``bpm``."""

    bpm: float = 120.0
    origin: float = 0.0
    beats_per_bar: int = 4

    def __post_init__(self) -> None:
        check_bpm(self.bpm)

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.bpm

    @property
    def step_seconds(self) -> float:
        return self.beat_seconds / STEPS_PER_BEAT

    @property
    def bar_steps(self) -> int:
        return self.beats_per_bar * STEPS_PER_BEAT

    def beat_at(self, t: float) -> float:
        return (t - self.origin) / self.beat_seconds

    def step_at(self, t: float) -> float:
        return self.beat_at(t) * STEPS_PER_BEAT

    def time_of_beat(self, beat: float) -> float:
        return self.origin + beat * self.beat_seconds

    def time_of_step(self, step: float) -> float:
        return self.origin + step * self.step_seconds

    def next_bar_step(self, t: float) -> int:
        """The first bar line (in steps) at or after ``t``."""
        bar = self.bar_steps
        return int(np.ceil(self.step_at(t) / bar - 1e-9)) * bar

    def set_bpm(self, bpm: float, at: float) -> None:
        """Change the tempo at time ``at`` keeping the beat position there."""
        beat = self.beat_at(at)
        self.bpm = check_bpm(bpm)
        self.origin = at - beat * self.beat_seconds

    def restart(self, at: float) -> None:
        """Beat 0 at ``at`` (a MIDI start message)."""
        self.origin = at


@dataclass
class MidiClockFollower:
    """Tempo from MIDI clock pulses: the median interval of the last quarter's pulses."""

    grid: BeatGrid
    window: int = PULSES_PER_QUARTER
    _last: float | None = None
    _intervals: deque[float] = field(default_factory=lambda: deque(maxlen=PULSES_PER_QUARTER))
    pulses: int = 0
    started: bool = False

    def start(self, t: float) -> None:
        self.grid.restart(t)
        self._last, self.pulses, self.started = None, 0, True
        self._intervals.clear()

    def pulse(self, t: float) -> None:
        """One clock pulse at ``t``: the tempo from the recent intervals and, after a start,
        the beat from the pulse count (pulse ``n`` after start is beat ``n / 24``)."""
        if self._last is not None and t > self._last:
            self._intervals.append(t - self._last)
        self._last = t
        position = self.pulses / PULSES_PER_QUARTER
        self.pulses += 1
        if len(self._intervals) >= self.window // 2:
            quarter = float(np.median(self._intervals)) * PULSES_PER_QUARTER
            bpm = float(np.clip(60.0 / quarter, MIN_BPM, MAX_BPM))
            if abs(bpm - self.grid.bpm) > 0.05:
                self.grid.set_bpm(bpm, t)
        if self.started:
            self.grid.origin = t - position * self.grid.beat_seconds


@dataclass
class OnsetFollower:
    """Tempo from the player's onsets: each interval between onsets, read as the nearest
    whole number (1..8) of 16ths at the current tempo, moves the tempo ``rate`` of the way
    to the one that would make it exact; intervals off the grid by more than a third of a
    step, or longer than two beats, are ignored."""

    grid: BeatGrid
    rate: float = 0.1
    _last: float | None = None

    def onset(self, t: float) -> None:
        last, self._last = self._last, t
        if last is None:
            return
        dt = t - last
        steps = dt / self.grid.step_seconds
        n = round(steps)
        if not 1 <= n <= 2 * STEPS_PER_BEAT or abs(steps - n) > 1 / 3:
            return
        exact = 60.0 * n / (STEPS_PER_BEAT * dt)
        bpm = float(np.clip(self.grid.bpm + self.rate * (exact - self.grid.bpm), MIN_BPM, MAX_BPM))
        self.grid.set_bpm(bpm, t)
