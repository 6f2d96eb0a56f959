"""C-RNN-GAN (Mogren 2016): an LSTM generator and a bidirectional LSTM critic over notes as
continuous features.

A note is three numbers: the time since the previous note's onset and its length (both in
quarter notes) and its pitch ((MIDI - 64) / 12). The generator's input at each step is fresh
noise and its own previous output (as in the paper); its LSTM state is turned into the next
note (onset gap and length through a softplus, so never negative; with ``zero_gaps`` through
a ReLU, which reaches 0 exactly: half the Piano-midi notes start with the note before, as a
chord, which a softplus never quite writes). The critic reads the
sequence both ways and averages a score per note. The objective's default is the hinge loss
(:mod:`musegen.train.gan`; the paper used the cross-entropy loss with feature matching, an
option of the objective: the critic's features are its per-note outputs averaged over the
sequence). ``minibatch`` > 0 gives the critic that many rows of minibatch discrimination
(:class:`~musegen.models.gan.common.MinibatchDiscrimination`) over those features, plus the
sequence's own spread of each note feature, so a batch of sequences that all move in the same
rhythm is told from the data's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from musegen.models.base import ModelConfig
from musegen.models.gan.common import GanModel, MinibatchDiscrimination
from musegen.score import Score, TimeSignature, Track, make_notes

N_FEATURES = 3  # onset gap, length (quarters), pitch ((MIDI - 64) / 12)
MAX_STEPS = 4096


@dataclass
class CRNNGANConfig(ModelConfig):
    length: int = 32  # notes per training sequence
    d_noise: int = 16
    d_hidden: int = 128
    n_layer: int = 2
    d_critic: int = 64
    minibatch: int = 0  # rows of minibatch discrimination in the critic (0: none)
    zero_gaps: bool = False  # onset gap and length through a ReLU (else a softplus)

    def validate(self) -> None:
        self.check(self.length >= 2, "length must be >= 2")
        self.check(min(self.d_noise, self.d_hidden, self.d_critic) >= 2, "widths must be >= 2")
        self.check(1 <= self.n_layer <= 8, "n_layer must be 1..8")
        self.check(0 <= self.minibatch <= 256, "minibatch must be 0..256")


class CRNNGenerator(nn.Module):
    def __init__(self, c: CRNNGANConfig) -> None:
        super().__init__()
        self.c = c
        self.rnn = nn.LSTM(c.d_noise + N_FEATURES, c.d_hidden, c.n_layer, batch_first=True)
        self.out = nn.Linear(c.d_hidden, N_FEATURES)

    def step(self, noise: torch.Tensor, prev: torch.Tensor, state: object) -> tuple:
        h, state = self.rnn(torch.cat([noise, prev], -1)[:, None], state)
        y = self.out(h[:, 0])
        timing = F.relu(y[:, :2]) if self.c.zero_gaps else F.softplus(y[:, :2])
        note = torch.cat([timing, y[:, 2:]], -1)
        return note, state

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        """Noise ``[n, L, d_noise]`` → notes ``[n, L, 3]``."""
        prev = noise.new_zeros(len(noise), N_FEATURES)
        state, notes = None, []
        for t in range(noise.shape[1]):
            prev, state = self.step(noise[:, t], prev, state)
            notes.append(prev)
        return torch.stack(notes, 1)


class CRNNCritic(nn.Module):
    def __init__(self, c: CRNNGANConfig) -> None:
        super().__init__()
        self.rnn = nn.LSTM(N_FEATURES, c.d_critic, 1, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * c.d_critic, 1)
        d = 2 * c.d_critic + 2 * N_FEATURES
        self.mbd = MinibatchDiscrimination(d, c.minibatch) if c.minibatch else None
        self.mbd_out = nn.Linear(c.minibatch, 1) if c.minibatch else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-note outputs averaged over the sequence ``[n, 2 * d_critic]``."""
        return self.rnn(x)[0].mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(x)
        score = self.out(h).mean((1, 2))
        if self.mbd is not None and self.mbd_out is not None:
            summary = torch.cat([h.mean(1), x.mean(1), x.std(1)], -1)
            score = score + self.mbd_out(self.mbd(summary)).squeeze(-1)
        return score


