"""Recurrent language model: LSTM or GRU (registry names ``"lstm"`` and ``"gru"``).

embedding → dropout → stacked ``nn.LSTM``/``nn.GRU`` → layer norm (optional) → dropout →
(projection) → output layer. With ``tie_embeddings`` the output layer reuses the embedding
matrix; when ``d_hidden != d_embed`` a bias-free projection ``d_hidden → d_embed`` comes first.

The cache for incremental decoding is the recurrent state plus a position count, so decoding
costs the same per token however long the sequence is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from musegen.errors import MusegenError
from musegen.models.base import LanguageModel, ModelConfig

CELLS = ("lstm", "gru")


@dataclass
class RNNConfig(ModelConfig):
    """Hyper-parameters of :class:`RNNModel`."""

    vocab_size: int = 512
    cell: str = "lstm"  # "lstm" | "gru"
    n_layer: int = 2
    d_embed: int = 256
    d_hidden: int = 512
    dropout: float = 0.1  # after the embedding, between recurrent layers, before the output
    layer_norm: bool = True  # on the top recurrent layer's output
    tie_embeddings: bool = False  # output layer = embedding matrix (projects if dims differ)

    def validate(self) -> None:
        self.check(self.cell in CELLS, f"cell must be one of {CELLS}, got {self.cell!r}")
        self.check(self.vocab_size > 0, "vocab_size must be positive")
        self.check(self.n_layer > 0, "n_layer must be positive")
        self.check(self.d_embed > 0 and self.d_hidden > 0, "d_embed and d_hidden must be positive")
        self.check(0 <= self.dropout < 1, "dropout must be in [0, 1)")


@dataclass
class LSTMConfig(RNNConfig):
    """Config of registry model ``"lstm"``."""

    def validate(self) -> None:
        super().validate()
        self.check(self.cell == "lstm", "model 'lstm' has cell='lstm'; use model 'gru' for a GRU")


@dataclass
class GRUConfig(RNNConfig):
    """Config of registry model ``"gru"``."""

    cell: str = "gru"

    def validate(self) -> None:
        super().validate()
        self.check(self.cell == "gru", "model 'gru' has cell='gru'; use model 'lstm' for an LSTM")


@dataclass
class RNNState:
    """Recurrent state ``[n_layer, B, d_hidden]`` (LSTM: ``(h, c)``) and tokens consumed."""

    hidden: torch.Tensor | tuple[torch.Tensor, torch.Tensor]
    length: int
    max_len: int

    @property
    def batch_size(self) -> int:
        h = self.hidden[0] if isinstance(self.hidden, tuple) else self.hidden
        return h.shape[1]


class RNNModel(LanguageModel):
    """Token ids ``[B, T]`` → next-token logits ``[B, T, vocab]`` through a stacked RNN."""

    def __init__(self, config: RNNConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.d_embed)
        self.drop = nn.Dropout(c.dropout)
        rnn_class = nn.LSTM if c.cell == "lstm" else nn.GRU
        self.rnn = rnn_class(
            c.d_embed,
            c.d_hidden,
            num_layers=c.n_layer,
            batch_first=True,
            dropout=c.dropout if c.n_layer > 1 else 0.0,
        )
        self.norm = nn.LayerNorm(c.d_hidden) if c.layer_norm else nn.Identity()
        d_out = c.d_hidden
        self.proj: nn.Linear | None = None
        if c.tie_embeddings and c.d_hidden != c.d_embed:
            self.proj = nn.Linear(c.d_hidden, c.d_embed, bias=False)
            d_out = c.d_embed
        self.head = nn.Linear(d_out, c.vocab_size)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)
        if c.tie_embeddings:
            self.head.weight = self.embed.weight

    @property
    def model_name(self) -> str:
        return self.config.cell

    def embedding_parameters(self) -> list[nn.Parameter]:
        return [] if self.config.tie_embeddings else [self.embed.weight]

    def init_cache(self, batch_size: int, max_len: int) -> RNNState:
        """Zero state for ``batch_size`` sequences; ``max_len`` bounds ``length`` like the KV cache."""
        if batch_size <= 0 or max_len <= 0:
            raise MusegenError(
                f"cache needs batch_size and max_len > 0, got {batch_size}, {max_len}"
            )
        c, w = self.config, self.embed.weight
        h = torch.zeros(c.n_layer, batch_size, c.d_hidden, dtype=w.dtype, device=w.device)
        hidden = (h, torch.zeros_like(h)) if c.cell == "lstm" else h
        return RNNState(hidden, 0, max_len)

    def select_cache(self, cache: RNNState, rows: torch.Tensor) -> RNNState:
        h = cache.hidden
        rows = torch.as_tensor(
            rows, dtype=torch.long, device=(h[0] if isinstance(h, tuple) else h).device
        )
        hidden = (h[0][:, rows], h[1][:, rows]) if isinstance(h, tuple) else h[:, rows]
        return RNNState(hidden, cache.length, cache.max_len)

    def forward(
        self, ids: torch.Tensor, cache: RNNState | None = None
    ) -> tuple[torch.Tensor, RNNState | None]:
        """Logits for ``ids``; with a cache, continue from its state (returns a new state)."""
        self._check_ids(ids)
        B, T = ids.shape
        hidden = None
        if cache is not None:
            if cache.batch_size != B:
                raise MusegenError(f"batch of {B} sequences but the cache holds {cache.batch_size}")
            if cache.length + T > cache.max_len:
                raise MusegenError(
                    f"cache full: {cache.length} + {T} tokens exceed its max_len {cache.max_len}"
                )
            hidden = cache.hidden
        x = self.drop(self.embed(ids))
        x, hidden = self.rnn(x, hidden)
        x = self.drop(self.norm(x))
        if self.proj is not None:
            x = self.proj(x)
        logits = self.head(x)
        if cache is None:
            return logits, None
        return logits, RNNState(hidden, cache.length + T, cache.max_len)
