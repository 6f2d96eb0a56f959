"""Frame models of binary piano rolls: exact, normalised ``log p(frame t | frames < t)``.

A frame is a 0/1 vector over ``n_keys`` keys (88 for the piano, MIDI 21..108). Two models share
one recurrent *trunk* and differ in how a frame is drawn given the trunk state:

* ``"frame-bernoulli"`` (:class:`BernoulliFrameModel`): every key an independent sigmoid; the
  baseline ("RNN" in Boulanger-Lewandowski 2012).
* ``"rnn-nade"`` (:class:`RNNNadeModel`): the keys of a frame are drawn low to high by a
  small GRU running *over the keys* (an RNN-NADE / LSTM-NADE-style autoregressive head), a
  block of ``block`` neighbouring keys per step from a softmax over the block's ``2**block``
  on/off patterns (``block=1``: one key per step). Its input at a block is the trunk state
  through a per-block projection, the previous frame around the block (``window`` keys either
  side: is this note held, what is near it) and the ``chord`` keys just below the block,
  already drawn in this frame (intervals); a learned per-key "hold" term adds the previous
  frame directly to the logits. The frame's probability is a product of exact conditionals,
  so it sums to one over all ``2**n_keys`` frames (tested).

The trunk reads frame ``t - 1`` (a start flag instead at ``t = 0``, so the first frame is
predicted from an empty context) through a linear embedding and an LSTM/GRU; its output at
``t`` conditions frame ``t``. Interface (not the token :class:`LanguageModel` one)::

    model.frame_log_prob(rolls [B, T, K], mask [B, T] | None) -> [B, T] log-probabilities (nats)
    model.sample(n_frames, batch_size=1, generator=None) -> [B, n_frames, K] 0/1 rolls
    frame_nll_objective(model, batch) -> (mean NLL per frame, frames)   # for the Trainer

Frames where ``mask`` is False (padding) get log-probability 0 and cost no head compute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from musegen.errors import MusegenError
from musegen.models.base import ModelConfig

CELLS = ("lstm", "gru")
EVAL_CHUNK = 4096  # frames per head call when no gradient is needed (bounds memory on long pieces)
ON_RATE = 0.05  # initial probability of a key being on (piano rolls are sparse: ~4 of 88 keys)


@dataclass
class FrameConfig(ModelConfig):
    """The trunk shared by every frame model."""

    n_keys: int = 88
    cell: str = "lstm"  # "lstm" | "gru", over time
    n_layer: int = 1
    d_embed: int = 128  # frame embedding
    d_hidden: int = 256  # trunk state
    dropout: float = 0.2  # frame embedding, between layers, trunk output (and key-GRU output)

    def validate(self) -> None:
        self.check(self.cell in CELLS, f"cell must be one of {CELLS}, got {self.cell!r}")
        self.check(self.n_keys > 0, "n_keys must be positive")
        self.check(self.n_layer > 0, "n_layer must be positive")
        self.check(self.d_embed > 0 and self.d_hidden > 0, "d_embed and d_hidden must be positive")
        self.check(0 <= self.dropout < 1, "dropout must be in [0, 1)")


@dataclass
class BernoulliFrameConfig(FrameConfig):
    """Config of ``"frame-bernoulli"``: the trunk and one sigmoid per key."""


@dataclass
class RNNNadeConfig(FrameConfig):
    """Config of ``"rnn-nade"``: the trunk and a GRU over the keys of each frame."""

    d_key: int = 128  # hidden size of the GRU over keys
    d_cond: int = 16  # per-block projection of the trunk state fed to that GRU
    block: int = 4  # keys drawn jointly per GRU step (a softmax over 2**block patterns)
    window: int = 12  # previous-frame keys seen on either side of the current block
    chord: int = 12  # keys just below the current block, already drawn in this frame

    def validate(self) -> None:
        super().validate()
        self.check(self.d_key > 0 and self.d_cond > 0, "d_key and d_cond must be positive")
        self.check(1 <= self.block <= 8, "block must be in 1..8 (a softmax over 2**block)")
        self.check(self.window >= 0, "window must be >= 0")
        self.check(self.chord >= 1, "chord must be >= 1")


# ----------------------------------------------------------------------------- pieces


class FrameTrunk(nn.Module):
    """Frames ``< t`` → state ``[.., d_hidden]`` that conditions frame ``t``."""

    def __init__(self, c: FrameConfig) -> None:
        super().__init__()
        self.embed = nn.Linear(c.n_keys + 1, c.d_embed)  # + 1: the start flag
        rnn = nn.LSTM if c.cell == "lstm" else nn.GRU
        between = c.dropout if c.n_layer > 1 else 0.0
        self.rnn = rnn(c.d_embed, c.d_hidden, c.n_layer, batch_first=True, dropout=between)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, inputs: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """``inputs`` [B, T, K + 1] (previous frame, start flag) → states [B, T, H], rnn state."""
        x = self.drop(torch.relu(self.embed(inputs)))
        h, state = self.rnn(x, state)
        return self.drop(h), state


def shifted_inputs(rolls: torch.Tensor) -> torch.Tensor:
    """Trunk inputs: at ``t`` the frame ``t - 1`` and a 0 flag; at ``t = 0`` zeros and flag 1."""
    B, T, K = rolls.shape
    x = rolls.new_zeros(B, T, K + 1)
    x[:, 1:, :K] = rolls[:, :-1]
    x[:, 0, K] = 1.0
    return x


def bernoulli_log_prob(logits: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Sum over the last axis of ``log p(frames)`` under independent sigmoids."""
    return -F.binary_cross_entropy_with_logits(logits, frames, reduction="none").sum(-1)


