"""Bar plans: the grammar forces the bars a form restates; the repetition measures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.errors import MusegenError
from musegen.sampling.structure import (
    BarPlan,
    Restate,
    bar_similarity,
    form_plan,
    parse_form,
    planned,
    repetition_features,
    section_form,
    self_similarity,
    top_line_bars,
)
from musegen.score import Score, TimeSignature
from musegen.tokenizers import get_tokenizer


def walk(tok, bars: int, seed: int, meter: str = "4/4", middle: bool = False) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A random sequence the tokenizer's grammar allows (uniform over its mask): what a
    model with random weights would write, without the model; ``middle``: pitches drawn
    from MIDI 50-75 where the mask allows one of them."""
    num, den = (int(x) for x in meter.split("/"))
    primer = tok.primer_for_length(
        Score(tpq=480, time_signatures=[TimeSignature(0, num, den)]), bars
    )
    grammar = tok.grammar().feed(primer)
    ids = list(primer)
    rng = np.random.default_rng(seed)
    while not grammar.done:
        allowed = np.flatnonzero(grammar.mask())
        if middle:
            pitch = allowed - tok.pitch_offset
            keep = (pitch < 0) | ((pitch >= 50) & (pitch <= 75))
            allowed = allowed[keep] if keep.any() else allowed
        t = int(rng.choice(allowed))
        grammar.step(t)
        ids.append(t)
    return np.array(ids)


def test_form_plan_restates_earlier_sections() -> None:
    plan = form_plan(parse_form("aaba"), 32)
    assert len(plan.bars) == 32
    assert all(plan.bars[b] is None for b in range(8))  # the first A is free
    assert [plan.bars[b].index for b in range(8, 15)] == list(range(7))  # type: ignore[union-attr]
    assert plan.bars[15] is None and all(plan.bars[b] is None for b in range(16, 24))
    assert [plan.bars[b].index for b in range(24, 31)] == list(range(7))  # type: ignore[union-attr]
    with pytest.raises(MusegenError, match="one letter a section"):
        parse_form("A-B")
    with pytest.raises(MusegenError, match="at least 4 bars"):
        form_plan(parse_form("ABAB"), 3)


@pytest.mark.parametrize("name", ["melody", "chorale"])
def test_random_walks_follow_the_form(name: str) -> None:
    tok = get_tokenizer(name)
    plan = form_plan(parse_form("ABA"), 9)  # sections of 3 bars: bars 6-7 restate 0-1
    for seed in range(3):
        ids = walk(planned(tok, plan), 9, seed)
        tok.decode(ids)  # still a valid sequence
        bars = top_line_bars(tok, ids)
        assert len(bars) == 9
        for b in (6, 7):
            assert np.array_equal(bars[b][1:], bars[b - 6][1:])
            assert bars[b][0] == bars[b - 6][0] or bars[b - 6][0] == -1  # a held note sounds
        free = walk(tok, 9, seed)
        fb = top_line_bars(tok, free)
        assert not all(np.array_equal(fb[b], fb[b - 6]) for b in (6, 7))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from(["exact", "sequence", "varied"]))
def test_restated_bars_keep_rhythm_and_mode(seed: int, mode: str) -> None:
    """Whatever the draws: a restated bar keeps its source's rhythm (the first row may
    sound a held note), an exact one its pitches, a sequence one interval (a note it would
    move out of the voice's range is left free)."""
    tok = get_tokenizer("melody", pitch_range=(40, 90))
    plan = BarPlan(tuple([None, None] + [Restate(k, mode=mode, group=1) for k in (0, 1)]))
    ids = walk(planned(tok, plan), 4, seed, "3/4", middle=True)
    bars = top_line_bars(tok, ids)
    assert (np.concatenate(bars[:2]) <= 75).all()  # sources in the middle: no cell is left free
    for src, b in ((bars[0], bars[2]), (bars[1], bars[3])):
        kinds = np.where(src >= 0, 0, src)[1:], np.where(b >= 0, 0, b)[1:]
        assert np.array_equal(*kinds)
        both = (src >= 0) & (b >= 0)
        if mode == "exact":
            assert np.array_equal(src[both], b[both])
        if mode == "sequence":
            assert len(set((b[both] - src[both]).tolist())) <= 1
        if mode == "varied":
            assert (np.abs(b[both] - src[both]) <= 10).all()


def test_similarity_and_features() -> None:
    a = np.array([60, -1, 62, -1, 64, -2, 65, -1])
    assert bar_similarity(a, a + np.where(a >= 0, 5, 0)) == 1.0  # transposed
    assert bar_similarity(a, np.array([60, 62, -1, -1, 64, -2, 65, -1])) == 0.75  # 6 of 8 rows
    assert bar_similarity(a, np.array([60, 62, 63, -1, 64, 66, 65, 67])) < 0.5
    assert bar_similarity(a, a[:4]) == 0.0
    rng = np.random.default_rng(1)
    section = [rng.integers(55, 80, 8) for _ in range(4)]
    other = [rng.integers(55, 80, 8) for _ in range(4)]
    piece = section + section + other + section
    sim = self_similarity(piece)
    assert np.allclose(sim, sim.T) and np.allclose(np.diag(sim), 1.0)
    assert section_form(piece) == "AABA"
    f = repetition_features(piece)
    assert f["exact_repeats"] >= 0.5 and f["returning_runs"] >= 0.5 and f["lag_4"] > f["lag_2"]
    assert np.isnan(repetition_features(piece[:1])["repeated_bars"])


def test_a_tokenizer_without_bars_cannot_be_planned() -> None:
    with pytest.raises(MusegenError, match="no bar grid"):
        planned(get_tokenizer("remi"), BarPlan(()))


def test_benchmark_distance_is_zero_for_the_corpus_itself() -> None:
    from benchhelpers import load_benchmark

    bench = load_benchmark("structure")
    rng = np.random.default_rng(0)
    pieces = [[rng.integers(60, 64, 4) for _ in range(16)] for _ in range(5)]
    ref = bench.features(pieces)
    assert bench.distance(ref, ref) == 0.0
    repeated = [p[:4] * 4 for p in pieces]
    assert bench.distance(bench.features(repeated), ref) > 1.0
