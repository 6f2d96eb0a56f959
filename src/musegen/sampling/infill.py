"""Infilling and accompaniment with a token model trained on the infill objective.

A model whose tokenizer is ``chorale-infill`` or ``melody-infill``
(:mod:`musegen.tokenizers.infill`) rewrites some voices of some bars given everything else:
:func:`infill_score` (``musegen infill --model``) and :func:`accompany_score` (``musegen
accompany --model``: the melody is one voice, the others are written in every bar).

A region longer than the model's ``max_region_bars`` is written in steps, left to right: each
step writes up to that many bars, seeing ``context_bars`` bars each side (the bars it wrote
before, and the given voices ahead; what is still to be written stays hidden), within the
sequence length the model was trained on. The given cells are forced by
:class:`~musegen.tokenizers.infill.AnswerGrammar`, so they are kept exactly, and the bars
outside the region are the input as the tokenizer reads it (on its 16th-note grid).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from musegen.errors import MusegenError
from musegen.sampling.generate import SamplingConfig, _sample, decoding_threads
from musegen.score import VOICES, Score, Track
from musegen.tokenizers.base import EOS, GrammarList
from musegen.tokenizers.chorale import BarGridTokenizer
from musegen.tokenizers.infill import (
    AnswerGrammar,
    BarGrid,
    Region,
    can_infill,
    fit_context,
    grid_score,
    infill_prompt,
    restart_after,
    score_grid,
)


@dataclass(frozen=True)
class InfillOptions:
    """How a model was trained to infill (its config's ``"infill"`` entry): bars of context
    each side, the most bars written in one step, and the longest sequence it saw."""

    context_bars: int = 3
    max_region_bars: int = 4
    seq_len: int = 1024

    def __post_init__(self) -> None:
        if self.context_bars < 0 or self.max_region_bars < 1 or self.seq_len < 16:
            raise MusegenError(f"bad infill options {self}")

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> InfillOptions:
        given = meta.get("infill") or {}
        known = {
            k: int(given[k]) for k in ("context_bars", "max_region_bars", "seq_len") if k in given
        }
        return cls(**known)


def check_model(model: torch.nn.Module, tok: Any) -> BarGridTokenizer:
    """``tok`` if it writes infill sequences and matches the model; else a MusegenError."""
    if not can_infill(tok):
        raise MusegenError(
            f"a model with the {tok.name} tokenizer was not trained to infill (train one with "
            "the infill objective, e.g. configs/bach-infill.json)"
        )
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab is not None and vocab != len(tok):
        raise MusegenError(
            f"model and tokenizer do not match: the model has {vocab} tokens, the {tok.name} "
            f"tokenizer {len(tok)}"
        )
    return tok


@torch.no_grad()
def fill_units(
    model: torch.nn.Module,
    tok: BarGridTokenizer,
    grid: BarGrid,
    first: int,
    last: int,
    voices: Sequence[int],
    options: InfillOptions,
    sampling: SamplingConfig,
) -> BarGrid:
    """``grid`` with ``voices`` of units ``first..last`` written by the model."""
    voices = tuple(sorted(set(voices)))
    grid = restart_after(tok, grid, int(grid.starts[last + 1]), voices)
    filters = sampling.filters(tok)
    device = next(model.parameters()).device
    model.eval()
    start, step = first, 0
    with decoding_threads(model, 1, device):
        while start <= last:
            stop = min(start + options.max_region_bars - 1, last)
            c0, c1, stop = fit_context(grid, start, stop, options.context_bars, options.seq_len)
            region = Region(start, stop, voices, (c0, c1), last)
            seed = int(np.random.SeedSequence((sampling.seed, step)).generate_state(1)[0])
            grid = _write(model, tok, grid, region, replace(sampling, seed=seed), filters)
            start, step = stop + 1, step + 1
    return grid


def _write(
    model: torch.nn.Module,
    tok: BarGridTokenizer,
    grid: BarGrid,
    region: Region,
    sampling: SamplingConfig,
    filters: list[Any],
) -> BarGrid:
    """``grid`` with the hidden cells of ``region`` (one step) drawn from the model."""
    prompt = infill_prompt(tok, grid, region)
    grammar = AnswerGrammar(tok, grid, region)
    n_new = len(grammar.plan)
    batch = GrammarList([grammar], len(tok))
    cfg = replace(sampling, max_new_tokens=n_new)
    ids = _sample(model, batch, prompt, cfg, filters, None, n_new + 1, False)[0]
    answer = ids[len(prompt) :]
    if len(answer) != n_new or answer[-1] != EOS:
        raise MusegenError("the infill answer ended early")  # cannot happen: the plan is forced
    bar_lo, bar_hi = tok.vocab.span("bar")
    body = answer[:-1]
    cells = body[(body < bar_lo) | (body >= bar_hi)]
    out = grid.cells.copy()
    out[grid.rows(region.first, region.last)] = cells.reshape(-1, tok.n_voices)
    return grid.with_cells(out)


def parse_voice_letters(tok: BarGridTokenizer, letters: str) -> list[int]:
    """Voice indices of ``letters`` (S, A, T, B; commas allowed) for a four-voice tokenizer;
    a one-voice tokenizer has only its line (any letters but those of all four voices are
    an error)."""
    text = letters.replace(",", "").replace(" ", "").upper()
    bad = sorted(set(text) - set(VOICES))
    if not text or bad or len(set(text)) != len(text):
        raise MusegenError(
            f"--voices takes distinct letters from S, A, T, B (e.g. S, SA, ATB), got {letters!r}"
        )
    if tok.n_voices == 1:
        if set(text) != set(VOICES):
            raise MusegenError(f"a {tok.name} model writes one line: leave out --voices")
        return [0]
    return sorted(VOICES.index(c) for c in text)


def infill_score(
    model: torch.nn.Module,
    tok: Any,
    score: Score,
    bars: tuple[int, int],
    voices: str = "SATB",
    *,
    sampling: SamplingConfig,
    options: InfillOptions,
) -> Score:
    """``score`` with ``voices`` in ``bars`` (1-based, inclusive) rewritten by the model."""
    tok = check_model(model, tok)
    idx = parse_voice_letters(tok, voices)
    sg = score_grid(tok, score)
    first, last = sg.units(*bars)
    grid = fill_units(model, tok, sg.grid, first, last, idx, options, sampling)
    return _with_looks(grid_score(tok, replace(sg, grid=grid)), score)


def accompany_score(
    model: torch.nn.Module,
    tok: Any,
    melody: Score,
    voice: str = "S",
    *,
    sampling: SamplingConfig,
    options: InfillOptions,
) -> Score:
    """Four voices: ``melody``'s top line (all its pitched tracks together) as ``voice``,
    the other three written by the model in every bar."""
    tok = check_model(model, tok)
    if tok.n_voices != len(VOICES):
        raise MusegenError(f"a {tok.name} model writes one line; accompany needs four voices")
    given = parse_voice_letters(tok, voice)
    if len(given) != 1:
        raise MusegenError(f"--voice takes one of S, A, T, B, got {voice!r}")
    notes = [t.notes for t in melody.tracks if not t.is_drum and len(t)]
    if not notes:
        raise MusegenError("the melody has no notes")
    label = VOICES[given[0]]
    line = replace(melody, tracks=[Track(np.concatenate(notes), voice=label)])
    line.tracks[0].notes.sort(order=["start", "pitch"])
    sg = score_grid(tok, line)
    others = [v for v in range(len(VOICES)) if v not in given]
    grid = fill_units(model, tok, sg.grid, 0, sg.grid.n_units - 1, others, options, sampling)
    out = grid_score(tok, replace(sg, grid=grid))
    return _with_looks(out, melody, {label: _first_pitched(melody)})


def _first_pitched(score: Score) -> Track | None:
    pitched = [t for t in score.tracks if not t.is_drum and len(t)]
    return pitched[0] if len(pitched) == 1 else None


def _with_looks(out: Score, source: Score, tracks: dict[str, Track | None] | None = None) -> Score:
    """``out`` with ``source``'s tempo, meter and key maps, and from the source track of each
    voice its name, program and the velocity of each note it shares (onset and pitch)."""
    from musegen.sampling.gibbs import _copy_velocities, _with_maps

    result = _with_maps(out, source)
    sources = tracks if tracks is not None else _voice_sources(source, len(result.tracks))
    for t in result.tracks:
        key = t.voice or "M"
        src = sources.get(key)
        if src is None:
            continue
        t.program, t.name = src.program, src.name or t.name
        _copy_velocities(t, src, source.tpq)
    return result


def _voice_sources(score: Score, n_voices: int) -> dict[str, Track | None]:
    """The source track of each voice: by voice label, else (four voices) four pitched
    tracks high to low, else (one line) the one pitched track."""
    pitched = [t for t in score.tracks if not t.is_drum and len(t)]
    if n_voices == 1:
        return {"M": pitched[0] if len(pitched) == 1 else None}
    labelled = {t.voice: t for t in score.tracks if t.voice}
    if labelled:
        return {v: labelled.get(v) for v in VOICES}
    if len(pitched) != len(VOICES):
        return {}
    order = sorted(pitched, key=lambda t: -float(t.notes["pitch"].mean()))
    return dict(zip(VOICES, order, strict=True))
