"""Frame NLL on the four Boulanger-Lewandowski (2012) piano-roll sets, ours vs RNN-NADE.

For each set (JSB Chorales, Nottingham, MuseData, Piano-midi) a frame model is trained with
the one trainer within ``--budget`` minutes of this machine's CPU (settings in
``configs/polyphonic/SET.json``, a ``musegen train`` run file: :mod:`musegen.train.frame`),
the checkpoint with the lowest valid NLL is kept, and the test split is scored once: NLL in
nats per time step, summed over the 88 keys of each frame, averaged over every frame of every
test piece, the first frame of each piece predicted from an empty context
(``musegen.metrics.frame_nll``). The peer is BL-2012's RNN-NADE (5.19 on JSB: its HF-trained
variant; 2.31 / 5.60 / 7.05 on the others).

The budget: a few timed training steps give a first ``max_steps`` that fits training plus
the periodic valid evaluations into ``--budget`` minutes; then, as the load of a shared
machine comes and goes, :class:`Deadline` re-plans ``max_steps`` every few steps from the
measured pace, so the cosine schedule ends when the budget does. The final full valid and
test evaluations come on top. (A resumed run keeps its last plan without re-planning.)

Per set ``--out`` gets ``SET/run/`` (the trainer's log, checkpoint and ``best/``),
``SET/model/`` (the selected model), ``SET/result.json`` (valid and test NLL, sizes, budget,
seed) and ``SET/plan.json``; a set whose ``result.json`` exists is loaded, not retrained
(``--retrain`` to train again). At the end ``results.json`` holds them all.

Prints one JSON line per set: ``{"benchmark": "polyphonic.test_nll.jsb", "ours": ..., "peer":
5.19, "ratio": peer/ours, "unit": "nats/frame", "valid_nll": ..., ...}`` (ratio > 1: ours
better), then the Markdown table of ours next to the published figures on stderr.
Run: ``python benchmarks/polyphonic.py --budget 15`` (``--datasets jsb`` for one set).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from musegen.errors import MusegenError
from musegen.metrics.frame_nll import DATASETS
from musegen.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
N_EVALS = 20  # selection evaluations per run (the budget decides the steps between them)

# published test NLL, nats per frame (BL-2012 report log-likelihoods; these are -LL), as
# quoted in shared/data/README.md
PUBLISHED: dict[str, dict[str, float | None]] = {
    "RNN (BL-2012)": {"jsb": 8.71, "nottingham": 4.46, "musedata": 8.13, "pianomidi": 8.37},
    "RNN-RBM (BL-2012)": {"jsb": 6.27, "nottingham": 2.39, "musedata": 6.01, "pianomidi": 7.09},
    "RNN-NADE (BL-2012)": {"jsb": 5.56, "nottingham": 2.31, "musedata": 5.60, "pianomidi": 7.05},
    "RNN-NADE HF (BL-2012)": {"jsb": 5.19, "nottingham": None, "musedata": None, "pianomidi": None},
    "DMM (Krishnan 2017)": {"jsb": 6.39, "nottingham": 2.77, "musedata": 6.83, "pianomidi": 7.83},
}
# the figure to beat per set: the best RNN-NADE result (HF-trained on JSB)
PEER: dict[str, tuple[str, float]] = {
    "jsb": ("RNN-NADE HF (BL-2012)", 5.19),
    "nottingham": ("RNN-NADE (BL-2012)", 2.31),
    "musedata": ("RNN-NADE (BL-2012)", 5.60),
    "pianomidi": ("RNN-NADE (BL-2012)", 7.05),
}
# what the selected model's folder records of its run, beside the data it read
MODEL_FACTS = ("parameters", "valid_nll", "test_nll", "best_step", "seed", "budget_min")


# ----------------------------------------------------------------------------- budget
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


# ----------------------------------------------------------------------------- one set
def read_run(path: Path, dataset: str) -> dict[str, Any]:
    """The run file of ``dataset`` (a ``musegen train`` run file naming that set)."""
    from musegen.train.run import read_run_file

    if not path.is_file():
        raise MusegenError(f"{path}: no run file for {dataset} (see configs/polyphonic/)")
    run = read_run_file(path)
    source = (run.get("data") or {}).get("source", dataset)
    if source != dataset:
        raise MusegenError(f"{path}: its data.source is {source!r}, not {dataset!r}")
    return run


def train_and_evaluate(
    dataset: str,
    out_dir: str | Path,
    budget_min: float,
    run: dict[str, Any],
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

    from musegen.data.training import collate_rolls
    from musegen.metrics.frame_nll import frame_nll
    from musegen.models import build_model, load_model, save_model
    from musegen.models.frame import frame_nll_objective
    from musegen.train.frame import data_options, frame_datasets, load_rolls
    from musegen.train.trainer import Trainer
    from musegen.utils import atomic_write_text

    out = Path(out_dir) / dataset
    result_path = out / "result.json"
    options = data_options({**run, "data": {**(run.get("data") or {}), "source": dataset}})
    if result_path.exists() and (out / "model").is_dir() and not retrain:
        log(f"{dataset}: loading the finished run in {out} (pass --retrain to train again)")
        result = json.loads(result_path.read_text())
        if result.get("test_nll") is None and score_test:  # chosen on valid, not yet tested
            model, _ = load_model(out / "model")
            test = frame_nll(model, load_rolls(options).rolls["test"])
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

    cfg = TrainConfig.from_dict({**run.get("train", {}), "eval_batches": 0})
    data = load_rolls(options)
    torch.manual_seed(cfg.seed)
    model = build_model(run["model"], **{**run.get("model_config", {}), "n_keys": data.n_keys})
    train_data, valid_data = frame_datasets(data, options, cfg.seed)

    run_dir = out / "run"
    plan_path = out / "plan.json"
    resume = (run_dir / "checkpoint").exists() and plan_path.exists()
    if resume:
        plan = json.loads(plan_path.read_text())
        log(f"{dataset}: resuming {run_dir} at its planned {plan['max_steps']} steps")
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        select_frames = sum(map(len, valid_data.rolls))
        plan = plan_steps(
            model, train_data.dataset, collate_rolls, cfg, select_frames, budget_min * 60
        )
        plan["budget_min"] = budget_min
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(plan_path, json.dumps(plan, indent=2))
    cap = cfg.max_steps
    cfg.max_steps = plan["max_steps"]
    cfg.eval_every = cfg.checkpoint_every = plan["eval_every"]
    cfg.warmup_steps = min(cfg.warmup_steps, max(cfg.max_steps // 10, 1))
    used = {**run, "model_config": model.config.to_dict(), "train": cfg.to_dict()}
    used["data"] = options
    atomic_write_text(out / "run.json", json.dumps(used, indent=2))
    log(
        f"{dataset}: {run['model']} with {model.num_parameters():,} parameters; "
        f"{cfg.max_steps} steps of ~{plan['frames_per_step']:.0f} frames "
        f"(~{plan['step_s']:.2f} s/step measured), {budget_min:g} min budget, "
        f"{torch.get_num_threads()} CPU thread(s)"
    )
    meta = data.meta(options)
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
    valid = frame_nll(best, data.rolls["valid"])
    # the one and only test evaluation of this model
    test = frame_nll(best, data.rolls["test"]) if score_test else None
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
    save_model(best, out / "model", {**meta, **{k: result[k] for k in MODEL_FACTS}})
    atomic_write_text(result_path, json.dumps(result, indent=2))
    test_txt = f"{test.nll_per_frame:.3f}" if test else "not scored"
    peer_txt = f" (peer {peer[0]} {peer[1]})" if peer else ""
    log(
        f"{dataset}: valid {valid.nll_per_frame:.3f}, test {test_txt} nats/frame{peer_txt}; "
        f"trained {train_s / 60:.1f} min, {state.step} steps"
    )
    return result


# ----------------------------------------------------------------------------- output
def markdown_table(results: list[dict[str, Any]]) -> str:
    """Ours (valid, test) next to the published test figures, one row per set."""
    head = (
        "| set | ours valid | ours test | RNN-NADE | RNN-RBM | RNN | peer / ours "
        "| parameters | budget (min) | trained (min) |"
    )
    rows = [head, "|" + "---|" * 10]
    for r in results:
        d = r["dataset"]
        nade = PUBLISHED["RNN-NADE (BL-2012)"][d]
        hf = PUBLISHED["RNN-NADE HF (BL-2012)"][d]
        nade_txt = f"{nade} / {hf} (HF)" if hf else f"{nade}"
        rows.append(
            f"| {d} | {r['valid_nll']:.3f} | {r['test_nll']:.3f} | {nade_txt} "
            f"| {PUBLISHED['RNN-RBM (BL-2012)'][d]} | {PUBLISHED['RNN (BL-2012)'][d]} "
            f"| {PEER[d][1] / r['test_nll']:.3f} | {r['parameters']:,} "
            f"| {r['budget_min']:g} | {r['train_seconds'] / 60:.1f} |"
        )
    return "\n".join(rows)


def json_lines(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One benchmark record per set (the JSON-lines format of ``benchmarks/``)."""
    return [
        {
            "benchmark": f"polyphonic.test_nll.{r['dataset']}",
            "ours": round(r["test_nll"], 4),
            "peer": PEER[r["dataset"]][1],
            "peer_name": PEER[r["dataset"]][0],
            "ratio": round(PEER[r["dataset"]][1] / r["test_nll"], 4),
            "unit": "nats/frame",
            "valid_nll": round(r["valid_nll"], 4),
            "parameters": r["parameters"],
            "budget_min": r["budget_min"],
            "train_minutes": round(r["train_seconds"] / 60, 2),
            "threads": r["threads"],
            "device": r["device"],
        }
        for r in results
    ]


