"""``--target-kl`` / ``--rule-tilt``: the tilted target by hand, its KL's bounded gradient, the
rule table without shares, a step of a tiny model, and the settings' one-line errors."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from musegen.errors import MusegenError
from musegen.train.rl import RLTrainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_rl import config, hand_melody, tiny_melody_model

INF = float("-inf")


def test_tilted_target_moves_which_pitch_and_keeps_the_rest_of_the_anchor() -> None:
    from musegen.train.rl_credit import tilted_target

    # vocab [hold, p0, p1, p2, end]: the pitch block is tokens 1..3; end forbidden at state 0
    anchor = torch.log(torch.tensor([[0.4, 0.3, 0.2, 0.1, 0.0], [0.2, 0.2, 0.2, 0.2, 0.2]]))
    table = torch.tensor([[-math.log(3.0), 0.0, 0.0], [0.0, 0.0, 0.0]])  # p0 broken at state 0
    target = tilted_target(anchor, 1, table).exp()
    # state 0: hold kept (0.4), the pitches' 0.6 shared as 0.1 : 0.2 : 0.1 scaled to 0.6
    torch.testing.assert_close(target[0], torch.tensor([0.4, 0.15, 0.3, 0.15, 0.0]))
    torch.testing.assert_close(target[1], anchor[1].exp())  # no rule at stake: the anchor
    assert torch.isneginf(tilted_target(anchor, 1, table)[0, 4])  # still forbidden
    # no pitch allowed at all: the anchor as it is, no NaN
    holds = torch.tensor([[0.0, INF, INF, INF, INF]])
    out = tilted_target(holds, 1, torch.tensor([[-5.0, 0.0, 0.0]]))
    assert out[0, 0] == 0 and torch.isneginf(out[0, 1:]).all()


def test_forward_kl_by_hand_and_its_gradient_is_policy_minus_target() -> None:
    from musegen.train.rl_credit import forward_kl, tilted_target

    allowed = torch.tensor([[True, True, True, True, False]])
    anchor = torch.log(torch.tensor([[0.4, 0.3, 0.2, 0.1, 0.0]]))
    target = tilted_target(anchor, 1, torch.tensor([[-50.0, 0.0, 0.0]]))  # a very hard tilt
    logits = torch.tensor([[0.0, 1.0, -1.0, 0.5, 0.0]], requires_grad=True)
    logp = torch.log_softmax(logits.masked_fill(~allowed, INF), -1)
    kl = forward_kl(target, logp, allowed)
    t, p = target.exp()[0, :4], logp.exp()[0, :4]
    by_hand = (t * (t.clamp_min(1e-30).log() - p.log())).sum()
    assert float(kl.detach()) == pytest.approx(float(by_hand.detach()))
    kl.sum().backward()
    assert logits.grad is not None
    torch.testing.assert_close(logits.grad[0, :4], (p - t).detach(), atol=1e-6, rtol=1e-5)
    assert logits.grad.abs().max() <= 1  # bounded, however hard the tilt
    assert logits.grad[0, 4] == 0 and torch.isfinite(logits.grad).all()
    # the target itself: no KL
    assert float(forward_kl(target, target, allowed)) == pytest.approx(0.0, abs=1e-6)


def test_next_note_rewards_without_shares_count_each_broken_rule() -> None:
    from musegen.metrics.rewards import next_note_rewards, prefix, top_line

    line = top_line(hand_melody([60, 62, 60, 60, 60, 60, 62, 64]))  # C major
    pitches = np.array([60, 61, 62])
    after_four = prefix(line, 6)  # four Cs written: a fifth is excessive
    plain = next_note_rewards(after_four, pitches, {"repetition": 6.0, "key": 1.0}, line)
    raw = next_note_rewards(after_four, pitches, {"repetition": 6.0, "key": 1.0}, line, False)
    assert raw.tolist() == [-6.0, -1.0, 0.0]  # C repeats a fifth time; C# is out of key
    assert plain.tolist() == pytest.approx((raw / len(line)).tolist())  # shares: a note's share


def test_a_step_fits_the_rule_target_and_without_tilts_the_target_is_the_anchor(
    tmp_path: Path,
) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    cfg = config(model, steps=1, batch_size=4, bars=1, target_kl=2.0, rule_tilt={"key": 4.0})
    trainer = RLTrainer(cfg, tmp_path / "run")
    prompt, seqs = trainer.rollout(0)
    P, L = len(prompt), max(len(s) for s in seqs)
    ids = np.full((len(seqs), L), 0, dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    masks = torch.from_numpy(trainer.masks(prompt, ids))
    _, anchor = trainer.log_probs(trainer.anchor, torch.from_numpy(ids), masks, P)
    pieces = [trainer.tokenizer.decode(s) for s in seqs]
    target = trainer.rule_target(seqs, pieces, P, L - P, anchor.detach())
    lo = trainer.tokenizer.vocab.offset("pitch")
    moved = (target - anchor).abs().nan_to_num(0.0).amax(-1) > 1e-5
    assert moved.any()  # out-of-key pitches weighed down somewhere
    lo_hi = slice(lo, lo + 128)
    own_mass = torch.logsumexp(target[..., lo_hi], -1).exp()
    anchor_mass = torch.logsumexp(anchor[..., lo_hi], -1).exp()
    torch.testing.assert_close(own_mass, anchor_mass)  # the chance of a note is the anchor's
    trainer.cfg.rule_tilt = None
    assert trainer.rule_target(seqs, pieces, P, L - P, anchor) is anchor
    trainer.cfg.rule_tilt = {"key": 4.0}
    trainer.fit()
    row = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert row["target_kl_per_token"] > 0 and np.isfinite(row["grad_norm"])


@pytest.mark.slow
def test_the_rule_target_teaches_the_key(tmp_path: Path) -> None:
    from musegen.metrics.rewards import out_of_key, top_line

    model = tiny_melody_model(tmp_path / "tiny")
    cfg = config(
        model, steps=4, lr=2e-2, kl=0.0, reward="tonic", target_kl=5.0, rule_tilt={"key": 5.0}
    )
    trainer = RLTrainer(cfg, tmp_path / "run")

    def share() -> float:
        lines = [top_line(trainer.tokenizer.decode(s)) for k in (500, 501) for s in trainer.rollout(k)[1]]  # fmt: skip
        return sum(out_of_key(x) for x in lines) / max(sum(len(x) for x in lines), 1)

    before = share()
    trainer.fit()
    assert share() < 0.5 * before  # 0.27 -> 0.05 when written


def test_rule_tilt_and_target_kl_errors(tmp_path: Path) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    with pytest.raises(MusegenError, match="add it"):
        config(model, rule_tilt={"key": 1.0})
    with pytest.raises(MusegenError, match="not a part"):
        config(model, target_kl=1.0, rule_tilt={"motifs": 1.0})
    with pytest.raises(MusegenError, match=">= 0"):
        config(model, target_kl=1.0, rule_tilt={"key": -1.0})
    with pytest.raises(MusegenError, match="--target-kl"):
        config(model, target_kl=-1.0)
    with pytest.raises(MusegenError, match="--credit note"):
        RLTrainer(config(model, credit="piece", target_kl=1.0), tmp_path / "p")


# ----------------------------------------------------------------------------- repeat or not
def test_previous_pitches_and_where_the_repetition_rule_is_at_stake() -> None:
    from musegen.tokenizers import get_tokenizer
    from musegen.train.rl_credit import previous_pitches

    tok = get_tokenizer("melody", time_signatures=["4/4"], max_bars=4, pitch_range=[60, 72])
    ids = tok.encode(tok.prepare(hand_melody([64, 60, 60, 60, 60, 62])))
    start = 3  # BOS, meter, length
    previous, stake = previous_pitches(tok, ids, start, tok.decode(ids))
    pos = np.flatnonzero(tok.vocab.is_in(ids, "pitch")) - start
    assert previous[: pos[0] + 1].tolist() == [-1] * (pos[0] + 1)  # nothing written yet
    assert previous[pos[1]] == 64 and previous[pos[2]] == 60  # while choosing notes 2 and 3
    assert not stake[: pos[4] + 1].any()  # a run of three Cs: a fourth is fine
    assert stake[pos[4] + 1 : pos[5] + 1].all()  # after four Cs, until the next note
    assert not stake[pos[5] + 1 :].any()  # a D after them: a new run
    with pytest.raises(MusegenError, match="pitch tokens"):
        previous_pitches(get_tokenizer("remi"), ids, start, tok.decode(ids))


def test_repeat_choice_by_hand() -> None:
    from musegen.train.rl_credit import note_choice_kl, repeat_choice

    # vocab [hold, 128 pitches]: state 0 repeats 60 with 0.2 of a note's 0.5, state 1 has no
    # previous note, state 2 allows only the repeat
    logp = torch.full((3, 129), INF)
    logp[0, 0], logp[0, 1 + 60], logp[0, 1 + 62] = math.log(0.5), math.log(0.1), math.log(0.4)
    logp[1, 0] = 0.0
    logp[2, 1 + 67] = 0.0
    same, rest = repeat_choice(logp, 1, torch.tensor([60, -1, 67]))
    torch.testing.assert_close(same[0].exp(), torch.tensor(0.2))
    torch.testing.assert_close(rest[0].exp(), torch.tensor(0.8))
    assert torch.isneginf(same[1]) and torch.isneginf(rest[1])
    assert same[2] == 0 and torch.isneginf(rest[2])
    kl = note_choice_kl((same, rest), (same, rest))
    assert torch.isfinite(kl).all() and float(kl.abs().max()) < 1e-6


def test_a_step_with_repeat_kl_logs_both_chances_and_its_errors(tmp_path: Path) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    cfg = config(model, steps=1, batch_size=4, bars=1, repeat_kl=5.0)
    RLTrainer(cfg, tmp_path / "run").fit()
    row = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert 0 < row["repeat_chance"] < 1 and 0 < row["repeat_chance_anchor"] < 1
    assert row["repeat_kl_per_token"] >= 0 and np.isfinite(row["grad_norm"])
    with pytest.raises(MusegenError, match="--repeat-kl"):
        config(model, repeat_kl=-1.0)
    with pytest.raises(MusegenError, match="--credit note"):
        RLTrainer(config(model, credit="piece", repeat_kl=1.0), tmp_path / "p")


def test_the_repeat_kl_pulls_the_chance_of_a_repeat_back_and_leaves_the_note_chance() -> None:
    from musegen.train.rl_credit import note_choice_kl, repeat_choice

    anchor = torch.full((1, 129), INF)
    anchor[0, 0], anchor[0, 1 + 60], anchor[0, 1 + 62] = math.log(0.5), math.log(0.2), math.log(0.3)
    logits = torch.full((1, 129), INF)
    logits[0, 0], logits[0, 1 + 60], logits[0, 1 + 62] = 0.0, -1.0, 0.5  # repeats less
    logits.requires_grad_(True)
    own = repeat_choice(torch.log_softmax(logits, -1), 1, torch.tensor([60]))
    assert float(own[0].detach().exp()) < 0.4  # the anchor repeats 0.2 of its 0.5 of notes: 0.4
    kl = note_choice_kl(own, repeat_choice(anchor, 1, torch.tensor([60])))
    kl.sum().backward()
    assert logits.grad is not None
    assert logits.grad[0, 1 + 60] < 0 < logits.grad[0, 1 + 62]  # descent: more repeats
    assert abs(float(logits.grad[0, 0])) < 1e-6  # holding or not: untouched
    assert torch.isfinite(logits.grad[0, [0, 61, 63]]).all()
