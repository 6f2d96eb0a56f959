"""Reading a source's files into scores through :mod:`musegen.io`, with one error type.

Whatever goes wrong (garbage bytes, an empty file, music21 choking) comes out as an
:class:`InputError` naming the piece, so a batch (``musegen data prepare``) can skip the piece
and list the reason.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from musegen.errors import InputError, MusegenError
from musegen.score import Score


def load_file(path: Path, label: str | None = None) -> Score:
    """A score from any file :func:`musegen.io.load` reads, or a Humdrum ``.krn`` file."""
    label = label or str(path)
    if path.suffix.lower() == ".krn":
        return _load_humdrum(path, label)
    from musegen.io import load

    try:
        return load(path)
    except InputError as e:
        raise InputError(label, e.reason) from None
    except MusegenError as e:
        raise InputError(label, str(e)) from None


def load_midi_bytes(data: bytes, label: str) -> Score:
    """A score from the bytes of a MIDI file, errors naming ``label`` as :func:`load_file`'s
    name the file."""
    from musegen.io.midi import read_midi

    try:
        return read_midi(data)
    except InputError as e:
        raise InputError(label, e.reason) from None
    except MusegenError as e:
        raise InputError(label, str(e)) from None


def load_abc_tune(text: bytes, label: str) -> Score:
    """A score from the text of one ABC tune (a tune of a tune book)."""
    with tempfile.TemporaryDirectory(prefix="musegen-abc-") as tmp:
        path = Path(tmp) / "tune.abc"
        path.write_bytes(text)
        return load_file(path, label)


def _load_humdrum(path: Path, label: str) -> Score:
    from musegen.io.music21 import from_music21

    if not path.is_file():
        raise InputError(label, "no such file")
    try:
        from music21 import converter

        parsed = converter.parse(path, format="humdrum", forceSource=True)
        return from_music21(parsed)
    except InputError:
        raise
    except Exception as e:  # music21 raises many kinds for odd Humdrum
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise InputError(label, f"cannot read Humdrum: {reason}") from None
