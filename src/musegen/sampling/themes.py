"""Themes (in the spirit of the Theme Transformer): a motif the piece states and restates.

``musegen generate --theme FILE``: the top line of FILE's first bars (up to
:data:`MAX_THEME_BARS`; a pickup is left out) is the theme. The piece opens with it and
restates it at the start of later phrases, exactly or varied, through a bar plan forced by
the grammar while the model samples (:mod:`musegen.sampling.structure`). This is a
sampling-time method: the model is not retrained, so every bar-grid model (the shipped
``bach`` and ``folk`` among them) takes a theme; the model writes everything the plan leaves
free (the other voices, the bars between, the variations' pitches) in the context of what
was forced. A training-based Theme Transformer (theme tokens as a segment the model attends
to) did not fit this project's CPU budget; the benchmark (``benchmarks/theme.py``) measures
this one against the same model unconditioned.

Where and how it comes back (:func:`theme_plan`): statements start at bars ``at`` (1-based;
default every phrase of 4 bars for a theme of 1-2 bars, 8 for 3-4, 16 for longer), the first
one exact, later ones by ``variation``: ``exact``, ``sequence`` (transposed by an interval the
model picks at its first note), ``varied`` (the rhythm kept, each pitch within a few
semitones of the theme's, by the model) or ``mixed`` (exact and sequence by turns, the
default).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from musegen.errors import MusegenError
from musegen.sampling.structure import BarPlan, Restate, form_plan, parse_form
from musegen.score import Score

MAX_THEME_BARS = 8
VARIATIONS = ("mixed", "exact", "sequence", "varied")


def theme_bars(score: Score, tokenizer: Any) -> tuple[str, list[np.ndarray]]:
    """The meter (``"3/4"``) and the top line of ``score``'s first bars as ``tokenizer``'s
    cells, one ``[rows, voices]`` array per bar (voice 0 set, the others -1: free), moved by
    octaves into the top voice's range when needed."""
    from musegen.tokenizers.chorale import MelodyTokenizer

    if score.is_empty():
        raise MusegenError("the theme has no notes")
    cfg = tokenizer.config
    line = MelodyTokenizer(
        steps_per_quarter=cfg.steps_per_quarter,
        time_signatures=list(cfg.time_signatures),
        max_bars=cfg.max_bars,
        pitch_range=(0, 127),
    )
    ids = line.encode(score, eos=False)
    meter = cfg.time_signatures[int(ids[1] - line.vocab.offset("ts"))]
    lo, hi = line.vocab.span("bar")
    marks = np.flatnonzero((ids >= lo) & (ids < hi))
    bars = [ids[a + 1 : b] for a, b in zip(marks, [*marks[1:], len(ids)], strict=True)]
    bars = [b[b >= line.rest_id] for b in bars[:MAX_THEME_BARS]]
    if not bars or not any((b >= line.pitch_offset).any() for b in bars):
        raise MusegenError("the theme has no notes after its pickup")
    while bars and not (bars[-1] >= line.pitch_offset).any() and len(bars) > 1:
        bars.pop()  # trailing empty bars are no part of the theme
    pitches = np.concatenate([b[b >= line.pitch_offset] for b in bars]) - line.pitch_offset
    low, high = cfg.ranges[0]
    shift = _octave_shift(int(pitches.min()), int(pitches.max()), low, high)
    out = []
    top_at = cfg.token_order.index(0)  # where a row writes the top voice
    for b in bars:
        cells = np.full((len(b), tokenizer.n_voices), -1, dtype=np.int64)
        top = np.where(b == line.rest_id, tokenizer.rest_id, tokenizer.hold_id)
        is_pitch = b >= line.pitch_offset
        top[is_pitch] = b[is_pitch] - line.pitch_offset + shift + tokenizer.pitch_offset
        cells[:, top_at] = top
        out.append(cells)
    if out[0][0, top_at] == tokenizer.hold_id:  # a held note from the pickup: sound it
        out[0][0, top_at] = tokenizer.rest_id
    return meter, out


def _octave_shift(lowest: int, highest: int, low: int, high: int) -> int:
    """Octaves (in semitones) that move ``lowest..highest`` into ``low..high``."""
    for k in (0, 12, -12, 24, -24, 36, -36):
        if low <= lowest + k and highest + k <= high:
            return k
    raise MusegenError(
        f"the theme spans MIDI {lowest}-{highest}, wider than the model's top voice ({low}-{high})"
    )


def statement_bars(n_theme: int, bars: int, at: Sequence[int] | None = None) -> list[int]:
    """0-based bars where statements start: ``at`` (1-based) checked, or every phrase."""
    if at:
        out = sorted({b - 1 for b in at})
        if out[0] < 0:
            raise MusegenError("--theme-at counts bars from 1")
        if out[0] != 0:
            raise MusegenError("--theme-at must include bar 1: the piece opens with its theme")
        return [b for b in out if b < bars]
    phrase = 4 if n_theme <= 2 else 8 if n_theme <= 4 else 16
    return list(range(0, bars, phrase))


