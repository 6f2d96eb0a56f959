"""End to end: train a tiny infill model with the one trainer, then ``musegen infill`` and
``musegen accompany`` with it; the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from infillhelpers import check_kept, chorale, melody
from musegen.cli.main import main
from musegen.io import load, save
from musegen.models import build_model, save_model
from musegen.tokenizers import get_tokenizer


@pytest.fixture(scope="module")
def infill_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("infill")
    for k in range(12):
        save(chorale(k, bars=4, pickup=k % 2 == 1), root / "pieces" / f"c{k:02d}.mid")
    data = root / "data"
    prepare = ["data", "prepare", str(root / "pieces"), "--tokenizer", "chorale"]
    assert main([*prepare, "--out", str(data), "--workers", "1"]) == 0
    run = {
        "model": "transformer",
        "model_config": {"n_layer": 1, "d_model": 32, "n_head": 2, "d_ff": 64},
        "train": {
            "seq_len": 320,
            "batch_size": 4,
            "max_steps": 6,
            "eval_every": 3,
            "checkpoint_every": 3,
            "warmup_steps": 1,
            "progress": False,
        },
        "augment": {"transpose": 2},
        "objective": {"name": "infill", "context_bars": 1, "max_region_bars": 2},
    }
    (root / "run.json").write_text(json.dumps(run))
    out = root / "run"
    args = ["train", "--data", str(data), "--config", str(root / "run.json"), "--out", str(out)]
    assert main(args) == 0
    return out


def test_trained_model_records_how_it_infills(infill_run: Path) -> None:
    config = json.loads((infill_run / "best" / "config.json").read_text())
    assert config["tokenizer"]["tokenizer"] == "chorale-infill"
    assert config["infill"] == {"context_bars": 1, "max_region_bars": 2, "seq_len": 320}
    assert config["config"]["vocab_size"] == len(get_tokenizer("chorale")) + 2


def test_infill_and_accompany_commands(infill_run: Path, tmp_path: Path) -> None:
    score = chorale(40, bars=5, pickup=True)
    save(score, tmp_path / "piece.mid")
    given = load(tmp_path / "piece.mid")
    out = tmp_path / "out"
    args = ["infill", str(tmp_path / "piece.mid"), "--bars", "2-4", "--tracks", "A,T"]
    assert main([*args, "--model", str(infill_run), "--seed", "1", "--out", str(out)]) == 0
    written = load(out / "piece_infilled.mid")
    check_kept(get_tokenizer("chorale"), given, written, (2, 4), [1, 2])
    settings = json.loads((out / "piece_infilled.json").read_text())
    assert settings["voices_rewritten"] == "AT" and settings["sampling"]["seed"] == 1

    save(melody(41, bars=4), tmp_path / "tune.mid")
    assert (
        main(
            [
                "accompany",
                str(tmp_path / "tune.mid"),
                "--model",
                str(infill_run),
                "--seed",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    four = load(out / "tune_accompanied.mid")
    assert len([t for t in four.tracks if len(t)]) >= 2


def test_one_line_errors(
    infill_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(chorale(3, bars=3), tmp_path / "piece.mid")
    piece = str(tmp_path / "piece.mid")
    model = ["--model", str(infill_run), "--out", str(tmp_path / "o")]
    tok = get_tokenizer("chorale")
    torch.manual_seed(0)
    plain = tmp_path / "plain"
    net = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
    save_model(net, plain, {"tokenizer": tok.to_dict()})
    cases = [
        (["infill", piece, "--bars", "3-1", *model], "--bars takes a bar or a range"),
        (["infill", piece, "--bars", "x", *model], "--bars takes a bar or a range"),
        (["infill", piece, "--bars", "2-9", *model], "the music runs from bar 1 to bar 3"),
        (["infill", piece, "--bars", "1", "--tracks", "Q", *model], "--voices takes"),
        (["infill", piece, "--bars", "1", "--steps", "5", *model], "a token model takes none"),
        (["infill", piece, "--bars", "1", "--model", str(plain)], "serves generate, not infill"),
        (["accompany", piece, "--model", str(plain)], "serves generate, not accompany"),
        (["accompany", piece, "--voice", "X", *model], "--voice takes one of"),
        (["accompany", piece, "--track", "9", *model], "--track 9: no such track"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.strip().count("\n") == 0, err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"objective": {"name": "anticipation"}}))
    data = infill_run.parent / "data"
    argv = ["train", "--data", str(data), "--config", str(bad), "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    assert "unknown objective 'anticipation'" in capsys.readouterr().err
