"""The adversarial objective in the one trainer, and the GAN models' data (tiny fixtures)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from musegen.errors import MusegenError
from musegen.models import build_model, load_model
from musegen.train.config import TrainConfig
from musegen.train.gan import (
    AdversarialObjective,
    Items,
    ObjectiveOptions,
    collate,
    fold_into,
    melody_bars,
    satb_phrases,
)
from musegen.train.trainer import Trainer

TINY_MUSEGAN = {"n_bars": 2, "steps": 8, "n_pitches": 24, "low_pitch": 48, "d_z": 8,
                "d_hidden": 16, "d_critic": 8}  # fmt: skip


def phrases(n: int = 12) -> Items:
    rng = np.random.default_rng(0)
    x = np.zeros((n, 4, 16, 24), np.uint8)
    pitch = rng.integers(0, 24, size=(n, 4, 16))
    np.put_along_axis(x, pitch[..., None], 1, -1)
    return Items({"real": x})


def trainer_for(tmp_path, loss: str, steps: int = 3, seed: int = 0, ema: float = 0.0, **objective):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    model = build_model("musegan", **TINY_MUSEGAN, ema=ema)
    cfg = TrainConfig(
        batch_size=4, max_steps=steps, warmup_steps=0, weight_decay=0.0, eval_every=2,
        eval_batches=1, checkpoint_every=2, log_every=1, seed=seed, device="cpu",
        precision="fp32", progress=False, threads=1,
    )  # fmt: skip
    objective = AdversarialObjective(ObjectiveOptions(loss=loss, n_critic=2, **objective))
    t = Trainer(model, phrases(), phrases(4), cfg, tmp_path, objective=objective, collate=collate)
    objective.bind(t)
    return t


@pytest.mark.slow  # the first Trainer of a process imports torch's optimizer machinery
@pytest.mark.parametrize("loss", ["wgan-gp", "hinge", "bce"])
def test_both_networks_learn_and_the_log_shows_the_critic(tmp_path, loss: str) -> None:  # type: ignore[no-untyped-def]
    t = trainer_for(tmp_path, loss)
    g0 = [p.detach().clone() for p in t.raw_model.generator.parameters()]
    d0 = [p.detach().clone() for p in t.raw_model.discriminator.parameters()]
    state = t.fit()
    assert state.step == 3
    assert any(
        not torch.equal(a, b) for a, b in zip(g0, t.raw_model.generator.parameters(), strict=True)
    )
    assert any(
        not torch.equal(a, b)
        for a, b in zip(d0, t.raw_model.discriminator.parameters(), strict=True)
    )
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert any("w_distance" in r for r in rows) and any("valid_loss" in r for r in rows)
    model, _ = load_model(tmp_path / "best")
    assert model.model_name == "musegan"


@pytest.mark.slow
def test_ema_generator_follows_and_writes_in_eval_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With ``ema`` the averaged copy is never trained by the optimizer, moves towards the
    generator at every step, writes in eval mode (not in training) and is saved and loaded."""
    t = trainer_for(tmp_path, "wgan-gp", ema=0.5)
    m = t.raw_model
    assert not any(p.requires_grad for p in m.generator_ema.parameters())
    e0 = [p.detach().clone() for p in m.generator_ema.parameters()]
    t.fit()
    ema, gen = list(m.generator_ema.parameters()), list(m.generator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(e0, ema, strict=True))  # it moved
    assert any(not torch.equal(a, b) for a, b in zip(gen, ema, strict=True))  # an average
    loaded, _ = load_model(tmp_path / "checkpoint")
    for a, b in zip(loaded.generator_ema.parameters(), ema, strict=True):
        assert torch.equal(a, b)
    assert loaded.config.ema == 0.5
    z = m.latent(3)
    m.eval()
    with torch.no_grad():
        assert torch.equal(m.fake(z, {}), m.generator_ema(z))
        m.train()
        assert m.writer() is m.generator
    before = [p.detach().clone() for p in ema]
    m.update_ema(0)  # the warm-up: decay min(0.5, 1 / 10) moves 90% of the way
    for a, b, g in zip(ema, before, gen, strict=True):
        assert torch.allclose(a, 0.1 * b + 0.9 * g, atol=1e-6)
    m.update_ema(10**6)  # then the decay itself: half way
    for a, b, g in zip(ema, before, gen, strict=True):
        assert torch.allclose(a, 0.5 * (0.1 * b + 0.9 * g) + 0.5 * g, atol=1e-6)


