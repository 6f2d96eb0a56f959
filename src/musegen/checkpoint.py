"""What every resumable training loop shares: Ctrl-C that finishes the step
(:func:`stop_requests`), folders swapped in whole (:func:`replace_dir`, :func:`recover_swap`),
and an optimizer's state as flat tensors plus JSON (:func:`flatten_optimizer`,
:func:`restore_optimizer`) for safetensors, never pickles.

Used by the one trainer (:mod:`musegen.train.trainer`), ``train rl`` and the audio trainers.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch


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
