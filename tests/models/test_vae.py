"""MusicVAE: shapes, the KL, the objective's warm-up, decoding rules and saving."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latenthelpers import TINY_VAE
from musegen.errors import MusegenError
from musegen.models import build_model, load_model, save_model
from musegen.models.vae import (
    HOLD,
    REST,
    beta_at,
    kl_divergence,
    refine_latents,
    vae_objective,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("decoder,bars", [("flat", 2), ("hierarchical", 4)])
def test_shapes_and_sampling(decoder: str, bars: int) -> None:
    torch.manual_seed(0)
    model = build_model("music-vae", decoder=decoder, n_bars=bars, **TINY_VAE)
    c = model.config
    steps = torch.randint(0, c.n_classes, (3, c.n_steps))
    mu, sigma = model.encode(steps)
    assert mu.shape == sigma.shape == (3, c.latent) and (sigma > 0).all()
    assert model.logits(steps, mu).shape == (3, c.n_steps, c.n_classes)
    z = torch.randn(5, c.latent)
    a = model.sample(z, temperature=1.0, generator=torch.Generator().manual_seed(3))
    b = model.sample(z, temperature=1.0, generator=torch.Generator().manual_seed(3))
    assert a.shape == (5, c.n_steps) and torch.equal(a, b)
    # a HOLD only where a note sounds: never first, never after a rest
    for row in model.sample(z, temperature=2.0).numpy():
        assert row[0] != HOLD
        assert not ((row[1:] == HOLD) & (row[:-1] == REST)).any()


def test_hierarchical_encoder_reads_bars_then_the_row_of_bars() -> None:
    torch.manual_seed(0)
    model = build_model("music-vae", encoder="hierarchical", n_bars=4, **TINY_VAE).eval()
    steps = torch.randint(0, model.config.n_classes, (3, model.config.n_steps))
    mu, sigma = model.encode(steps)
    assert mu.shape == sigma.shape == (3, 4)
    other = steps.clone()
    other[:, 0] = (other[:, 0] + 1) % model.config.n_classes  # the first bar's first step
    assert not torch.allclose(model.encode(other)[0], mu)  # reaches the latent
    with pytest.raises(MusegenError, match="encoder"):
        build_model("music-vae", encoder="spiral")


@pytest.mark.slow
@pytest.mark.parametrize("autoregressive", [False, True])
def test_refine_latents_finds_latents_that_decode_exactly(autoregressive: bool) -> None:
    torch.manual_seed(0)
    model = build_model("music-vae", **{**TINY_VAE, "autoregressive": autoregressive}).eval()
    truth = torch.randn(6, 4)
    target = model.sample(truth, temperature=0.0)
    start = truth + 0.5 * torch.randn_like(truth)
    z, exact = refine_latents(model, target, start, iterations=200)
    assert exact.any()
    assert torch.equal(model.sample(z[exact], temperature=0.0), target[exact])
    again, _ = refine_latents(model, target, start, iterations=200)
    assert torch.equal(z, again)  # deterministic
    kept, all_exact = refine_latents(model, target, truth)
    assert all_exact.all() and torch.equal(kept, truth)  # exact rows do not move
    assert all(p.grad is None for p in model.parameters())  # the weights are not touched


def test_hierarchical_bars_read_their_own_embedding() -> None:
    """Changing bar 2's steps changes no logit of bar 1 (bars decode apart, given z)."""
    torch.manual_seed(0)
    model = build_model("music-vae", decoder="hierarchical", n_bars=2, **TINY_VAE).eval()
    steps = torch.randint(2, 10, (1, 32))
    other = steps.clone()
    other[0, 20:] = 0
    z = torch.randn(1, 4)
    assert torch.allclose(model.logits(steps, z)[:, :16], model.logits(other, z)[:, :16])


