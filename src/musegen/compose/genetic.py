"""A genetic algorithm that evolves a melody over a chord progression.

**Genome.** One gene per 8th note: an index into the key's pitches in the melody range
(harmonic minor in minor keys), or HOLD (-1) to extend the previous note. Every operator
works on scale indices, so every melody stays in the key.

**Operators.** Tournament selection; one-point crossover at a bar line; mutations: move one
note by one or two scale steps, split or merge notes (rhythm), move a bar by a scale step,
copy one bar onto another (motifs), swap two neighbouring genes. The best ``elite``
melodies pass unchanged into the next generation, so the best fitness never decreases.

**Fitness** (higher is better; each term is a mean or a fraction, weights in
:data:`WEIGHTS`) mixes music-theory rules with statistics of a reference corpus:

* chord tones on the beats; off-beat non-chord tones only as passing/neighbour notes
  (reached and left by step);
* stepwise motion, few large leaps (over a 5th), repeated notes or x-y-x-y swings, leaps
  that turn back, a single highest note, at least six different pitches;
* a cadence: the last note is the tonic on the last bar's downbeat, reached by step;
* a range within a tenth;
* corpus statistics: how well the histograms of the melody's intervals and note lengths
  overlap the reference corpus's (1 - half the L1 distance; matching the whole distribution,
  not its mode, keeps melodies varied), and how close its notes per bar are to the corpus's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from musegen.compose.chords import chord_pcs, roman_symbol
from musegen.compose.scores import build_score, chord_track_parts
from musegen.compose.search import make_rng
from musegen.errors import MusegenError
from musegen.score import Score
from musegen.theory import C_MAJOR, Key, leading_tone, scale_pcs

HOLD = -1
STEPS_PER_BAR = 8  # 8th notes in a 4/4 bar
STEPS_PER_BEAT = 2
DEFAULT_PROGRESSION = {
    False: ("I", "vi", "IV", "V", "I", "IV", "V7", "I"),
    True: ("i", "VI", "iv", "V", "i", "iv", "V7", "i"),
}
WEIGHTS = {
    "chord_tones": 3.0,
    "non_chord_tones": 1.0,
    "steps": 1.0,
    "big_leaps": -2.0,
    "repeats": -1.0,
    "oscillation": -2.0,
    "leap_recovery": 1.0,
    "climax": 0.5,
    "variety": 1.0,
    "cadence": 2.0,
    "range": -1.0,
    "corpus_intervals": 2.0,
    "corpus_lengths": 1.5,
    "corpus_density": -0.5,
}
DEFAULT_REFERENCE = "source:nottingham"


# --------------------------------------------------------------------------- corpus statistics
@dataclass(frozen=True)
class CorpusStats:
    """Histograms of a reference corpus: melodic intervals (-12..12 semitones), note lengths
    (1..16 8th notes), as log-probabilities, and the mean number of notes per 4/4 bar."""

    interval_logp: np.ndarray
    length_logp: np.ndarray
    notes_per_bar: float
    pieces: int
    source: str

    @classmethod
    def from_scores(cls, scores: Sequence[Score], source: str = "scores") -> CorpusStats:
        from musegen.compose.markov import REST, melody_events

        intervals = np.ones(25)  # add-one smoothing
        lengths = np.ones(16)
        notes, steps, pieces = 0, 0, 0
        for s in scores:
            ev = melody_events(s)
            if ev is None:
                continue
            pieces += 1
            p = ev.pitch[ev.pitch != REST]
            np.add.at(intervals, np.clip(np.diff(p), -12, 12) + 12, 1)
            l8 = np.clip(np.rint(ev.length[ev.pitch != REST] / 2).astype(int), 1, 16)
            np.add.at(lengths, l8 - 1, 1)
            notes += len(p)
            steps += int(ev.length.sum())
        if not pieces:
            raise MusegenError(f"{source}: no melodies for the corpus statistics")
        return cls(
            np.log(intervals / intervals.sum()),
            np.log(lengths / lengths.sum()),
            notes / max(steps / 16, 1),
            pieces,
            source,
        )


@lru_cache(maxsize=4)
def corpus_stats(spec: str = DEFAULT_REFERENCE, max_pieces: int = 300) -> CorpusStats:
    """Statistics of a corpus spec (cached per process)."""
    from musegen.data.refs import iter_scores

    return CorpusStats.from_scores(list(iter_scores(spec, "train", max_pieces=max_pieces)), spec)


# --------------------------------------------------------------------------- the problem
@dataclass
class Problem:
    """A key, a chord per bar and a pitch range: what a genome means."""

    key: Key
    chords: np.ndarray  # chord symbol per bar
    low: int = 60
    high: int = 81
    stats: CorpusStats | None = None
    weights: dict[str, float] = field(default_factory=lambda: dict(WEIGHTS))

    def __post_init__(self) -> None:
        pcs = set(int(x) for x in scale_pcs(self.key))
        if self.key[1]:  # harmonic minor: the raised 7th instead of the lowered one
            pcs = (pcs - {(self.key[0] - 2) % 12}) | {leading_tone(self.key)}
        self.pitches = np.array([p for p in range(self.low, self.high + 1) if p % 12 in pcs])
        if len(self.pitches) < 5:
            raise MusegenError(f"melody range {self.low}..{self.high} is too narrow")
        self.bars = len(self.chords)
        self.length = self.bars * STEPS_PER_BAR
        tone = np.zeros((self.bars, len(self.pitches)), bool)
        for b, sym in enumerate(self.chords):
            tone[b] = np.isin(self.pitches % 12, chord_pcs(int(sym)))
        self.chord_tone = tone
        self.tonic_index = np.flatnonzero(self.pitches % 12 == self.key[0])

    # ------------------------------------------------------------------ fitness
    def terms(self, pop: np.ndarray) -> dict[str, np.ndarray]:
        """Each fitness term per individual of ``pop`` ``[P, L]`` (vectorised)."""
        n_pop, length = pop.shape
        onset = pop >= 0
        pos = np.arange(length)
        last_on = np.maximum.accumulate(np.where(onset, pos, 0), axis=1)
        sound = np.take_along_axis(pop, last_on, axis=1)  # index sounding at each step
        bar = pos // STEPS_PER_BAR
        in_chord = self.chord_tone[bar[None, :], sound]
        strong = pos % STEPS_PER_BEAT == 0
        pitch = self.pitches[sound]

        prev = np.concatenate([sound[:, :1], sound[:, :-1]], axis=1)
        step_iv = sound - prev  # in scale steps, at onsets
        semi_iv = pitch - self.pitches[prev]
        move = onset.copy()
        move[:, 0] = False
        n_moves = np.maximum(move.sum(1), 1)
        # the interval out of each note (into the next onset), for "left by step"
        nxt_on = _next_onset(onset)
        has_next = nxt_on < length
        nxt_iv = np.where(
            has_next, np.take_along_axis(step_iv, np.minimum(nxt_on, length - 1), axis=1), 99
        )
        weak_on = onset & ~strong[None, :]
        passing = (np.abs(step_iv) == 1) & (np.abs(nxt_iv) == 1) & move
        weak_total = np.maximum(weak_on.sum(1), 1)
        weak_good = ((in_chord | passing) & weak_on).sum(1)

        # leap recovery: interval at each onset vs the previous onset's interval
        last_iv = _ffill_at(step_iv, move)
        prev_iv = np.concatenate([np.zeros((n_pop, 1), int), last_iv[:, :-1]], axis=1)
        leap_after = move & (np.abs(prev_iv) >= 3)
        recovered = leap_after & (prev_iv * step_iv < 0) & (np.abs(step_iv) <= 2)
        leaps = np.maximum(leap_after.sum(1), 1)

        final_on = last_on[:, -1]
        final_idx = sound[:, -1]
        cadence = (
            np.isin(final_idx, self.tonic_index).astype(float)
            + (final_on == length - STEPS_PER_BAR)
            + (np.abs(step_iv[np.arange(n_pop), final_on]) == 1)
        ) / 3

        span = pitch.max(1) - pitch.min(1)
        # x y x y: at each onset, the pitches of the notes 1, 2 and 3 before it
        back = [pitch]
        for _ in range(3):
            shifted = _ffill_at(back[-1], onset)[:, :-1]
            back.append(np.concatenate([np.full((n_pop, 1), -1), shifted], axis=1))
        swing = move & (back[0] == back[2]) & (back[1] == back[3]) & (back[0] != back[1])
        top = pitch.max(1, keepdims=True)
        tops = (onset & (pitch == top)).sum(1)
        distinct = (np.diff(np.sort(pitch, axis=1), axis=1) != 0).sum(1) + 1
        out = {
            "chord_tones": in_chord[:, strong].mean(1),
            "non_chord_tones": weak_good / weak_total,
            "steps": ((np.abs(step_iv) == 1) & move).sum(1) / n_moves,
            "big_leaps": ((np.abs(semi_iv) > 7) & move).sum(1) / n_moves,
            "repeats": ((step_iv == 0) & move).sum(1) / n_moves,
            "oscillation": swing.sum(1) / n_moves,
            "leap_recovery": np.where(leap_after.any(1), recovered.sum(1) / leaps, 1.0),
            "climax": (tops == 1).astype(float),
            "variety": np.minimum(distinct / 6, 1.0),
            "cadence": cadence,
            "range": np.maximum(span - 16, 0) / 12,
        }
        if self.stats is not None:
            st = self.stats
            iv = np.where(move, np.clip(semi_iv, -12, 12) + 12, 25)
            out["corpus_intervals"] = _overlap(iv, np.exp(st.interval_logp))
            dur = np.where(onset, np.clip(nxt_on - pos[None, :], 1, 16) - 1, 16)
            out["corpus_lengths"] = _overlap(dur, np.exp(st.length_logp))
            per_bar = onset.sum(1) / self.bars
            out["corpus_density"] = np.abs(per_bar - st.notes_per_bar) / st.notes_per_bar
        return out

    def fitness(self, pop: np.ndarray) -> np.ndarray:
        terms = self.terms(pop)
        return sum(self.weights.get(k, 0.0) * v for k, v in terms.items())  # type: ignore[return-value]

    # ------------------------------------------------------------------ operators
    def random_population(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """Random walks in scale steps with random rhythm (30% holds)."""
        n = len(self.pitches)
        walk = np.cumsum(rng.integers(-2, 3, (size, self.length)), axis=1)
        start = rng.integers(n // 4, 3 * n // 4, (size, 1))
        pop = np.clip(start + walk, 0, n - 1)
        holds = rng.random((size, self.length)) < 0.3
        holds[:, 0] = False
        pop[holds] = HOLD
        return pop

    def mutate(self, g: np.ndarray, rng: np.random.Generator) -> None:
        """One random key-respecting mutation of genome ``g`` in place."""
        n, L = len(self.pitches), len(g)
        op = rng.integers(5)
        if op == 0:  # move a note by one or two scale steps
            j = rng.integers(L)
            base = g[j] if g[j] >= 0 else _sounding(g, j)
            g[j] = np.clip(base + rng.choice((-2, -1, 1, 2)), 0, n - 1)
        elif op == 1:  # split / merge notes
            j = rng.integers(1, L)
            g[j] = HOLD if g[j] >= 0 else np.clip(_sounding(g, j) + rng.choice((-1, 1)), 0, n - 1)
        elif op == 2:  # move a bar by a scale step
            b = rng.integers(self.bars) * STEPS_PER_BAR
            seg = g[b : b + STEPS_PER_BAR]
            on = seg >= 0
            seg[on] = np.clip(seg[on] + rng.choice((-1, 1)), 0, n - 1)
        elif op == 3 and self.bars > 1:  # copy a bar onto another
            a, b = rng.choice(self.bars, 2, replace=False) * STEPS_PER_BAR
            g[b : b + STEPS_PER_BAR] = g[a : a + STEPS_PER_BAR]
        else:  # swap neighbours
            j = rng.integers(L - 1)
            g[j], g[j + 1] = g[j + 1], g[j]
        if g[0] < 0:
            g[0] = _sounding(g, 0) if (g >= 0).any() else n // 2

    def genome_notes(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(onset step, length in steps, MIDI pitch) of each note of a genome."""
        on = np.flatnonzero(g >= 0)
        ends = np.append(on[1:], len(g))
        return on, ends - on, self.pitches[g[on]]


