"""``generate --instruments``: names to programs, and a remi-instruments model that plays only
the instruments asked for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musegen.cli.main import main
from musegen.errors import MusegenError
from musegen.io import load
from musegen.models import build_model, save_model
from musegen.sampling.capabilities import model_capabilities
from musegen.sampling.instruments import parse_instruments
from musegen.tokenizers import get_tokenizer


def test_names_words_and_numbers_become_programs() -> None:
    assert parse_instruments("violin, Violin,viola,cello") == (40, 40, 41, 42)
    assert parse_instruments("Acoustic Grand Piano,piano,flute,7,drums") == (0, 0, 73, 7, 128)
    for bad, message in (
        ("kazooo", "not a General MIDI name"),
        (" , ", "empty"),
        ("200", "0..127"),
    ):
        with pytest.raises(MusegenError, match=message):
            parse_instruments(bad)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tok = get_tokenizer("remi-instruments", velocity_bins=8, tempo_bins=0, positions_per_quarter=4)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
    folder = tmp_path_factory.mktemp("m") / "model"
    save_model(model, folder, {"tokenizer": tok.to_dict(), "description": "random weights"})
    return folder


def test_generate_plays_only_the_instruments_asked_for(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], one_torch_thread: None
) -> None:
    meta = json.loads((model_dir / "config.json").read_text())
    assert "instruments" in model_capabilities(meta)
    out = tmp_path / "out"
    args = ["generate", "--model", str(model_dir), "--bars", "2", "--seed", "4", "--num", "3"]
    assert main([*args, "--instruments", "violin,viola,cello", "--out", str(out)]) == 0
    settings = json.loads((out / "piece.json").read_text())
    assert settings["instruments"] == [40, 41, 42]
    programs = set()
    for path in sorted(out.glob("*.mid")):
        programs |= {t.program for t in load(path).tracks if len(t)}
    assert programs and programs <= {40, 41, 42}
    capsys.readouterr()
    assert main([*args, "--instruments", "kazooo", "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["generate", "--model", "bach", "--instruments", "violin", "--out", str(out)]) == 2
    assert "takes no instruments" in capsys.readouterr().err
