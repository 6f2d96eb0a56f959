"""MusicVAE (Roberts et al. 2018) for melodies and chorales: a flat and a hierarchical decoder.

A melody is a row of 16th-note *steps*, each one class: ``REST`` (0), ``HOLD`` (1, the note
before goes on) or a pitch ``low_pitch + (c - 2)`` starting (the ``melody`` tokenizer's cells,
:mod:`musegen.tokenizers.chorale`, with the pitches cut to ``n_pitches`` from ``low_pitch``;
the classes and their conversions without torch: :mod:`musegen.models.vae_steps`).
A segment is ``n_bars`` bars of ``steps_per_bar`` steps (2 bars of 16: 32 steps).
``voices`` > 1 (a four-voice chorale: the ``chorale`` tokenizer's cells): every 16th step is
that many classes, one per voice in the tokenizer's order, interleaved in one row (2 bars of
four voices: 128 classes), and a learned voice embedding is added to every class's (the
encoder's inputs and the decoder's, the decoder's saying which voice it writes next). The
flat decoder then writes a step's voices one after another, each seeing the ones before it,
as the chorale tokenizer's language model does; ``HOLD`` continues the same voice's note.

* Encoder: the steps' embeddings through a bidirectional LSTM; the two final states, joined,
  give ``mu`` and ``sigma`` (softplus) of a diagonal Gaussian over ``z`` (``latent`` dims).
  ``encoder="hierarchical"``: the bidirectional LSTM reads each bar alone (all bars at once),
  and a second bidirectional LSTM reads the bars' joined final states; its final states give
  ``mu`` and ``sigma``. A 16-bar segment is then 16 + 16 recurrent steps deep, not 256, which
  trains faster and carries a gradient from the last bar to the first.
* ``decoder="flat"``: one LSTM over every step, its state started from ``z`` and ``z`` fed at
  every step with the previous step's class (teacher forcing in training).
* ``decoder="hierarchical"``: a *conductor* LSTM, started from ``z``, gives one embedding per
  bar; a bar decoder (an LSTM started from that embedding, which it also reads at every step)
  writes the bar's steps. Its state starts afresh every bar, so it cannot ignore the latent
  over a long segment as a flat decoder can. ``segment_bars`` > 1: each of the conductor's
  embeddings covers that many bars (a "bar" of the conductor), and the hierarchical encoder
  reads segments of that length first. With ``bar_tanh`` false the embedding is linear (not
  squashed into -1..1), as a latent is: a 2-bar VAE's decoder can then serve as the bar
  decoder of a 16-bar model (the run file's ``init_parts``, :mod:`musegen.train.vae`).
* ``project_z`` (flat decoder): the decoder reads ``to_bar(z)`` (``bar_embed`` dims) instead
  of ``z``, so a flat decoder of the same shape as a hierarchical model's bar decoder, or a
  2-bar VAE's, can be compared with it from the same weights.
* ``batch_norm_mu`` > 0 (BN-VAE, Zhu et al. 2020): the encoder's means are batch-normalised
  (no learned scale) and multiplied by that number, so across a batch every latent dim varies
  with that standard deviation. A freshly initialised encoder, above all the hierarchical
  one's two LSTMs, gives nearly the same mean for every input (spread 0.01 against a sigma of
  0.7 at 16 bars): ``z`` is noise, the decoder learns to ignore it and the encoder never
  learns to inform it. Normalised, the means differ from the first step, and the KL has a
  floor (``latent * scale^2 / 2`` nats from the means), so the latent cannot collapse.
  Evaluation uses the running statistics (saved with the weights).
* ``input_dropout``: in training, that share of the decoder's previous-step inputs is
  replaced by the start symbol (word dropout), so the decoder leans on ``z``.
* ``autoregressive`` false: the decoder never reads the previous steps (every input is the
  start symbol, in training and in decoding), so each step's distribution is a function of
  ``z`` alone and decoded steps change smoothly along a path in the latent space.
* Loss (:func:`vae_objective`): cross-entropy per step plus ``beta(step) * max(KL - free_bits,
  0)`` (KL in nats per segment; ``beta`` rises linearly over ``beta_warmup`` training steps,
  counted by the model's own ``kl_step`` buffer, which is saved and resumed with the weights).

Interface::

    model.encode(steps [B, T]) -> (mu [B, D], sigma [B, D])
    model.logits(steps [B, T], z [B, D]) -> [B, T, n_classes]     # teacher-forced
    model.sample(z [B, D], temperature=1.0, generator=None) -> [B, T] classes
    vae_objective(model, steps) -> (loss, steps)                    # for the Trainer
    refine_latents(model, steps, z) -> (z, exact)                   # z that decodes to steps

:func:`refine_latents` (iterative inference, as in semi-amortized VAEs, Kim et al. 2018): the
encoder's mean is an amortized guess, and a segment it does not reconstruct often has a latent
nearby that does; a few gradient steps on ``z`` (the decoder's cross-entropy of the segment,
weights fixed) find it, and each row stops as soon as its likeliest decoding is the segment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from musegen.models.base import ModelConfig
from musegen.models.vae_steps import FIRST_PITCH, HOLD, REST

DECODERS = ("flat", "hierarchical")
ENCODERS = ("flat", "hierarchical")


@dataclass
class MusicVAEConfig(ModelConfig):
    """Config of ``"music-vae"``."""

    low_pitch: int = 43
    n_pitches: int = 54  # pitches low_pitch .. low_pitch + n_pitches - 1
    steps_per_bar: int = 16
    n_bars: int = 2
    voices: int = 1  # classes per step: 1 (a melody) or 4 (a chorale's S, A, T, B)
    segment_bars: int = 1  # hierarchical: bars per conductor step (bar decoder restart)
    decoder: str = "flat"  # "flat" | "hierarchical"
    encoder: str = "flat"  # "flat" | "hierarchical" (bars first, then the row of bars)
    d_embed: int = 32
    enc_hidden: int = 256
    dec_hidden: int = 256
    conductor_hidden: int = 256
    bar_embed: int = 128  # the conductor's embedding of a bar (hierarchical)
    bar_tanh: bool = True  # the conductor's embedding squashed by tanh (false: linear)
    project_z: bool = False  # flat decoder: reads to_bar(z) (bar_embed dims), not z
    latent: int = 64
    free_bits: float = 16.0  # nats per segment the KL may use without cost
    beta: float = 0.2
    beta_warmup: int = 500  # training steps over which beta rises from 0
    dropout: float = 0.0
    input_dropout: float = 0.0  # training: share of the decoder's previous steps hidden
    autoregressive: bool = True  # false: the decoder reads z only, never its previous steps
    batch_norm_mu: float = 0.0  # > 0: the means batch-normalised to this spread (BN-VAE)

    def validate(self) -> None:
        self.check(self.decoder in DECODERS, f"decoder must be one of {DECODERS}")
        self.check(self.encoder in ENCODERS, f"encoder must be one of {ENCODERS}")
        self.check(self.low_pitch >= 0 and self.low_pitch + self.n_pitches <= 128, "pitches 0..127")
        self.check(self.n_pitches > 0, "n_pitches must be positive")
        self.check(self.voices > 0, "voices must be positive")
        self.check(self.steps_per_bar > 0 and self.n_bars > 0, "bars and steps must be positive")
        self.check(
            self.segment_bars > 0 and self.n_bars % self.segment_bars == 0,
            "segment_bars must be positive and divide n_bars",
        )
        self.check(
            not self.project_z or self.decoder == "flat", "project_z is for the flat decoder"
        )
        for name in ("d_embed", "enc_hidden", "dec_hidden", "conductor_hidden", "bar_embed"):
            self.check(getattr(self, name) > 0, f"{name} must be positive")
        self.check(self.latent > 0, "latent must be positive")
        self.check(self.free_bits >= 0 and self.beta >= 0, "free_bits and beta must be >= 0")
        self.check(self.beta_warmup >= 0, "beta_warmup must be >= 0")
        self.check(0 <= self.dropout < 1, "dropout must be in [0, 1)")
        self.check(0 <= self.input_dropout < 1, "input_dropout must be in [0, 1)")
        self.check(self.batch_norm_mu >= 0, "batch_norm_mu must be >= 0 (0: off)")

    @property
    def n_classes(self) -> int:
        return FIRST_PITCH + self.n_pitches

    @property
    def bar_classes(self) -> int:
        """Classes in a bar (16th steps × voices)."""
        return self.steps_per_bar * self.voices

    @property
    def n_steps(self) -> int:
        """Classes in a segment."""
        return self.bar_classes * self.n_bars

    @property
    def segment_steps(self) -> int:
        """Classes a hierarchical decoder's bar decoder writes before it restarts."""
        return self.bar_classes * self.segment_bars

    @property
    def n_segments(self) -> int:
        return self.n_bars // self.segment_bars


