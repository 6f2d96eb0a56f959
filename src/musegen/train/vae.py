"""Train a MusicVAE (``"music-vae"``, :mod:`musegen.models.vae`) with the one trainer.

The data is a dataset prepared with the ``melody`` tokenizer (``musegen data prepare folk
--tokenizer melody --out data/folk-melody``; ``musegen train --data DIR`` names it), or, for a
model of four voices (``voices`` 4), with the ``chorale`` tokenizer (``musegen data prepare
bach --tokenizer chorale``). Each piece's cells after its first bar line (the pickup is left
out) are cut into *units* of ``steps_per_bar`` steps (rows of cells, one per voice): pieces
whose meter's bar is that long (4/4, 2/2 at 16 steps) or a divisor or multiple of it (2/4: two
bars make a unit; 4/2: one bar makes two) are used, the others (3/4, 6/8 ...) skipped, so that
units start on bar lines. Segments are windows of ``n_bars`` units, ``hop_bars`` apart; windows
that are rests only are dropped.

A run file::

    {"model": "music-vae", "model_config": {"n_bars": 2, "decoder": "flat", ...},
     "train": {"batch_size": 64, "max_steps": 1500, ...},
     "data": {"root": null, "hop_bars": 1, "transpose": 5, "max_valid": 2000}}

``init_parts`` (optional, ``{"model": REF, "parts": ["embed", "decoder", ...]}``): before
training, the named modules' weights are copied from another saved ``music-vae`` (a folder or
a shipped name) whose networks differ elsewhere, e.g. a 2-bar VAE's decoder as the bar decoder
of a 16-bar hierarchical one (``segment_bars`` 2, ``bar_embed`` = its latent, ``bar_tanh``
false). Every tensor of a named part must exist in both with one shape.

``transpose``: each training segment moves by a random number of semitones up to that far
(within the model's pitch range), drawn from (seed, item). ``max_valid``: the valid windows
scored at each evaluation (every k-th, evenly spread). The model folder records the
tokenizer's config (``tokenizer``), so a melody file can be encoded the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from musegen.errors import MusegenError
from musegen.train.config import TrainConfig

DATA_DEFAULTS: dict[str, Any] = {"root": None, "hop_bars": 1, "transpose": 5, "max_valid": 2000}


def piece_units(ids: np.ndarray, tokenizer: Any, steps_per_bar: int) -> np.ndarray | None:
    """``[units, steps_per_bar * voices]`` cell ids of one ``melody`` or ``chorale`` piece from
    its first bar line (the last unit padded with rests; a unit's rows one after another), or
    None when its meter does not fit the units."""
    ids = np.asarray(ids, dtype=np.int64)
    ts_lo, ts_hi = tokenizer.vocab.span("ts")
    bar_lo, bar_hi = tokenizer.vocab.span("bar")
    heads = ids[(ids >= ts_lo) & (ids < ts_hi)]
    if not len(heads):
        return None
    bar = tokenizer.config.bar_steps(tokenizer.config.time_signatures[int(heads[0]) - ts_lo])
    if not (bar % steps_per_bar == 0 or steps_per_bar % bar == 0):
        return None
    marks = np.flatnonzero((ids >= bar_lo) & (ids < bar_hi))
    if not len(marks):
        return None
    cells = ids[marks[0] :]
    cells = cells[cells >= tokenizer.rest_id]
    width = steps_per_bar * tokenizer.n_voices
    n = math.ceil(len(cells) / width)
    out = np.full(n * width, tokenizer.rest_id, dtype=np.int64)
    out[: len(cells)] = cells
    return out.reshape(n, width)


def melody_segments(
    pieces: Any, tokenizer: Any, config: Any, hop_bars: int = 1
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Every window of ``config.n_bars`` units of ``pieces`` (token arrays), as VAE classes
    ``[windows, n_steps]``, and where each came from (piece index, first unit). A note held
    into a window starts at its first step (:func:`musegen.models.vae_steps.cut_segment`)."""
    from musegen.models.vae_steps import REST, cells_to_steps, cut_segment

    rows, origin = [], []
    unit = config.bar_classes
    for i, ids in enumerate(pieces):
        units = piece_units(ids, tokenizer, config.steps_per_bar)
        if units is None or len(units) < config.n_bars:
            continue
        steps = cells_to_steps(units, tokenizer, config).reshape(-1)
        for start in range(0, len(units) - config.n_bars + 1, hop_bars):
            window = cut_segment(steps, start * unit, config.n_steps, config.voices)
            if (window != REST).any():
                rows.append(window)
                origin.append((i, start))
    if not rows:
        return np.zeros((0, config.n_steps), dtype=np.int64), []
    return np.stack(rows), origin


class SegmentDataset:
    """Segments as LongTensors; with ``transpose`` > 0, item ``i`` moves by a shift drawn from
    (seed, i) that keeps its pitches in range, and the dataset reads as ``repeats`` copies so
    the trainer's indices see fresh shifts."""

    def __init__(
        self, segments: np.ndarray, n_classes: int, transpose: int = 0, seed: int = 0
    ) -> None:
        self.segments = segments
        self.n_classes = n_classes
        self.transpose = transpose
        self.seed = seed
        self.repeats = 1000 if transpose else 1

    def __len__(self) -> int:
        return len(self.segments) * self.repeats

    def __getitem__(self, index: int) -> Any:
        import torch

        from musegen.models.vae_steps import FIRST_PITCH

        row = self.segments[index % len(self.segments)]
        if self.transpose:
            pitched = row >= FIRST_PITCH
            if pitched.any():
                lo = max(-self.transpose, FIRST_PITCH - int(row[pitched].min()))
                hi = min(self.transpose, self.n_classes - 1 - int(row[pitched].max()))
                if lo <= hi:
                    rng = np.random.default_rng((self.seed, index))
                    row = row.copy()
                    row[pitched] += int(rng.integers(lo, hi + 1))
        return torch.as_tensor(row, dtype=torch.long)


def data_options(run: dict[str, Any], data_path: str | Path | None) -> dict[str, Any]:
    """The run file's ``data`` section over :data:`DATA_DEFAULTS`, ``data_path`` as its root."""
    from musegen.train.run import data_section, require_counts

    options = data_section(run, DATA_DEFAULTS, "music-vae", data_path)
    require_counts(options, {"hop_bars": 1, "transpose": 0, "max_valid": 1})
    if not options["root"]:
        raise MusegenError(
            "training music-vae needs --data DIR, a dataset made by "
            "'musegen data prepare SOURCE --tokenizer melody'"
        )
    return options


LOSS_FIELDS = ("free_bits", "beta", "beta_warmup", "dropout", "input_dropout", "autoregressive")


def saved_vae(ref: str, option: str) -> Any:
    """The saved ``music-vae`` that ``ref`` (a shipped name or a folder) names, for the run
    option ``option``; another kind of model is an error."""
    from musegen.models import load_model
    from musegen.models.pretrained import resolve_model

    source, meta = load_model(resolve_model(ref))
    if meta.get("model") != "music-vae":
        raise MusegenError(f"{option}: {ref} is a {meta.get('model')} model, not a music-vae")
    return source


def load_vae_init(model: Any, ref: str) -> None:
    """Copy the weights of the saved ``music-vae`` ``ref`` into ``model`` (``--init``).

    The networks must be the same; the objective's settings (:data:`LOSS_FIELDS`: free bits,
    KL weight and its warm-up, dropouts, whether the decoder reads its previous steps) may
    differ, so a trained VAE can go on with a larger KL budget or as a decoder of z alone. The KL step counter comes along: a warm-up already done stays done.
    """
    source = saved_vae(ref, "--init")
    mine, theirs = model.config.to_dict(), source.config.to_dict()
    differ = sorted(k for k in mine if k not in LOSS_FIELDS and mine[k] != theirs.get(k))
    if differ:
        raise MusegenError(
            f"--init {ref}: its network differs from the run file's in {', '.join(differ)}"
        )
    model.load_state_dict(source.state_dict())


def copy_parts(model: Any, spec: Any) -> None:
    """Copy the modules ``spec["parts"]`` of the saved ``music-vae`` ``spec["model"]`` into
    ``model`` (the run file's ``init_parts``); the rest keeps its fresh initialisation."""
    parts = spec.get("parts") if isinstance(spec, dict) else None
    if (
        set(spec or {}) != {"model", "parts"}
        or not isinstance(parts, list)
        or not all(isinstance(p, str) for p in parts)
    ):
        raise MusegenError('init_parts must be {"model": NAME_OR_FOLDER, "parts": [MODULE, ...]}')
    source = saved_vae(str(spec["model"]), "init_parts")
    theirs, mine = source.state_dict(), model.state_dict()
    copied = {}
    for part in parts:
        keys = [k for k in theirs if k.startswith(f"{part}.")]
        if not keys:
            raise MusegenError(f"init_parts: {spec['model']} has no module {part!r}")
        for key in keys:
            if key not in mine or mine[key].shape != theirs[key].shape:
                got = tuple(mine[key].shape) if key in mine else "nothing"
                raise MusegenError(
                    f"init_parts: {key} is {tuple(theirs[key].shape)} in {spec['model']} "
                    f"but {got} in the run's model"
                )
            copied[key] = theirs[key]
    model.load_state_dict(copied, strict=False)


@dataclass
class VaeData:
    """The tokenizer of a prepared melody dataset and its segments per split."""

    tokenizer: Any
    segments: dict[str, np.ndarray]


def load_vae_data(root: str | Path, config: Any, hop_bars: int) -> VaeData:
    """The segments of every split of the ``melody`` (or ``chorale``) dataset at ``root``."""
    from musegen.data.dataset import load_prepared
    from musegen.models.vae_steps import check_voices

    data = load_prepared(root)
    tok = data.tokenizer
    check_voices(tok, config, str(root))
    segments = {
        name: melody_segments(data.split(name), tok, config, hop_bars)[0]
        for name in data.split_names
    }
    for name in ("train", "valid"):
        if not len(segments.get(name, ())):
            raise MusegenError(
                f"{root}: no {config.n_bars}-bar segments in the {name} split "
                f"(units of {config.steps_per_bar} steps; meters such as 4/4, 2/2, 2/4)"
            )
    return VaeData(tok, segments)


def train_vae(
    run: dict[str, Any],
    out_dir: str | Path,
    resume: bool = False,
    init: str | None = None,
    data_path: str | Path | None = None,
) -> dict[str, Any]:
    """Train as the run file says; returns the summary (steps, best valid loss, size)."""

    from musegen.models.vae import vae_objective
    from musegen.train.run import fit_and_summarize, initial_model, write_run
    from musegen.train.trainer import Trainer

    cfg = TrainConfig.from_dict(run.get("train", {}))
    options = data_options(run, data_path)
    model = initial_model("music-vae", run.get("model_config", {}), cfg.seed, None, resume)
    parts = run.get("init_parts")
    if parts is not None and not resume and init is None:  # --init brings every weight
        copy_parts(model, parts)
    if init is not None and not resume:
        load_vae_init(model, init)
    data = load_vae_data(options["root"], model.config, options["hop_bars"])
    train = SegmentDataset(
        data.segments["train"], model.config.n_classes, options["transpose"], cfg.seed
    )
    valid_rows = data.segments["valid"]
    valid_rows = valid_rows[:: max(1, math.ceil(len(valid_rows) / options["max_valid"]))]
    valid = SegmentDataset(valid_rows, model.config.n_classes)
    used = {"model": "music-vae", "model_config": model.config.to_dict(), "train": cfg.to_dict()}
    used["data"] = options
    if parts is not None:
        used["init_parts"] = parts
    out = write_run(out_dir, used, init)
    meta = {
        "tokenizer": data.tokenizer.to_dict(),
        "data": options,
        "segments": {k: len(v) for k, v in data.segments.items()},
        "parameters": model.num_parameters(),
        "loss_unit": "nats/step (cross-entropy + beta * KL over free bits)",
    }
    trainer = Trainer(model, train, valid, cfg, out, objective=vae_objective, meta=meta)
    return fit_and_summarize(trainer, resume)