def _overlap(bins: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per row, the overlap (1 - half the L1 distance) of the histogram of ``bins`` (values
    ``>= len(ref)`` ignored) with the probability vector ``ref``: 1 = the same shape."""
    n, k = len(bins), len(ref)
    counts = np.zeros((n, k + 1))
    np.add.at(counts, (np.repeat(np.arange(n), bins.shape[1]), np.minimum(bins, k).ravel()), 1)
    h = counts[:, :k] / np.maximum(counts[:, :k].sum(1, keepdims=True), 1)
    return 1 - 0.5 * np.abs(h - ref[None, :]).sum(1)


def _sounding(g: np.ndarray, j: int) -> int:
    """Index sounding at step ``j`` (the last onset at or before it)."""
    on = np.flatnonzero(g[: j + 1] >= 0)
    if len(on):
        return int(g[on[-1]])
    after = np.flatnonzero(g >= 0)
    return int(g[after[0]]) if len(after) else 0


def _next_onset(onset: np.ndarray) -> np.ndarray:
    """Per step, the position of the next onset after it (L if none)."""
    n, L = onset.shape
    pos = np.where(onset, np.arange(L), L)
    nxt = np.minimum.accumulate(pos[:, ::-1], axis=1)[:, ::-1]
    return np.concatenate([nxt[:, 1:], np.full((n, 1), L)], axis=1)


def _ffill_at(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``values`` where ``mask``, else the last masked value before (0 at the start)."""
    L = values.shape[1]
    idx = np.maximum.accumulate(np.where(mask, np.arange(L), -1), axis=1)
    out = np.take_along_axis(values, np.maximum(idx, 0), axis=1)
    return np.where(idx >= 0, out, 0)


# --------------------------------------------------------------------------- the algorithm
@dataclass
class Evolution:
    """The outcome: the best melody, its fitness terms, and the per-generation history."""

    problem: Problem
    best: np.ndarray
    best_fitness: float
    history: list[float]  # best fitness after each generation (index 0: the first population)
    mean_history: list[float]
    seed: int
    terms: dict[str, float]

    def score(self, qpm: float = 110.0, tpq: int = 480) -> Score:
        step = tpq * 4 // STEPS_PER_BAR
        on, length, pitch = self.problem.genome_notes(self.best)
        chords = chord_track_parts(self.problem.chords, 4 * tpq)
        return build_score(
            [("melody", on * step, length * step, pitch), ("chords", *chords)],
            tpq=tpq,
            qpm=qpm,
            key=self.problem.key,
        )


def evolve(
    problem: Problem,
    *,
    population: int = 120,
    generations: int = 150,
    elite: int = 4,
    tournament: int = 3,
    crossover: float = 0.8,
    mutations: float = 1.5,
    seed: int | None = None,
    progress: bool = False,
    on_generation: Callable[[int, float], object] | None = None,
) -> Evolution:
    """Run the GA. ``mutations``: mean mutations per child (Poisson)."""
    if population < 2 or not 1 <= elite < population or generations < 0:
        raise MusegenError("need population >= 2, 1 <= elite < population, generations >= 0")
    rng, seed = make_rng(seed)
    pop = problem.random_population(population, rng)
    fit = problem.fitness(pop)
    history, means = [float(fit.max())], [float(fit.mean())]
    gens = range(generations)
    bar = None
    if progress:
        from musegen.utils import progress as show

        bar = show(gens, desc="evolving", unit="gen", leave=False, mininterval=0.25)
        gens = bar  # type: ignore[assignment]
    for g in gens:
        order = np.argsort(-fit, kind="stable")
        children = np.empty((population - elite, problem.length), pop.dtype)
        cand = rng.integers(0, population, (2 * len(children), tournament))
        parents = cand[np.arange(len(cand)), np.argmax(fit[cand], axis=1)]
        for c in range(len(children)):
            a, b = pop[parents[2 * c]], pop[parents[2 * c + 1]]
            child = a.copy()
            if problem.bars > 1 and rng.random() < crossover:
                cut = rng.integers(1, problem.bars) * STEPS_PER_BAR
                child[cut:] = b[cut:]
            for _ in range(rng.poisson(mutations)):
                problem.mutate(child, rng)
            children[c] = child
        pop = np.concatenate([pop[order[:elite]], children])
        fit = problem.fitness(pop)
        history.append(float(fit.max()))
        means.append(float(fit.mean()))
        if bar is not None:
            bar.set_postfix(best=f"{history[-1]:.3f}")
        if on_generation is not None:
            on_generation(g + 1, history[-1])
    best = int(np.argmax(fit))
    terms = {k: float(v[0]) for k, v in problem.terms(pop[best : best + 1]).items()}
    return Evolution(problem, pop[best].copy(), float(fit[best]), history, means, seed, terms)


def make_problem(
    key: Key = C_MAJOR,
    progression: Sequence[str] | None = None,
    bars: int | None = None,
    low: int = 60,
    high: int = 81,
    reference: str | None = DEFAULT_REFERENCE,
) -> Problem:
    """A problem from Roman numerals (default: a cadential 8-bar progression), cycled or cut
    to ``bars``; ``reference`` (a corpus spec, or None) gives the corpus statistics."""
    romans = list(progression or DEFAULT_PROGRESSION[key[1]])
    if not romans:
        raise MusegenError("the chord progression is empty")
    n = bars or len(romans)
    if n < 1 or n > 64:
        raise MusegenError(f"bars must be 1..64, got {n}")
    chords = np.array([roman_symbol(romans[i % len(romans)], key) for i in range(n)])
    stats = corpus_stats(reference) if reference else None
    return Problem(key, chords, low, high, stats)


__all__ = [
    "WEIGHTS",
    "CorpusStats",
    "Evolution",
    "Problem",
    "corpus_stats",
    "evolve",
    "make_problem",
]
