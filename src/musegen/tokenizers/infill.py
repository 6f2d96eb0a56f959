"""Bar infilling for the bar-grid tokenizers: ``chorale-infill`` and ``melody-infill``.

The two tokenizers are ``chorale`` and ``melody`` with two ids more, after all of theirs
(``MASK``, ``FILL``), so a plain sequence has the same ids under both and a model trained on
either reads the other's datasets. Their plain grammar is the plain one: an infill model also
continues pieces. What they add is one more sequence shape (in the spirit of MMM's bar
infilling, Ens & Pasquier 2020), which a model learns to complete::

    BOS TS_4/4 LEN_12  [pickup rows]  BAR_12 rows … BAR_8 rows(MASK cells) … BAR_5 rows …  FILL
        BAR_8 rows … BAR_7 rows …  EOS

* The **context** (up to ``FILL``) is a window of bars around the region, written as the plain
  tokenizer writes them, each bar with its true countdown (``BAR_n``: n bars to the piece's
  end), so the model knows where the window sits. In the bars to be written, each cell of a
  voice to be rewritten is ``MASK``; the cells of the other voices stay, so the model sees
  the given voices ahead of where it writes (the masked span may go on past the bars to be
  written now: the rest of a long region, written later in steps).
* The **answer** (after ``FILL``) is the region's bars again, countdown and full rows, the
  hidden cells written by the model; the given cells are copied, and while sampling the
  grammar (:class:`AnswerGrammar`) allows only the given value there.

So given notes are kept exactly (the cells are forced) and what lies outside the region is the
input as the plain tokenizer reads it. One care at the region's end: a given note that a
rewritten voice holds across the region's last bar line (``HOLD`` in the first row after it)
is struck again there (:func:`restart_after`), as the Coconet infill does, so the note after the
region keeps its pitch whatever the region ends with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from musegen.errors import MusegenError
from musegen.score import Score
from musegen.tokenizers.base import BOS, EOS, PAD, Tokenizer, TokenizerConfig, Vocab
from musegen.tokenizers.chorale import (
    BarGridGrammar,
    BarGridTokenizer,
    ChoraleConfig,
    ChoraleTokenizer,
    MelodyConfig,
    MelodyTokenizer,
)


class _InfillVocab:
    """What the two infill tokenizers add to their plain parents: two ids after theirs."""

    mask_id: int
    fill_id: int

    def build_vocab(self) -> Vocab:
        vocab: Vocab = super().build_vocab()  # type: ignore[misc]
        self.mask_id = vocab.add("mask", 1, lambda _v: "MASK")
        self.fill_id = vocab.add("fill", 1, lambda _v: "FILL")
        return vocab


class ChoraleInfillTokenizer(_InfillVocab, ChoraleTokenizer):
    """``chorale`` plus ``MASK`` and ``FILL``: four-voice bar infilling (module docstring)."""

    name: ClassVar[str] = "chorale-infill"
    config_class: ClassVar[type[TokenizerConfig]] = ChoraleConfig
    plain_name: ClassVar[str] = "chorale"


class MelodyInfillTokenizer(_InfillVocab, MelodyTokenizer):
    """``melody`` plus ``MASK`` and ``FILL``: bar infilling of one line (module docstring)."""

    name: ClassVar[str] = "melody-infill"
    config_class: ClassVar[type[TokenizerConfig]] = MelodyConfig
    plain_name: ClassVar[str] = "melody"


INFILL_TOKENIZERS: dict[str, type[BarGridTokenizer]] = {
    "chorale": ChoraleInfillTokenizer,
    "melody": MelodyInfillTokenizer,
}


def can_infill(tok: Tokenizer) -> bool:
    """Whether ``tok`` writes the infill sequences (``chorale-infill``, ``melody-infill``)."""
    return isinstance(tok, _InfillVocab)


def infill_twin(tok: Tokenizer) -> BarGridTokenizer:
    """The infill tokenizer with ``tok``'s options (``tok`` itself if it is one)."""
    if can_infill(tok):
        return tok  # type: ignore[return-value]
    if tok.name not in INFILL_TOKENIZERS:
        raise MusegenError(
            f"the infill objective needs a bar-grid tokenizer ({', '.join(INFILL_TOKENIZERS)}), "
            f"not {tok.name}"
        )
    return INFILL_TOKENIZERS[tok.name](tok.config)


