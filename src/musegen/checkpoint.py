"""What every resumable training loop shares: Ctrl-C that finishes the step
(:func:`stop_requests`), folders swapped in whole (:func:`written_whole`, :func:`replace_dir`,
:func:`recover_swap`), and an optimizer's state as flat tensors plus JSON
(:func:`flatten_optimizer`, :func:`restore_optimizer`) for safetensors, never pickles.

:func:`save_training_state` / :func:`load_training_state`: the whole state of a small loop
(weights, optimizer, schedule, random states, a JSON record, the run's settings) in one
folder (:data:`CHECKPOINT` in the run's folder, :func:`run_checkpoint`); :func:`resumable_steps`:
such a loop's steps, bar, Ctrl-C and checkpoints. Used by the one trainer
(:mod:`musegen.train.trainer`), ``train rl``, the audio trainers and RL-Chord's tuning.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CHECKPOINT = "checkpoint"  # a run folder's checkpoint folder


@contextmanager
def stop_requests(enabled: bool) -> Iterator[list[int]]:
    """While one process trains: Ctrl-C (SIGINT) or SIGTERM lands in the list it yields, and
    the loop finishes the step it is on, saves a checkpoint and stops; a second signal of the
    same kind acts as usual, at once. Under torchrun (``enabled`` false) the ranks could stop
    at different steps, so signals keep their usual effect there (resume from the last
    periodic checkpoint)."""
    asked: list[int] = []
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield asked
        return
    before = {}
    for k in (signal.SIGINT, signal.SIGTERM):
        h = signal.getsignal(k)
        before[k] = signal.SIG_DFL if h is None else h  # None: a handler set outside Python

    def ask(kind: int, _frame: Any) -> None:
        asked.append(kind)
        signal.signal(kind, before[kind])

    for k in before:
        signal.signal(k, ask)
    try:
        yield asked
    finally:
        for k, h in before.items():
            signal.signal(k, h)


def recover_swap(final: Path) -> None:
    """Finish what :func:`replace_dir` left half-done when a run was killed between its two
    renames: the old folder goes back under its name (a new one left as ``.tmp`` is dropped
    by the next save; the steps since the old one are trained again, alike)."""
    old = final.with_name(final.name + ".old")
    if old.is_dir() and not final.exists():
        os.replace(old, final)


def replace_dir(tmp: Path, final: Path) -> None:
    """Swap a fully written folder into place; the old one survives until the swap."""
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def written_whole(final: Path) -> Iterator[Path]:
    """A fresh ``FINAL.tmp`` folder to write ``final`` into, swapped in whole
    (:func:`replace_dir`) when the block ends; if the block raises, it is removed and
    ``final`` stays as it was."""
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, final)


def flatten_optimizer(
    opt: torch.optim.Optimizer, sd: dict[str, Any] | None = None
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """The optimizer's state dict (``sd``, else its own) as flat tensors and JSON groups."""
    sd = sd if sd is not None else opt.state_dict()
    tensors = {}
    for pid, state in sd["state"].items():
        for k, v in state.items():
            t = v if isinstance(v, torch.Tensor) else torch.tensor(v)
            tensors[f"opt.{pid}.{k}"] = t.detach().cpu().contiguous()
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    for g in groups:
        g["betas"] = list(g.get("betas", ()))
    return tensors, groups


def optimizer_state(
    tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]
) -> dict[str, Any]:
    """An optimizer state dict from what :func:`flatten_optimizer` saved."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        if key.startswith("opt."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = t
    for g in groups:
        g["betas"] = tuple(g["betas"])
    return {"state": state, "param_groups": groups}


def restore_optimizer(
    opt: torch.optim.Optimizer,
    tensors: dict[str, torch.Tensor],
    groups: list[dict[str, Any]],
    device: torch.device,
) -> None:
    opt.load_state_dict(optimizer_state(tensors, groups))
    for s in opt.state.values():
        for k, v in s.items():
            if isinstance(v, torch.Tensor) and k != "step":
                s[k] = v.to(device)


def save_training_state(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: Any,
    rng: Any,
    state: dict[str, Any],
    settings: dict[str, Any],
    tensors: dict[str, torch.Tensor] | None = None,
) -> None:
    """A small training loop's whole state in ``folder``, swapped in whole: the model's
    weights (``model.safetensors``), the optimizer, the torch RNG and ``tensors``
    (``state.safetensors``), the schedule, the numpy ``rng``, the JSON ``state`` and the
    run's ``settings`` (``state.json``; a resume must bring the same settings)."""
    from safetensors.torch import save_file

    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    flat, groups = flatten_optimizer(optimizer)
    extra = {f"extra.{k}": v.detach().cpu().contiguous() for k, v in (tensors or {}).items()}
    info = {
        "state": state,
        "settings": settings,
        "param_groups": groups,
        "schedule": schedule.state_dict() if schedule is not None else None,
        "rng": rng.bit_generator.state,
    }
    with written_whole(folder) as tmp:
        tmp.mkdir(parents=True)
        save_file(weights, str(tmp / "model.safetensors"))
        save_file(
            {**flat, **extra, "torch_rng": torch.get_rng_state()}, str(tmp / "state.safetensors")
        )
        (tmp / "state.json").write_text(json.dumps(info))


