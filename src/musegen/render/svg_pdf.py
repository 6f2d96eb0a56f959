"""SVG pages -> one PDF, with wheels only: svglib reads SVG, reportlab writes the PDF.

Neither needs a system library (cairosvg would need cairo). Three things in verovio's SVG
come out wrong in svglib as it stands, so each page is first rewritten in ways that change
nothing for a browser:

* the page's inner ``<svg viewBox>`` becomes the outer element's viewBox (svglib converts
  pixels to points twice through a nested ``<svg>`` and shrinks the music by a quarter);
* text is laid out here: each run of a ``<text>`` gets its own x and y (svglib measures every
  run with the font of the ``<text>``, size 0 in verovio, and stacks them on one spot, and it
  ignores a position or alignment set on an enclosing ``<tspan>``);
* a font that the PDF must embed (the music font of metronome marks) is registered from bytes.

Pages keep their size (verovio's are A4); the PDF is reproducible (no date, a fixed id).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator, Sequence
from typing import Any

from musegen.errors import MusegenError

SVG_NS = "http://www.w3.org/2000/svg"
TEXT_TAGS = (f"{{{SVG_NS}}}text", f"{{{SVG_NS}}}tspan")  # not <title>, which is not drawn
POSITION = ("x", "y", "text-anchor")
STANDARD_FAMILIES = {"times": "Times", "serif": "Times", "helvetica": "Helvetica"}
STANDARD_FAMILIES |= {"sans-serif": "Helvetica", "courier": "Courier", "monospace": "Courier"}


def svgs_to_pdf(pages: Sequence[str], fonts: Sequence[tuple[str, bytes]] = ()) -> bytes:
    """One PDF page per SVG document in ``pages``; ``fonts``: (family, TrueType bytes) used."""
    from reportlab.graphics import renderPDF
    from reportlab.pdfgen import canvas
    from svglib.svglib import svg2rlg

    font_map, families = _font_map(tuple(fonts))
    out = io.BytesIO()
    pdf = canvas.Canvas(out, invariant=True, pageCompression=1)
    for page in pages:
        drawing = svg2rlg(io.BytesIO(fix_svg(page, families)), font_map=font_map)
        if drawing is None:
            raise MusegenError("svglib could not read an engraved SVG page")
        pdf.setPageSize((drawing.width, drawing.height))
        renderPDF.draw(drawing, pdf, 0, 0)
        pdf.showPage()
    pdf.save()
    return out.getvalue()


@functools.cache
def _font_map(fonts: tuple[tuple[str, bytes], ...]) -> tuple[Any, dict[str, str]]:
    """svglib's font map with ``fonts`` registered; and SVG family -> reportlab font name."""
    from svglib.fonts import FontMap

    font_map = FontMap()
    families: dict[str, str] = {}
    for family, data in fonts:
        name = f"musegen-{family}"
        for weight in ("normal", "bold"):  # one face serves all: CSS may make a tempo bold
            for style in ("normal", "italic"):
                font_map.register_font(family, io.BytesIO(data), weight, style, name)  # type: ignore[arg-type]
        families[family.lower()] = name
    return font_map, families


def fix_svg(svg: str, families: dict[str, str] | None = None) -> bytes:
    """``svg`` rewritten for svglib (see the module docstring); returns UTF-8 bytes."""
    from lxml import etree

    root = etree.fromstring(svg.encode("utf-8"))
    inner = root.find(f"{{{SVG_NS}}}svg")
    if inner is not None and inner.get("viewBox") and not root.get("viewBox"):
        root.set("viewBox", inner.attrib.pop("viewBox"))
        inner.tag = f"{{{SVG_NS}}}g"
    for text in root.iter(f"{{{SVG_NS}}}text"):
        _lay_out(text, families or {})
    return etree.tostring(root, encoding="utf-8")


def _lay_out(text: Any, families: dict[str, str]) -> None:
    """Give every run of ``text`` an explicit x, y and start alignment."""
    runs = [e for e in text.iter(*TEXT_TAGS) if _own_text(e)]
    if not runs:
        return
    x = _number(text.get("x"))
    y = _number(text.get("y"))
    chunks: list[tuple[float, float, str, list[tuple[Any, float]]]] = []
    for run in runs:
        pos = _position(run, text)
        if pos is not None or not chunks:  # a new chunk starts where a position is given
            px, py, anchor = pos if pos is not None else (None, None, None)
            x = px if px is not None else x
            y = py if py is not None else y
            chunks.append((x, y, anchor or _inherited(text, "text-anchor") or "start", []))
        chunks[-1][3].append((run, _width(run, families)))
    for element in [text, *text.iter(f"{{{SVG_NS}}}tspan")]:
        for key in POSITION:
            element.attrib.pop(key, None)
    for x0, y0, anchor, members in chunks:
        total = sum(w for _, w in members)
        pen = x0 - {"middle": total / 2, "end": total}.get(anchor, 0.0)
        for run, width in members:
            run.set("x", f"{pen:g}")
            run.set("y", f"{y0:g}")
            run.set("text-anchor", "start")
            pen += width


def _own_text(element: Any) -> bool:
    return bool(element.text and element.text.strip())


def _position(run: Any, text: Any) -> tuple[float | None, float | None, str | None] | None:
    """x, y, anchor set on ``run`` or on an enclosing tspan whose first run it is."""
    holders = [
        e
        for e in _up_to(run, text)
        if any(k in e.attrib for k in POSITION) and _first_run(e) is run
    ]
    if not holders:
        return None

    def first(key: str) -> str | None:  # the innermost holder's value wins
        return next((e.get(key) for e in holders if e.get(key) is not None), None)

    x, y = first("x"), first("y")
    return (_number(x) if x else None, _number(y) if y else None, first("text-anchor"))


def _up_to(element: Any, stop: Any) -> Iterator[Any]:
    """``element`` and its ancestors below ``stop``."""
    while element is not None and element is not stop:
        yield element
        element = element.getparent()


def _first_run(element: Any) -> Any:
    return next((e for e in element.iter(*TEXT_TAGS) if _own_text(e)), None)


def _inherited(element: Any, key: str) -> str | None:
    while element is not None:
        value = element.get(key)
        if value:
            return str(value)
        element = element.getparent()
    return None


def _width(run: Any, families: dict[str, str]) -> float:
    """The advance of ``run``'s text in its font, in the SVG's user units."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    size = _number(_inherited(run, "font-size"))
    return float(stringWidth(run.text, _font_name(run, families), size))


def _font_name(run: Any, families: dict[str, str]) -> str:
    """The reportlab font for ``run``: a registered family, else Times/Helvetica/Courier."""
    for family in (_inherited(run, "font-family") or "serif").split(","):
        key = family.strip().strip("'\"").lower()
        if key in families:
            return families[key]
        base = STANDARD_FAMILIES.get(key)
        if base:
            bold = _inherited(run, "font-weight") == "bold"
            italic = _inherited(run, "font-style") == "italic"
            if base == "Times":
                suffix = {(0, 0): "Roman", (1, 0): "Bold", (0, 1): "Italic", (1, 1): "BoldItalic"}
                return f"Times-{suffix[bold, italic]}"
            style = "Oblique"
            return base + ("-" if bold or italic else "") + "Bold" * bold + style * italic
    return "Times-Roman"


def _number(value: str | None) -> float:
    """A length such as ``405px`` or ``1533`` in user units (0 when missing)."""
    if not value:
        return 0.0
    try:
        return float(value.strip().removesuffix("px").split()[0])
    except ValueError:
        return 0.0