@pytest.mark.slow
def test_same_seed_same_weights(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = trainer_for(tmp_path / "a", "wgan-gp", steps=2)
    a.fit()
    b = trainer_for(tmp_path / "b", "wgan-gp", steps=2)
    b.fit()
    for p, q in zip(a.raw_model.parameters(), b.raw_model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_gradient_penalty_meets_discrete_pitch_where_the_critic_reads() -> None:
    """With discrete pitch the generated notes carry a one-hot the data's lack; the penalty's
    points lie between the two as the critic reads them (the data's with their one-hot)."""
    from musegen.train.gan import gradient_penalty

    torch.manual_seed(0)
    model = build_model("crnngan", length=6, d_noise=4, d_hidden=8, n_layer=1, d_critic=4,
                        pitches=12, low_pitch=60)  # fmt: skip
    fake = model.fake(model.latent(3), {}).detach()
    real = fake[..., :3].clone()
    view = model.critic_view(real)
    assert torch.equal(view, fake)  # the data's one-hot is the rounded pitch's
    assert torch.equal(model.critic_view(fake), fake)
    with torch.no_grad():
        assert float(model.critic(view, {}).sum()) == pytest.approx(
            float(model.critic(real, {}).sum())
        )
    gp = gradient_penalty(model, real, fake, {})
    assert gp.dim() == 0 and bool(torch.isfinite(gp))


def test_options_are_checked() -> None:
    assert ObjectiveOptions.from_dict({}, "crnngan").loss == "hinge"
    assert ObjectiveOptions.from_dict({}, "musegan").loss == "wgan-gp"
    with pytest.raises(MusegenError, match="loss"):
        ObjectiveOptions.from_dict({"loss": "lsgan"}, "musegan")
    with pytest.raises(MusegenError, match="unknown"):
        ObjectiveOptions.from_dict({"critics": 3}, "musegan")
    with pytest.raises(MusegenError, match="feature_matching"):
        ObjectiveOptions.from_dict({"adversarial": False}, "crnngan")
    fm = ObjectiveOptions.from_dict({"feature_matching": 0.5, "adversarial": False}, "crnngan")
    assert fm.feature_matching == 0.5 and not fm.adversarial


@pytest.mark.parametrize("adversarial", [True, False])
def test_feature_matching_generator_loss(adversarial: bool) -> None:
    """The generator's loss adds the squared gap of mean critic features (real vs fake); with
    adversarial off it is that gap alone, and its gradient reaches the generator only."""
    torch.manual_seed(0)
    model = build_model("crnngan", length=6, d_noise=4, d_hidden=8, n_layer=1, d_critic=4)
    opts = ObjectiveOptions(loss="hinge", feature_matching=2.0, adversarial=adversarial)
    objective = AdversarialObjective(opts)
    real = torch.randn(5, 6, 3)
    fake = model.fake(model.latent(5), {})
    loss = objective._generator_loss(model, real, fake, {})
    with torch.no_grad():
        gap = model.critic_features(fake, {}).mean(0) - model.critic_features(real, {}).mean(0)
        want = 2.0 * (gap**2).sum() - (model.critic(fake, {}).mean() if adversarial else 0.0)
    assert float(loss.detach()) == pytest.approx(float(want), rel=1e-5)
    assert objective.last["feature_matching"] == pytest.approx(float((gap**2).sum()), rel=1e-5)


def test_satb_phrases_one_hot_and_folded() -> None:
    piece = np.array([[70, 64, 55, -1]] * 16 + [[90, 64, 55, 30]] * 16)
    x = satb_phrases([piece], n_bars=2, bar_steps=8, low=48, n_pitches=24, hop=1, stride=2)
    assert x.shape == (1, 4, 16, 24)  # 32 16ths -> 16 eighths = one phrase of 2 bars
    assert x[0, 0, 0].argmax() == 70 - 48 and x[0, 3, 0].sum() == 0  # the bass rests
    assert x[0, 0, 8].argmax() == 66 - 48  # 90 folded down two octaves
    assert fold_into(np.array([30, 90, 60]), 48, 24).tolist() == [54, 66, 60]


def test_melody_bars_chords_and_previous_bar() -> None:
    roll = np.zeros((16, 88), np.uint8)
    roll[:8, [48 - 21, 52 - 21, 55 - 21]] = 1  # bar 1: C major under
    roll[:8, 72 - 21] = 1  # melody C5
    roll[8:, [43 - 21, 47 - 21, 50 - 21]] = 1  # bar 2: G major under
    roll[8:, 74 - 21] = 1  # melody D5
    items = melody_bars([roll], bar_steps=8, low=60, n_pitches=36)
    assert items["real"].shape == (2, 1, 8, 36)
    assert items["real"][0, 0, 0].argmax() == 12 and items["real"][1, 0, 0].argmax() == 14
    assert items["prev"][0].sum() == 0 and np.array_equal(items["prev"][1], items["real"][0])
    assert np.nonzero(items["chord"][0][:12])[0].tolist() == [0, 4, 7]  # C major
    assert items["chord"][1][12 + 7] == 1  # G root


def test_auxiliary_loss_in_both_networks_losses() -> None:
    """``auxiliary`` adds the weighted chord-head loss to the generator's loss (on its bars)
    and to the critic's (on the real bars), and logs both."""
    torch.manual_seed(0)
    tiny = {"steps": 8, "n_pitches": 24, "d_z": 8, "d_hidden": 16, "d_critic": 8}
    model = build_model("midinet", **tiny, chord_head=True)
    items = melody_bars([_two_bar_roll()] * 4, bar_steps=8, low=60, n_pitches=24)
    batch = collate([Items(items)[i] for i in range(4)])
    cond = model.condition(batch)
    fake = model.fake(model.latent(4), cond)
    objective = AdversarialObjective(ObjectiveOptions(loss="hinge", auxiliary=2.0))
    loss = objective._generator_loss(model, batch["real"], fake, cond)
    with torch.no_grad():
        want = 2.0 * model.auxiliary_loss(fake, cond) - model.critic(fake, cond).mean()
    assert float(loss.detach()) == pytest.approx(float(want), rel=1e-5)
    assert objective.last["aux_fake"] > 0
    with torch.no_grad():
        aux_real = float(model.auxiliary_loss(batch["real"], cond))
    head = model.discriminator.head[-1].weight.detach().clone()
    objective.trainer = SimpleNamespace(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    objective._critic_step(model, batch)
    assert objective.last["aux_real"] == pytest.approx(aux_real, rel=1e-5)
    assert not torch.equal(head, model.discriminator.head[-1].weight)  # the critic's step
    with pytest.raises(MusegenError, match="auxiliary"):
        ObjectiveOptions.from_dict({"auxiliary": -1.0}, "midinet")


def _two_bar_roll() -> np.ndarray:
    roll = np.zeros((16, 88), np.uint8)
    roll[:8, [48 - 21, 52 - 21, 55 - 21, 72 - 21]] = 1  # C major, melody C5
    roll[8:, [43 - 21, 47 - 21, 50 - 21, 74 - 21]] = 1  # G major, melody D5
    return roll


def test_mean_matching_and_auxiliary_margin_in_the_generator_loss() -> None:
    """``mean_matching`` adds the weighted squared gap between the batch's mean real and mean
    generated bar (MidiNet's λ1); ``auxiliary_margin`` spares bars the head names under it."""
    torch.manual_seed(0)
    tiny = {"steps": 8, "n_pitches": 24, "d_z": 8, "d_hidden": 16, "d_critic": 8}
    model = build_model("midinet", **tiny, chord_head=True)
    items = melody_bars([_two_bar_roll()] * 4, bar_steps=8, low=60, n_pitches=24)
    batch = collate([Items(items)[i] for i in range(4)])
    cond, real = model.condition(batch), batch["real"]
    fake = model.fake(model.latent(4), cond)
    opts = ObjectiveOptions(loss="hinge", mean_matching=3.0, auxiliary=2.0, auxiliary_margin=0.5)
    objective = AdversarialObjective(opts)
    loss = objective._generator_loss(model, real, fake, cond)
    with torch.no_grad():
        gap = ((fake.mean(0) - real.mean(0)) ** 2).sum()
        aux = model.auxiliary_loss(fake, cond, margin=0.5)
        want = 3.0 * gap + 2.0 * aux - model.critic(fake, cond).mean()
    assert float(loss.detach()) == pytest.approx(float(want), rel=1e-5)
    assert objective.last["mean_matching"] == pytest.approx(float(gap), rel=1e-5)
    assert objective.last["aux_fake"] == pytest.approx(float(aux), rel=1e-5)
    with pytest.raises(MusegenError, match="mean_matching"):
        ObjectiveOptions.from_dict({"mean_matching": -1.0}, "midinet")
    with pytest.raises(MusegenError, match="auxiliary_margin"):
        ObjectiveOptions.from_dict({"auxiliary_margin": -0.1}, "midinet")


def test_crnngan_reads_a_prepared_melody_dataset(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from latenthelpers import tiny_dataset
    from musegen.models.gan.crnngan import prepared_sequences
    from musegen.train.gan import data_options, gan_items

    folder = tiny_dataset(tmp_path / "tunes")
    seqs = prepared_sequences(folder, "train", 4)
    assert seqs.ndim == 3 and seqs.shape[1:] == (4, 3) and len(seqs) >= 9
    assert bool((seqs[:, 0, 0] == 0).all())
    # melodies: a note ends by the next onset, and pitches sit on semitones
    assert bool((seqs[:, :-1, 1] <= seqs[:, 1:, 0] + 1e-6).all())
    assert np.allclose(seqs[..., 2] * 12, np.round(seqs[..., 2] * 12), atol=1e-4)
    model = build_model("crnngan", length=4, d_noise=4, d_hidden=8, d_critic=8, monophonic=True)
    run = {"model": "crnngan", "data": {"source": "prepared"}}
    valid = gan_items(model, data_options("crnngan", run, folder), "valid")
    assert valid.arrays["real"].shape[1:] == (4, 3)
    with pytest.raises(MusegenError, match="prepare"):
        gan_items(model, data_options("crnngan", run, None), "train")
    with pytest.raises(MusegenError, match="no piece has 400 notes"):
        prepared_sequences(folder, "train", 400)
