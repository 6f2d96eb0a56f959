"""Tiny models and data for trainer tests (importable by torchrun worker scripts too)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from musegen.train.config import TrainConfig


class TinyLM(nn.Module):
    def __init__(self, vocab: int = 16, dim: int = 16) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.drop = nn.Dropout(0.1)
        self.rnn = nn.GRU(dim, dim, batch_first=True)
        self.head = nn.Linear(dim, vocab)

    def forward(self, ids: torch.Tensor, cache: object = None) -> tuple[torch.Tensor, None]:
        h, _ = self.rnn(self.drop(self.emb(ids)))
        return self.head(h), None


def save_tiny(model: nn.Module, directory: Path, extra: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(directory / "model.safetensors"),
    )
    (directory / "config.json").write_text(json.dumps(extra))


class Windows:
    """Windows over a repeating pattern: learnable, so the loss must fall."""

    def __init__(self, n: int = 64, seq: int = 12) -> None:
        pattern = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8] * 40)
        self.items = [(pattern[i : i + seq], pattern[i + 1 : i + seq + 1]) for i in range(n)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[i]


def cfg(**kw: object) -> TrainConfig:
    base = dict(
        seq_len=12,
        batch_size=8,
        lr=1e-2,
        warmup_steps=2,
        max_steps=12,
        eval_every=4,
        eval_batches=2,
        checkpoint_every=4,
        log_every=2,
        progress=False,
        device="cpu",
    )
    base.update(kw)
    return TrainConfig.from_dict(base)


# a tiny Coconet (model config) and the four chords its tests train on
TINY_COCONET = {
    "n_layers": 2,
    "channels": 8,
    "time_dilations": [1, 2],
    "pitch_dilations": [1, 12],
    "low": 48,
    "high": 79,
    "soprano": [60, 79],
    "alto": [55, 72],
    "tenor": [50, 67],
    "bass": [48, 62],
}
# I - IV - V - I in C, each chord held for a quarter (4 steps): a learnable "chorale"
COCONET_CHORDS = [[72, 67, 64, 48], [72, 69, 65, 53], [74, 67, 62, 55], [72, 67, 64, 48]]


# a tiny RNN-NADE frame model (model config): trains a few steps on the vendored JSB rolls
TINY_FRAME = {"d_embed": 8, "d_hidden": 8, "d_key": 8, "d_cond": 4, "dropout": 0.0}
