"""musegen.checkpoint: the pieces every resumable loop shares (small objects, no training)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from musegen.checkpoint import (
    check_resume,
    check_same_run,
    has_training_state,
    load_training_state,
    resumable_steps,
    save_training_state,
    written_whole,
)
from musegen.errors import Interrupted, MusegenError


def test_steps_save_when_due_and_stop_after_a_signal(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN in a background job, else the default
    state = {"step": 0}
    saved: list[int] = []
    seen = [
        s.number
        for s in resumable_steps(5, 2, state, tmp_path, lambda: saved.append(state["step"]), "t")
    ]
    assert seen == [1, 2, 3, 4, 5] and saved == [2, 4, 5] and state["step"] == 5
    state, saved = {"step": 1}, []
    with pytest.raises(Interrupted, match=f"after step 3, saved in {tmp_path}"):
        for s in resumable_steps(5, 4, state, tmp_path, lambda: saved.append(state["step"]), "t"):
            if s.number == 3:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C during step 3
    assert saved == [3] and state["step"] == 3
    assert signal.getsignal(signal.SIGINT) == before  # the handler given back


def test_state_round_trip_and_the_checks(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=10)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    sched.step()
    rng = np.random.default_rng(4)
    rng.random(3)
    folder = tmp_path / "ckpt"
    check_resume(folder, False, "x")  # nothing there, a fresh run: fine
    with pytest.raises(MusegenError, match="no checkpoint to resume from"):
        check_resume(folder, True, "x")
    save_training_state(folder, model, opt, sched, rng, {"step": 1}, {"lr": 0.1},
                        {"counts": torch.arange(4)})  # fmt: skip
    assert has_training_state(folder)
    with pytest.raises(MusegenError, match="holds a run: add --resume"):
        check_resume(folder, False, f"{tmp_path} holds a run")
    want_next = rng.random()
    other = torch.nn.Linear(3, 2)
    opt2 = torch.optim.AdamW(other.parameters(), lr=0.1)
    sched2 = torch.optim.lr_scheduler.OneCycleLR(opt2, 0.1, total_steps=10)
    rng2 = np.random.default_rng(0)
    untouched = other.weight.detach().clone()
    with pytest.raises(MusegenError, match=r"other settings than the run's \(lr\)"):
        load_training_state(folder, other, opt2, sched2, rng2, {"lr": 0.2})
    assert torch.equal(other.weight, untouched)  # refused before anything was loaded
    state, extra = load_training_state(folder, other, opt2, sched2, rng2, {"lr": 0.1})
    assert state == {"step": 1} and extra["counts"].tolist() == [0, 1, 2, 3]
    assert torch.equal(other.weight, model.weight) and rng2.random() == want_next
    assert sched2.state_dict()["last_epoch"] == sched.state_dict()["last_epoch"]
    assert opt2.state_dict()["state"][0]["exp_avg"].equal(opt.state_dict()["state"][0]["exp_avg"])
    check_same_run(folder, {"lr": 0.1}, {"lr": 0.1})
    with pytest.raises(MusegenError, match=r"other settings than the run's \(lr, steps\)"):
        check_same_run(folder, {"lr": 0.1, "steps": 4}, {"lr": 0.2, "steps": 5})
    (folder / "state.json").write_text("{not json")
    with pytest.raises(MusegenError, match="checkpoint is unreadable"):
        load_training_state(folder, other, opt2, sched2, rng2, {"lr": 0.1})


def test_a_folder_is_swapped_in_whole_or_not_at_all(tmp_path: Path) -> None:
    final = tmp_path / "checkpoint"
    with written_whole(final) as tmp:
        tmp.mkdir()
        (tmp / "a.txt").write_text("one")
    assert (final / "a.txt").read_text() == "one"
    with pytest.raises(RuntimeError), written_whole(final) as tmp:
        tmp.mkdir()
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("killed while writing")
    assert (final / "a.txt").read_text() == "one"  # the old folder untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]  # no .tmp or .old left
    with written_whole(final) as tmp:
        tmp.mkdir()
        (tmp / "b.txt").write_text("two")
    assert sorted(p.name for p in final.iterdir()) == ["b.txt"]
