"""Orderless sampling from Coconet: blocked Gibbs with an annealed masking schedule, and the
tasks built on it (harmonize a line, infill bars, chorales from scratch).

The sampler (after Yao et al. 2014, as used by Coconet) works on a four-voice grid of 16th-note
steps. Some cells are *given* and never change; the others are *free*. Step 0 hides every free
cell and samples them all from the model's independent conditionals; step ``n > 0`` hides each
free cell with probability

    p_n = max(pmin, pmax - (pmax - pmin) · n / (alpha · N))

and resamples the hidden ones given everything else, so early steps redraw large blocks
(rough structure) and late steps polish a few cells at a time. ``N`` grows with the number of
free cells (:class:`AnnealSchedule`). Every draw uses one ``torch.Generator``: the same seed,
model and input give the same music. Classes outside each voice's range (and, unless
``allow_rest``, the rest class) get zero probability, so output voices stay in range.

Task functions take and return :class:`~musegen.score.Score` objects; given voices keep their
notes exactly (onsets included: a repeated note stays two notes), generated voices follow the
Coconet convention that equal neighbouring cells are one held note. :func:`harmonize` also
steers every conditional with voice-leading and articulation energies, merges stray 16ths of
the inner voices and, asked to, guarantees no parallel fifths or octaves
(:class:`HarmonizeOptions`, :mod:`musegen.sampling.rules_energy`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from musegen.errors import MusegenError
from musegen.sampling.rules_energy import (
    RuleContext,
    RuleWeights,
    cell_energy,
    repair_parallels,
    smooth_fragments,
)
from musegen.score import VOICES, Score, Tempo, TimeSignature, Track

# The rule and articulation energies harmonize uses by default, chosen on the valid sopranos
# (benchmarks/harmonize_voice_leading.py; the comparison is in docs/experiments.md, "Coconet
# harmonization, steered and cleaned").
DEFAULT_RULES = RuleWeights(
    parallel=math.inf,
    hidden=3.0,
    overlap=3.0,
    crossing=3.0,
    spacing=3.0,
    range=3.0,
    leap=3.0,
    augmented=2.0,
    change_8th=0.5,
    change_16th=2.0,
)
SMOOTHING = ("fragments", "all", "none")

STEPS_PER_QUARTER = 4  # the grid Coconet is trained on: 16th notes
DECODE_TPQ = 480  # ticks per quarter of the scores made from grids


@dataclass(frozen=True)
class AnnealSchedule:
    """How many Gibbs steps, and what share of free cells each one resamples.

    ``steps`` fixes the number of steps; otherwise it is ``per_cell`` × free cells (of the
    largest piece in a batch), clamped to ``min_steps .. max_steps``. The default was chosen
    on valid sopranos (8 bars, shipped model): voice-leading errors per 100 beats fell from 72
    (8 steps) to 49 (16) and 44 (32), then levelled off (43 at 64).
    """

    pmax: float = 0.9
    pmin: float = 0.05
    alpha: float = 0.7
    steps: int | None = None
    per_cell: float = 1 / 24  # 16 bars, three free voices: 768 cells → 32 steps
    min_steps: int = 24
    max_steps: int = 400

    def __post_init__(self) -> None:
        if not 0 < self.pmin <= self.pmax <= 1:
            raise MusegenError(f"need 0 < pmin <= pmax <= 1, got {self.pmin}, {self.pmax}")
        if not 0 < self.alpha <= 1:
            raise MusegenError(f"alpha must be in (0, 1], got {self.alpha}")
        if self.steps is not None and self.steps < 1:
            raise MusegenError(f"steps must be >= 1, got {self.steps}")

    def n_steps(self, free_cells: int) -> int:
        if self.steps is not None:
            return self.steps
        n = math.ceil(self.per_cell * free_cells)
        return int(min(max(n, self.min_steps), self.max_steps))

    def block_probability(self, n: int, total: int) -> float:
        """Share of free cells hidden at step ``n`` of ``total`` (1 at step 0)."""
        if n == 0:
            return 1.0
        return max(self.pmin, self.pmax - (self.pmax - self.pmin) * n / (self.alpha * total))


# --------------------------------------------------------------------------- the sampler
def allowed_classes(model: torch.nn.Module, allow_rest: bool = False) -> torch.Tensor:
    """[4, classes] bool: the pitches of each voice's range (+ the rest if ``allow_rest``)."""
    from musegen.models.coconet import OUT_OF_RANGE, REST

    ok = model.range_bias > OUT_OF_RANGE / 2
    ok[:, REST] = allow_rest
    return ok


