"""``musegen serve`` and ``musegen listen-test`` from the command line (without serving)."""

from __future__ import annotations

import json

from musegen.cli.main import main


def test_serve_help_and_bad_options(capsys):
    try:
        main(["serve", "--help"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    assert "127.0.0.1" in out and "--port" in out
    assert main(["serve", "--port", "0"]) == 2
    assert "--port" in capsys.readouterr().err


def test_listen_test_results(tmp_path, capsys):
    rows = [{"question": "musical", "choice": "b" if i < 9 else "a"} for i in range(10)]
    path = tmp_path / "answers.json"
    path.write_text(json.dumps({"answers": rows}))
    assert main(["listen-test", "--results", str(path)]) == 0
    out = capsys.readouterr().out
    assert "9/10" in out and "binomial p = 0.0215" in out
    assert main(["listen-test", "--results", str(path), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["questions"]
    assert row["chose_b"] == 9 and row["n"] == 10
    assert main(["listen-test"]) == 2
    assert "--a DIR" in capsys.readouterr().err
