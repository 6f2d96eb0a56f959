"""End to end: prepare a folder, train a tiny model, resume it, generate from the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musegen.cli.main import main
from musegen.io import save
from musegen.score import Note, Score, Track


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train")
    songs = root / "songs"
    for k in range(16):
        notes = [Note(60 + (k + i) % 12, i * 240, 240) for i in range(32)]
        save(Score(tracks=[Track.from_notes(notes)]), songs / f"song{k:02d}.mid")
    out = root / "data"
    config = '{"positions_per_quarter": 4, "velocity_bins": 0, "tempo_bins": 0}'
    assert (
        main(
            [
                "data",
                "prepare",
                str(songs),
                "--tokenizer",
                "remi",
                "--config",
                config,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


def run_file(tmp: Path, steps: int) -> Path:
    cfg = {
        "model": "transformer",
        "model_config": {"n_layer": 1, "d_model": 32, "n_head": 2, "d_ff": 64},
        "train": {
            "seq_len": 32,
            "batch_size": 4,
            "max_steps": steps,
            "eval_every": 2,
            "checkpoint_every": 2,
            "warmup_steps": 1,
            "progress": False,
        },
        "augment": {"transpose": 2},
    }
    path = tmp / f"run{steps}.json"
    path.write_text(json.dumps(cfg))
    return path


def test_train_resume_generate(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    first = ["train", "--data", str(dataset), "--config", str(run_file(tmp_path, 4))]
    assert main([*first, "--out", str(run)]) == 0
    assert "trained 4 steps" in capsys.readouterr().out
    used = json.loads((run / "run.json").read_text())
    assert used["train"]["seed"] == 0 and used["model_config"]["d_model"] == 32
    # a second run into the same folder must be asked to resume
    assert main([*first, "--out", str(run)]) == 2
    assert "--resume" in capsys.readouterr().err
    cmd = [
        "train",
        "--data",
        str(dataset),
        "--config",
        str(run_file(tmp_path, 6)),
        "--out",
        str(run),
        "--resume",
    ]
    assert main(cmd) == 0
    assert "trained 6 steps" in capsys.readouterr().out
    out = tmp_path / "gen"
    assert (
        main(["generate", "--model", str(run), "--bars", "2", "--seed", "0", "--out", str(out)])
        == 0
    )
    assert (out / "piece.mid").exists()


def test_train_errors(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": {"max_step": 3}}')
    assert (
        main(["train", "--data", str(dataset), "--config", str(bad), "--out", str(tmp_path / "r2")])
        == 2
    )
    assert "max_step" in capsys.readouterr().err
    assert (
        main(["train", "--data", str(dataset), "--model", "nope", "--out", str(tmp_path / "r3")])
        == 2
    )
    assert "unknown model" in capsys.readouterr().err
