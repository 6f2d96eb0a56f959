"""Readable notation: quantized MusicXML, and engraved pages (PDF, SVG) from it.

Before writing MusicXML the score is quantized beat by beat to 16ths or to 8th-note triplets
(whichever fits that beat's onsets and offsets better), given a time signature (4/4 when it
has none) and a key signature (estimated from its pitch classes when it has none). Writing
goes through :func:`musegen.io.write_musicxml`, which names the parts (S/A/T/B voices become
Soprano/Alto/Tenor/Bass) and splits overlapping notes into numbered voices.

Engraving uses verovio in-process when its wheel is installed (SVG pages; PDF through
:mod:`musegen.render.svg_pdf`), else MuseScore (``mscore``/``musescore``/...) or LilyPond
(``musicxml2ly`` + ``lilypond``, else music21's LilyPond export) from PATH; ``engraver``
names one of them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from musegen.errors import MusegenError
from musegen.render.common import check_bars
from musegen.score import Score, TimeSignature
from musegen.theory import estimate_key, key_signature
from musegen.utils import atomic_write_bytes

NOTATION_TPQ = 480  # holds 16ths (120) and 8th-note triplets (160) exactly
SIXTEENTH, TRIPLET = NOTATION_TPQ // 4, NOTATION_TPQ // 3
ENGRAVERS = ("auto", "verovio", "musescore", "lilypond")
MUSESCORE_NAMES = ("mscore", "musescore", "mscore4", "musescore4", "mscore3", "musescore3")
ENGRAVE_TIMEOUT = 300  # seconds
MAX_BARS = 2000


# --------------------------------------------------------------------------- MusicXML
def write_notation(score: Score, path: str | Path) -> Path:
    """Write ``score`` as quantized MusicXML (``.musicxml``/``.xml``/``.mxl``) for notation."""
    from musegen.io import write_musicxml

    check_bars(score, MAX_BARS, "notation")
    # grid 12 (= 40 ticks at 480 tpq) holds both of our grids, so io keeps our quantization
    write_musicxml(prepare_notation(score), path, grid=12)
    return Path(path)


def prepare_notation(score: Score) -> Score:
    """The score as notation wants it: 480 tpq, per-beat quantized, with meter and key."""
    out = quantize_beats(score)
    if not out.time_signatures:
        out.time_signatures = [TimeSignature(0, 4, 4)]
    if not out.key_signatures:
        key = estimate_key(out)
        out.key_signatures = [key_signature(key)] if key is not None else []
    return out


def quantize_beats(score: Score) -> Score:
    """Snap onsets and offsets to 16ths or to 8th triplets, chosen per beat by least error.

    Every note keeps at least one step of its beat's grid.
    """
    s = score if score.tpq == NOTATION_TPQ else score.resample(NOTATION_TPQ)
    tracks = [t for t in s.tracks if len(t)]
    if not tracks:
        return s.copy()
    starts = np.concatenate([t.notes["start"] for t in tracks])
    ends = np.concatenate([t.notes["start"] + t.notes["duration"] for t in tracks])
    times = np.maximum(np.concatenate([starts, ends]), 0)
    beats = times // NOTATION_TPQ
    err16 = _grid_error(times, SIXTEENTH)
    err3 = _grid_error(times, TRIPLET)
    n_beats = int(beats.max()) + 1
    triplet_beat = np.bincount(beats, err3, n_beats) < np.bincount(beats, err16, n_beats)

    def snap(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Snapped times and the grid step each one used."""
        t = np.maximum(t, 0)
        step = np.where(
            triplet_beat[np.minimum(t // NOTATION_TPQ, n_beats - 1)], TRIPLET, SIXTEENTH
        )
        return (t + step // 2) // step * step, step

    out = []
    for track in s.tracks:
        notes = track.notes.copy()
        if len(notes):
            start, step = snap(notes["start"])
            end, _ = snap(notes["start"] + notes["duration"])
            notes["start"] = start
            notes["duration"] = np.maximum(end - start, step)
        out.append(track.copy(notes))
    return replace(s, tracks=out)


def _grid_error(times: np.ndarray, step: int) -> np.ndarray:
    pos = times % step
    return np.minimum(pos, step - pos).astype(np.float64)


# --------------------------------------------------------------------------- engraving
def find_engraver(name: str = "auto", fmt: str = ".pdf") -> tuple[str, str] | None:
    """The engraver for ``fmt`` (``.pdf``/``.svg``/``.png``): ``(kind, program)`` or None.

    ``auto`` takes verovio when its wheels are installed (in-process, the same pages on every
    machine; ``program`` is its version), else MuseScore, else LilyPond from PATH (``program``
    is the executable). Naming one (``verovio``/``musescore``/``lilypond``) takes only that.
    """
    if name not in ENGRAVERS:
        raise MusegenError(f"unknown engraver {name!r}; choose one of: {', '.join(ENGRAVERS)}")
    if name in ("auto", "verovio") and _verovio_can(fmt):
        from musegen.render.engrave_verovio import verovio_version

        return "verovio", verovio_version()
    if name in ("auto", "musescore"):
        for exe_name in MUSESCORE_NAMES:
            exe = shutil.which(exe_name)
            if exe:
                return "musescore", exe
    if name in ("auto", "lilypond"):
        exe = shutil.which("lilypond")
        if exe:
            return "lilypond", exe
    return None


def _verovio_can(fmt: str) -> bool:
    """verovio engraves SVG; PDF also needs svglib (which brings reportlab); PNG it cannot."""
    from musegen.render.engrave_verovio import has_verovio

    if fmt == ".svg":
        return has_verovio()
    return fmt == ".pdf" and has_verovio() and importlib.util.find_spec("svglib") is not None


def page_paths(out: str | Path, n_pages: int) -> list[Path]:
    """Where the pages go: ``out`` for one page (and any PDF), else ``NAME-1.svg``, ..."""
    out = Path(out)
    if n_pages == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(1, n_pages + 1)]


def engrave(musicxml: str | Path, out: str | Path, engraver: str = "auto") -> list[Path]:
    """Engrave a MusicXML file to ``out`` (.pdf, .svg, or .png with MuseScore/LilyPond).

    A PDF holds every page. SVG and PNG write one file per page: ``out`` itself for a one-page
    score, else ``NAME-1.svg``, ``NAME-2.svg``, ... Returns the files written.
    """
    musicxml, out = Path(musicxml), Path(out)
    fmt = out.suffix.lower()
    if fmt not in (".pdf", ".svg", ".png"):
        raise MusegenError(f"{out}: engraving writes .pdf, .svg or .png")
    found = find_engraver(engraver, fmt)
    if found is None:
        raise MusegenError(f"{_missing(engraver, fmt)}; the MusicXML was written to {musicxml}")
    kind, exe = found
    if kind == "verovio":
        from musegen.render.engrave_verovio import engrave_verovio

        pages = engrave_verovio(musicxml, fmt)
    else:
        with tempfile.TemporaryDirectory(prefix="musegen-engrave-") as tmp:
            run = _musescore if kind == "musescore" else _lilypond
            pages = [p.read_bytes() for p in run(exe, musicxml, Path(tmp), fmt)]
    paths = page_paths(out, len(pages))
    for path, data in zip(paths, pages, strict=True):
        atomic_write_bytes(path, data)
    return paths


def _missing(engraver: str, fmt: str) -> str:
    """What to install so that ``engraver`` can write ``fmt``."""
    what = fmt[1:].upper()
    if engraver == "musescore":
        return f"MuseScore (mscore) is not on PATH to engrave {what}"
    if engraver == "lilypond":
        return f"LilyPond is not on PATH to engrave {what}"
    if fmt == ".png":
        return "engraved PNG needs MuseScore or LilyPond on PATH (or write --svg / --pdf)"
    wheels = "verovio" if fmt == ".svg" else "verovio svglib"
    if engraver == "verovio":
        return f"pip install {wheels} to engrave {what} with verovio"
    return f"pip install {wheels} (or install MuseScore or LilyPond) to engrave {what}"


def _run(cmd: list[str], what: str, musicxml: Path, cwd: Path) -> None:
    """Run an engraver; a failure becomes one MusegenError line with its last message."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}  # MuseScore without a display
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=ENGRAVE_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise MusegenError(
            f"{what} could not run ({e}); the MusicXML was written to {musicxml}"
        ) from e
    if proc.returncode != 0:
        lines = [x for x in (proc.stderr or proc.stdout).splitlines() if x.strip()]
        last = lines[-1].strip() if lines else f"exit code {proc.returncode}"
        raise MusegenError(f"{what} failed: {last}; the MusicXML was written to {musicxml}")


def _musescore(exe: str, musicxml: Path, tmp: Path, fmt: str) -> list[Path]:
    _run([exe, "-o", str(tmp / f"score{fmt}"), str(musicxml.resolve())], "MuseScore", musicxml, tmp)
    return _pages(tmp, fmt, "MuseScore", musicxml)  # SVG/PNG: one file per page, score-1.svg


def _lilypond(exe: str, musicxml: Path, tmp: Path, fmt: str) -> list[Path]:
    ly = tmp / "score.ly"
    converter = shutil.which("musicxml2ly")
    if converter:
        _run(
            [converter, "--output", str(ly), str(musicxml.resolve())], "musicxml2ly", musicxml, tmp
        )
    else:
        _music21_lily(musicxml, ly)
    flags = {".pdf": ["--pdf"], ".png": ["--png"], ".svg": ["-dbackend=svg"]}[fmt]
    _run([exe, *flags, "-o", str(tmp / "score"), str(ly)], "LilyPond", musicxml, tmp)
    return _pages(tmp, fmt, "LilyPond", musicxml)


def _pages(tmp: Path, fmt: str, what: str, musicxml: Path) -> list[Path]:
    """The pages an engraver wrote in ``tmp``: ``score.pdf``, or ``score-1.svg``, ... in order."""
    whole = tmp / f"score{fmt}"
    if whole.exists():
        return [whole]
    numbered = [p for p in tmp.glob(f"score-*{fmt}") if p.stem[6:].isdigit()]
    if not numbered:
        raise MusegenError(f"{what} wrote no {fmt} file; the MusicXML was written to {musicxml}")
    pages = sorted(numbered, key=lambda p: int(p.stem[6:]))
    return pages[:1] if fmt == ".pdf" else pages


def _music21_lily(musicxml: Path, ly: Path) -> None:
    """LilyPond source for ``musicxml`` through music21 (when musicxml2ly is missing)."""
    try:
        import music21
        from music21.lily.translate import LilypondConverter

        conv = LilypondConverter()
        conv.loadFromMusic21Object(music21.converter.parse(str(musicxml)))
        ly.write_text(str(conv.topLevelObject), encoding="utf-8")
    except Exception as e:  # music21's LilyPond export is incomplete for some scores
        raise MusegenError(
            f"music21 could not convert to LilyPond ({type(e).__name__}); "
            f"the MusicXML was written to {musicxml}"
        ) from e
