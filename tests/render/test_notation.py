from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from musegen.errors import MusegenError
from musegen.io import load
from musegen.render import notation
from musegen.render.notation import engrave, prepare_notation, quantize_beats, write_notation
from musegen.score import KeySignature, Note, Score, Tempo, TimeSignature, Track, make_notes


def notes_of(score: Score) -> list[list[tuple[int, int, int]]]:
    """Per track: (start, duration, pitch) in quarter-note thousandths, sorted."""
    return [
        sorted(
            zip(
                (t.notes["start"] * 1000 // score.tpq).tolist(),
                (t.notes["duration"] * 1000 // score.tpq).tolist(),
                t.notes["pitch"].tolist(),
                strict=True,
            )
        )
        for t in score.tracks
    ]


@pytest.fixture
def satb() -> Score:
    """Four voices on 16ths and 8th triplets, with a key and a 3/4 meter."""
    tracks = []
    for k, (voice, base) in enumerate(zip("SATB", (72, 65, 60, 48), strict=True)):
        starts = [0, 480, 640, 800, 960, 1080, 1200, 1440]  # quarter, triplet x3, 16ths, ...
        ends = [*starts[1:], 1920 + 480 * k]
        durations = [e - s for s, e in zip(starts, ends, strict=True)]
        tracks.append(
            Track(make_notes(starts, durations, [base + i % 5 for i in range(8)], 70), voice=voice)
        )
    return Score(
        tpq=480,
        tracks=tracks,
        tempos=[Tempo(0, 90.0)],
        time_signatures=[TimeSignature(0, 3, 4)],
        key_signatures=[KeySignature(0, -1, False)],
    )


def test_musicxml_reads_back_the_same_notes(satb: Score, tmp_path: Path) -> None:
    path = write_notation(satb, tmp_path / "satb.musicxml")
    back = load(path)
    assert notes_of(back) == notes_of(satb)
    assert [t.voice for t in back.tracks] == list("SATB")
    assert [t.name for t in back.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert (back.time_signatures[0].numerator, back.time_signatures[0].denominator) == (3, 4)
    assert back.key_signatures[0].key == -1


def test_key_and_meter_are_added_when_missing(tmp_path: Path) -> None:
    scale = [60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60]  # G major would have F#
    score = Score(tracks=[Track(make_notes(np.arange(11) * 480, [480] * 11, scale, 80))])
    back = load(write_notation(score, tmp_path / "c.musicxml"))
    assert back.key_signatures and back.key_signatures[0].key == 0
    assert str(back.time_signatures[0]) == "4/4"


def test_estimated_key_signature_major_and_minor() -> None:
    def key_of(pitches: list[int]) -> tuple[int, bool]:
        notes = make_notes(np.arange(len(pitches)) * 480, [480] * len(pitches), pitches)
        (k,) = prepare_notation(Score(tracks=[Track(notes)])).key_signatures
        return k.key, k.minor

    assert key_of([62, 64, 66, 67, 69, 71, 73, 74, 69, 66, 62]) == (2, False)  # D major
    assert key_of([57, 59, 60, 62, 64, 65, 68, 69, 64, 60, 57, 57]) == (0, True)  # A minor
    assert key_of([65, 67, 69, 70, 72, 74, 76, 77, 72, 65]) == (-1, False)  # F major
    assert prepare_notation(Score()).key_signatures == []


def test_quantize_beats_picks_16ths_or_triplets() -> None:
    notes = [
        Note(60, 3, 118),  # near 16ths in beat 0
        Note(62, 122, 115),
        Note(64, 485, 150),  # beat 1: triplets 480, 640, 800
        Note(65, 645, 158),
        Note(67, 797, 170),
        Note(69, 960, 2),  # a tiny note keeps one step
    ]
    q = quantize_beats(Score(tracks=[Track.from_notes(notes)]))
    got = [
        (int(s), int(d))
        for s, d in zip(q.tracks[0].notes["start"], q.tracks[0].notes["duration"], strict=True)
    ]
    assert got == [(0, 120), (120, 120), (480, 160), (640, 160), (800, 160), (960, 120)]


def test_quantize_resamples_other_resolutions() -> None:
    score = Score(tpq=96, tracks=[Track.from_notes([Note(60, 24, 24), Note(62, 128, 32)])])
    q = quantize_beats(score)
    assert q.tpq == 480
    assert q.tracks[0].notes["start"].tolist() == [120, 640]


def test_empty_score_writes_valid_musicxml(tmp_path: Path) -> None:
    path = write_notation(Score(), tmp_path / "empty.musicxml")
    assert load(path).n_notes == 0


def test_pdf_without_engraver_says_what_to_install(
    satb: Score, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notation.shutil, "which", lambda name: None)
    monkeypatch.setattr(notation, "_verovio_can", lambda fmt: False)
    xml = write_notation(satb, tmp_path / "satb.musicxml")
    with pytest.raises(MusegenError) as e:
        engrave(xml, tmp_path / "satb.pdf")
    message = str(e.value)
    assert "pip install verovio svglib (or install MuseScore or LilyPond)" in message
    assert str(xml) in message and "\n" not in message
    with pytest.raises(MusegenError, match="MuseScore \\(mscore\\) is not on PATH"):
        engrave(xml, tmp_path / "satb.pdf", engraver="musescore")
    with pytest.raises(MusegenError, match="unknown engraver"):
        engrave(xml, tmp_path / "satb.pdf", engraver="sibelius")


def fake_mscore(folder: Path, body: str) -> None:
    exe = folder / "mscore"
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_engrave_runs_musescore_and_reports_failure(
    satb: Score, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xml = write_notation(satb, tmp_path / "satb.musicxml")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    fake_mscore(bin_dir, 'printf "%%PDF-fake" > "$2"')  # mscore -o OUT IN
    assert notation.find_engraver("musescore") == ("musescore", str(bin_dir / "mscore"))
    [out] = engrave(xml, tmp_path / "satb.pdf", engraver="musescore")
    assert out.read_bytes() == b"%PDF-fake"
    # SVG: MuseScore writes one file per page, OUT-1.svg, OUT-2.svg, ... (here 10 pages)
    pages = 'for i in 1 2 3 4 5 6 7 8 9 10; do echo "<svg>$i</svg>" > "${2%.svg}-$i.svg"; done'
    fake_mscore(bin_dir, pages)
    svgs = engrave(xml, tmp_path / "satb.svg", engraver="musescore")
    assert [p.name for p in svgs] == [f"satb-{i}.svg" for i in range(1, 11)]
    assert [p.read_text().strip() for p in svgs] == [f"<svg>{i}</svg>" for i in range(1, 11)]
    fake_mscore(bin_dir, 'echo "loading..."; echo "cannot read file" >&2; exit 3')
    with pytest.raises(MusegenError, match=r"MuseScore failed: cannot read file; the MusicXML"):
        engrave(xml, tmp_path / "again.pdf", engraver="musescore")
    assert not (tmp_path / "again.pdf").exists()


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("MUSEGEN_TEST_ENGRAVE"),
    reason="a real engraver takes 5-15 s: set MUSEGEN_TEST_ENGRAVE=1 to run it",
)
@pytest.mark.parametrize("engraver", ["musescore", "lilypond"])
def test_real_engraver_writes_a_pdf(engraver: str, tmp_path: Path) -> None:
    if notation.find_engraver(engraver) is None:
        pytest.skip(f"{engraver} is not installed")
    tiny = Score(tracks=[Track.from_notes([Note(60, 0, 960), Note(64, 960, 960)])])
    xml = write_notation(tiny, tmp_path / "tiny.musicxml")
    [pdf] = engrave(xml, tmp_path / "satb.pdf", engraver=engraver)
    assert pdf.read_bytes()[:5] == b"%PDF-"