def cpu_note() -> str:
    """What ran the benchmark, for its output."""
    import torch

    return (
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s) of "
        f"{os.cpu_count()} CPU core(s), fp32"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated sets")
    ap.add_argument("--budget", type=float, default=15.0, help="training minutes per set")
    ap.add_argument("--out", default=str(ROOT / "runs" / "polyphonic"), help="output folder")
    ap.add_argument("--configs", default=str(ROOT / "configs" / "polyphonic"), help="SET.json")
    ap.add_argument("--retrain", action="store_true", help="train again even if a result exists")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: busy shared CPU)")
    args = ap.parse_args(argv)
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(names) - set(DATASETS))
    if unknown or not names:
        ap.error(f"unknown dataset(s) {unknown}; choose from {', '.join(DATASETS)}")
    if args.budget <= 0:
        ap.error("--budget must be a positive number of minutes")

    import torch

    torch.set_num_threads(args.threads)
    note = f"CPU budget {args.budget:g} min of training per set; {cpu_note()}; no GPU"
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    log(f"# {note}")
    results = []
    for name in names:
        run = read_run(Path(args.configs) / f"{name}.json", name)
        result = train_and_evaluate(
            name, args.out, args.budget, run, args.retrain, log=log, peer=PEER[name]
        )
        results.append(result)
        (record,) = json_lines([result])
        print(json.dumps({**record, "cpu": note}), flush=True)
    print(markdown_table(results), file=sys.stderr)
    summary = {"cpu": note, "results": results, "records": json_lines(results)}
    from musegen.utils import atomic_write_text

    atomic_write_text(Path(args.out) / "results.json", json.dumps(summary, indent=2))
    log(f"written: {Path(args.out) / 'results.json'}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except MusegenError as e:
        print(f"polyphonic: {e}", file=sys.stderr)
        raise SystemExit(2) from None
