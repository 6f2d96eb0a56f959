"""Bar plans: pieces whose bars restate a theme or earlier bars, forced through the grammar.

A :class:`BarPlan` says, for each bar of a piece (counted by its ``BAR`` tokens, the first
bar after any pickup being bar 0), whether it is free or restates a source bar: a bar of a
given theme (:mod:`musegen.sampling.themes`) or a bar the model wrote earlier in the same
piece (a section that returns, :func:`form_plan`). :func:`planned` wraps a bar-grid
tokenizer so that its grammar forces the restated cells while the model samples; everything
else (the other voices, the free bars) the model writes itself, in the context of what was
forced. This is sampling-time planning in the spirit of the Bar Transformer's bar-level
plan: the model is unchanged, so every bar-grid model (``chorale``, ``melody``,
``melody-chords`` and their infill twins) can follow a plan.

How a bar restates its source (:class:`Restate`):

* ``exact``: the same cells (rests, holds and pitches);
* ``sequence``: the same rhythm, every pitch moved by one interval, which the model chooses
  at the first note (within ``window`` semitones; 0 is allowed, so it may restate exactly);
* ``varied``: the same rhythm, each pitch within ``window`` semitones of the source's moved
  by that interval (the model picks each).

A forced cell the grammar does not allow (a pitch out of a voice's range, a parallel fifth,
a HOLD after a rest) is left free, so a plan never makes a dead end.

Measures (:func:`bar_similarity`, :func:`self_similarity`, :func:`repetition_features`) read
the top line of bar-grid sequences: two bars are compared by their rhythm (each row an
onset, a hold or a rest) and their pitches up to one transposition.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from musegen.errors import MusegenError
from musegen.tokenizers.base import Grammar, Tokenizer

MODES = ("exact", "sequence", "varied")
MATCH = 0.75  # bars at least this similar (bar_similarity) count as one restating the other


def plannable(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` writes bars of rows a plan can force (the bar-grid tokenizers)."""
    from musegen.tokenizers.chorale import BarGridTokenizer

    return isinstance(tokenizer, BarGridTokenizer)


@dataclass(frozen=True)
class Restate:
    """Bar restates ``index``: a bar of the theme (``theme=True``) or an earlier bar of the
    piece, in ``voices`` (0: the top voice), by ``mode`` (module docstring). Bars that share
    a ``group`` share one transposition."""

    index: int
    theme: bool = False
    mode: str = "exact"
    group: int = 0
    voices: tuple[int, ...] = (0,)
    window: int = 5
    shifts: tuple[int, ...] | None = None  # transpositions allowed (None: any in the window)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise MusegenError(f"unknown restatement {self.mode!r}; choose {', '.join(MODES)}")


@dataclass(frozen=True)
class BarPlan:
    """Per bar: None (free) or a :class:`Restate`; ``theme``: the theme's cells, one
    ``[rows, voices]`` array of tokenizer ids per bar (REST / HOLD / pitch; -1: free);
    ``no_pickup``: no rows before the first bar line."""

    bars: tuple[Restate | None, ...]
    theme: tuple[np.ndarray, ...] = ()
    no_pickup: bool = False  # the first bar begins the piece (a theme opens it)

    def to_dict(self) -> dict[str, Any]:
        """The plan as its settings JSON records it."""
        return {
            "bars": [
                None
                if r is None
                else {
                    "source": ("theme " if r.theme else "bar ") + str(r.index + 1),
                    "mode": r.mode,
                }
                for r in self.bars
            ],
            "theme_bars": len(self.theme),
        }


def planned(tokenizer: Tokenizer, plan: BarPlan) -> Tokenizer:
    """A copy of ``tokenizer`` whose grammar follows ``plan`` (see :class:`PlanGrammar`)."""
    if not plannable(tokenizer):
        raise MusegenError(
            f"the {tokenizer.name} tokenizer has no bar grid: themes and forms need a bar-grid "
            "model (chorale, melody, melody-chords)"
        )
    out = copy.copy(tokenizer)
    inner = tokenizer.grammar
    out.grammar = lambda: PlanGrammar(inner(), tokenizer, plan)  # type: ignore[method-assign]
    return out


