"""Symbolic music files <-> :class:`~musegen.score.Score`: pick a converter by extension.

>>> from musegen.io import load, save
>>> score = load("corpus:bach/bwv66.6")  # doctest: +SKIP
>>> save(score, "chorale.mid")  # doctest: +SKIP

Every failure to read or write a file is an :class:`~musegen.errors.InputError` naming the
file with a one-line reason; library exceptions never leak out of this package. A MIDI file
without notes loads as a Score without tracks (callers decide whether that is an error).
music21 is imported only when a MusicXML/ABC/corpus file is touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from musegen.errors import InputError, MusegenError
from musegen.io._common import DEFAULT_MAX_BYTES, one_line
from musegen.io.midi import MIDI_EXTENSIONS, read_midi, write_midi
from musegen.io.music21 import ABC_EXTENSIONS as _ABC
from musegen.io.music21 import (
    CORPUS_PREFIX,
    read_abc,
    read_corpus,
    read_musicxml,
    write_musicxml,
)
from musegen.io.music21 import MUSICXML_EXTENSIONS as _MUSICXML
from musegen.score import Score

_MIDI_WRITE = (".mid", ".midi")

SUPPORTED_READ: tuple[str, ...] = (*MIDI_EXTENSIONS, *_MUSICXML, *_ABC)
"""File extensions :func:`load` reads (plus ``corpus:`` references)."""
SUPPORTED_WRITE: tuple[str, ...] = (*_MIDI_WRITE, *_MUSICXML)
"""File extensions :func:`save` writes."""

FORMATS = f"""\
Formats (chosen by file extension):
  MIDI      {", ".join(MIDI_EXTENSIONS):<24} read + write (.kar, .rmi: read only)
  MusicXML  {", ".join(_MUSICXML):<24} read + write (written on a 16th-note grid)
  ABC       {", ".join(_ABC):<24} read only (first tune of a file)
  corpus    {"corpus:NAME":<24} read only: music21's corpus, e.g. corpus:bach/bwv66.6
"""

PathLike = str | Path


def load(source: PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Score:
    """Read a score from a file (by extension) or a ``corpus:`` reference.

    Files over ``max_bytes`` are refused before they are read.
    """
    text = str(source)
    if text.startswith(CORPUS_PREFIX):
        return read_corpus(text)
    ext = Path(text).suffix.lower()
    if ext in MIDI_EXTENSIONS:
        return read_midi(Path(source), max_bytes=max_bytes)
    if ext in _MUSICXML:
        return read_musicxml(source, max_bytes=max_bytes)
    if ext in _ABC:
        return read_abc(source, max_bytes=max_bytes)
    raise InputError(source, _unknown(ext, SUPPORTED_READ, "read"))


def save(score: Score, path: PathLike) -> None:
    """Write ``score`` to ``path`` in the format its extension names (atomically)."""
    ext = Path(path).suffix.lower()
    if ext in _MIDI_WRITE:
        write_midi(score, path)
    elif ext in _MUSICXML:
        write_musicxml(score, path)
    elif ext in _ABC:
        raise InputError(path, "ABC is read-only here; save as .mid or .musicxml")
    else:
        raise InputError(path, _unknown(ext, SUPPORTED_WRITE, "write"))


def load_many(
    sources: Iterable[PathLike], *, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[list[tuple[PathLike, Score]], list[tuple[PathLike, str]]]:
    """Load every source; return ``(loaded, failed)`` so a batch goes on past bad files.

    ``loaded`` holds ``(source, score)`` pairs and ``failed`` ``(source, reason)`` pairs,
    both in input order.
    """
    loaded: list[tuple[PathLike, Score]] = []
    failed: list[tuple[PathLike, str]] = []
    for src in sources:
        try:
            loaded.append((src, load(src, max_bytes=max_bytes)))
        except InputError as e:
            failed.append((src, e.reason))
        except MusegenError as e:
            failed.append((src, one_line(e)))
    return loaded, failed


def _unknown(ext: str, supported: tuple[str, ...], verb: str) -> str:
    what = f"extension '{ext}'" if ext else "a file without an extension"
    return f"cannot {verb} {what}; supported: {', '.join(supported)}"


__all__ = [
    "CORPUS_PREFIX",
    "DEFAULT_MAX_BYTES",
    "FORMATS",
    "SUPPORTED_READ",
    "SUPPORTED_WRITE",
    "load",
    "load_many",
    "read_abc",
    "read_corpus",
    "read_midi",
    "read_musicxml",
    "save",
    "write_midi",
    "write_musicxml",
]
