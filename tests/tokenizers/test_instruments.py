"""The remi-instruments tokenizer: REMI with the instruments named up front, forced by a plan."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.errors import MusegenError
from musegen.score import Score, TimeSignature, Track, make_notes
from musegen.tokenizers import get_tokenizer, tokenizer_from_dict
from musegen.tokenizers.instruments import InstrumentsTokenizer, main

Q = 480


def trio(programs: tuple[int, ...] = (40, 41, 42)) -> Score:
    """One bar of quarters, one track per program."""
    tracks = [
        Track(
            make_notes([0, Q, 2 * Q, 3 * Q], [Q] * 4, [72 - 12 * k + d for d in (0, 2, 4, 5)], 80),
            program=p,
        )
        for k, p in enumerate(programs)
    ]
    return Score(tpq=Q, tracks=tracks, time_signatures=[TimeSignature(0, 4, 4)])


@pytest.fixture(scope="module")
def tok() -> InstrumentsTokenizer:
    return get_tokenizer("remi-instruments", velocity_bins=8, tempo_bins=0)  # type: ignore[return-value]


def program_ids(tok: InstrumentsTokenizer, ids: np.ndarray) -> set[int]:
    ids = np.asarray(ids)
    return {int(i) - tok.prog_lo for i in ids if tok.prog_lo <= i < tok.prog_lo + 129}


def test_the_header_names_the_programs_and_the_body_is_remis(tok: InstrumentsTokenizer) -> None:
    score = trio()
    ids = tok.encode(score)
    assert tok.tokens(ids[:4]) == ["BOS", "INST_40", "INST_41", "INST_42"]
    assert tok.header(ids) == (40, 41, 42)
    np.testing.assert_array_equal(tok.body(ids), tok.remi.encode(score))  # REMI's ids
    assert tok.grammar().feed(ids).done
    back = tok.decode(ids)
    assert [(t.program, len(t)) for t in back.tracks] == [(40, 4), (41, 4), (42, 4)]
    assert tokenizer_from_dict(tok.to_dict()).to_dict() == tok.to_dict()


def walk(tok: InstrumentsTokenizer, seed: int, limit: int = 400) -> np.ndarray:
    """A sequence drawn uniformly among what the grammar allows (cut at ``limit`` ids)."""
    rng = np.random.default_rng(seed)
    g = tok.grammar()
    out: list[int] = []
    while not g.done and len(out) < limit:
        t = int(rng.choice(np.flatnonzero(g.mask())))
        g.step(t)
        out.append(t)
    return np.array(out)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    asked=st.lists(st.sampled_from([0, 40, 42, 73, 128]), min_size=1, max_size=4),
)
def test_a_plan_forces_the_header_and_keeps_every_note_to_it(seed: int, asked: list[int]) -> None:
    tok = get_tokenizer("remi-instruments", velocity_bins=8, tempo_bins=0)
    forced = tok.instrumented(asked)  # type: ignore[attr-defined]
    ids = walk(forced, seed)
    assert forced.header(ids) == tuple(sorted(set(asked)))
    assert program_ids(forced, ids) <= set(asked)
    tok.grammar().feed(ids)  # the free grammar accepts what the forced one wrote


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_a_free_header_is_increasing_and_the_body_keeps_to_it(seed: int) -> None:
    tok = get_tokenizer("remi-instruments", velocity_bins=8, tempo_bins=0)
    ids = walk(tok, seed)  # type: ignore[arg-type]
    head = tok.header(ids)  # type: ignore[attr-defined]
    assert list(head) == sorted(set(head))
    if head:
        assert program_ids(tok, ids) <= set(head)  # type: ignore[arg-type]


def test_a_primer_is_encoded_with_the_plans_header(tok: InstrumentsTokenizer) -> None:
    forced = tok.instrumented([42, 40, 41, 40])
    assert forced.header(forced.encode(trio((40, 42)), eos=False)) == (40, 41, 42)
    with pytest.raises(MusegenError, match="program"):
        tok.instrumented([40]).encode(trio((40, 42)))


def test_bad_plans_and_configs_are_one_line_errors(tok: InstrumentsTokenizer) -> None:
    for bad in ([], [129], [-1]):
        with pytest.raises(MusegenError, match="GM programs"):
            tok.instrumented(bad)
    with pytest.raises(MusegenError, match="program tokens"):
        get_tokenizer("remi-instruments", programs=False)


def test_vocabulary_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", '{"tempo_bins": 0}']) == 0
    out = capsys.readouterr().out
    assert out.startswith("remi-instruments tokenizer") and "INST_*" in out
