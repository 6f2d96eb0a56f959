"""Negative log-likelihood of a prepared split under a sequence model.

The split's token stream (pieces framed BOS ... EOS, one after another) is tiled into windows
of the model's context length (``WindowDataset(mode="tile")``): window ``i`` holds tokens
``i*L .. i*L + L`` and predicts tokens ``i*L + 1 .. i*L + L`` from the tokens before them
*in that window only*, so every token but the first is scored exactly once, and the first
tokens of each window are scored with little context (a longer context gives a lower,
fairer figure). What is averaged:

* ``nll_per_token``: total NLL (nats) / number of scored tokens (every token after the first,
  BOS and EOS included);
* ``nll_per_note``: total NLL / number of notes in the split (from the dataset's manifest),
  so tokenizers that spend a different number of tokens per note compare fairly;
* ``bits_per_note`` / ``bits_per_token``: the same in bits (divided by ln 2);
* ``perplexity``: ``exp(nll_per_token)``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from musegen.errors import MusegenError

DEFAULT_CONTEXT = 256


@dataclass(frozen=True)
class NllResult:
    """Likelihood figures of one split (see the module docstring for what is averaged)."""

    model: str
    data: str
    split: str
    context: int
    tokens: int  # scored tokens
    notes: int
    pieces: int
    total_nll: float  # nats
    nll_per_token: float
    nll_per_note: float
    bits_per_token: float
    bits_per_note: float
    perplexity: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def context_length(meta: dict[str, Any], model: Any, requested: int | None) -> int:
    """Window length: as requested, else the training ``seq_len`` stored with the model, else
    an absolute-position transformer's limit, else :data:`DEFAULT_CONTEXT`."""
    if requested is not None:
        if requested < 1:
            raise MusegenError(f"context length must be >= 1, got {requested}")
        return requested
    trained = (meta.get("train_config") or {}).get("seq_len")
    if isinstance(trained, int) and trained > 0:
        return trained
    config = getattr(model, "config", None)
    if getattr(config, "position", None) == "absolute":
        return int(config.max_positions)  # type: ignore[union-attr]
    return DEFAULT_CONTEXT


def _check_tokenizer(meta: dict[str, Any], data: Any, model_dir: Path) -> None:
    """The model must have been trained on tokens of the dataset's tokenizer."""
    from musegen.tokenizers import spelled_out

    want = meta.get("tokenizer")
    have = data.manifest.tokenizer
    if want is None:
        raise MusegenError(f"{model_dir}: the model's config.json names no tokenizer")
    if spelled_out(want) != spelled_out(have):
        raise MusegenError(
            f"{model_dir} was trained with tokenizer {want.get('tokenizer')!r} "
            f"{want.get('config', {})} but {data.path} was prepared with "
            f"{have.get('tokenizer')!r} {have.get('config', {})}; prepare the data with the "
            "model's tokenizer"
        )


def evaluate_nll(
    model_ref: str,
    data_dir: str | Path,
    split: str = "test",
    context: int | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    progress: bool = False,
) -> NllResult:
    """NLL of ``split`` of the prepared dataset ``data_dir`` under the model ``model_ref`` (a
    shipped model's name, a model folder or a training run folder)."""
    import torch
    import torch.nn.functional as F

    from musegen.data.dataset import load_prepared
    from musegen.data.training import IGNORE_INDEX, WindowDataset
    from musegen.models import load_model
    from musegen.models.pretrained import resolve_model

    folder = resolve_model(model_ref)
    model, meta = load_model(folder, map_location=device)
    data = load_prepared(data_dir)
    if data.manifest.frame_width is not None:
        raise MusegenError(f"{data_dir}: a grid dataset; NLL here is for sequence models")
    _check_tokenizer(meta, data, folder)
    part = data.split(split)
    if part.n_tokens < 2:
        raise MusegenError(f"{data_dir}: split {split!r} has no tokens to score")
    seq_len = context_length(meta, model, context)
    windows = WindowDataset(part, seq_len, mode="tile")
    starts = range(0, len(windows), batch_size)
    total, count = 0.0, 0
    with torch.no_grad():
        for b in _progress(starts, progress):
            items = [windows.arrays(i) for i in range(b, min(b + batch_size, len(windows)))]
            x = torch.from_numpy(_stack([i[0] for i in items])).to(device)
            y = torch.from_numpy(_stack([i[1] for i in items])).to(device)
            logits, _ = model(x)
            loss = F.cross_entropy(
                logits.float().reshape(-1, logits.size(-1)),
                y.reshape(-1),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            )
            total += float(loss)
            count += int((y != IGNORE_INDEX).sum())
    notes = data.manifest.splits[split].notes
    per_token = total / count
    per_note = total / notes if notes else float("nan")
    return NllResult(
        model=str(folder),
        data=str(data_dir),
        split=split,
        context=seq_len,
        tokens=count,
        notes=notes,
        pieces=len(part),
        total_nll=total,
        nll_per_token=per_token,
        nll_per_note=per_note,
        bits_per_token=per_token / math.log(2),
        bits_per_note=per_note / math.log(2),
        perplexity=math.exp(per_token),
    )


def _stack(arrays: list[Any]) -> Any:
    import numpy as np

    return np.stack(arrays)


def _progress(items: range, enabled: bool) -> Any:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="scoring", unit="batch", file=sys.stderr, leave=False)
