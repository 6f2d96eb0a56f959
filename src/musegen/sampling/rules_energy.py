"""Voice-leading rules as an energy on a four-voice pitch grid: penalties that steer Gibbs
sampling, and passes that smooth and repair a sampled grid.

Coconet scores each cell from its context but knows the textbook rules only as well as it
learned them from 229 chorales, and its grid cannot tell a held note from a repeated one, so
a sampled inner voice changes pitch wherever a cell happens to be redrawn. This module puts
the rules of :mod:`musegen.metrics.voice_leading` next to the model: for every cell
``(step, voice)`` of a grid ``[B, T, 4]`` of MIDI pitches (-1 = silent) and every candidate
pitch, :func:`cell_energy` counts the rules that candidate would break *given every other
cell as it stands*, weighted by :class:`RuleWeights`. Subtracted from the model's logits it
makes each Gibbs conditional a product of the model and ``exp(-energy)``; an infinite weight
forbids.

The grid and the checker agree exactly on motion: a voice's note ends where its pitch changes,
so the checker's slices are the grid steps where something changes and its transitions the
grid's neighbouring steps. Parallel and hidden fifths/octaves, overlaps and leaps are counted
on the two transitions a cell takes part in (into it, out of it); crossing, spacing and range
on the cell itself (the checker reports a crossing or a wide spacing once where it starts; the
energy charges every cell of it, which pushes the same way). Besides the rules, *articulation*
weights charge a voice for changing pitch by where the change falls in the beat (on it, on
its second 8th, on an odd 16th): Coconet's grid makes a new note at every change, so
preferring to hold is how sampling writes fewer, longer notes.

Two passes work on a finished grid: :func:`smooth_fragments` merges short notes of chosen
voices into a neighbouring note where that breaks no more rules, and
:func:`repair_parallels` removes every parallel fifth and octave that involves a free cell,
guaranteed (see its docstring for why it terminates).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np

from musegen.errors import MusegenError
from musegen.metrics.voice_leading import MAX_LEAP, MAX_SPACING, VOICE_RANGES, is_augmented
from musegen.score import VOICES

N_VOICES = len(VOICES)
# ordered voice pairs (v, u), grouped by v: v's three partners
_V = np.repeat(np.arange(N_VOICES), N_VOICES - 1)
_U = np.array([u for v in range(N_VOICES) for u in range(N_VOICES) if u != v])
_V_UPPER = _V < _U  # v is the higher voice of the pair
_OUTER = ((_V == 0) & (_U == 3)) | ((_V == 3) & (_U == 0))  # soprano and bass: hidden 5ths/8ves
_ADJACENT = np.abs(_V - _U) == 1  # neighbouring voices: overlaps
# widest allowed gap to the voice above / below each voice
_GAP_UP = np.array([np.inf] + [MAX_SPACING[(v - 1, v)] for v in range(1, N_VOICES)])
_GAP_DOWN = np.array([MAX_SPACING[(v, v + 1)] for v in range(N_VOICES - 1)] + [np.inf])
CHECKER_RANGES: tuple[tuple[int, int], ...] = tuple(VOICE_RANGES[v] for v in VOICES)


@dataclass(frozen=True)
class RuleWeights:
    """Energy (nats taken off a candidate's logit) per rule it would break, and per pitch
    change by metric position. Zero turns a term off; ``math.inf`` forbids.

    Rules (as :mod:`musegen.metrics.voice_leading` counts them): ``parallel`` fifths and
    octaves, ``hidden`` fifths and octaves (soprano and bass), ``overlap``, ``crossing``,
    ``spacing``, ``range`` (the checker's textbook ranges, narrower than the model's),
    ``leap`` (more than an octave), ``augmented`` melodic intervals (needs a key).
    Articulation: ``change_beat``, ``change_8th``, ``change_16th`` charge a change of pitch
    that starts a note on a beat, on the second 8th of a beat, or on an odd 16th.
    """

    parallel: float = 0.0
    hidden: float = 0.0
    overlap: float = 0.0
    crossing: float = 0.0
    spacing: float = 0.0
    range: float = 0.0
    leap: float = 0.0
    augmented: float = 0.0
    change_beat: float = 0.0
    change_8th: float = 0.0
    change_16th: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 0:
                raise MusegenError(f"rule weight {f.name} must be >= 0")

    @property
    def any(self) -> bool:
        """Whether any term is on."""
        return any(getattr(self, f.name) for f in fields(self))

    @property
    def rules_only(self) -> RuleWeights:
        """The same rule weights without the articulation terms."""
        return RuleWeights(
            **{
                f.name: getattr(self, f.name)
                for f in fields(self)
                if not f.name.startswith("change")
            }
        )


@dataclass(frozen=True)
class RuleContext:
    """What the rules need besides the grid: each voice's textbook range (in the grid's pitch
    space, so a transposed melody shifts them), the key for augmented intervals, and the
    grid's 16ths per beat with the metric position of its first step."""

    ranges: tuple[tuple[int, int], ...] = CHECKER_RANGES
    key: tuple[int, bool] | None = None
    steps_per_beat: int = 4
    first_step: int = 0

    def shifted(self, semitones: int) -> RuleContext:
        """The context of the grid transposed by ``semitones`` (the key too)."""
        ranges = tuple((lo + semitones, hi + semitones) for lo, hi in self.ranges)
        key = None if self.key is None else ((self.key[0] + semitones) % 12, self.key[1])
        return RuleContext(ranges, key, self.steps_per_beat, self.first_step)


