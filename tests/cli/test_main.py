from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from musegen.cli.main import main
from musegen.errors import Interrupted
from musegen.io import load, save
from musegen.score import Note, Score, Tempo, TimeSignature, Track


@pytest.fixture
def midi(tmp_path: Path) -> Path:
    score = Score(
        tpq=480,
        tracks=[
            Track.from_notes(
                [Note(60, 0, 480, 80), Note(64, 480, 480, 80)], program=0, name="Piano"
            ),
            Track.from_notes([Note(36, 0, 240, 100)], is_drum=True, name="Drums"),
        ],
        tempos=[Tempo(0, 100.0)],
        time_signatures=[TimeSignature(0, 3, 4)],
    )
    path = tmp_path / "song.mid"
    save(score, path)
    return path


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert "musegen 0." in capsys.readouterr().out
    assert main([]) == 2  # no command: help, exit 2


def test_wrong_flag_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["info", "--no-such-flag", "x.mid"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--no-such-flag" in err
    assert err.startswith("musegen info: error:") and "'musegen info --help'" in err
    with pytest.raises(SystemExit):
        main(["compose", "markov", "--nope"])
    assert "(see 'musegen compose markov --help')" in capsys.readouterr().err


def test_an_error_names_the_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["latent", "encode", str(tmp_path / "missing.mid")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("musegen latent encode: error:") and err.count("\n") == 1


def test_info_text_and_json(midi: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(midi)]) == 0
    out = capsys.readouterr().out
    assert "notes 3 in 2 track(s)" in out and "time 3/4" in out and "drums" in out
    assert main(["info", str(midi), "--json"]) == 0
    (info,) = json.loads(capsys.readouterr().out)
    assert info["notes"] == 3 and info["tempo_qpm"] == 100.0 and info["pitch_range"] == [60, 64]
    assert info["duration_seconds"] == pytest.approx(1.2)


def test_batch_skips_bad_files(
    midi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"this is not midi")
    missing = tmp_path / "missing.mid"
    assert main(["info", str(bad), str(midi), str(missing), "--json"]) == 2
    captured = capsys.readouterr()
    assert [i["source"] for i in json.loads(captured.out)] == [str(midi)]
    assert "bad.mid" in captured.err and "missing.mid" in captured.err
    assert "Traceback" not in captured.err


def test_convert_and_token_round_trip(midi: Path, tmp_path: Path) -> None:
    xml = tmp_path / "song.musicxml"
    assert main(["convert", str(midi), str(xml)]) == 0
    assert xml.exists()
    for name in ("remi", "events"):
        tokens = tmp_path / f"{name}.json"
        assert main(["tokenize", str(midi), "-t", name, "--out", str(tokens)]) == 0
        data = json.loads(tokens.read_text())
        assert data["tokenizer"]["tokenizer"] == name and len(data["pieces"]) == 1
        out = tmp_path / f"{name}.mid"
        assert main(["detokenize", str(tokens), "--out", str(out)]) == 0
        assert out.exists()


def test_convert_deals_one_track_out_to_voices(tmp_path: Path) -> None:
    chords = [(72, 67, 60, 48), (74, 67, 59, 43), (72, 64, 55, 48)]
    notes = [Note(p, i * 480, 480) for i, chord in enumerate(chords) for p in chord]
    save(Score(tracks=[Track.from_notes(notes)]), tmp_path / "one.mid")
    out = tmp_path / "four.mid"
    assert main(["convert", str(tmp_path / "one.mid"), str(out), "--voices", "4"]) == 0
    tracks = load(out).tracks
    assert [t.notes["pitch"].tolist() for t in tracks] == [
        list(v) for v in zip(*chords, strict=True)
    ]
    assert main(["convert", str(tmp_path / "one.mid"), str(out), "--voices", "0"]) == 2


def test_detokenize_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    assert main(["detokenize", str(junk), "--out", str(tmp_path / "x.mid")]) == 2
    assert "not a musegen token file" in capsys.readouterr().err
    assert main(["tokenize", "x.mid", "--config", "[1]"]) == 2


def test_unknown_extension_exits_2_without_traceback(tmp_path: Path) -> None:
    src = tmp_path / "notes.txt"
    src.write_text("hello")
    proc = subprocess.run(
        [sys.executable, "-m", "musegen", "convert", str(src), str(tmp_path / "o.mid")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "notes.txt" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_interrupted_work_says_what_it_saved_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    @contextmanager
    def stopped(_threads: object) -> Iterator[None]:  # Ctrl-C while the command runs
        raise Interrupted("stopped after step 3, saved in runs/x/checkpoint")
        yield

    monkeypatch.setattr("musegen.cli.main.command_threads", stopped)
    assert main(["models"]) == 130
    err = capsys.readouterr().err
    assert err == "musegen models: interrupted: stopped after step 3, saved in runs/x/checkpoint\n"


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["generate", "--num", "0"], "--num/-n: must be >= 1, got 0"),
        (["generate", "--tokens", "0"], "--tokens: must be >= 1, got 0"),
        (["generate", "--bars", "x"], "--bars: invalid int value: 'x'"),
        (["compose", "markov", "--bars", "-1"], "--bars: must be >= 1, got -1"),
        (["harmonize", "x.mid", "--steps", "0"], "--steps: must be >= 1, got 0"),
    ],
)
def test_a_count_below_one_is_refused_before_any_work(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--num 0 used to write a settings file and no piece (exit 0), --tokens 0 a whole piece,
    and compose markov read its corpus before failing on a confusing message."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag in err
