"""Inputs ``benchmarks/fuzz.py`` found crashing or hanging a command, each now one line on
stderr and exit code 2 (the fuzzer's findings, shrunk to what set them off)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musegen.cli.main import main

ABC_HEAD = "X:1\nT:t\nM:{meter}\nL:1/8\nK:D\n"


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


# ----------------------------------------------------------------------------- run files

TINY = {
    "model": "transformer",
    "model_config": {"n_layer": 1, "n_head": 1, "d_model": 8},
    "train": {"seq_len": 8, "batch_size": 2},
}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"train": {"eval_every": [1]}}, "eval_every must be int"),
        ({"train": {"seed": float("nan")}}, "seed must be int"),
        ({"train": {"betas": 5}}, "betas must be"),
        ({"train": {"lr": "fast"}}, "lr must be float"),
        ({"train": {"seed": 2**64}}, "seed="),
        ({"train": {"threads": 65536}}, "threads="),  # minutes to start that many threads
        ({"train": {"seq_len": 2**63}}, "seq_len="),  # numpy: "maximum dimension exceeded"
        ({"train": [["seq_len", 8]]}, "'train' must be a JSON object"),
        ({"train": 3}, "'train' must be a JSON object"),
        ({"model_config": [1, 2]}, "'model_config' must be a JSON object"),
        ({"augment": 0.5}, "'augment' must be a JSON object"),
        ({"augment": {"transpose": "x"}}, "augment.transpose"),
        ({"model": 7}, "'model' must be a JSON string"),
    ],
)
def test_run_file_of_the_wrong_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict, needle: str
) -> None:
    run = {**TINY, **change}
    config = tmp_path / "run.json"
    config.write_text(json.dumps(run))
    data = tmp_path / "no-data"  # the run file is checked before the data is read
    argv = ["train", "--config", str(config), "--data", str(data), "--out", str(tmp_path / "r")]
    one_line_error(capsys, argv, needle)


def test_run_file_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.json"
    config.write_bytes(b'{"model": "transformer\xe4"}')
    one_line_error(capsys, ["train", "--config", str(config)], "cannot read run config")


# ----------------------------------------------------------------------------- token files


def test_token_file_with_nested_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ids as a list of lists (a 2-D array) reached the events decoder's index arithmetic; it
    reads them flat, as remi and chorale do."""
    from musegen.tokenizers import get_tokenizer

    tokens = tmp_path / "t.json"
    tok = get_tokenizer("events")
    pieces = [{"ids": [[1, 294, 60, 264, 188, 2]]}]
    tokens.write_text(json.dumps({"tokenizer": tok.to_dict(), "pieces": pieces}))
    assert main(["detokenize", str(tokens), "--out", str(tmp_path / "x.mid")]) == 0
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["roll", "events"])
def test_token_file_with_an_id_beyond_int64(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """An id of 2**63 in a grid of rows overflowed numpy's int64 with a traceback."""
    from musegen.tokenizers import get_tokenizer

    tok = get_tokenizer(name)
    tokens = tmp_path / "t.json"
    pieces = [{"ids": [[0, 0, 2**63, 0]]}]
    tokens.write_text(json.dumps({"tokenizer": tok.to_dict(), "pieces": pieces}))
    one_line_error(capsys, ["detokenize", str(tokens), "--out", str(tmp_path / "x.mid")], "ids")


# ----------------------------------------------------------------------------- ABC


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (ABC_HEAD.format(meter="2147483648/8") + "d2 e|\n", "ABC meter"),
        (ABC_HEAD.format(meter="999/8") + "d2 e|\n", "ABC meter"),
        # music21 runs a meter's digits together: 9, 9, 9, 1 over 8 is 9991/8
        (ABC_HEAD.format(meter="\x00 L:h>r<x9ay9pq e9t=1/8") + "d2 e|\n", "ABC meter"),
        (ABC_HEAD.format(meter="9/8") + "ve999999999d BcB A3|\n", "ABC note e999999999"),
        (ABC_HEAD.format(meter="9/8") + "ve999d BcB A3|\n", "ABC note e999"),
        (ABC_HEAD.format(meter="-4/4") + "e2a a2fz1000000 g3|\n", "ABC note z1000000"),
        (ABC_HEAD.format(meter="9/8") + "[L:1/1]e200 BcB|\n", "over 128 quarters"),
        (ABC_HEAD.format(meter="9/8") + "e2/0 BcB|\n", "divides by zero"),
        (ABC_HEAD.format(meter="6/8") + "d2 e | [DFA]2147483648 z f|\n", "over 128 quarters"),
    ],
)
def test_abc_that_music21_takes_minutes_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    path = tmp_path / "tune.abc"
    path.write_text(text, encoding="utf-8")
    one_line_error(capsys, ["info", str(path)], needle)


