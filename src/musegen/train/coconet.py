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

Run: ``python -m musegen.train.coconet --config configs/coconet.json --out runs/coconet``
(``--resume`` to continue or extend a run after raising ``max_steps``; ``--init MODEL`` to start
from a saved model's weights, e.g. the shipped ``coconet``, with a fresh schedule and optimizer).
"""

from __future__ import annotations

import argparse
import json
import sys
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
    """The ``[T, 4]`` class grids of one split of Jsb16thSeparated."""
    from musegen.data.sources import get_source
    from musegen.models.coconet import to_classes

    source = get_source("jsb-satb", root=root)
    steps = source.all_steps()[split]
    return [to_classes(torch.from_numpy(np.asarray(s, np.int64)), low, high) for s in steps]


def train_coconet(
    run: dict[str, Any], out_dir: str | Path, resume: bool = False, init: str | None = None
) -> dict[str, Any]:
    """Train as the run file says; returns a summary (steps, best valid loss, parameters).

    ``init`` names a saved Coconet (a folder or a shipped model's name) whose weights start the
    run instead of a random initialisation; its ``model_config`` must equal the run file's.
    """
    from musegen.models import build_model
    from musegen.models.coconet import coconet_objective
    from musegen.tokenizers import get_tokenizer
    from musegen.train.run import fit_and_summarize
    from musegen.train.trainer import Trainer
    from musegen.utils import atomic_write_text

    if run.get("model", "coconet") != "coconet":
        raise MusegenError(f"this trains model 'coconet', the run file names {run['model']!r}")
    cfg = TrainConfig.from_dict(run.get("train", {}))
    data = dict(run.get("data") or {})
    if data.get("source", "jsb-satb") != "jsb-satb":
        raise MusegenError("coconet trains on the 'jsb-satb' source only")
    torch.manual_seed(cfg.seed)
    model = build_model("coconet", **run.get("model_config", {}))
    mc = model.config
    if init is not None and not resume:
        _load_init(model, init)
    root = data.get("root")
    train = Windows(load_grids("train", mc.low, mc.high, root), cfg.seq_len)
    valid = FixedValid(
        load_grids("valid", mc.low, mc.high, root), cfg.seq_len, int(data.get("valid_seed", 0))
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    used = {
        "model": "coconet",
        "model_config": mc.to_dict(),
        "train": cfg.to_dict(),
        "data": {"source": "jsb-satb", "root": root, "valid_seed": int(data.get("valid_seed", 0))},
    }
    if init is not None:
        used["init"] = str(init)
    atomic_write_text(out / "run.json", json.dumps(used, indent=2))
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
        "data": "jsb-satb (Jsb16thSeparated.json), train split",
        "parameters": model.num_parameters(),
        "loss": "mean NLL per hidden cell (nats), orderless masks, valid = fixed crops+masks",
    }
    trainer = Trainer(
        model, train, valid, cfg, out, objective=coconet_objective, collate=collate, meta=meta
    )
    return fit_and_summarize(trainer, resume)


def _load_init(model: torch.nn.Module, ref: str) -> None:
    """Copy the weights of the saved Coconet ``ref`` into ``model`` (same config required)."""
    from musegen.models import load_model
    from musegen.models.pretrained import resolve_model

    source, _ = load_model(resolve_model(ref))
    if source.config.to_dict() != model.config.to_dict():
        raise MusegenError(
            f"--init {ref}: its model_config {source.config.to_dict()} differs from the run "
            f"file's {model.config.to_dict()}"
        )
    model.load_state_dict(source.state_dict())


def main(argv: list[str] | None = None) -> int:
    from musegen.train.run import read_run_file

    p = argparse.ArgumentParser(prog="python -m musegen.train.coconet", description=__doc__)
    p.add_argument("--config", required=True, metavar="FILE.json", help="run file")
    p.add_argument("--out", default="runs/coconet", metavar="RUN_DIR")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--max-steps", type=int, help="override train.max_steps")
    p.add_argument(
        "--init",
        metavar="MODEL",
        help="start from this saved Coconet's weights (folder or shipped name, e.g. coconet)",
    )
    args = p.parse_args(argv)
    try:
        run = read_run_file(args.config)
        if args.max_steps:
            run["train"] = {**run.get("train", {}), "max_steps": args.max_steps}
        summary = train_coconet(run, args.out, resume=args.resume, init=args.init)
    except MusegenError as e:
        sys.stderr.write(f"coconet training: error: {e}\n")
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
