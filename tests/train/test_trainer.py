from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from musegen.errors import Interrupted, MusegenError
from musegen.train.config import TrainConfig
from musegen.train.trainer import Trainer, lr_at
from tinymodels import TinyLM, Windows, cfg, save_tiny


def make(out: Path, **kw: object) -> Trainer:
    torch.manual_seed(0)
    return Trainer(
        TinyLM(), Windows(), Windows(16), cfg(**kw), out, save_fn=save_tiny, meta={"note": "t"}
    )


def test_loss_falls_and_files_are_written(tmp_path: Path) -> None:
    t = make(tmp_path / "run", max_steps=40)
    start = t.evaluate()
    state = t.fit()
    assert state.step == 40
    assert state.best_valid < start * 0.5
    assert (tmp_path / "run" / "checkpoint" / "trainer.safetensors").exists()
    assert (tmp_path / "run" / "best" / "model.safetensors").exists()
    rows = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("valid_loss" in r for r in rows) and any("tokens_per_s" in r for r in rows)


def test_resume_equals_uninterrupted(tmp_path: Path) -> None:
    full = make(tmp_path / "full")
    full.fit()
    first = make(tmp_path / "part", max_steps=12)
    save = first.save_checkpoint

    def save_then_crash() -> None:  # the process dies right after the step-8 checkpoint
        save()
        if first.state.step == 8:
            raise KeyboardInterrupt

    first.save_checkpoint = save_then_crash  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    assert_resumed_equals_full(tmp_path)


def assert_resumed_equals_full(tmp_path: Path, **kw: object) -> None:
    """Resume ``part`` to the end: its weights are those of the uninterrupted ``full``."""
    make(tmp_path / "part", **kw).fit(resume=True)
    a = load_file(str(tmp_path / "full" / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "checkpoint" / "model.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


def interrupt_at(t: Trainer, step: int, kind: int = signal.SIGINT) -> None:
    """The user presses Ctrl-C (or the system sends SIGTERM) in the middle of ``step``."""
    objective = t.objective

    def objective_then_signal(model, batch):  # type: ignore[no-untyped-def]
        if model.training and t.state.step == step - 1:
            os.kill(os.getpid(), kind)
        return objective(model, batch)

    t.objective = objective_then_signal  # type: ignore[method-assign]


@pytest.mark.parametrize("kind", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_finishes_the_step_saves_it_and_resume_equals_uninterrupted(
    tmp_path: Path, kind: int
) -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    full = make(tmp_path / "full", checkpoint_every=100)
    full.fit()
    first = make(tmp_path / "part", checkpoint_every=100)  # no periodic checkpoint before 12
    interrupt_at(first, 7, kind)
    with pytest.raises(Interrupted, match=r"after step 7.*--resume"):
        first.fit()
    info = json.loads((tmp_path / "part" / "checkpoint" / "trainer.json").read_text())
    assert info["step"] == 7
    rows = [json.loads(x) for x in (tmp_path / "part" / "log.jsonl").read_text().splitlines()]
    assert rows[-1] == {"step": 7, "event": "interrupted"}
    # the handlers are put back as they were (SIG_IGN in a background job, else the default)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert_resumed_equals_full(tmp_path, checkpoint_every=100)


def test_refuses_to_overwrite_and_bad_options(tmp_path: Path) -> None:
    make(tmp_path / "r", max_steps=4).fit()
    with pytest.raises(MusegenError, match="--resume"):
        make(tmp_path / "r", max_steps=4).fit()
    with pytest.raises(MusegenError, match="unknown training option"):
        TrainConfig.from_dict({"learning_rate": 1})
    with pytest.raises(MusegenError, match="max_steps"):
        TrainConfig.from_dict({"max_steps": 0})
    with pytest.raises(MusegenError, match="no checkpoint"):
        make(tmp_path / "empty").fit(resume=True)


def test_early_stopping(tmp_path: Path) -> None:
    t = make(tmp_path / "es", lr=0.0 + 1e-9, max_steps=40, eval_every=2, patience=2)
    state = t.fit()
    assert state.step < 40


def test_schedule() -> None:
    c = TrainConfig(lr=1.0, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert lr_at(0, c) == pytest.approx(0.1)
    assert lr_at(10, c) == pytest.approx(1.0)
    assert lr_at(60, c) == pytest.approx(0.55)
    assert lr_at(110, c) == pytest.approx(0.1)
