"""Train a piano-roll frame model (``rnn-nade``, ``frame-bernoulli``) with the one trainer.

A run file has the shape of ``musegen train``'s (see :mod:`musegen.train.run`)::

    {"model": "rnn-nade", "model_config": {"dropout": 0.4, ...},
     "train": {"batch_size": 8, "max_steps": 1900, ...},
     "data": {"source": "jsb",         # a piano-roll set: jsb, nottingham, musedata, pianomidi
              "root": null,            # its .mat file or a folder holding it (see below)
              "max_frames": 128,       # training crops (null: whole pieces); evaluation never crops
              "transpose": 0,          # random transposition of training pieces, +-N keys
              "select_frames": 20000}} # cap on the valid frames scored at each evaluation

The rolls come from ``data.root`` (``musegen train --data PATH`` replaces it), else the shared
data folder, else the copy vendored with musegen, so a run needs no download. ``--data`` may
also be a dataset made by ``musegen data prepare SOURCE --tokenizer roll --config
'{"onsets": false}'`` (binary rolls of any source, e.g. a folder of your MIDI files): the
model then takes that dataset's keys and frame rate.

Training items are whole pieces (or ``max_frames`` crops) drawn afresh each epoch
(:class:`RandomDraws`); the valid set is every k-th valid piece, about ``select_frames``
frames in all (:func:`selection_subset`), scored by
:func:`~musegen.models.frame.frame_nll_objective` (mean NLL per frame, nats). The model
folders record the frame rate and lowest key (``frames_per_quarter``, ``low_pitch``), which
is how :class:`~musegen.sampling.generators.FrameGenerator` turns sampled rolls into notes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from musegen.errors import MusegenError
from musegen.metrics.frame_nll import DATASETS
from musegen.train.config import TrainConfig

FRAME_MODELS = ("frame-bernoulli", "rnn-nade")
DATA_DEFAULTS: dict[str, Any] = {
    "source": "jsb",
    "root": None,
    "max_frames": 128,
    "transpose": 0,
    "select_frames": 20000,
}
PROTOCOL = "boulanger-lewandowski-2012"


class RandomDraws:
    """A roll dataset seen as ``repeats`` copies, copy ``e`` drawing crops/transpositions of
    epoch ``e``: the Trainer draws indices only, so this is how items get fresh randomness."""

    def __init__(self, dataset: Any, repeats: int = 100_000) -> None:
        self.dataset = dataset
        self.repeats = repeats

    def __len__(self) -> int:
        return len(self.dataset) * self.repeats

    def __getitem__(self, index: int) -> Any:
        epoch, item = divmod(index, len(self.dataset))
        self.dataset.set_epoch(epoch)
        return self.dataset[item]


def selection_subset(rolls: list[np.ndarray], max_frames: int) -> list[np.ndarray]:
    """Every k-th valid piece, k chosen for about ``max_frames`` frames in all (k >= 1)."""
    total = sum(len(r) for r in rolls)
    k = max(1, math.ceil(total / max(max_frames, 1)))
    return rolls[::k]


def data_options(run: dict[str, Any], data_path: str | Path | None = None) -> dict[str, Any]:
    """The run file's ``data`` section over :data:`DATA_DEFAULTS`, ``data_path`` as its root."""
    from musegen.train.run import data_section

    options = data_section(run, DATA_DEFAULTS, "a frame model", data_path)
    checks = {
        "root": options["root"] is None or isinstance(options["root"], str),
        "max_frames": options["max_frames"] is None or _count(options["max_frames"], 1),
        "transpose": _count(options["transpose"], 0),
        "select_frames": _count(options["select_frames"], 1),
    }
    bad = [f"{k}={json.dumps(options[k])[:40]}" for k, ok in checks.items() if not ok]
    if bad:
        raise MusegenError(
            f"invalid data option(s) {', '.join(bad)}: root is a path, max_frames a count "
            "(or null), transpose a number of keys, select_frames a count"
        )
    if _is_prepared(options["root"]):
        options["source"] = None  # the dataset's manifest names its source
    elif options["source"] not in DATASETS:
        raise MusegenError(
            f"frame models read the piano-roll sets {', '.join(DATASETS)} (data.source), "
            f"or a prepared roll dataset (--data DIR); got {options['source']!r}"
        )
    return options


