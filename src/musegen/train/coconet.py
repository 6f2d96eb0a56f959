"""Train Coconet on four-voice chorales (``Jsb16thSeparated``) with the one trainer.

A run file has the shape of ``musegen train``'s (see :mod:`musegen.train.run`)::

    {"model": "coconet", "model_config": {"n_layers": 8, "channels": 64},
     "train": {"seq_len": 32, "batch_size": 16, ...},
     "data": {"source": "jsb-satb", "root": null, "valid_seed": 0}}

``train.seq_len`` is the crop length in 16th-note steps. Training items are every
``seq_len``-step window of every train piece (the trainer picks them at random); hidden-cell
masks are drawn by :func:`~musegen.models.coconet.coconet_objective`, from the torch RNG the
trainer checkpoints, so ``--resume`` continues exactly. The valid set is fixed: the
non-overlapping windows of every valid piece, each with one orderless mask drawn from
``valid_seed``, in a seeded shuffled order (so ``eval_batches`` takes a sample of all pieces).

The data is Coconet's ``Jsb16thSeparated.json`` (verified against the published file), or
any JSON file of the same shape (``{"train": [...], "valid": [...]}``, each piece a list of
``[S, A, T, B]`` MIDI pitches per 16th note, -1 for a rest), e.g. your own chorales.

Run it like any model: ``musegen train --config configs/coconet.json --out runs/coconet``
(``--data FILE`` in place of the run file's ``data.root``; ``--resume`` to continue or extend a
run after raising ``max_steps``; ``--init MODEL`` to start from a saved model's weights, e.g.
the shipped ``coconet``, with a fresh schedule and optimizer). :func:`musegen.train.run.train_run`
sends a run file naming ``coconet`` here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musegen.errors import MusegenError
from musegen.train.config import TrainConfig

DESCRIPTION = (
    "Coconet (orderless convolutional NADE) over four-voice 16th-note grids; "
    "trained on Jsb16thSeparated (Bach chorales), train split"
)


class Windows:
    """Every ``length``-step window of the given ``[T, 4]`` class grids, as LongTensors."""

    def __init__(self, grids: list[torch.Tensor], length: int) -> None:
        self.grids = [g for g in grids if len(g) >= length]
        if not self.grids:
            raise MusegenError(f"no piece has {length} steps: lower train.seq_len")
        self.length = length
        counts = torch.tensor([len(g) - length + 1 for g in self.grids])
        self.offsets = torch.cumsum(counts, 0) - counts
        self.total = int(counts.sum())

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, i: int) -> torch.Tensor:
        k = int(torch.searchsorted(self.offsets, torch.tensor(i), right=True)) - 1
        start = i - int(self.offsets[k])
        return self.grids[k][start : start + self.length]


class FixedValid:
    """Non-overlapping windows of every grid with one fixed orderless mask each."""

    def __init__(self, grids: list[torch.Tensor], length: int, seed: int) -> None:
        from musegen.models.coconet import random_hidden

        crops = [g[s : s + length] for g in grids for s in range(0, len(g) - length + 1, length)]
        if not crops:
            raise MusegenError(f"no valid piece has {length} steps: lower train.seq_len")
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(crops), generator=gen).tolist()
        self.cells = torch.stack([crops[i] for i in order])
        self.hidden = random_hidden(tuple(self.cells.shape), generator=gen)

    def __len__(self) -> int:
        return len(self.cells)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cells[i], self.hidden[i]


def collate(items: list[Any]) -> Any:
    """Stack windows (training) or (window, mask) pairs (valid)."""
    if isinstance(items[0], tuple):
        return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])
    return torch.stack(items)


def load_grids(split: str, low: int, high: int, root: str | None = None) -> list[torch.Tensor]:
    """The ``[T, 4]`` class grids of one split of Jsb16thSeparated (``root``: the file, a
    folder holding it, or None for the shared data folder), or of a JSON file of the same
    shape under another name (your own four-voice pieces: read as they are, not verified)."""
    from musegen.data.sources import get_source
    from musegen.data.sources.jsb_satb import FILENAME
    from musegen.models.coconet import to_classes

    path = Path(root) if root is not None else None
    if path is not None and path.suffix == ".json" and path.name != FILENAME:
        steps = _read_steps(path, split)
    else:
        steps = get_source("jsb-satb", root=root).all_steps()[split]
    try:
        return [to_classes(torch.from_numpy(np.asarray(s, np.int64)), low, high) for s in steps]
    except ValueError as e:
        raise MusegenError(
            f"{root or 'jsb-satb'} ({split}): {e}; widen model_config low/high"
        ) from e


def _read_steps(path: Path, split: str) -> list[np.ndarray]:
    """One split of a Jsb16thSeparated-shaped JSON file: ``[T, 4]`` pitch arrays."""
    try:
        data = json.loads(path.read_text())
        pieces = [np.asarray(p, dtype=np.int64).reshape(-1, 4) for p in data[split]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MusegenError(
            f"{path}: not a four-voice steps file ({e}); expected "
            '{"train": [...], "valid": [...]}, each piece a list of [S, A, T, B] pitches'
        ) from e
    if any(p.size and (p.min() < -1 or p.max() > 127) for p in pieces):
        raise MusegenError(f"{path}: pitches must be -1 (rest) or MIDI 0..127")
    return pieces


def train_coconet(
    run: dict[str, Any],
    out_dir: str | Path,
    resume: bool = False,
    init: str | None = None,
    data_path: str | Path | None = None,
) -> dict[str, Any]:
    """Train as the run file says; returns a summary (steps, best valid loss, parameters).

    ``data_path`` (``musegen train --data``) replaces the run file's ``data.root``. ``init`` names a saved Coconet (a folder or a shipped model's name) whose weights start the
    run instead of a random initialisation; its ``model_config`` must equal the run file's.
    """
    from musegen.models.coconet import coconet_objective
    from musegen.tokenizers import get_tokenizer
    from musegen.train.run import fit_and_summarize, initial_model, write_run
    from musegen.train.trainer import Trainer

    if run.get("model", "coconet") != "coconet":
        raise MusegenError(f"this trains model 'coconet', the run file names {run['model']!r}")
    cfg = TrainConfig.from_dict(run.get("train", {}))
    data = dict(run.get("data") or {})
    if data.get("source", "jsb-satb") != "jsb-satb":
        raise MusegenError("coconet trains on the 'jsb-satb' source only")
    model = initial_model("coconet", run.get("model_config", {}), cfg.seed, init, resume)
    mc = model.config
    root = str(data_path) if data_path is not None else data.get("root")
    train = Windows(load_grids("train", mc.low, mc.high, root), cfg.seq_len)
    valid = FixedValid(
        load_grids("valid", mc.low, mc.high, root), cfg.seq_len, int(data.get("valid_seed", 0))
    )
    used = {
        "model": "coconet",
        "model_config": mc.to_dict(),
        "train": cfg.to_dict(),
        "data": {"source": "jsb-satb", "root": root, "valid_seed": int(data.get("valid_seed", 0))},
    }
    out = write_run(out_dir, used, init)
    tokenizer = get_tokenizer(
        "satb",
        steps_per_quarter=4,
        soprano=mc.ranges[0],
        alto=mc.ranges[1],
        tenor=mc.ranges[2],
        bass=mc.ranges[3],
    )
    meta = {
        "description": DESCRIPTION,
        "tokenizer": tokenizer.to_dict(),
        "data": f"jsb-satb ({root or 'Jsb16thSeparated.json'}), train split",
        "parameters": model.num_parameters(),
        "loss": "mean NLL per hidden cell (nats), orderless masks, valid = fixed crops+masks",
    }
    trainer = Trainer(
        model, train, valid, cfg, out, objective=coconet_objective, collate=collate, meta=meta
    )
    return fit_and_summarize(trainer, resume)