def plain_twin(tok: BarGridTokenizer) -> BarGridTokenizer:
    """The plain tokenizer an infill tokenizer extends (same ids, without MASK and FILL)."""
    if not can_infill(tok):
        return tok
    parent = MelodyTokenizer if isinstance(tok, MelodyTokenizer) else ChoraleTokenizer
    return parent(tok.config)


# --------------------------------------------------------------------------- bar grids
@dataclass
class BarGrid:
    """A plain bar-grid sequence cut into units: the pickup (if any) and the bars.

    ``cells`` ``[rows, voices]`` are the cell ids; unit ``u`` holds rows
    ``starts[u]:starts[u + 1]`` and begins with the id ``bars[u]`` (None for the pickup).
    """

    head: np.ndarray  # TS and LEN ids
    cells: np.ndarray
    starts: np.ndarray
    bars: list[int | None]

    @property
    def n_units(self) -> int:
        return len(self.bars)

    def rows(self, first: int, last: int) -> slice:
        """Rows of units ``first..last`` (inclusive)."""
        return slice(int(self.starts[first]), int(self.starts[last + 1]))

    def with_cells(self, cells: np.ndarray) -> BarGrid:
        return replace(self, cells=cells)


def parse_grid(tok: BarGridTokenizer, ids: np.ndarray | Iterable[int]) -> BarGrid:
    """The :class:`BarGrid` of a plain sequence (``BOS TS LEN … EOS``; BOS and EOS optional)."""
    ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
    if len(ids) and ids[0] == BOS:
        ids = ids[1:]
    if len(ids) and ids[-1] == EOS:
        ids = ids[:-1]
    ts_lo, ts_hi = tok.vocab.span("ts")
    len_lo, len_hi = tok.vocab.span("len")
    if len(ids) < 2 or not ts_lo <= ids[0] < ts_hi or not len_lo <= ids[1] < len_hi:
        raise MusegenError(f"not a {tok.name} sequence: it must open with TS_* and LEN_*")
    body = ids[2:]
    bar_lo, bar_hi = tok.vocab.span("bar")
    is_bar = (body >= bar_lo) & (body < bar_hi)
    cells = body[~is_bar]
    n = tok.n_voices
    if len(cells) % n or (len(cells) and cells.min() < tok.rest_id):
        raise MusegenError(f"not a {tok.name} sequence: its cells do not make whole rows")
    at = np.flatnonzero(is_bar)
    bar_rows = (at - np.arange(len(at))) // n  # rows written before each BAR
    rows = len(cells) // n
    pickup = int(bar_rows[0]) if len(at) else rows
    starts = ([0] if pickup else []) + [int(r) for r in bar_rows] + [rows]
    bars: list[int | None] = ([None] if pickup else []) + [int(b) for b in body[at]]
    return BarGrid(ids[:2].copy(), cells.reshape(rows, n), np.array(starts), bars)


