"""``musegen compose METHOD``: files, settings with the seed, clear one-line errors."""

from __future__ import annotations

import json

import pytest

from musegen.cli.main import main
from musegen.io import load, save
from musegen.score import Note, Score, Track


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_rules_writes_midi_and_settings(tmp_path, capsys):
    code, out, _ = run(["compose", "rules", "--out", str(tmp_path), "--seed", "3"], capsys)
    assert code == 0 and "seed 3" in out
    settings = json.loads((tmp_path / "rules.json").read_text())
    assert settings["seed"] == 3 and settings["method"] == "rules"
    assert len(load(tmp_path / "rules.mid").tracks) == 2
    # the same seed gives the same file
    run(["compose", "rules", "--out", str(tmp_path), "--seed", "3", "--name", "again"], capsys)
    assert (tmp_path / "rules.mid").read_bytes() == (tmp_path / "again.mid").read_bytes()


def test_markov_trains_saves_and_reloads(tmp_path, capsys):
    argv = ["compose", "markov", "--train", "source:nottingham", "--max-pieces", "40"]
    code, _out, _ = run([*argv, "--out", str(tmp_path), "--seed", "5", "--num", "2"], capsys)
    assert code == 0 and (tmp_path / "markov-model.json").is_file()
    assert (tmp_path / "markov_1.mid").is_file() and (tmp_path / "markov_2.mid").is_file()
    model = str(tmp_path / "markov-model.json")
    code, _, _ = run(
        [
            "compose",
            "markov",
            "--model",
            model,
            "--out",
            str(tmp_path),
            "--seed",
            "5",
            "--name",
            "m",
        ],
        capsys,
    )
    assert code == 0
    assert (tmp_path / "m.mid").read_bytes() == (tmp_path / "markov_1.mid").read_bytes()


def test_genetic_and_csp(tmp_path, capsys):
    argv = ["compose", "genetic", "--generations", "5", "--population", "12", "--quiet"]
    code, out, _ = run(
        [*argv, "--reference", "none", "--out", str(tmp_path), "--seed", "1"], capsys
    )
    assert code == 0 and "best fitness" in out
    history = json.loads((tmp_path / "genetic.json").read_text())["best_per_generation"]
    assert len(history) == 6
    melody = Score(
        tracks=[
            Track.from_notes(
                [Note(p, i * 480, 480) for i, p in enumerate([67, 69, 71, 72, 74, 72, 71, 72])]
            )
        ]
    )
    save(melody, tmp_path / "tune.mid")
    code, out, _ = run(
        ["compose", "csp", "--melody", str(tmp_path / "tune.mid"), "--out", str(tmp_path)], capsys
    )
    assert code == 0
    assert [t.name for t in load(tmp_path / "csp.mid").tracks] == [
        "Soprano",
        "Alto",
        "Tenor",
        "Bass",
    ]


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    save(Score(), tmp_path / "empty.mid")
    code, _, err = run(
        ["compose", "csp", "--melody", str(tmp_path / "empty.mid"), "--out", str(tmp_path)], capsys
    )
    assert code == 2 and err.count("\n") == 1 and "no notes" in err
    code, _, err = run(["compose", "genetic", "--chords", "I X", "--out", str(tmp_path)], capsys)
    assert code == 2 and "Roman numerals" in err
    code, _, err = run(
        ["compose", "rules", "--max-steps", "10", "--species", "2", "--out", str(tmp_path)], capsys
    )
    assert code == 2 and "gave up" in err


def test_recombine(tmp_path, capsys):
    from musegen.data.sources import get_source
    from musegen.errors import MusegenError

    try:
        get_source("jsb-satb").locate()
    except MusegenError:
        pytest.skip("the JSB SATB data is not in the shared data folder")
    argv = ["compose", "recombine", "--segments", "8", "--max-pieces", "60", "--key", "g minor"]
    code, out, _ = run([*argv, "--out", str(tmp_path), "--seed", "2"], capsys)
    assert code == 0 and "beat" in out
    assert len(json.loads((tmp_path / "recombine.json").read_text())["provenance"]) == 8
