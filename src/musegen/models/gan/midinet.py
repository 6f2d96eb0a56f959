"""MidiNet (Yang, Chou and Yang 2017): a convolutional GAN writing a melody bar by bar,
conditioned on the bar's chord and on the bar before.

A bar is ``[1, steps, pitches]`` with one note or a rest per step. The generator maps noise
and the chord (1-D condition: the chord's pitch classes and its root, 24 numbers) through a
linear layer and transposed convolutions over time; a *conditioner* CNN reads the previous
bar (2-D condition) and its feature maps at each resolution are concatenated to the
generator's, with the chord broadcast over every layer, as in the paper. The critic reads the
bar through per-octave and per-step convolutions and judges it together with the chord, the
bar's chroma and the chroma weighted by the chord's pitch classes. The paper trained with the
cross-entropy GAN loss plus feature matching; we use WGAN-GP (:mod:`musegen.train.gan`), with
feature matching as an option of the objective.

``full_pitch`` makes the generator's last layer write the whole pitch range from one column
(a transposed convolution of width ``n_pitches``, as the paper's), and the conditioner read
the bar before the same way; off, both work per octave (kernels of 12 over octave columns
that no layer after the first mixes, so the generator places a note's octave step by step
with little coordination: melodies leap between registers more than the data's).

``piece_noise`` is how the model is sampled (:mod:`musegen.sampling.gan`): one noise draw for
every bar of a piece instead of a fresh one per bar. Each bar is trained alone with noise
from N(0, 1), which either way each bar's noise is; sharing it makes a piece's bars share
what the noise decides, their pace above all, as a tune's bars do.

Options of the critic (off by default, as the first shipped model was trained):
``critic_onsets`` also hands it, per step, how much the cells change from the step before (its
convolutions pair steps 0-1, 2-3, .. and never see a note begin between the pairs);
``projection`` adds the inner product of a learned embedding of the chord with its hidden
features to its score (Miyato and Koyama 2018: the condition enters the score directly);
``minibatch`` gives it that many rows of minibatch discrimination
(:class:`~musegen.models.gan.common.MinibatchDiscrimination`) over its hidden features.

``critic_presence`` also hands the critic which pitch classes the bar uses at all
(:meth:`MidiNetCritic.presence`): the chroma weighs them by time, so a short passing tone,
which the data's melodies have and a melody kept on its chord's tones lacks, hardly shows in
it; this is what MuseGAN's "used pitch classes" counts.

``chord_head`` gives the critic an auxiliary classifier (AC-GAN, Odena et al. 2017): from the
bar alone (its per-octave and per-step maps and its chroma, never the chord it was given) it
names the chord, one of :func:`chord_classes` (12 roots × the qualities of
:data:`musegen.theory.CHORD_QUALITIES`). The objective's ``auxiliary`` weight trains it on
the real bars' chords and asks the generator's bars to be named as the chord they were
conditioned on (:meth:`MidiNet.auxiliary_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from musegen.models.base import ModelConfig
from musegen.models.gan.common import (
    GanModel,
    MinibatchDiscrimination,
    cell_probs,
    leaky,
    roll_stats,
)

CHORD_SIZE = 24  # pitch classes of the chord (12) + its root (12)


def chord_vector(root: int | None, pitch_classes: frozenset[int] | set[int]) -> np.ndarray:
    """The 1-D condition of one bar: 12 pitch-class flags and a one-hot root (zeros: no chord)."""
    v = np.zeros(CHORD_SIZE, np.float32)
    if root is None:
        return v
    v[list(pitch_classes)] = 1.0
    v[12 + root % 12] = 1.0
    return v


def chord_classes() -> np.ndarray:
    """The chord vectors of every root and quality ``[12 * qualities, 24]`` (C maj, C min, ..,
    then C#), the classes the critic's chord head names."""
    from musegen.theory import CHORD_QUALITIES

    return np.stack(
        [
            chord_vector(root, {(root + i) % 12 for i in intervals})
            for root in range(12)
            for intervals in CHORD_QUALITIES.values()
        ]
    )


@dataclass
class MidiNetConfig(ModelConfig):
    steps: int = 8  # per bar (a multiple of 4)
    n_pitches: int = 36  # a multiple of 12
    low_pitch: int = 60
    steps_per_quarter: int = 2
    d_z: int = 64
    d_hidden: int = 128
    d_critic: int = 64
    full_pitch: bool = False
    critic_onsets: bool = False
    projection: bool = False
    minibatch: int = 0  # rows of minibatch discrimination in the critic (0: none)
    piece_noise: bool = False  # generate: one noise draw for all bars of a piece (else per bar)
    chord_head: bool = False  # the critic also names the bar's chord from the bar alone
    critic_presence: bool = False  # the critic also reads which pitch classes the bar uses

    def validate(self) -> None:
        self.check(self.steps >= 4 and self.steps % 4 == 0, "steps must be a multiple of 4")
        self.check(0 <= self.minibatch <= 256, "minibatch must be 0..256")
        self.check(self.n_pitches >= 12 and self.n_pitches % 12 == 0, "n_pitches: 12, 24, ..")
        self.check(self.low_pitch >= 0 and self.low_pitch + self.n_pitches <= 128, "pitch range")
        self.check(self.steps_per_quarter >= 1, "steps_per_quarter must be >= 1")
        self.check(min(self.d_z, self.d_hidden, self.d_critic) >= 4, "widths must be >= 4")


class Conditioner(nn.Module):
    """The previous bar → feature maps at the generator's three resolutions."""

    def __init__(self, c: MidiNetConfig) -> None:
        super().__init__()
        w = c.d_hidden // 4
        span = c.n_pitches if c.full_pitch else 12
        self.c1 = nn.Sequential(nn.Conv2d(1, w, (1, span), (1, span)), leaky())  # [w, S, cols]
        self.c2 = nn.Sequential(nn.Conv2d(w, w, (2, 1), (2, 1)), leaky())  # [w, S/2, oct]
        self.c3 = nn.Sequential(nn.Conv2d(w, w, (2, 1), (2, 1)), leaky())  # [w, S/4, oct]

    def forward(self, prev: torch.Tensor) -> list[torch.Tensor]:
        h1 = self.c1(prev)
        h2 = self.c2(h1)
        return [self.c3(h2), h2, h1]


class MidiNetGenerator(nn.Module):
    def __init__(self, c: MidiNetConfig) -> None:
        super().__init__()
        self.c = c
        h, w = c.d_hidden, c.d_hidden // 4
        cols, span = (1, c.n_pitches) if c.full_pitch else (c.n_pitches // 12, 12)
        self.shape = (h, c.steps // 4, cols)
        self.fc = nn.Sequential(
            nn.Linear(c.d_z + CHORD_SIZE, h * c.steps // 4 * cols),
            nn.BatchNorm1d(h * c.steps // 4 * cols),
            nn.ReLU(),
        )
        k = w + CHORD_SIZE  # conditioner maps and the broadcast chord, concatenated
        self.up1 = nn.Sequential(
            nn.ConvTranspose2d(h + k, h // 2, (2, 1), (2, 1)), nn.BatchNorm2d(h // 2), nn.ReLU()
        )
        self.up2 = nn.Sequential(
            nn.ConvTranspose2d(h // 2 + k, h // 4, (2, 1), (2, 1)),
            nn.BatchNorm2d(h // 4),
            nn.ReLU(),
        )
        self.pitch = nn.ConvTranspose2d(h // 4 + k, 1, (1, span), (1, span))
        self.rest = nn.Conv2d(h // 4 + k, 1, (1, cols))
        self.conditioner = Conditioner(c)

    def forward(self, z: torch.Tensor, chord: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        maps = self.conditioner(prev)

        def join(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
            ch = chord[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            return torch.cat([x, m, ch], 1)

        x = self.fc(torch.cat([z, chord], -1)).view(len(z), *self.shape)
        x = self.up1(join(x, maps[0]))
        x = self.up2(join(x, maps[1]))
        x = join(x, maps[2])
        return cell_probs(self.pitch(x), self.rest(x))  # [n, 1, steps, P]


class MidiNetCritic(nn.Module):
    def __init__(self, c: MidiNetConfig) -> None:
        super().__init__()
        self.c = c
        w, octaves = c.d_critic, c.n_pitches // 12
        self.roll = nn.Sequential(
            nn.Conv2d(1, w, (1, 12), (1, 12)),
            leaky(),
            nn.Conv2d(w, w, (1, octaves)),  # [w, S, 1]
            leaky(),
            nn.Conv2d(w, 2 * w, (2, 1), (2, 1)),  # [2w, S/2, 1]
            leaky(),
        )
        d = 2 * w * (c.steps // 2) + CHORD_SIZE + 12 + 12 + (c.steps if c.critic_onsets else 0)
        d += 12 if c.critic_presence else 0
        self.out = nn.Sequential(nn.Linear(d, 4 * w), leaky(), nn.Linear(4 * w, 1))
        self.project = nn.Linear(CHORD_SIZE, 4 * w, bias=False) if c.projection else None
        self.mbd = MinibatchDiscrimination(4 * w, c.minibatch) if c.minibatch else None
        self.mbd_out = nn.Linear(c.minibatch, 1) if c.minibatch else None
        d_bar = 2 * w * (c.steps // 2) + 12
        n_classes = len(chord_classes())
        self.head = (
            nn.Sequential(nn.Linear(d_bar, 4 * w), leaky(), nn.Linear(4 * w, n_classes))
            if c.chord_head
            else None
        )

    def _by_octave(self, x: torch.Tensor) -> torch.Tensor:
        """The bars ``x`` as ``[n, steps, octaves, 12]``."""
        return x.view(len(x), self.c.steps, self.c.n_pitches // 12, 12)

    def chroma(self, x: torch.Tensor) -> torch.Tensor:
        return self._by_octave(x).mean((1, 2))

    def presence(self, x: torch.Tensor) -> torch.Tensor:
        """How surely each pitch class sounds somewhere in the bar ``[n, 12]``: the largest
        probability over steps of the pitch class (octaves summed); 0/1 for drawn bars."""
        return self._by_octave(x).sum(2).amax(1)

    def chord_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The auxiliary classifier's logits over :func:`chord_classes` ``[n, classes]``,
        from the bar alone."""
        if self.head is None:
            raise ValueError("this critic has no chord head (model_config.chord_head)")
        return self.head(torch.cat([self.roll(x).reshape(len(x), -1), self.chroma(x)], -1))

    def features(self, x: torch.Tensor, chord: torch.Tensor) -> torch.Tensor:
        """The hidden features the score is read from ``[n, 4 * d_critic]``."""
        n, c = len(x), self.c
        chroma = self.chroma(x)
        fit = chroma * chord[:, :12]
        parts = [self.roll(x).reshape(n, -1), chord, chroma, fit]
        if c.critic_onsets:
            before = torch.cat([torch.zeros_like(x[:, :, :1]), x[:, :, :-1]], 2)
            parts.append(0.5 * (x - before).abs().sum(-1)[:, 0])  # [n, steps]
        if c.critic_presence:
            parts.append(self.presence(x))
        return self.out[:2](torch.cat(parts, -1))

    def forward(self, x: torch.Tensor, chord: torch.Tensor) -> torch.Tensor:
        h = self.features(x, chord)
        score = self.out[2](h).squeeze(-1)
        if self.project is not None:
            score = score + (self.project(chord) * h).sum(-1)
        if self.mbd is not None and self.mbd_out is not None:
            score = score + self.mbd_out(self.mbd(h)).squeeze(-1)
        return score


class MidiNet(GanModel):
    registry_name = "midinet"
    monophonic = True

    def __init__(self, config: MidiNetConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = MidiNetGenerator(config)
        self.discriminator = MidiNetCritic(config)
        classes = torch.from_numpy(chord_classes()) if config.chord_head else torch.zeros(0)
        self.register_buffer("classes", classes, persistent=False)

    @property
    def latent_size(self) -> int:
        return self.config.d_z

    def condition(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"chord": batch["chord"], "prev": batch["prev"]}

    def fake(self, z: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.generator(z, cond["chord"], cond["prev"])

    def critic(self, x: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.discriminator(x, cond["chord"])

    def critic_features(self, x: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.discriminator.features(x, cond["chord"])

    def auxiliary_loss(
        self, x: torch.Tensor, cond: dict[str, torch.Tensor], margin: float = 0.0
    ) -> torch.Tensor:
        """How badly the critic's chord head names the conditioning chord from the bars ``x``:
        cross-entropy over :func:`chord_classes`, less ``margin`` and at least 0 per bar,
        averaged over the bars whose chord is one of them (0 if none is)."""
        match = (cond["chord"][:, None, :] == self.classes[None]).all(-1)  # [n, classes]
        has = match.any(-1)
        if not bool(has.any()):
            return x.new_zeros(())
        logits = self.discriminator.chord_logits(x[has])
        ce = F.cross_entropy(logits, match[has].to(x.dtype).argmax(-1), reduction="none")
        return (ce - margin).clamp_min(0).mean()

    def stats(self, x: torch.Tensor) -> torch.Tensor:
        return roll_stats(x, self.config.steps)
