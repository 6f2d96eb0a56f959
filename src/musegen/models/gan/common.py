"""What the adversarial models share: the interface the trainer and the sampler use, and
piano-roll cells drawn from a generator's output.

A GAN model is one ``nn.Module`` holding a ``generator`` and a ``discriminator`` (a critic:
a real score, no sigmoid) as submodules, so it saves and loads like every musegen model
(:func:`musegen.models.save_model`). Interface::

    model.latent(n, generator=None) -> z [n, latent_size]         # N(0, 1) noise
    model.fake(z, cond) -> x                                        # differentiable, like the data
    model.critic(x, cond) -> [n] scores                             # higher: more real
    model.critic_features(x, cond) -> [n, d]                        # for feature matching
    model.auxiliary_loss(x, cond, margin) -> scalar                 # AC-GAN head (optional)
    model.condition(batch) -> cond                                  # a dict of tensors (maybe {})
    model.draw(x, generator=None) -> x in {0, 1}                    # binary cells
    model.stats(x) -> [n, k]                                        # per-sample statistics

**EMA of the generator** (Yazıcı et al. 2019, a standard GAN stabiliser): a model whose
config sets ``ema`` (a decay in (0, 1)) keeps a second copy of its generator,
``generator_ema``, never trained, whose weights follow the generator's by an exponential moving
average (:meth:`GanModel.update_ema`, called by the objective at every training step); in
eval mode (validation, ``best/``, sampling) :meth:`GanModel.writer` is that copy, so the
model writes with the average of its last few hundred generators instead of the last one.

A bar of a track is a grid ``[steps, pitches]``. A *monophonic* track's generator writes, at
each step, logits over its pitches and a rest; their softmax without the rest is what the
critic sees (a relaxed one-hot), and :meth:`draw` takes the argmax (or samples). A polyphonic
track's cells are independent sigmoids, drawn by MuseGAN's hard threshold at 0.5.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def cell_probs(logits: torch.Tensor, rest: torch.Tensor | None) -> torch.Tensor:
    """Cell probabilities from pitch ``logits [.., steps, P]`` and, for monophonic tracks,
    a ``rest`` logit ``[.., steps, 1]`` (softmax over P + 1, rest dropped); else sigmoids."""
    if rest is None:
        return torch.sigmoid(logits)
    return torch.softmax(torch.cat([logits, rest], -1), -1)[..., :-1]


def draw_cells(
    probs: torch.Tensor,
    monophonic: bool,
    sample: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Binary cells from probabilities ``[.., steps, P]``: monophonic tracks take the most
    likely of pitches and rest per step (``sample``: one drawn from them); polyphonic tracks
    every cell over 0.5 (``sample``: each cell a Bernoulli draw)."""
    if not monophonic:
        if sample:
            u = torch.rand(probs.shape, generator=generator, device=probs.device)
            return (u < probs).to(probs.dtype)
        return (probs > 0.5).to(probs.dtype)
    rest = (1 - probs.sum(-1, keepdim=True)).clamp_min(0)
    full = torch.cat([probs, rest], -1)
    if sample:
        flat = full.reshape(-1, full.shape[-1]).clamp_min(0) + 1e-12
        pick = torch.multinomial(flat, 1, generator=generator).view(full.shape[:-1])
    else:
        pick = full.argmax(-1)
    one_hot = torch.nn.functional.one_hot(pick, full.shape[-1]).to(probs.dtype)
    return one_hot[..., :-1]


