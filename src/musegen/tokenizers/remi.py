"""REMI tokenizer (Huang & Yang 2020) with REMI+-style program tokens for multi-track music.

Token order, per bar::

    BAR [TIME_SIG]                             TIME_SIG on the first bar and at meter changes
      POSITION [TEMPO]                         per onset (or tempo change), increasing in a bar
        [PROGRAM] PITCH [VELOCITY] DURATION    per note, sorted by (program, pitch, duration,
                                               velocity), none twice (the grammar keeps it so)

Empty bars still get their BAR token. A PROGRAM token (0..127, 128 = drums) precedes the first
note of each program at a position, so every position names its instruments afresh: a chord
of one instrument costs one PROGRAM token, and a sampler never has to remember the instrument
across positions.

Time is a grid of ``positions_per_quarter`` steps per quarter note (default 12: 16ths and
8th-note triplets are exact); decoded scores are at 480 ticks per quarter.

:meth:`RemiTokenizer.prepare` gives the canonical form the tokens describe, which is what
``decode(encode(s))`` returns:

* onsets and offsets snap to the nearest grid step (ties go later); every note lasts at least
  one step and at most ``max_duration_quarters`` (longer notes are clipped);
* notes outside ``pitch_range`` or starting before tick 0 are dropped;
* velocities become the centre of their bin (64 when ``velocity_bins == 0``);
* tempos become the nearest of ``tempo_bins`` log-spaced values; the first tempo holds from tick
  0 (120 qpm if the score has none); changes that keep the bin are dropped, and so are changes
  after the last bar (no tempo map at all when ``tempo_bins == 0``);
* a time signature outside ``time_signatures`` becomes the supported one with the nearest bar
  length (ties: same denominator first, then the smaller numerator); 4/4 is assumed before
  the first one. A change takes effect at the first bar line at or after it (REMI cannot
  describe an incomplete bar); changes at or after the end of the last note are dropped;
* tracks are merged by (program, is_drum) key (all into one program-0 track when
  ``programs=False``); exact duplicate notes are dropped and empty tracks vanish. Track
  names, voice labels and key signatures are not encoded.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from itertools import pairwise
from typing import Any, ClassVar

import numpy as np

from musegen.errors import MusegenError
from musegen.score import NOTE_DTYPE, Score, Tempo, TimeSignature, Track
from musegen.tokenizers.base import (
    BOS,
    EOS,
    PAD,
    BatchGrammar,
    Grammar,
    Tokenizer,
    TokenizerConfig,
    Vocab,
)

TPQ = 480  # resolution of decoded scores
DRUMS = 128  # program number of drum tracks in PROGRAM tokens
DEFAULT_VELOCITY = 64
DEFAULT_TIME_SIGNATURES = (
    "2/2", "3/2", "2/4", "3/4", "4/4", "5/4", "6/4", "7/4",
    "3/8", "5/8", "6/8", "7/8", "9/8", "12/8",
)  # fmt: skip

# Token kinds: fixed small ints whatever the config (absent blocks simply never occur).
K_PAD, K_BOS, K_EOS, K_BAR, K_TS, K_POS, K_TEMPO, K_PROG, K_PITCH, K_VEL, K_DUR = range(11)
_START = 11  # grammar state before the first token
_NOTE_RECORD = np.dtype((np.void, NOTE_DTYPE.itemsize))  # a note as raw bytes
_KIND_OF_BLOCK = {
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
    """REMI options; every field is plain JSON."""

    positions_per_quarter: int = 12  # grid steps per quarter; must divide 480
    max_duration_quarters: int = 8  # longest note; longer ones are clipped
    velocity_bins: int = 32  # 0: no VELOCITY tokens, every note decodes at velocity 64
    programs: bool = True  # False: no PROGRAM tokens, all tracks merged into one
    tempo_bins: int = 32  # 0: no TEMPO tokens
    tempo_range: list[float] = field(default_factory=lambda: [40.0, 250.0])  # qpm, log-spaced
    time_signatures: list[str] = field(default_factory=lambda: list(DEFAULT_TIME_SIGNATURES))
    pitch_range: list[int] = field(default_factory=lambda: [0, 127])  # inclusive

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
        if len(self.tempo_range) != 2 or len(self.pitch_range) != 2:
            raise MusegenError("tempo_range and pitch_range must be [lo, hi] pairs")
        lo, hi = self.tempo_range
        if not (0 < lo < hi or (0 < lo == hi and self.tempo_bins <= 1)):
            raise MusegenError(f"tempo_range must be two qpm values 0 < lo < hi, got {lo}, {hi}")
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


@dataclass
class _Canonical:
    """A score as REMI sees it: note columns and maps on the grid (times in steps)."""

    onset: np.ndarray  # int64 steps
    duration: np.ndarray  # int64 steps, 1..max
    pitch: np.ndarray  # int64 MIDI pitch
    velocity: np.ndarray  # int64 velocity bin
    program: np.ndarray  # int64 0..128 (128 = drums)
    ts_steps: np.ndarray  # int64 bar-line steps of meter changes, first is 0
    ts_index: np.ndarray  # int64 index into the supported signatures
    tempo_steps: np.ndarray  # int64 steps, first is 0
    tempo_index: np.ndarray  # int64 tempo bin

    @property
    def end(self) -> int:
        """Step at which the last note ends (0 without notes)."""
        return int((self.onset + self.duration).max()) if len(self.onset) else 0


def _forward_fill_index(mask: np.ndarray, index: np.ndarray) -> np.ndarray:
    """For each element, the index of the last True at or before it (-1 if none);
    ``index`` is ``np.arange(len(mask))``."""
    idx = np.where(mask, index, -1)
    return np.maximum.accumulate(idx) if len(idx) else idx


def _last_of_runs(a: np.ndarray) -> np.ndarray:
    """True where an element differs from the next one (and at the end)."""
    out = np.ones(len(a), bool)
    np.not_equal(a[1:], a[:-1], out=out[:-1])
    return out


def _first_of_runs(a: np.ndarray) -> np.ndarray:
    """True where an element differs from the previous one (and at the start)."""
    out = np.ones(len(a), bool)
    np.not_equal(a[1:], a[:-1], out=out[1:])
    return out


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique`` for a 1-d int array, without its overhead."""
    a = np.sort(a, kind="stable")  # timsort: linear on a few sorted runs (one per track)
    return a[_last_of_runs(a)]