def test_segments_of_two_bars_restart_the_bar_decoder_every_two_bars() -> None:
    """``segment_bars`` 2: the conductor gives one embedding per two bars, the bar decoder
    restarts there (a change in bars 3-4 leaves bars 1-2 alone, and bar 2 reads bar 1's steps);
    the encoder reads two-bar segments first."""
    torch.manual_seed(0)
    options = {**TINY_VAE, "segment_bars": 2, "bar_tanh": False}
    model = build_model("music-vae", decoder="hierarchical", encoder="hierarchical", n_bars=4,
                        **options).eval()  # fmt: skip
    c = model.config
    assert (c.segment_steps, c.n_segments) == (32, 2)
    z = torch.randn(2, c.latent)
    assert model._conditions(z).shape == (2, 2, c.bar_embed)
    steps = torch.randint(2, 10, (2, c.n_steps))
    later, within = steps.clone(), steps.clone()
    later[:, 40:] = 0
    within[:, 5] = 0
    base = model.logits(steps, z)
    assert torch.allclose(base[:, :32], model.logits(later, z)[:, :32])
    assert not torch.allclose(base[:, 16:32], model.logits(within, z)[:, 16:32])
    assert model.sample(z, temperature=1.0).shape == (2, c.n_steps)
    assert model.encode(steps)[0].shape == (2, c.latent)
    with pytest.raises(MusegenError, match="segment_bars"):
        build_model("music-vae", n_bars=4, segment_bars=3)
    with pytest.raises(MusegenError, match="project_z"):
        build_model("music-vae", decoder="hierarchical", project_z=True)


def test_bar_tanh_and_project_z() -> None:
    """The conductor's embeddings are squashed only with ``bar_tanh``; a flat decoder with
    ``project_z`` reads ``to_bar(z)``: its decoder has the shape of a bar decoder."""
    torch.manual_seed(0)
    z = 10 * torch.randn(3, TINY_VAE["latent"])
    for bar_tanh in (True, False):
        model = build_model("music-vae", decoder="hierarchical", n_bars=2, bar_tanh=bar_tanh,
                            **TINY_VAE)  # fmt: skip
        model.to_bar.weight.data *= 100
        assert (model._conditions(z).abs().max() > 1) is not bar_tanh
    flat = build_model("music-vae", n_bars=2, project_z=True, **{**TINY_VAE, "bar_embed": 6})
    assert flat._conditions(z).shape == (3, 1, 6)
    assert flat.decoder.input_size == TINY_VAE["d_embed"] + 6
    steps = torch.randint(2, 10, (3, 32))
    assert flat.logits(steps, z).shape == (3, 32, flat.config.n_classes)
    assert flat.sample(z).shape == (3, 32)


def test_kl_and_objective() -> None:
    mu, sigma = torch.zeros(2, 4), torch.ones(2, 4)
    assert torch.allclose(kl_divergence(mu, sigma), torch.zeros(2))
    assert kl_divergence(torch.ones(1, 4), torch.ones(1, 4)).item() == pytest.approx(2.0)
    torch.manual_seed(0)
    model = build_model("music-vae", **{**TINY_VAE, "free_bits": 0.0, "beta_warmup": 4})
    assert beta_at(model.config, 0) == 0.0 and beta_at(model.config, 8) == model.config.beta
    steps = torch.randint(0, model.config.n_classes, (4, 32))
    model.train()
    loss, n = vae_objective(model, steps)
    assert n == 4 * 32 and torch.isfinite(loss) and int(model.kl_step) == 1
    model.eval()
    vae_objective(model, steps)
    assert int(model.kl_step) == 1  # evaluation does not advance the warm-up


def test_bad_config() -> None:
    with pytest.raises(MusegenError, match="decoder"):
        build_model("music-vae", decoder="spiral")
    with pytest.raises(MusegenError, match="unknown"):
        build_model("music-vae", latnet=3)


def test_save_and_load(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("music-vae", decoder="hierarchical", n_bars=2, **TINY_VAE)
    model.kl_step += 7
    save_model(model, tmp_path / "m", {"note": 1})
    loaded, meta = load_model(tmp_path / "m")
    assert meta["model"] == "music-vae" and int(loaded.kl_step) == 7
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])


def test_input_dropout_hides_previous_steps_in_training_only() -> None:
    torch.manual_seed(0)
    model = build_model("music-vae", **{**TINY_VAE, "input_dropout": 0.5})
    steps = torch.randint(2, 10, (64, 32))
    model.train()
    prev = model._previous(steps)
    hidden = (prev[:, 1:] == model.start).float().mean().item()
    assert 0.4 < hidden < 0.6  # about half the previous steps are the start symbol
    model.eval()
    assert torch.equal(model._previous(steps)[:, 1:], steps[:, :-1])
    with pytest.raises(MusegenError, match="input_dropout"):
        build_model("music-vae", input_dropout=1.0)


