"""Rendering a Score to audio (WAV), piano-roll pictures (PNG/SVG) and notation (MusicXML/SVG/PDF).

>>> from musegen.render import render_outputs
>>> render_outputs(score, "out/chorale", {"wav", "png"})  # doctest: +SKIP
[PosixPath('out/chorale.wav'), PosixPath('out/chorale.png')]

Heavy libraries (matplotlib, music21, tinysoundfont, verovio, svglib) are imported only when
a renderer runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from musegen.errors import MusegenError
from musegen.render.audio import (
    describe_audio,
    find_soundfont,
    render_audio,
    render_wav,
    resolve_synth,
)
from musegen.render.notation import ENGRAVERS, engrave, find_engraver, write_notation
from musegen.render.pianoroll import pianoroll_figure, render_pianoroll
from musegen.score import Score

# The order outputs are written in. png and roll-svg (NAME.roll.svg) are piano rolls; svg and
# pdf are engraved notation (svg: one file per page) from the musicxml.
KINDS = ("wav", "png", "roll-svg", "musicxml", "svg", "pdf")
ENGRAVED = ("svg", "pdf")


def render_outputs(
    score: Score,
    stem_path: str | Path,
    kinds: Iterable[str],
    soundfont: str | Path | None = None,
    *,
    synth: str = "auto",
    engraver: str = "auto",
    title: str | None = None,
    on_write: Callable[[Path], object] | None = None,
) -> list[Path]:
    """Write ``stem_path`` + ``.wav``/``.png``/``.roll.svg``/``.musicxml``/``.svg``/``.pdf``.

    ``kinds`` is a collection of names from :data:`KINDS` or a comma-separated string
    (``"wav,png"``). Returns the files written, in :data:`KINDS` order. Engraved SVG or PDF
    needs the MusicXML, so it is written too; a score of several pages gets one SVG per page
    (``NAME-1.svg``, ...). ``on_write`` is called with each file as soon as it exists. Raises
    :class:`MusegenError` for an unknown kind or a renderer that cannot run (after writing the
    outputs before it).
    """
    stem = Path(stem_path)
    wanted = parse_kinds(kinds)
    if "wav" in wanted:  # check the synth choice before any file is written
        resolve_synth(synth, soundfont)
    if engraver not in ENGRAVERS:
        raise MusegenError(f"unknown engraver {engraver!r}; choose one of: {', '.join(ENGRAVERS)}")
    name = title or stem.name
    written: list[Path] = []

    def done(*paths: Path) -> None:
        for path in paths:
            written.append(path)
            if on_write is not None:
                on_write(path)

    def at(suffix: str) -> Path:  # suffixes are added, never replaced: "take.1" + ".wav"
        return stem.with_name(stem.name + suffix)

    xml = at(".musicxml")
    for kind in KINDS:
        if kind not in wanted:
            continue
        if kind == "wav":
            done(render_wav(score, at(".wav"), synth=synth, soundfont=soundfont))
        elif kind in ("png", "roll-svg"):
            done(render_pianoroll(score, at(".png" if kind == "png" else ".roll.svg"), title=name))
        elif kind == "musicxml" or xml not in written:  # svg/pdf: engraved from the MusicXML
            done(write_notation(score, xml))
        if kind in ENGRAVED:
            done(*engrave(xml, at(f".{kind}"), engraver))
    return written


def parse_kinds(kinds: Iterable[str]) -> set[str]:
    """The output kinds in ``kinds`` (names or ``"wav,png"``); an unknown one is an error."""
    if isinstance(kinds, str):  # "wav,png" straight from a --render option
        kinds = kinds.split(",")
    wanted = {k.strip().lower().lstrip(".") for k in kinds if k.strip()}
    unknown = wanted - set(KINDS)
    if unknown:
        raise MusegenError(
            f"unknown render output {', '.join(sorted(unknown))}; choose from {', '.join(KINDS)}"
        )
    return wanted


def describe_outputs(
    kinds: Iterable[str],
    soundfont: str | Path | None = None,
    *,
    synth: str = "auto",
    engraver: str = "auto",
) -> dict[str, dict[str, str]]:
    """How :func:`render_outputs` makes audio and engravings with these settings.

    For a settings JSON: ``{"wav": {"synth": "soundfont", "soundfont": PATH, ...},
    "pdf": {"engraver": "verovio 6.4.1"}}`` (only the kinds asked for that have a choice).
    """
    wanted = parse_kinds(kinds)
    out: dict[str, dict[str, str]] = {}
    if "wav" in wanted:
        out["wav"] = describe_audio(synth, soundfont)
    for kind in ENGRAVED:
        if kind in wanted:
            found = find_engraver(engraver, f".{kind}")
            out[kind] = {"engraver": " ".join(found) if found else "none found"}
    return out


__all__ = [
    "KINDS",
    "describe_outputs",
    "engrave",
    "find_soundfont",
    "pianoroll_figure",
    "render_audio",
    "render_outputs",
    "render_pianoroll",
    "render_wav",
    "write_notation",
]