def roll_stats(x: torch.Tensor, bar_steps: int) -> torch.Tensor:
    """Per-sample statistics of rolls ``[n, tracks, T, P]``: each track's pitch occupancy
    (``P``), its empty-bar rate and its share of steps where the cells change (``2``)."""
    n, tracks, T, P = x.shape
    pitch = x.mean(2)  # [n, tracks, P]
    bars = x.view(n, tracks, T // bar_steps, bar_steps, P).amax((3, 4))
    empty = 1 - bars.mean(-1, keepdim=True)
    change = (x[:, :, 1:] - x[:, :, :-1]).abs().amax(-1).mean(-1, keepdim=True)
    return torch.cat([pitch, empty, change], -1).reshape(n, -1)


class GanModel(nn.Module):
    """Base of the adversarial models (see the module docstring)."""

    registry_name = ""
    monophonic = True
    generator: nn.Module
    discriminator: nn.Module

    @property
    def model_name(self) -> str:
        return self.registry_name

    @property
    def latent_size(self) -> int:
        raise NotImplementedError

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        return sum(p.numel() for p in self.parameters())

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def init_ema(self, decay: float) -> None:
        """Keep an averaged copy of the generator (``decay`` 0: none)."""
        self.ema_decay = float(decay)
        if decay > 0:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)

    def writer(self) -> nn.Module:
        """The generator that writes: the averaged copy in eval mode where there is one."""
        ema = getattr(self, "generator_ema", None)
        return ema if ema is not None and not self.training else self.generator

    @torch.no_grad()
    def update_ema(self, step: int) -> None:
        """Move the averaged copy towards the generator: ``ema = d * ema + (1 - d) * g`` with
        ``d = min(decay, (1 + step) / (10 + step))`` (a short warm-up, so early steps do not
        keep the initial weights), and copy the generator's buffers (batch-norm statistics)."""
        ema = getattr(self, "generator_ema", None)
        if ema is None:
            return
        d = min(self.ema_decay, (1 + step) / (10 + step))
        for a, g in zip(ema.parameters(), self.generator.parameters(), strict=True):
            a.lerp_(g, 1.0 - d)
        for a, g in zip(ema.buffers(), self.generator.buffers(), strict=True):
            a.copy_(g)

    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent_size, generator=generator).to(self._device())

    def condition(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {}

    def fake(self, z: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def critic(self, x: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def critic_view(self, x: torch.Tensor) -> torch.Tensor:
        """Items as the critic reads them, real and generated alike (the gradient penalty's
        points between the two lie in this space); the items themselves by default."""
        return x

    def critic_features(self, x: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """The critic's last hidden features ``[n, d]``, whose means over real and fake
        batches the generator's feature-matching loss brings together."""
        raise NotImplementedError(f"{self.model_name} has no critic features")

    def auxiliary_loss(
        self, x: torch.Tensor, cond: dict[str, torch.Tensor], margin: float = 0.0
    ) -> torch.Tensor:
        """An auxiliary classifier's loss (AC-GAN): how badly the critic's head recovers the
        condition ``cond`` from ``x`` (per item ``max(0, loss - margin)``, averaged); the
        critic learns it on real items, the generator's items are asked to pass it."""
        raise NotImplementedError(f"{self.model_name} has no auxiliary classifier")

    def draw(
        self, x: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return draw_cells(x, self.monophonic, sample, generator)

    def stats(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, z: torch.Tensor, cond: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        return self.fake(z, cond or {})


def leaky() -> nn.Module:
    return nn.LeakyReLU(0.2)


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016): each sample's features ``[n, d_in]``
    are projected to ``kernels`` rows of ``width`` numbers, and for each row the sample gets
    ``sum_j exp(-L1 distance)`` to the other samples of its batch (``[n, kernels]``). A batch
    of near-copies scores high on every row, so the critic can tell a collapsed generator's
    batch from the data's, which one sample at a time it cannot."""

    def __init__(self, d_in: int, kernels: int = 16, width: int = 8) -> None:
        super().__init__()
        self.kernels, self.width = kernels, width
        self.proj = nn.Linear(d_in, kernels * width, bias=False)
        nn.init.normal_(self.proj.weight, std=0.1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        m = self.proj(h).view(len(h), self.kernels, self.width)
        dist = (m[:, None] - m[None]).abs().sum(-1)  # [n, n, kernels]
        return torch.exp(-dist).sum(1) - 1.0  # the sample itself (distance 0) left out
