from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from musegen.cli.main import main
from musegen.io import load, save
from musegen.models import build_model, save_model
from musegen.score import Note, Score, Track
from musegen.tokenizers import get_tokenizer


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tok = get_tokenizer("remi", positions_per_quarter=4, velocity_bins=0, tempo_bins=0)
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=32, n_head=2)
    folder = tmp_path_factory.mktemp("m") / "tiny"
    save_model(model, folder, {"tokenizer": tok.to_dict(), "description": "random weights"})
    return folder


def test_generate_writes_pieces_of_the_asked_length(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["generate", "--model", str(model_dir), "--bars", "2", "--num", "2", "--seed", "3"]
    assert main([*args, "--out", str(out), "--time-signature", "3/4", "--key", "D major"]) == 0
    settings = json.loads((out / "piece.json").read_text())
    assert settings["seed"] == 3 and len(settings["files"]) == 2
    for f in settings["files"]:
        score = load(f)
        assert score.end <= 2 * 3 * score.tpq  # two bars of 3/4 at most
        assert str(score.time_signatures[0]) == "3/4"
    # the same seed gives the same music
    assert (
        main(
            [*args, "--out", str(tmp_path / "again"), "--time-signature", "3/4", "--key", "D major"]
        )
        == 0
    )
    a, b = load(out / "piece_1.mid"), load(tmp_path / "again" / "piece_1.mid")
    assert [t.notes.tolist() for t in a.tracks] == [t.notes.tolist() for t in b.tracks]


def test_generate_continues_a_primer(model_dir: Path, tmp_path: Path) -> None:
    primer = Score(tracks=[Track.from_notes([Note(60 + i, i * 480, 480) for i in range(8)])])
    save(primer, tmp_path / "primer.mid")
    out = tmp_path / "cont"
    cmd = [
        "generate",
        "--model",
        str(model_dir),
        "--primer",
        str(tmp_path / "primer.mid"),
        "--bars",
        "1",
    ]
    assert main([*cmd, "--seed", "1", "--out", str(out)]) == 0
    notes = {
        (int(n["pitch"]), int(n["start"])) for t in load(out / "piece.mid").tracks for n in t.notes
    }
    assert {(60 + i, i * 480) for i in range(8)} <= notes  # the primer is kept as it was


def test_generate_errors(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--model", str(tmp_path / "nope")]) == 2
    assert "no model" in capsys.readouterr().err
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"garbage")
    assert main(["generate", "--model", str(model_dir), "--primer", str(bad)]) == 2
    assert "bad.mid" in capsys.readouterr().err
    assert main(["generate", "--model", str(model_dir), "--temperature", "0"]) == 2
    assert main(["generate", "--model", str(model_dir), "--key", "H major"]) == 2
    capsys.readouterr()
    assert main(["generate", "--model", "coconet", "--mode", "minor", "-o", str(tmp_path)]) == 2
    assert "--mode" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text((model_dir / "config.json").read_text())
    (corrupt / "model.safetensors").write_bytes(b"\x00" * 64)
    assert main(["generate", "--model", str(corrupt)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().count("\n") <= 3


def test_generate_deals_out_voices(model_dir: Path, tmp_path: Path) -> None:
    """--voices N writes N voice tracks (S/A/T/B for four); the shipped bach model writes its
    four voices itself, and --voices 0 keeps a piece as generated."""
    args = ["generate", "--bars", "2", "--seed", "5"]
    assert main([*args, "--model", str(model_dir), "--voices", "4", "--out", str(tmp_path)]) == 0
    voiced = load(tmp_path / "piece.mid")
    assert [t.voice for t in voiced.tracks[:4]] == ["S", "A", "T", "B"]
    assert json.loads((tmp_path / "piece.json").read_text())["voices"] == 4
    assert main([*args, "--out", str(tmp_path / "bach")]) == 0  # the default model
    assert [t.name for t in load(tmp_path / "bach" / "piece.mid").tracks[:4]] == [
        "Soprano",
        "Alto",
        "Tenor",
        "Bass",
    ]
    assert json.loads((tmp_path / "bach" / "piece.json").read_text())["voices"] == 0
    assert (
        main([*args, "--model", str(model_dir), "--voices", "0", "--out", str(tmp_path / "as-is")])
        == 0
    )
    assert not any(t.voice for t in load(tmp_path / "as-is" / "piece.mid").tracks)
    assert main([*args, "--voices", "-1", "--out", str(tmp_path / "bad")]) == 2


def test_models_lists_shipped(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    models = json.loads(capsys.readouterr().out)
    assert isinstance(models, list)


def test_each_model_kind_serves_its_commands(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model asked for a command its kind does not serve fails in one line that names what
    it serves: a token model cannot harmonize, the rule-based csp harmonizer cannot generate."""
    melody = tmp_path / "melody.mid"
    save(Score(tracks=[Track.from_notes([Note(72, 0, 480)])]), melody)
    assert main(["harmonize", str(melody), "--model", str(model_dir), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "serves generate, not harmonize" in err and err.strip().count("\n") == 0
    assert main(["generate", "--model", "csp", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "csp (rule-based harmonizer) serves harmonize, not generate" in err
    assert err.strip().count("\n") == 0
    assert not list(tmp_path.glob("piece*"))


def test_generate_ending_is_asked_for_and_recorded(tmp_path: Path) -> None:
    """--ending reaches the sampler and the settings JSON; the shipped bach and folk models
    close their pieces by default (cadence, tonic), and bach moves chorales into its ranges."""
    from musegen.models.pretrained import resolve_model
    from musegen.sampling.generators import sampling_defaults

    tok = get_tokenizer("chorale")
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
    folder = tmp_path / "tiny-chorale"
    save_model(model, folder, {"tokenizer": tok.to_dict(), "description": "random weights"})
    for ending in ("cadence", "free"):
        out = tmp_path / ending
        args = ["generate", "--model", str(folder), "--bars", "3", "--seed", "2"]
        assert main([*args, "--time-signature", "4/4", "--ending", ending, "--out", str(out)]) == 0
        settings = json.loads((out / "piece.json").read_text())
        assert json.dumps(settings).count(f'"ending": "{ending}"') >= 1
        piece = load(out / "piece.mid")
        assert piece.n_bars <= 4  # three bars (and a pickup, if the model wrote one)
    with pytest.raises(SystemExit):
        main(["generate", "--model", str(folder), "--ending", "perfect"])
    bach = sampling_defaults(json.loads((resolve_model("bach") / "config.json").read_text()))
    folk = sampling_defaults(json.loads((resolve_model("folk") / "config.json").read_text()))
    assert (bach["ending"], folk["ending"]) == ("cadence", "tonic")
    assert set(bach["voice_ranges"]) == {"S", "A", "T", "B"} and folk["voice_ranges"] is None
