"""REMI's words: the config, the id blocks, and what each id stands for.

Every id is ``offset of its block + value``. A block's *kind* is a small fixed int (``K_BAR``,
``K_POSITION`` ...) whatever the config, so encoder, decoder and grammar switch on kinds and
never on names; an absent block (no tempos, no programs ...) is a kind that never occurs.

:class:`RemiVocab` is the tokenizer's :class:`~musegen.tokenizers.base.Vocab` plus the tables
the config implies (grid, meters, velocity and tempo bins) and the id -> (kind, value) tables,
all public and read-only by convention, so the other modules take one object and read its
fields instead of each other's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from musegen.errors import MusegenError
from musegen.tokenizers.base import TokenizerConfig, Vocab

TPQ = 480  # resolution of decoded scores
DRUMS = 128  # program number of drum tracks in PROGRAM tokens
DEFAULT_VELOCITY = 64
DEFAULT_TIME_SIGNATURES = (
    "2/2", "3/2", "2/4", "3/4", "4/4", "5/4", "6/4", "7/4",
    "3/8", "5/8", "6/8", "7/8", "9/8", "12/8",
)  # fmt: skip
# Maelzel's metronome marks, the tempi printed in scores and set on metronomes
METRONOME_MARKS = (
    40, 42, 44, 46, 48, 50, 52, 54, 56, 58, 60, 63, 66, 69, 72, 76, 80, 84, 88, 92, 96,
    100, 104, 108, 112, 116, 120, 126, 132, 138, 144, 152, 160, 168, 176, 184, 192, 200, 208,
)  # fmt: skip
COMMON_TEMPI = tuple(sorted(set(METRONOME_MARKS) | set(range(10, 401, 10))))
"""The tempi of ``tempo_grid="common"``: the metronome marks and every multiple of 10 qpm."""
TEMPO_GRIDS = ("common", "log")

# Token kinds: fixed small ints whatever the config (absent blocks simply never occur).
K_PAD, K_BOS, K_EOS, K_BAR, K_TS, K_POS, K_TEMPO, K_PROG, K_PITCH, K_VEL, K_DUR = range(11)
N_KINDS = 11
KIND_OF_BLOCK = {
    "PAD": K_PAD,
    "BOS": K_BOS,
    "EOS": K_EOS,
    "bar": K_BAR,
    "time_sig": K_TS,
    "position": K_POS,
    "tempo": K_TEMPO,
    "program": K_PROG,
    "pitch": K_PITCH,
    "velocity": K_VEL,
    "duration": K_DUR,
}


@dataclass
class RemiConfig(TokenizerConfig):
    """REMI options; every field is plain JSON.

    ``tempo_grid`` places the TEMPO tokens' values: ``"common"`` (the default) takes every
    tempo of :data:`COMMON_TEMPI` inside ``tempo_range`` (60, 63, 66, 69, 70, 72, 76, 80, 84,
    88, 90, 92, 96, 100, ... 120, 126, 130, 132, 138, 140, ...), so the tempi scores and
    sequencers use come back exactly, and ``tempo_bins`` only switches TEMPO tokens on (any
    value > 0) or off (0); ``"log"`` takes ``tempo_bins`` log-spaced values over ``tempo_range``
    (whole qpm where they stay apart: 120 became 123).

    ``unisons``: how many identical notes (same program, pitch, duration and velocity bin)
    one position may hold. Tracks of one program are merged, so two voices of one
    instrument on the same pitch at the same time are two identical notes: with
    ``unisons >= 2`` both stay (up to that many copies); with 1 the copies go. The limit also
    keeps a sampler from piling copies of one note on an onset.

    A description saved before ``tempo_grid`` and ``unisons`` existed (a model's or a
    dataset's ``tokenizer`` entry) rebuilds the tokenizer it was made with: ``"log"`` and 1
    (see :data:`SAVED_DEFAULTS` and :func:`musegen.tokenizers.tokenizer_from_dict`).
    """

    positions_per_quarter: int = 12  # grid steps per quarter; must divide 480
    max_duration_quarters: int = 8  # longest note; longer ones are clipped
    velocity_bins: int = 32  # 0: no VELOCITY tokens, every note decodes at velocity 64
    programs: bool = True  # False: no PROGRAM tokens, all tracks merged into one
    tempo_bins: int = 32  # 0: no TEMPO tokens (see tempo_grid for what other values mean)
    tempo_range: list[float] = field(default_factory=lambda: [40.0, 250.0])  # qpm
    time_signatures: list[str] = field(default_factory=lambda: list(DEFAULT_TIME_SIGNATURES))
    pitch_range: list[int] = field(default_factory=lambda: [0, 127])  # inclusive
    tempo_grid: str = "common"  # "common" tempi in tempo_range, or tempo_bins "log"-spaced
    unisons: int = 4  # copies of one note a position may hold (1: none)

    def __post_init__(self) -> None:
        ppq = self.positions_per_quarter
        if ppq <= 0 or TPQ % ppq:
            raise MusegenError(f"positions_per_quarter must divide {TPQ}, got {ppq}")
        if self.max_duration_quarters <= 0:
            raise MusegenError("max_duration_quarters must be positive")
        if not 0 <= self.velocity_bins <= 127:
            raise MusegenError(f"velocity_bins must be 0..127, got {self.velocity_bins}")
        if self.tempo_bins < 0:
            raise MusegenError(f"tempo_bins must be >= 0, got {self.tempo_bins}")
        if self.tempo_grid not in TEMPO_GRIDS:
            raise MusegenError(
                f"tempo_grid must be one of {', '.join(TEMPO_GRIDS)}, got {self.tempo_grid!r}"
            )
        if not 1 <= self.unisons <= 16:
            raise MusegenError(f"unisons must be 1..16, got {self.unisons}")
        if len(self.tempo_range) != 2 or len(self.pitch_range) != 2:
            raise MusegenError("tempo_range and pitch_range must be [lo, hi] pairs")
        lo, hi = self.tempo_range
        if not (0 < lo < hi or (0 < lo == hi and self.tempo_bins <= 1)):
            raise MusegenError(f"tempo_range must be two qpm values 0 < lo < hi, got {lo}, {hi}")
        if self.tempo_bins and self.tempo_grid == "common" and not len(self.tempo_values()):
            raise MusegenError(
                f"tempo_range {lo}..{hi} holds no common tempo; widen it or use tempo_grid 'log'"
            )
        plo, phi = self.pitch_range
        if not 0 <= plo <= phi <= 127:
            raise MusegenError(f"pitch_range must be 0 <= lo <= hi <= 127, got {plo}, {phi}")
        sigs = self.signatures()
        if not sigs or len(set(sigs)) != len(sigs):
            raise MusegenError("time_signatures must be a non-empty list without repeats")
        for num, den in sigs:
            if (ppq * 4 * num) % den:
                raise MusegenError(
                    f"a {num}/{den} bar is not a whole number of grid steps at "
                    f"positions_per_quarter={ppq}; drop it or use a finer grid"
                )

    def tempo_values(self) -> np.ndarray:
        """The qpm of each TEMPO token, rising (none when ``tempo_bins`` is 0)."""
        if not self.tempo_bins:
            return np.zeros(0)
        lo, hi = self.tempo_range
        if self.tempo_grid == "common":
            return np.array([t for t in COMMON_TEMPI if lo <= t <= hi], np.float64)
        return _tempo_values(self.tempo_bins, lo, hi)

    def signatures(self) -> list[tuple[int, int]]:
        """``time_signatures`` as (numerator, denominator) pairs."""
        out = []
        for s in self.time_signatures:
            try:
                num, den = (int(x) for x in str(s).split("/"))
            except ValueError:
                raise MusegenError(f"time signature must look like '3/4', got {s!r}") from None
            if num <= 0 or den <= 0:
                raise MusegenError(f"time signature must be positive, got {s!r}")
            out.append((num, den))
        return out


class RemiVocab(Vocab):
    """The REMI id blocks of a config, and the values behind them.

    Grid and meters: ``step_ticks`` (ticks of a step at :data:`TPQ`), ``max_steps`` (longest
    duration), ``signatures`` and their ``bar_steps``, ``default_signature`` (4/4's index,
    assumed before the first time signature). Bins: ``velocities`` (centre of each bin),
    ``tempos`` (qpm of each bin), ``pitch_lo`` and ``n_pitch``. Ids: ``off`` (block offset by
    kind), ``kind_of`` and ``value_of`` (kind and value of every id).
    """

    def __init__(self, config: RemiConfig) -> None:
        super().__init__()
        self.config = c = config
        ppq = c.positions_per_quarter
        self.step_ticks = TPQ // ppq
        self.max_steps = c.max_duration_quarters * ppq
        self.signatures = c.signatures()
        self.bar_steps = np.array([ppq * 4 * n // d for n, d in self.signatures], np.int64)
        self.bar_lengths: list[int] = self.bar_steps.tolist()
        self._signature_memo: dict[tuple[int, int], int] = {}
        self.default_signature = self.signature_index(4, 4)
        self.pitch_lo = c.pitch_range[0]
        self.n_pitch = c.pitch_range[1] - self.pitch_lo + 1
        self.velocities = _velocity_values(c.velocity_bins)
        mid = (self.velocities[:-1] + self.velocities[1:]) / 2
        self.velocity_bin = np.searchsorted(mid, np.arange(128))  # velocity -> nearest bin
        self.tempos = c.tempo_values()
        self.tempo_mid = np.log(self.tempos[:-1] * self.tempos[1:]) / 2  # log-space midpoints

        self.add("bar", 1, lambda _i: "Bar")
        sig_names = [f"TimeSig_{n}/{d}" for n, d in self.signatures]
        self.add("time_sig", len(sig_names), sig_names.__getitem__)
        self.add("position", int(self.bar_steps.max()), lambda i: f"Position_{i}")
        if c.tempo_bins:
            self.add("tempo", len(self.tempos), lambda i: f"Tempo_{self.tempos[i]:g}")
        if c.programs:
            self.add("program", 129, lambda i: "Program_drums" if i == DRUMS else f"Program_{i}")
        self.add("pitch", self.n_pitch, lambda i: f"Pitch_{i + self.pitch_lo}")
        if c.velocity_bins:
            self.add("velocity", c.velocity_bins, lambda i: f"Velocity_{self.velocities[i]}")
        self.add("duration", self.max_steps, lambda i: f"Duration_{Fraction(i + 1, ppq)}")

        blocks = self.blocks
        self.off = {KIND_OF_BLOCK[name]: lo for name, (lo, _n) in blocks.items()}
        self.kind_of = np.zeros(len(self), np.int64)
        self.value_of = np.zeros(len(self), np.int64)
        for name, (lo, n) in blocks.items():
            self.kind_of[lo : lo + n] = KIND_OF_BLOCK[name]
            self.value_of[lo : lo + n] = np.arange(n)

    def signature_index(self, num: int, den: int) -> int:
        """Index of the supported signature for ``num/den``: itself, else the one with the
        nearest bar length (ties: same denominator first, then the smaller numerator)."""
        memo = self._signature_memo
        if (num, den) not in memo:
            memo[num, den] = self._nearest_signature(num, den)
        return memo[num, den]

    def _nearest_signature(self, num: int, den: int) -> int:
        if (num, den) in self.signatures:
            return self.signatures.index((num, den))
        if num <= 0 or den <= 0:
            num, den = 4, 4
        quarters = 4 * num / den

        def distance(i: int) -> tuple[float, bool, int]:
            n, d = self.signatures[i]
            return abs(4 * n / d - quarters), d != den, n

        return min(range(len(self.signatures)), key=distance)

    def to_steps(self, ticks: Any, tpq: int) -> Any:
        """Ticks at ``tpq`` to the nearest grid step (ties go later), in exact integers: a
        Python int stays one, an int64 array gives an int64 array."""
        ppq = self.config.positions_per_quarter
        step, rest = divmod(tpq, ppq)
        if rest == 0 and step % 2 == 0:  # the usual case: a whole, even number of ticks a step
            return (ticks + step // 2) // step
        return (ticks * (2 * ppq) + tpq) // (2 * tpq)


SAVED_DEFAULTS = {"tempo_grid": "log", "unisons": 1}
"""What a saved config that lacks these options was made with (before they existed)."""


def _velocity_values(bins: int) -> np.ndarray:
    """Centres of ``bins`` equal bins over 1..127 (just 64 when there are none)."""
    if bins == 0:
        return np.array([DEFAULT_VELOCITY], np.int64)
    edges = np.linspace(0.5, 127.5, bins + 1)
    return np.rint((edges[:-1] + edges[1:]) / 2).astype(np.int64)


def _tempo_values(bins: int, lo: float, hi: float) -> np.ndarray:
    """``bins`` log-spaced tempos, whole qpm where that keeps them apart."""
    values = np.geomspace(lo, hi, bins)
    whole = np.rint(values)
    return whole if len(np.unique(whole)) == bins else np.round(values, 2)


def describe_blocks(vocab: Vocab) -> list[str]:
    """One line per block: id range, count, name and a few of its tokens."""
    lines = []
    for name, (lo, size) in vocab.blocks.items():
        labels = [vocab.token(lo + i) for i in range(size)]
        shown = labels if size <= 4 else [*labels[:3], "…", labels[-1]]
        span = f"{lo}" if size == 1 else f"{lo}-{lo + size - 1}"
        lines.append(f"  {span:9s} {size:4d}  {name:9s} {', '.join(shown)}")
    return lines