def has_training_state(folder: Path) -> bool:
    """Whether ``folder`` holds a state :func:`save_training_state` wrote (a swap a kill
    interrupted is finished first)."""
    recover_swap(folder)
    return (folder / "state.json").is_file()


def load_training_state(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: Any,
    rng: Any,
    settings: dict[str, Any],
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """What :func:`save_training_state` wrote, into the live objects (``--resume``; said on
    ``log`` when given); returns the JSON ``state`` and the extra tensors. Raises
    :class:`~musegen.errors.MusegenError`, before touching anything, when the folder is
    unreadable or was saved with other ``settings`` (its steps too: a schedule spans them),
    and when it does not fit the model."""
    from safetensors.torch import load_file

    from musegen.errors import MusegenError

    try:
        info = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError) as e:
        raise MusegenError(f"{folder}: checkpoint is unreadable ({e})") from e
    check_same_run(folder, info.get("settings") or {}, settings)
    try:
        saved = load_file(str(folder / "state.safetensors"))
        weights = load_file(str(folder / "model.safetensors"))
        model.load_state_dict(weights)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise MusegenError(f"{folder}: checkpoint is unreadable or not this run's ({e})") from e
    torch.set_rng_state(saved.pop("torch_rng"))
    extra = {k[len("extra.") :]: v for k, v in saved.items() if k.startswith("extra.")}
    restore_optimizer(optimizer, saved, info["param_groups"], torch.device("cpu"))
    if schedule is not None:
        schedule.load_state_dict(info["schedule"])
    rng.bit_generator.state = info["rng"]
    if log is not None:
        log(f"resumed at step {info['state']['step']} from {folder}")
    return info["state"], extra


def saved_step(folder: Path) -> int | None:
    """The step a :func:`save_training_state` folder was saved at (its JSON ``state``'s
    ``step``), or None when there is none."""
    if not has_training_state(folder):
        return None
    try:
        return int(json.loads((folder / "state.json").read_text())["state"]["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_resume(folder: Path, resume: bool, holds: str) -> None:
    """Before any work: a run whose checkpoint ``folder`` exists needs ``--resume`` (``holds``
    says so), and ``--resume`` needs one."""
    from musegen.errors import MusegenError

    there = has_training_state(folder)
    if there and not resume:
        raise MusegenError(f"{holds}: add --resume to go on with it, or give another --out")
    if resume and not there:
        raise MusegenError(
            f"{folder}: no checkpoint to resume from: run the same command without --resume"
        )


def run_checkpoint(out: str | Path, resume: bool, holds: str) -> Path:
    """The checkpoint folder of the run in ``out`` (``out/checkpoint``), checked by
    :func:`check_resume` before any work."""
    folder = Path(out) / CHECKPOINT
    check_resume(folder, resume, holds)
    return folder


def check_same_run(folder: Path, saved: dict[str, Any], now: dict[str, Any]) -> None:
    """``--resume`` goes on with the run's own settings (its steps too: a schedule spans
    them)."""
    from musegen.errors import MusegenError

    changed = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if changed:
        raise MusegenError(
            f"{folder}: --resume with other settings than the run's ({', '.join(changed)})"
        )


@dataclass
class Step:
    """One step of :func:`resumable_steps`: its ``number``, whether it is ``due`` (a
    validation and checkpoint step: every ``every`` steps and the last), and the progress
    ``bar`` (for ``set_postfix``)."""

    number: int
    due: bool
    bar: Any


def resumable_steps(
    total: int,
    every: int,
    state: dict[str, Any],
    folder: Path,
    save: Callable[[], None],
    desc: str,
    show: bool = True,
) -> Iterator[Step]:
    """The steps of a small training loop from ``state["step"] + 1`` to ``total``, with a
    progress bar (unless ``show`` is false). After the caller's body for a step,
    ``state["step"]`` is set to it and, if the step is due or Ctrl-C / SIGTERM came during it,
    ``save()`` writes the checkpoint to ``folder``; after a signal the loop then stops with
    :class:`~musegen.errors.Interrupted` (the one-line "stopped after step N, saved in ...")."""
    from musegen.errors import Interrupted
    from musegen.utils import progress

    bar = progress(total=total, initial=state["step"], desc=desc, unit="step", disable=not show)
    try:
        with stop_requests(True) as asked:
            for number in range(state["step"] + 1, total + 1):
                step = Step(number, number % every == 0 or number == total, bar)
                yield step
                state["step"] = number
                bar.update(1)
                if step.due or asked:
                    save()
                if asked and number < total:
                    raise Interrupted.after_step(number, folder)
    finally:
        bar.close()
