"""A chord-per-beat model conditioned on a melody (the network of RL-Chord, Ji et al. 2023).

The melody is read beat by beat (a beat: one quarter note) as :data:`FEATURES` numbers: the
duration share of each pitch class in the beat, the pitch class sounding at the beat's
start, and how many beats are left before the end (0..7, 8 or more). A bidirectional GRU
reads the whole melody; a one-way LSTM then writes one chord per beat, each conditioned on the
melody around it and on the chord before it. Chords are :data:`CHORD_NAMES`: 12 roots times
major, minor and dominant seventh, and ``N`` (no chord), in C (the harmonizer moves a melody
to C major or C minor first, as the Nottingham rolls it learns from are).

``model(features, chords)`` (``[B, T, FEATURES]`` and ``[B, T]`` chord ids) gives the logits
of each beat's chord ``[B, T, CHORDS]`` given the chords before it (teacher forcing);
:meth:`ChordLSTM.sample` draws a chord sequence for each melody. ``bigram`` (a buffer,
saved with the weights) holds the log-probabilities of one chord after another in the
training corpus: the progression reward reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from musegen.models.base import LanguageModel, ModelConfig
from musegen.theory import CHORD_QUALITIES

QUALITIES = ("maj", "min", "dom7")
CHORD_NAMES = (
    *tuple(
        f"{r}{q}"
        for q in QUALITIES
        for r in ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    ),
    "N",
)
CHORDS = len(CHORD_NAMES)
NO_CHORD = CHORDS - 1
COUNTDOWN = 9  # beats-left classes: 0..7 and "8 or more"
FEATURES = 12 + 12 + COUNTDOWN


def chord_pitch_classes(chord: int) -> tuple[int, ...]:
    """The pitch classes of chord id ``chord`` (empty for ``N``)."""
    if chord == NO_CHORD:
        return ()
    quality, root = divmod(chord, 12)
    return tuple((root + k) % 12 for k in CHORD_QUALITIES[QUALITIES[quality]])


CHORD_TONES = np.zeros((CHORDS, 12), dtype=bool)
for _c in range(CHORDS):
    CHORD_TONES[_c, list(chord_pitch_classes(_c))] = True


def beat_features(pc_weights: np.ndarray, first_pc: np.ndarray) -> np.ndarray:
    """Features ``[T, FEATURES]`` of a melody's beats: ``pc_weights`` ``[T, 12]`` (duration of
    each pitch class in each beat, any unit) and ``first_pc`` ``[T]`` (the pitch class
    sounding at the beat's start, -1 for a rest)."""
    T = len(pc_weights)
    out = np.zeros((T, FEATURES), dtype=np.float32)
    total = pc_weights.sum(axis=1, keepdims=True)
    out[:, :12] = np.divide(
        pc_weights, total, out=np.zeros_like(pc_weights, dtype=float), where=total > 0
    )
    has = first_pc >= 0
    out[np.flatnonzero(has), 12 + first_pc[has]] = 1.0
    left = np.minimum(np.arange(T)[::-1], COUNTDOWN - 1)
    out[np.arange(T), 24 + left] = 1.0
    return out


@dataclass
class ChordLSTMConfig(ModelConfig):
    hidden: int = 128
    chord_dim: int = 32
    dropout: float = 0.1

    def validate(self) -> None:
        self.check(self.hidden >= 1 and self.chord_dim >= 1, "hidden and chord_dim must be >= 1")
        self.check(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")


class ChordLSTM(LanguageModel):
    """See the module docstring."""

    def __init__(self, config: ChordLSTMConfig) -> None:
        super().__init__()
        self.config = config
        h = config.hidden
        self.melody = nn.GRU(FEATURES, h // 2, batch_first=True, bidirectional=True)
        self.chord = nn.Embedding(CHORDS + 1, config.chord_dim)  # + START
        self.drop = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(h // 2 * 2 + config.chord_dim, h, batch_first=True)
        self.head = nn.Linear(h, CHORDS)
        self.register_buffer("bigram", torch.full((CHORDS + 1, CHORDS), -np.log(CHORDS)))

    @property
    def model_name(self) -> str:
        return "chord-lstm"

    def _previous(self, chords: torch.Tensor) -> torch.Tensor:
        start = torch.full_like(chords[:, :1], CHORDS)
        return torch.cat([start, chords[:, :-1]], dim=1)

    def encode(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The melody read both ways ``[B, T, hidden]``; with ``lengths`` each row is read
        to its own end (padding after it changes nothing)."""
        if lengths is None:
            return self.melody(features)[0]
        packed = nn.utils.rnn.pack_padded_sequence(
            features, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        m, _ = self.melody(packed)
        return nn.utils.rnn.pad_packed_sequence(
            m, batch_first=True, total_length=features.shape[1]
        )[0]

    def forward(  # type: ignore[override]
        self,
        features: torch.Tensor,
        chords: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, None]:
        """Logits ``[B, T, CHORDS]`` of each beat's chord given the melody and ``chords``
        before it (``lengths``: of each row, when rows are padded)."""
        if chords is None:
            raise ValueError("ChordLSTM needs the chords (teacher forcing); sample() draws them")
        m = self.encode(features, lengths)
        x = torch.cat([self.drop(m), self.chord(self._previous(chords))], dim=-1)
        h, _ = self.lstm(x)
        return self.head(self.drop(h)), None

    @torch.no_grad()
    def sample(
        self,
        features: torch.Tensor,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Chord ids ``[B, T]`` drawn beat by beat (``temperature`` 0: the likeliest)."""
        m = self.encode(features, lengths)
        B, T, _ = m.shape
        prev = torch.full((B,), CHORDS, dtype=torch.long, device=m.device)
        state = None
        out = torch.empty((B, T), dtype=torch.long, device=m.device)
        for t in range(T):
            x = torch.cat([m[:, t], self.chord(prev)], dim=-1)[:, None]
            h, state = self.lstm(x, state)
            logits = self.head(h[:, 0]).float()
            if temperature <= 0:
                prev = logits.argmax(-1)
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                prev = torch.multinomial(probs, 1, generator=generator)[:, 0]
            out[:, t] = prev
        return out
