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

``pitches`` > 0 makes pitch discrete: the generator writes logits over that many semitones
from MIDI ``low_pitch`` and takes the most likely one, with the softmax's gradient (a
straight-through argmax), so every note lands on a key instead of anywhere between two. Its
notes then carry that one-hot after the three features (``[.., 3 + pitches]``; the pitch
feature keeps its scale, (MIDI - 64) / 12, and :meth:`CRNNGAN.draw` keeps the three), and
the critic reads each note's pitch class as 12 flags besides the three features: from the
generator's one-hot folded by octaves (so its gradient tells pitch classes apart, which the
one number's cannot), from the rounded pitch for the data's notes.

``onset_flag`` adds a learned flag per note, "starts with the note before" (a chord), which
sets the onset gap to exactly 0 (straight-through from its sigmoid), since half the
Piano-midi notes start with the note before and neither a softplus nor, as trained, a ReLU
writes a gap of 0. ``sampled`` draws the pitch and the flag from the generator's
probabilities (the Gumbel-max trick; Gumbel and logistic noise made from normals of the
latent, so a latent fixes the notes) instead of taking the most likely. ``critic_texture``
hands the critic each sequence's share of chords and of overlapping notes (:func:`texture`).

``monophonic`` is for melodies (e.g. Essen's tunes, :func:`prepared_sequences`): its notes are
written as one line (:func:`features_to_score`: each note ends by the next one's onset), as its
data is; it trains as any other (the critic sees the features as generated).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from musegen.errors import MusegenError
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
    pitches: int = 0  # discrete pitch: semitones from low_pitch (0: one continuous number)
    low_pitch: int = 21
    onset_flag: bool = False  # a learned flag "starts with the note before" (onset gap 0)
    sampled: bool = False  # draw the pitch and the flag from their probabilities (Gumbel)
    critic_texture: bool = False  # the critic reads each sequence's share of chords and overlaps
    monophonic: bool = False  # written as one line, each note ending by the next onset

    @property
    def step_noise(self) -> int:
        """Normals per note: the LSTM's noise, then one per draw of ``sampled``."""
        return self.d_noise + (int(self.onset_flag) + self.pitches if self.sampled else 0)

    def validate(self) -> None:
        self.check(self.length >= 2, "length must be >= 2")
        self.check(min(self.d_noise, self.d_hidden, self.d_critic) >= 2, "widths must be >= 2")
        self.check(1 <= self.n_layer <= 8, "n_layer must be 1..8")
        self.check(0 <= self.minibatch <= 256, "minibatch must be 0..256")
        self.check(self.pitches >= 0 and self.low_pitch >= 0, "pitches and low_pitch >= 0")
        self.check(self.low_pitch + self.pitches <= 128, "low_pitch + pitches must be <= 128")


class CRNNGenerator(nn.Module):
    def __init__(self, c: CRNNGANConfig) -> None:
        super().__init__()
        self.c = c
        self.rnn = nn.LSTM(c.d_noise + N_FEATURES, c.d_hidden, c.n_layer, batch_first=True)
        self.out = nn.Linear(c.d_hidden, 2 + int(c.onset_flag) + (c.pitches or 1))
        values = (torch.arange(c.pitches, dtype=torch.float32) + c.low_pitch - 64) / 12
        self.register_buffer("pitch_values", values, persistent=False)

    def step(self, noise: torch.Tensor, prev: torch.Tensor, state: object) -> tuple:
        """One note from ``noise [n, step_noise]`` (the LSTM's input noise first, then, with
        ``sampled``, the normals turned into the draws' Gumbel and logistic noise)."""
        c = self.c
        h, state = self.rnn(torch.cat([noise[:, : c.d_noise], prev], -1)[:, None], state)
        y = self.out(h[:, 0])
        timing = F.relu(y[:, :2]) if c.zero_gaps else F.softplus(y[:, :2])
        u = _uniform(noise[:, c.d_noise :]) if c.sampled else None
        k = 2
        if c.onset_flag:
            logit = y[:, k]
            hard = (logit + (torch.log(u[:, 0]) - torch.log1p(-u[:, 0])) > 0 if u is not None
                    else logit > 0).to(y.dtype)  # fmt: skip
            soft = torch.sigmoid(logit)
            together = (hard - soft).detach() + soft  # straight-through
            timing = torch.cat([timing[:, :1] * (1 - together[:, None]), timing[:, 1:]], -1)
            k += 1
        if not c.pitches:
            return torch.cat([timing, y[:, k:]], -1), state
        logits = y[:, k:]
        soft = torch.softmax(logits, -1)
        score = logits - torch.log(-torch.log(u[:, -c.pitches :])) if u is not None else logits
        hard = F.one_hot(score.argmax(-1), c.pitches).to(soft.dtype)
        one_hot = (hard - soft).detach() + soft  # straight-through
        return torch.cat([timing, one_hot @ self.pitch_values[:, None], one_hot], -1), state

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        """Noise ``[n, L, step_noise]`` → notes ``[n, L, 3]`` (``[n, L, 3 + pitches]``)."""
        prev = noise.new_zeros(len(noise), N_FEATURES)
        state, notes = None, []
        for t in range(noise.shape[1]):
            note, state = self.step(noise[:, t], prev, state)
            notes.append(note)
            prev = note[:, :N_FEATURES]
        return torch.stack(notes, 1)


def _uniform(z: torch.Tensor) -> torch.Tensor:
    """Standard normals as uniforms in (0, 1) (the normal's distribution function)."""
    return (0.5 * (1 + torch.erf(z / 2**0.5))).clamp(1e-6, 1 - 1e-6)


def midi_pitch(x: torch.Tensor) -> torch.Tensor:
    """The notes' pitch feature ``x[.., 2]``, ``(MIDI - 64) / 12``, as whole MIDI numbers."""
    return torch.round(x[..., 2] * 12 + 64).long()


def pitch_class_flags(x: torch.Tensor, low_pitch: int) -> torch.Tensor:
    """Each note's pitch class as 12 flags ``[n, L, 12]``: the generator's one-hot over
    semitones from ``low_pitch`` (``x[.., 3:]``) folded by octaves, or, for notes with the
    three features alone (the data's), the rounded pitch's."""
    if x.shape[-1] > N_FEATURES:
        one_hot = x[..., N_FEATURES:]
        pc = (torch.arange(one_hot.shape[-1], device=x.device) + low_pitch) % 12
        fold = F.one_hot(pc, 12).to(x.dtype)
        return one_hot @ fold
    semis = midi_pitch(x)
    return F.one_hot(semis % 12, 12).to(x.dtype)


N_TEXTURE = 2  # shares per sequence: notes struck with the one before; struck while it sounds
TEXTURE_SCALE = 0.05  # quarter notes: how sharp the soft "at once" and "before it ends" are


def texture(notes: torch.Tensor) -> torch.Tensor:
    """Each sequence's texture ``[n, 2]`` from its notes ``[n, L, 3]`` (onset gap, length,
    pitch): the share of notes struck with the note before (onset gap 0: a chord) and the share
    struck while the note before still sounds (gap shorter than its length: polyphony), both
    soft (``exp(-gap / s)`` and ``sigmoid((length - gap) / s)``, s = 0.05 quarter) so their
    gradient reaches the generator's timing. C-RNN-GAN's sequences are all-chords or no-chords
    where the data's mix; a critic reading notes one at a time and the features' mean and
    spread does not see the share."""
    gap, length = notes[:, 1:, 0], notes[:, :-1, 1]
    together = torch.exp(-gap.clamp_min(0) / TEXTURE_SCALE)
    overlap = torch.sigmoid((length - gap) / TEXTURE_SCALE)
    return torch.stack([together.mean(1), overlap.mean(1)], -1)


class CRNNCritic(nn.Module):
    def __init__(self, c: CRNNGANConfig) -> None:
        super().__init__()
        self.classes = bool(c.pitches)
        self.low_pitch = c.low_pitch
        d_in = N_FEATURES + (12 if self.classes else 0)
        self.rnn = nn.LSTM(d_in, c.d_critic, 1, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * c.d_critic, 1)
        self.texture_out = nn.Linear(N_TEXTURE, 1) if c.critic_texture else None
        d = 2 * c.d_critic + 2 * N_FEATURES + (N_TEXTURE if c.critic_texture else 0)
        self.mbd = MinibatchDiscrimination(d, c.minibatch) if c.minibatch else None
        self.mbd_out = nn.Linear(c.minibatch, 1) if c.minibatch else None

    def read(self, x: torch.Tensor) -> torch.Tensor:
        """The LSTM's per-note outputs ``[n, L, 2 * d_critic]``."""
        if self.classes:
            return self.rnn(
                torch.cat([x[..., :N_FEATURES], pitch_class_flags(x, self.low_pitch)], -1)
            )[0]
        return self.rnn(x)[0]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-note outputs averaged over the sequence ``[n, 2 * d_critic]``."""
        return self.read(x).mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.read(x)
        score = self.out(h).mean((1, 2))
        notes = x[..., :N_FEATURES]
        parts = [h.mean(1), notes.mean(1), notes.std(1)]
        if self.texture_out is not None:
            shares = texture(notes)
            score = score + self.texture_out(shares).squeeze(-1)
            parts.append(shares)
        if self.mbd is not None and self.mbd_out is not None:
            score = score + self.mbd_out(self.mbd(torch.cat(parts, -1))).squeeze(-1)
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
        return self.config.length * self.config.step_noise

    def fake(self, z: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.generator(z.view(len(z), -1, self.config.step_noise))

    def critic(self, x: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.discriminator(x)

    def critic_features(self, x: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.discriminator.features(x)

    def critic_view(self, x: torch.Tensor) -> torch.Tensor:
        """With discrete pitch, the data's notes (three features) carry the one-hot of their
        rounded pitch, as the generator's do, so both are points of one space."""
        c = self.config
        if not c.pitches or x.shape[-1] != N_FEATURES:
            return x
        semis = midi_pitch(x) - c.low_pitch
        one_hot = F.one_hot(semis.clamp(0, c.pitches - 1), c.pitches).to(x.dtype)
        return torch.cat([x, one_hot], -1)

    def draw(
        self, x: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return x[..., :N_FEATURES]  # the note features (continuous: nothing to draw)

    def stats(self, x: torch.Tensor) -> torch.Tensor:
        """Mean and spread of each feature over a sequence: ``[n, 6]``."""
        x = x[..., :N_FEATURES]
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
            noise = torch.randn(n, c.step_noise, generator=generator).to(prev.device)
            note, state = g.step(noise, prev, state)
            prev = note[:, :N_FEATURES]
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

    return cut_sequences(
        (note_features(from_binary_roll(roll, steps_per_quarter)) for roll in rolls), length
    )


def prepared_sequences(root: str | Path, split: str, length: int) -> np.ndarray:
    """Training sequences ``[N, length, 3]`` of one split of a dataset prepared by ``musegen
    data prepare`` (any tokenizer: each piece decoded to notes), cut every ``length // 2``."""
    from musegen.data.dataset import load_prepared

    data = load_prepared(root)
    tok = data.tokenizer
    return cut_sequences((note_features(tok.decode(ids)) for ids in data.split(split)), length)


def cut_sequences(pieces: Iterable[np.ndarray], length: int) -> np.ndarray:
    """Windows of ``length`` notes every ``length // 2`` from each piece's ``[N, 3]``
    features, each window's first onset gap set to 0."""
    out = []
    for f in pieces:
        for s in range(0, len(f) - length + 1, max(length // 2, 1)):
            seq = f[s : s + length].copy()
            seq[0, 0] = 0.0
            out.append(seq)
    if not out:
        raise MusegenError(f"no piece has {length} notes: lower model_config.length")
    return np.stack(out)


def features_to_score(
    features: np.ndarray, quarters: float | None = None, tpq: int = 480, monophonic: bool = False
) -> Score:
    """Notes from ``[N, 3]`` features (onsets rounded to ticks, at least a 32nd long, pitches
    rounded into MIDI 21..108); notes starting at or after ``quarters`` are dropped.
    ``monophonic``: one line, each note ending by the next onset (of notes struck on the same
    tick, the last is kept)."""
    f = np.asarray(features, np.float64)
    start = np.cumsum(np.clip(f[:, 0], 0, None))
    start -= start[0] if len(start) else 0
    keep = start < quarters if quarters is not None else np.ones(len(f), bool)
    ticks = np.round(start[keep] * tpq).astype(np.int64)
    dur = np.maximum(np.round(np.clip(f[keep, 1], 0, None) * tpq), tpq // 8).astype(np.int64)
    pitch = np.clip(np.round(f[keep, 2] * 12 + 64), 21, 108).astype(np.int64)
    if monophonic and len(ticks):
        last = np.append(ticks[1:] != ticks[:-1], True)  # the last note struck on each tick
        ticks, dur, pitch = ticks[last], dur[last], pitch[last]
        dur[:-1] = np.minimum(dur[:-1], np.diff(ticks))
    track = Track(make_notes(ticks, dur, pitch), name="Melody" if monophonic else "Piano")
    return Score(tpq, [track], time_signatures=[TimeSignature(0, 4, 4)])