def _state(linear: nn.Linear, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An LSTM's initial (h, c), one layer, from ``z`` through ``linear`` (to 2 * hidden)."""
    h, c = torch.tanh(linear(z)).chunk(2, dim=-1)
    return h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()


class MusicVAE(nn.Module):
    """See the module docstring."""

    model_name = "music-vae"

    def __init__(self, config: MusicVAEConfig) -> None:
        super().__init__()
        c = self.config = config
        self.embed = nn.Embedding(c.n_classes + 1, c.d_embed)  # + 1: the start symbol
        self.start = c.n_classes
        if c.voices > 1:
            self.voice_embed = nn.Embedding(c.voices, c.d_embed)
        self.encoder = nn.LSTM(c.d_embed, c.enc_hidden, batch_first=True, bidirectional=True)
        if c.encoder == "hierarchical":
            self.bar_encoder = nn.LSTM(
                2 * c.enc_hidden, c.enc_hidden, batch_first=True, bidirectional=True
            )
        self.to_mu = nn.Linear(2 * c.enc_hidden, c.latent)
        self.to_sigma = nn.Linear(2 * c.enc_hidden, c.latent)
        if c.batch_norm_mu > 0:
            self.mu_norm = nn.BatchNorm1d(c.latent, affine=False)
        self.drop = nn.Dropout(c.dropout)
        if c.decoder == "hierarchical":
            self.conductor_init = nn.Linear(c.latent, 2 * c.conductor_hidden)
            self.conductor = nn.LSTM(c.latent, c.conductor_hidden, batch_first=True)
            self.to_bar = nn.Linear(c.conductor_hidden, c.bar_embed)
            cond = c.bar_embed
        elif c.project_z:
            self.to_bar = nn.Linear(c.latent, c.bar_embed)
            cond = c.bar_embed
        else:
            cond = c.latent
        self.dec_init = nn.Linear(cond, 2 * c.dec_hidden)
        self.decoder = nn.LSTM(c.d_embed + cond, c.dec_hidden, batch_first=True)
        self.out = nn.Linear(c.dec_hidden, c.n_classes)
        self.register_buffer("kl_step", torch.zeros((), dtype=torch.long))

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        return sum(p.numel() for p in self.parameters())

    def _embed(self, classes: torch.Tensor, first: int = 0) -> torch.Tensor:
        """Embeddings of ``classes`` [B, T], the voice's added where there are several (the
        class at position ``first + t`` of a segment is voice ``(first + t) % voices``)."""
        x = self.embed(classes)
        V = self.config.voices
        if V > 1:
            at = torch.arange(first, first + classes.shape[1], device=classes.device) % V
            x = x + self.voice_embed(at)
        return x

    # ------------------------------------------------------------------ encoder
    def encode(self, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``steps`` [B, T] classes → ``mu``, ``sigma`` [B, latent]."""
        x = self.drop(self._embed(steps))
        if self.config.encoder == "hierarchical":
            B, T, _ = x.shape
            S = self.config.segment_steps
            _, (h, _) = self.encoder(x.reshape(B * (T // S), S, -1))
            x = torch.cat([h[0], h[1]], dim=-1).reshape(B, T // S, -1)
            _, (h, _) = self.bar_encoder(x)
        else:
            _, (h, _) = self.encoder(x)
        both = torch.cat([h[0], h[1]], dim=-1)
        mu = self.to_mu(both)
        if self.config.batch_norm_mu > 0:
            mu = self.config.batch_norm_mu * self.mu_norm(mu.float())
        return mu, F.softplus(self.to_sigma(both)) + 1e-4

    # ------------------------------------------------------------------ decoder
    def _conditions(self, z: torch.Tensor) -> torch.Tensor:
        """What each bar's decoder reads: ``[B, segments, cond]`` (the conductor's embeddings)
        for the hierarchical decoder, ``[B, 1, cond]`` (``z``, or ``to_bar(z)``) for the flat
        one."""
        c = self.config
        if c.decoder == "flat":
            return self._squash(self.to_bar(z)).unsqueeze(1) if c.project_z else z.unsqueeze(1)
        inputs = z.unsqueeze(1).expand(-1, c.n_segments, -1)
        h, _ = self.conductor(inputs, _state(self.conductor_init, z))
        return self._squash(self.to_bar(h))

    def _squash(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x) if self.config.bar_tanh else x

    def _previous(self, steps: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing inputs: the start symbol, then every step but the last. In training,
        each with probability ``input_dropout`` is the start symbol instead ("word dropout",
        Bowman et al. 2016): the decoder must take more from ``z`` and less from the steps
        before, which sampling gives it with their errors."""
        start = torch.full_like(steps[:, :1], self.start)
        if not self.config.autoregressive:
            return start.expand_as(steps)
        prev = torch.cat([start, steps[:, :-1]], dim=1)
        p = self.config.input_dropout
        if self.training and p > 0:
            hide = torch.rand(prev.shape, device=prev.device) < p
            prev = torch.where(hide, torch.full_like(prev, self.start), prev)
        return prev

    def logits(self, steps: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``[B, T, n_classes]`` of ``steps`` given ``z``."""
        c = self.config
        B, T = steps.shape
        cond = self._conditions(z)
        prev = self.drop(self._embed(self._previous(steps)))  # + the voice to write at t
        if c.decoder == "flat":
            x = torch.cat([prev, cond.expand(-1, T, -1)], dim=-1)
            h, _ = self.decoder(x, _state(self.dec_init, cond[:, 0]))
            return self.out(self.drop(h))
        # every bar decoded in parallel: [B * bars, segment_steps]
        S = c.segment_steps
        bars = T // S
        cond = cond[:, :bars].reshape(B * bars, -1)
        prev = prev.reshape(B * bars, S, -1)
        x = torch.cat([prev, cond.unsqueeze(1).expand(-1, S, -1)], dim=-1)
        h, _ = self.decoder(x, _state(self.dec_init, cond))
        return self.out(self.drop(h)).reshape(B, T, -1)

    def forward(self, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: logits with ``z`` drawn from the posterior, ``mu``, ``sigma``."""
        mu, sigma = self.encode(steps)
        z = mu + sigma * torch.randn_like(mu) if self.training else mu
        return self.logits(steps, z), mu, sigma

    @torch.no_grad()
    def sample(
        self,
        z: torch.Tensor,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Decode ``z`` [B, latent] step by step into classes ``[B, n_steps]``.

        ``temperature`` 0 takes the most likely class; a ``HOLD`` is never drawn where there
        is nothing to hold (a voice's first step, after a rest of that voice).
        """
        c = self.config
        B = z.shape[0]
        cond = self._conditions(z)
        out = torch.zeros(B, c.n_steps, dtype=torch.long, device=z.device)
        prev = torch.full((B, 1), self.start, dtype=torch.long, device=z.device)
        sounding = torch.zeros(B, c.voices, dtype=torch.bool, device=z.device)
        state = _state(self.dec_init, cond[:, 0]) if c.decoder == "flat" else None
        for t in range(c.n_steps):
            bar = t // c.segment_steps
            bar_cond = cond[:, 0] if c.decoder == "flat" else cond[:, bar]
            if c.decoder == "hierarchical" and t % c.segment_steps == 0:
                state = _state(self.dec_init, bar_cond)
            x = torch.cat([self._embed(prev, t), bar_cond.unsqueeze(1)], dim=-1)
            h, state = self.decoder(x, state)
            logits = self.out(h[:, 0]).float()
            voice = t % c.voices
            logits[:, HOLD] = torch.where(sounding[:, voice], logits[:, HOLD], -math.inf)
            if temperature <= 0:
                nxt = logits.argmax(-1)
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator)[:, 0]
            out[:, t] = nxt
            sounding[:, voice] = nxt != REST
            prev = nxt[:, None] if c.autoregressive else prev
        return out


def refine_latents(
    model: MusicVAE,
    steps: torch.Tensor,
    z: torch.Tensor,
    iterations: int = 100,
    lr: float = 0.05,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents near ``z`` [B, latent] whose likeliest decoding is ``steps`` [B, T] (see the
    module docstring): Adam on ``z`` alone for at most ``iterations`` steps, each row kept at
    the first point where it decodes exactly (rows that never do: the last point). Returns the
    latents and which rows decode exactly. The model should be in evaluation mode."""
    steps = steps.long()
    found = z.detach().float().clone()
    exact = torch.zeros(len(steps), dtype=torch.bool, device=steps.device)
    current = found.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([current], lr=lr)
    for i in range(iterations + 1):
        hit = (model.sample(current.detach(), temperature=0.0) == steps).all(1) & ~exact
        found[hit] = current.detach()[hit]
        exact |= hit
        if bool(exact.all()) or i == iterations:
            break
        with torch.enable_grad():
            logits = model.logits(steps, current).float()
            ce = F.cross_entropy(logits.transpose(1, 2), steps, reduction="none").sum(1)
            (current.grad,) = torch.autograd.grad((ce * (~exact).float()).sum(), [current])
        optimizer.step()
    found[~exact] = current.detach()[~exact]
    return found, exact


def kl_divergence(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per row, in nats, summed over the latent dims."""
    return 0.5 * (mu.pow(2) + sigma.pow(2) - 1).sum(-1) - torch.log(sigma).sum(-1)


def beta_at(config: MusicVAEConfig, step: int) -> float:
    """The KL weight after ``step`` training steps: linear from 0 over ``beta_warmup`` steps."""
    if config.beta_warmup <= 0:
        return config.beta
    return config.beta * min(step / config.beta_warmup, 1.0)


def vae_objective(model: nn.Module, steps: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Cross-entropy per step + beta * max(KL - free bits, 0) per step (the Trainer's loss).

    In training the KL weight follows the warm-up (and the model's step counter advances);
    in evaluation it is the final ``beta``, so valid losses compare across a run.
    """
    raw = getattr(model, "module", model)
    config: MusicVAEConfig = raw.config
    logits, mu, sigma = model(steps)
    recon = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), steps.reshape(-1))
    kl = kl_divergence(mu.float(), sigma.float()).mean()
    if raw.training:
        beta = beta_at(config, int(raw.kl_step))
        raw.kl_step += 1
    else:
        beta = config.beta
    penalty = torch.clamp(kl - config.free_bits, min=0.0) / steps.shape[1]
    return recon + beta * penalty, int(steps.numel())
