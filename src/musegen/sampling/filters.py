"""Logit filters as small composable functions.

A filter takes the next-token logits ``[B, V]`` and the ids so far ``[B, T]`` and returns new
logits; ``-inf`` removes a token. :func:`build_filters` turns sampling options into a list
applied in order by :func:`apply_filters`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

Filter = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def temperature(logits: torch.Tensor, ids: torch.Tensor, t: float) -> torch.Tensor:
    """Sharpen (t < 1) or flatten (t > 1) the distribution."""
    return logits / t


def top_k(logits: torch.Tensor, ids: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k most likely tokens."""
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p(logits: torch.Tensor, ids: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus sampling: keep the smallest set of tokens whose probability reaches p."""
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = torch.softmax(sorted_logits, dim=-1)
    before = torch.cumsum(probs, dim=-1) - probs  # mass of the tokens ranked above each one
    drop_sorted = before >= p
    drop_sorted[..., 0] = False  # always keep the best token
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def repetition_penalty(
    logits: torch.Tensor, ids: torch.Tensor, penalty: float, window: int = 64
) -> torch.Tensor:
    """Make tokens seen in the last ``window`` ids less likely (CTRL-style: divide positive
    logits by ``penalty``, multiply negative ones)."""
    if ids.numel() == 0:
        return logits
    recent = ids[:, -window:]
    seen = torch.gather(logits, -1, recent)
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(-1, recent, seen)


def build_filters(
    temperature_: float = 1.0,
    top_k_: int = 0,
    top_p_: float = 1.0,
    repetition_penalty_: float = 1.0,
) -> list[Filter]:
    """Filters for the usual options; values that change nothing add no filter."""
    from musegen.errors import MusegenError

    if temperature_ <= 0:
        raise MusegenError(f"temperature must be > 0, got {temperature_}")
    if not 0 < top_p_ <= 1:
        raise MusegenError(f"top-p must be in (0, 1], got {top_p_}")
    if top_k_ < 0:
        raise MusegenError(f"top-k must be >= 0, got {top_k_}")
    if repetition_penalty_ < 1:
        raise MusegenError(f"repetition penalty must be >= 1, got {repetition_penalty_}")
    out: list[Filter] = []
    if repetition_penalty_ != 1.0:
        out.append(partial(repetition_penalty, penalty=repetition_penalty_))
    if temperature_ != 1.0:
        out.append(partial(temperature, t=temperature_))
    if top_k_:
        out.append(partial(top_k, k=top_k_))
    if top_p_ < 1.0:
        out.append(partial(top_p, p=top_p_))
    return out


def apply_filters(logits: torch.Tensor, ids: torch.Tensor, filters: list[Filter]) -> torch.Tensor:
    for f in filters:
        logits = f(logits, ids)
    return logits
