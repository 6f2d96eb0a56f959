"""``musegen benchmark polyphonic`` end to end on JSB with a tiny model and a few steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musegen.cli.main import main

TINY_RUN = {
    "model": "frame-bernoulli",
    "model_config": {"d_embed": 8, "d_hidden": 8, "dropout": 0.0},
    "train": {"batch_size": 4, "lr": 0.05, "max_steps": 4, "progress": False, "device": "cpu"},
    "data": {"max_frames": 32, "select_frames": 300},
}


def test_benchmark_trains_then_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "jsb.json").write_text(json.dumps(TINY_RUN))
    args = ["benchmark", "polyphonic", "--datasets", "jsb", "--budget", "1"]
    args += ["--out", str(tmp_path / "out"), "--configs", str(configs), "--threads", "1"]
    assert main(args) == 0
    first = capsys.readouterr()
    assert "| jsb |" in first.out and "5.56 / 5.19 (HF)" in first.out
    summary = json.loads((tmp_path / "out" / "results.json").read_text())
    (result,) = summary["results"]
    assert result["steps"] == 4 and result["valid"]["frames"] == 4602
    assert result["test"]["frames"] == 4725 and result["test"]["pieces"] == 77
    assert 0 < result["test_nll"] < 60
    (record,) = summary["records"]
    assert record["benchmark"] == "polyphonic.test_nll.jsb" and record["peer"] == 5.19
    assert record["ratio"] == pytest.approx(5.19 / result["test_nll"], rel=1e-3)

    assert main(args) == 0  # a finished set is loaded, not trained again
    assert "loading the finished run" in capsys.readouterr().err
    again = json.loads((tmp_path / "out" / "results.json").read_text())["results"][0]
    assert again["test_nll"] == result["test_nll"]


def test_unknown_dataset_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark", "polyphonic", "--datasets", "jsb,bach"]) == 2
    assert "unknown dataset" in capsys.readouterr().err