def theme_plan(
    theme: list[np.ndarray],
    bars: int,
    at: Sequence[int] | None = None,
    variation: str = "mixed",
    base: BarPlan | None = None,
    pitch_offset: int = 0,
) -> BarPlan:
    """A plan for ``bars`` bars stating ``theme`` at :func:`statement_bars` (the first
    exactly, later ones by ``variation``; see the module docstring), over ``base`` (a form
    plan: the theme's bars take precedence); ``pitch_offset``: the id of MIDI pitch 0."""
    if variation not in VARIATIONS:
        raise MusegenError(f"--theme-variation {variation!r}: choose {', '.join(VARIATIONS)}")
    plan: list[Restate | None] = list(base.bars if base else ())
    plan += [None] * (bars - len(plan))
    cells = np.concatenate([b[:, 0] for b in theme])
    shifts = diatonic_shifts(cells[cells >= pitch_offset] - pitch_offset)
    for k, start in enumerate(statement_bars(len(theme), bars, at)):
        mode = variation
        if k == 0:
            mode = "exact"
        elif variation == "mixed":
            mode = "exact" if k % 2 == 0 else "sequence"
        for i in range(len(theme)):
            if start + i < bars:
                plan[start + i] = Restate(i, theme=True, mode=mode, group=1000 + k, shifts=shifts)
    return BarPlan(tuple(plan), tuple(theme), no_pickup=True)


MAJOR = (0, 2, 4, 5, 7, 9, 11)


def diatonic_shifts(pitches: np.ndarray, window: int = 7) -> tuple[int, ...]:
    """Transpositions (within ``window`` semitones) that keep a theme's ``pitches`` (MIDI) in
    a major scale holding it as written, so a sequence stays in the key; all of them for a
    theme no major scale holds."""
    pcs = {int(p) % 12 for p in pitches}
    scales = [{(t + d) % 12 for d in MAJOR} for t in range(12)]
    holding = [s for s in scales if pcs <= s]
    everything = tuple(range(-window, window + 1))
    if not holding:
        return everything
    return tuple(k for k in everything if any({(pc + k) % 12 for pc in pcs} <= s for s in holding))


def plan_request(
    tokenizer: Any,
    bars: int,
    theme: Score | None = None,
    at: Sequence[int] | None = None,
    variation: str = "mixed",
    form: str | None = None,
    seed: int = 0,
) -> tuple[BarPlan, str | None, dict[str, Any]]:
    """The plan for a ``generate`` request, the meter it needs (the theme's; None: any) and
    the settings to record (the form drawn for ``auto``)."""
    from musegen.sampling.structure import plannable

    if not plannable(tokenizer):
        raise MusegenError(
            f"--theme and --form need a bar-grid model (chorale, melody, melody-chords), not "
            f"the {tokenizer.name} tokenizer"
        )
    settings: dict[str, Any] = {}
    base = None
    if form:
        letters = parse_form(auto_form(tokenizer, seed, bars) if form == "auto" else form)
        settings["form"] = "".join(letters)
        base = form_plan(letters, bars)
    meter = None
    if theme is not None:
        meter, cells = theme_bars(theme, tokenizer)
        if len(cells) > bars:
            raise MusegenError(
                f"the theme has {len(cells)} bars, more than the {bars} asked for (--bars)"
            )
        plan = theme_plan(cells, bars, at, variation, base, tokenizer.pitch_offset)
        settings["theme"] = {
            "bars": len(cells),
            "at": [b + 1 for b in statement_bars(len(cells), bars, at)],
            "variation": variation,
            "meter": meter,
        }
    elif base is not None:
        plan = base
    else:
        raise MusegenError("nothing to plan: give --theme or --form")
    settings["plan"] = plan.to_dict()["bars"]
    return plan, meter, settings


def auto_form(tokenizer: Any, seed: int, bars: int = 16) -> str:
    """A form drawn from the shares measured on the model's kind of corpus (four sections;
    ``forms.json`` beside this module, made by ``benchmarks/structure.py --measure``): for
    fewer than 16 bars the shares of the corpus's 8-bar openings, else of its whole pieces."""
    return auto_forms(tokenizer, seed, bars, 1)[0]


def auto_forms(tokenizer: Any, seed: int, bars: int, num: int) -> list[str]:
    """``num`` forms drawn one after another (the first is :func:`auto_form`'s)."""
    return corpus_forms("chorale" if tokenizer.n_voices == 4 else "melody", seed, bars, num)


def corpus_forms(key: str, seed: int, bars: int, num: int) -> list[str]:
    """``num`` forms drawn with the shares ``forms.json`` measured on a corpus (``key``:
    ``chorale`` or ``melody``), those of its 8-bar openings for fewer than 16 bars."""
    import json
    from pathlib import Path

    from musegen.sampling.structure import FormShares

    table = json.loads((Path(__file__).with_name("forms.json")).read_text())
    if bars < 16 and f"{key}-8" in table:
        key += "-8"
    shares = FormShares(table[key]["shares"], table[key]["pieces"])
    rng = np.random.default_rng([seed, 19])
    return [shares.draw(rng) for _ in range(num)]


def plan_for(tokenizer: Any, request: Any, pieces: Any) -> tuple[Any, Any, dict[str, Any]]:
    """For a :class:`~musegen.sampling.generators.GenerateRequest` with a theme or a form:
    the tokenizer whose grammar follows the plan, the
    :class:`~musegen.sampling.pieces.PieceRequest` in the theme's meter, and the settings."""
    from dataclasses import replace

    from musegen.io import load
    from musegen.sampling.structure import planned

    if request.primer:
        raise MusegenError("--theme and --form begin a piece: leave out --primer")
    if request.seconds or request.tokens or not pieces.bars:
        raise MusegenError("--theme and --form plan bars: give the length with --bars")
    theme = load(request.theme) if request.theme else None
    plan, meter, settings = plan_request(
        tokenizer,
        pieces.bars,
        theme,
        request.theme_at,
        request.theme_variation,
        request.form,
        request.seed,
    )
    if meter is not None:
        if request.time_signature and request.time_signature != meter:
            raise MusegenError(
                f"--time-signature {request.time_signature}: the theme is in {meter}"
            )
        pieces = replace(pieces, time_signature=meter)
    return planned(tokenizer, plan), pieces, settings