class CRNNGAN(GanModel):
    registry_name = "crnngan"
    monophonic = False

    def __init__(self, config: CRNNGANConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = CRNNGenerator(config)
        self.discriminator = CRNNCritic(config)

    @property
    def latent_size(self) -> int:
        return self.config.length * self.config.d_noise

    def fake(self, z: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.generator(z.view(len(z), -1, self.config.d_noise))

    def critic(self, x: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.discriminator(x)

    def critic_features(self, x: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.discriminator.features(x)

    def draw(
        self, x: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return x  # notes are continuous: nothing to draw

    def stats(self, x: torch.Tensor) -> torch.Tensor:
        """Mean and spread of each feature over a sequence: ``[n, 6]``."""
        return torch.cat([x.mean(1), x.std(1)], -1)

    @torch.no_grad()
    def sample_until(
        self, n: int, quarters: float, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``n`` note sequences, each long enough to pass ``quarters`` quarter notes."""
        g, c = self.generator, self.config
        prev = torch.zeros(n, N_FEATURES, device=self._device())
        state, notes, time = None, [], torch.zeros(n)
        for _ in range(MAX_STEPS):
            noise = torch.randn(n, c.d_noise, generator=generator).to(prev.device)
            prev, state = g.step(noise, prev, state)
            notes.append(prev)
            time += prev[:, 0].cpu()
            if bool((time >= quarters).all()):
                break
        return torch.stack(notes, 1)


def note_features(score: Score) -> np.ndarray:
    """The pitched notes of ``score`` in onset order as ``[N, 3]`` features."""
    parts = [t.notes for t in score.tracks if not t.is_drum and len(t)]
    if not parts:
        return np.zeros((0, N_FEATURES), np.float32)
    notes = np.concatenate(parts)
    notes = notes[np.lexsort((notes["pitch"], notes["start"]))]
    start = notes["start"].astype(np.float64) / score.tpq
    gap = np.diff(start, prepend=start[0])
    length = notes["duration"].astype(np.float64) / score.tpq
    pitch = (notes["pitch"].astype(np.float64) - 64) / 12
    return np.stack([gap, length, pitch], 1).astype(np.float32)


def note_sequences(rolls: list[np.ndarray], steps_per_quarter: int, length: int) -> np.ndarray:
    """Training sequences ``[N, length, 3]`` from binary rolls (88 keys from MIDI 21), cut
    every ``length // 2`` notes."""
    from musegen.tokenizers.grid import from_binary_roll

    out = []
    for roll in rolls:
        f = note_features(from_binary_roll(roll, steps_per_quarter))
        for s in range(0, len(f) - length + 1, max(length // 2, 1)):
            seq = f[s : s + length].copy()
            seq[0, 0] = 0.0
            out.append(seq)
    if not out:
        raise ValueError(f"no piece has {length} notes")
    return np.stack(out)


def features_to_score(features: np.ndarray, quarters: float | None = None, tpq: int = 480) -> Score:
    """Notes from ``[N, 3]`` features (onsets rounded to ticks, at least a 32nd long, pitches
    rounded into MIDI 21..108); notes starting at or after ``quarters`` are dropped."""
    f = np.asarray(features, np.float64)
    start = np.cumsum(np.clip(f[:, 0], 0, None))
    start -= start[0] if len(start) else 0
    keep = start < quarters if quarters is not None else np.ones(len(f), bool)
    ticks = np.round(start[keep] * tpq).astype(np.int64)
    dur = np.maximum(np.round(np.clip(f[keep, 1], 0, None) * tpq), tpq // 8).astype(np.int64)
    pitch = np.clip(np.round(f[keep, 2] * 12 + 64), 21, 108).astype(np.int64)
    track = Track(make_notes(ticks, dur, pitch), name="Piano")
    return Score(tpq, [track], time_signatures=[TimeSignature(0, 4, 4)])
