"""Engraving with wheels only: verovio's SVG pages, and svglib + reportlab's PDF of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from musegen.render import notation
from musegen.render.notation import engrave, write_notation
from musegen.render.svg_pdf import fix_svg, svgs_to_pdf
from musegen.score import Note, Score, Tempo, TimeSignature, Track

pytest.importorskip("verovio", reason="verovio is not installed (make venv installs it)")
pytest.importorskip("svglib", reason="svglib is not installed (make venv installs it)")

SVG = "{http://www.w3.org/2000/svg}"


def pdf_pages(data: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", data))


def chorale(bars: int) -> Score:
    """Four voices of quarter notes over ``bars`` bars of 4/4, at 90 qpm."""
    tracks = []
    for voice, base in zip("SATB", (72, 65, 60, 48), strict=True):
        notes = [Note(base + (i * 3) % 7, i * 480, 480, 80) for i in range(4 * bars)]
        tracks.append(Track.from_notes(notes, voice=voice))
    return Score(tracks=tracks, tempos=[Tempo(0, 90.0)], time_signatures=[TimeSignature(0, 4, 4)])


def test_verovio_writes_an_a4_svg_and_a_pdf_the_same_every_time(tmp_path: Path) -> None:
    assert notation.find_engraver("auto", ".pdf")[0] == "verovio"
    xml = write_notation(chorale(4), tmp_path / "short.musicxml")
    [svg] = engrave(xml, tmp_path / "short.svg")
    text = svg.read_text()
    assert 'width="210mm" height="297mm"' in text and "Engraved by Verovio" in text
    assert text.count('class="note"') == 4 * 4 * 4
    [pdf] = engrave(xml, tmp_path / "short.pdf")
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-" and pdf_pages(data) == 1
    assert b"+Leipzig" in data  # the metronome mark's note, from verovio's music font
    [again] = engrave(xml, tmp_path / "again.pdf")
    assert again.read_bytes() == data
    assert engrave(xml, tmp_path / "again.svg")[0].read_text() == text


def test_every_page_of_a_long_score(tmp_path: Path) -> None:
    xml = write_notation(chorale(36), tmp_path / "long.musicxml")
    svgs = engrave(xml, tmp_path / "long.svg")
    assert len(svgs) >= 2
    assert [p.name for p in svgs] == [f"long-{i}.svg" for i in range(1, len(svgs) + 1)]
    assert sum(p.read_text().count('class="note"') for p in svgs) == 4 * 4 * 36
    [pdf] = engrave(xml, tmp_path / "long.pdf")
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".pdf"] == ["long.pdf"]
    assert pdf_pages(pdf.read_bytes()) == len(svgs)


def test_verovio_cannot_write_png(tmp_path: Path, no_system_packages: None) -> None:
    from musegen.errors import MusegenError

    xml = write_notation(chorale(1), tmp_path / "x.musicxml")
    with pytest.raises(MusegenError, match="engraved PNG needs MuseScore or LilyPond"):
        engrave(xml, tmp_path / "x.png")


PAGE = """<svg xmlns="http://www.w3.org/2000/svg" width="210mm" height="297mm">
<svg viewBox="0 0 21000 29700" font-family="Times, serif">
<text font-size="0px"><tspan x="10000" y="400" text-anchor="middle"><title>t</title>
<tspan><tspan font-size="600px">Title</tspan></tspan></tspan></text>
<text x="100" y="900" font-size="0px"><tspan font-size="400px">ab</tspan>
<tspan font-size="400px">cd</tspan></text>
</svg></svg>"""


def test_fix_svg_lifts_the_viewbox_and_places_every_run() -> None:
    from lxml import etree
    from reportlab.pdfbase.pdfmetrics import stringWidth

    root = etree.fromstring(fix_svg(PAGE))
    assert root.get("viewBox") == "0 0 21000 29700" and root.find(f"{SVG}svg") is None
    runs = {e.text: e for e in root.iter(f"{SVG}tspan") if e.text and e.text.strip()}
    title = runs["Title"]
    assert float(title.get("x")) == pytest.approx(
        10000 - stringWidth("Title", "Times-Roman", 600) / 2
    )
    assert title.get("y") == "400" and title.get("text-anchor") == "start"
    assert float(runs["ab"].get("x")) == 100
    assert float(runs["cd"].get("x")) == pytest.approx(100 + stringWidth("ab", "Times-Roman", 400))
    assert runs["cd"].get("y") == "900"
    assert all(e.get("x") is None for e in root.iter(f"{SVG}text"))


def test_svgs_to_pdf_keeps_each_page_size() -> None:
    small = '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50"><rect width="10" height="10"/></svg>'
    data = svgs_to_pdf([PAGE, small])
    assert pdf_pages(data) == 2
    boxes = re.findall(rb"/MediaBox \[ ?([\d. ]+)\]", data)
    sizes = {tuple(round(float(v)) for v in box.split()) for box in boxes}
    assert sizes == {(0, 0, 595, 842), (0, 0, 75, 38)}  # A4, and 100 x 50 px in points


def test_the_music_font_does_not_depend_on_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """fontTools stamps the time into a font it saves unless told not to: PDFs would differ."""
    from fontTools.ttLib.tables import _h_e_a_d

    from musegen.render.engrave_verovio import music_font

    first = music_font()
    assert first is not None and first[0] == "Leipzig"
    music_font.cache_clear()
    monkeypatch.setattr(_h_e_a_d, "timestampNow", lambda: 12345)
    try:
        assert music_font() == first
    finally:
        music_font.cache_clear()
