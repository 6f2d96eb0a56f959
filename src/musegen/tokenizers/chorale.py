"""The ``chorale`` tokenizer: four voices written together, bar by bar, counting down to the end.

A chorale is a sequence of 16th-note rows (``steps_per_quarter`` per quarter), each row four
cells in the order Soprano, Alto, Tenor, Bass. A cell is a pitch (a note of that voice starts),
``HOLD`` (the voice's note goes on) or ``REST``. So the model writes voices, not a stream to be
dealt out afterwards: unisons between voices, held notes and rests are all explicit, and every
decoded piece has exactly four monophonic voice tracks.

Around the rows::

    BOS  TS_4/4  LEN_12  [MODE_minor]  [pickup rows]  BAR_12 [MODE_minor] rows…  …  EOS

* ``TS_*``: the time signature, which fixes how many rows a bar holds.
* ``LEN_n``: the number of bars after the pickup (``LEN_far`` beyond ``max_bars``).
* ``BAR_n``: a bar begins, ``n`` bars before the end (``BAR_1`` is the last bar). The countdown
  is what lets a model plan a cadence for the end of the length it was asked for; the grammar
  makes every ``BAR_n`` follow from ``LEN_n``, so a sampled piece has exactly that many bars.
* ``MODE_major`` / ``MODE_minor`` (only with ``modes``): the piece's mode as the key finder
  reads it (:func:`musegen.theory.estimate_key`), after ``LEN`` and again after every
  ``BAR`` (the grammar repeats the first), so every training window sees it. A model that
  writes it can be asked for a minor or a major piece, and its pieces can be drawn with the
  corpus's share of each (left to itself, the chorale model wrote 26-28% of its pieces in
  minor; Bach's train split has 39-42%).
* Rows before the first ``BAR`` are the **pickup** (an anacrusis, shorter than a bar). Scores
  read from notation pad a pickup to a full bar with rests; the encoder drops that padding and
  the decoder restores it, so bar lines fall where the source put them.
* ``H_<chord>`` (only with ``beat_chords``): the harmony of the beat that follows, before the
  first row of every beat (every ``steps_per_quarter`` rows from the bar line; in a pickup,
  from its first row, so a model can write it without knowing how long the pickup will be).
  The label is the project's chord labeller (:func:`musegen.theory.best_chords`, all nine
  qualities) over the four voices' sounding pitch classes in the beat, weighted by duration,
  with the lowest pitch at the beat's start as the bass; ``H_N`` where nothing sounds. A model
  that writes it plans the harmony a beat ahead, then voices it (as TonicNet does for the JSB
  chorales, Peracha 2019); decoding drops it.
* ``FERMATA`` (only with ``phrases``): stands before the row where a phrase comes to rest —
  a note with a fermata in the source (a ``fermata`` :class:`~musegen.score.Marker`). Bach's
  chorales are built of phrases, mostly two bars long, each ending on a fermata and a cadence;
  with the mark in the stream a model learns where phrases end and what happens there, and
  its pieces carry the fermatas back out as markers.

``python -m musegen.tokenizers.chorale`` prints the vocabulary and the grammar's rules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from musegen.errors import MusegenError
from musegen.score import FERMATA, VOICES, Marker, Score, TimeSignature, Track, make_notes
from musegen.theory import ANALYSIS_CHORDS, TEMPLATE_RULE, Chord, best_chords
from musegen.tokenizers.base import BOS, EOS, PAD, Grammar, Tokenizer, TokenizerConfig, Vocab
from musegen.tokenizers.grid import (
    DECODE_TPQ,
    VOICE_NAMES,
    SatbTokenizer,
    _note_frames,
    _pick_voice,
    _runs,
    full_range_satb,
    pitch_pair,
)

MODES = ("major", "minor")
DEFAULT_TIME_SIGNATURES = ("4/4", "3/4", "2/4", "2/2", "3/2", "6/4", "6/8", "9/8", "12/8")
MELODY_TIME_SIGNATURES = (
    *DEFAULT_TIME_SIGNATURES,
    *("3/8", "5/4", "7/4", "5/8", "7/8", "4/2", "6/2", "8/4", "10/4", "2/1", "3/1", "4/1"),
)


@dataclass
class BarGridConfig(TokenizerConfig):
    """What every bar-grid tokenizer shares: the grid, the meters, the longest countdown."""

    steps_per_quarter: int = 4
    time_signatures: Sequence[str] = field(default_factory=lambda: list(DEFAULT_TIME_SIGNATURES))
    max_bars: int = 32
    velocity: int = 80
    phrases: bool = False
    modes: bool = False
    beat_chords: bool = False

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if self.steps_per_quarter <= 0 or DECODE_TPQ % self.steps_per_quarter:
            raise MusegenError(
                f"{owner}.steps_per_quarter must divide {DECODE_TPQ}, got {self.steps_per_quarter}"
            )
        if self.max_bars < 1:
            raise MusegenError(f"{owner}.max_bars must be >= 1, got {self.max_bars}")
        if not 1 <= self.velocity <= 127:
            raise MusegenError(f"{owner}.velocity must be 1..127, got {self.velocity}")
        self.time_signatures = [str(t) for t in self.time_signatures]
        if not self.time_signatures:
            raise MusegenError(f"{owner}.time_signatures must name at least one meter")
        for ts in self.time_signatures:
            self.bar_steps(ts)  # raises on a bad one

    @property
    def ranges(self) -> tuple[tuple[int, int], ...]:
        """The pitch range of each voice, top voice first."""
        raise NotImplementedError

    @property
    def token_order(self) -> tuple[int, ...]:
        """The voices (indices into :attr:`ranges`) in the order a row writes them."""
        return tuple(range(len(self.ranges)))

    def _check_range(self, name: str) -> None:
        setattr(self, name, pitch_pair(f"{type(self).__name__}.{name}", getattr(self, name)))

    def bar_steps(self, ts: str) -> int:
        """Rows in one bar of the meter ``ts`` ("3/4" -> 12 at four steps a quarter)."""
        try:
            num, den = (int(x) for x in ts.split("/"))
        except ValueError as e:
            raise MusegenError(f"cannot read time signature {ts!r}") from e
        steps = num * 4 * self.steps_per_quarter
        if num < 1 or den < 1 or steps % den:
            raise MusegenError(
                f"time signature {ts!r} does not fit a grid of {self.steps_per_quarter} steps "
                "per quarter"
            )
        return steps // den


@dataclass
class ChoraleConfig(BarGridConfig):
    """Chorale tokenizer options.

    ``soprano`` … ``bass`` are the inclusive MIDI ranges the grammar lets each voice sing when
    sampling (the encoder keeps every note); the defaults are Bach's ranges in the music21
    chorales widened by a fourth each way, room for transposition. ``max_bars`` is the longest
    countdown; longer pieces start with ``LEN_far``/``BAR_far``.

    Two rules of four-part writing the grammar can keep while sampling: ``voice_leading``,
    no parallel fifths or octaves (unisons, compound intervals) between any two voices, and
    ``no_crossing``, no voice above the one over it. Neither changes the vocabulary or what
    the encoder writes; holding a note or resting is always allowed, so the rules never leave
    a dead end. ``full_start``: every voice sounds in a piece's first row, as in all but a few
    of Bach's chorales. ``order``: the order a row writes the voices in (``SBAT``: the outer
    voices first, as a harmonization is taught). ``max_leap``: no voice leaps wider than this
    many semitones from the last pitch it sang (across rests; 0: no limit; 12 keeps the
    textbook rule of no leap beyond an octave).
    """

    soprano: tuple[int, int] = (55, 86)
    alto: tuple[int, int] = (47, 79)
    tenor: tuple[int, int] = (41, 74)
    bass: tuple[int, int] = (31, 71)
    voice_leading: bool = False
    no_crossing: bool = False
    full_start: bool = False
    order: str = "SATB"
    max_leap: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("soprano", "alto", "tenor", "bass"):
            self._check_range(name)
        if not 0 <= self.max_leap <= 127:
            raise MusegenError(f"ChoraleConfig.max_leap must be 0..127, got {self.max_leap}")
        if sorted(self.order) != sorted("SATB"):
            raise MusegenError(
                f"ChoraleConfig.order is S, A, T, B in some order, got {self.order!r}"
            )
        if self.no_crossing and self.order != "SATB":
            raise MusegenError(
                "ChoraleConfig.no_crossing needs order SATB (each voice after the one above)"
            )

    @property
    def token_order(self) -> tuple[int, ...]:
        return tuple("SATB".index(c) for c in self.order)

    @property
    def ranges(self) -> tuple[tuple[int, int], ...]:
        """Voice ranges in S, A, T, B order."""
        return (self.soprano, self.alto, self.tenor, self.bass)


@dataclass
class MelodyConfig(BarGridConfig):
    """Melody tokenizer options: one voice, the top line of the score, sung in ``pitch_range``
    when sampling (the encoder keeps every note of the line)."""

    time_signatures: Sequence[str] = field(default_factory=lambda: list(MELODY_TIME_SIGNATURES))
    pitch_range: tuple[int, int] = (43, 96)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_range("pitch_range")

    @property
    def ranges(self) -> tuple[tuple[int, int], ...]:
        return (self.pitch_range,)


class BarGridTokenizer(Tokenizer):
    """Rows of one cell per voice with bar countdown tokens (see the module docstring).

    Subclasses say how a score becomes ``[steps, voices]`` cells (:meth:`_cells`) and how the
    decoded notes become tracks (:meth:`_tracks`).
    """

    config: BarGridConfig

    def __init__(self, config: TokenizerConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.n_voices = len(self.config.ranges)
        self._bar_steps = [self.config.bar_steps(ts) for ts in self.config.time_signatures]
        self.rest_id = self.vocab.offset("rest")
        self.hold_id = self.vocab.offset("hold")
        self.pitch_offset = self.vocab.offset("pitch")
        self._fermata_id = self.vocab.offset("fermata") if self.config.phrases else -1
        self._no_harmony = self.vocab.offset("noharmony") if self.config.beat_chords else -1
        self._masks = _Masks(self)

    def build_vocab(self) -> Vocab:
        cfg = self.config
        vocab = Vocab()
        vocab.add("ts", len(cfg.time_signatures), lambda v: f"TS_{cfg.time_signatures[v]}")
        far = cfg.max_bars  # value index of "far"
        vocab.add("len", cfg.max_bars + 1, lambda v: "LEN_far" if v == far else f"LEN_{v + 1}")
        vocab.add("bar", cfg.max_bars + 1, lambda v: "BAR_far" if v == far else f"BAR_{v + 1}")
        if cfg.modes:
            vocab.add("mode", len(MODES), lambda v: f"MODE_{MODES[v]}")
        if cfg.beat_chords:
            names = [Chord(r, q, r).name for r, q in ANALYSIS_CHORDS.labels]
            vocab.add("harmony", len(names), lambda v: f"H_{names[v]}")
            vocab.add("noharmony", 1, lambda _v: "H_N")
        if cfg.phrases:  # before the cells: every id from REST on is a cell
            vocab.add("fermata", 1, lambda _v: "FERMATA")
        vocab.add("rest", 1, lambda _v: "REST")
        vocab.add("hold", 1, lambda _v: "HOLD")
        vocab.add("pitch", 128)
        return vocab

    # ---------------------------------------------------------------- subclass hooks
    def _cells(self, score: Score) -> np.ndarray:
        """``[steps, voices]`` ids (REST / HOLD / pitch) of a non-empty score."""
        raise NotImplementedError

    def _tracks(self, voice: np.ndarray, start: np.ndarray, end: np.ndarray, pitch: np.ndarray):  # type: ignore[no-untyped-def]
        """Tracks of decoded notes (``voice`` index, ``start``/``end`` in steps, ``pitch``)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- helpers
    def _count_id(self, block: str, remaining: int) -> int:
        """``LEN``/``BAR`` id for ``remaining`` bars (``far`` beyond ``max_bars``)."""
        return self.vocab.offset(block) + min(remaining, self.config.max_bars + 1) - 1

    def _meter(self, score: Score) -> tuple[int, int, int | None]:
        """(index in ``time_signatures``, rows per bar, pickup rows or None) of the score.

        A first meter that lasts exactly one bar before the next one starts is a pickup
        written as its own time signature (as ABC and some MIDI files do): the meter is the
        second one, and the pickup's length is known.
        """
        tss = sorted(score.time_signatures, key=lambda t: t.time)
        if not tss or tss[0].time > 0:
            tss.insert(0, TimeSignature(0, 4, 4))  # MIDI's default before any meter is given
        ts, pickup = tss[0], None
        if len(tss) > 1 and tss[1].time > 0:
            one_bar = score.tpq * 4 * ts.numerator // ts.denominator
            if tss[1].time == one_bar and (ts.numerator, ts.denominator) != (
                tss[1].numerator,
                tss[1].denominator,
            ):
                ts = tss[1]
                pickup = round(one_bar * self.config.steps_per_quarter / score.tpq)
        if len(tss) > 2:  # the meter changes: bars follow the one that lasts longest
            ends = [t.time for t in tss[1:]] + [max(score.end, tss[-1].time)]
            spans: dict[tuple[int, int], int] = {}
            for t, end in zip(tss, ends, strict=True):
                key = (t.numerator, t.denominator)
                spans[key] = spans.get(key, 0) + end - t.time
            num, den = max(spans, key=lambda k: spans[k])
            if (num, den) != (ts.numerator, ts.denominator):
                ts, pickup = TimeSignature(0, num, den), None
        label = f"{ts.numerator}/{ts.denominator}"
        if label not in self.config.time_signatures:
            raise MusegenError(
                f"the {self.name} tokenizer has no time signature {label} "
                f"(it knows {', '.join(self.config.time_signatures)})"
            )
        i = self.config.time_signatures.index(label)
        if pickup is not None and pickup >= self._bar_steps[i]:
            pickup = None  # not shorter than a bar: an ordinary change of meter
        return i, self._bar_steps[i], pickup

    def _score_cells(self, score: Score) -> np.ndarray:
        """``[steps, voices]`` cells, the voices in the order rows write them."""
        if score.is_empty():
            return np.zeros((0, self.n_voices), dtype=np.int64)
        return self._cells(score)[:, list(self.config.token_order)]

    def _cells_from_pitches(self, pitch: np.ndarray, onset: np.ndarray) -> np.ndarray:
        """Cell ids from per-step pitches (-1 silent) and onset flags, ``[steps, voices]``.

        A cell starts a note where one starts, and where the pitch changes without an onset
        (a lower held note comes to the top when a higher one ends), as in the ``satb`` grid.
        """
        cells = np.full(pitch.shape, self.rest_id, dtype=np.int64)
        cells[pitch >= 0] = self.hold_id
        before = np.vstack([np.full((1, pitch.shape[1]), -1), pitch[:-1]])
        starts = (pitch >= 0) & (onset | (pitch != before))
        cells[starts] = pitch[starts] + self.pitch_offset
        return cells

    # ---------------------------------------------------------------- hooks
    def encode(
        self, score: Score, bos: bool = True, eos: bool = True, bars: int | None = None
    ) -> np.ndarray:
        """Token ids of ``prepare(score)``; ``bars`` overrides the length announced by
        ``LEN``/``BAR`` (for a primer to be continued to that many bars)."""
        ts_index, bar, pickup_meter = self._meter(score)
        cells = self._score_cells(score)
        sounding = np.flatnonzero((cells != self.rest_id).any(axis=1))
        first = int(sounding[0]) if len(sounding) else 0
        # rests before the first note are dropped: whole empty bars, and the padding of a
        # pickup (what is left of its bar), which the decoder restores
        drop = first if pickup_meter is None else 0
        cells = cells[drop:]
        pickup = (bar - drop % bar) % bar if pickup_meter is None else pickup_meter
        n_bars = max(math.ceil((len(cells) - pickup) / bar), 0)
        if n_bars == 0 and pickup:  # all of it fits before the first bar line: one bar
            pickup, n_bars = 0, 1 if len(cells) else 0
        total = n_bars if bars is None else max(bars, n_bars)
        out: list[np.ndarray] = []
        head = [BOS] if bos else []
        mode = [self.mode_id(_minor(score))] if self.config.modes else []  # after LEN and BARs
        head += [self.vocab.offset("ts") + ts_index, self._count_id("len", max(total, 1)), *mode]
        out.append(np.array(head, dtype=np.int64))
        marks = self._fermata_rows(score, drop, len(cells))
        harmony = self._beat_harmony(cells, pickup)
        out.append(self._rows(cells, 0, pickup, marks, harmony))
        for b in range(n_bars):
            out.append(np.array([self._count_id("bar", total - b), *mode], dtype=np.int64))
            lo = pickup + b * bar
            out.append(self._rows(cells, lo, min(lo + bar, len(cells)), marks, harmony))
        if eos:
            out.append(np.array([EOS], dtype=np.int64))
        return np.concatenate(out)

    def mode_id(self, minor: bool) -> int:
        """The ``MODE_*`` id of a major (False) or minor (True) piece; the tokenizer must
        have ``modes``."""
        if not self.config.modes:
            raise MusegenError(f"this {self.name} tokenizer writes no mode (config 'modes')")
        return self.vocab.offset("mode") + int(minor)

    def mode_shares(self, sequences: Iterable[np.ndarray]) -> dict[str, float]:
        """How often each mode opens ``sequences`` (encoded pieces, ``BOS TS_* LEN_* MODE_*
        …``), rounded to 4 places: the shares a model's pieces draw their mode from (``PieceRequest.modes``)."""
        return self._header_shares(sequences, "mode", 3, MODES, "carries a mode")

    def _fermata_rows(self, score: Score, drop: int, n_rows: int) -> np.ndarray:
        """Rows (after the ``drop`` leading ones) where a fermata marker falls, if the
        tokenizer writes phrases."""
        if not self.config.phrases:
            return np.zeros(0, dtype=np.int64)
        spq = self.config.steps_per_quarter
        rows = {round(m.time * spq / score.tpq) - drop for m in score.markers if m.text == FERMATA}
        return np.array(sorted(r for r in rows if 0 <= r < n_rows), dtype=np.int64)

    def _rows(
        self, cells: np.ndarray, lo: int, hi: int, marks: np.ndarray, harmony: np.ndarray
    ) -> np.ndarray:
        """Rows ``lo``..``hi`` of ``cells`` as ids, with each beat's harmony id (``harmony``:
        one per row, -1 where no beat starts) and then a FERMATA before each marked row."""
        flat = cells[lo:hi].reshape(-1)
        inside = marks[(marks >= lo) & (marks < hi)]
        beats = lo + np.flatnonzero(harmony[lo:hi] >= 0)
        if not len(inside) and not len(beats):
            return flat
        # np.insert keeps the order of values given for one position: harmony, then FERMATA
        at = np.concatenate([beats, inside]) - lo
        values = np.concatenate([harmony[beats], np.full(len(inside), self._fermata_id)])
        order = np.argsort(at, kind="stable")
        return np.insert(flat, at[order] * self.n_voices, values[order])

    def _beat_harmony(self, cells: np.ndarray, pickup: int) -> np.ndarray:
        """The harmony id before each row of ``cells`` that starts a beat (-1 elsewhere; all
        -1 without ``beat_chords``). Beats start every ``steps_per_quarter`` rows from the
        first bar line, and in the pickup from its first row (as the grammar counts them)."""
        n = len(cells)
        out = np.full(n, -1, dtype=np.int64)
        if not self.config.beat_chords or not n:
            return out
        spq = self.config.steps_per_quarter
        rows = np.arange(n)
        starts = np.flatnonzero(np.where(rows < pickup, rows, rows - pickup) % spq == 0)
        pitch = self._sounding_pitches(cells)
        beat_of = np.searchsorted(starts, rows, side="right") - 1
        weights = np.zeros((len(starts), 12))
        r, v = np.nonzero(pitch >= 0)
        np.add.at(weights, (beat_of[r], pitch[r, v] % 12), 1.0)
        first = np.where(pitch[starts] >= 0, pitch[starts], 999).min(axis=1)
        low = np.full(len(starts), 999)
        np.minimum.at(low, beat_of[r], pitch[r, v])
        bass = np.where(first < 999, first, np.where(low < 999, low, -1))
        best = best_chords(weights, bass, vocabulary=ANALYSIS_CHORDS, rule=TEMPLATE_RULE)
        out[starts] = np.where(best >= 0, self.vocab.offset("harmony") + best, self._no_harmony)
        return out

    def _sounding_pitches(self, grid: np.ndarray) -> np.ndarray:
        """``[rows, voices]`` MIDI pitch each voice sounds in each row of cell ids (-1: none):
        a HOLD takes the pitch of its voice's last pitch cell, unless a REST came between."""
        held = np.where(grid == self.hold_id, -1, np.arange(len(grid))[:, None])
        source = np.maximum.accumulate(held, axis=0)
        last = grid[np.maximum(source, 0), np.arange(grid.shape[1])[None, :]]
        return np.where((source >= 0) & (last >= self.pitch_offset), last - self.pitch_offset, -1)

    def transpose_controls(self, ids: np.ndarray, shift: int) -> np.ndarray:
        """``ids`` with every harmony token's root moved ``shift`` semitones (the pitch tokens
        are moved by :class:`~musegen.data.augment.TokenTranspose`)."""
        out = np.array(ids, dtype=np.int64)
        if not self.config.beat_chords:
            return out
        lo = self.vocab.offset("harmony")
        is_chord = self.vocab.is_in(out, "harmony")
        out[is_chord] = lo + ANALYSIS_CHORDS.transpose(out[is_chord] - lo, shift)
        return out

    def decode(self, ids: np.ndarray | Iterable[int]) -> Score:
        ids = self.check_ids(ids if isinstance(ids, np.ndarray) else list(ids)).ravel()
        n = self.n_voices
        ts_lo, ts_hi = self.vocab.span("ts")
        ts_tokens = ids[(ids >= ts_lo) & (ids < ts_hi)]
        ts_index = int(ts_tokens[0] - ts_lo) if len(ts_tokens) else 0
        bar = self._bar_steps[ts_index]
        is_cell = ids >= self.rest_id
        bar_lo, bar_hi = self.vocab.span("bar")
        bar_marks = np.flatnonzero((ids >= bar_lo) & (ids < bar_hi))
        pad = 0  # restore the padding of a pickup, so bar lines fall where they belong
        if len(bar_marks):
            pickup_rows = int(is_cell[: bar_marks[0]].sum()) // n
            pad = (bar - pickup_rows % bar) % bar
        markers = []
        if self.config.phrases:  # a FERMATA marks the row that follows it
            before = np.cumsum(is_cell) - is_cell  # cells written before each id
            ticks = DECODE_TPQ // self.config.steps_per_quarter
            at = np.flatnonzero(ids == self._fermata_id)
            rows_at = sorted({int(before[i]) // n + pad for i in at})
            markers = [Marker(r * ticks, FERMATA) for r in rows_at]
        cells = ids[is_cell]
        rows = np.full(math.ceil(len(cells) / n) * n, self.rest_id, dtype=np.int64)
        rows[: len(cells)] = cells
        grid = np.vstack([np.full((pad, n), self.rest_id), rows.reshape(-1, n)])
        grid = grid[:, np.argsort(self.config.token_order)]  # back to the voices' order
        is_pitch = grid >= self.pitch_offset
        pitch = self._sounding_pitches(grid)
        cont = (grid == self.hold_id) & (pitch >= 0)
        voice, start, end = _runs(is_pitch.T, cont.T)
        num, den = (int(x) for x in self.config.time_signatures[ts_index].split("/"))
        return Score(
            tpq=DECODE_TPQ,
            tracks=self._tracks(voice, start, end, pitch[start, voice]),
            time_signatures=[TimeSignature(0, num, den)],
            markers=markers,
        )

    def _notes(self, sel: np.ndarray, start: np.ndarray, end: np.ndarray, pitch: np.ndarray):  # type: ignore[no-untyped-def]
        ticks = DECODE_TPQ // self.config.steps_per_quarter
        return make_notes(
            start[sel] * ticks, (end[sel] - start[sel]) * ticks, pitch[sel], self.config.velocity
        )

    def prepare(self, score: Score) -> Score:
        """The score as the tokenizer sees it: four monophonic voices on the 16th grid."""
        return self.decode(self.encode(score))

    def grammar(self) -> BarGridGrammar:
        return BarGridGrammar(self)

    def primer_for_length(self, score: Score, bars: int) -> np.ndarray | None:
        """A primer (without EOS) whose ``LEN``/``BAR`` tokens ask for ``bars`` bars in all:
        the grammar then ends the piece there, on the bar line."""
        if score.is_empty():  # (a model with modes then writes the mode itself)
            ts_index = self._meter(score)[0]
            return np.array(
                [BOS, self.vocab.offset("ts") + ts_index, self._count_id("len", bars)],
                dtype=np.int64,
            )
        return self.encode(score, eos=False, bars=bars)

    def meter_shares(self, sequences: Iterable[np.ndarray]) -> dict[str, float]:
        """How often each meter opens ``sequences`` (encoded pieces, ``BOS TS_* …``): the
        shares a model's pieces draw their meters from (``PieceRequest.meters``), in the
        tokenizer's meter order, rounded to 4 places; meters never seen are left out."""
        return self._header_shares(
            sequences, "ts", 1, self.config.time_signatures, "starts with a meter"
        )

    def _header_shares(
        self,
        sequences: Iterable[np.ndarray],
        block: str,
        at: int,
        labels: Sequence[str],
        what: str,
    ) -> dict[str, float]:
        """Shares of the ``block`` ids standing at index ``at`` of sequences that begin with
        BOS, by label, rounded to 4 places; labels never seen are left out."""
        lo, hi = self.vocab.span(block)
        counts = np.zeros(hi - lo)
        for seq in sequences:
            if len(seq) > at and seq[0] == BOS and lo <= seq[at] < hi:
                counts[int(seq[at]) - lo] += 1
        if not counts.sum():
            raise MusegenError(f"no {self.name} sequence here {what}")
        shares = counts / counts.sum()
        return {labels[i]: round(float(shares[i]), 4) for i in np.flatnonzero(counts)}

    def describe(self) -> str:
        """The vocabulary blocks and the grammar's rules, for a reader."""
        lines = [f"{self.name} tokenizer: {len(self.vocab)} ids, {self.config.to_dict()}", ""]
        for name, (lo, size) in self.vocab.blocks.items():
            first, last = self.vocab.token(lo), self.vocab.token(lo + size - 1)
            span = first if size == 1 else f"{first} … {last}"
            lines.append(f"  {lo:4d}-{lo + size - 1:<4d} {name:6s} {span}")
        lines += ["", *_RULES]
        return "\n".join(lines)


class ChoraleTokenizer(BarGridTokenizer):
    """Soprano, Alto, Tenor and Bass in 16th-note rows (see the module docstring).

    Voices come from track labels, or from exactly four pitched tracks ordered by mean pitch
    (as the ``satb`` tokenizer finds them); where a voice has a chord, soprano and alto keep
    its top note, tenor and bass its lowest. Each voice has its own cell in every row, so two
    voices in unison stay two notes, each in its voice's track.
    """

    name: ClassVar[str] = "chorale"
    config_class: ClassVar[type[TokenizerConfig]] = ChoraleConfig
    config: ChoraleConfig

    def _cells(self, score: Score) -> np.ndarray:
        grid = full_range_satb(self.config.steps_per_quarter, hold=True)
        ids = grid.encode(score).astype(np.int64)
        pitched = (ids >= SatbTokenizer.PITCH_OFFSET) & (ids < SatbTokenizer.PITCH_OFFSET + 128)
        cells = np.full(ids.shape, self.rest_id, dtype=np.int64)
        cells[pitched] = ids[pitched] - SatbTokenizer.PITCH_OFFSET + self.pitch_offset
        cells[ids == grid.hold_id] = self.hold_id
        return cells

    def _tracks(self, voice, start, end, pitch):  # type: ignore[no-untyped-def]
        return [
            Track(self._notes(voice == v, start, end, pitch), name=name, voice=label)
            for v, (label, name) in enumerate(zip(VOICES, VOICE_NAMES, strict=True))
        ]


class MelodyTokenizer(BarGridTokenizer):
    """One voice: the top line of all pitched tracks (a chord keeps its highest note), in
    16th-note cells with the same bars, pickup and countdown as the chorale tokenizer.

    One stream by design: tracks are merged before the top line is taken, so two tracks in
    unison give one note (use ``chorale``, ``remi`` or ``events`` to keep several parts).
    """

    name: ClassVar[str] = "melody"
    config_class: ClassVar[type[TokenizerConfig]] = MelodyConfig
    config: MelodyConfig

    def _cells(self, score: Score) -> np.ndarray:
        notes = [t.notes for t in score.tracks if not t.is_drum and len(t)]
        if not notes:
            return np.zeros((0, 1), dtype=np.int64)
        merged = np.concatenate(notes)
        on, off = _note_frames(merged, score.tpq, self.config.steps_per_quarter)
        n_steps = int(off.max())
        pitch, onset = _pick_voice(merged["pitch"].astype(np.int64), on, off, n_steps, top=True)
        return self._cells_from_pitches(pitch[:, None], onset[:, None])

    def _tracks(self, voice, start, end, pitch):  # type: ignore[no-untyped-def]
        return [Track(self._notes(voice == 0, start, end, pitch), name="Melody")]


_RULES = (
    "grammar:",
    "  BOS, then one TS_*, then one LEN_n (bars after the pickup; far = more than max_bars)",
    "  with modes: then one MODE_major or MODE_minor, and the same one after every BAR_n",
    "  pickup: up to one bar minus one row of rows, then BAR_n (n from LEN)",
    "  a row is one cell per voice, top voice first; a cell is REST, a pitch in the voice's",
    "    range, or HOLD (with full_start, every voice sounds in the first row)",
    "    (HOLD only when that voice's last cell sounds)",
    "  a bar holds exactly one bar of rows; then BAR_(n-1) — from far: BAR_far or BAR_max",
    "  with beat_chords: one H_* before the first row of every beat (every steps_per_quarter",
    "    rows from the bar line; in the pickup from its first row), then FERMATA if any",
    "  with phrases: FERMATA may stand before a row (where a phrase comes to rest), once",
    "  the last bar (BAR_1) ends with EOS after at least one row, at most a full bar",
)


class _Masks:
    """The grammar's masks, built once per tokenizer."""

    def __init__(self, tok: BarGridTokenizer) -> None:
        n = len(tok.vocab)
        self.n = n
        self.only = {
            "bos": _one(n, BOS),
            "eos": _one(n, EOS),
            "pad": _one(n, PAD),
            "ts": tok.vocab.mask("ts"),
            "len": tok.vocab.mask("len"),
        }
        if "mode" in tok.vocab.blocks:
            self.only["mode"] = tok.vocab.mask("mode")
        self.harmony = tok.vocab.mask("harmony", "noharmony") if "harmony" in tok.vocab else None
        self.fermata = tok.vocab.offset("fermata") if "fermata" in tok.vocab.blocks else -1
        self.ts_lo = tok.vocab.offset("ts")
        self.len_lo = tok.vocab.offset("len")
        self.bar_lo, self.bar_hi = tok.vocab.span("bar")
        self.cell = np.zeros((tok.n_voices, 2, n), dtype=bool)  # [voice, sounding]
        ranges = tok.config.ranges
        for v, (low, high) in enumerate(ranges[i] for i in tok.config.token_order):
            self.cell[v, :, tok.rest_id] = True
            self.cell[v, :, tok.pitch_offset + low : tok.pitch_offset + high + 1] = True
            self.cell[v, 1, tok.hold_id] = True


def _minor(score: Score) -> bool:
    """Whether the key finder reads ``score`` as minor (a score with no notes: its first key
    signature's mode, else major)."""
    from musegen.theory import estimate_key

    key = estimate_key(score) if not score.is_empty() else None
    if key is not None:
        return bool(key.minor)
    return bool(score.key_signatures and score.key_signatures[0].minor)


def _one(n: int, i: int) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[i] = True
    return m


class BarGridGrammar(Grammar):
    """State machine of one bar-grid sequence (plain integers; see ``_RULES``)."""

    def __init__(self, tok: BarGridTokenizer) -> None:
        self._tok = tok
        self._m = tok._masks
        self._far = tok.config.max_bars + 1  # countdown value meaning "far"
        self.stage = "bos"  # bos -> ts -> len (-> mode) -> body -> done
        self.bar_steps = 0
        self.remaining = 0  # countdown value of the current bar (0 = in the pickup)
        self.next_bar = 0  # countdown value of the next BAR token
        self.rows = 0  # complete rows in the current bar (or pickup)
        self.cell = 0  # voice of the next cell
        self.n_voices = tok.n_voices
        self.sounding = [False] * tok.n_voices
        self.parallels = bool(getattr(tok.config, "voice_leading", False))
        self.crossing = bool(getattr(tok.config, "no_crossing", False))
        self.max_leap = int(getattr(tok.config, "max_leap", 0))
        self.rules = self.parallels or self.crossing or self.max_leap > 0
        self.before = [-1] * tok.n_voices  # pitch each voice sounds in the previous row
        self.now = [-1] * tok.n_voices  # and in this row, as far as it is written
        self.last = [-1] * tok.n_voices  # the last pitch each voice struck (across rests)
        self.first_row = bool(getattr(tok.config, "full_start", False))  # all voices sound
        self.marked = False  # a FERMATA stands before the row being started
        self.mode = -1  # the MODE id written after LEN (with modes)
        self.mode_due = False  # a BAR was just written: its MODE comes next
        self.beat = tok.config.steps_per_quarter if tok.config.beat_chords else 0
        self.harmony_given = False  # the harmony of the row being started is written

    @property
    def done(self) -> bool:
        return self.stage == "done"

    def _bar_choices(self) -> list[int]:
        """Countdown values the next BAR may carry."""
        if self.next_bar == self._far:
            return [self._far, self._far - 1]
        return [self.next_bar] if self.next_bar >= 1 else []

    def mask(self) -> np.ndarray:
        return self._mask(rules=True)

    def _mask(self, rules: bool) -> np.ndarray:
        """The ids allowed next; ``rules``: with the sampling rules (voice leading, crossing,
        leaps, a full first row), which bind what is sampled, never what is given."""
        m = self._m
        if self.stage != "body":
            return m.only["pad" if self.stage == "done" else self.stage].copy()
        if self.mode_due:
            return _one(m.n, self.mode)
        if self.cell:
            out = m.cell[self.cell, int(self.sounding[self.cell])].copy()
            if self.rules and rules:
                self._voice_leading(out)
            if self.first_row and rules:
                out[self._tok.rest_id] = False  # a piece begins with every voice
            return out
        out = np.zeros(m.n, dtype=bool)
        in_pickup = self.remaining == 0
        full = self.rows >= (self.bar_steps - 1 if in_pickup else self.bar_steps)
        harmony_due = (
            self.beat and not full and not self.harmony_given and self.rows % self.beat == 0
        )
        if harmony_due:  # a beat begins with its harmony (or the bar, the pickup, the piece ends)
            out |= m.harmony
        elif not full:
            out |= m.cell[0, int(self.sounding[0])]
            if self.max_leap and rules:
                self._leaps(out)
            if self.first_row and rules:
                out[self._tok.rest_id] = False  # a piece begins with every voice
            if m.fermata >= 0 and not self.marked:
                out[m.fermata] = True
        if self.marked or self.harmony_given:
            return out  # the marked row, or the row of the harmony just written, comes next
        if in_pickup or full:
            for value in self._bar_choices():
                out[m.bar_lo + value - 1] = True
        if self.remaining == 1 and self.rows >= 1:
            out[EOS] = True
        return out

    def step(self, token: int) -> None:
        """Take ``token``: the grammar's structure must allow it; the sampling rules need not
        (a user's primer may have a parallel fifth or a wide leap that no new note will)."""
        if not 0 <= token < self._m.n or not self._mask(rules=False)[token]:
            label = self._tok.vocab.token(token) if 0 <= token < self._m.n else "?"
            raise ValueError(
                f"{self._tok.name} token {token} ({label}) not allowed here (stage {self.stage}, bar {self.remaining}, row {self.rows}, "
                f"voice {self.cell})"
            )
        m = self._m
        if self.stage == "bos":
            self.stage = "ts"
        elif self.stage == "ts":
            self.bar_steps = self._tok._bar_steps[token - m.ts_lo]
            self.stage = "len"
        elif self.stage == "len":
            self.next_bar = token - m.len_lo + 1
            self.stage = "mode" if "mode" in m.only else "body"
        elif self.stage == "mode":
            self.mode = token
            self.stage = "body"
        elif self.mode_due:
            self.mode_due = False
        elif token == EOS:
            self.stage = "done"
        elif token == m.fermata:
            self.marked = True
        elif m.harmony is not None and m.harmony[token]:
            self.harmony_given = True
        elif m.bar_lo <= token < m.bar_hi:
            value = token - m.bar_lo + 1
            self.mode_due = self.mode >= 0
            self.remaining = value
            self.next_bar = self._far if value == self._far else value - 1
            self.rows = 0
        else:
            v = self.cell
            self.marked = False
            self.sounding[v] = token != self._tok.rest_id
            if token == self._tok.hold_id:
                self.now[v] = self.before[v]
            else:
                self.now[v] = token - self._tok.pitch_offset if self.sounding[v] else -1
                if self.sounding[v]:
                    self.last[v] = self.now[v]
            self.cell = (v + 1) % self.n_voices
            if self.cell == 0:
                self.rows += 1
                self.harmony_given = False
                self.before = list(self.now)
                self.first_row = False

    def _voice_leading(self, out: np.ndarray) -> None:
        """Take out of ``out`` the cells of voice ``self.cell`` that break the rules (see
        :class:`ChoraleConfig`) against the voices already written in this row."""
        v, lo = self.cell, self._tok.pitch_offset
        q = np.arange(128)
        bad = np.zeros(128, dtype=bool)
        prev_v = self.before[v]
        above = self.now[v - 1]
        if self.crossing and above >= 0:  # crossing the voice above
            bad |= q > above
        if self.parallels and prev_v >= 0:
            for u in range(v):
                prev_u, now_u = self.before[u], self.now[u]
                if prev_u < 0 or now_u < 0 or prev_u == now_u:
                    continue  # voice u does not move
                interval = abs(prev_u - prev_v) % 12
                if interval not in (0, 7):
                    continue
                same_way = np.sign(q - prev_v) == np.sign(now_u - prev_u)
                bad |= same_way & (q != prev_v) & (np.abs(now_u - q) % 12 == interval)
        out[lo : lo + 128] &= ~bad
        if self.crossing and above >= 0 and prev_v > above:
            out[self._tok.hold_id] = False  # holding would sound above the voice above
        if self.max_leap:
            self._leaps(out)

    def _leaps(self, out: np.ndarray) -> None:
        """Take out of ``out`` the pitches voice ``self.cell`` would leap to wider than
        ``max_leap`` from the last pitch it struck."""
        last = self.last[self.cell]
        if last < 0:
            return
        lo = self._tok.pitch_offset
        far = np.abs(np.arange(128) - last) > self.max_leap
        out[lo : lo + 128] &= ~far


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(
        description="Print a bar-grid tokenizer's vocabulary and grammar rules."
    )
    p.add_argument("--tokenizer", choices=("chorale", "melody"), default="chorale")
    p.add_argument("--config", default="{}", help="tokenizer options as JSON")
    args = p.parse_args(argv)
    cls = ChoraleTokenizer if args.tokenizer == "chorale" else MelodyTokenizer
    print(cls(**json.loads(args.config)).describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