# --------------------------------------------------------------------------- the energy
def _neighbours(pitch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The grid one step earlier and one step later (-1 beyond the ends)."""
    pad = np.full_like(pitch[:, :1], -1)
    return np.concatenate([pad, pitch[:, :-1]], 1), np.concatenate([pitch[:, 1:], pad], 1)


def _rows(
    pitch: np.ndarray, steps: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The steps asked for (default all) of a grid ``[B, T, 4]``: the steps before them,
    themselves, the steps after them (``[B, S, 4]`` each, int16) and their indices."""
    grid = np.asarray(pitch).astype(np.int16)
    prev, nxt = _neighbours(grid)
    idx = np.arange(grid.shape[1]) if steps is None else np.asarray(steps, dtype=np.int64)
    return prev[:, idx], grid[:, idx], nxt[:, idx], idx


def _transition(
    pa: np.ndarray, pb: np.ndarray, na: np.ndarray, nb: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parallel, hidden and overlap indicators of upper voice ``a`` and lower voice ``b``
    moving from ``pa, pb`` to ``na, nb`` (all broadcast), as the checker defines them; hidden
    and overlap are only meaningful for the soprano-bass and neighbouring pairs."""
    ma = (pa >= 0) & (na >= 0) & (pa != na)
    mb = (pb >= 0) & (nb >= 0) & (pb != nb)
    same = ma & mb & (np.sign(na - pa) == np.sign(nb - pb))
    before, after = np.abs(pa - pb) % 12, np.abs(na - nb) % 12
    perfect = (after == 0) | (after == 7)
    parallel = same & perfect & (before == after)
    hidden = same & perfect & (before != after) & (np.abs(na - pa) > 2)
    crossed = (na >= 0) & (nb > na)
    up = mb & (pa >= 0) & (nb > pa)
    down = ma & (pb >= 0) & (na < pb)
    overlap = (up | down) & ~crossed & (pa != pb)
    return parallel, hidden, overlap


def _pair_terms(
    prev: np.ndarray, cur: np.ndarray, nxt: np.ndarray, cand: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray]:
    """Per cell and candidate ``[B, S, 4, C]`` of the steps ``cur`` (with the steps around
    them): parallels into and out of the cell (two arrays), hidden fifths/octaves and
    overlaps on both transitions."""
    b, t, _ = cur.shape
    c = cand.reshape(1, 1, 1, -1)
    up = _V_UPPER[None, None, :, None]

    def side(pv: np.ndarray, nv: np.ndarray, pu: np.ndarray, nu: np.ndarray) -> tuple:
        pa, pb = np.where(up, pv, pu), np.where(up, pu, pv)
        na, nb = np.where(up, nv, nu), np.where(up, nu, nv)
        par, hid, ovl = _transition(pa, pb, na, nb)
        return par, hid & _OUTER[None, None, :, None], ovl & _ADJACENT[None, None, :, None]

    def pick(x: np.ndarray, voices: np.ndarray) -> np.ndarray:
        return x[:, :, voices][..., None]

    p_in = side(pick(prev, _V), c, pick(prev, _U), pick(cur, _U))
    p_out = side(c, pick(nxt, _V), pick(cur, _U), pick(nxt, _U))

    def per_voice(x: np.ndarray) -> np.ndarray:
        return x.reshape(b, t, N_VOICES, N_VOICES - 1, -1).sum(3)

    par = (per_voice(p_in[0]), per_voice(p_out[0]))
    return par, per_voice(p_in[1]) + per_voice(p_out[1]), per_voice(p_in[2]) + per_voice(p_out[2])


def parallel_counts(
    pitch: np.ndarray, candidates: np.ndarray, steps: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Parallel fifths and octaves each candidate would make on the transition into its cell
    and on the one out of it, given every other cell: two int arrays ``[B, S, 4, C]`` for
    the ``steps`` asked for (default all) of ``pitch [B, T, 4]``."""
    prev, cur, nxt, _ = _rows(pitch, steps)
    (p_in, p_out), _, _ = _pair_terms(prev, cur, nxt, np.asarray(candidates).astype(np.int16))
    return p_in, p_out


def _aug_lookup(key: tuple[int, bool]) -> np.ndarray:
    """[128, 128]: whether moving from pitch ``a`` to ``b`` is an augmented interval in
    ``key`` that the checker would report (a leap of an octave or less)."""
    a = np.arange(128)[:, None]
    b = np.arange(128)[None, :]
    table = np.zeros((128, 128), dtype=bool)
    for lo_pc in range(12):
        for span in range(1, MAX_LEAP + 1):
            if is_augmented(lo_pc + 12, lo_pc + 12 + span, *key):
                lo = np.minimum(a, b)
                table |= (lo % 12 == lo_pc) & (np.abs(b - a) == span)
    return table


_AUG_CACHE: dict[tuple[int, bool], np.ndarray] = {}


def cell_energy(
    pitch: np.ndarray,
    candidates: np.ndarray,
    weights: RuleWeights,
    context: RuleContext | None = None,
    steps: np.ndarray | None = None,
) -> np.ndarray:
    """Energy ``[B, S, 4, C]`` of putting each candidate pitch ``candidates [C]`` (-1 =
    silent) into each cell of the ``steps`` (default all ``T``) of ``pitch [B, T, 4]``,
    every other cell as it stands.

    The sum of the weighted rule counts described in the module docstring: a change of one
    cell changes the checker's count of motion errors by the change of this energy (with unit
    weights), the cell-wise rules (crossing, spacing) approximately. A step's energy depends
    on the steps beside it only, so asking for the few steps a Gibbs step redraws is cheap.
    """
    ctx = context or RuleContext()
    prev, cur, nxt, idx = _rows(pitch, steps)
    cand = np.asarray(candidates).astype(np.int16)
    b, t, _ = cur.shape
    energy = np.zeros((b, t, N_VOICES, len(cand)), dtype=np.float32)
    c = cand.reshape(1, 1, 1, -1)
    sounding = c >= 0
    w = weights
    if w.parallel or w.hidden or w.overlap:
        (p_in, p_out), hidden, overlap = _pair_terms(prev, cur, nxt, cand)
        for weight, count in ((w.parallel, p_in + p_out), (w.hidden, hidden), (w.overlap, overlap)):
            if weight:
                energy += _times(weight, count)
    pad = np.full_like(cur[..., :1], -1)
    above = np.concatenate([pad, cur[..., :-1]], -1)[..., None]  # the voice above, per voice
    below = np.concatenate([cur[..., 1:], pad], -1)[..., None]
    if w.crossing:
        crossed = sounding * (((above >= 0) & (c > above)) * 1 + ((below >= 0) & (c < below)))
        energy += _times(w.crossing, crossed)
    if w.spacing:
        wide = ((above >= 0) & sounding & (above - c > _GAP_UP[None, None, :, None])) * 1
        wide += (below >= 0) & sounding & (c - below > _GAP_DOWN[None, None, :, None])
        energy += _times(w.spacing, wide)
    if w.range:
        lo = np.array([r[0] for r in ctx.ranges])[None, None, :, None]
        hi = np.array([r[1] for r in ctx.ranges])[None, None, :, None]
        energy += _times(w.range, sounding & ((c < lo) | (c > hi)))
    prev, nxt = prev[..., None], nxt[..., None]
    moved_in = sounding & (prev >= 0) & (c != prev)
    moved_out = sounding & (nxt >= 0) & (c != nxt)
    if w.leap:
        big = (moved_in & (np.abs(c - prev) > MAX_LEAP)) * 1
        big += moved_out & (np.abs(nxt - c) > MAX_LEAP)
        energy += _times(w.leap, big)
    if w.augmented and ctx.key is not None:
        if ctx.key not in _AUG_CACHE:
            _AUG_CACHE[ctx.key] = _aug_lookup(ctx.key)
        aug = _AUG_CACHE[ctx.key]
        cc = np.clip(c, 0, 127)
        bad = (moved_in & aug[np.clip(prev, 0, 127), cc]) * 1
        bad += moved_out & aug[cc, np.clip(nxt, 0, 127)]
        energy += _times(w.augmented, bad)
    if w.change_beat or w.change_8th or w.change_16th:
        spb = ctx.steps_per_beat
        costs = np.array(
            [
                w.change_beat if k == 0 else w.change_8th if 2 * k == spb else w.change_16th
                for k in range(spb)
            ],
            dtype=np.float32,
        )
        into = (c != prev) & (prev >= 0)  # the change that starts this cell's note
        out = (c != nxt) & (nxt >= 0)  # the change that starts the next one
        cost_in = costs[(idx + ctx.first_step) % spb][None, :, None, None]
        cost_out = costs[(idx + 1 + ctx.first_step) % spb][None, :, None, None]
        energy += into * cost_in + out * cost_out
    return energy


def _times(weight: float, count: np.ndarray) -> np.ndarray:
    """``weight × count`` where an infinite weight times zero is zero."""
    count = np.asarray(count)
    if np.isinf(weight):
        return np.where(count > 0, np.float32(np.inf), np.float32(0))
    return np.float32(weight) * count


def window_energy(
    pitch: np.ndarray,
    step: int,
    candidates: np.ndarray,
    weights: RuleWeights,
    context: RuleContext | None = None,
) -> np.ndarray:
    """:func:`cell_energy` of one step of a grid ``[T, 4]`` → ``[4, C]``."""
    return cell_energy(np.asarray(pitch)[None], candidates, weights, context, np.array([step]))[
        0, 0
    ]


# --------------------------------------------------------------------------- passes on a grid
def parallel_errors(pitch: np.ndarray) -> list[tuple[int, int, int]]:
    """Parallel fifths and octaves of a grid ``[T, 4]``: ``(step arrived at, upper voice,
    lower voice)`` in time order, exactly those the checker reports."""
    p = np.asarray(pitch, np.int64)
    out = []
    for i in range(N_VOICES):
        for j in range(i + 1, N_VOICES):
            par, _, _ = _transition(p[:-1, i], p[:-1, j], p[1:, i], p[1:, j])
            out += [(int(k) + 1, i, j) for k in np.flatnonzero(par)]
    return sorted(out)


def smooth_fragments(
    pitch: np.ndarray,
    free: np.ndarray,
    voices: Sequence[int],
    weights: RuleWeights,
    context: RuleContext | None = None,
    max_steps: int = 1,
    keep_ornaments: bool = False,
    strict: bool = False,
) -> np.ndarray:
    """Merge short notes of ``voices`` into a neighbouring note where that breaks no more
    rules: a note of at most ``max_steps`` free cells takes the pitch of the note before or
    after it (the one whose rule energy is lower, ``weights`` without articulation terms; the
    one before on a tie) if that energy is no higher than the note's own.

    With ``keep_ornaments`` a short note stays if it is how Bach uses 16ths: a passing or
    neighbour note (at most a whole tone from the notes on both sides) in the second half of
    a beat. With ``strict`` a merge never makes a parallel fifth or octave. Every merge
    removes a note, so the passes end. Returns a new grid ``[T, 4]``; given cells never
    change.
    """
    ctx = context or RuleContext()
    p = np.array(pitch, dtype=np.int64)
    rules = weights.rules_only
    changed = True
    while changed:
        changed = False
        for v in voices:
            for start, end in _short_runs(p[:, v], free[:, v], max_steps):
                if not _is_note(p[:, v], start, end):
                    continue  # a merge beside it has changed it
                if keep_ornaments and _is_ornament(p[:, v], start, end, ctx):
                    continue
                before = int(p[start - 1, v]) if start else -1
                after = int(p[end, v]) if end < len(p) else -1
                own, _ = _run_energy(p, v, start, end, int(p[start, v]), rules, ctx)
                best, best_e = None, own
                for value in dict.fromkeys((before, after)):  # on a tie, hold the note before
                    if value < 0:
                        continue
                    e, par = _run_energy(p, v, start, end, value, rules, ctx)
                    if (e < best_e or (best is None and e <= best_e)) and not (strict and par):
                        best, best_e = value, e
                if best is not None:
                    p[start:end, v] = best
                    changed = True
    return p


def _is_ornament(col: np.ndarray, start: int, end: int, ctx: RuleContext) -> bool:
    """Whether the note ``col[start:end]`` is a passing or neighbour note (a whole tone or
    less from the sounding notes on both sides) starting in the second half of a beat."""
    if start == 0 or end == len(col) or col[start - 1] < 0 or col[end] < 0:
        return False
    pos = (start + ctx.first_step) % ctx.steps_per_beat
    note = col[start]
    return bool(
        2 * pos >= ctx.steps_per_beat
        and abs(note - col[start - 1]) <= 2
        and abs(col[end] - note) <= 2
    )


def _short_runs(col: np.ndarray, free: np.ndarray, max_steps: int) -> list[tuple[int, int]]:
    """``(start, end)`` of the notes (runs of one pitch) of at most ``max_steps`` cells, all
    free and sounding."""
    edges = np.flatnonzero(np.diff(col)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(col)]])
    return [
        (int(s), int(e))
        for s, e in zip(starts, ends, strict=True)
        if e - s <= max_steps and col[s] >= 0 and free[s:e].all()
    ]