def _count(value: Any, least: int) -> bool:
    """Whether a JSON value is a whole number >= ``least`` (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_prepared(root: str | None) -> bool:
    return root is not None and (Path(root) / "manifest.json").is_file()


@dataclass
class FrameData:
    """The rolls of a frame-model run and what the model folders say about them."""

    rolls: dict[str, list[np.ndarray]]  # split -> pieces' 0/1 rolls [frames, keys]
    frames_per_quarter: int
    low_pitch: int
    origin: str  # the set's name, or the prepared dataset's folder

    @property
    def n_keys(self) -> int:
        return int(self.rolls["train"][0].shape[1])

    def meta(self, options: dict[str, Any]) -> dict[str, Any]:
        """What a model folder records about its data (the protocol for the published sets)."""
        protocol = {"protocol": PROTOCOL} if self.origin in DATASETS else {}
        return {
            "dataset": self.origin,
            **protocol,
            "data": options,
            "frames_per_quarter": self.frames_per_quarter,
            "low_pitch": self.low_pitch,
        }


def load_rolls(options: dict[str, Any]) -> FrameData:
    """The rolls ``options`` name: a prepared roll dataset at ``root``, else the set
    ``source`` (read from ``root``, the shared folder or the vendored copy)."""
    from musegen.data.sources import get_source
    from musegen.data.sources._polymusic import LOW_PITCH

    root = options["root"]
    if _is_prepared(root):
        return _prepared_rolls(Path(root))
    source = get_source(options["source"], root=root)
    return FrameData(source.rolls(), source.steps_per_quarter, LOW_PITCH, options["source"])


def _prepared_rolls(folder: Path) -> FrameData:
    """The splits of a dataset prepared with the binary ``roll`` tokenizer."""
    from musegen.data.dataset import load_prepared

    data = load_prepared(folder)
    config = data.manifest.tokenizer.get("config", {})
    if data.manifest.frame_width is None or data.tokenizer.name != "roll" or config.get("onsets"):
        raise MusegenError(
            f"{folder}: frame models read binary piano rolls: prepare the data with "
            "--tokenizer roll --config '{\"onsets\": false}'"
        )
    missing = [s for s in ("train", "valid") if s not in data.split_names]
    if missing:
        raise MusegenError(f"{folder}: no {' or '.join(missing)} split to train and choose on")
    rolls = {name: [np.asarray(p) for p in data.split(name) if len(p)] for name in data.split_names}
    if not rolls["train"] or not rolls["valid"]:
        raise MusegenError(f"{folder}: the train or valid split has no frames")
    return FrameData(rolls, int(config["steps_per_quarter"]), int(config["low"]), str(folder))


def frame_datasets(data: FrameData, options: dict[str, Any], seed: int) -> tuple[Any, Any]:
    """The training items (crops, transpositions) and the valid selection of ``data``."""
    from musegen.data.augment import transpose_roll
    from musegen.data.training import RollDataset

    shift = int(options["transpose"])
    train = RollDataset(
        data.rolls["train"],
        augment=partial(transpose_roll, max_shift=shift) if shift else None,
        max_frames=options["max_frames"],
        seed=seed,
    )
    valid = RollDataset(selection_subset(data.rolls["valid"], int(options["select_frames"])))
    return RandomDraws(train), valid


def train_frame(
    run: dict[str, Any],
    out_dir: str | Path,
    resume: bool = False,
    init: str | None = None,
    data_path: str | Path | None = None,
) -> dict[str, Any]:
    """Train as the run file says; returns a summary (steps, best valid loss, parameters).

    ``data_path`` (``musegen train --data``) replaces the run file's ``data.root``; ``init``
    names a saved frame model of the same configuration whose weights start the run.
    """

    from musegen.data.training import collate_rolls
    from musegen.models.frame import frame_nll_objective
    from musegen.train.run import fit_and_summarize, initial_model, write_run
    from musegen.train.trainer import Trainer

    name = run.get("model")
    if name not in FRAME_MODELS:
        raise MusegenError(f"this trains the frame models {FRAME_MODELS}, not {name!r}")
    cfg = TrainConfig.from_dict(run.get("train", {}))
    options = data_options(run, data_path)
    data = load_rolls(options)
    config = {**run.get("model_config", {}), "n_keys": data.n_keys}
    model = initial_model(name, config, cfg.seed, init, resume)
    train, valid = frame_datasets(data, options, cfg.seed)
    used = {"model": name, "model_config": model.config.to_dict(), "train": cfg.to_dict()}
    used["data"] = options
    out = write_run(out_dir, used, init)
    meta = {**data.meta(options), "parameters": model.num_parameters(), "loss_unit": "nats/frame"}
    trainer = Trainer(
        model,
        train,
        valid,
        cfg,
        out,
        objective=frame_nll_objective,
        collate=collate_rolls,
        meta=meta,
    )
    return fit_and_summarize(trainer, resume)
