from __future__ import annotations

import numpy as np
import pytest
import torch

from musegen.errors import MusegenError
from musegen.models import build_model
from musegen.sampling.filters import (
    build_filters,
    repetition_penalty,
    sample,
    temperature,
    top_k,
    top_p,
    top_p_within,
)
from musegen.sampling.generate import SamplingConfig, generate
from musegen.tokenizers import BOS, EOS, PAD, get_tokenizer
from musegen.tokenizers.base import Grammar, GrammarList, Tokenizer, TokenizerConfig, Vocab
from musegen.tokenizers.remi import RemiBatchGrammar


def tiny(tok, name: str = "transformer"):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    opts = {"vocab_size": len(tok)}
    if name == "transformer":
        opts.update(n_layer=1, d_model=32, n_head=2)
    else:
        opts.update(n_layer=1, d_hidden=32, d_embed=32)
    return build_model(name, **opts)


def test_filters() -> None:
    logits = np.array([[1.0, 3.0, 2.0, 0.0]], dtype=np.float32)
    none = np.zeros((1, 0), dtype=np.int64)
    assert np.isinf(top_k(logits, none, 2)).tolist() == [[True, False, False, True]]
    kept = ~np.isinf(top_p(logits, none, 0.7))
    assert kept.tolist() == [[False, True, True, False]]
    assert (~np.isinf(top_p(logits, none, 0.01))).sum() == 1
    assert not np.isinf(top_p(logits, none, 1.0)).any()
    pen = repetition_penalty(logits, np.array([[1]]), 2.0)
    assert pen[0, 1] == 1.5 and pen[0, 2] == 2.0 and logits[0, 1] == 3.0  # input unchanged
    assert np.allclose(temperature(logits, none, 2.0), logits / 2)
    with pytest.raises(MusegenError):
        build_filters(temperature_=0)
    with pytest.raises(MusegenError):
        build_filters(top_p_=1.5)


def test_filters_work_row_by_row_and_keep_masked_tokens_out() -> None:
    inf = np.float32(np.inf)
    logits = np.array([[-inf, 0.0, 5.0, -inf, 4.9], [1.0, -inf, 1.0, 1.0, -inf]], np.float32)
    none = np.zeros((2, 0), dtype=np.int64)
    out = top_p(logits, none, 0.5)
    assert np.isinf(out).tolist() == [
        [True, True, False, True, True],  # 5.0 alone has > half the mass
        [False, True, False, False, True],  # three tied tokens all stay
    ]
    out = top_k(logits, none, 2)
    assert np.isinf(out[0]).tolist() == [True, True, False, True, False]
    assert (out[1] == logits[1]).all()  # ties with the 2nd are kept


def test_top_p_within_thins_one_block_and_keeps_its_mass() -> None:
    inf = np.float32(np.inf)
    probs = np.array([[0.5, 0.3, 0.1, 0.06, 0.04], [0.2, 0.2, 0.2, 0.2, 0.2]])
    logits = np.log(probs).astype(np.float32)
    logits[1, 1:] = -inf  # a row whose block is all masked stays as it is
    out = top_p_within(logits, np.zeros((2, 0), np.int64), 0.8, 1, 5)
    p = np.exp(out[0] - out[0].max())
    p /= p.sum()
    # the block (ids 1-4, mass 0.5) keeps 0.3 + 0.1 (0.8 of it) and still has mass 0.5
    assert np.allclose(p, [0.5, 0.375, 0.125, 0.0, 0.0], atol=1e-6)
    assert out[1, 0] == logits[1, 0] and np.isinf(out[1, 1:]).all()
    assert len(build_filters(pitch_top_p_=0.9)) == 0  # no block named: nothing to do
    assert len(build_filters(pitch_top_p_=0.9, pitch_ids=(1, 5))) == 1
    with pytest.raises(MusegenError):
        build_filters(pitch_top_p_=0.0, pitch_ids=(1, 5))


def test_sampling_config_finds_the_pitch_block_of_its_tokenizer() -> None:
    """generate and infill both take their filters from SamplingConfig.filters."""
    tok = get_tokenizer("chorale")
    assert len(SamplingConfig().filters(tok)) == 0
    (pitch,) = SamplingConfig(pitch_top_p=0.9).filters(tok)
    assert (pitch.keywords["lo"], pitch.keywords["hi"]) == tok.vocab.span("pitch")


def test_sample_follows_softmax_and_never_draws_masked_tokens() -> None:
    rng = np.random.default_rng(0)
    logits = np.array([[0.0, np.log(2.0), -np.inf, np.log(5.0)]], np.float32)
    draws = np.concatenate([sample(np.repeat(logits, 1000, axis=0), rng) for _ in range(20)])
    freq = np.bincount(draws, minlength=4) / len(draws)
    assert freq[2] == 0
    assert np.allclose(freq, [1 / 8, 2 / 8, 0, 5 / 8], atol=0.01)
    a = sample(np.repeat(logits, 50, axis=0), np.random.default_rng(3))
    b = sample(np.repeat(logits, 50, axis=0), np.random.default_rng(3))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("config", [{}, {"positions_per_quarter": 4, "velocity_bins": 0}])
