"""Helpers shared by the format converters: file checks, error condensing, voice names.

Nothing here imports symusic or music21, so the package stays cheap to import.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from musegen.errors import InputError
from musegen.score import VOICES, Score, Track, sort_notes

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
"""Largest input file :func:`musegen.io.load` reads unless told otherwise (200 MiB)."""
MAX_TICK = 2**31 - 1
"""Latest tick a loaded score may reach: MIDI's (and symusic's) 32-bit limit."""

VOICE_NAMES = {"S": "Soprano", "A": "Alto", "T": "Tenor", "B": "Bass"}
_NAME_TO_VOICE = {
    **{name.lower(): v for v, name in VOICE_NAMES.items()},
    **{v.lower(): v for v in VOICES},
    **{v.lower() + ".": v for v in VOICES},
}


def voice_from_name(name: str | None) -> str | None:
    """S/A/T/B label for a track or part called e.g. ``Soprano``, ``alto``, ``T`` or ``B.``.

    Only whole names count, so ``Bass Guitar`` is not a bass voice.
    """
    if not name:
        return None
    return _NAME_TO_VOICE.get(name.strip().lower())


def name_for_track(track: Track) -> str:
    """The name to store for a track: its voice's full name wins when the two disagree.

    MIDI and MusicXML carry a voice label only through the track/part name.
    """
    if track.voice and voice_from_name(track.name) != track.voice:
        return VOICE_NAMES[track.voice]
    return track.name


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message as one short line (falls back to the exception type)."""
    text = " ".join(str(exc).split())
    if not text:
        text = type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_input_bytes(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of a file, or :class:`InputError` saying plainly why it cannot be read.

    Checks size before reading so that a huge file is refused without loading it.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror or one_line(e)}") from None
    if p.is_dir():
        raise InputError(path, "is a folder, not a file")
    if st.st_size == 0:
        raise InputError(path, "file is empty")
    if st.st_size > max_bytes:
        raise InputError(path, too_big(st.st_size, max_bytes))
    try:
        with open(p, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror or one_line(e)}") from None
    if len(data) > max_bytes:  # grew since stat, or a device/pipe that reports size 0
        raise InputError(path, too_big(None, max_bytes))
    if not data:
        raise InputError(path, "file is empty")
    return data


def check_span(label: str | Path, score: Score) -> Score:
    """Refuse a score whose notes run past :data:`MAX_TICK` (a corrupt or hostile file).

    Keeps every loaded score writable as MIDI and safe for code that walks its bars.
    """
    if score.end > MAX_TICK:
        raise InputError(label, f"music runs to tick {score.end}, past 2**31: corrupt file?")
    return score


def too_big(size: int | None, max_bytes: int) -> str:
    """The reason for refusing a file of ``size`` bytes (None: unknown) over ``max_bytes``."""
    what = f"file is {_size(size)}" if size is not None else "file is"
    return f"{what}, over the {_size(max_bytes)} limit (see max_bytes)"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


def resolve_overlaps(notes: np.ndarray, unisons: bool = False) -> np.ndarray:
    """Make same-pitch notes of one track non-overlapping, the way MIDI needs them.

    Two notes of one pitch that overlap are ambiguous in MIDI and in tied notation: an
    earlier note that still sounds when a later one of its pitch starts is cut off there.
    Notes with the same onset and pitch (a unison of two voices merged into one track) are
    not ambiguous in MIDI: whichever note-off a reader pairs with which note-on, the same
    notes come back (at most their velocities swap). With ``unisons`` they are all kept;
    without, only the last in canonical order (the longest) is. Notes that do not overlap
    are returned unchanged.
    """
    if len(notes) < 2:
        return notes
    a = notes[np.lexsort((notes["velocity"], notes["duration"], notes["start"], notes["pitch"]))]
    same_pitch = a["pitch"][1:] == a["pitch"][:-1]
    dup = same_pitch & (a["start"][1:] == a["start"][:-1])
    if dup.any() and not unisons:
        a = a[np.concatenate([~dup, [True]])]
        same_pitch = a["pitch"][1:] == a["pitch"][:-1]
        dup = np.zeros(len(a) - 1, bool)
    # the next later onset of each note's pitch: the start of the next (pitch, start) group
    new_group = np.concatenate([[True], ~dup])
    group = np.cumsum(new_group) - 1
    group_first = np.flatnonzero(new_group)
    group_start = a["start"][group_first]
    group_pitch = a["pitch"][group_first]
    has_next = np.append(group_pitch[1:] == group_pitch[:-1], False)
    next_start = np.append(group_start[1:], 0)
    end = a["start"] + a["duration"]
    cut = np.where(has_next[group], np.minimum(end, next_start[group]), end)
    if len(a) == len(notes) and np.array_equal(cut, end):
        return notes
    a = a.copy()
    a["duration"] = cut - a["start"]
    return sort_notes(a)


def without_overlaps(score: Score, unisons: bool = False) -> Score:
    """``score`` with :func:`resolve_overlaps` applied to every track."""
    out = score.copy()
    for t in out.tracks:
        t.notes = resolve_overlaps(t.notes, unisons)
    return out


_SAFE_CORPUS = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-./]*$")


def check_corpus_name(ref: str, name: str) -> None:
    """Refuse corpus names that could reach outside the corpus (absolute paths, ``..``)."""
    if not _SAFE_CORPUS.match(name) or ".." in name.split("/") or os.path.isabs(name):
        raise InputError(ref, "corpus names look like 'corpus:bach/bwv66.6'")
