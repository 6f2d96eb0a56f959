"""RL fine-tuning on a tiny melody model: the reward rises, resume is exact, errors are one line."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from musegen.errors import Interrupted, MusegenError
from musegen.score import Score
from musegen.train.rl import RLConfig, RLTrainer


def tiny_melody_model(folder: Path, seed: int = 0) -> Path:
    """A random one-layer transformer over a small melody tokenizer (4/4, C4..C5), saved."""
    from musegen.models import build_model, save_model
    from musegen.tokenizers import get_tokenizer

    tok = get_tokenizer("melody", time_signatures=["4/4"], max_bars=4, pitch_range=[60, 72])
    torch.manual_seed(seed)
    model = build_model(
        "transformer", vocab_size=len(tok), n_layer=1, n_head=2, d_model=32, d_ff=64, dropout=0.0
    )
    save_model(model, folder, {"tokenizer": tok.to_dict(), "description": "tiny"})
    return folder


def low_notes(score: Score) -> float:
    """A toy reward: the share of notes at or below E4."""
    pitches = np.concatenate([t.notes["pitch"] for t in score.tracks] or [np.zeros(0)])
    return float((pitches <= 64).mean()) if len(pitches) else 0.0


def config(model: Path, **kw: object) -> RLConfig:
    base = dict(model=str(model), reward="key", steps=4, batch_size=8, lr=3e-3, bars=2, kl=0.01)
    base |= dict(checkpoint_every=2, progress=False, seed=3)
    base |= kw
    return RLConfig(**base)  # type: ignore[arg-type]


def mean_reward(trainer: RLTrainer, steps: range) -> float:
    return float(np.mean([v["total"] for s in steps for v in trainer.score(trainer.rollout(s)[1])]))


@pytest.mark.slow
def test_reward_rises_under_a_few_steps(tmp_path: Path) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    trainer = RLTrainer(
        config(model, steps=6, lr=1e-2, credit="piece"),
        tmp_path / "run",
        rewards=[("low", low_notes)],
    )
    held_out = range(1000, 1003)  # rollouts on seeds training never uses
    before = mean_reward(trainer, held_out)
    trainer.fit()
    after = mean_reward(trainer, held_out)
    assert after > before + 0.1
    assert (tmp_path / "run" / "checkpoint" / "model.safetensors").exists()
    rows = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(rows) == 6


def test_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    small = dict(batch_size=4, bars=1, checkpoint_every=1)
    RLTrainer(config(model, steps=2, **small), tmp_path / "straight").fit()
    RLTrainer(config(model, steps=1, **small), tmp_path / "resumed").fit()
    RLTrainer(config(model, steps=2, **small), tmp_path / "resumed").fit(resume=True)
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "straight" / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "checkpoint" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert len((tmp_path / "resumed" / "log.jsonl").read_text().splitlines()) == 2


def test_ctrl_c_saves_the_step_it_is_on_and_resume_goes_on_exactly(tmp_path: Path) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    small = dict(batch_size=4, bars=1, checkpoint_every=100)
    RLTrainer(config(model, steps=3, **small), tmp_path / "straight").fit()
    stopped = RLTrainer(config(model, steps=3, **small), tmp_path / "resumed")
    step = stopped.step

    def step_then_ctrl_c() -> dict:
        if stopped.step_count == 1:  # the user presses Ctrl-C during the second step
            os.kill(os.getpid(), signal.SIGINT)
        return step()

    stopped.step = step_then_ctrl_c  # type: ignore[method-assign]
    with pytest.raises(Interrupted, match="after step 2"):
        stopped.fit()
    RLTrainer(config(model, steps=3, **small), tmp_path / "resumed").fit(resume=True)
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "straight" / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "checkpoint" / "model.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert len((tmp_path / "resumed" / "log.jsonl").read_text().splitlines()) == 3


def test_the_tuned_model_loads_as_a_model_and_keeps_its_tokenizer(tmp_path: Path) -> None:
    from musegen.sampling.generators import GenerateRequest, load_generator

    model = tiny_melody_model(tmp_path / "tiny")
    RLTrainer(config(model, steps=1), tmp_path / "run").fit()
    generator = load_generator(str(tmp_path / "run"))
    assert generator.meta["rl"]["step"] == 1
    assert "tuned by RL" in generator.meta["description"]
    (piece,) = generator.generate(GenerateRequest(num=1, bars=2, seed=1)).pieces
    assert piece.n_bars >= 1


def test_run_errors(tmp_path: Path) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    RLTrainer(config(model, steps=1), tmp_path / "run").fit()
    with pytest.raises(MusegenError, match="--resume"):
        RLTrainer(config(model, steps=1), tmp_path / "run").fit()
    with pytest.raises(MusegenError, match="other settings"):
        RLTrainer(config(model, steps=2, kl=0.5), tmp_path / "run").fit(resume=True)
    with pytest.raises(MusegenError, match="no RL checkpoint"):
        RLTrainer(config(model, steps=1), tmp_path / "empty").fit(resume=True)
    with pytest.raises(MusegenError, match="--kl"):
        config(model, kl=-1)
    with pytest.raises(MusegenError, match="--batch-size"):
        config(model, batch_size=1)


# ----------------------------------------------------------------------------- --credit note
@pytest.mark.slow
def test_reward_rises_under_a_few_steps_with_note_credit(tmp_path: Path) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    cfg = config(model, steps=6, lr=1e-2, credit="note", gamma=0.7)
    trainer = RLTrainer(cfg, tmp_path / "run", rewards=[("low", low_notes)])
    held_out = range(1000, 1003)
    before = mean_reward(trainer, held_out)
    trainer.fit()
    assert mean_reward(trainer, held_out) > before + 0.1
    row = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert "note_reward" in row


def hand_melody(pitches: list[int]) -> Score:
    from musegen.score import TimeSignature, Track, make_notes

    n = len(pitches)
    notes = make_notes([i * 480 for i in range(n)], [480] * n, pitches, 80)
    return Score(tpq=480, tracks=[Track(notes=notes)], time_signatures=[TimeSignature(0, 4, 4)])


def test_each_note_reward_lands_on_the_token_that_writes_the_note() -> None:
    from musegen.metrics.rewards import theory_reward
    from musegen.tokenizers import get_tokenizer
    from musegen.train.rl_credit import piece_note_rewards

    tok = get_tokenizer("melody", time_signatures=["4/4"], max_bars=4, pitch_range=[60, 72])
    score = hand_melody([60, 67, 64, 60, 60, 60, 60, 60])
    ids = tok.encode(tok.prepare(score))
    pos, rewards = piece_note_rewards([("theory", theory_reward)], tok, ids, tok.decode(ids))
    assert [tok.tokens(ids)[p] for p in pos] == [f"pitch_{p}" for p in [60, 67, 64] + [60] * 5]
    assert rewards.sum() == pytest.approx(theory_reward(tok.decode(ids)))
    assert rewards[-1] < rewards[-2]  # the 5th repeated onset: excessive (and the tonic end)
    # a reward given as a function: credited by differences on the partial pieces
    pos2, low = piece_note_rewards([("low", low_notes)], tok, ids, tok.decode(ids))
    assert pos2.tolist() == pos.tolist()
    assert low.tolist() == pytest.approx([1, -0.5, 1 / 6, 1 / 12, 1 / 20, 1 / 30, 1 / 42, 1 / 56])


def test_note_tokens_by_decoding_prefixes_when_pitch_tokens_are_not_one_a_note() -> None:
    from musegen.metrics.rewards import top_line
    from musegen.score import TimeSignature, Track, make_notes
    from musegen.tokenizers import get_tokenizer
    from musegen.train.rl_credit import note_tokens

    tok = get_tokenizer("remi")
    chords = make_notes([0, 0, 480, 480, 960], [480] * 5, [60, 64, 62, 65, 67], 80)
    score = Score(tpq=480, tracks=[Track(notes=chords)], time_signatures=[TimeSignature(0, 4, 4)])
    ids = tok.encode(tok.prepare(score))
    pos = note_tokens(tok, ids, 0, 3)
    for k, p in enumerate(pos.tolist()):
        assert len(top_line(tok.decode(ids[: p + 1]))) >= k + 1
        assert len(top_line(tok.decode(ids[:p]))) <= k


def test_returns_to_go_and_the_per_position_baseline() -> None:
    from musegen.train.rl_credit import leave_one_out, returns_to_go

    r = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 5.0]])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    g = returns_to_go(r, valid, 0.5)
    torch.testing.assert_close(g, torch.tensor([[1.5, 1.0, 2.0], [0.5, 1.0, 0.0]]))
    b = leave_one_out(g, valid)
    torch.testing.assert_close(
        b, torch.tensor([[0.5, 1.0, 2.0], [1.5, 1.0, 2.0]])
    )  # [1, 2]: unused
    with pytest.raises(MusegenError, match="--credit"):
        config(Path("unused"), credit="bar")
    with pytest.raises(MusegenError, match="--gamma"):
        config(Path("unused"), gamma=1.5)


# ----------------------------------------------------------------------------- --candidates
def test_candidate_rewards_price_every_pitch_and_the_drawn_ones_match_the_note_rewards() -> None:
    from musegen.metrics.rewards import LOCAL_PARTS, THEORY_WEIGHTS, note_rewards, top_line
    from musegen.tokenizers import get_tokenizer
    from musegen.train.rl_credit import candidate_rewards

    tok = get_tokenizer("melody", time_signatures=["4/4"], max_bars=4, pitch_range=[60, 72])
    ids = tok.encode(tok.prepare(hand_melody([60, 67, 64, 60, 60, 60, 60, 60])))
    start = 3  # BOS, meter, length
    score = tok.decode(ids)
    table, drawn = candidate_rewards(tok, ids, start, score, THEORY_WEIGHTS)
    assert table.shape == (len(ids) - start, 128) and drawn.shape == (len(ids) - start,)
    pos = np.flatnonzero(tok.vocab.is_in(ids, "pitch"))
    local = note_rewards(top_line(score), {p: THEORY_WEIGHTS[p] for p in LOCAL_PARTS})
    assert drawn[pos - start].tolist() == pytest.approx(local.tolist())
    assert np.count_nonzero(drawn) == np.count_nonzero(local)  # only pitch tokens earn
    # when the 5th C is written (after four), a C is excessive (-10/8 notes), a D is not;
    # with three Cs before, a C is fine
    state = pos[-1] - start
    assert table[state, 60] == pytest.approx(-10 / 8) and table[state, 62] == 0
    assert table[pos[-2] - start, 60] == 0
    assert (table[pos[-2] + 1 - start : state + 1] == table[state]).all()  # until it is written


def test_candidates_and_weights_in_a_step(tmp_path: Path) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    cfg = config(
        model,
        steps=1,
        batch_size=4,
        bars=1,
        reward="theory",
        weights={"repetition": 30.0, "motifs": 4.0},
        candidates=True,
        shaping=True,
        exact_kl=True,
    )
    trainer = RLTrainer(cfg, tmp_path / "run")
    assert trainer.note_weights["theory"]["repetition"] == 30.0
    trainer.fit()
    row = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert np.isfinite(row["candidate_reward"]) and row["candidate_reward"] <= 0
    assert np.isfinite(row["grad_norm"]) and row["grad_norm"] > 0  # --exact-kl: no NaN
    with pytest.raises(MusegenError, match="theory"):
        RLTrainer(config(model, reward="key", weights={"key": 3.0}), tmp_path / "w")
    with pytest.raises(MusegenError, match="unknown part"):
        config(model, reward="theory", weights={"rhythm": 3.0})
    with pytest.raises(MusegenError, match="--credit note"):
        RLTrainer(config(model, credit="piece", candidates=True), tmp_path / "c")
    with pytest.raises(MusegenError, match="--credit note"):
        RLTrainer(config(model, credit="piece", exact_kl=True), tmp_path / "e")


def test_candidate_weights_weigh_the_exact_term_and_not_the_returns(tmp_path: Path) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    only_key = {"repetition": 0.0, "leaps": 0.0, "intervals": 0.0}  # the other local parts
    cfg = config(
        model, reward="theory", weights=only_key, candidates=True, candidate_weights={"key": 50.0}
    )
    trainer = RLTrainer(cfg, tmp_path / "run")
    assert trainer.candidate_weights["theory"]["key"] == 50.0
    assert trainer.note_weights["theory"]["key"] == 2.0  # the reward and its returns: as before
    _, seqs = trainer.rollout(0)
    P = len(trainer.prompt(0))
    T = max(len(s) for s in seqs) - P
    pieces = [trainer.tokenizer.decode(s) for s in seqs]
    plain, drawn = trainer.candidate_rewards(seqs, pieces, P, T, trainer.note_weights)
    heavy, _ = trainer.candidate_rewards(seqs, pieces, P, T, trainer.candidate_weights)
    assert plain.min() < 0 and torch.allclose(heavy, 25 * plain)  # key is the only local part
    assert drawn.min() < 0  # in the returns, by --weights


# ----------------------------------------------------------------------------- note or not
def test_note_chance_and_the_kl_of_the_note_choice_by_hand() -> None:
    from musegen.train.rl_credit import note_chance, note_choice_kl

    inf = float("-inf")
    # vocab of 5: tokens 1..2 are notes; state 0: P(note) 0.5, state 1: 0.2, state 2: notes only
    own = torch.log(torch.tensor([[0.25, 0.25, 0.25, 0.25, 0.0], [0.4, 0.1, 0.1, 0.4, 0.0]]))
    own = torch.cat([own, torch.tensor([[inf, 0.0, inf, inf, inf]])])
    anchor = torch.log(torch.tensor([[0.1, 0.4, 0.4, 0.1, 0.0], [0.4, 0.1, 0.1, 0.4, 0.0]]))
    anchor = torch.cat([anchor, torch.tensor([[inf, 0.0, inf, inf, inf]])])
    on, off = note_chance(own, 1, 3)
    torch.testing.assert_close(on.exp(), torch.tensor([0.5, 0.2, 1.0]))
    torch.testing.assert_close(off[:2].exp(), torch.tensor([0.5, 0.8]))
    assert off[2] == inf  # no choice: nothing but a note is allowed
    kl = note_choice_kl((on, off), note_chance(anchor, 1, 3))
    p, q = 0.5, 0.8  # state 0: a fair coin against the anchor's 0.8
    expected = p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
    torch.testing.assert_close(kl, torch.tensor([expected, 0.0, 0.0]))
    # state 1: the same chance of a note, other pitches: no KL of the choice itself


def test_expected_given_note_moves_the_pitch_never_whether_a_note() -> None:
    from musegen.train.rl_credit import expected_given_note

    logits = torch.tensor([[0.0, 1.0, -1.0, 0.5]], requires_grad=True)  # [hold, p0, p1, p2]
    logp = torch.log_softmax(logits, -1)
    probs = logp[:, 1:].exp()
    table = torch.tensor([[0.0, -3.0, -1.0]])  # p1 breaks a rule, p2 half as badly
    value = expected_given_note(probs, table)
    torch.testing.assert_close(value, (probs * table).sum(-1))  # the same value
    value.sum().backward()
    assert logits.grad is not None
    assert abs(float(logits.grad[0].sum())) < 1e-6  # softmax: grads sum to 0
    assert float(logits.grad[0, 0]) == pytest.approx(0.0, abs=1e-6)  # holding: no push
    assert logits.grad[0, 1] > 0 > logits.grad[0, 2]  # away from the rule-breaking pitch
    plain = torch.tensor([[0.0, 1.0, -1.0, 0.5]], requires_grad=True)
    lp = torch.log_softmax(plain, -1)
    (lp[:, 1:].exp() * table).sum().backward()
    assert plain.grad is not None and plain.grad[0, 0] > 0  # the plain sum pushes to holding
    # no note allowed: 0 and no NaN
    none = torch.zeros((1, 3), requires_grad=True)
    out = expected_given_note(none * 0, table)
    out.sum().backward()
    assert float(out.detach()) == 0 and torch.isfinite(none.grad).all()  # type: ignore[union-attr]


def few_notes(score: Score) -> float:
    """A toy reward that thinning earns: minus the notes a bar."""
    n = sum(len(t.notes) for t in score.tracks)
    return -n / max(score.n_bars, 1)


@pytest.mark.slow
def test_note_kl_holds_the_note_density_of_the_original(tmp_path: Path) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    chances = {}
    for weight in (0.0, 50.0):
        cfg = config(model, steps=5, lr=1e-2, credit="note", gamma=0.7, note_kl=weight)
        trainer = RLTrainer(cfg, tmp_path / f"run{weight}", rewards=[("few", few_notes)])
        trainer.fit()
        rows = [
            json.loads(r)
            for r in (tmp_path / f"run{weight}" / "log.jsonl").read_text().splitlines()
        ]
        chances[weight] = rows[-1]["note_chance"] - rows[-1]["note_chance_anchor"]
        assert ("note_kl_per_token" in rows[-1]) == (weight > 0)
    assert chances[0.0] < -0.05  # the toy reward thins the melodies
    assert abs(chances[50.0]) < abs(chances[0.0]) / 2  # the note KL holds the density


def test_per_note_candidates_and_note_kl_in_a_step_and_their_errors(tmp_path: Path) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    cfg = config(
        model, steps=1, batch_size=4, bars=1, reward="theory", candidates=True,
        per_note_candidates=True, note_kl=1.0, candidate_weights={"repetition": 100.0},
    )  # fmt: skip
    RLTrainer(cfg, tmp_path / "run").fit()
    row = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert np.isfinite(row["grad_norm"]) and row["grad_norm"] > 0
    assert 0 < row["note_chance"] < 1 and row["note_kl_per_token"] >= 0
    with pytest.raises(MusegenError, match="--candidates"):
        RLTrainer(config(model, per_note_candidates=True), tmp_path / "p")
    with pytest.raises(MusegenError, match="--credit note"):
        RLTrainer(config(model, credit="piece", note_kl=1.0), tmp_path / "n")
    with pytest.raises(MusegenError, match="--note-kl"):
        config(model, note_kl=-1.0)
