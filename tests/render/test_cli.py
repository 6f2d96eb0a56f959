from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from musegen.cli.main import main
from musegen.errors import MusegenError
from musegen.io import save
from musegen.render import audio as audio_mod
from musegen.render import render_outputs
from musegen.render.audio import read_wav
from musegen.score import Score


@pytest.fixture
def midi(band_score: Score, tmp_path: Path) -> Path:
    path = tmp_path / "in" / "band.mid"
    path.parent.mkdir()
    save(band_score, path)
    return path


def test_render_wav_and_png_into_out_dir(
    midi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert (
        main(["render", str(midi), "--wav", "--png", "--synth", "builtin", "--out", str(out)]) == 0
    )
    wav, png = out / "band.wav", out / "band.png"
    assert capsys.readouterr().out.splitlines() == [
        f"wrote {wav} (built-in synthesizer: --synth builtin)",
        f"wrote {png}",
        f"settings in {out / 'band.render.json'}",
    ]
    record = json.loads((out / "band.render.json").read_text())
    assert record["outputs"] == {"wav": {"synth": "builtin", "why": "--synth builtin"}}
    assert record["files"] == [str(wav), str(png)] and record["input"] == str(midi)
    audio, rate = read_wav(wav)
    assert rate == 44_100 and len(audio) > 4 * rate
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_default_outputs_go_next_to_the_input(midi: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio_mod, "system_soundfonts", lambda: iter(()))  # builtin synth
    monkeypatch.setattr(audio_mod, "packaged_soundfonts", lambda: iter(()))
    assert main(["render", str(midi)]) == 0
    names = sorted(p.name for p in midi.parent.iterdir())
    assert names == ["band.mid", "band.png", "band.render.json", "band.wav"]


def test_bad_soundfont_exits_2_with_one_line(
    midi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for sf in (tmp_path / "missing.sf2", midi):  # missing, then not a SoundFont
        assert (
            main(["render", str(midi), "--wav", "--soundfont", str(sf), "--out", str(tmp_path)])
            == 2
        )
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(sf) in err and "Traceback" not in err
    assert not (tmp_path / "band.wav").exists()


def test_pdf_without_engraver_keeps_the_musicxml(
    midi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from musegen.render import notation

    monkeypatch.setattr(notation.shutil, "which", lambda name: None)
    monkeypatch.setattr(notation, "_verovio_can", lambda fmt: False)
    assert main(["render", str(midi), "--pdf", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    xml = tmp_path / "band.musicxml"
    assert captured.out == f"wrote {xml}\n" and xml.exists()
    assert captured.err.count("\n") == 1 and "pip install verovio svglib" in captured.err


def test_sound_and_notation_with_nothing_but_wheels(
    tmp_path: Path, no_system_packages: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """No system SoundFont, MuseScore or LilyPond: the default install still plays General
    MIDI instruments from a SoundFont and engraves SVG and PDF (issue 18, items 1 and 2)."""
    pytest.importorskip("verovio", reason="verovio is not installed (make venv installs it)")
    if not (audio_mod.has_tinysoundfont() and list(audio_mod.packaged_soundfonts())):
        pytest.skip("tinysoundfont or pretty_midi is not installed (make venv installs both)")
    args = ["render", "corpus:bach/bwv66.6", "--wav", "--svg", "--pdf", "--out", str(tmp_path)]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("(SoundFont TimGM6mb.sf2 from the pretty_midi package)")
    record = json.loads((tmp_path / "bwv66.6.render.json").read_text())
    wav = record["outputs"]["wav"]
    assert wav["synth"] == "soundfont" and wav["soundfont"].endswith("TimGM6mb.sf2")
    assert record["outputs"]["pdf"]["engraver"].startswith("verovio ")
    assert record["outputs"]["svg"]["engraver"].startswith("verovio ")
    names = [Path(f).name for f in record["files"]]
    assert names == ["bwv66.6.wav", "bwv66.6.musicxml", "bwv66.6.svg", "bwv66.6.pdf"]
    assert (tmp_path / "bwv66.6.pdf").read_bytes()[:5] == b"%PDF-"
    assert (tmp_path / "bwv66.6.svg").read_text().count('class="note"') > 150


def test_missing_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(tmp_path / "nope.mid")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_empty_midi_renders_silence_and_an_empty_roll(tmp_path: Path) -> None:
    path = tmp_path / "empty.mid"
    save(Score(), path)
    assert main(["render", str(path), "--wav", "--roll-svg", "--synth", "builtin"]) == 0
    audio, _ = read_wav(tmp_path / "empty.wav")
    assert not audio.any() and (tmp_path / "empty.roll.svg").stat().st_size > 0


def test_render_outputs_helper(band_score: Score, tmp_path: Path) -> None:
    written = render_outputs(
        band_score, tmp_path / "x" / "take.1", "roll-svg, wav", synth="builtin"
    )
    assert [p.name for p in written] == ["take.1.wav", "take.1.roll.svg"]
    assert all(p.exists() for p in written)
    with pytest.raises(MusegenError, match="unknown render output mp3"):
        render_outputs(band_score, tmp_path / "y", {"mp3"})
    assert not os.path.exists(tmp_path / "y.wav")


def test_a_stray_far_note_is_refused_not_rendered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A note 10 hours in would need gigabytes of audio and thousands of bars: one-line error."""
    from musegen.score import Note, Track

    score = Score(tracks=[Track.from_notes([Note(60, 0, 480), Note(62, 480 * 2 * 36_000, 480)])])
    path = tmp_path / "stray.mid"
    save(score, path)
    for flag in ("--wav", "--png", "--musicxml"):
        assert main(["render", str(path), flag, "--synth", "builtin"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "limited to" in err or "rendered up to" in err


def test_output_stem() -> None:
    from musegen.cli.render import output_stem

    assert output_stem("a/b/song.mid", None) == Path("a/b/song")
    assert output_stem("a/b/song.mid", "out") == Path("out/song")
    assert output_stem("corpus:bach/bwv66.6", "out") == Path("out/bwv66.6")
    assert output_stem("corpus:bach/bwv66.6", None) == Path.cwd() / "bwv66.6"


def test_generate_settings_say_how_the_renders_were_made(
    band_score: Score, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """write_pieces (generate, compose, harmonize, infill) records the synth, SoundFont and
    engraver of its --render outputs in the settings JSON."""
    from musegen.cli.common import write_pieces
    from musegen.render import describe_outputs

    pytest.importorskip("verovio", reason="verovio is not installed (make venv installs it)")
    written = write_pieces([band_score], tmp_path, "take", {"seed": 1}, render="wav,svg")
    assert [p.name for p in written] == ["take.mid", "take.wav", "take.musicxml", "take.svg"]
    record = json.loads((tmp_path / "take.json").read_text())
    assert record["render"] == describe_outputs("wav,svg")
    assert record["render"]["wav"]["synth"] in ("soundfont", "builtin")
    assert record["render"]["svg"]["engraver"].startswith("verovio ")