class PlanGrammar(Grammar):
    """A bar-grid grammar that narrows each cell of a planned bar to what the plan restates."""

    def __init__(self, inner: Grammar, tok: Any, plan: BarPlan) -> None:
        self._inner = inner
        self._plan = plan
        self._n = tok.n_voices
        self._rest, self._hold, self._pitch = tok.rest_id, tok.hold_id, tok.pitch_offset
        self._bar_lo, self._bar_hi = tok.vocab.span("bar")
        self._size = len(tok.vocab)
        self.bar = -1  # bars begun (-1: the pickup or the header)
        self.cell = 0  # cells written in this bar
        self.written: list[list[int]] = []  # each bar's cells, row by row, holds resolved
        self._last = [-1] * self._n  # the pitch each voice sounds (-1: none)
        self._shift: dict[int, int] = {}  # group -> chosen transposition

    @property
    def done(self) -> bool:
        return self._inner.done

    def _source(self) -> tuple[int, Restate] | None:
        """The source cell id for the next cell, and its restatement, or None (free)."""
        if not 0 <= self.bar < len(self._plan.bars):
            return None
        r = self._plan.bars[self.bar]
        row, voice = divmod(self.cell, self._n)
        if r is None or voice not in r.voices:
            return None
        if r.theme:
            src = self._plan.theme[r.index]
            if row >= len(src):
                return None
            cell = int(src[row, voice])
        else:
            if r.index >= min(self.bar, len(self.written)):
                return None
            cells = self.written[r.index]
            k = row * self._n + voice
            if k >= len(cells):
                return None
            cell = cells[k]
        return (cell, r) if cell >= 0 else None

    def _wanted(self, source: tuple[int, Restate]) -> np.ndarray:
        cell, r = source
        out = np.zeros(self._size, dtype=bool)
        if cell < self._pitch:
            out[cell] = True  # a rest or a hold: the rhythm is kept in every mode
            return out
        shift = self._shift.get(r.group)
        if r.mode == "exact":
            targets = [cell]
        elif r.mode == "sequence" and shift is not None:
            targets = [cell + shift]
        elif r.mode == "sequence":
            ks = range(-r.window, r.window + 1) if r.shifts is None else r.shifts
            targets = [cell + k for k in ks if abs(k) <= r.window]
        else:
            base = cell + (shift or 0)
            targets = list(range(base - r.window, base + r.window + 1))
        for t in targets:
            if self._pitch <= t < self._pitch + 128:
                out[t] = True
        return out

    def mask(self) -> np.ndarray:
        m = self._inner.mask()
        if self.bar < 0 and self._plan.no_pickup and m[self._bar_lo : self._bar_hi].any():
            out = np.zeros_like(m)
            out[self._bar_lo : self._bar_hi] = m[self._bar_lo : self._bar_hi]
            return out
        source = self._source()
        if source is None:
            return m
        narrowed = m & self._wanted(source)
        return narrowed if narrowed.any() else m

    def step(self, token: int) -> None:
        source = self._source()
        self._inner.step(token)
        if self._bar_lo <= token < self._bar_hi:
            self.bar += 1
            self.cell = 0
            self.written.append([])
            return
        if token < self._rest:
            return  # header, control tokens, EOS, PAD
        voice = self.cell % self._n
        resolved = token
        if token == self._hold and self.cell < self._n and self._last[voice] >= 0:
            resolved = self._pitch + self._last[voice]  # a bar's first row holds a pitch
        if token >= self._pitch:
            self._last[voice] = token - self._pitch
        elif token == self._rest:
            self._last[voice] = -1
        if source is not None and token >= self._pitch and source[0] >= self._pitch:
            cell, r = source
            if r.group not in self._shift and r.mode != "exact":
                self._shift[r.group] = token - cell
        if self.bar >= 0:
            self.written[self.bar].append(resolved)
        self.cell += 1


# ----------------------------------------------------------------------------- forms


def parse_form(text: str) -> tuple[str, ...]:
    """``"AABA"`` -> ``("A", "A", "B", "A")``: one letter a section."""
    letters = tuple(text.strip().upper())
    if not letters or not all("A" <= c <= "Z" for c in letters):
        raise MusegenError(f"--form {text!r}: write one letter a section, e.g. AABA")
    return letters


def form_plan(
    form: Sequence[str],
    bars: int,
    mode: str = "exact",
    vary_last: bool = True,
    voices: tuple[int, ...] = (0,),
) -> BarPlan:
    """A plan for ``bars`` bars in the sections of ``form`` (equal lengths, the last takes
    what is left): a section whose letter came before restates that section's bars by
    ``mode``; with ``vary_last`` its last bar is free (a returning section may close or lead
    on differently, as in AABA songs)."""
    if not form:
        raise MusegenError("a form needs at least one section")
    if bars < len(form):
        raise MusegenError(f"--form {''.join(form)} needs at least {len(form)} bars")
    size = bars // len(form)
    starts = [i * size for i in range(len(form))] + [bars]
    first: dict[str, int] = {}
    plan: list[Restate | None] = [None] * bars
    for s, letter in enumerate(form):
        lo, hi = starts[s], starts[s + 1]
        if letter not in first:
            first[letter] = lo
            continue
        src = first[letter]
        for b in range(lo, hi - (1 if vary_last and hi - lo > 1 else 0)):
            if src + (b - lo) < lo:
                plan[b] = Restate(src + b - lo, mode=mode, group=s + 1, voices=voices)
    return BarPlan(tuple(plan))


# ----------------------------------------------------------------------------- measures


