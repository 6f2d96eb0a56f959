"""Engraving in-process with verovio (a wheel, no system library): MusicXML -> SVG pages -> PDF.

verovio lays the score out on A4 pages and draws each page as SVG, in millimetres, with the
Leipzig music font's glyphs as paths (and, in text such as a metronome mark, as characters of
that font, which verovio ships inside its data folder). :mod:`musegen.render.svg_pdf` turns
the pages into one PDF. Output is reproducible: element ids come from a fixed seed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import importlib.util
import io
import re
from pathlib import Path

from musegen.errors import MusegenError

MUSIC_FONT = "Leipzig"
OPTIONS = {
    "pageWidth": 2100,  # A4 in tenths of a millimetre
    "pageHeight": 2970,
    "mmOutput": True,  # the SVG's size is the paper's: 210mm x 297mm
    "font": MUSIC_FONT,
    "footer": "none",
    "xmlIdSeed": 1,  # the same ids, so the same files, on every run
}


def has_verovio() -> bool:
    return importlib.util.find_spec("verovio") is not None


def verovio_version() -> str:
    import verovio

    return str(verovio.toolkit().getVersion()).split("-")[0]


def svg_pages(musicxml: str | Path) -> list[str]:
    """Every page of the engraved ``musicxml`` file, each as one SVG document."""
    import verovio

    verovio.enableLog(verovio.LOG_OFF)  # failures are reported through loadFile's result
    tk = verovio.toolkit()
    tk.setOptions(OPTIONS)
    if not tk.loadFile(str(musicxml)):
        raise MusegenError(f"verovio could not read {musicxml}")
    pages = [tk.renderToSVG(page) for page in range(1, tk.getPageCount() + 1)]
    if not pages:
        raise MusegenError(f"verovio engraved no page from {musicxml}")
    return pages


@functools.cache
def music_font() -> tuple[str, bytes] | None:
    """The music font verovio draws text glyphs with, as (family, TrueType bytes), if readable.

    verovio keeps it as a WOFF2 data URL in ``data/Leipzig.css``; fontTools (with brotli)
    unpacks it. None when that is not possible: such glyphs are then left out of the PDF.
    """
    import verovio

    css = Path(verovio.toolkit().getResourcePath()) / f"{MUSIC_FONT}.css"
    try:
        from fontTools.ttLib import TTFont

        found = re.search(r"base64,([A-Za-z0-9+/=\s]+)\)", css.read_text(encoding="utf-8"))
        if found is None:
            return None
        font = TTFont(io.BytesIO(base64.b64decode(found.group(1))), recalcTimestamp=False)
        font.flavor = None  # WOFF2 -> plain TrueType
        out = io.BytesIO()
        font.save(out)
    except (ImportError, OSError, binascii.Error, ValueError, KeyError):
        return None
    return MUSIC_FONT, out.getvalue()


def engrave_verovio(musicxml: str | Path, fmt: str) -> list[bytes]:
    """``.svg``: one SVG file per page; ``.pdf``: one PDF of every page."""
    pages = svg_pages(musicxml)
    if fmt == ".svg":
        return [page.encode("utf-8") for page in pages]
    from musegen.render.svg_pdf import svgs_to_pdf

    return [svgs_to_pdf(pages, fonts=[f] if (f := music_font()) else [])]
