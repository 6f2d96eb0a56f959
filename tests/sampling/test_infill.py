"""Bar infilling with token models: the infill tokenizers, training items and the sampler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infillhelpers import check_kept, chorale, melody
from musegen.errors import MusegenError
from musegen.models import build_model
from musegen.models.pretrained import resolve_model
from musegen.sampling.generate import SamplingConfig
from musegen.sampling.infill import InfillOptions, accompany_score, infill_score
from musegen.score import Score, TimeSignature, Track, make_notes
from musegen.tokenizers import get_tokenizer, tokenizer_from_dict
from musegen.tokenizers.base import BOS, EOS
from musegen.tokenizers.infill import (
    AnswerGrammar,
    Region,
    answer_plan,
    infill_answer,
    infill_prompt,
    parse_grid,
    plain_ids,
    score_grid,
)

OPTIONS = InfillOptions(context_bars=1, max_region_bars=2, seq_len=400)


@pytest.fixture(scope="module")
def models(one_torch_thread: None) -> Iterator[dict[str, tuple[torch.nn.Module, object]]]:
    """Random one-layer models over the two infill tokenizers: what the sampler keeps does
    not depend on what the model learned."""
    out = {}
    for name, options in (("chorale-infill", {"voice_leading": True}), ("melody-infill", {})):
        tok = get_tokenizer(name, **options)
        torch.manual_seed(0)
        model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
        out[name] = (model.eval(), tok)
    yield out


def test_infill_tokenizers_keep_every_plain_id() -> None:
    """The infill twins add MASK and FILL after the plain ids; shipped configs still name
    the plain tokenizers, with their ids."""
    for plain_name in ("chorale", "melody"):
        plain, twin = get_tokenizer(plain_name), get_tokenizer(f"{plain_name}-infill")
        assert len(twin) == len(plain) + 2
        assert twin.vocab.labels()[: len(plain)] == plain.vocab.labels()
        assert twin.tokens([twin.mask_id, twin.fill_id]) == ["MASK", "FILL"]
        piece = chorale(3, bars=3, pickup=True)
        assert np.array_equal(twin.encode(piece), plain.encode(piece))
        again = tokenizer_from_dict(twin.to_dict())
        assert again.name == twin.name and len(again) == len(twin)
    for shipped in ("bach", "folk"):
        meta = json.loads((resolve_model(shipped) / "config.json").read_text())
        tok = tokenizer_from_dict(meta["tokenizer"])
        assert tok.name in ("chorale", "melody") and len(tok) == meta["config"]["vocab_size"]


def test_grid_round_trip_and_sequence_shape() -> None:
    tok = get_tokenizer("chorale-infill")
    ids = tok.encode(chorale(1, bars=4, pickup=True))
    grid = parse_grid(tok, ids)
    assert grid.bars[0] is None and grid.n_units == 5  # the pickup and four bars
    assert np.array_equal(plain_ids(tok, grid), ids)
    region = Region(2, 3, (1, 2), (1, 4), 3)
    prompt, answer = infill_prompt(tok, grid, region), infill_answer(tok, grid, region)
    assert prompt[0] == BOS and prompt[-1] == tok.fill_id and answer[-1] == EOS
    hidden = (prompt == tok.mask_id).sum()
    assert hidden == 2 * 2 * 16  # two voices of two bars of sixteen rows
    grammar = AnswerGrammar(tok, grid, region)
    for t in answer:  # the true answer is allowed by the answer grammar
        grammar.step(int(t))
    assert grammar.done
    plan = answer_plan(grid, region)
    assert sum(forced < 0 for forced, _ in plan) == hidden


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    piece=st.integers(0, 50),
    pickup=st.booleans(),
    first=st.integers(1, 5),
    length=st.integers(1, 5),
    voices=st.lists(st.sampled_from("SATB"), min_size=1, max_size=4, unique=True),
    seed=st.integers(0, 2**31 - 1),
)
def test_given_notes_and_outside_bars_are_kept(
    models: dict, piece: int, pickup: bool, first: int, length: int, voices: list, seed: int
) -> None:
    """Property: over random regions, voices and draws, every given cell is unchanged,
    the bars outside the region are identical and the voices not asked for keep their notes."""
    model, tok = models["chorale-infill"]
    score = chorale(piece, bars=5, pickup=pickup)
    n_bars = score_grid(tok, score).unit_bars[-1]
    first = min(first, n_bars)
    bars = (first, min(first + length - 1, n_bars))
    letters = "".join(voices)
    out = infill_score(
        model, tok, score, bars, letters, sampling=SamplingConfig(seed=seed), options=OPTIONS
    )
    check_kept(tok, score, out, bars, sorted("SATB".index(c) for c in letters))
    assert [t.name for t in out.tracks] == [t.name for t in score.tracks]
    assert out.tempos == score.tempos


def test_infill_is_reproducible_and_melody_models_infill(models: dict) -> None:
    model, tok = models["chorale-infill"]
    score = chorale(5, bars=6)
    draws = [
        infill_score(
            model, tok, score, (2, 6), "AT", sampling=SamplingConfig(seed=4), options=OPTIONS
        )
        for _ in range(2)
    ]
    assert all(
        np.array_equal(a.notes, b.notes)
        for a, b in zip(draws[0].tracks, draws[1].tracks, strict=True)
    )
    model, tok = models["melody-infill"]
    tune = melody(2, bars=5)
    out = infill_score(model, tok, tune, (2, 3), sampling=SamplingConfig(seed=1), options=OPTIONS)
    check_kept(tok, tune, out, (2, 3), [0])
    with pytest.raises(MusegenError, match="writes one line"):
        infill_score(model, tok, tune, (2, 3), "S", sampling=SamplingConfig(), options=OPTIONS)


def test_accompany_keeps_the_melody(models: dict) -> None:
    model, tok = models["chorale-infill"]
    tune = melody(7, bars=5)
    out = accompany_score(model, tok, tune, "S", sampling=SamplingConfig(seed=3), options=OPTIONS)
    assert [t.voice for t in out.tracks] == ["S", "A", "T", "B"]
    sung = replace(tune, tracks=[replace(tune.tracks[0], voice="S")])
    want = tok.prepare(sung).tracks  # the tune as the soprano of a four-voice score
    got = out.tracks[0].notes
    assert np.array_equal(got["start"], want[0].notes["start"])
    assert np.array_equal(got["pitch"], want[0].notes["pitch"])
    assert out.tracks[0].name == "tune"
    assert sum(len(t) for t in out.tracks[1:]) > 0


def test_infill_errors(models: dict) -> None:
    model, tok = models["chorale-infill"]
    score = chorale(1, bars=3)
    sampling = SamplingConfig()
    with pytest.raises(MusegenError, match="runs from bar 1 to bar 3"):
        infill_score(model, tok, score, (2, 9), sampling=sampling, options=OPTIONS)
    with pytest.raises(MusegenError, match="--voices"):
        infill_score(model, tok, score, (1, 2), "SX", sampling=sampling, options=OPTIONS)
    plain = get_tokenizer("chorale")
    with pytest.raises(MusegenError, match="not trained to infill"):
        infill_score(model, plain, score, (1, 2), sampling=sampling, options=OPTIONS)
    model, one = models["melody-infill"]
    with pytest.raises(MusegenError, match="one line"):
        accompany_score(model, one, melody(1), sampling=sampling, options=OPTIONS)


def test_bars_are_numbered_as_the_score_has_them(models: dict) -> None:
    """A pickup written as its own meter, and empty bars before the music: bar numbers are
    the score's, and the notes come back where they were."""
    model, tok = models["melody-infill"]
    n = 17
    pitches = 60 + np.arange(n) % 7
    pickup_meter = Score(
        tpq=480,
        tracks=[Track(make_notes(np.arange(n) * 480, np.full(n, 480), pitches, 80))],
        time_signatures=[TimeSignature(0, 1, 4), TimeSignature(480, 4, 4)],
    )
    late = Score(
        tpq=480,
        tracks=[Track(make_notes(np.arange(n) * 480 + 2 * 1920, np.full(n, 480), pitches, 80))],
        time_signatures=[TimeSignature(0, 4, 4)],
    )
    for score, bars, numbers in (
        (pickup_meter, (2, 3), [1, 2, 3, 4, 5]),
        (late, (4, 5), [3, 4, 5, 6, 7]),
    ):
        assert score_grid(tok, score).unit_bars == numbers
        out = infill_score(
            model, tok, score, bars, sampling=SamplingConfig(seed=1), options=OPTIONS
        )
        check_kept(tok, score, out, bars, [0])
        assert out.time_signatures == score.time_signatures