def top_line_bars(tok: Any, ids: np.ndarray | Sequence[int]) -> list[np.ndarray]:
    """The top voice of each bar of a bar-grid sequence: ``[rows]`` arrays of MIDI pitches
    at onsets, -1 for a hold, -2 for a rest (the pickup is left out)."""
    ids = np.asarray(ids, dtype=np.int64)
    lo, hi = tok.vocab.span("bar")
    bars: list[list[int]] = []
    k = 0
    for t in ids.tolist():
        if lo <= t < hi:
            bars.append([])
            k = 0
            continue
        if t < tok.rest_id or not bars:
            continue
        if k % tok.n_voices == 0:
            bars[-1].append(
                -2 if t == tok.rest_id else -1 if t == tok.hold_id else t - tok.pitch_offset
            )
        k += 1
    return [np.array(b, dtype=np.int64) for b in bars]


def bar_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """How far bar ``b`` restates bar ``a`` (top lines from :func:`top_line_bars`), 0 to 1:
    the share of rows of the same kind (onset, hold, rest) times the share of common onsets
    whose pitch differs from ``a``'s by the most common interval (a transposition counts as
    a restatement; 1 when neither has an onset in common but the rhythm agrees)."""
    n = min(len(a), len(b))
    if n == 0 or len(a) != len(b):
        return 0.0
    kind_a = np.where(a >= 0, 0, a)
    kind_b = np.where(b >= 0, 0, b)
    rhythm = float(np.mean(kind_a == kind_b))
    both = (a >= 0) & (b >= 0)
    if not both.any():
        return rhythm if not ((a >= 0) | (b >= 0)).any() else 0.0
    diff = b[both] - a[both]
    common = Counter(diff.tolist()).most_common(1)[0][1]
    return rhythm * common / len(diff)


def self_similarity(bars: Sequence[np.ndarray]) -> np.ndarray:
    """The ``[bars, bars]`` matrix of :func:`bar_similarity`."""
    n = len(bars)
    out = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = bar_similarity(bars[i], bars[j])
    return out


def repetition_features(bars: Sequence[np.ndarray], match: float = MATCH) -> dict[str, float]:
    """Repetition of one piece's bars:

    * ``repeated_bars``: share of bars (after the first) that restate an earlier bar
      (similarity >= ``match``);
    * ``exact_repeats``: share of bars (after the first) equal to an earlier one;
    * ``mean_similarity``: mean similarity of all pairs of different bars;
    * ``returning_runs``: share of bars in a run of >= 2 consecutive bars that restates an
      earlier run at the same distance (a returning section);
    * ``lag_profile``: for lags of 2, 4, 8 and 16 bars, the mean similarity of bars that far
      apart (``lag_2`` … ``lag_16``; NaN when the piece is shorter)."""
    n = len(bars)
    out: dict[str, float] = {}
    if n < 2:
        nan = float("nan")
        out = {"repeated_bars": nan, "exact_repeats": nan, "mean_similarity": nan}
        out |= {"returning_runs": nan} | {f"lag_{k}": nan for k in (2, 4, 8, 16)}
        return out
    sim = self_similarity(bars)
    earlier = [sim[i, :i].max() for i in range(1, n)]
    out["repeated_bars"] = float(np.mean([s >= match for s in earlier]))
    out["exact_repeats"] = float(
        np.mean([any(np.array_equal(bars[i], bars[j]) for j in range(i)) for i in range(1, n)])
    )
    out["mean_similarity"] = float(sim[~np.eye(n, dtype=bool)].mean())
    in_run = np.zeros(n, dtype=bool)
    for lag in range(1, n):
        hit = np.array([sim[i, i - lag] >= match for i in range(lag, n)])
        for i in range(lag, n - 1):
            if hit[i - lag] and hit[i - lag + 1]:
                in_run[i] = in_run[i + 1] = True
    out["returning_runs"] = float(in_run.mean())
    for lag in (2, 4, 8, 16):
        pairs = [sim[i, i - lag] for i in range(lag, n)]
        out[f"lag_{lag}"] = float(np.mean(pairs)) if pairs else float("nan")
    return out


def section_form(bars: Sequence[np.ndarray], sections: int = 4, match: float = MATCH) -> str:
    """The form of a piece's first ``sections`` equal sections as letters: a section whose
    bars restate an earlier section's, bar for bar (mean similarity >= ``match``, its last
    bar left out), takes that section's letter, else the next new letter ("AABA")."""
    size = len(bars) // sections
    if size < 1:
        return ""
    letters: list[str] = []
    for s in range(sections):
        letter = None
        for e in range(s):
            span = range(size - 1) if size > 1 else range(size)
            score = np.mean([bar_similarity(bars[e * size + k], bars[s * size + k]) for k in span])
            if score >= match:
                letter = letters[e]
                break
        letters.append(letter or chr(ord("A") + len(set(letters))))
    return "".join(letters)


@dataclass
class FormShares:
    """How often each form occurs among a corpus's pieces (:func:`section_form`)."""

    shares: dict[str, float] = field(default_factory=dict)
    pieces: int = 0

    def draw(self, rng: np.random.Generator) -> str:
        forms = sorted(self.shares)
        p = np.array([self.shares[f] for f in forms])
        return forms[int(rng.choice(len(forms), p=p / p.sum()))]