@pytest.mark.parametrize("decoder,bars", [("flat", 2), ("hierarchical", 2)])
def test_non_autoregressive_decoder_reads_z_only(decoder: str, bars: int) -> None:
    """``autoregressive`` false: the logits of a step do not depend on the steps before it, and
    decoding the likeliest step is the argmax of the teacher-forced logits (HOLD rule aside)."""
    torch.manual_seed(0)
    config = {**TINY_VAE, "decoder": decoder, "n_bars": bars, "autoregressive": False}
    model = build_model("music-vae", **config).eval()
    steps = torch.randint(2, 10, (2, 32))
    z = torch.randn(2, 4)
    assert torch.allclose(model.logits(steps, z), model.logits(torch.zeros_like(steps), z))
    logits = model.logits(steps, z)
    out = model.sample(z, temperature=0.0)
    sounding = torch.cat([torch.zeros(2, 1, dtype=torch.bool), out[:, :-1] != REST], dim=1)
    logits[..., HOLD] = torch.where(sounding, logits[..., HOLD], -torch.inf)
    assert torch.equal(out, logits.argmax(-1))


def test_batch_norm_mu_spreads_the_means_and_is_saved(tmp_path: Path) -> None:
    """``batch_norm_mu``: in training every latent dim of the means has mean 0 and that spread
    over the batch, even where the raw means hardly differ; evaluation uses the running
    statistics, which are saved with the weights. Off (0) by default: no new weights."""
    assert not any("mu_norm" in k for k in build_model("music-vae", **TINY_VAE).state_dict())
    torch.manual_seed(0)
    config = {**TINY_VAE, "encoder": "hierarchical", "n_bars": 4, "batch_norm_mu": 2.0}
    model = build_model("music-vae", **config).train()
    steps = torch.randint(0, model.config.n_classes, (16, model.config.n_steps))
    mu, _ = model.encode(steps)
    assert torch.allclose(mu.mean(0), torch.zeros(4), atol=1e-4)
    spread = mu.std(0, unbiased=False)  # 2, a little less where the raw spread is near eps
    assert ((spread > 1.7) & (spread <= 2.0 + 1e-4)).all()
    model.eval()
    one, _ = model.encode(steps[:1])  # one segment alone: the running statistics
    assert torch.allclose(one, model.encode(steps)[0][:1])
    save_model(model, tmp_path / "m", {})
    loaded, _ = load_model(tmp_path / "m")
    assert torch.equal(loaded.encode(steps)[0], model.encode(steps)[0])
    with pytest.raises(MusegenError, match="batch_norm_mu"):
        build_model("music-vae", batch_norm_mu=-1.0)


def test_four_voices_interleaved_hold_their_own_notes() -> None:
    """A chorale VAE writes S, A, T, B at every step: a HOLD only where the same voice
    sounded one step (four classes) before, and the teacher-forced logits read each voice
    where sampling writes it (the likeliest decoding is the argmax of its own logits)."""
    torch.manual_seed(0)
    model = build_model("music-vae", voices=4, **TINY_VAE).eval()
    c = model.config
    assert c.n_steps == 2 * 16 * 4 and c.segment_steps == 16 * 4
    assert model.num_parameters() > build_model("music-vae", **TINY_VAE).num_parameters()
    z = torch.randn(6, c.latent)
    for row in model.sample(z, temperature=2.0, generator=torch.Generator().manual_seed(1)):
        grid = row.reshape(-1, 4)
        assert not (grid[0] == HOLD).any()
        assert not ((grid[1:] == HOLD) & (grid[:-1] == REST)).any()
    best = model.sample(z, temperature=0.0)
    logits = model.logits(best, z)
    grid = best.reshape(6, -1, 4)
    sounding = torch.zeros_like(grid, dtype=torch.bool)
    sounding[:, 1:] = grid[:, :-1] != REST
    logits[..., HOLD] = torch.where(sounding.reshape(6, -1), logits[..., HOLD], -torch.inf)
    assert torch.equal(logits.argmax(-1), best)