def _is_note(col: np.ndarray, start: int, end: int) -> bool:
    """Whether ``col[start:end]`` is still one whole run of one pitch."""
    run = col[start:end]
    return bool(
        (run == run[0]).all()
        and (start == 0 or col[start - 1] != run[0])
        and (end == len(col) or col[end] != run[0])
    )


def _run_energy(
    p: np.ndarray,
    v: int,
    start: int,
    end: int,
    value: int,
    rules: RuleWeights,
    context: RuleContext | None,
) -> tuple[float, int]:
    """Rule energy and parallel count of voice ``v``'s cells ``start..end`` all set to
    ``value``: inside the run the voice does not move, so the sum of its cells' energies
    counts the transitions into and out of the run once each, plus the cell-wise rules."""
    q = p.copy()
    q[start:end, v] = value
    cand = np.array([value])
    steps = np.arange(start, end)
    e = cell_energy(q[None], cand, rules, context, steps)[0, :, v, 0]
    p_in, p_out = parallel_counts(q[None], cand, np.array([start, end - 1]))
    return float(e.sum()), int(p_in[0, 0, v, 0] + p_out[0, 1, v, 0])


def repair_parallels(
    pitch: np.ndarray,
    free: np.ndarray,
    candidates: np.ndarray,
    preference: Callable[[np.ndarray, list[tuple[int, int]]], np.ndarray] | None = None,
    allowed: np.ndarray | None = None,
    max_rounds: int = 8,
) -> np.ndarray:
    """Remove every parallel fifth and octave that arrives on a free cell of ``pitch [T, 4]``.

    A fix takes the earliest such error, arriving at step ``t``, and gives one of its free
    cells at ``t`` the candidate that makes no parallel into step ``t`` (holding the voice's
    previous pitch always qualifies), then the fewest out of it, then the highest
    ``preference`` (``[K, C]`` scores of the cells asked for, e.g. the model's logits given
    the rest of the grid; one call per round), among the candidates ``allowed [4, C]`` for
    the voice (default: all). A fix leaves every transition before ``t`` as
    it was and lowers the number of errors at ``t``, so the errors, ordered by time, fall
    lexicographically: the loop ends. After ``max_rounds`` rounds the errors left are fixed
    by holding the previous pitch, left to right, in one sweep. A parallel between two given
    cells is the input's and stays (in a harmonization the given voices are whole columns,
    so every other error has a free cell where it arrives). Returns a new grid.
    """
    p = np.array(pitch, dtype=np.int64)
    free = np.asarray(free, dtype=bool)
    cand = np.asarray(candidates, np.int64)
    ok = np.ones((N_VOICES, len(cand)), bool) if allowed is None else np.asarray(allowed, bool)
    for round_ in range(max_rounds + 1):
        todo = _fixable(p, free)
        if not todo:
            break
        hold = round_ == max_rounds
        cells = sorted({(t, v) for t, i, j in todo for v in (i, j) if free[t, v]})
        scores = None if hold or preference is None else preference(p, cells)
        row = {cell: k for k, cell in enumerate(cells)}
        for t, i, j in todo if not hold else iter(lambda: _first(p, free), None):
            if (t, i, j) not in _errors_at(p, t):
                continue  # an earlier fix removed it
            best: tuple[tuple[int, float, int], int] | None = None
            for v in (i, j):
                if not free[t, v]:
                    continue
                if hold:
                    option = (0, 0.0, int(p[t - 1, v]))
                else:
                    score = None if scores is None else scores[row[(t, v)]]
                    option = _best_fix(p, t, v, cand, ok[v], score)
                if best is None or option[:2] < best[0][:2]:
                    best = (option, v)
            assert best is not None  # a fixable error has a free cell at t
            p[t, best[1]] = best[0][2]
    return p


