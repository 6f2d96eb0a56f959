"""What every model shares: a validated dataclass config and the language-model interface.

A model maps token ids ``[B, T]`` to next-token logits ``[B, T, vocab]``. The same ``forward``
serves training (``cache=None``: the whole sequence at once) and generation (a cache from
``init_cache`` that ``forward`` extends by the new ids and hands back).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from musegen.errors import MusegenError

MAX_LAYERS = 1024  # a config asking for more is a mistake (building it would take hours)
MAX_INT_OPTION = 2**24  # any other whole-number option (widths, vocabulary, positions)


@dataclass
class ModelConfig:
    """Base for model configs: plain typed fields, checked on construction, JSON in and out."""

    def __post_init__(self) -> None:
        self._check_types()
        self.validate()

    def validate(self) -> None:
        """Check values (ranges, choices); raise :class:`MusegenError` with what to change."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """A config from keyword options; unknown names are an error, not silently ignored."""
        unknown = sorted(set(d) - set(cls.option_names()))
        if unknown:
            raise MusegenError(
                f"unknown {cls.__name__} option(s): {', '.join(unknown)}; "
                f"known: {', '.join(cls.option_names())}"
            )
        return cls(**d)

    def _check_types(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            allowed = _allowed_types(hints[f.name])
            if allowed and not _isinstance(value, allowed):
                names = " or ".join(t.__name__ for t in allowed)
                raise MusegenError(f"{type(self).__name__}.{f.name} must be {names}, got {value!r}")
            if isinstance(value, int) and not isinstance(value, bool):
                most = MAX_LAYERS if f.name in ("n_layer", "n_layers") else MAX_INT_OPTION
                self.check(abs(value) <= most, f"{f.name}={value} is beyond {most:,}")

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            raise MusegenError(f"{type(self).__name__}: {message}")

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)


def _allowed_types(hint: Any) -> tuple[type, ...]:
    """The plain types a field annotation allows (``int | None`` -> ``(int, NoneType)``)."""
    if isinstance(hint, type):
        return (hint,)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(hint) if isinstance(a, type))
    return ()


def _isinstance(value: Any, allowed: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # bool is an int subclass: only accept it where bool is asked
        return bool in allowed
    if isinstance(value, int) and float in allowed:
        return True
    return isinstance(value, allowed)


class LanguageModel(nn.Module):
    """Interface of every musegen model (see :mod:`musegen.models` for the contract)."""

    config: ModelConfig

    @property
    def model_name(self) -> str:
        """Registry name used by ``save_model`` (``config.json``'s ``"model"``)."""
        raise NotImplementedError

    def forward(self, ids: torch.Tensor, cache: Any = None) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def init_cache(self, batch_size: int, max_len: int) -> Any:
        raise NotImplementedError

    def select_cache(self, cache: Any, rows: Any) -> Any:
        """The cache of sequences ``rows`` (a 1-D index into its batch), in that order: the
        generator drops finished sequences so that later steps compute only the others."""
        raise NotImplementedError

    def next_logits(self, tokens: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        """One decoding step: logits ``[B, vocab]`` (float32 numpy) after one new token per
        sequence (``tokens`` ``[B]``), and the cache. The same numbers as ``forward`` on
        ``tokens[:, None]``; models may override it with a faster path (the generator calls it
        once per token)."""
        ids = torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.int64)).view(-1, 1)
        logits, cache = self(ids.to(next(self.parameters()).device), cache)
        return last_logits(logits), cache

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Trainable parameter count; tied weights count once."""
        skip = {id(p) for p in self.embedding_parameters()} if exclude_embeddings else set()
        return sum(p.numel() for p in self.parameters() if id(p) not in skip)

    def embedding_parameters(self) -> list[nn.Parameter]:
        """Lookup tables (token / position embeddings) that do no matmul work."""
        return []

    def _check_ids(self, ids: torch.Tensor) -> None:
        if ids.dim() != 2 or ids.dtype not in (torch.int64, torch.int32):
            raise MusegenError(
                f"model input must be integer token ids of shape [batch, time], "
                f"got {ids.dtype} {tuple(ids.shape)}"
            )
        if ids.shape[1] == 0:
            raise MusegenError("model input has no tokens (time dimension is 0)")


def last_logits(logits: torch.Tensor) -> np.ndarray:
    """The last position's logits ``[B, V]`` of ``[B, T, V]`` as float32 numpy (a view for
    float32 CPU ones)."""
    if logits.dtype is not torch.float32 or not logits.is_cpu:
        logits = logits.float().cpu()
    return logits.numpy()[:, -1]


class Dropout(nn.Module):
    """``nn.Dropout`` (same ``p``, same scaling, nothing saved) with a cheaper mask on the CPU.

    PyTorch's CPU ``bernoulli_`` makes one generator call per element (about 6 ns: 11% of a
    training step of the 6 x d256 benchmark model); here one 64-bit draw serves four elements,
    each kept when its 16 bits clear ``p`` (so ``p`` is rounded to 1/65536). Other devices use
    ``F.dropout``. The draws come from torch's global generator, so seeds and checkpointed
    RNG states reproduce a run as before.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, True)
        return x * keep_mask(x, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def keep_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """A mask shaped like ``x``: 0 with probability ``p`` (to 1/65536), else ``1 / (1 - p)``,
    in ``x``'s dtype."""
    n = x.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    lanes = bits.view(torch.int16)[:n].view(x.shape)
    drop = round(p * 65536)
    keep = lanes >= drop - 32768  # int16 lanes are uniform on [-32768, 32767]
    return keep.to(x.dtype) * (65536 / (65536 - drop))
