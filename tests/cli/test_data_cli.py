"""``musegen data prepare|list|info``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musegen.cli.main import main
from musegen.io import save
from musegen.score import Note, Score, Track


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder of a few MIDI files and one garbage file."""
    music = tmp_path / "music"
    music.mkdir()
    for i in range(6):
        notes = [Note(60 + i + k, 480 * k, 480, 80) for k in range(8)]
        save(Score(tracks=[Track.from_notes(notes)]), music / f"song{i}.mid")
    (music / "broken.mid").write_bytes(b"MThd garbage")
    return music


def test_prepare_a_folder_then_info(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    args = ["data", "prepare", str(folder), "-t", "events", "--out", str(out), "--workers", "1"]
    assert main([*args, "--config", '{"velocity_bins": 0}']) == 0
    captured = capsys.readouterr()
    assert "wrote" in captured.out and "skipped 1 piece(s), e.g. broken.mid" in captured.err
    assert main(["data", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tokenizer"]["config"]["velocity_bins"] == 0
    assert sum(s["pieces"] for s in info["splits"].values()) == 6
    assert sum(s["failures"] for s in info["splits"].values()) == 1 == info["failures"]
    assert sum(s["notes"] for s in info["splits"].values()) == 48
    assert main(["data", "info", str(out), "--failures"]) == 0
    text = capsys.readouterr().out
    assert "folder with events" in text and "failed" in text and "broken.mid" in text
    assert f"read with music21 {info['libraries']['music21']}" in text


def test_list_shows_sources_and_prepared(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)  # ./data is where prepared datasets are looked for
    prepared = tmp_path / "data" / "songs"
    assert main(["data", "prepare", str(folder), "-t", "remi", "-o", str(prepared), "-j", "1"]) == 0
    capsys.readouterr()
    assert main(["data", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    names = {s["name"] for s in listing["sources"]}
    assert {"jsb", "folder", "lakh"} <= names
    jsb = next(s for s in listing["sources"] if s["name"] == "jsb")
    assert jsb["license"] and jsb["description"]
    (found,) = listing["prepared"]
    assert Path(found["path"]).resolve() == prepared.resolve()
    assert found["tokenizer"]["tokenizer"] == "remi"
    monkeypatch.setattr("musegen.cli.data.source_rows", lambda: listing["sources"])  # no 2nd scan
    assert main(["data", "list"]) == 0
    text = capsys.readouterr().out
    assert "data/songs: folder / remi" in text and "* jsb" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["data", "prepare", "no-such-source", "-t", "remi", "-o", "x"], "neither a source"),
        (["data", "prepare", "jsb", "-t", "nope", "-o", "x"], "unknown tokenizer"),
        (["data", "prepare", "jsb", "-t", "remi", "--config", "{", "-o", "x"], "not valid JSON"),
        (["data", "prepare", "jsb", "-t", "remi", "-o", "x", "-j", "0"], "--workers"),
        (["data", "info", "no-such-dir"], "not a prepared dataset"),
        (["data", "list", "--prepared", "no-such-dir"], "no such folder"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_jsb_split_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Prepared JSB has the published Boulanger-Lewandowski split: 229 / 76 / 77 pieces."""
    from musegen.data.sources import get_source
    from musegen.errors import MusegenError

    try:
        get_source("jsb").pieces()
    except MusegenError as e:
        pytest.skip(f"jsb source has no data here: {e}")
    out = tmp_path / "jsb"
    assert main(["data", "prepare", "jsb", "-t", "remi", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["data", "info", str(out), "--json"]) == 0
    splits = json.loads(capsys.readouterr().out)["splits"]
    assert {k: v["pieces"] for k, v in splits.items()} == {"train": 229, "valid": 76, "test": 77}
    assert all(v["failures"] == 0 and v["tokens"] > 0 for v in splits.values())
