"""The evaluation report: its numbers, a self-contained HTML page whose pictures are valid
PNGs, and (where chromium is installed) that a browser shows the page with its plots."""

from __future__ import annotations

import base64
import html
import json
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from metricshelpers import CLEAN, satb
from musegen.cli.main import main
from musegen.evaluate.report import GEN_COLOUR, SECTIONS
from musegen.io import save

FEATURES = "pitch_range,pitch_class_histogram,pitch_class_transition_matrix"
FIFTHS = {5: (74, 69, 62, 55)}  # parallel fifths T-B into bar 2 beat 2
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def with_errors(changes: dict[int, tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    chords = list(CLEAN)
    for i, c in changes.items():
        chords[i] = c
    return chords


class Page(HTMLParser):
    """Section ids and image sources of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id") or "")
        if tag == "img":
            self.images.append(a.get("src") or "")


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, after checking its signature, IHDR chunk (and CRC) and IEND."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    body = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    assert zlib.crc32(kind + body) == crc, "IHDR checksum"
    width, height, depth, colour = struct.unpack(">IIBB", body[:10])
    assert width > 0 and height > 0 and depth in (1, 2, 4, 8, 16) and colour in (0, 2, 3, 4, 6)
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82", "no IEND chunk at the end"
    return width, height


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("report")
    for i in range(3):
        save(satb(with_errors(FIFTHS)).transpose(i), root / "gen" / f"gen{i}.mid")
    save(satb(CLEAN[:3]), root / "gen" / "three.mid")
    for i in range(4):
        save(satb(CLEAN).transpose(-i), root / "ref" / f"ref{i}.mid")
    out, js = root / "report.html", root / "report.json"
    args = [str(root / "gen"), "--reference", str(root / "ref"), "--out", str(out)]
    code = main(
        [
            "evaluate",
            "report",
            *args,
            "--json",
            str(js),
            "--features",
            FEATURES,
            "--thumbnails",
            "2",
            "--no-progress",
        ]
    )
    assert code == 0
    return out, json.loads(js.read_text())


def test_report_numbers(report: tuple[Path, dict]) -> None:
    _, data = report
    assert data["generated"]["pieces"] == 4 and data["reference"]["pieces"] == 4
    assert [f["feature"] for f in data["features"]] == FEATURES.split(",")
    vl = data["voice_leading"]
    assert vl["generated"]["counts"]["parallel_fifths"] == 3
    assert vl["reference"]["errors_total"] == 0
    first = data["pieces"]["generated"][0]
    assert first["voice_leading"]["errors"][0] | {"detail": ""} == {
        "kind": "parallel_fifths", "voices": "T-B", "bar": 2, "beat": 2.0, "detail": "",
    }  # fmt: skip
    assert data["cadences"]["reference"]["ending_authentic"] == 1.0
    assert data["pieces"]["generated"][0]["key"] == "C major"


def test_report_html_is_self_contained_with_valid_pngs(report: tuple[Path, dict]) -> None:
    path, _ = report
    text = path.read_text()
    page = Page()
    page.feed(text)
    assert page.sections == list(SECTIONS)
    assert len(page.images) == 3 + 2 + 1  # feature plots, generated and reference thumbnails
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        width, height = png_size(base64.b64decode(src.split(",", 1)[1], validate=True))
        assert width >= 200 and height >= 100
    assert "http://" not in text and "https://" not in text  # nothing to fetch
    assert "parallel_fifths" in text and "bar" in text


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)"
)
def test_chromium_shows_the_plots(report: tuple[Path, dict], tmp_path: Path) -> None:
    from matplotlib.image import imread

    path, _ = report
    probe = tmp_path / "probe.html"  # the report plus a script that counts undecodable images
    script = (
        "<script>window.addEventListener('load',()=>{const i=[...document.images];"
        "document.body.setAttribute('data-images',i.length);"
        "document.body.setAttribute('data-broken',i.filter(x=>!x.complete||!x.naturalWidth).length)});"
        "</script></body>"
    )
    probe.write_text(path.read_text().replace("</body>", script))
    shot = tmp_path / "shot.png"
    dom = subprocess.run(
        ["chromium", *CHROMIUM_FLAGS, "--dump-dom", f"--screenshot={shot}", "--window-size=1200,2000", probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert 'data-images="6"' in dom and 'data-broken="0"' in dom
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 0.05  # not a blank page
    red = np.array([int(GEN_COLOUR[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    assert (np.abs(pixels - red).max(axis=2) < 0.08).sum() > 300  # generated-set curves drawn


def test_one_short_piece_reports_what_cannot_be_compared(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One generated piece of one note: bar and interval features have no value there, so
    they are marked not comparable; every other feature and section is still written."""
    from musegen.score import Score, Track, make_notes

    save(Score(480, [Track(make_notes([0], [480], [60]))]), tmp_path / "one.mid")
    for i in range(3):
        save(satb(CLEAN).transpose(-i), tmp_path / "ref" / f"ref{i}.mid")
    out, js = tmp_path / "report.html", tmp_path / "report.json"
    code = main(
        [
            "evaluate", "report", str(tmp_path / "one.mid"), "-r", str(tmp_path / "ref"),
            "--out", str(out), "--json", str(js), "--thumbnails", "1", "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    features = {f["feature"]: f for f in json.loads(js.read_text())["features"]}
    lost = {name for name, f in features.items() if not f["comparable"]}
    assert {"mean_ioi", "groove_consistency", "pitch_class_transition_matrix"} <= lost
    problem = features["mean_ioi"]["problem"]
    assert problem == f"not comparable: no values in generated {tmp_path / 'one.mid'}"
    assert features["mean_ioi"]["oa"] is None
    # one generated piece has no intra-set distances, but the headline (reference intra-set
    # against inter-set) is still measured
    assert features["pitch_range"]["comparable"] and features["pitch_range"]["oa"] is not None
    assert features["pitch_range"]["oa_intra"] is None
    text = out.read_text()
    page = Page()
    page.feed(text)
    assert page.sections == list(SECTIONS)
    assert html.escape(problem) in text