class FrameModel(nn.Module):
    """Base of frame models: a trunk, a head scoring frames given trunk states."""

    config: FrameConfig
    registry_name = ""

    def __init__(self, config: FrameConfig) -> None:
        super().__init__()
        self.config = config
        self.trunk = FrameTrunk(config)

    @property
    def model_name(self) -> str:
        return self.registry_name

    @property
    def n_keys(self) -> int:
        return self.config.n_keys

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        return sum(p.numel() for p in self.parameters())

    # -------------------------------------------------------------- heads implement these
    def head_log_prob(
        self, states: torch.Tensor, prev: torch.Tensor, frames: torch.Tensor
    ) -> torch.Tensor:
        """``log p(frames | states, prev)`` for rows ``[N, ..]`` (prev = the frame before)."""
        raise NotImplementedError

    def head_sample(
        self, states: torch.Tensor, prev: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """One frame ``[N, K]`` drawn given trunk states ``[N, H]`` and previous frames."""
        raise NotImplementedError

    # -------------------------------------------------------------- shared
    def frame_log_prob(self, rolls: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``log p(x_t | x_<t)`` per frame, ``[B, T]``; 0 where ``mask`` is False."""
        if rolls.dim() != 3 or rolls.shape[-1] != self.n_keys:
            raise MusegenError(
                f"rolls must be [batch, time, {self.n_keys}], got {tuple(rolls.shape)}"
            )
        rolls = rolls.to(self.trunk.embed.weight.dtype)
        inputs = shifted_inputs(rolls)
        states, _ = self.trunk(inputs)
        if mask is None:
            mask = torch.ones(rolls.shape[:2], dtype=torch.bool, device=rolls.device)
        s, prev, x = states[mask], inputs[..., : self.n_keys][mask], rolls[mask]
        if torch.is_grad_enabled() or len(s) <= EVAL_CHUNK:
            lp = self.head_log_prob(s, prev, x)
        else:
            parts = [
                self.head_log_prob(
                    s[i : i + EVAL_CHUNK], prev[i : i + EVAL_CHUNK], x[i : i + EVAL_CHUNK]
                )
                for i in range(0, len(s), EVAL_CHUNK)
            ]
            lp = torch.cat(parts)
        out = rolls.new_zeros(rolls.shape[:2])
        out[mask] = lp
        return out

    def forward(self, rolls: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.frame_log_prob(rolls, mask)

    @torch.no_grad()
    def sample(
        self, n_frames: int, batch_size: int = 1, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``batch_size`` rolls of ``n_frames`` frames drawn from the model (eval mode)."""
        w = self.trunk.embed.weight
        K = self.n_keys
        rolls = w.new_zeros(batch_size, n_frames, K)
        step = w.new_zeros(batch_size, 1, K + 1)
        step[:, 0, K] = 1.0
        state = None
        for t in range(n_frames):
            h, state = self.trunk(step, state)
            frame = self.head_sample(h[:, 0], step[:, 0, :K], generator)
            rolls[:, t] = frame
            step = torch.cat([frame, frame.new_zeros(batch_size, 1)], -1)[:, None]
        return rolls


class BernoulliFrameModel(FrameModel):
    """Trunk + independent sigmoid per key (the baseline)."""

    registry_name = "frame-bernoulli"

    def __init__(self, config: BernoulliFrameConfig) -> None:
        super().__init__(config)
        self.out = nn.Linear(config.d_hidden, config.n_keys)
        nn.init.constant_(self.out.bias, math.log(ON_RATE / (1 - ON_RATE)))

    def head_log_prob(
        self, states: torch.Tensor, prev: torch.Tensor, frames: torch.Tensor
    ) -> torch.Tensor:
        return bernoulli_log_prob(self.out(states), frames)

    def head_sample(
        self, states: torch.Tensor, prev: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        p = torch.sigmoid(self.out(states))
        return (torch.rand(p.shape, generator=generator, device=p.device) < p).to(p.dtype)


class RNNNadeModel(FrameModel):
    """Trunk + autoregressive GRU over the keys of each frame (see the module docstring).

    The keys are taken in blocks of ``block`` neighbours, low to high; each GRU step draws a
    whole block from a softmax over its ``2**block`` on/off patterns, so notes inside a block
    are not assumed independent and a frame costs ``n_keys / block`` sequential steps.
    """

    registry_name = "rnn-nade"
    config: RNNNadeConfig

    def __init__(self, config: RNNNadeConfig) -> None:
        super().__init__(config)
        c = config
        self.n_blocks = -(-c.n_keys // c.block)
        self.n_patterns = 2**c.block
        self.cond = nn.Linear(c.d_hidden, self.n_blocks * c.d_cond)  # its bias: a block embedding
        self.bias = nn.Linear(c.d_hidden, self.n_blocks * self.n_patterns)  # direct path
        # per key: how much being on in the previous frame favours being on now (held notes)
        self.hold = nn.Parameter(torch.zeros(self.n_blocks * c.block))
        self.h0 = nn.Linear(c.d_hidden, c.d_key)
        d_in = c.d_cond + (2 * c.window + c.block) + c.chord
        self.key_rnn = nn.GRU(d_in, c.d_key, batch_first=True)
        self.out = nn.Linear(c.d_key, self.n_patterns)
        self.drop = nn.Dropout(c.dropout)
        bits = (torch.arange(self.n_patterns)[:, None] >> torch.arange(c.block)) & 1
        self.register_buffer("bits", bits.float(), persistent=False)  # pattern -> keys [P, b]
        # patterns that switch on a key past n_keys (in the last, padded block) are impossible
        pad = self.n_blocks * c.block - c.n_keys
        impossible = torch.zeros(self.n_blocks, self.n_patterns, dtype=torch.bool)
        impossible[-1] = bits[:, c.block - pad :].any(-1) if pad else False
        self.register_buffer("impossible", impossible, persistent=False)
        with torch.no_grad():  # start from sparse frames: log P(pattern) with keys on at ON_RATE
            on = self.bits.sum(-1)
            prior = on * math.log(ON_RATE) + (c.block - on) * math.log(1 - ON_RATE)
            self.bias.bias.copy_(prior.repeat(self.n_blocks))

    def _padded(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``[N, K]`` padded with silent keys to ``n_blocks * block``."""
        return F.pad(frames, (0, self.n_blocks * self.config.block - self.n_keys))

    def _context(self, states: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """Per-block inputs not depending on the frame drawn: ``[N, n_blocks, d_cond + 2w + b]``."""
        c = self.config
        cond = self.cond(states).view(len(states), self.n_blocks, c.d_cond)
        size = 2 * c.window + c.block
        near = F.pad(self._padded(prev), (c.window, c.window)).unfold(-1, size, c.block)
        return torch.cat([cond, near], -1)

    def _below(self, frames: torch.Tensor) -> torch.Tensor:
        """The ``chord`` keys just below each block in ``frames``: ``[N, n_blocks, chord]``."""
        c = self.config
        lower = self._padded(frames)[:, : (self.n_blocks - 1) * c.block]
        return F.pad(lower, (c.chord, 0)).unfold(-1, c.chord, c.block)[:, : self.n_blocks]

    def _logits(
        self, states: torch.Tensor, prev: torch.Tensor, h: torch.Tensor, first: int
    ) -> torch.Tensor:
        """Pattern logits ``[N, n, 2**block]`` of blocks ``first ..`` from GRU outputs ``h``."""
        c, n = self.config, h.shape[1]
        keys = slice(first * c.block, (first + n) * c.block)
        held = (self._padded(prev)[:, keys] * self.hold[keys]).view(len(prev), n, c.block)
        bias = self.bias(states).view(len(states), self.n_blocks, self.n_patterns)
        logits = self.out(self.drop(h)) + bias[:, first : first + n] + held @ self.bits.T
        return logits.masked_fill(self.impossible[first : first + n], float("-inf"))

    def head_log_prob(
        self, states: torch.Tensor, prev: torch.Tensor, frames: torch.Tensor
    ) -> torch.Tensor:
        c = self.config
        x = torch.cat([self._context(states, prev), self._below(frames)], -1)
        h, _ = self.key_rnn(x, torch.tanh(self.h0(states))[None])
        logp = torch.log_softmax(self._logits(states, prev, h, 0), -1)
        blocks = self._padded(frames).view(len(frames), self.n_blocks, c.block)
        index = (blocks.long() << torch.arange(c.block, device=frames.device)).sum(-1)
        return logp.gather(-1, index[..., None]).squeeze(-1).sum(-1)

    def head_sample(
        self, states: torch.Tensor, prev: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        c = self.config
        context = self._context(states, prev)
        h = torch.tanh(self.h0(states))[None]
        frame = states.new_zeros(len(states), self.n_blocks * c.block)
        for j in range(self.n_blocks):
            below = F.pad(frame[:, : j * c.block], (c.chord, 0))[:, -c.chord :]
            y, h = self.key_rnn(torch.cat([context[:, j], below], -1)[:, None], h)
            probs = torch.softmax(self._logits(states, prev, y, j)[:, 0], -1)
            pattern = torch.multinomial(probs, 1, generator=generator)[:, 0]
            frame[:, j * c.block : (j + 1) * c.block] = self.bits[pattern]
        return frame[:, : self.n_keys]


def frame_nll_objective(
    model: nn.Module, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, int]:
    """Mean NLL (nats) per real frame of a ``collate_rolls`` batch, and the frame count.

    The Trainer's ``evaluate`` weights batches by that count, so on full pieces it returns the
    protocol figure: total NLL over all frames / number of frames.
    """
    mask = batch["mask"]
    lp = model(batch["rolls"], mask)
    n = int(mask.sum())
    return -lp.sum() / max(n, 1), n
