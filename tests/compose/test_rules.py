"""Species counterpoint: every claimed rule holds (independent checker), limits are kept."""

from __future__ import annotations

import pytest

from composehelpers import cantus_problems, counterpoint_problems
from musegen.compose.rules import (
    cantus_from_score,
    check_counterpoint,
    compose_counterpoint,
)
from musegen.compose.search import SearchGaveUp
from musegen.errors import MusegenError
from musegen.score import Note, Score, Track

CASES = [
    (species, above, key, seed)
    for species in (1, 2)
    for above in (True, False)
    for key, seed in (((0, False), 1), ((9, True), 2), ((7, False), 3), ((2, True), 4))
]


@pytest.mark.parametrize(("species", "above", "key", "seed"), CASES)
def test_counterpoint_obeys_every_rule(species, above, key, seed):
    cp = compose_counterpoint(key=key, species=species, above=above, length=9, seed=seed)
    assert counterpoint_problems(cp.cantus, cp.line, *key, species, above) == []
    assert cantus_problems(cp.cantus, *key) == []
    assert check_counterpoint(cp.cantus, cp.line, key, species, above) == []
    score = cp.score()
    assert len(score.tracks) == 2 and score.n_notes == len(cp.cantus) + len(cp.line)


def test_seed_reproduces_and_varies():
    a = compose_counterpoint(seed=11, species=2)
    b = compose_counterpoint(seed=11, species=2)
    c = compose_counterpoint(seed=12, species=2)
    assert a.line == b.line and a.cantus == b.cantus
    assert (a.cantus, a.line) != (c.cantus, c.line)


def test_given_cantus_firmus():
    # Fux's D dorian cantus transposed to D minor keeps its shape: D F E D G F A G F E D
    cf = [62, 65, 64, 62, 67, 65, 69, 67, 65, 64, 62]
    score = Score(tracks=[Track.from_notes([Note(p, i * 1920, 1920) for i, p in enumerate(cf)])])
    got, key = cantus_from_score(score)
    assert got == cf and key == (2, True)
    cp = compose_counterpoint(got, key=key, species=1, seed=5)
    assert cp.cantus == cf
    assert counterpoint_problems(cf, cp.line, 2, True, 1, True) == []


def test_checker_catches_parallel_fifths():
    cf = [60, 62, 64, 62, 60]
    line = [(67, 0, 0), (69, 1, 0), (71, 2, 0), (71, 3, 0), (72, 4, 0)]
    problems = check_counterpoint(cf, line, (0, False))
    assert any("consecutive perfect" in p for p in problems)
    assert counterpoint_problems(cf, line, 0, False, 1, True)


def test_bad_cantus_is_a_clear_error():
    with pytest.raises(MusegenError, match=r"tonic|final"):
        compose_counterpoint([60, 64, 67, 65], key=(0, False))
    with pytest.raises(MusegenError, match="no notes"):
        cantus_from_score(Score())
    with pytest.raises(MusegenError, match="species"):
        compose_counterpoint(species=3)


def test_search_gives_up_within_its_limit():
    with pytest.raises(SearchGaveUp, match="gave up after 50 search steps"):
        compose_counterpoint(species=2, length=16, seed=0, max_steps=50)
