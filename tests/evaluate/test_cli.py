"""``musegen evaluate stats | harmony | voice-leading`` on small files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metricshelpers import CLEAN, satb
from musegen.cli.main import main
from musegen.io import load, save
from musegen.score import Note, Score, Track


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    chords = list(CLEAN)
    chords[5] = (74, 69, 62, 55)  # parallel fifths T-B into bar 2 beat 2
    save(satb(chords), tmp_path / "fifths.mid")
    save(
        Score(tracks=[Track.from_notes([Note(60, 0, 480), Note(64, 480, 480)])]),
        tmp_path / "duo.mid",
    )
    return [str(tmp_path / "fifths.mid"), str(tmp_path / "duo.mid")]


def test_stats(files: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "stats", *files, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["piece"] for r in rows] == files
    assert rows[1]["pitch_range"] == 4 and rows[1]["groove_consistency"] is None  # one bar
    assert main(["evaluate", "stats", files[1]]) == 0
    assert "pitch_class_entropy" in capsys.readouterr().out


def test_voice_leading(files: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "voice-leading", files[0], "--json"]) == 0
    (piece,) = json.loads(capsys.readouterr().out)
    assert piece["errors"] == [
        {"kind": "parallel_fifths", "voices": "T-B", "bar": 2, "beat": 2.0, "detail": "fifths"}
    ]
    assert piece["per_100_beats"]["total"] == 12.5
    assert main(["evaluate", "voice-leading", *files]) == 2  # the duo has no four voices
    captured = capsys.readouterr()
    assert "bar 2 beat 2: parallel_fifths (T-B)" in captured.out
    assert "duo.mid" in captured.err and "four voices" in captured.err
    assert "--separate" in captured.err


def test_voice_leading_separates_a_chorale_on_one_track(
    files: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The fifths chorale merged to one track: --separate deals it out and finds the same."""
    merged = tmp_path / "merged.mid"
    assert main(["convert", files[0], str(merged)]) == 0
    one = load(merged).merge_tracks()
    save(one, merged)
    capsys.readouterr()
    assert main(["evaluate", "voice-leading", str(merged)]) == 2
    assert main(["evaluate", "voice-leading", str(merged), "--separate", "--json"]) == 0
    (piece,) = json.loads(capsys.readouterr().out)
    assert [(e["kind"], e["voices"]) for e in piece["errors"]] == [("parallel_fifths", "T-B")]


def test_harmony(files: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "harmony", files[0], "--json"]) == 0
    (piece,) = json.loads(capsys.readouterr().out)
    assert piece["key"] == "C major"
    assert [c["numeral"] for c in piece["chords"]][:4] == ["I", "IV", "V", "I"]
    assert piece["cadences"][-1]["kind"] == "authentic"
    assert main(["evaluate", "harmony", files[0], "--key", "G major"]) == 0
    assert "1.1:IV" in capsys.readouterr().out


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "stats", str(tmp_path / "missing.mid")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "Traceback" not in err
    assert (
        main(
            [
                "evaluate",
                "report",
                str(tmp_path),
                "--reference",
                str(tmp_path),
                "--features",
                "nope",
            ]
        )
        == 2
    )
    assert "unknown feature(s) nope" in capsys.readouterr().err