@torch.no_grad()
def gibbs(
    model: torch.nn.Module,
    cells: torch.Tensor,
    given: torch.Tensor,
    *,
    temperature: float = 1.0,
    schedule: AnnealSchedule | None = None,
    generator: torch.Generator | None = None,
    allow_rest: bool = False,
    on_step: Callable[[int, int], None] | None = None,
    penalty: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Fill the free cells of class grids ``cells [B, T, 4]`` (``given`` marks fixed cells).

    Returns a new grid; given cells are copied unchanged. ``temperature`` 0 takes the most
    likely class instead of sampling. ``penalty``, if given, is called before each step
    after the first (the first redraws every free cell, whose current values mean nothing
    yet) with the grid and the cells about to be redrawn; it returns their energies
    ``[K, classes]`` (in the order of ``cells[hidden]``), which are subtracted from the
    logits. An infinite energy forbids a class, unless it would forbid every class of a
    cell: there the penalty is ignored.
    """
    if temperature < 0:
        raise MusegenError(f"temperature must be >= 0, got {temperature}")
    schedule = schedule or AnnealSchedule()
    cells = cells.clone().long()
    free = ~given.bool()
    n_free = int(free.sum(dim=(1, 2)).max()) if free.numel() else 0
    if n_free == 0:
        return cells
    was_training = model.training
    model.eval()
    ok = allowed_classes(model, allow_rest)
    bias = torch.where(ok, 0.0, float("-inf"))
    cells[free] = ok.float().argmax(dim=1).expand_as(cells)[free]  # any allowed value
    total = schedule.n_steps(n_free)
    for n in range(total):
        p = schedule.block_probability(n, total)
        hidden = free if p >= 1 else free & (torch.rand(free.shape, generator=generator) < p)
        if not bool(hidden.any()):
            continue
        logits = model(cells, hidden).float() + bias
        picked = logits[hidden]  # [K, classes]
        if penalty is not None and n > 0:
            steered = picked - penalty(cells, hidden)
            dead = ~torch.isfinite(steered).any(dim=-1, keepdim=True)
            picked = torch.where(dead, picked, steered)
        if temperature == 0:
            draws = picked.argmax(dim=-1)
        else:
            probs = torch.softmax(picked / temperature, dim=-1)
            draws = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        cells[hidden] = draws
        if on_step is not None:
            on_step(n + 1, total)
    model.train(was_training)
    return cells


def sample_pitches(
    model: torch.nn.Module,
    pitches: np.ndarray,
    given: np.ndarray,
    *,
    seed: int = 0,
    temperature: float = 1.0,
    schedule: AnnealSchedule | None = None,
    allow_rest: bool = False,
    penalty: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """:func:`gibbs` on MIDI pitch grids ``[T, 4]`` or ``[B, T, 4]`` (-1 = silent).

    Given cells must lie on the model's pitch axis (``low..high``); free cells' values are
    ignored. ``penalty`` takes the current pitch grid ``[B, T, 4]`` and the mask of the cells
    about to be redrawn and returns their energies ``[K, classes]`` (see :func:`gibbs`).
    Returns int64 pitches of the same shape.
    """
    from musegen.models.coconet import to_classes, to_pitches

    arr = np.asarray(pitches, dtype=np.int64)
    mask = np.asarray(given, dtype=bool)
    if arr.shape != mask.shape or arr.ndim not in (2, 3) or arr.shape[-1] != len(VOICES):
        raise MusegenError(
            f"expected pitch and given grids [T, 4] alike, got {arr.shape}, {mask.shape}"
        )
    single = arr.ndim == 2
    if single:
        arr, mask = arr[None], mask[None]
    cfg = model.config
    values = np.where(mask, arr, -1)
    if ((values >= 0) & ((values < cfg.low) | (values > cfg.high))).any():
        raise MusegenError(
            f"given notes must lie in the model's pitch range {cfg.low}..{cfg.high}: transpose"
        )
    cells = to_classes(torch.from_numpy(values), cfg.low, cfg.high)
    gen = torch.Generator().manual_seed(int(seed))

    def on_classes(grid: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        assert penalty is not None
        energy = penalty(to_pitches(grid, cfg.low).numpy(), hidden.numpy())
        return torch.from_numpy(np.asarray(energy, dtype=np.float32))

    out = gibbs(
        model,
        cells,
        torch.from_numpy(mask),
        temperature=temperature,
        schedule=schedule,
        generator=gen,
        allow_rest=allow_rest,
        penalty=None if penalty is None else on_classes,
    )
    result = to_pitches(out, cfg.low).numpy()
    result = np.where(mask, arr, result)  # exactly the given values, by construction
    return result[0] if single else result


# --------------------------------------------------------------------------- grids <-> scores
def _tokenizer(hold: bool):  # type: ignore[no-untyped-def]
    from musegen.tokenizers.grid import full_range_satb

    return full_range_satb(STEPS_PER_QUARTER, hold=hold)


MAX_BARS = 64
"""Longest score (in bars of 4/4) harmonize and infill take: Coconet redraws the whole grid at
every Gibbs step, so time grows with the length (200 bars: ~3 s a step, 400 steps)."""


def check_length(score: Score) -> None:
    """Refuse a score longer than :data:`MAX_BARS` bars of 4/4 (cheaply, before any grid)."""
    bars = score.end / max(score.tpq, 1) / 4
    if bars > MAX_BARS:
        raise MusegenError(
            f"the score lasts {bars:,.0f} bars of 4/4; Coconet harmonizes and infills up to "
            f"{MAX_BARS} bars (cut it, e.g. with Score.slice_bars)"
        )


def score_grid(score: Score) -> tuple[np.ndarray, np.ndarray]:
    """A four-voice score's pitches ``[T, 4]`` (-1 silent) and onsets ``[T, 4]`` on 16ths.

    Voices as :class:`~musegen.tokenizers.grid.SatbTokenizer` finds them (S/A/T/B labels, or
    four pitched tracks ordered high to low).
    """
    tok = _tokenizer(hold=True)
    ids = tok.encode(score).astype(np.int64)
    hold = tok.hold_id
    onset = (ids != tok.SILENT_ID) & (ids != hold)
    pitch = np.where(onset, ids - tok.PITCH_OFFSET, -1)
    # a HOLD cell sounds the pitch of its note's onset
    rows = np.arange(len(ids))[:, None]
    src = np.maximum.accumulate(np.where(ids == hold, -1, rows), axis=0)
    pitch = np.where(ids == hold, pitch[np.maximum(src, 0), np.arange(4)[None, :]], pitch)
    return pitch, onset


def grid_score(pitches: np.ndarray, onsets: np.ndarray | None = None, velocity: int = 80) -> Score:
    """A four-track S/A/T/B score from pitches ``[T, 4]``; without ``onsets`` a note starts
    wherever a voice's pitch changes (the Coconet convention)."""
    from musegen.tokenizers.grid import SatbTokenizer

    pitch = np.asarray(pitches, dtype=np.int64)
    before = np.vstack([np.full((1, len(VOICES)), -1), pitch[:-1]])
    changed = (pitch >= 0) & (pitch != before)
    onset = changed if onsets is None else (np.asarray(onsets, bool) | changed)
    tok = _tokenizer(hold=True)
    ids = np.where(pitch < 0, SatbTokenizer.SILENT_ID, np.where(onset, pitch + 1, tok.hold_id))
    out = tok.decode(ids)
    for t in out.tracks:
        t.notes["velocity"] = velocity
    return out


def parse_voices(text: str) -> list[int]:
    """'SATB' letters → voice indices in S, A, T, B order; bad text is a MusegenError."""
    letters = text.strip().upper()
    bad = sorted(set(letters) - set(VOICES))
    if not letters or bad or len(set(letters)) != len(letters):
        raise MusegenError(
            f"--voices takes distinct letters from S, A, T, B (e.g. S, SA, ATB), got {text!r}"
        )
    return sorted(VOICES.index(c) for c in letters)


def _fit_shift(pitches: np.ndarray, given: np.ndarray, model: torch.nn.Module) -> int:
    """The smallest transposition putting every given note inside its voice's range, else
    (a wider part) inside the model's pitch axis; a MusegenError if neither fits."""
    cfg = model.config
    for ranges in (cfg.ranges, [(cfg.low, cfg.high)] * len(VOICES)):
        lo, hi = -128, 128
        for v, (vlo, vhi) in enumerate(ranges):
            p = pitches[..., v][given[..., v] & (pitches[..., v] >= 0)]
            if p.size:
                lo, hi = max(lo, vlo - int(p.min())), min(hi, vhi - int(p.max()))
        if lo <= hi:
            return 0 if lo <= 0 <= hi else (lo if lo > 0 else hi)
    names = ", ".join(f"{n} {a}-{b}" for n, (a, b) in zip(VOICES, cfg.ranges, strict=True))
    raise MusegenError(
        f"the given notes span more than the model's voice ranges allow ({names}, MIDI; "
        f"all voices {cfg.low}-{cfg.high}): narrow the line or give fewer voices"
    )


def _sample_in_range(
    model: torch.nn.Module,
    pitches: np.ndarray,
    given: np.ndarray,
    **kwargs: object,
) -> np.ndarray:
    """:func:`sample_pitches` after transposing the given notes into range, and back."""
    shift = _fit_shift(pitches, given, model)
    moved = np.where(pitches >= 0, pitches + shift, -1)
    out = sample_pitches(model, moved, given, **kwargs)  # type: ignore[arg-type]
    out = np.where(out >= 0, out - shift, -1)
    return np.where(given, pitches, out)


def _with_maps(out: Score, source: Score) -> Score:
    """``out`` with the tempo, meter and key maps of ``source`` (rescaled to its ticks)."""

    def scaled(items: list) -> list:  # type: ignore[type-arg]
        return [replace(x, time=x.time * out.tpq // source.tpq) for x in items]

    return replace(
        out,
        tempos=scaled(source.tempos),
        time_signatures=scaled(source.time_signatures),
        key_signatures=scaled(source.key_signatures),
    )


# --------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class HarmonizeOptions:
    """How :func:`harmonize` steers and cleans Coconet's voices (the defaults are the
    combination chosen on the valid sopranos; ``HarmonizeOptions.plain()`` is bare Coconet).

    ``rules``: voice-leading and articulation energies subtracted from every Gibbs
    conditional (:mod:`musegen.sampling.rules_energy`). ``smooth``: after sampling, 16th
    notes of the generated ``smooth_voices`` merge into a neighbouring note where that
    breaks no more rules: ``"fragments"`` keeps the stepwise passing and neighbour 16ths of
    the second half of a beat (how Bach writes them), ``"all"`` merges any, ``"none"``
    none. ``samples``: harmonize this many times in one batch (that many times slower) and
    keep the one with the fewest voice-leading errors by
    :func:`~musegen.metrics.voice_leading.check_voice_leading` (the first on a tie).
    ``strict``: never write a parallel fifth or octave: such classes are forbidden in the
    conditionals, smoothing never makes one, and
    :func:`~musegen.sampling.rules_energy.repair_parallels` removes any that simultaneous
    draws still made.
    """

    rules: RuleWeights = DEFAULT_RULES
    smooth: str = "fragments"
    smooth_voices: str = "AT"
    samples: int = 1
    strict: bool = False

    def __post_init__(self) -> None:
        voices = self.smooth_voices.upper()
        if self.smooth not in SMOOTHING or self.samples < 1 or set(voices) - set(VOICES):
            raise MusegenError(
                f"need smooth in {', '.join(SMOOTHING)}, smooth_voices of S/A/T/B and "
                f"samples >= 1, got {self.smooth!r}, {self.smooth_voices!r}, {self.samples}"
            )

    @classmethod
    def plain(cls) -> HarmonizeOptions:
        """Bare Coconet: no energies, no smoothing, one sample."""
        return cls(rules=RuleWeights(), smooth="none")


def harmonize(
    model: torch.nn.Module,
    line: Score,
    voices: str = "S",
    *,
    seed: int = 0,
    temperature: float = 1.0,
    schedule: AnnealSchedule | None = None,
    options: HarmonizeOptions | None = None,
) -> Score:
    """Four voices around the given line(s) of ``line``.

    ``voices`` names what the input gives. One voice: the input's track labelled with it if
    there is one, else the whole input as one line; where that is polyphonic the top note of
    each 16th step is kept for ``S``/``A``, the bottom one for ``T``/``B`` (how the SATB grid
    reduces chords).
    Several: tracks labelled with those voices, else that many pitched tracks ordered high to
    low. The line is transposed into its voice's range if needed (the result is moved back);
    the other voices are sampled, steered and cleaned as ``options`` says
    (:class:`HarmonizeOptions`). Given notes keep their onsets and pitches exactly.
    """
    opts = options or HarmonizeOptions()
    idx = parse_voices(voices)
    check_length(line)
    pitched = [t for t in line.tracks if not t.is_drum and len(t)]
    if not pitched:
        raise MusegenError("the melody has no notes")
    if len(idx) == 1:
        label = VOICES[idx[0]]
        own = [t for t in pitched if t.voice == label] or pitched  # its labelled track, if any
        tracks = [Track(np.concatenate([t.notes for t in own]), voice=label)]
    else:
        labelled = {t.voice: t for t in pitched if t.voice}
        if all(VOICES[i] in labelled for i in idx):
            tracks = [replace(labelled[VOICES[i]]) for i in idx]
        elif len(pitched) == len(idx):
            means = [float(t.notes["pitch"].mean()) for t in pitched]
            order = sorted(range(len(pitched)), key=lambda k: -means[k])
            tracks = [replace(pitched[k], voice=VOICES[i]) for k, i in zip(order, idx, strict=True)]
        else:
            raise MusegenError(
                f"--voices {voices} needs {len(idx)} parts (tracks labelled {voices.upper()} or "
                f"exactly {len(idx)} pitched tracks); the input has {len(pitched)}"
            )
    given_line = Score(tpq=line.tpq, tracks=tracks)
    pitch, onset = score_grid(given_line)
    if not (pitch >= 0).any():
        raise MusegenError("the melody has no notes on the 16th-note grid")
    given = np.zeros_like(pitch, dtype=bool)
    given[:, idx] = True
    kept_onsets = np.where(given, onset, False)
    best: tuple[int, Score] | None = None
    for grid in _harmonize_grids(
        model, pitch, given, given_line, opts, seed, temperature, schedule
    ):
        result = grid_score(grid, kept_onsets)
        for i, t in zip(idx, tracks, strict=True):
            _copy_velocities(result.tracks[i], t, line.tpq)
        result = _with_maps(result, line)
        if opts.samples == 1:
            return result
        from musegen.metrics.voice_leading import check_voice_leading

        errors = len(check_voice_leading(result).errors)
        if best is None or errors < best[0]:
            best = (errors, result)
    assert best is not None
    return best[1]


def _harmonize_grids(
    model: torch.nn.Module,
    pitch: np.ndarray,
    given: np.ndarray,
    line: Score,
    opts: HarmonizeOptions,
    seed: int,
    temperature: float,
    schedule: AnnealSchedule | None,
) -> list[np.ndarray]:
    """``opts.samples`` finished pitch grids ``[T, 4]`` (given cells exact), sampled in one
    batch in the model's range, steered, smoothed and (strict) repaired there, moved back."""
    from musegen.theory import estimate_key

    shift = _fit_shift(pitch, given, model)
    moved = np.where(pitch >= 0, pitch + shift, -1)
    key = estimate_key(line)
    context = RuleContext(key=None if key is None else (key.tonic, key.minor)).shifted(shift)
    weights = replace(opts.rules, parallel=math.inf) if opts.strict else opts.rules
    cand = _candidates(model)
    penalty = None
    if weights.any:

        def penalty(grid: np.ndarray, hidden: np.ndarray) -> np.ndarray:
            steps = np.flatnonzero(hidden.any(axis=(0, 2)))  # the steps being redrawn
            return cell_energy(grid, cand, weights, context, steps)[hidden[:, steps]]

    k = opts.samples
    out = sample_pitches(
        model,
        np.repeat(moved[None], k, 0),
        np.repeat(given[None], k, 0),
        seed=seed,
        temperature=temperature,
        schedule=schedule,
        penalty=penalty,
    )
    free = ~given
    inner = [VOICES.index(c) for c in opts.smooth_voices.upper()]
    grids = []
    for grid in out:
        if opts.smooth != "none":
            keep = opts.smooth == "fragments"
            grid = smooth_fragments(
                grid, free, inner, opts.rules, context, keep_ornaments=keep, strict=opts.strict
            )
        if opts.strict:
            grid = repair_parallels(
                grid,
                free,
                cand,
                _preference(model, opts.rules, context),
                allowed_classes(model).numpy(),
            )
        grid = np.where(grid >= 0, grid - shift, -1)
        grids.append(np.where(given, pitch, grid))
    return grids


def _candidates(model: torch.nn.Module) -> np.ndarray:
    """The pitch of each class of ``model`` (-1 for the rest class)."""
    cfg = model.config
    return np.concatenate([[-1], np.arange(cfg.low, cfg.high + 1)])


def _preference(
    model: torch.nn.Module, weights: RuleWeights, context: RuleContext
) -> Callable[[np.ndarray, list[tuple[int, int]]], np.ndarray]:
    """Scores for :func:`repair_parallels`: the model's logits of the asked cells, each
    hidden and given the rest of the grid, less their rule energy; out-of-range classes and
    the rest class are ruled out."""
    from musegen.models.coconet import to_classes

    cfg = model.config
    ok = allowed_classes(model).numpy()
    cand = _candidates(model)

    @torch.no_grad()
    def score(grid: np.ndarray, cells: list[tuple[int, int]]) -> np.ndarray:
        t, v = np.array(cells).T
        hidden = torch.zeros((1, *grid.shape), dtype=torch.bool)
        hidden[0, t, v] = True
        classes = to_classes(torch.from_numpy(grid[None]), cfg.low, cfg.high)
        was_training = model.training
        model.eval()
        logits = model(classes, hidden).float()[0, t, v].numpy()
        model.train(was_training)
        energy = cell_energy(grid[None], cand, weights, context, t)[0, np.arange(len(t)), v]
        return np.where(ok[v], logits - energy, -np.inf)

    return score


def parse_bars(text: str) -> tuple[int, int]:
    """'5-8' or '5' (1-based, inclusive) → (first, last); anything else is a MusegenError."""
    parts = text.strip().split("-")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) not in (1, 2) or nums[0] < 1 or nums[-1] < nums[0]:
        raise MusegenError(
            f"--bars takes a bar or a range of bars like 5-8 (1-based), got {text!r}"
        )
    return nums[0], nums[-1]


def infill(
    model: torch.nn.Module,
    score: Score,
    bars: tuple[int, int],
    voices: str = "SATB",
    *,
    seed: int = 0,
    temperature: float = 1.0,
    schedule: AnnealSchedule | None = None,
) -> Score:
    """Rewrite ``voices`` in bars ``bars`` (1-based, inclusive) of a four-voice score, in the
    context of everything else, which is kept exactly."""
    idx = parse_voices(voices)
    check_length(score)
    pitch, onset = score_grid(score)
    n_bars = score.n_bars
    first, last = bars
    if last > n_bars:
        raise MusegenError(f"--bars {first}-{last}: the score has {n_bars} bar(s)")
    starts = [int(t) for t in score.bar_starts()] + [score.end]

    def to_step(tick: int) -> int:  # nearest 16th, as the grid rounds
        return (2 * tick * STEPS_PER_QUARTER + score.tpq) // (2 * score.tpq)

    lo, hi = to_step(starts[first - 1]), min(to_step(starts[last]), len(pitch))
    if hi <= lo:
        raise MusegenError(f"--bars {first}-{last} covers no 16th-note steps of this score")
    given = np.ones_like(pitch, dtype=bool)
    given[lo:hi, idx] = False
    out = _sample_in_range(
        model, pitch, given, seed=seed, temperature=temperature, schedule=schedule
    )
    # a given note held across the end of the rewritten span restarts right after it
    kept = np.where(given, onset, False)
    kept[hi : hi + 1] |= (pitch[hi : hi + 1] >= 0) & ~given[hi - 1 : hi]
    result = grid_score(out, kept)
    for t, src in zip(result.tracks, _voice_tracks(score), strict=True):
        if src is None:  # a labelled score without this voice: it was empty on the grid
            continue
        t.program, t.name = src.program, src.name or t.name
        _copy_velocities(t, src, score.tpq)
    return _with_maps(result, score)


def _copy_velocities(out: Track, source: Track, source_tpq: int) -> None:
    """Give ``out``'s notes the velocity of the source note with the same onset and pitch."""
    src = source.notes
    starts = src["start"] * DECODE_TPQ // source_tpq
    velocity = {
        (int(s), int(p)): int(v)
        for s, p, v in zip(starts, src["pitch"], src["velocity"], strict=True)
    }
    for k in range(len(out.notes)):
        key = (int(out.notes["start"][k]), int(out.notes["pitch"][k]))
        out.notes["velocity"][k] = velocity.get(key, out.notes["velocity"][k])


def _voice_tracks(score: Score) -> list:  # type: ignore[type-arg]
    """The input's S, A, T, B tracks (for names and programs), as :func:`score_grid` reads
    them: by voice label where any track has one (None for a voice without a track), else
    the four pitched tracks high to low."""
    labelled = {t.voice: t for t in score.tracks if t.voice}
    if labelled:
        return [labelled.get(v) for v in VOICES]
    pitched = [t for t in score.tracks if not t.is_drum]
    means = [float(t.notes["pitch"].mean()) if len(t) else -np.inf for t in pitched]
    return [pitched[k] for k in sorted(range(len(pitched)), key=lambda k: -means[k])]


def generate_chorales(
    model: torch.nn.Module,
    bars: int = 8,
    num: int = 1,
    seed: int = 0,
    temperature: float = 1.0,
    schedule: AnnealSchedule | None = None,
    qpm: float = 80.0,
) -> list[Score]:
    """``num`` new four-voice chorale fragments of ``bars`` bars of 4/4, sampled together."""
    if bars < 1 or num < 1:
        raise MusegenError(f"need bars >= 1 and num >= 1, got bars={bars}, num={num}")
    steps = bars * 4 * STEPS_PER_QUARTER
    pitches = np.full((num, steps, len(VOICES)), -1, dtype=np.int64)
    given = np.zeros_like(pitches, dtype=bool)
    out = sample_pitches(
        model, pitches, given, seed=seed, temperature=temperature, schedule=schedule
    )
    return [
        replace(grid_score(p), tempos=[Tempo(0, qpm)], time_signatures=[TimeSignature(0, 4, 4)])
        for p in out
    ]
