"""The piano-roll frame models train like any model (``musegen train --config RUN.json``, on
the vendored JSB rolls or a prepared binary-roll dataset), and the run folder then serves
``musegen generate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musegen.cli.main import main
from musegen.io import load
from musegen.models import load_model
from tinymodels import TINY_FRAME

ROOT = Path(__file__).resolve().parents[2]
TRAIN = {
    "batch_size": 4,
    "lr": 0.05,
    "max_steps": 2,
    "warmup_steps": 1,
    "eval_every": 2,
    "eval_batches": 0,
    "checkpoint_every": 2,
    "device": "cpu",
    "progress": False,
    "threads": 1,
}
DATA = {"max_frames": 16, "transpose": 2, "select_frames": 200}


def run_file(folder: Path, **data: object) -> Path:
    path = folder / "frame-tiny.json"
    run = {"model": "rnn-nade", "model_config": TINY_FRAME, "train": TRAIN, "data": DATA | data}
    path.write_text(json.dumps(run))
    return path


def test_train_then_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", "--config", str(run_file(tmp_path)), "--out", str(out)]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    _, meta = load_model(out / "best")
    assert meta["model"] == "rnn-nade" and meta["dataset"] == "jsb"
    assert meta["frames_per_quarter"] == 1 and meta["low_pitch"] == 21
    assert json.loads((out / "run.json").read_text())["data"]["transpose"] == 2

    args = ["generate", "--model", str(out), "--bars", "2", "--time-signature", "3/4"]
    args += ["--num", "2", "--seed", "5", "--name", "p"]
    for name in ("a", "b"):
        assert main([*args, "--out", str(tmp_path / name)]) == 0
    for i in (1, 2):  # the same seed writes the same bytes
        first, again = (tmp_path / name / f"p_{i}.mid" for name in ("a", "b"))
        assert first.read_bytes() == again.read_bytes()
    score = load(tmp_path / "a" / "p_1.mid")
    notes = [n for t in score.tracks for n in t.notes]
    assert notes and all(21 <= n["pitch"] <= 108 for n in notes)
    assert max(n["start"] + n["duration"] for n in notes) <= 6 * score.tpq  # 2 bars of 3/4
    settings = json.loads((tmp_path / "a" / "p.json").read_text())
    assert settings["sampling"]["frames"] == 6 and settings["request"]["time_signature"] == "3/4"

    capsys.readouterr()
    assert main([*args, "--temperature", "0.5", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "--temperature do not apply" in err and err.strip().count("\n") == 0


def test_a_prepared_roll_dataset_sets_keys_and_frame_rate(tmp_path: Path) -> None:
    """Binary rolls of any source, prepared by ``musegen data prepare``: the model takes
    their key range and frame rate, and generation decodes at that rate."""
    data = tmp_path / "rolls"
    config = '{"onsets": false, "steps_per_quarter": 2, "low": 36, "high": 95}'
    prepare = ["data", "prepare", "jsb", "--tokenizer", "roll", "--config", config]
    assert main([*prepare, "--out", str(data), "--workers", "1"]) == 0
    out = tmp_path / "run"
    args = ["train", "--config", str(run_file(tmp_path)), "--data", str(data)]
    assert main([*args, "--out", str(out)]) == 0
    model, meta = load_model(out / "best")
    assert model.config.n_keys == 60 and meta["frames_per_quarter"] == 2
    assert meta["low_pitch"] == 36 and "protocol" not in meta
    gen = ["generate", "--model", str(out), "--bars", "1", "--seed", "1"]
    assert main([*gen, "--out", str(tmp_path / "g")]) == 0
    assert json.loads((tmp_path / "g" / "piece.json").read_text())["sampling"]["frames"] == 8


def test_frame_run_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = run_file(tmp_path, source="bach")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "a")]) == 2
    assert "piano-roll sets" in capsys.readouterr().err
    config = run_file(tmp_path, crop=4)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "b")]) == 2
    assert "unknown data option(s) ['crop']" in capsys.readouterr().err
    config = run_file(tmp_path, max_frames="16", transpose=True)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert 'invalid data option(s) max_frames="16", transpose=true' in err
    assert err.strip().count("\n") == 0


def test_the_shipped_config_builds_the_shipped_model() -> None:
    """``configs/jsb-frame.json`` retrains ``jsb-frame``: same model and data settings."""
    run = json.loads((ROOT / "configs" / "jsb-frame.json").read_text())
    _, meta = load_model(ROOT / "src" / "musegen" / "pretrained" / "jsb-frame")
    assert run["model"] == meta["model"]
    shipped = {k: meta["config"][k] for k in run["model_config"]}
    assert shipped == run["model_config"]
    assert {k: run["data"][k] for k in meta["data"]} == meta["data"]