def test_remi_batch_grammar_matches_one_grammar_per_sequence(config: dict) -> None:
    """Random walks through the vectorised REMI grammar against per-sequence grammars."""
    tok = get_tokenizer("remi", **config)
    assert isinstance(tok.batch_grammar(2), RemiBatchGrammar)
    rng = np.random.default_rng(0)
    prefix = np.array([BOS, tok.vocab.id("Bar"), tok.vocab.id("TimeSig_3/4")])
    batch = tok.batch_grammar(32, prefix)
    singles = GrammarList([tok.grammar().feed(prefix) for _ in range(32)], len(tok))
    for step in range(400):
        masks = batch.mask()
        assert np.array_equal(masks, singles.mask()), step
        weights = masks * np.where(np.arange(len(tok)) == EOS, 0.002, 1.0)  # rarely end
        tokens = np.array([rng.choice(len(tok), p=w / w.sum()) for w in weights])
        batch.step(tokens)
        singles.step(tokens)
        if step == 200:
            batch.finish(np.array([3, 4]))
            singles.finish(np.array([3, 4]))
        assert np.array_equal(batch.done, singles.done)
    assert batch.done[[3, 4]].all() and not batch.done.all()
    with pytest.raises(ValueError, match="not allowed"):
        batch.step(np.full(32, tok.vocab.id("Bar")))  # finished sequences allow only PAD


@pytest.mark.parametrize("tok_name", ["remi", "events"])
def test_untrained_model_output_always_decodes(tok_name: str) -> None:
    """1,000 sequences from random weights: the grammar alone keeps them decodable."""
    tok = get_tokenizer(tok_name)
    model = tiny(tok)
    seqs = []
    for seed in range(4):
        seqs += generate(model, tok, num=250, config=SamplingConfig(max_new_tokens=48, seed=seed))
    assert len(seqs) == 1000
    for s in seqs:
        tok.grammar().feed(s)  # every sequence is grammatical
        score = tok.decode(s)
        for t in score.tracks:
            assert (t.notes["duration"] > 0).all()
            assert ((t.notes["pitch"] >= 0) & (t.notes["pitch"] <= 127)).all()


@pytest.mark.parametrize("model_name", ["transformer", "lstm"])
def test_seeded_generation_is_reproducible_and_primed(model_name: str) -> None:
    from musegen.score import Note, Score, Track

    tok = get_tokenizer("remi")
    model = tiny(tok, model_name)
    primer_score = Score(tracks=[Track.from_notes([Note(60, 0, 480), Note(64, 480, 480)])])
    primer = tok.encode(primer_score, eos=False)
    cfg = SamplingConfig(max_new_tokens=40, seed=7, top_p=0.9, temperature=1.2)
    a = generate(model, tok, num=3, primer=primer, config=cfg)
    b = generate(model, tok, num=3, primer=primer, config=cfg)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(np.array_equal(x[: len(primer)], primer) for x in a)
    c = generate(model, tok, num=3, primer=primer, config=SamplingConfig(max_new_tokens=40, seed=8))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_stop_function_and_mismatch() -> None:
    tok = get_tokenizer("remi")
    model = tiny(tok)
    asked: list[int] = []

    def stop(ids: np.ndarray) -> bool:
        asked.append(len(ids))
        return True

    (seq,) = generate(
        model, tok, num=1, config=SamplingConfig(max_new_tokens=200), stop=stop, stop_every=4
    )
    assert len(seq) <= 1 + 4  # BOS + at most stop_every new tokens
    assert asked == [5] or seq[-1] == EOS
    with pytest.raises(MusegenError, match="do not match"):
        generate(model, get_tokenizer("events"), num=1)


class _DeadEndTokenizer(Tokenizer):
    """BOS, then one A, then nothing is allowed (not even EOS): a grammar dead end."""

    name = "dead-end"
    config_class = TokenizerConfig

    def build_vocab(self) -> Vocab:
        v = Vocab()
        v.add("A", 1)
        return v

    def encode(self, score: object) -> np.ndarray:
        raise NotImplementedError

    def decode(self, ids: object) -> object:
        raise NotImplementedError

    def prepare(self, score: object) -> object:
        return score

    def grammar(self) -> Grammar:
        return _DeadEndGrammar()


class _DeadEndGrammar(Grammar):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def mask(self) -> np.ndarray:
        m = np.zeros(4, dtype=bool)
        m[{0: BOS, 1: 3}.get(len(self.seen), PAD)] = len(self.seen) < 2
        return m

    def step(self, token: int) -> None:
        if not self.mask()[token]:
            raise ValueError(f"token {token} is not allowed here")
        self.seen.append(token)


