"""Rendering a Score to audio (WAV), pictures (piano roll PNG/SVG) and notation (MusicXML/PDF).

>>> from musegen.render import render_outputs
>>> render_outputs(score, "out/chorale", {"wav", "png"})  # doctest: +SKIP
[PosixPath('out/chorale.wav'), PosixPath('out/chorale.png')]

Heavy libraries (matplotlib, music21, tinysoundfont) are imported only when a renderer runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from musegen.errors import MusegenError
from musegen.render.audio import find_soundfont, render_audio, render_wav, resolve_synth
from musegen.render.notation import engrave, write_notation
from musegen.render.pianoroll import pianoroll_figure, render_pianoroll
from musegen.score import Score

KINDS = ("wav", "png", "svg", "musicxml", "pdf")  # the order outputs are written in


def render_outputs(
    score: Score,
    stem_path: str | Path,
    kinds: Iterable[str],
    soundfont: str | Path | None = None,
    *,
    synth: str = "auto",
    title: str | None = None,
    on_write: Callable[[Path], object] | None = None,
) -> list[Path]:
    """Write ``stem_path`` + ``.wav``/``.png``/``.svg``/``.musicxml``/``.pdf`` for each kind.

    ``kinds`` is a collection of names or a comma-separated string (``"wav,png"``).
    Returns the files written, in :data:`KINDS` order. A PDF needs the MusicXML, so it is
    written too. ``on_write`` is called with each file as soon as it exists. Raises
    :class:`MusegenError` for an unknown kind or a renderer that cannot run (after writing the
    outputs before it).
    """
    stem = Path(stem_path)
    if isinstance(kinds, str):  # "wav,png" straight from a --render option
        kinds = kinds.split(",")
    wanted = {k.strip().lower().lstrip(".") for k in kinds if k.strip()}
    unknown = wanted - set(KINDS)
    if unknown:
        raise MusegenError(
            f"unknown render output {', '.join(sorted(unknown))}; choose from {', '.join(KINDS)}"
        )
    if "wav" in wanted:  # check the synth choice before any file is written
        resolve_synth(synth, soundfont)
    name = title or stem.name
    written: list[Path] = []

    def done(path: Path) -> None:
        written.append(path)
        if on_write is not None:
            on_write(path)

    for kind in KINDS:
        if kind not in wanted:
            continue
        target = stem.with_name(f"{stem.name}.{kind}")
        if kind == "wav":
            done(render_wav(score, target, synth=synth, soundfont=soundfont))
        elif kind in ("png", "svg"):
            done(render_pianoroll(score, target, title=name))
        elif kind == "musicxml":
            done(write_notation(score, target))
        else:
            xml = stem.with_name(f"{stem.name}.musicxml")
            if "musicxml" not in wanted:
                done(write_notation(score, xml))
            done(engrave(xml, target))
    return written


__all__ = [
    "KINDS",
    "engrave",
    "find_soundfont",
    "pianoroll_figure",
    "render_audio",
    "render_outputs",
    "render_pianoroll",
    "render_wav",
    "write_notation",
]