def test_abc_long_notes_of_real_tunes_still_read(tmp_path: Path) -> None:
    """Essen's longest notes (``c442`` at ``L:1/32``, 55 quarters) and meters are read."""
    from musegen.io import load

    path = tmp_path / "tune.abc"
    path.write_text("X:1\nM:FREI4/4\nL:1/32\nK:C\nc442 d8 | e32 |\n", encoding="utf-8")
    assert load(path).n_notes == 3


@pytest.mark.parametrize(
    "body",
    [
        {"tokenizer": {"tokenizer": "remi", "config": {}}, "pieces": 0.5},
        {"tokenizer": {"tokenizer": "remi", "config": {}}, "pieces": [{"ids": [1, 2**64]}]},
        {"tokenizer": {"tokenizer": "remi", "config": {}}, "pieces": [{"ids": [1, [2, 3], 4]}]},
        {"tokenizer": {"tokenizer": "remi", "config": {}}, "pieces": [{"ids": ["x"]}]},
        {"tokenizer": {"tokenizer": "chorale", "config": {"alto": [float("nan"), 79]}}},
        {"tokenizer": {"tokenizer": "remi", "config": {"max_duration_quarters": 2**31}}},
    ],
)
def test_token_file_of_the_wrong_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: dict
) -> None:
    tokens = tmp_path / "t.json"
    tokens.write_text(json.dumps(body))
    one_line_error(capsys, ["detokenize", str(tokens), "--out", str(tmp_path / "x.mid")])


# ----------------------------------------------------------------------------- models, memory


def test_model_configs_beyond_reason_are_refused_before_building() -> None:
    """n_layer 2**31 - 1 built layer after layer for minutes before running out of memory."""
    from musegen.errors import MusegenError
    from musegen.models import build_model

    for options in ({"n_layer": 2**31 - 1}, {"d_model": 2**40}, {"vocab_size": -(2**40)}):
        with pytest.raises(MusegenError, match="beyond"):
            build_model("transformer", **options)
    with pytest.raises(MusegenError, match="beyond"):
        build_model("lstm", vocab_size=10, n_layer=5000)


@pytest.mark.parametrize(
    "error",
    [
        MemoryError("Unable to allocate 32.0 GiB for an array"),
        RuntimeError(
            "DefaultCPUAllocator: can't allocate memory: you tried to allocate 9e12 bytes"
        ),
    ],
)
def test_training_out_of_memory_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    error: BaseException,
) -> None:
    """A run file asking for more memory than there is (d_model 2**22, seq_len 2**32) ends in
    one line, whichever library failed to allocate."""
    from musegen.train import run

    def fail(*args: object) -> None:
        raise error

    monkeypatch.setattr(run, "_train_run", fail)
    config = tmp_path / "run.json"
    config.write_text(json.dumps(TINY))
    argv = ["train", "--config", str(config), "--data", str(tmp_path), "--out", str(tmp_path)]
    one_line_error(capsys, argv, "out of memory")


# ----------------------------------------------------------------------------- infill