def _first(p: np.ndarray, free: np.ndarray) -> tuple[int, int, int] | None:
    todo = _fixable(p, free)
    return todo[0] if todo else None


def _errors_at(p: np.ndarray, t: int) -> set[tuple[int, int, int]]:
    """The parallels arriving at step ``t``."""
    return {(t, i, j) for _, i, j in parallel_errors(p[t - 1 : t + 1])}


def _fixable(p: np.ndarray, free: np.ndarray) -> list[tuple[int, int, int]]:
    return [(t, i, j) for t, i, j in parallel_errors(p) if free[t, i] or free[t, j]]


def _best_fix(
    p: np.ndarray,
    t: int,
    v: int,
    cand: np.ndarray,
    allowed: np.ndarray,
    score: np.ndarray | None,
) -> tuple[int, float, int]:
    """``(parallels out, -score, pitch)`` of the best ``allowed`` candidate for cell
    ``(t, v)`` among those that make no parallel into step ``t``; holding the previous pitch
    always qualifies (it is added, least preferred, if it is not a candidate)."""
    s = np.zeros(len(cand)) if score is None else np.asarray(score, np.float64)
    hold = int(p[t - 1, v])
    if hold not in cand:
        cand, allowed, s = np.append(cand, hold), np.append(allowed, False), np.append(s, -np.inf)
    p_in, p_out = parallel_counts(p[None], cand, np.array([t]))
    ok = ((p_in[0, 0, v] == 0) & allowed) | (cand == hold)
    return min((int(p_out[0, 0, v, k]), -float(s[k]), int(cand[k])) for k in np.flatnonzero(ok))
