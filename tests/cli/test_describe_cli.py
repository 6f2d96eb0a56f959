"""musegen describe: text and JSON, files and references, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controlhelpers import progression
from musegen.cli.main import main
from musegen.io import save


def test_describe_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "song.mid"
    save(progression(["C", "G", "Am", "F"], [1, 2, 4, 1]), path)
    assert main(["describe", str(path)]) == 0
    out = capsys.readouterr().out
    assert "- bar: 4" in out and "  chord: Am" in out
    assert main(["describe", str(path), "--json", "--out", str(tmp_path / "d.json")]) == 0
    d = json.loads((tmp_path / "d.json").read_text())
    assert [b["chord"] for b in d["bars"]] == ["C", "G", "Am", "F"]
    assert d["piece"] == str(path) and d["bins"]["corpus"]


def test_describe_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", str(tmp_path / "none.mid")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