def test_infill_of_a_labelled_score_missing_a_voice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tracks labelled Soprano, Tenor and Bass (no alto): the grid has an empty alto, and the
    names and programs of the other three are copied over (a zip of 4 with 3 failed)."""
    from musegen.io import save
    from musegen.score import Score, Track, make_notes

    tracks = [
        Track(make_notes([0, 480, 960], [480] * 3, [p, p + 2, p]), name=name, voice=voice)
        for p, name, voice in ((72, "Soprano", "S"), (55, "Tenor", "T"), (43, "Bass", "B"))
    ]
    score = Score(tracks=tracks, tpq=480)
    path = tmp_path / "stb.mid"
    save(score, path)
    argv = ["infill", str(path), "--bars", "1-1", "--out", str(tmp_path), "--seed", "1"]
    assert main([*argv, "--steps", "4", "--name", "x"]) == 0
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["stats", "harmony", "voice-leading"])
def test_evaluating_a_note_days_after_the_music(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """A note far after the music (the fuzzer's was 263,190 bars in): stats wanted a 516 GiB bar-similarity matrix, harmony and voice leading labelled a million
    beats; a piece over 5,000 bars is skipped with the reason."""
    from musegen.io import save
    from musegen.score import Score, Track, make_notes

    far = 4 * 480 * 6_000
    score = Score(tracks=[Track(make_notes([0, 480, far], [480, 480, 480], [60, 64, 67]))])
    path = tmp_path / "far.mid"
    save(score, path)
    one_line_error(capsys, ["evaluate", command, str(path)], "limited to 5000 bars")


# ----------------------------------------------------------------------------- far-off notes


def far_note_midi(path: Path, tpq: int, tick: int) -> Path:
    """A MIDI file of two notes, the second at ``tick`` (with ``tpq`` ticks per quarter)."""
    import symusic

    score = symusic.Score(tpq)
    track = symusic.Track(program=0)
    track.notes.append(symusic.Note(0, tpq, 60, 80))
    track.notes.append(symusic.Note(tick, tpq, 62, 80))
    score.tracks.append(track)
    score.dump_midi(str(path))
    return path


@pytest.mark.parametrize("tokenizer", ["roll", "melody", "remi"])
def test_a_note_a_billion_quarters_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tokenizer: str
) -> None:
    """One tick per quarter and a note at tick 2**30: the roll asked for 352 GiB, the melody
    tokenizer ran for minutes, remi wrote 67 million tokens."""
    path = far_note_midi(tmp_path / "far.mid", 1, 2**30)
    argv = ["tokenize", "-t", tokenizer, str(path), "-o", str(tmp_path / "t.json")]
    one_line_error(capsys, argv, "quarter notes, over 65,536")


def test_harmonize_refuses_thousands_of_bars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A chorale's ticks read as quarters (4,680 bars): each Gibbs step over the whole grid
    took over a minute."""
    path = far_note_midi(tmp_path / "long.mid", 1, 4 * 4680)
    argv = ["harmonize", str(path), "--out", str(tmp_path), "--seed", "1", "--steps", "4"]
    one_line_error(capsys, argv, "Coconet harmonizes and infills up to 64 bars")


# ----------------------------------------------------------------------------- MusicXML

MUSICXML = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1"><part-list><score-part id="P1"><part-name>S</part-name>
</score-part></part-list><part id="P1"><measure number="1"><attributes><divisions>1</divisions>
<key><fifths>{fifths}</fifths></key><time><beats>{beats}</beats><beat-type>4</beat-type></time>
</attributes><note><pitch><step>C</step><octave>4</octave></pitch><duration>4</duration>
</note></measure></part></score-partwise>"""


@pytest.mark.parametrize(
    ("fifths", "beats", "needle"),
    [("2147483648", "4", "<fifths>2147483648</fifths>"), ("1", "1e308", "<beats>1e308</beats>")],
)
def test_musicxml_numbers_music21_takes_minutes_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fifths: str, beats: str, needle: str
) -> None:
    path = tmp_path / "x.musicxml"
    path.write_text(MUSICXML.format(fifths=fifths, beats=beats), encoding="utf-8")
    one_line_error(capsys, ["info", str(path)], needle, "beyond reading")
    path.write_text(MUSICXML.format(fifths="-3", beats="4"), encoding="utf-8")
    assert main(["info", str(path)]) == 0
