"""``generate --instruments``: instrument names to General MIDI programs.

A name is a GM program name (``Violin``, ``Acoustic Grand Piano``; any case), a word of one
(``piano``, ``cello``, ``flute``: the lowest program whose name has that word), a program
number 0..127, or ``drums`` (128, REMI's drum program). Names are separated by commas.
Repeats are kept here; a ``remi-instruments`` model plays one part per program.
"""

from __future__ import annotations

from musegen.errors import MusegenError
from musegen.metrics.describe import GM_PROGRAMS

DRUMS = 128


def program_of(name: str) -> int:
    """The GM program of one instrument name (module docstring); a one-line error if none."""
    text = name.strip().lower()
    if text.isdigit() and 0 <= int(text) <= 127:
        return int(text)
    if text in ("drums", "drum kit", "percussion"):
        return DRUMS
    lowered = [g.lower() for g in GM_PROGRAMS]
    if text in lowered:
        return lowered.index(text)
    for program, g in enumerate(lowered):
        if text in g.replace("(", " ").replace(")", " ").split():
            return program
    raise MusegenError(
        f"instrument {name.strip()!r}: not a General MIDI name, word or number 0..127 "
        "(e.g. violin, viola, cello, piano, flute, drums)"
    )


def parse_instruments(text: str) -> tuple[int, ...]:
    """``"violin, violin, viola, cello"`` as GM programs, in the order given."""
    names = [n for n in text.split(",") if n.strip()]
    if not names:
        raise MusegenError("--instruments is empty: name one or more, e.g. 'violin,cello'")
    return tuple(program_of(n) for n in names)