def test_grammar_dead_end_ends_the_sequence_with_eos() -> None:
    tok = _DeadEndTokenizer()
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=4, n_layer=1, d_model=16, n_head=2)
    seqs = generate(model, tok, num=3, config=SamplingConfig(max_new_tokens=10))
    assert [s.tolist() for s in seqs] == [[BOS, 3, EOS]] * 3


def test_generation_leaves_the_thread_count_alone() -> None:
    tok = get_tokenizer("remi")
    model = tiny(tok)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        generate(model, tok, num=2, config=SamplingConfig(max_new_tokens=8))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("model_name", ["transformer", "lstm"])
def test_dropping_finished_sequences_changes_nothing(
    model_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finished sequences leave the model's batch; the samples must be the same as without."""
    from musegen.sampling import generate as generate_module

    # the log tempo grid's vocabulary: with it, this seeded random model's sequences end at
    # different steps (with the default's, it writes EOS at once)
    tok = get_tokenizer("remi", tempo_grid="log")
    model = tiny(tok, model_name)
    with torch.no_grad():  # sharp logits: a sequence given another's state would draw otherwise
        for p in model.parameters():
            p.mul_(6)
    cfg = SamplingConfig(max_new_tokens=160, seed=3)

    def stop(ids: np.ndarray) -> bool:  # ends sequences at different steps, by content
        return int(ids.sum()) % 5 == 0

    selected: list[int] = []
    select = type(model).select_cache

    def counting_select(self, cache, rows):  # type: ignore[no-untyped-def]
        selected.append(len(rows))
        return select(self, cache, rows)

    monkeypatch.setattr(type(model), "select_cache", counting_select)
    compacted = generate(model, tok, num=6, config=cfg, stop=stop, stop_every=4)
    assert len(selected) >= 2, "too few sequences finished early to test dropping them"
    assert len({len(s) for s in compacted}) > 1
    plain = generate_module._sample  # the same loop with compaction off
    monkeypatch.setattr(
        generate_module, "_sample", lambda *a, **k: plain(*a, **{**k, "compact": False})
    )
    kept = generate(model, tok, num=6, config=cfg, stop=stop, stop_every=4)
    for a, b in zip(compacted, kept, strict=True):
        np.testing.assert_array_equal(a, b)


def test_hold_eos_keeps_a_model_that_wants_to_end_going() -> None:
    """A model that always wants EOS ends at once; with hold_eos it runs to the cap (or its
    stop) and the output still decodes. EOS stays where the grammar allows nothing else."""
    tok = get_tokenizer("remi")
    model = tiny(tok, "lstm")
    eos = torch.zeros(len(tok))
    eos[EOS] = 1e3
    model.register_forward_hook(lambda _m, _i, out: (out[0] + eos, *out[1:]))
    cfg = SamplingConfig(max_new_tokens=40, seed=0)
    (ended,) = generate(model, tok, config=cfg)
    assert ended.tolist() == [BOS, EOS]
    (held,) = generate(model, tok, config=cfg, hold_eos=True)
    assert EOS not in held and len(held) == 41
    tok.decode(held)
    dead_end = _DeadEndTokenizer()
    torch.manual_seed(0)
    small = build_model("transformer", vocab_size=4, n_layer=1, d_model=16, n_head=2)
    (seq,) = generate(small, dead_end, config=SamplingConfig(max_new_tokens=10), hold_eos=True)
    assert seq.tolist() == [BOS, 3, EOS]


@pytest.mark.parametrize("position", ["relative", "rope", "absolute"])
def test_fast_cpu_path_and_plain_path_draw_the_same_tokens(
    position: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``MUSEGEN_FAST_CPU=0`` (the modules' own path: SDPA for the primer, ``forward`` per
    token) draws the very tokens the fast path (chunked attention, fused step) draws."""
    from musegen.models import cpu

    tok = get_tokenizer("remi")
    torch.manual_seed(0)
    model = build_model(
        "transformer",
        vocab_size=len(tok),
        n_layer=2,
        d_model=32,
        n_head=2,
        position=position,
        max_relative=8,  # the primer and the pieces reach past it
    )
    with torch.no_grad():  # bigger weights: logits that depend on the context
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(10.0)
    config = SamplingConfig(max_new_tokens=48, seed=11, top_p=0.95)
    hold = {"hold_eos": True}  # every sequence runs its full length
    primer = generate(model, tok, config=SamplingConfig(max_new_tokens=12, seed=1), **hold)[0]
    assert model.init_cache(1, 4).decoder is not None
    fast = generate(model, tok, num=3, primer=primer[1:], config=config, **hold)
    monkeypatch.setenv(cpu.ENV, "0")
    assert model.init_cache(1, 4).decoder is None
    plain = generate(model, tok, num=3, primer=primer[1:], config=config, **hold)
    assert [s.tolist() for s in fast] == [s.tolist() for s in plain]
    assert len(primer) == 13 and all(len(s) == 13 + 48 for s in fast)
