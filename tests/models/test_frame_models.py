"""Frame models of piano rolls: exact normalisation, causality, sampling, checkpoints, the
Boulanger-Lewandowski protocol on hand-made rolls, training the baseline with the Trainer."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from musegen.data.training import RollDataset, collate_rolls
from musegen.metrics.frame_nll import frame_nll, marginal_nll
from musegen.models import build_model, load_model, save_model
from musegen.models.frame import FrameModel, frame_nll_objective
from musegen.train.config import TrainConfig
from musegen.train.trainer import Trainer

TRUNK = {"d_embed": 8, "d_hidden": 12, "dropout": 0.0}
TINY = {
    "bernoulli": ("frame-bernoulli", TRUNK),
    "nade-block1": (
        "rnn-nade",
        {**TRUNK, "d_key": 8, "d_cond": 3, "block": 1, "window": 2, "chord": 3},
    ),
    "nade-block4": (
        "rnn-nade",
        {**TRUNK, "d_key": 8, "d_cond": 3, "block": 4, "window": 1, "chord": 2},
    ),
    "nade-gru": ("rnn-nade", {**TRUNK, "cell": "gru", "n_layer": 2, "d_key": 6, "block": 2}),
}


def tiny(key: str, n_keys: int = 6, seed: int = 0) -> FrameModel:
    torch.manual_seed(seed)
    name, options = TINY[key]
    model = build_model(name, n_keys=n_keys, **options).eval()
    with torch.no_grad():  # larger weights than at init, so that conditionals differ a lot
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    return model  # type: ignore[return-value]


def all_frames(n_keys: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n_keys)))


# ----------------------------------------------------------------------------- the likelihood


@pytest.mark.parametrize("key", TINY)
@pytest.mark.parametrize("context", [0, 3])
def test_probabilities_of_all_frames_sum_to_one(key: str, context: int) -> None:
    """Over all 2**6 frames after a fixed context (or from the empty one) the sum is 1."""
    model = tiny(key)
    frames = all_frames(6)  # [64, 6]
    past = (torch.rand(1, context, 6, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    rolls = torch.cat([past.expand(len(frames), -1, -1), frames[:, None]], 1)
    with torch.no_grad():
        log_p = model.frame_log_prob(rolls)[:, -1].double()
    assert torch.logsumexp(log_p, 0).item() == pytest.approx(0.0, abs=1e-5)
    assert log_p.exp().std() > 1e-3  # not uniform: the test is not trivially true


@pytest.mark.parametrize("key", TINY)
def test_past_frames_do_not_see_the_future_and_padding_is_masked(key: str) -> None:
    model = tiny(key)
    g = torch.Generator().manual_seed(2)
    rolls = (torch.rand(2, 7, 6, generator=g) < 0.4).float()
    changed = rolls.clone()
    changed[:, 4:] = 1 - changed[:, 4:]
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 5:] = False
    with torch.no_grad():
        a, b = model.frame_log_prob(rolls), model.frame_log_prob(changed)
        masked = model.frame_log_prob(rolls, mask)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])
    torch.testing.assert_close(masked[mask], a[mask])
    assert (masked[~mask] == 0).all()


@pytest.mark.parametrize("key", ["bernoulli", "nade-block4"])
def test_samples_follow_the_model_probabilities(key: str) -> None:
    model = tiny(key, n_keys=3)
    frames = all_frames(3)
    with torch.no_grad():
        probs = model.frame_log_prob(frames[:, None])[:, 0].exp()
        draws = model.sample(1, batch_size=4000, generator=torch.Generator().manual_seed(3))
    index = (draws[:, 0].long() * torch.tensor([4, 2, 1])).sum(-1)  # same order as all_frames
    freq = torch.bincount(index, minlength=8).float() / len(index)
    assert (freq - probs).abs().max() < 0.03


@pytest.mark.parametrize("key", ["bernoulli", "nade-block4"])
def test_checkpoint_round_trip(key: str, tmp_path: Path) -> None:
    model = tiny(key)
    save_model(model, tmp_path / "m", {"dataset": "toy"})
    loaded, meta = load_model(tmp_path / "m")
    assert type(loaded) is type(model) and meta["dataset"] == "toy"
    assert loaded.config == model.config
    rolls = (torch.rand(2, 5, 6, generator=torch.Generator().manual_seed(4)) < 0.5).float()
    with torch.no_grad():
        torch.testing.assert_close(loaded.frame_log_prob(rolls), model.frame_log_prob(rolls))


# ----------------------------------------------------------------------------- the protocol


def fixed_bernoulli(p: list[float]) -> FrameModel:
    """A Bernoulli frame model whose keys are on with probabilities ``p`` whatever the past."""
    model = build_model("frame-bernoulli", n_keys=len(p), **TRUNK)
    with torch.no_grad():
        model.out.weight.zero_()  # type: ignore[union-attr]
        model.out.bias.copy_(torch.logit(torch.tensor(p)))  # type: ignore[union-attr]
    return model.eval()  # type: ignore[return-value]


def test_protocol_value_by_hand() -> None:
    """Two pieces (3 frames and 1 frame), keys on with p = (0.8, 0.3): the NLL is the sum over
    all 4 frames (the first of each piece included) divided by 4."""
    model = fixed_bernoulli([0.8, 0.3])
    pieces = [np.array([[1, 0], [1, 1], [0, 0]], np.uint8), np.array([[0, 1]], np.uint8)]
    # frame NLLs: -ln(.8 * .7), -ln(.8 * .3), -ln(.2 * .7), -ln(.2 * .3)
    by_hand = (0.579818495 + 1.427116356 + 1.966112856 + 2.813410717) / 4
    result = frame_nll(model, pieces)
    assert result.frames == 4 and result.pieces == 2
    assert result.nll_per_frame == pytest.approx(by_hand, abs=1e-6)
    assert result.total_nll == pytest.approx(4 * by_hand, abs=1e-5)
    # batching never changes the figure (one piece per batch here)
    assert frame_nll(model, pieces, max_batch_frames=1).nll_per_frame == pytest.approx(by_hand)


def test_marginal_nll_by_hand() -> None:
    rolls = [np.array([[1, 0], [1, 1]]), np.array([[0, 0], [1, 0]])]  # on-rates 3/4 and 1/4
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert marginal_nll(rolls) == pytest.approx(2 * h)


def test_objective_on_full_pieces_is_the_protocol_value() -> None:
    model = tiny("nade-block4")
    g = np.random.default_rng(5)
    pieces = [(g.random((n, 6)) < 0.3).astype(np.uint8) for n in (5, 2, 7)]
    batch = collate_rolls([torch.as_tensor(p, dtype=torch.float32) for p in pieces])
    with torch.no_grad():
        loss, n = frame_nll_objective(model, batch)
    assert n == 14
    assert float(loss) == pytest.approx(frame_nll(model, pieces).nll_per_frame, abs=1e-5)


# ----------------------------------------------------------------------------- training


def test_bernoulli_baseline_learns_the_key_marginals(tmp_path: Path) -> None:
    """Trained by the shared Trainer on i.i.d. frames, the baseline reaches the NLL of the
    data's own per-key on-rates (the best a context-free independent model can do)."""
    torch.set_num_threads(1)
    p = np.array([0.1, 0.5, 0.85, 0.3, 0.02, 0.6])
    g = np.random.default_rng(6)
    pieces = [(g.random((24, 6)) < p).astype(np.uint8) for _ in range(48)]
    target = marginal_nll(pieces)
    torch.manual_seed(0)
    model = build_model("frame-bernoulli", n_keys=6, d_embed=4, d_hidden=4, dropout=0.0)
    cfg = TrainConfig(
        batch_size=16, lr=0.05, warmup_steps=5, max_steps=150, weight_decay=0.0, eval_every=50,
        eval_batches=0, checkpoint_every=1000, progress=False, device="cpu", log_every=50,
    )  # fmt: skip
    data = RollDataset(pieces)
    trainer = Trainer(
        model, data, data, cfg, tmp_path, objective=frame_nll_objective, collate=collate_rolls
    )
    state = trainer.fit()
    reached = frame_nll(model, pieces).nll_per_frame
    assert state.history[-1]["valid_loss"] == pytest.approx(reached, abs=1e-4)
    assert reached == pytest.approx(target, abs=0.03)
    best, _ = load_model(tmp_path / "best")
    assert frame_nll(best, pieces).nll_per_frame == pytest.approx(state.best_valid, abs=1e-4)
