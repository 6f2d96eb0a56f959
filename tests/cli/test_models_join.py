"""``musegen models A B --join OUT``: an ensemble that generates like any token model; a
tokenizer mismatch or a lone model is a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from musegen.cli.main import main
from musegen.models import build_model, load_model, save_model
from musegen.tokenizers import get_tokenizer


def saved(folder: Path, seed: int, layers: int, step: int = 16) -> Path:
    tok = get_tokenizer("remi", positions_per_quarter=step // 4, velocity_bins=0, tempo_bins=0)
    torch.manual_seed(seed)
    model = build_model("transformer", vocab_size=len(tok), n_layer=layers, d_model=32, n_head=2)
    meta = {"tokenizer": tok.to_dict(), "description": f"tiny {seed}", "valid_loss": 1.0 + seed}
    save_model(model, folder, meta)
    return folder


def test_join_then_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = saved(tmp_path / "a", 0, 1), saved(tmp_path / "b", 1, 2)
    out = tmp_path / "ens"
    assert main(["models", str(a), str(b), "--join", str(out), "--weights", "2,1"]) == 0
    assert "ensemble (product) of 2 models" in capsys.readouterr().out
    model, meta = load_model(out)
    assert model.model_name == "ensemble" and meta["description"] == "tiny 0"
    assert [j["valid_loss"] for j in meta["joined"]] == [1.0, 2.0] and "valid_loss" not in meta
    assert meta["config"]["weights"] == [2.0, 1.0]
    args = ["generate", "--model", str(out), "--bars", "2", "--seed", "3"]
    for name in ("x", "y"):
        assert main([*args, "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "x" / "piece.mid").read_bytes() == (
        tmp_path / "y" / "piece.mid"
    ).read_bytes()
    assert json.loads((tmp_path / "x" / "piece.json").read_text())["seed"] == 3


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--weights", "1,x"], "--weights"),
        (["--combine", "mixture", "--weights", "1"], "weights must be 2"),
    ],
)
def test_join_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], match: str
) -> None:
    a, b = saved(tmp_path / "a", 0, 1), saved(tmp_path / "b", 1, 1)
    assert main(["models", str(a), str(b), "--join", str(tmp_path / "e"), *extra]) == 2
    assert match in capsys.readouterr().err


def test_join_needs_one_tokenizer_and_two_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, other = saved(tmp_path / "a", 0, 1), saved(tmp_path / "c", 0, 1, step=8)
    assert main(["models", str(a), str(other), "--join", str(tmp_path / "e")]) == 2
    assert "tokenizer differs" in capsys.readouterr().err
    assert main(["models", str(a), "--join", str(tmp_path / "e")]) == 2
    assert "at least two" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()
