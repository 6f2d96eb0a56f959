"""The one writer of generated pieces: files, names, settings JSON and what it prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musegen.cli.common import write_pieces
from musegen.io import load
from musegen.score import Note, Score, Track


def score(pitch: int) -> Score:
    return Score(tracks=[Track.from_notes([Note(pitch, 0, 480), Note(pitch + 2, 480, 480)])])


def test_several_pieces_are_numbered_and_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written = write_pieces(
        [score(60), score(62)], tmp_path, "piece", {"seed": 3, "model": "m", "seconds_taken": 1.25}
    )
    assert written == [tmp_path / "piece_1.mid", tmp_path / "piece_2.mid"]
    assert [int(load(p).tracks[0].notes["pitch"][0]) for p in written] == [60, 62]
    settings = json.loads((tmp_path / "piece.json").read_text())
    assert settings == {
        "seed": 3,
        "model": "m",
        "seconds_taken": 1.25,
        "files": list(map(str, written)),
    }
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"wrote {written[0]} (2 notes, 1.0 s)"
    assert lines[-1] == f"seed 3; model m; 1.2 s; settings in {tmp_path / 'piece.json'}"


def test_a_dotted_name_keeps_its_dots_and_no_seed_is_deterministic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written = write_pieces([score(60)], tmp_path / "new", "bwv66.6_harmonized", {"seed": None})
    assert written == [tmp_path / "new" / "bwv66.6_harmonized.mid"]
    assert (tmp_path / "new" / "bwv66.6_harmonized.json").exists()
    assert (
        capsys.readouterr().out.splitlines()[-1].startswith("seed none (deterministic); settings")
    )
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [
        "bwv66.6_harmonized.json",
        "bwv66.6_harmonized.mid",
    ]  # atomic writes leave no temporary files behind
