"""MIDI files <-> :class:`~musegen.score.Score`, through symusic (the only module that knows it).

Notes move as whole numpy columns in both directions (``track.notes.numpy()`` and
``symusic.Note.from_numpy``), so a chorale converts in well under a millisecond.

What a write -> read round trip keeps: ``tpq``, every track with notes (order, program, drum
flag, name), every note's onset, duration, pitch and velocity, tempos (to 0.01 quarter per
minute), time and key signatures, markers (MIDI marker events, e.g. a chorale's fermatas). What
it does not keep, because standard MIDI cannot say it:

* tracks without notes (symusic drops them when reading);
* same-pitch overlaps inside a track: :func:`write_midi` cuts the earlier note where the later
  one starts (see :func:`~musegen.io._common.resolve_overlaps`); notes of one pitch with the
  same onset (two voices in unison merged into one track) are all kept, though a reader that
  pairs note-offs last-in-first-out may swap their velocities;
* velocity 0 (a note-on with velocity 0 means note-off): written as velocity 1;
* voice labels other than through the track name (``Soprano``/``Alto``/``Tenor``/``Bass``).

Reading: a file with no tracks, or with tracks but no notes, loads as a Score without tracks
(the caller decides whether that is an error). Two kinds of file that many readers refuse are
read too (:func:`unwrap_midi`): a RIFF-wrapped MIDI file (RMID, ``.rmi``: the standard file
sits in the RIFF's ``data`` chunk), and SMPTE time division (the header gives frames per
second and ticks per frame instead of ticks per quarter: time is absolute, tempo events do
not apply). An SMPTE file becomes ticks per quarter with one tempo, so every note keeps its
time in seconds: ``tpq`` is half the ticks per second at 120 quarters per minute (the whole
ticks per second at 60 where that is odd); 29 frames per second means 30 drop-frame, 29.97
frames a second, so the tempo is 119.88 (59.94). Notes that never get a note-off are dropped.
Map entries a file cannot mean (tempo 0, meter 0/0, key with 12 sharps) are dropped.
symusic keeps times in 32-bit ints and wraps silently past 2**31 ticks; any negative time
after reading is refused as corrupt, which catches wraps into the negative range (a file
built to wrap exactly by 2**32 cannot be told apart from a short one without a second parse).
Music ending past tick 2**31 - 1 is refused too, so every loaded score can be written back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np
import symusic

from musegen.errors import InputError
from musegen.io._common import (
    DEFAULT_MAX_BYTES,
    MAX_TICK,
    name_for_track,
    one_line,
    read_input_bytes,
    resolve_overlaps,
    too_big,
    voice_from_name,
)
from musegen.score import (
    NOTE_DTYPE,
    KeySignature,
    Marker,
    Score,
    Tempo,
    TimeSignature,
    Track,
)
from musegen.utils import atomic_write_bytes

MIDI_EXTENSIONS = (".mid", ".midi", ".kar", ".rmi")
_MAX_MSPQ = 0xFFFFFF  # a MIDI tempo event has 3 bytes of microseconds per quarter
# NOTE_DTYPE field <- symusic's note column
_NOTE_COLUMNS = (
    ("start", "time"),
    ("duration", "duration"),
    ("pitch", "pitch"),
    ("velocity", "velocity"),
)

_OVERFLOW = "times overflow 32 bits (enormous delta times): corrupt MIDI"

# symusic's parser messages -> what a user needs to hear.
_SYMUSIC_REASONS = (
    ("File header is not MThd", "not a MIDI file (no MThd header)"),
    ("File size is less than", "too short to be a MIDI file"),
    ("Invalid chunk length", "truncated or corrupt MIDI (a chunk runs past the end of the file)"),
)


# --------------------------------------------------------------------------- reading
def read_midi(source: str | Path | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Score:
    """Read a standard MIDI file (a path, or the file's bytes) into a :class:`Score`.

    Raises :class:`InputError` with a one-line reason for anything that is not a usable MIDI
    file: missing, empty, over ``max_bytes``, truncated, garbage, 32-bit overflow. RMID files
    and SMPTE time division are read (see the module docstring).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        label, data = "<bytes>", bytes(source)
        _check_size(label, data, max_bytes)
    else:
        label, data = str(source), read_input_bytes(source, max_bytes)
    score = _from_symusic_many([(_parse(data, label), label)])[0]
    if isinstance(score, InputError):
        raise score
    return score


def read_midi_many(
    files: Iterable[tuple[bytes, str]], *, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[Score | InputError]:
    """:func:`read_midi` of many files' bytes, each with the label its error names: a score,
    or the :class:`InputError` that ``read_midi`` would raise, for each.

    The notes of all the files go through numpy together, which makes many small files
    cheaper than one call each; the scores' note arrays are slices of one array.
    """
    out: list[Score | InputError | None] = []
    parsed: list[tuple[symusic.Score, str]] = []
    for data, label in files:
        try:
            _check_size(label, data, max_bytes)
            parsed.append((_parse(data, label), label))
            out.append(None)  # filled in below
        except InputError as e:
            out.append(e)
    converted = iter(_from_symusic_many(parsed))
    return [next(converted) if x is None else x for x in out]


def _check_size(label: str, data: bytes, max_bytes: int) -> None:
    if not data:
        raise InputError(label, "file is empty")
    if len(data) > max_bytes:
        raise InputError(label, too_big(len(data), max_bytes))


def _parse(data: bytes, label: str) -> symusic.Score:
    data, smpte_mspq = unwrap_midi(data, label)
    try:
        sm = symusic.Score.from_midi(data)
    except Exception as e:  # symusic raises RuntimeError/ValueError/...: all mean "bad file"
        raise InputError(label, _midi_reason(e)) from None
    if smpte_mspq:  # absolute time: the file's own tempo events do not apply
        sm.tempos.clear()
        sm.tempos.append(symusic.Tempo(0, mspq=smpte_mspq))
    return sm


def unwrap_midi(data: bytes, label: str = "<bytes>") -> tuple[bytes, int]:
    """The standard MIDI file in ``data`` and, for SMPTE time division, the tempo (microseconds
    per quarter) that keeps its seconds, else 0.

    An RMID file (``RIFF`` size ``RMID``, then chunks) gives the contents of its ``data``
    chunk. An SMPTE header (the division's top bit set: minus frames per second in the high
    byte, ticks per frame in the low one) is rewritten to ticks per quarter, see the module
    docstring; the tracks' delta times stay as they are. Anything else comes back unchanged.
    """
    if data[:4] == b"RIFF":
        data = _rmid_data(data, label)
    if data[:4] != b"MThd" or len(data) < 14:
        return data, 0
    division = int.from_bytes(data[12:14], "big")
    if not division & 0x8000:
        return data, 0
    fps, ticks_per_frame = 256 - (division >> 8), division & 0xFF
    if ticks_per_frame == 0:
        raise InputError(label, "corrupt MIDI: SMPTE time division with 0 ticks per frame")
    nominal = 30 if fps == 29 else fps  # 29: 30 drop-frame, 30000/1001 frames a second
    per_second = nominal * ticks_per_frame  # ticks per (nominal) second
    tpq, mspq = (per_second // 2, 500_000) if per_second % 2 == 0 else (per_second, 1_000_000)
    if fps == 29:
        mspq = mspq * 1001 // 1000
    return data[:12] + tpq.to_bytes(2, "big") + data[14:], mspq


def _rmid_data(data: bytes, label: str) -> bytes:
    """The ``data`` chunk of a RIFF RMID file (chunks are word-aligned, sizes little-endian)."""
    if data[8:12] != b"RMID":
        kind = data[8:12].decode("latin-1").strip()
        kind = kind if kind.isalnum() else "unknown"
        raise InputError(label, f"not a MIDI file (a RIFF file of kind {kind})")
    pos = 12
    while pos + 8 <= len(data):
        tag, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if tag == b"data":
            return data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    raise InputError(label, "RIFF MIDI (RMID) file without a 'data' chunk")


def _midi_reason(exc: Exception) -> str:
    """symusic's message for a bad file, reworded for a user."""
    msg = one_line(exc)
    for needle, reason in _SYMUSIC_REASONS:
        if needle in msg:
            return reason
    if m := re.fullmatch(r"Get (\w+)=(-?\d+)", msg):
        return f"corrupt MIDI: {m[1].replace('_', ' ')} {m[2]} is out of range"
    if "Unexpected EOF" in msg:
        return "truncated MIDI: the file ends inside an event"
    msg = msg.removeprefix("MiniMidi: ").removesuffix(": iostream error")
    return f"corrupt MIDI: {msg.replace('Invaild', 'Invalid')}"


def _from_symusic_many(parsed: list[tuple[symusic.Score, str]]) -> list[Score | InputError]:
    """Convert parsed symusic scores (each with its label), refusing times that overflowed.

    The notes of all tracks of all scores go through numpy together: their columns are
    concatenated, checked, put in canonical order (:func:`~musegen.score.sort_notes`' order,
    within each track) and written once into one note array that the tracks are slices of.
    """
    out: list[Score | InputError | None] = [None] * len(parsed)
    todo = []  # (index, score, tracks kept, their note columns, maps as lists)
    for k, (sm, label) in enumerate(parsed):
        try:
            todo.append((k, sm, *_tracks_and_maps(sm, label)))
        except InputError as e:
            out[k] = e
    cols = [c for item in todo for c in item[3]]
    notes = np.zeros(0, NOTE_DTYPE)
    if cols:
        sizes = [len(c["time"]) for c in cols]
        notes = _note_array(cols, sizes)
        lo, first_track = 0, 0
        spans = []  # each score's notes: (first, end)
        for item in todo:
            n = sum(sizes[first_track : first_track + len(item[3])])
            spans.append((lo, lo + n))
            lo, first_track = lo + n, first_track + len(item[3])
        for item, error in zip(todo, _note_errors(notes, spans), strict=True):
            if error:
                out[item[0]] = InputError(parsed[item[0]][1], error)
    lo = 0
    for k, sm, kept, track_cols, maps in todo:
        if out[k] is not None:  # refused: skip its notes
            lo += sum(len(c["time"]) for c in track_cols)
            continue
        tracks = []
        for st, c in zip(kept, track_cols, strict=True):
            n = len(c["time"])
            name, program = st.name, st.program
            tracks.append(
                Track(
                    notes[lo : lo + n],
                    program=int(program) if 0 <= program <= 127 else 0,
                    is_drum=bool(st.is_drum),
                    name=name,
                    voice=voice_from_name(name),
                )
            )
            lo += n
        out[k] = Score(
            tpq=int(sm.tpq),
            tracks=tracks,
            tempos=_tempos(maps[0]),
            time_signatures=_time_signatures(maps[1]),
            key_signatures=_key_signatures(maps[2]),
            markers=[Marker(m.time, m.text) for m in sm.markers if m.time >= 0],
        )
    return out  # type: ignore[return-value]


_Maps = tuple[list[tuple[int, ...]], list[tuple[int, ...]], list[tuple[int, ...]]]


def _tracks_and_maps(
    sm: symusic.Score, label: str
) -> tuple[list[symusic.Track], list[dict[str, np.ndarray]], _Maps]:
    """The tracks with notes and their note columns, and the maps as lists of plain ints;
    refuses what the header or the maps cannot mean."""
    if sm.tpq <= 0:
        raise InputError(label, f"MIDI header gives {sm.tpq} ticks per quarter")
    kept, cols = [], []
    for st in sm.tracks:
        c = st.notes.numpy()
        if len(c["time"]):
            kept.append(st)
            cols.append(c)
    maps = (
        _events(sm.tempos, ("time", "mspq")),
        _events(sm.time_signatures, ("time", "numerator", "denominator")),
        _events(sm.key_signatures, ("time", "key", "tonality")),
    )
    if min((e[0] for events in maps for e in events), default=0) < 0:
        raise InputError(label, _OVERFLOW)
    return kept, cols, maps


def _note_array(cols: list[dict[str, np.ndarray]], sizes: list[int]) -> np.ndarray:
    """The notes of tracks (symusic columns) in one array, in track order and canonical order
    within each track."""
    notes = np.empty(sum(sizes), NOTE_DTYPE)
    for ours, theirs in _NOTE_COLUMNS:
        if len(cols) == 1:
            notes[ours] = cols[0][theirs]
        else:
            np.concatenate([c[theirs] for c in cols], out=notes[ours])
    # Onsets rising strictly within each track (one voice, say) are canonical order already.
    start = notes["start"]
    rising = start[1:] > start[:-1]
    if len(cols) > 1:
        rising[np.cumsum(sizes[:-1]) - 1] = True  # a track boundary may go back in time
    if rising.all():
        return notes
    keys = [notes["velocity"], notes["duration"], notes["pitch"], start]
    if len(cols) > 1:
        keys.append(np.repeat(np.arange(len(cols)), sizes))
    return notes[np.lexsort(keys)]


def _note_errors(notes: np.ndarray, spans: list[tuple[int, int]]) -> list[str]:
    """Why each score's notes (``notes[first:end]`` for each span) are refused, or ""."""
    start, duration = notes["start"], notes["duration"]
    errors = [""] * len(spans)
    if min(int(start.min()), int(duration.min())) < 0:  # wrapped 32-bit times: whose?
        for i, (a, b) in enumerate(spans):
            if b > a and min(int(start[a:b].min()), int(duration[a:b].min())) < 0:
                errors[i] = _OVERFLOW
    firsts = [a for a, b in spans if b > a]
    ends = iter(np.maximum.reduceat(start + duration, firsts).tolist() if firsts else [])
    for i, (a, b) in enumerate(spans):
        end = next(ends) if b > a else 0
        if end > MAX_TICK and not errors[i]:  # as check_span says it
            errors[i] = f"music runs to tick {end}, past 2**31: corrupt file?"
    return errors


def _check_times(label: str, col: np.ndarray) -> None:
    if len(col) and int(col.min()) < 0:
        raise InputError(label, _OVERFLOW)


def _events(events: Any, fields: tuple[str, ...]) -> list[tuple[int, ...]]:
    """A symusic event list as tuples of plain ints (of ``fields``, time first)."""
    if len(events) <= 8:  # the usual few: reading the objects beats making arrays
        return list(map(attrgetter(*fields), events))
    cols = events.numpy()
    return list(zip(*(cols[f].tolist() for f in fields), strict=True))


def _tempos(events: list[tuple[int, ...]]) -> list[Tempo]:
    return [Tempo(t, round(60_000_000 / m, 2)) for t, m in events if m > 0]


def _time_signatures(events: list[tuple[int, ...]]) -> list[TimeSignature]:
    return [TimeSignature(t, n, d) for t, n, d in events if n > 0 and d > 0]


def _key_signatures(events: list[tuple[int, ...]]) -> list[KeySignature]:
    return [KeySignature(t, k, bool(m)) for t, k, m in events if -7 <= k <= 7 and m in (0, 1)]


# --------------------------------------------------------------------------- writing
def midi_bytes(score: Score, label: str = "<score>") -> bytes:
    """The score as standard MIDI file bytes (format 1, one MTrk per track).

    Raises :class:`InputError` (naming ``label``) for what MIDI cannot hold: pitches outside
    0..127, negative or beyond-32-bit times, non-positive tempos, meters with a denominator
    that is not a power of two, keys outside -7..7.
    """
    _check_writable(score, label)
    sm = symusic.Score(score.tpq)
    for track in score.tracks:
        sm.tracks.append(_to_symusic_track(track))
    for tempo in score.tempos:
        sm.tempos.append(symusic.Tempo(tempo.time, mspq=_mspq(tempo.qpm)))
    for ts in score.time_signatures:
        sm.time_signatures.append(symusic.TimeSignature(ts.time, ts.numerator, ts.denominator))
    for ks in score.key_signatures:
        sm.key_signatures.append(symusic.KeySignature(ks.time, ks.key, int(ks.minor)))
    for m in score.markers:
        sm.markers.append(symusic.TextMeta(m.time, m.text))
    try:
        return bytes(sm.dumps_midi())
    except Exception as e:  # pragma: no cover - symusic rejects only what we checked above
        raise InputError(label, f"cannot encode MIDI: {one_line(e)}") from None


def write_midi(score: Score, path: str | Path) -> None:
    """Write ``score`` as a MIDI file, atomically (a reader never sees half a file)."""
    data = midi_bytes(score, str(path))
    try:
        atomic_write_bytes(path, data)
    except OSError as e:
        raise InputError(path, f"cannot write: {e.strerror or one_line(e)}") from None


def _to_symusic_track(track: Track) -> symusic.Track:
    notes = resolve_overlaps(track.notes, unisons=True)
    st = symusic.Track(name=name_for_track(track), program=track.program, is_drum=track.is_drum)
    st.notes = symusic.Note.from_numpy(
        notes["start"].astype(np.int32),
        notes["duration"].astype(np.int32),
        notes["pitch"].astype(np.int8),
        np.clip(notes["velocity"], 1, 127).astype(np.int8),
    )
    return st


def _mspq(qpm: float) -> int:
    return round(60_000_000 / qpm)


def _check_writable(score: Score, label: str) -> None:
    """Raise :class:`InputError` for anything in ``score`` that standard MIDI cannot store."""
    if score.tpq > 0x7FFF:
        raise InputError(label, f"MIDI holds at most 32767 ticks per quarter, not {score.tpq}")
    for t in score.tracks:
        if not len(t):
            continue
        p, s = t.notes["pitch"], t.notes["start"]
        if p.min() < 0 or p.max() > 127:
            raise InputError(label, "pitches must be 0..127 to write MIDI")
        if s.min() < 0 or t.notes["duration"].min() < 0:
            raise InputError(label, "notes with negative start or duration cannot be written")
    times = [
        x.time
        for x in (*score.tempos, *score.time_signatures, *score.key_signatures, *score.markers)
    ]
    if score.end > MAX_TICK or (times and (min(times) < 0 or max(times) > MAX_TICK)):
        raise InputError(label, f"times must lie in 0..{MAX_TICK} ticks to write MIDI")
    for tempo in score.tempos:
        qpm = tempo.qpm
        if not (math.isfinite(qpm) and qpm > 0 and 1 <= _mspq(qpm) <= _MAX_MSPQ):
            raise InputError(label, f"tempo {tempo.qpm} quarters per minute cannot be written")
    for ts in score.time_signatures:
        d = ts.denominator
        if not (1 <= ts.numerator <= 255 and d > 0 and d & (d - 1) == 0 and d <= 128):
            raise InputError(label, f"time signature {ts} cannot be written to MIDI")
    for ks in score.key_signatures:
        if not -7 <= ks.key <= 7:
            raise InputError(label, f"key signature with {ks.key} sharps cannot be written")