def body_ids(
    tok: BarGridTokenizer, grid: BarGrid, first: int, last: int, hidden: np.ndarray | None = None
) -> np.ndarray:
    """Ids of units ``first..last``: BAR tokens and rows, ``hidden`` cells written MASK."""
    mask_id = getattr(tok, "mask_id", None)
    parts: list[np.ndarray] = []
    for u in range(first, last + 1):
        if grid.bars[u] is not None:
            parts.append(np.array([grid.bars[u]], dtype=np.int64))
        span = grid.rows(u, u)
        rows = grid.cells[span]
        if hidden is not None and mask_id is not None:
            rows = np.where(hidden[span], mask_id, rows)
        parts.append(rows.reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def plain_ids(tok: BarGridTokenizer, grid: BarGrid) -> np.ndarray:
    """The whole piece as a plain sequence, ``BOS … EOS``."""
    body = body_ids(tok, grid, 0, grid.n_units - 1)
    return np.concatenate([[BOS], grid.head, body, [EOS]]).astype(np.int64)


def sounding(tok: BarGridTokenizer, cells: np.ndarray) -> np.ndarray:
    """The pitch each voice sounds in each row, ``[rows, voices]`` (-1: silent)."""
    rows = np.arange(len(cells))[:, None]
    src = np.maximum.accumulate(np.where(cells == tok.hold_id, -1, rows), axis=0)
    last = cells[np.maximum(src, 0), np.arange(cells.shape[1])[None, :]]
    on = (src >= 0) & (last >= tok.pitch_offset)
    return np.where(on, last - tok.pitch_offset, -1)


def restart_after(
    tok: BarGridTokenizer, grid: BarGrid, last_row: int, voices: Sequence[int]
) -> BarGrid:
    """``grid`` with each of ``voices`` that holds a note into row ``last_row`` (the first
    row after a rewritten span) striking it again there: its pitch, not HOLD."""
    if last_row >= len(grid.cells):
        return grid
    cells = grid.cells.copy()
    pitch = sounding(tok, cells[: last_row + 1])[last_row]
    for v in voices:
        if cells[last_row, v] == tok.hold_id and pitch[v] >= 0:
            cells[last_row, v] = tok.pitch_offset + pitch[v]
    return grid.with_cells(cells)


@dataclass(frozen=True)
class Region:
    """Units ``first..last`` to write now, the ``voices`` rewritten there, the units of the
    context window (``context``, inclusive) and the last unit whose ``voices`` are hidden in it
    (``hidden_to`` >= ``last``: the rest of a longer region, still to be written)."""

    first: int
    last: int
    voices: tuple[int, ...]
    context: tuple[int, int]
    hidden_to: int

    def hidden(self, grid: BarGrid) -> np.ndarray:
        """Bool ``[rows, voices]``: the cells written MASK in the context."""
        out = np.zeros(grid.cells.shape, dtype=bool)
        span = grid.rows(self.first, max(self.hidden_to, self.last))
        for v in self.voices:
            out[span, v] = True
        return out


def infill_prompt(tok: BarGridTokenizer, grid: BarGrid, region: Region) -> np.ndarray:
    """``BOS TS LEN context FILL``: what a model completes with the region's bars."""
    c0, c1 = region.context
    if not c0 <= region.first <= region.last <= c1 < grid.n_units:
        raise MusegenError(f"bad infill region {region} for {grid.n_units} units")
    body = body_ids(tok, grid, c0, c1, region.hidden(grid))
    return np.concatenate([[BOS], grid.head, body, [tok.fill_id]]).astype(np.int64)  # type: ignore[attr-defined]


def infill_answer(tok: BarGridTokenizer, grid: BarGrid, region: Region) -> np.ndarray:
    """The region's bars as the answer (``BAR`` ids and rows, then EOS)."""
    return np.concatenate([body_ids(tok, grid, region.first, region.last), [EOS]]).astype(np.int64)


def answer_plan(grid: BarGrid, region: Region) -> list[tuple[int, int]]:
    """The answer's tokens as ``(id, voice)``: ``id`` -1 where the model chooses a cell of
    ``voice``; a forced id otherwise (BAR tokens and EOS have voice -1)."""
    plan: list[tuple[int, int]] = []
    free = set(region.voices)
    for u in range(region.first, region.last + 1):
        if grid.bars[u] is not None:
            plan.append((int(grid.bars[u]), -1))  # type: ignore[arg-type]
        for row in grid.cells[grid.rows(u, u)]:
            plan.extend((-1 if v in free else int(c), v) for v, c in enumerate(row))
    plan.append((EOS, -1))
    return plan


class AnswerGrammar(BarGridGrammar):
    """The grammar of an answer: forced ids where the plan has them; elsewhere a cell of the
    voice as the plain grammar allows it (the voice's range, HOLD only while it sounds, the
    tokenizer's voice-leading rules against the voices above), from the state the given
    music leaves before the region."""

    def __init__(self, tok: BarGridTokenizer, grid: BarGrid, region: Region) -> None:
        super().__init__(tok)
        self.stage = "answer"
        self.plan = answer_plan(grid, region)
        self.pos = 0
        lo = int(grid.starts[region.first])
        before = sounding(tok, grid.cells[:lo])[-1] if lo else np.full(tok.n_voices, -1)
        self.before = [int(p) for p in before]
        self.now = list(self.before)
        self.sounding = [p >= 0 for p in self.before]
        self.first_row = self.first_row and lo == 0

    @property
    def done(self) -> bool:
        return self.pos >= len(self.plan)

    def mask(self) -> np.ndarray:
        m = self._m
        if self.done:
            return m.only["pad"].copy()
        forced, v = self.plan[self.pos]
        if forced >= 0:
            out = np.zeros(m.n, dtype=bool)
            out[forced] = True
            return out
        out = m.cell[v, int(self.sounding[v])].copy()
        self.cell = v
        if self.rules and v:
            self._voice_leading(out)
        if self.first_row:
            out[self._tok.rest_id] = False
        if not out.any():
            out[self._tok.rest_id] = True
        return out

    def step(self, token: int) -> None:
        if self.done or not self.mask()[token]:
            if self.done and token == PAD:
                return
            raise ValueError(f"{self._tok.name} token {token} not allowed at answer {self.pos}")
        v = self.plan[self.pos][1]
        self.pos += 1
        if v < 0:
            return
        tok = self._tok
        self.sounding[v] = token != tok.rest_id
        if token == tok.hold_id:
            self.now[v] = self.before[v]
        else:
            self.now[v] = token - tok.pitch_offset if self.sounding[v] else -1
        if v == self.n_voices - 1:
            self.before = list(self.now)
            self.first_row = False


# --------------------------------------------------------------------------- scores
@dataclass
class ScoreGrid:
    """A score as a :class:`BarGrid`, with what maps it back: the score's bar number of each
    unit (``unit_bars``, 1-based) and the rows to move the decoded notes by (``shift``) so
    they fall where the score had them."""

    grid: BarGrid
    unit_bars: list[int]
    shift: int

    def units(self, first_bar: int, last_bar: int) -> tuple[int, int]:
        """Units of score bars ``first_bar..last_bar``; a MusegenError if outside the music."""
        bars = self.unit_bars
        if not bars:
            raise MusegenError("the score has no notes to infill around")
        if first_bar < bars[0] or last_bar > bars[-1]:
            raise MusegenError(
                f"--bars {first_bar}-{last_bar}: the music runs from bar {bars[0]} to bar "
                f"{bars[-1]}"
            )
        units = [u for u, b in enumerate(bars) if first_bar <= b <= last_bar]
        return units[0], units[-1]


def score_grid(tok: BarGridTokenizer, score: Score) -> ScoreGrid:
    """``score`` as the plain tokenizer reads it, cut into units numbered by the score's bars."""
    _, bar, pickup_meter = tok._meter(score)
    grid = parse_grid(tok, tok.encode(score))
    first = 0  # the grid row of the first encoded row (rests before the music are dropped)
    if pickup_meter is None:
        cells = tok._score_cells(score)
        notes = np.flatnonzero((cells != tok.rest_id).any(axis=1))
        first = int(notes[0]) if len(notes) else 0
    starts = grid.starts[:-1]
    if pickup_meter is None:
        unit_bars = [int((first + s) // bar) + 1 for s in starts]
    else:
        unit_bars = [u + 1 for u in range(len(starts))]
    pickup_rows = int(grid.starts[1]) if grid.bars and grid.bars[0] is None else 0
    pad = (bar - pickup_rows % bar) % bar  # what decoding puts before a pickup
    return ScoreGrid(grid, unit_bars, first - pad)


def grid_score(tok: BarGridTokenizer, sg: ScoreGrid) -> Score:
    """The notes of ``sg.grid``, decoded and moved to where the score they came from had them."""
    from musegen.tokenizers.grid import DECODE_TPQ

    out = plain_twin(tok).decode(plain_ids(tok, sg.grid))
    ticks = sg.shift * (DECODE_TPQ // tok.config.steps_per_quarter)
    for t in out.tracks:
        t.notes["start"] += ticks
    return out


def unit_lengths(grid: BarGrid) -> np.ndarray:
    """Ids each unit takes in a sequence (its BAR id, if any, and its cells)."""
    rows = np.diff(grid.starts) * grid.cells.shape[1]
    return rows + np.array([b is not None for b in grid.bars], dtype=np.int64)


def fit_context(
    grid: BarGrid, first: int, last: int, context_bars: int, budget: int
) -> tuple[int, int, int]:
    """``(c0, c1, last)``: the context window (up to ``context_bars`` units each side of
    ``first..last``) and the last unit to write, so that prompt and answer together take at
    most ``budget`` ids (the window shrinks first, the far side first, then the region; one
    unit is always written)."""
    lengths = unit_lengths(grid)
    c0, c1 = max(0, first - context_bars), min(grid.n_units - 1, last + context_bars)

    def size(c0: int, c1: int, last: int) -> int:
        return 5 + int(lengths[c0 : c1 + 1].sum()) + int(lengths[first : last + 1].sum())

    while size(c0, c1, last) > budget:
        if c1 > last and (c1 - last >= first - c0):
            c1 -= 1
        elif c0 < first:
            c0 += 1
        elif last > first:
            last -= 1
            c1 = last
        else:
            break
    return c0, c1, last
