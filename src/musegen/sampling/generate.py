"""Autoregressive generation with a KV cache, logit filters and grammar masks.

Every step masks the logits with each sequence's tokenizer grammar, so whatever the model
says, the output decodes to a valid score. Sequences are sampled as a batch from one primer
(``num`` variations); a seeded ``torch.Generator`` makes runs reproducible.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from musegen.errors import MusegenError
from musegen.sampling.filters import apply_filters, build_filters
from musegen.tokenizers.base import BOS, EOS, PAD, Tokenizer


@dataclass
class SamplingConfig:
    max_new_tokens: int = 1024
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


StopFn = Callable[[np.ndarray], bool]


def primer_ids(tokenizer: Tokenizer, primer: np.ndarray | None) -> np.ndarray:
    """BOS followed by the primer (already encoded, without EOS), checked by the grammar."""
    ids = np.array([BOS], dtype=np.int64)
    if primer is not None and len(primer):
        body = np.asarray(primer, dtype=np.int64)
        if body[0] == BOS:
            body = body[1:]
        if len(body) and body[-1] == EOS:
            body = body[:-1]
        ids = np.concatenate([ids, body])
    try:
        tokenizer.grammar().feed(ids)
    except ValueError as e:
        raise MusegenError(f"the primer is not a valid {tokenizer.name} sequence ({e})") from e
    return ids


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    num: int = 1,
    primer: np.ndarray | None = None,
    config: SamplingConfig | None = None,
    stop: StopFn | None = None,
    stop_every: int = 32,
    progress: bool = False,
) -> list[np.ndarray]:
    """Sample ``num`` sequences (ids including BOS, and EOS when the model ended them).

    ``stop(ids)`` is asked every ``stop_every`` steps per unfinished sequence (e.g. "has it
    reached 16 bars?"); a sequence for which it says yes is finished. Generation also ends at
    ``max_new_tokens``.
    """
    cfg = config or SamplingConfig()
    if num < 1:
        raise MusegenError(f"--num must be >= 1, got {num}")
    if cfg.max_new_tokens < 1:
        raise MusegenError("max_new_tokens must be >= 1")
    filters = build_filters(cfg.temperature, cfg.top_k, cfg.top_p, cfg.repetition_penalty)
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab is not None and vocab != len(tokenizer):
        raise MusegenError(
            f"model and tokenizer do not match: the model has {vocab} tokens, the "
            f"{tokenizer.name} tokenizer {len(tokenizer)}"
        )
    device = next(model.parameters()).device
    prompt = primer_ids(tokenizer, primer)
    grammars = [tokenizer.grammar().feed(prompt) for _ in range(num)]
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    model.eval()
    cache = model.init_cache(num, len(prompt) + cfg.max_new_tokens)
    ids = torch.as_tensor(np.tile(prompt, (num, 1)), device=device)
    logits, cache = model(ids, cache)
    out = [list(prompt) for _ in range(num)]
    finished = np.zeros(num, dtype=bool)
    history = ids.cpu()
    bar = _bar(cfg.max_new_tokens) if progress else None
    for step in range(cfg.max_new_tokens):
        masks = np.stack(
            [
                g.mask() if not f else _pad_only(len(tokenizer))
                for g, f in zip(grammars, finished, strict=True)
            ]
        )
        masks[~masks.any(axis=1), EOS] = True  # a grammar dead end ends the sequence
        next_logits = logits[:, -1].float().cpu()
        next_logits = next_logits.masked_fill(~torch.from_numpy(masks), float("-inf"))
        next_logits = apply_filters(next_logits, history, filters)
        probs = torch.softmax(next_logits, dim=-1)
        tokens = torch.multinomial(probs, 1, generator=gen).squeeze(1).numpy()
        for b, t in enumerate(tokens):
            if finished[b]:
                continue
            grammars[b].step(int(t))
            out[b].append(int(t))
            if t == EOS or grammars[b].done:
                finished[b] = True
        if stop is not None and (step + 1) % stop_every == 0:
            for b in np.flatnonzero(~finished):
                if stop(np.asarray(out[b])):
                    finished[b] = True
        if bar is not None:
            bar.update(1)
        if finished.all():
            break
        new = torch.as_tensor(tokens, device=device).unsqueeze(1)
        history = torch.cat([history, new.cpu()], dim=1)
        logits, cache = model(new, cache)
    if bar is not None:
        bar.close()
    return [np.asarray(seq, dtype=np.int64) for seq in out]


def _pad_only(size: int) -> np.ndarray:
    m = np.zeros(size, dtype=bool)
    m[PAD] = True
    return m


def _bar(total: int):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(total=total, desc="generating", unit="tok", file=sys.stderr, leave=False)
