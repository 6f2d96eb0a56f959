"""The polyphonic piano-roll benchmark: train a frame model per set within a time budget,
choose it on ``valid``, score ``test`` once (``musegen benchmark polyphonic``).

A run config (``configs/polyphonic/<set>.json``; :func:`default_run` gives the same)::

    {"model": "rnn-nade", "model_config": {...}, "train": {TrainConfig fields},
     "data": {"max_frames": 128,      # training crops (None: whole pieces); eval never crops
              "transpose": 0,         # random transposition of training pieces, +-N keys
              "select_frames": 20000}} # cap on valid frames scored at each selection eval

Per set the output folder gets ``run/`` (the Trainer's log, checkpoint and ``best/``),
``model/`` (the selected model: lowest valid NLL seen during training) and ``result.json``
(valid and test NLL by :func:`musegen.metrics.frame_nll.frame_nll`, sizes, budget, seed).
A set whose ``result.json`` exists is loaded, not retrained, unless ``retrain``.

The budget: a few timed training steps give a first ``max_steps`` that fits training plus
the periodic valid evaluations into ``budget_min`` minutes; then, as the load of a shared
machine comes and goes, :class:`Deadline` re-plans ``max_steps`` every few steps from the
measured pace, so the cosine schedule ends when the budget does. The final full valid and
test evaluations come on top. (A resumed run keeps its last plan without re-planning.)
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from musegen.errors import MusegenError
from musegen.metrics.frame_nll import DATASETS, frame_nll
from musegen.train.config import TrainConfig

RUN_KEYS = {"model", "model_config", "train", "data"}
DATA_DEFAULTS: dict[str, Any] = {"max_frames": 128, "transpose": 0, "select_frames": 20000}
N_EVALS = 20  # selection evaluations per run (the budget decides the steps between them)

_NADE = {"cell": "lstm", "n_layer": 1, "d_embed": 128, "d_hidden": 256, "d_key": 96}
_TRAIN = {
    "lr": 0.015,
    "min_lr_ratio": 0.05,
    "weight_decay": 0.01,
    "betas": [0.9, 0.99],
    "grad_clip": 1.0,
    "warmup_steps": 50,
    "max_steps": 100000,  # the budget cuts this (see plan_steps)
    "patience": 0,
    "seed": 0,
    "log_every": 10,
    "progress": False,
    "device": "cpu",
}
# Chosen on valid only, with 5- and 15-minute runs on this project's shared 2-core CPU:
# small batches and a high learning rate learn fastest; JSB and Piano-midi overfit within
# minutes, and there random transposition (+-6 keys) with more dropout and weight decay won
# (JSB valid 4.61 against 4.77 without it), although it slows the first minutes down (every
# set is already in C major / C minor); Nottingham and MuseData were still improving at the
# end of their budget, so they train without it.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "jsb": {
        "model": "rnn-nade",
        "model_config": {**_NADE, "dropout": 0.4},
        "train": {**_TRAIN, "batch_size": 8, "lr": 0.02, "weight_decay": 0.1},
        "data": {"max_frames": None, "transpose": 6, "select_frames": 20000},
    },
    "nottingham": {
        "model": "rnn-nade",
        "model_config": {**_NADE, "dropout": 0.1},
        "train": {**_TRAIN, "batch_size": 8},
        "data": {"max_frames": 128, "transpose": 0, "select_frames": 15000},
    },
    "musedata": {
        "model": "rnn-nade",
        "model_config": {**_NADE, "dropout": 0.1},
        "train": {**_TRAIN, "batch_size": 8},
        "data": {"max_frames": 128, "transpose": 0, "select_frames": 15000},
    },
    "pianomidi": {
        "model": "rnn-nade",
        "model_config": {**_NADE, "dropout": 0.3},
        "train": {**_TRAIN, "batch_size": 8, "weight_decay": 0.1},
        "data": {"max_frames": 128, "transpose": 6, "select_frames": 15000},
    },
}


def default_run(dataset: str) -> dict[str, Any]:
    """The run config used for ``dataset`` (equal to ``configs/polyphonic/<dataset>.json``)."""
    if dataset not in _DEFAULTS:
        raise MusegenError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    return copy.deepcopy(_DEFAULTS[dataset])


def read_run(path: str | Path) -> dict[str, Any]:
    """A run config from JSON, checked for unknown keys."""
    try:
        run = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise MusegenError(f"{path}: cannot read run config ({e})") from e
    if not isinstance(run, dict) or set(run) - RUN_KEYS:
        raise MusegenError(f"{path}: a run config is a JSON object with keys {sorted(RUN_KEYS)}")
    unknown = set(run.get("data", {})) - set(DATA_DEFAULTS)
    if unknown:
        raise MusegenError(f"{path}: unknown data option(s) {sorted(unknown)}")
    return run


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


def plan_steps(
    model: Any,
    train_data: Any,
    collate: Callable[[list[Any]], Any],
    cfg: TrainConfig,
    select_frames: int,
    budget_s: float,
) -> dict[str, Any]:
    """Steps and evaluation period that fit ``budget_s`` seconds, from a few timed steps."""
    import torch

    from musegen.models.frame import frame_nll_objective

    probe = copy.deepcopy(model).train()
    opt = torch.optim.AdamW(probe.parameters(), lr=1e-9)
    rng = np.random.default_rng(cfg.seed)
    times, frames = [], []
    for _ in range(3):
        idx = rng.integers(len(train_data), size=cfg.batch_size)
        batch = collate([train_data[int(i)] for i in idx])
        t0 = time.perf_counter()
        loss, n = frame_nll_objective(probe, batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
        frames.append(n)
    step_s = float(np.median(times[1:]))
    with torch.no_grad():
        probe.eval()
        t0 = time.perf_counter()
        frame_nll_objective(probe, batch)
        fwd_per_frame = (time.perf_counter() - t0) / max(frames[-1], 1)
    eval_s = fwd_per_frame * select_frames * 1.2  # + trunk on padding, batching
    train_s = max(budget_s - N_EVALS * eval_s, budget_s / 2)  # evaluations take the rest
    steps = max(1, min(cfg.max_steps, int(train_s / step_s)))
    return {
        "max_steps": steps,
        "eval_every": max(1, steps // N_EVALS),
        "step_s": step_s,
        "eval_s": eval_s,
        "frames_per_step": float(np.mean(frames)),
    }


class Deadline:
    """An objective wrapper that keeps a run inside a wall-clock budget.

    While the model trains it re-plans, every ``every`` steps, the Trainer's ``max_steps``
    (and the evaluation period) from the pace measured since the first step, evaluations
    included; the Trainer reads both from its config at every step, so its cosine schedule
    stretches or shrinks to end on time. ``on_plan(max_steps)`` records each new plan.
    """

    def __init__(
        self,
        objective: Callable[[Any, Any], Any],
        cfg: TrainConfig,
        budget_s: float,
        state: Any,
        cap: int,
        every: int = 10,
        on_plan: Callable[[int], None] | None = None,
    ) -> None:
        self.objective = objective
        self.cfg = cfg
        self.budget_s = budget_s
        self.state = state  # the Trainer's (its .step is the current step)
        self.every = every
        self.on_plan = on_plan
        self.cap = cap  # never plan more steps than this
        self.start: tuple[float, int] | None = None

    def __call__(self, model: Any, batch: Any) -> Any:
        if model.training:
            self._replan(self.state.step)
        return self.objective(model, batch)

    def _replan(self, step: int) -> None:
        now = time.perf_counter()
        if self.start is None:
            self.start = (now, step)
            return
        t0, step0 = self.start
        done = step - step0
        if done < self.every or step % self.every:
            return
        pace = (now - t0) / done
        left = max(int((self.budget_s - (now - t0)) / pace), 1)
        steps = max(step + 1, min(self.cap, step + left))
        if steps != self.cfg.max_steps:
            self.cfg.max_steps = steps
            self.cfg.eval_every = self.cfg.checkpoint_every = max(1, steps // N_EVALS)
            if self.on_plan is not None:
                self.on_plan(steps)


def train_and_evaluate(
    dataset: str,
    out_dir: str | Path,
    budget_min: float,
    run: dict[str, Any] | None = None,
    retrain: bool = False,
    score_test: bool = True,
    log: Callable[[str], None] = print,
    peer: tuple[str, float] | None = None,
) -> dict[str, Any]:
    """Train (or load) the frame model of ``dataset``; returns and writes its ``result.json``.

    ``score_test=False`` is for choosing settings: ``test`` is left unread (``test_nll`` None).
    ``peer``: the published ``(name, test NLL)`` to record and log next to ours.
    """
    import torch

    from musegen.data.augment import transpose_roll
    from musegen.data.sources import get_source
    from musegen.data.training import RollDataset, collate_rolls
    from musegen.models import build_model, load_model, save_model
    from musegen.models.frame import frame_nll_objective
    from musegen.train.trainer import Trainer
    from musegen.utils import atomic_write_text

    out = Path(out_dir) / dataset
    result_path = out / "result.json"
    if result_path.exists() and (out / "model").is_dir() and not retrain:
        log(f"{dataset}: loading the finished run in {out} (pass --retrain to train again)")
        result = json.loads(result_path.read_text())
        if result.get("test_nll") is None and score_test:  # chosen on valid, not yet tested
            model, _ = load_model(out / "model")
            test = frame_nll(model, get_source(dataset).rolls()["test"])
            result.update(test_nll=test.nll_per_frame, test=test.to_dict())
            atomic_write_text(result_path, json.dumps(result, indent=2))
            config_path = out / "model" / "config.json"
            meta = json.loads(config_path.read_text())
            atomic_write_text(
                config_path, json.dumps({**meta, "test_nll": result["test_nll"]}, indent=2)
            )
            log(f"{dataset}: test {test.nll_per_frame:.3f} nats/frame (scored once, now)")
        return result
    if retrain:
        shutil.rmtree(out, ignore_errors=True)

    run = run if run is not None else default_run(dataset)
    data_opts = {**DATA_DEFAULTS, **run.get("data", {})}
    cfg = TrainConfig.from_dict({**run.get("train", {}), "eval_batches": 0})
    rolls = get_source(dataset).rolls()
    train_rolls, valid_rolls, test_rolls = rolls["train"], rolls["valid"], rolls["test"]

    torch.manual_seed(cfg.seed)
    model = build_model(run["model"], **run.get("model_config", {}))
    shift = int(data_opts["transpose"])
    train_ds = RollDataset(
        train_rolls,
        augment=partial(transpose_roll, max_shift=shift) if shift else None,
        max_frames=data_opts["max_frames"],
        seed=cfg.seed,
    )
    train_data = RandomDraws(train_ds)
    select = selection_subset(valid_rolls, int(data_opts["select_frames"]))
    valid_data = RollDataset(select)

    run_dir = out / "run"
    plan_path = out / "plan.json"
    resume = (run_dir / "checkpoint").exists() and plan_path.exists()
    if resume:
        plan = json.loads(plan_path.read_text())
        log(f"{dataset}: resuming {run_dir} at its planned {plan['max_steps']} steps")
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        plan = plan_steps(
            model, train_ds, collate_rolls, cfg, sum(map(len, select)), budget_min * 60
        )
        plan["budget_min"] = budget_min
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(plan_path, json.dumps(plan, indent=2))
    cap = cfg.max_steps
    cfg.max_steps = plan["max_steps"]
    cfg.eval_every = cfg.checkpoint_every = plan["eval_every"]
    cfg.warmup_steps = min(cfg.warmup_steps, max(cfg.max_steps // 10, 1))
    used = {**run, "model_config": model.config.to_dict(), "train": cfg.to_dict()}
    used["data"] = data_opts
    atomic_write_text(out / "run.json", json.dumps(used, indent=2))
    log(
        f"{dataset}: {run['model']} with {model.num_parameters():,} parameters; "
        f"{cfg.max_steps} steps of ~{plan['frames_per_step']:.0f} frames "
        f"(~{plan['step_s']:.2f} s/step measured), {budget_min:g} min budget, "
        f"{torch.get_num_threads()} CPU thread(s)"
    )
    meta = {"dataset": dataset, "protocol": "boulanger-lewandowski-2012", "data": data_opts}
    trainer = Trainer(
        model,
        train_data,
        valid_data,
        cfg,
        run_dir,
        objective=frame_nll_objective,
        collate=collate_rolls,
        meta=meta,
    )
    t0 = time.perf_counter()
    if not resume:

        def record(steps: int) -> None:
            plan.update(max_steps=steps, eval_every=cfg.eval_every)
            atomic_write_text(plan_path, json.dumps(plan, indent=2))

        trainer.objective = Deadline(
            frame_nll_objective, cfg, budget_min * 60, trainer.state, cap, on_plan=record
        )
    state = trainer.fit(resume=resume)
    train_s = time.perf_counter() - t0

    best, _ = load_model(run_dir / "best")
    t0 = time.perf_counter()
    valid = frame_nll(best, valid_rolls)
    # the one and only test evaluation of this model
    test = frame_nll(best, test_rolls) if score_test else None
    eval_s = time.perf_counter() - t0
    best_step = min(state.history, key=lambda h: h["valid_loss"])["step"]
    result = {
        "dataset": dataset,
        "model": run["model"],
        "parameters": best.num_parameters(),
        "valid_nll": valid.nll_per_frame,
        "test_nll": test.nll_per_frame if test else None,
        "valid": valid.to_dict(),
        "test": test.to_dict() if test else None,
        "selection_valid_nll": state.best_valid,
        "best_step": best_step,
        "steps": state.step,
        "budget_min": budget_min,
        "train_seconds": round(train_s, 1),
        "eval_seconds": round(eval_s, 1),
        "threads": torch.get_num_threads(),
        "device": str(trainer.device),
        "seed": cfg.seed,
        "peer": {"name": peer[0], "test_nll": peer[1]} if peer else None,
        "unit": "nats/frame",
    }
    save_model(best, out / "model", {**meta, **{k: result[k] for k in _MODEL_FACTS}})
    atomic_write_text(result_path, json.dumps(result, indent=2))
    test_txt = f"{test.nll_per_frame:.3f}" if test else "not scored"
    peer_txt = f" (peer {peer[0]} {peer[1]})" if peer else ""
    log(
        f"{dataset}: valid {valid.nll_per_frame:.3f}, test {test_txt} nats/frame{peer_txt}; "
        f"trained {train_s / 60:.1f} min, {state.step} steps"
    )
    return result


_MODEL_FACTS = ("parameters", "valid_nll", "test_nll", "best_step", "seed", "budget_min")


def cpu_note() -> str:
    """What ran the benchmark, for its output."""
    import torch

    return (
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s) of "
        f"{os.cpu_count()} CPU core(s), fp32"
    )
