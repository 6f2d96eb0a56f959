"""A diffusion prior over sequences of MusicVAE latents (Mittal et al. 2021, made smaller).

A piece is a sequence of ``[L, latent]`` 2-bar latents (a ``music-vae``'s posterior means,
one per two bars). The network is a small pre-norm Transformer encoder over the sequence
(no causal mask: every latent sees every other), told the noise level by a sinusoidal
embedding of ``t`` through an MLP, and the positions by a learned table (``max_len``).

* Noise: continuous time ``t`` in [0, 1], the cosine schedule (Nichol & Dhariwal 2021) in its
  variance-preserving form: ``x_t = alpha_t x_0 + sigma_t eps`` with ``alpha_t = cos(pi t / 2)``,
  ``sigma_t = sin(pi t / 2)``.
* The network predicts ``v = alpha_t eps - sigma_t x_0`` (Salimans & Ho 2022); the loss is
  its mean squared error over the latents that are there (``mask``; shorter pieces are
  padded and the padding is masked from attention too).
* ``pace`` (off by default): the network is also told how busy the sequence is, the rank
  (0-1) of its notes a bar among the training sequences of its length
  (:func:`musegen.train.latent_diffusion.pace_ranks`), embedded as ``t`` is. Drawn
  uniformly when sampling, it gives the corpus's spread of slow and busy tunes, and one draw
  shared by every window of a long piece keeps its pace; asked for, it is a density control.
* Sampling: DDIM (Song et al. 2021) with ``eta`` 0, ``steps`` evenly spaced times:
  deterministic given the first noise. Infilling: ``known`` latents are put back at every step, noised to
  that step's level (replacement), and ``resample`` > 1 goes back and forth ``resample``
  times at each step (RePaint, Lugmayr et al. 2022) so the rest agrees with them; at the
  end the known latents are exactly what was given.

Latents are standardised with the training set's per-dimension mean and standard deviation
(buffers ``data_mean``, ``data_std``, saved with the weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from musegen.errors import MusegenError
from musegen.models.base import ModelConfig


@dataclass
class LatentDiffusionConfig(ModelConfig):
    """Config of ``"latent-diffusion"``."""

    latent: int = 64
    max_len: int = 32  # latents in the longest sequence (32: 64 bars of a 2-bar VAE)
    d_model: int = 256
    n_layer: int = 4
    n_head: int = 4
    d_ff: int = 1024
    dropout: float = 0.1
    pace: bool = False  # told each sequence's pace rank (see the module docstring)

    def validate(self) -> None:
        for name in ("latent", "max_len", "d_model", "n_layer", "n_head", "d_ff"):
            self.check(getattr(self, name) > 0, f"{name} must be positive")
        self.check(self.d_model % self.n_head == 0, "d_model must be a multiple of n_head")
        self.check(0 <= self.dropout < 1, "dropout must be in [0, 1)")


def alpha_sigma(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The cosine schedule's signal and noise scales at times ``t`` in [0, 1]."""
    return torch.cos(t * math.pi / 2), torch.sin(t * math.pi / 2)


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features ``[B, dim]`` of times ``t`` [B] in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    angles = 1000.0 * t[:, None].float() * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class LatentDiffusion(nn.Module):
    """See the module docstring."""

    model_name = "latent-diffusion"

    def __init__(self, config: LatentDiffusionConfig) -> None:
        super().__init__()
        c = self.config = config
        self.inp = nn.Linear(c.latent, c.d_model)
        self.pos = nn.Parameter(torch.randn(c.max_len, c.d_model) * 0.02)
        self.time = nn.Sequential(
            nn.Linear(c.d_model, c.d_model), nn.SiLU(), nn.Linear(c.d_model, c.d_model)
        )
        layer = nn.TransformerEncoderLayer(
            c.d_model, c.n_head, c.d_ff, c.dropout, activation="gelu", batch_first=True,
            norm_first=True,
        )  # fmt: skip
        self.blocks = nn.TransformerEncoder(layer, c.n_layer, enable_nested_tensor=False)
        if c.pace:
            self.pace_mlp = nn.Sequential(
                nn.Linear(c.d_model, c.d_model), nn.SiLU(), nn.Linear(c.d_model, c.d_model)
            )
        self.norm = nn.LayerNorm(c.d_model)
        self.out = nn.Linear(c.d_model, c.latent)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.register_buffer("data_mean", torch.zeros(c.latent))
        self.register_buffer("data_std", torch.ones(c.latent))

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        return sum(p.numel() for p in self.parameters())

    def set_statistics(self, latents: torch.Tensor) -> None:
        """Standardise with the mean and standard deviation of ``latents`` [N, latent]."""
        self.data_mean.copy_(latents.mean(0))
        self.data_std.copy_(latents.std(0).clamp_min(1e-3))

    def normalise(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.data_mean) / self.data_std

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.data_std + self.data_mean

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        mask: torch.Tensor | None = None,
        pace: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predicted ``v`` [B, L, latent] for noisy latents ``x_t`` at times ``t`` [B]
        (``pace`` [B]: the sequences' pace ranks, for a model with ``pace``)."""
        L = x_t.shape[1]
        d = self.config.d_model
        h = self.inp(x_t) + self.pos[:L] + self.time(time_embedding(t, d))[:, None]
        if self.config.pace:
            if pace is None:
                raise MusegenError("this latent-diffusion prior is told a pace: give one")
            h = h + self.pace_mlp(time_embedding(pace, d))[:, None]
        pad = None if mask is None else ~mask
        h = self.blocks(h, src_key_padding_mask=pad)
        return self.out(self.norm(h))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        length: int,
        steps: int = 50,
        known: torch.Tensor | None = None,
        known_mask: torch.Tensor | None = None,
        resample: int = 1,
        generator: torch.Generator | None = None,
        pace: torch.Tensor | None = None,
        tie: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``n`` sequences of ``length`` latents (in the VAE's units) by DDIM in ``steps``
        steps; ``known`` [n, length, latent] with ``known_mask`` [n, length] fixes latents.
        ``pace`` [n] in [0, 1], for a model with ``pace``: drawn uniformly when not given.
        ``tie`` [n, length] (indices): position ``j`` takes position ``tie[:, j]``'s state at
        every step, so tied latents come out equal (a section that returns)."""
        c = self.config
        device = self.pos.device
        x = torch.randn(n, length, c.latent, generator=generator, device=device)
        if c.pace and pace is None:
            pace = torch.rand(n, generator=generator, device=device)
        if pace is not None:
            pace = pace.to(device).float()
        if known is not None and known_mask is not None:
            x0_known = self.normalise(known.to(device).float())
            fixed = known_mask.to(device)[..., None]
        else:
            x0_known, fixed = None, None
        if tie is not None:
            index = tie.to(device)[..., None].expand(n, length, c.latent)
            x = x.gather(1, index)
        times = torch.linspace(1.0, 0.0, steps + 1, device=device)
        for i in range(steps):
            t, t_next = times[i], times[i + 1]
            for r in range(max(resample, 1)):
                if x0_known is not None:
                    a, s = alpha_sigma(t)
                    noise = torch.randn(x.shape, generator=generator, device=device)
                    x = torch.where(fixed, a * x0_known + s * noise, x)
                x_next = self._ddim_step(x, t, t_next, pace)
                if r < resample - 1:  # back to t: q(x_t | x_next) under the schedule
                    a_t, s_t = alpha_sigma(t)
                    a_n, s_n = alpha_sigma(t_next)
                    ratio = a_t / a_n
                    spread = torch.sqrt(torch.clamp(s_t**2 - (ratio * s_n) ** 2, min=0.0))
                    noise = torch.randn(x.shape, generator=generator, device=device)
                    x = ratio * x_next + spread * noise
                else:
                    x = x_next
                if tie is not None:
                    x = x.gather(1, index)
        z = self.denormalise(x)
        if known is not None and known_mask is not None:
            z = torch.where(known_mask.to(device)[..., None], known.to(device).float(), z)
        return z

    def _ddim_step(
        self, x: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor, pace: torch.Tensor | None
    ) -> torch.Tensor:
        """One deterministic DDIM step from time ``t`` to ``t_next``."""
        a, s = alpha_sigma(t)
        a_n, s_n = alpha_sigma(t_next)
        v = self(x, t.expand(x.shape[0]), pace=pace).float()
        x0 = a * x - s * v
        eps = s * x + a * v
        return a_n * x0 + s_n * eps


def diffusion_objective(
    model: nn.Module, batch: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, int]:
    """Mean squared error of the predicted ``v`` over present latents (the Trainer's loss);
    ``batch`` is (latents [B, L, latent] in the VAE's units, mask [B, L]), and for a model
    with ``pace`` the sequences' pace ranks [B]."""
    raw = getattr(model, "module", model)
    z, mask = batch[:2]
    pace = batch[2] if len(batch) > 2 else None
    x0 = raw.normalise(z.float())
    # evaluation draws the same times and noise every time, so valid losses compare
    g = None if raw.training else torch.Generator(z.device).manual_seed(0)
    t = torch.rand(z.shape[0], device=z.device, generator=g)
    a, s = (u[:, None, None] for u in alpha_sigma(t))
    eps = torch.randn(x0.shape, device=z.device, generator=g)
    x_t = a * x0 + s * eps
    v = a * eps - s * x0
    pred = model(x_t, t, mask, pace).float()
    err = F.mse_loss(pred, v, reduction="none").mean(-1)
    n = int(mask.sum())
    return (err * mask).sum() / max(n, 1), n