def _column(tracks: list[Track], name: str) -> np.ndarray:
    """One note field of all tracks as an int64 array."""
    if len(tracks) == 1:
        return tracks[0].notes[name].astype(np.int64)
    return np.concatenate([t.notes[name] for t in tracks]).astype(np.int64, copy=False)


class RemiTokenizer(Tokenizer):
    """REMI with program, tempo and time-signature tokens; see the module docstring."""

    name: ClassVar[str] = "remi"
    config_class: ClassVar[type[TokenizerConfig]] = RemiConfig
    config: RemiConfig

    # ------------------------------------------------------------------ vocabulary and tables
    def build_vocab(self) -> Vocab:
        """The id blocks, plus the lookup tables that encode, decode and the grammar use."""
        self._value_tables()
        c, ppq = self.config, self.config.positions_per_quarter
        v = Vocab()
        v.add("bar", 1, lambda _i: "Bar")
        sig_names = [f"TimeSig_{n}/{d}" for n, d in self.signatures]
        v.add("time_sig", len(sig_names), sig_names.__getitem__)
        v.add("position", int(self.bar_steps.max()), lambda i: f"Position_{i}")
        if c.tempo_bins:
            v.add("tempo", c.tempo_bins, lambda i: f"Tempo_{self.tempos[i]:g}")
        if c.programs:
            v.add("program", 129, lambda i: "Program_drums" if i == DRUMS else f"Program_{i}")
        v.add("pitch", self.n_pitch, lambda i: f"Pitch_{i + self.pitch_lo}")
        if c.velocity_bins:
            v.add("velocity", c.velocity_bins, lambda i: f"Velocity_{self.velocities[i]}")
        v.add("duration", self.max_steps, lambda i: f"Duration_{Fraction(i + 1, ppq)}")
        self._id_tables(v)
        return v

    def _value_tables(self) -> None:
        """Grid, meter, pitch, velocity and tempo values the config implies."""
        c, ppq = self.config, self.config.positions_per_quarter
        self.step_ticks = TPQ // ppq
        self.max_steps = c.max_duration_quarters * ppq
        self.signatures = c.signatures()
        self.bar_steps = np.array([ppq * 4 * n // d for n, d in self.signatures], np.int64)
        self._bar_lengths = self.bar_steps.tolist()
        self._signature_memo: dict[tuple[int, int], int] = {}
        self.default_signature = self._signature_index(4, 4)
        self.pitch_lo = c.pitch_range[0]
        self.n_pitch = c.pitch_range[1] - self.pitch_lo + 1
        self.velocities = self._velocity_values(c.velocity_bins)
        mid = (self.velocities[:-1] + self.velocities[1:]) / 2
        self._velocity_bin = np.searchsorted(mid, np.arange(128))  # velocity -> nearest bin
        self.tempos = self._tempo_values(c.tempo_bins, *c.tempo_range)
        self._tempo_mid = np.log(self.tempos[:-1] * self.tempos[1:]) / 2  # log-space midpoints

    def _id_tables(self, v: Vocab) -> None:
        """Block offsets by kind, id -> (kind, value) tables and the grammar's masks."""
        self.off = {_KIND_OF_BLOCK[name]: lo for name, (lo, _n) in v.blocks.items()}
        self.kind_of = np.zeros(len(v), np.int64)
        self.value_of = np.zeros(len(v), np.int64)
        for name, (lo, n) in v.blocks.items():
            self.kind_of[lo : lo + n] = _KIND_OF_BLOCK[name]
            self.value_of[lo : lo + n] = np.arange(n)
        self._masks = self._grammar_masks(v)

    @staticmethod
    def _velocity_values(bins: int) -> np.ndarray:
        """Centres of ``bins`` equal bins over 1..127 (just 64 when there are none)."""
        if bins == 0:
            return np.array([DEFAULT_VELOCITY], np.int64)
        edges = np.linspace(0.5, 127.5, bins + 1)
        return np.rint((edges[:-1] + edges[1:]) / 2).astype(np.int64)

    @staticmethod
    def _tempo_values(bins: int, lo: float, hi: float) -> np.ndarray:
        """``bins`` log-spaced tempos, whole qpm where that keeps them apart."""
        values = np.geomspace(lo, hi, bins)
        whole = np.rint(values)
        return whole if len(np.unique(whole)) == bins else np.round(values, 2)

    def _signature_index(self, num: int, den: int) -> int:
        """Index of the supported signature for ``num/den`` (nearest bar length if unsupported)."""
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

    def _to_steps(self, ticks: np.ndarray | list[int] | int, tpq: int) -> np.ndarray:
        """Ticks at ``tpq`` to the nearest grid step (ties go later), in exact integers."""
        return self._step(np.asarray(ticks, np.int64), tpq)  # type: ignore[return-value]

    def _step(self, tick: Any, tpq: int) -> Any:
        """:meth:`_to_steps` of a Python int (kept in Python integers) or an int64 array."""
        ppq = self.config.positions_per_quarter
        step, rest = divmod(tpq, ppq)
        if rest == 0 and step % 2 == 0:  # the usual case: a whole, even number of ticks a step
            return (tick + step // 2) // step
        return (tick * (2 * ppq) + tpq) // (2 * tpq)

    # ------------------------------------------------------------------ canonical form
    def _canonical(self, score: Score) -> _Canonical:
        """The score on the grid, in steps, with maps cleaned as the module docstring says."""
        onset, duration, pitch, velocity, program = self._notes(score)
        end = int((onset + duration).max()) if len(onset) else 0
        ts_steps, ts_index = self._time_signatures(score, end)
        tempo_steps, tempo_index = self._tempo_map(score, self._region_end(ts_steps, ts_index, end))
        return _Canonical(
            onset, duration, pitch, velocity, program, ts_steps, ts_index, tempo_steps, tempo_index
        )

    def _notes(self, score: Score) -> tuple[np.ndarray, ...]:
        """All notes quantized, binned, deduplicated and sorted by (onset, program, pitch, ...)."""
        tracks = [t for t in score.tracks if len(t.notes)]
        if not tracks:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty, empty, empty
        start, length, pitch, velocity = (_column(tracks, name) for name in NOTE_DTYPE.names)
        keys = [(DRUMS if t.is_drum else t.program) if self.config.programs else 0 for t in tracks]
        program = np.repeat(np.array(keys, np.int64), [len(t.notes) for t in tracks])
        onset = self._to_steps(start, score.tpq)
        duration = self._to_steps(start + length, score.tpq) - onset
        duration = np.minimum(np.maximum(duration, 1), self.max_steps)
        pitch = pitch - self.pitch_lo  # int64 from _column
        velocity = self._velocity_bin[np.clip(velocity, 0, 127)]

        # one int64 key per note sorts and deduplicates everything at once
        n_pitch, n_dur, n_vel = self.n_pitch, self.max_steps, len(self.velocities)
        key = ((onset * 129 + program) * n_pitch + pitch) * n_dur + duration - 1
        key = key * n_vel + velocity
        keep = (pitch >= 0) & (pitch < n_pitch) & (onset >= 0)
        key = _sorted_unique(key if keep.all() else key[keep])
        key, velocity = np.divmod(key, n_vel)
        key, duration = np.divmod(key, n_dur)
        key, pitch = np.divmod(key, n_pitch)
        onset, program = np.divmod(key, 129)
        return onset, duration + 1, pitch + self.pitch_lo, velocity, program

    def _time_signatures(self, score: Score, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Meter changes moved to bar lines, redundant ones and those after ``end`` dropped."""
        steps, index = self._meter_changes(score, end)
        return np.array(steps, np.int64), np.array(index, np.int64)

    def _meter_changes(self, score: Score, end: int) -> tuple[list[int], list[int]]:
        """:meth:`_time_signatures` as lists (plain Python: a score has a few at most)."""
        sigs = [
            (self._step(ts.time, score.tpq), self._signature_index(ts.numerator, ts.denominator))
            for ts in score.time_signatures
        ]
        if not sigs or sigs[0][0] > 0:
            sigs.insert(0, (0, self.default_signature))
        steps, index = [0], [sigs[0][1]]
        for t, sig in sigs[1:]:
            start, length = steps[-1], self._bar_lengths[index[-1]]
            at = start + max(0, -(-(t - start) // length)) * length  # first bar line at or after t
            if at == start:
                index[-1] = sig  # a later change at the same bar line wins
            else:
                steps.append(at)
                index.append(sig)
            if len(index) > 1 and index[-1] == index[-2]:
                steps.pop()
                index.pop()
        limit = max(end, 1)
        n = sum(1 for s in steps if s < limit)
        return steps[:n], index[:n]

    def _bar_starts(self, ts_steps: np.ndarray, ts_index: np.ndarray, end: int) -> np.ndarray:
        """Bar-line steps of every bar starting before ``end`` (at least one bar)."""
        limits = [*ts_steps[1:].tolist(), max(end, int(ts_steps[-1]) + 1)]
        parts = [
            np.arange(s, e, self.bar_steps[i], dtype=np.int64)
            for s, e, i in zip(ts_steps.tolist(), limits, ts_index.tolist(), strict=True)
        ]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _region_end(self, ts_steps: np.ndarray, ts_index: np.ndarray, end: int) -> int:
        """End of the last bar that starts before ``end`` (the span the tokens cover)."""
        start, length = int(ts_steps[-1]), int(self.bar_steps[ts_index[-1]])
        return start + -(-(max(end, 1) - start) // length) * length

    def _tempo_map(self, score: Score, region_end: int) -> tuple[np.ndarray, np.ndarray]:
        """Binned tempo changes on the grid: first at 0, no repeats, none after the bars."""
        if not self.config.tempo_bins:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        tempos = [t for t in score.tempos if t.qpm > 0] or [Tempo(0, 120.0)]
        index = np.searchsorted(self._tempo_mid, np.log([t.qpm for t in tempos]))
        if len(tempos) == 1:
            return np.zeros(1, np.int64), index
        steps = np.maximum(self._to_steps([t.time for t in tempos], score.tpq), 0)
        steps[0] = 0
        last = _last_of_runs(steps)  # the later of two changes at one step wins
        steps, index = steps[last], index[last]
        change = _first_of_runs(index) & (steps < region_end)
        return steps[change], index[change]

    def prepare(self, score: Score) -> Score:
        """The score as the tokens describe it (see the module docstring)."""
        return self._to_score(self._canonical(score))

    def _to_score(self, c: _Canonical) -> Score:
        """A 480-tpq score from canonical columns; tracks ordered by program, drums last."""
        order = np.lexsort((c.velocity, c.duration, c.pitch, c.onset, c.program))
        notes = np.empty(len(order), NOTE_DTYPE)
        notes["start"] = c.onset[order] * self.step_ticks
        notes["duration"] = c.duration[order] * self.step_ticks
        notes["pitch"] = c.pitch[order]
        notes["velocity"] = self.velocities[c.velocity[order]]
        program = c.program[order]
        cuts = np.flatnonzero(program[1:] != program[:-1]) + 1
        tracks = []
        for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(order)], strict=True):
            if hi > lo:
                p = int(program[lo])
                drum = p == DRUMS
                name = "Drums" if drum else ""
                tracks.append(Track(notes[lo:hi].copy(), 0 if drum else p, drum, name))
        return Score(
            tpq=TPQ,
            tracks=tracks,
            tempos=[
                Tempo(s * self.step_ticks, float(self.tempos[i]))
                for s, i in zip(c.tempo_steps.tolist(), c.tempo_index.tolist(), strict=True)
            ],
            time_signatures=[
                TimeSignature(s * self.step_ticks, *self.signatures[i])
                for s, i in zip(c.ts_steps.tolist(), c.ts_index.tolist(), strict=True)
            ],
        )

    # ------------------------------------------------------------------ encode
    def encode(self, score: Score, bos: bool = True, eos: bool = True) -> np.ndarray:
        """Token ids of ``prepare(score)``, optionally wrapped in BOS/EOS (vectorised)."""
        return self.encode_many([score], bos, eos)[0]

    def encode_many(
        self, scores: Iterable[Score], bos: bool = True, eos: bool = True
    ) -> list[np.ndarray]:
        """``[encode(s) for s in scores]``, in one vectorised pass over all the scores' notes.

        Many small pieces cost little more than one large one: numpy's per-call overhead is
        paid per batch, not per piece. The arrays returned are views of one array.
        """
        scores = list(scores)
        if not scores:
            return []
        out = self._encode_batch(scores, bos, eos)
        if out is None:  # the batch's sort keys would not fit 63 bits: one piece at a time
            return [self.encode(s, bos, eos) for s in scores]
        return out

    def _batch_notes(self, scores: list[Score]) -> tuple[int, tuple[np.ndarray, ...]] | None:
        """:meth:`_notes` of every score at once, with a leading piece column, sorted by piece
        first; and the span (steps) that keeps pieces apart in the sort key. None when the
        keys of several pieces would not fit 63 bits."""
        arrays, tracks_piece, tracks_program, tracks_tpq = [], [], [], []
        programs = self.config.programs
        for p, score in enumerate(scores):
            for t in score.tracks:
                if len(t.notes):
                    arrays.append(t.notes)
                    tracks_piece.append(p)
                    tracks_program.append((DRUMS if t.is_drum else t.program) if programs else 0)
                    tracks_tpq.append(score.tpq)
        if not arrays:
            empty = np.zeros(0, np.int64)
            return 1, (empty, empty, empty, empty, empty, empty)
        sizes = [len(a) for a in arrays]
        if len(arrays) == 1:
            notes = arrays[0]
        else:  # as raw records: concatenating structured arrays is slow in numpy 2
            notes = np.concatenate([a.view(_NOTE_RECORD) for a in arrays]).view(NOTE_DTYPE)
        start, length = notes["start"], notes["duration"]
        tpqs = set(tracks_tpq)
        if len(tpqs) == 1:
            tpq = tpqs.pop()
            onset = self._to_steps(start, tpq)
            duration = self._to_steps(start + length, tpq) - onset
        else:  # _to_steps' general rule, which its shortcut equals where that applies
            ppq2 = 2 * self.config.positions_per_quarter
            tpq_of = np.repeat(np.array(tracks_tpq, np.int64), sizes)
            onset = (start * ppq2 + tpq_of) // (2 * tpq_of)
            duration = ((start + length) * ppq2 + tpq_of) // (2 * tpq_of) - onset
        duration = np.minimum(np.maximum(duration, 1), self.max_steps)
        pitch = notes["pitch"].astype(np.int64) - self.pitch_lo
        velocity = self._velocity_bin[np.minimum(np.maximum(notes["velocity"], 0), 127)]
        program = np.repeat(np.array(tracks_program, np.int64), sizes)
        n_pitch, n_dur, n_vel = self.n_pitch, self.max_steps, len(self.velocities)
        keep = (pitch >= 0) & (pitch < n_pitch) & (onset >= 0)
        if len(scores) == 1:
            span, piece = 1, None
        else:
            piece = np.repeat(np.array(tracks_piece, np.int64), sizes)
            if not keep.all():
                piece, onset = piece[keep], onset[keep]
            span = int(onset.max()) + 1 if len(onset) else 1
            if len(scores) * span * 129 * n_pitch * n_dur * n_vel >= 1 << 62:
                return None
            onset = piece * span + onset

        # one int64 key per note sorts and deduplicates everything at once
        if piece is not None and not keep.all():
            program, pitch, duration, velocity = (
                program[keep],
                pitch[keep],
                duration[keep],
                velocity[keep],
            )
        key = ((onset * 129 + program) * n_pitch + pitch) * n_dur + duration - 1
        key = key * n_vel + velocity
        key = _sorted_unique(key if piece is not None or keep.all() else key[keep])
        key, velocity = np.divmod(key, n_vel)
        key, duration = np.divmod(key, n_dur)
        key, pitch = np.divmod(key, n_pitch)
        onset, program = np.divmod(key, 129)
        if piece is None:
            piece = np.zeros(len(onset), np.int64)
        else:
            piece, onset = np.divmod(onset, span)
        return span, (piece, onset, duration + 1, pitch, velocity, program)

    def _encode_batch(self, scores: list[Score], bos: bool, eos: bool) -> list[np.ndarray] | None:
        """The ids of each score (see :meth:`encode_many`); None when the keys do not fit."""
        found = self._batch_notes(scores)
        if found is None:
            return None
        _span, (piece, onset, duration, pitch, velocity, program) = found
        n_pieces, off = len(scores), self.off

        # each piece's end, meters, bar segments and tempo changes (a few per piece: Python)
        ends = [0] * n_pieces
        if len(onset):
            firsts = np.flatnonzero(_first_of_runs(piece))
            last_end = np.maximum.reduceat(onset + duration, firsts)
            for p, e in zip(piece[firsts].tolist(), last_end.tolist(), strict=True):
                ends[p] = e
        ts_piece, ts_steps, ts_index, regions = [], [], [], []
        seg_piece, seg_start, seg_count, seg_len = [], [], [], []
        tempo_piece, tempo_time, tempo_qpm, tempo_tpq = [], [], [], []
        bar_len, tempo_bins = self._bar_lengths, self.config.tempo_bins
        for p, (score, end) in enumerate(zip(scores, ends, strict=True)):
            steps, index = self._meter_changes(score, end)
            limits = [*steps[1:], max(end, steps[-1] + 1)]
            for s, e, i in zip(steps, limits, index, strict=True):
                seg_start.append(s)
                seg_count.append(-(-(e - s) // bar_len[i]))
                seg_len.append(bar_len[i])
            seg_piece += [p] * len(steps)
            ts_piece += [p] * len(steps)
            ts_steps += steps
            ts_index += index
            start, length = steps[-1], bar_len[index[-1]]
            regions.append(start + -(-(max(end, 1) - start) // length) * length)
            if tempo_bins:
                tempos = [(t.time, t.qpm) for t in score.tempos if t.qpm > 0] or [(0, 120.0)]
                tempo_piece += [p] * len(tempos)
                tempo_time += [0] + [t for t, _q in tempos[1:]]  # the first holds from 0
                tempo_qpm += [q for _t, q in tempos]
                tempo_tpq += [score.tpq] * len(tempos)

        # one time axis for all pieces: piece p's steps start at p * span
        span = max(regions)
        if len(seg_start) == 1:  # one piece in one meter
            bars = np.arange(seg_count[0], dtype=np.int64) * seg_len[0] + seg_start[0]
        else:
            seg_first = np.cumsum(seg_count) - seg_count
            bars = np.repeat(
                np.array(seg_start, np.int64) + np.array(seg_piece, np.int64) * span, seg_count
            )
            bars += (np.arange(len(bars)) - np.repeat(seg_first, seg_count)) * np.repeat(
                np.array(seg_len, np.int64), seg_count
            )
        ts_at = np.array(ts_steps, np.int64) + np.array(ts_piece, np.int64) * span
        ts_index_a = np.array(ts_index, np.int64)
        tempo_at, tempo_index = self._batch_tempos(
            tempo_piece, tempo_time, tempo_qpm, tempo_tpq, regions, span
        )
        when_note = piece * span + onset

        # units: bar headers, position headers, notes; each unit emits 1..4 tokens
        bar_has_ts = np.zeros(len(bars), bool)
        bar_has_ts[np.searchsorted(bars, ts_at)] = True
        first = _first_of_runs(when_note)
        positions = _sorted_unique(np.concatenate([when_note[first], tempo_at]))
        pos_tempo = np.full(len(positions), -1, np.int64)
        pos_tempo[np.searchsorted(positions, tempo_at)] = tempo_index
        if self.config.programs:
            new_prog = first | _first_of_runs(program)
        else:
            new_prog = np.zeros(len(onset), bool)
        has_vel = int(bool(self.config.velocity_bins))

        # merge the three time-sorted unit lists (stable sort of sorted runs: a linear merge)
        when = np.concatenate([bars * 3, positions * 3 + 1, when_note * 3 + 2])
        sizes = np.concatenate([1 + bar_has_ts, 1 + (pos_tempo >= 0), 2 + has_vel + new_prog])
        order = np.argsort(when, kind="stable")
        starts = np.empty(len(order), np.int64)
        starts[order] = np.cumsum(sizes[order]) - sizes[order]
        head, frame = int(bos), int(bos) + int(eos)
        if n_pieces == 1:
            starts += head
            bounds = [0, int(sizes.sum()) + frame]
        else:  # each piece's units move past the BOS/EOS of the pieces before it
            bars_piece = np.repeat(np.array(seg_piece, np.int64), seg_count)
            unit_piece = np.concatenate([bars_piece, positions // span, piece])
            starts += unit_piece * frame + head
            per_piece = np.bincount(unit_piece, weights=sizes, minlength=n_pieces)
            bounds = np.concatenate([[0], np.cumsum(per_piece.astype(np.int64) + frame)]).tolist()
        out = np.empty(bounds[-1], np.int64)
        if bos:
            out[bounds[:-1]] = BOS
        if eos:
            out[np.array(bounds[1:]) - 1] = EOS

        nb, npos = len(bars), len(positions)
        s_bar, s_pos, s_note = starts[:nb], starts[nb : nb + npos], starts[nb + npos :]
        out[s_bar] = off[K_BAR]
        out[s_bar[bar_has_ts] + 1] = off[K_TS] + ts_index_a
        bar_of_pos = np.searchsorted(bars, positions, side="right") - 1
        out[s_pos] = off[K_POS] + positions - bars[bar_of_pos]
        if len(tempo_at):
            out[s_pos[pos_tempo >= 0] + 1] = off[K_TEMPO] + tempo_index
        if self.config.programs:
            out[s_note[new_prog]] = off[K_PROG] + program[new_prog]
        s_note = s_note + new_prog
        out[s_note] = off[K_PITCH] + pitch
        if has_vel:
            out[s_note + 1] = off[K_VEL] + velocity
        out[s_note + 1 + has_vel] = off[K_DUR] + duration - 1
        return [out[lo:hi] for lo, hi in pairwise(bounds)]

    def _batch_tempos(
        self,
        piece: list[int],
        time: list[int],
        qpm: list[float],
        tpq: list[int],
        regions: list[int],
        span: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_tempo_map` of every piece at once, as times on the batch's axis."""
        if not piece:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        index = np.searchsorted(self._tempo_mid, np.log(qpm))
        pieces = np.array(piece, np.int64)
        if len(piece) == len(regions):  # one tempo per piece, at step 0
            return pieces * span, index
        ticks, tpqs = np.array(time, np.int64), np.array(tpq, np.int64)
        ppq = self.config.positions_per_quarter
        steps = np.maximum((ticks * (2 * ppq) + tpqs) // (2 * tpqs), 0)
        # the later of two changes at one step wins; then only changes of bin count
        last = _last_of_runs(steps) | _last_of_runs(pieces)
        steps, index, pieces = steps[last], index[last], pieces[last]
        change = (_first_of_runs(index) | _first_of_runs(pieces)) & (
            steps < np.array(regions, np.int64)[pieces]
        )
        return pieces[change] * span + steps[change], index[change]

    # ------------------------------------------------------------------ decode
    def _kinds(self, ids: np.ndarray | Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """Kind and value of each token up to EOS, without PAD/BOS."""
        ids = self.check_ids(ids if isinstance(ids, np.ndarray) else list(ids)).ravel()
        stop = np.flatnonzero(ids == EOS)
        if len(stop):
            ids = ids[: stop[0]]
        ids = ids[(ids != PAD) & (ids != BOS)]
        return self.kind_of[ids], self.value_of[ids]

    def _bars(
        self, kind: np.ndarray, value: np.ndarray, prev: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Bar index of each token, the meter each bar sets (-1: none), bar lengths and bar
        starts in steps. A TIME_SIG right after BAR sets that bar's meter, which holds until
        the next one."""
        is_bar = kind == K_BAR
        n_bars = int(is_bar.sum())
        bar_of = np.cumsum(is_bar) - 1  # bar index of each token (-1 before the first BAR)
        ts_tok = np.flatnonzero((kind == K_TS) & (prev == K_BAR))
        set_sig = np.full(n_bars, -1, np.int64)
        set_sig[bar_of[ts_tok]] = value[ts_tok]
        if set_sig[0] < 0:
            set_sig[0] = self.default_signature
        bar_sig = set_sig[_forward_fill_index(set_sig >= 0, np.arange(n_bars))]
        bar_len = self.bar_steps[bar_sig]
        return bar_of, set_sig, bar_len, np.cumsum(bar_len) - bar_len

    def time_reached(self, ids: np.ndarray) -> int | None:
        """The start tick of the last bar begun: every later note starts at or after it."""
        kind, value = self._kinds(ids)
        if not (kind == K_BAR).any():
            return 0
        prev = np.concatenate([[-1], kind[:-1]])
        bar_start = self._bars(kind, value, prev)[3]
        return int(bar_start[-1]) * self.step_ticks

    def decode(self, ids: np.ndarray | Iterable[int]) -> Score:
        """A score from ids: skips PAD/BOS, stops at EOS, ignores tokens out of grammar.

        Raises :class:`MusegenError` for ids outside the vocabulary.
        """
        kind, value = self._kinds(ids)
        is_bar = kind == K_BAR
        n_bars = int(is_bar.sum())
        if n_bars == 0:
            return Score(tpq=TPQ)
        prev = np.concatenate([[-1], kind[:-1]])
        bar_of, set_sig, bar_len, bar_start = self._bars(kind, value, prev)
        ts_bars = np.flatnonzero(set_sig >= 0)

        # time of each token: its bar's start + the last POSITION since that BAR (-1: none/bad)
        bar = np.maximum(bar_of, 0)
        index = np.arange(len(kind))
        last_bar = _forward_fill_index(is_bar, index)
        last_pos = _forward_fill_index(kind == K_POS, index)
        pos = value[np.maximum(last_pos, 0)]
        placed = (last_pos > last_bar) & (last_bar >= 0) & (pos < bar_len[bar])
        when = np.where(placed, bar_start[bar] + pos, -1)

        # notes: PITCH [VELOCITY] DURATION at a placed position (after a PROGRAM there)
        has_vel = int(bool(self.config.velocity_bins))
        n_cand = max(len(kind) - 1 - has_vel, 0)
        cand = (kind[:n_cand] == K_PITCH) & (kind[1 + has_vel :] == K_DUR) & (when[:n_cand] >= 0)
        if has_vel:
            cand &= kind[1 : 1 + n_cand] == K_VEL
        if self.config.programs:
            last_prog = _forward_fill_index(kind == K_PROG, index)
            cand &= last_prog[:n_cand] > last_pos[:n_cand]
        at = np.flatnonzero(cand)
        program = value[last_prog[at]] if self.config.programs else np.zeros(len(at), np.int64)

        # tempos: TEMPO right after a placed POSITION; the later of two at one time wins
        tempo_tok = np.flatnonzero((kind == K_TEMPO) & (prev == K_POS) & (when >= 0))
        order = np.argsort(when[tempo_tok], kind="stable")
        tempo_steps, tempo_index = when[tempo_tok][order], value[tempo_tok][order]
        last = _last_of_runs(tempo_steps)

        return self._to_score(
            _Canonical(
                onset=when[at],
                duration=value[at + 1 + has_vel] + 1,
                pitch=value[at] + self.pitch_lo,
                velocity=value[at + 1] if has_vel else np.zeros(len(at), np.int64),
                program=program,
                ts_steps=bar_start[ts_bars],
                ts_index=set_sig[ts_bars],  # = the forward-filled meter there
                tempo_steps=tempo_steps[last],
                tempo_index=tempo_index[last],
            )
        )

    # ------------------------------------------------------------------ grammar
    def _grammar_masks(self, v: Vocab) -> np.ndarray:
        """Allowed-next masks by the kind of the last token, positions left out."""
        c = self.config
        note_start = ("program",) if c.programs else ("pitch",)
        after_pitch = ("velocity",) if c.velocity_bins else ("duration",)
        tempo = ("tempo",) if c.tempo_bins else ()
        allowed = {
            _START: ("BOS",),
            K_BOS: ("bar", "EOS"),
            K_BAR: ("time_sig", "bar", "EOS"),
            K_TS: ("bar", "EOS"),
            K_POS: (*tempo, *note_start),
            K_TEMPO: (*note_start, "bar", "EOS"),
            K_PROG: ("pitch",),
            K_PITCH: after_pitch,
            K_VEL: ("duration",),
            K_DUR: (*note_start, "pitch", "bar", "EOS") if c.programs else ("pitch", "bar", "EOS"),
            K_EOS: ("PAD",),
        }
        masks = np.zeros((_START + 1, len(v)), bool)
        for k, names in allowed.items():
            masks[k] = v.mask(*names)
        masks[K_PAD] = masks[K_EOS]  # PAD only follows EOS in a valid sequence
        return masks

    def grammar(self) -> RemiGrammar:
        return RemiGrammar(self)

    def batch_grammar(self, n: int, prefix: Iterable[int] = ()) -> RemiBatchGrammar:
        return RemiBatchGrammar(self, n, prefix)

    @cached_property
    def _note_layout(self) -> _NoteLayout:
        """Where the note tokens lie, for the grammars' note order."""
        return _NoteLayout(self)

    @cached_property
    def _grammar_table(self) -> _GrammarTable:
        """The grammar as lookup tables, for :class:`RemiBatchGrammar`."""
        return _GrammarTable(self)


class _GrammarTable:
    """:class:`RemiGrammar` as tables, so a batch of sequences steps with a few gathers.

    A sequence's state is the kind of its last token and its *phase*: position + 1 and bar
    length, as ``(position + 1) * n_lengths + length index``. ``rows[kind, phase]`` is the row
    of ``masks`` (allowed next ids) for that state: row ``kind`` for kinds a POSITION cannot
    follow, else one row per phase. ``next_phase[phase, id]`` is the phase after ``id`` (a BAR
    resets the position, a POSITION sets it, a time signature sets the length).
    """

    def __init__(self, tok: RemiTokenizer) -> None:
        lo, n_pos, V = tok.off[K_POS], tok.vocab.size("position"), len(tok.vocab)
        self.bar_lengths = np.unique(tok.bar_steps)
        n_len = self.n_lengths = len(self.bar_lengths)
        values = np.arange(n_pos)
        after_pos = values >= np.arange(n_pos + 1)[:, None, None]  # [position + 1, 1, value]
        in_bar = values < self.bar_lengths[None, :, None]  # [1, length, value]
        kinds = sorted(RemiGrammar._POSITION_AFTER)
        n_phase = (n_pos + 1) * n_len
        shape = (len(kinds), n_pos + 1, n_len, V)
        by_phase = np.broadcast_to(tok._masks[kinds][:, None, None, :], shape).copy()
        by_phase[..., lo : lo + n_pos] |= after_pos & in_bar
        self.masks = np.concatenate([tok._masks, by_phase.reshape(-1, V)])
        self.rows = np.repeat(np.arange(_START + 1)[:, None], n_phase, axis=1)
        for i, k in enumerate(kinds):
            self.rows[k] = len(tok._masks) + i * n_phase + np.arange(n_phase)
        pos1, length = np.divmod(np.arange(n_phase), n_len)
        sets_pos = (tok.kind_of == K_BAR) | (tok.kind_of == K_POS)
        pos1_of = np.where(tok.kind_of == K_POS, tok.value_of + 1, 0)
        new_pos1 = np.where(sets_pos, pos1_of, pos1[:, None])
        ts_length = np.searchsorted(self.bar_lengths, tok.bar_steps)
        sets_len = tok.kind_of == K_TS
        new_len = np.where(
            sets_len, ts_length[np.where(sets_len, tok.value_of, 0)], length[:, None]
        )
        self.next_phase = (new_pos1 * n_len + new_len).astype(np.int32)

    def phase(self, position: int, bar_length: int) -> int:
        return (position + 1) * self.n_lengths + int(np.searchsorted(self.bar_lengths, bar_length))


class _NoteLayout:
    """Where the note tokens lie in a tokenizer's vocabulary, for :class:`_NoteOrder` and
    :class:`_OneNoteOrder` (made once per tokenizer)."""

    def __init__(self, tok: RemiTokenizer) -> None:
        self.kind_of, self.value_of = tok.kind_of, tok.value_of
        self.kinds, self.values_of = tok.kind_of.tolist(), tok.value_of.tolist()  # for ints
        self.max_dur = tok.max_steps
        self.n_vel = len(tok.velocities) if tok.config.velocity_bins else 0
        sizes = ((K_PROG, 129), (K_PITCH, tok.n_pitch), (K_VEL, self.n_vel), (K_DUR, self.max_dur))
        self.slices = {k: slice(tok.off[k], tok.off[k] + n) for k, n in sizes if k in tok.off}
        self.starts = {k: sl.start for k, sl in self.slices.items()}
        self.values = {k: np.arange(sl.stop - sl.start) for k, sl in self.slices.items()}
        self.anew = np.zeros(_START + 1, bool)  # kinds that start a new group of notes
        self.anew[[K_BAR, K_POS, K_PROG]] = True


class _NoteOrder:
    """The order of the notes at one position, as the encoder writes them: by program (each
    named once, rising), then pitch, duration and velocity bin, no note twice. Kept for ``n``
    sequences at once; :meth:`restrict` takes out of a mask the ids that would break it.

    Without it a sampler can pile notes on one onset without end (a model in a loop wrote 312
    at one onset). Unisons with different durations are real (two voices), so a pitch may
    repeat, with a longer duration or, at the same duration, a higher velocity bin; a pitch
    repeats only where such a note is left, and a velocity is narrowed only where the duration
    cannot grow, so no state is a dead end.
    """

    def __init__(self, layout: _NoteLayout, n: int) -> None:
        self.layout = layout
        self.max_dur, self.n_vel = layout.max_dur, layout.n_vel
        # program of the current group, the last finished note, the note being written
        self.prog, self.pitch, self.dur, self.vel, self.cur_pitch, self.cur_vel = (
            np.full(n, -1, np.int64) for _ in range(6)
        )
        self._floor_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _floors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lowest pitch, lowest duration, and where velocity must rise, per sequence (made
        once per step)."""
        if self._floor_cache is None:
            room = (self.dur < self.max_dur - 1) | (self.vel < self.n_vel - 1)
            pitch = np.where(room, self.pitch, self.pitch + 1)
            same = (self.cur_pitch == self.pitch) & (self.pitch >= 0)
            dur = np.where(same, np.where(self.cur_vel > self.vel, self.dur, self.dur + 1), 0)
            vel_up = same & (self.dur >= self.max_dur - 1)
            self._floor_cache = (pitch, dur, vel_up)
        return self._floor_cache

    def restrict(self, masks: np.ndarray) -> None:
        """Take out of ``masks`` ``[n, V]`` (in place) the ids that would break the order."""
        pitch, dur, vel_up = self._floors()
        s, v = self.layout.slices, self.layout.values
        if K_PROG in s and self.prog.max() >= 0:
            masks[:, s[K_PROG]] &= v[K_PROG] > self.prog[:, None]
        if pitch.max() > 0:
            masks[:, s[K_PITCH]] &= v[K_PITCH] >= pitch[:, None]
        if K_VEL in s and vel_up.any():
            masks[:, s[K_VEL]] &= ~vel_up[:, None] | (v[K_VEL] > self.vel[:, None])
        if dur.max() > 0:
            masks[:, s[K_DUR]] &= v[K_DUR] >= dur[:, None]

    def allows(self, tokens: np.ndarray) -> np.ndarray:
        """Whether each sequence's token keeps the order (tokens of other kinds: yes)."""
        pitch, dur, vel_up = self._floors()
        kind, value = self.layout.kind_of[tokens], self.layout.value_of[tokens]
        return (
            ((kind != K_PROG) | (value > self.prog))
            & ((kind != K_PITCH) | (value >= pitch))
            & ((kind != K_VEL) | ~vel_up | (value > self.vel))
            & ((kind != K_DUR) | (value >= dur))
        )

    def step(self, tokens: np.ndarray) -> None:
        kind, value = self.layout.kind_of[tokens], self.layout.value_of[tokens]
        anew = self.layout.anew[kind]  # BAR, POSITION, PROGRAM: a new group of notes
        if anew.any():
            self.prog[anew] = np.where(kind[anew] == K_PROG, value[anew], -1)
            self.pitch[anew] = self.dur[anew] = self.vel[anew] = -1
        done = kind == K_DUR
        if done.any():
            self.pitch[done], self.dur[done] = self.cur_pitch[done], value[done]
            self.vel[done] = self.cur_vel[done]
        is_pitch = kind == K_PITCH
        if is_pitch.any():
            self.cur_pitch[is_pitch], self.cur_vel[is_pitch] = value[is_pitch], -1
        is_vel = kind == K_VEL
        if is_vel.any():
            self.cur_vel[is_vel] = value[is_vel]
        self._floor_cache = None


class _OneNoteOrder:
    """:class:`_NoteOrder` for one sequence in plain integers (:class:`RemiGrammar`, and a
    batch of one: the generator's usual case, where numpy's per-call cost would dominate; a
    mask is cut with at most three slices)."""

    _STATE = ("prog", "pitch", "dur", "vel", "cur_pitch", "cur_vel")

    def __init__(self, layout: _NoteLayout) -> None:
        self.layout = layout
        self.max_dur, self.n_vel = layout.max_dur, layout.n_vel
        self.prog = self.pitch = self.dur = self.vel = self.cur_pitch = self.cur_vel = -1

    def _floors(self) -> tuple[int, int, bool]:
        room = self.dur < self.max_dur - 1 or self.vel < self.n_vel - 1
        pitch = self.pitch if room else self.pitch + 1
        same = self.cur_pitch == self.pitch >= 0
        dur = (self.dur if self.cur_vel > self.vel else self.dur + 1) if same else 0
        return pitch, dur, same and self.dur >= self.max_dur - 1

    def restrict(self, masks: np.ndarray) -> None:
        pitch, dur, vel_up = self._floors()
        start = self.layout.starts
        if self.prog >= 0 and K_PROG in start:
            masks[:, start[K_PROG] : start[K_PROG] + self.prog + 1] = False
        if pitch > 0:
            masks[:, start[K_PITCH] : start[K_PITCH] + pitch] = False
        if vel_up and K_VEL in start:
            masks[:, start[K_VEL] : start[K_VEL] + self.vel + 1] = False
        if dur > 0:
            masks[:, start[K_DUR] : start[K_DUR] + dur] = False

    def allows(self, tokens: np.ndarray) -> np.ndarray:
        return np.array([self.allows_one(int(tokens[0]))])

    def allows_one(self, token: int) -> bool:
        kind, value = self.layout.kinds[token], self.layout.values_of[token]
        pitch, dur, vel_up = self._floors()
        return (
            (kind != K_PROG or value > self.prog)
            and (kind != K_PITCH or value >= pitch)
            and (kind != K_VEL or not vel_up or value > self.vel)
            and (kind != K_DUR or value >= dur)
        )

    def step(self, tokens: np.ndarray) -> None:
        self.step_one(int(tokens[0]))

    def step_one(self, token: int) -> None:
        kind, value = self.layout.kinds[token], self.layout.values_of[token]
        if kind in (K_BAR, K_POS, K_PROG):
            self.prog = value if kind == K_PROG else -1
            self.pitch = self.dur = self.vel = -1
        elif kind == K_DUR:
            self.pitch, self.dur, self.vel = self.cur_pitch, value, self.cur_vel
        elif kind == K_PITCH:
            self.cur_pitch, self.cur_vel = value, -1
        elif kind == K_VEL:
            self.cur_vel = value

    def repeat(self, n: int) -> _NoteOrder | _OneNoteOrder:
        """This state for a batch of ``n`` sequences."""
        if n == 1:
            return copy.copy(self)
        out = _NoteOrder(self.layout, n)
        for name in self._STATE:
            getattr(out, name)[:] = getattr(self, name)
        return out


class RemiGrammar(Grammar):
    """Which ids may come next in a REMI sequence (see the module docstring for the order).

    State: the kind of the last token, the current position in the bar and the bar length of
    the current meter; a POSITION must increase within a bar and stay below its length.
    """

    _POSITION_AFTER: ClassVar[frozenset[int]] = frozenset({K_BAR, K_TS, K_TEMPO, K_DUR})

    def __init__(self, tokenizer: RemiTokenizer) -> None:
        self._tok = tokenizer
        self._kind = _START
        self._pos = -1
        self._bar_len = int(tokenizer.bar_steps[tokenizer.default_signature])
        self._order = _OneNoteOrder(tokenizer._note_layout)

    @property
    def done(self) -> bool:
        return self._kind in (K_EOS, K_PAD)

    def mask(self) -> np.ndarray:
        m = self._tok._masks[self._kind].copy()
        if self._kind in self._POSITION_AFTER:
            lo = self._tok.off[K_POS]
            m[lo + self._pos + 1 : lo + self._bar_len] = True
        self._order.restrict(m[None])
        return m

    def _allows(self, token: int) -> bool:
        t = self._tok
        if not 0 <= token < len(t.kind_of):
            return False
        if not self._order.allows_one(token):
            return False
        if t._masks[self._kind, token]:
            return True
        return (
            self._kind in self._POSITION_AFTER
            and t.kind_of[token] == K_POS
            and self._pos < t.value_of[token] < self._bar_len
        )

    def step(self, token: int) -> None:
        if not self._allows(token):
            t = self._tok
            label = t.vocab.token(token) if 0 <= token < len(t.vocab) else str(token)
            raise ValueError(f"token {label} ({token}) is not allowed here")
        kind = int(self._tok.kind_of[token])
        if kind == K_BAR:
            self._pos = -1
        elif kind == K_TS:
            self._bar_len = int(self._tok.bar_steps[self._tok.value_of[token]])
        elif kind == K_POS:
            self._pos = int(self._tok.value_of[token])
        self._order.step_one(token)
        self._kind = kind


class RemiBatchGrammar(BatchGrammar):
    """:class:`RemiGrammar` for ``n`` sequences at once: two small state arrays.

    Each sequence's state picks one row of the tokenizer's grammar table (see
    :class:`_GrammarTable`), so a batch's mask is one gather and a step three, whatever ``n``.
    A finished sequence must be given PAD, the one id its mask allows.
    """

    def __init__(self, tokenizer: RemiTokenizer, n: int, prefix: Iterable[int] = ()) -> None:
        self._tok = tokenizer
        self._t = tokenizer._grammar_table
        g = RemiGrammar(tokenizer).feed(prefix)  # also checks the prefix
        self._kind = np.full(n, g._kind, np.int64)
        self._phase = np.full(n, self._t.phase(g._pos, g._bar_len), np.int64)
        self._rows = self._t.rows[self._kind, self._phase]
        self._order = g._order.repeat(n)
        self._finished_kind = np.zeros(_START + 1, bool)
        self._finished_kind[[K_EOS, K_PAD]] = True

    def mask(self) -> np.ndarray:
        masks = self._t.masks[self._rows]  # a gather: a new array
        self._order.restrict(masks)
        return masks

    def step(self, tokens: np.ndarray) -> None:
        t = self._t
        size = t.masks.shape[-1]
        if tokens.min() < 0 or tokens.max() >= size:
            raise ValueError(f"token ids must be in 0..{size - 1}, got {tokens}")
        ok = t.masks[self._rows, tokens] & self._order.allows(tokens)
        if not np.logical_and.reduce(ok):
            b = int(np.flatnonzero(~ok)[0])
            token = int(tokens[b])
            label = self._tok.vocab.token(token)
            raise ValueError(f"token {label} ({token}) is not allowed here (sequence {b})")
        self._kind = self._tok.kind_of[tokens]
        self._order.step(tokens)
        self._phase = t.next_phase[self._phase, tokens]
        self._rows = t.rows[self._kind, self._phase]

    @property
    def done(self) -> np.ndarray:
        return self._finished_kind[self._kind]

    def finish(self, rows: np.ndarray) -> None:
        self._kind[rows] = K_PAD
        self._rows = self._t.rows[self._kind, self._phase]


__all__ = [
    "DEFAULT_TIME_SIGNATURES",
    "RemiBatchGrammar",
    "RemiConfig",
    "RemiGrammar",
    "RemiTokenizer",
]
