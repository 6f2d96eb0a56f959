"""Genetic algorithm: elitism keeps the best fitness monotone, it improves, it stays in key."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from musegen.compose.genetic import CorpusStats, Problem, evolve, make_problem
from musegen.errors import MusegenError
from musegen.score import Note, Score, Track

HARMONIC_MINOR = {0, 2, 3, 5, 7, 8, 11}
MAJOR = {0, 2, 4, 5, 7, 9, 11}


@pytest.fixture(scope="module")
def stats() -> CorpusStats:
    """Corpus statistics of three tiny stepwise tunes (fast, fixed)."""
    tunes = [[60, 62, 64, 65, 67, 65, 64, 62, 60], [67, 65, 64, 62, 64, 65, 67, 69, 67]]
    scores = [
        Score(tracks=[Track.from_notes([Note(p, i * 240, 240) for i, p in enumerate(t)])])
        for t in tunes
    ]
    return CorpusStats.from_scores(scores)


@pytest.mark.parametrize("key", [(0, False), (9, True)])
def test_best_fitness_never_decreases_and_improves(key, stats):
    problem = make_problem(key, reference=None)
    problem.stats = stats
    seen = []
    ev = evolve(
        problem, population=40, generations=40, seed=3, on_generation=lambda g, f: seen.append(f)
    )
    h = ev.history
    assert len(h) == 41 and seen == h[1:]
    assert all(b >= a for a, b in itertools.pairwise(h))
    assert h[-1] > h[0]
    assert ev.best_fitness == pytest.approx(h[-1])
    # every note is in the key (harmonic minor in minor keys)
    _, _, pitch = problem.genome_notes(ev.best)
    scale = {(key[0] + x) % 12 for x in (HARMONIC_MINOR if key[1] else MAJOR)}
    assert set((pitch % 12).tolist()) <= scale


def test_seed_reproduces(stats):
    problem = make_problem((7, False), ["I", "IV", "V7", "I"], reference=None)
    a = evolve(problem, population=20, generations=10, seed=9)
    b = evolve(problem, population=20, generations=10, seed=9)
    assert np.array_equal(a.best, b.best) and a.history == b.history


def test_mutations_respect_the_key():
    problem = make_problem((2, True), bars=4, reference=None)
    rng = np.random.default_rng(0)
    pop = problem.random_population(30, rng)
    for g in pop:
        for _ in range(20):
            problem.mutate(g, rng)
        assert g[0] >= 0 and g.max() < len(problem.pitches) and g.min() >= -1


def test_score_has_melody_and_chords():
    problem = make_problem((0, False), ["I", "vi", "ii", "V7"], reference=None)
    ev = evolve(problem, population=10, generations=2, seed=1)
    score = ev.score()
    assert [t.name for t in score.tracks] == ["melody", "chords"]
    assert score.tracks[0].end == 4 * 4 * score.tpq


def test_bad_input_is_a_clear_error():
    with pytest.raises(MusegenError, match="Roman numerals"):
        make_problem((0, False), ["I", "Q"], reference=None)
    with pytest.raises(MusegenError, match="too narrow"):
        Problem((0, False), np.array([0]), low=60, high=62)
    with pytest.raises(MusegenError, match="population"):
        evolve(make_problem(reference=None), population=1)
