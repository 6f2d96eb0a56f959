"""Coconet trains like any model: ``musegen train --config RUN.json --data FILE.json`` on a
tiny four-voice steps file, and the run folder then serves ``harmonize``, ``infill`` and
``generate``; ``--init`` starts from a saved model's weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from musegen.cli.main import main
from musegen.io import load, save
from musegen.models import build_model, load_model, save_model
from musegen.score import Note, Score, Track
from tinymodels import COCONET_CHORDS, TINY_COCONET

TINY, CHORDS = TINY_COCONET, COCONET_CHORDS
TRAIN = {
    "seq_len": 16,
    "batch_size": 2,
    "max_steps": 2,
    "eval_every": 2,
    "eval_batches": 1,
    "checkpoint_every": 2,
    "warmup_steps": 0,
    "device": "cpu",
    "progress": False,
    "threads": 1,
}


def piece(steps: int, shift: int) -> list[list[int]]:
    """A Jsb16thSeparated-shaped piece: ``steps`` rows of [S, A, T, B] pitches."""
    return [[p + shift for p in CHORDS[(t // 4) % len(CHORDS)]] for t in range(steps)]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("satb") / "chorales.json"
    splits = {
        "train": [piece(32, 0), piece(24, 2), piece(40, 1)],
        "valid": [piece(32, 2)],
        "test": [piece(16, 0)],
    }
    path.write_text(json.dumps(splits))
    return path


def run_file(folder: Path, model_config: dict[str, object] = TINY) -> Path:
    path = folder / "coconet-tiny.json"
    run = {"model": "coconet", "model_config": model_config, "train": TRAIN}
    path.write_text(json.dumps(run))
    return path


def test_train_then_harmonize_infill_generate(
    data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    args = ["train", "--config", str(run_file(tmp_path)), "--data", str(data_file)]
    assert main([*args, "--out", str(run)]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    used = json.loads((run / "run.json").read_text())
    assert used["model"] == "coconet" and used["data"]["root"] == str(data_file)
    _, meta = load_model(run / "best")
    assert meta["model"] == "coconet" and meta["step"] == 2

    melody = tmp_path / "melody.mid"
    notes = [Note(p, i * 480, 480) for i, p in enumerate([72, 74, 76, 74, 72, 71, 72, 72])]
    save(Score(tracks=[Track.from_notes(notes)]), melody)
    out = tmp_path / "out"
    common = ["--model", str(run), "--steps", "4", "--seed", "1", "--out", str(out)]
    assert main(["harmonize", str(melody), *common]) == 0
    harmonized = load(out / "melody_harmonized.mid")
    assert len(harmonized.tracks) == 4
    assert [int(p) for p in harmonized.tracks[0].notes["pitch"]] == [
        72, 74, 76, 74, 72, 71, 72, 72
    ]  # fmt: skip
    settings = json.loads((out / "melody_harmonized.json").read_text())
    assert settings["task"] == "harmonize" and settings["model_folder"].startswith(str(run))
    assert settings["files"] == [str(out / "melody_harmonized.mid")]

    assert main(["infill", str(out / "melody_harmonized.mid"), "--bars", "1-1", *common]) == 0
    assert (out / "melody_harmonized_infilled.mid").exists()
    assert main(["generate", "--model", str(run), "--bars", "1", "--num", "2", "--seed", "2",
                 "--out", str(out), "--name", "new"]) == 0  # fmt: skip
    assert [len(load(out / f"new_{i}.mid").tracks) for i in (1, 2)] == [4, 4]


def test_train_starts_from_saved_weights_with_init(data_file: Path, tmp_path: Path) -> None:
    """``--init MODEL``: the run starts from MODEL's weights (a fresh schedule) and refuses a
    model of another shape."""
    torch.manual_seed(7)  # not the run's seed: its own random start would differ
    start = build_model("coconet", **TINY)
    save_model(start, tmp_path / "start")
    config = run_file(tmp_path, TINY)
    run = json.loads(config.read_text())
    run["train"] = {**run["train"], "max_steps": 1, "eval_every": 1, "lr": 1e-9}
    config.write_text(json.dumps(run))
    args = ["train", "--config", str(config), "--data", str(data_file)]
    args += ["--init", str(tmp_path / "start")]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    trained, _ = load_model(tmp_path / "out" / "checkpoint")
    weights = dict(trained.named_parameters())
    for name, tensor in start.named_parameters():  # lr 1e-9: one step moves nothing visibly
        assert torch.allclose(weights[name], tensor, atol=1e-6), name
    assert json.loads((tmp_path / "out" / "run.json").read_text())["init"] == str(
        tmp_path / "start"
    )
    run["model_config"] = {**TINY, "channels": 4}
    config.write_text(json.dumps(run))
    assert main([*args, "--out", str(tmp_path / "other")]) == 2


def test_train_errors_name_what_to_do(
    data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": [1, 2]}')
    config = str(run_file(tmp_path))
    assert main(["train", "--config", config, "--data", str(bad), "--out", str(tmp_path)]) == 2
    assert "not a four-voice steps file" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "t")]) == 2
    assert "--data" in capsys.readouterr().err
