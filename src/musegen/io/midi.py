"""MIDI files <-> :class:`~musegen.score.Score`, through symusic (the only module that knows it).

Notes move as whole numpy columns in both directions (``track.notes.numpy()`` and
``symusic.Note.from_numpy``), so a chorale converts in well under a millisecond.

What a write -> read round trip keeps: ``tpq``, every track with notes (order, program, drum
flag, name), every note's onset, duration, pitch and velocity, tempos (to 0.01 quarter per
minute), time and key signatures. What it does not keep, because standard MIDI cannot say it:

* tracks without notes (symusic drops them when reading);
* same-pitch overlaps inside a track: :func:`write_midi` cuts the earlier note where the later
  one starts (see :func:`~musegen.io._common.resolve_overlaps`);
* velocity 0 (a note-on with velocity 0 means note-off): written as velocity 1;
* voice labels other than through the track name (``Soprano``/``Alto``/``Tenor``/``Bass``).

Reading: a file with no tracks, or with tracks but no notes, loads as a Score without tracks
(the caller decides whether that is an error). Notes that never get a note-off are dropped.
Map entries a file cannot mean (tempo 0, meter 0/0, key with 12 sharps) are dropped.
symusic keeps times in 32-bit ints and wraps silently past 2**31 ticks; any negative time
after reading is refused as corrupt, which catches wraps into the negative range (a file
built to wrap exactly by 2**32 cannot be told apart from a short one without a second parse).
Music ending past tick 2**31 - 1 is refused too, so every loaded score can be written back.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import symusic

from musegen.errors import InputError
from musegen.io._common import (
    DEFAULT_MAX_BYTES,
    MAX_TICK,
    check_span,
    name_for_track,
    one_line,
    read_input_bytes,
    resolve_overlaps,
    too_big,
    voice_from_name,
)
from musegen.score import KeySignature, Score, Tempo, TimeSignature, Track, make_notes
from musegen.utils import atomic_write_bytes

MIDI_EXTENSIONS = (".mid", ".midi", ".kar")
_MAX_MSPQ = 0xFFFFFF  # a MIDI tempo event has 3 bytes of microseconds per quarter

# symusic's parser messages -> what a user needs to hear.
_SYMUSIC_REASONS = (
    ("File header is not MThd", "not a MIDI file (no MThd header)"),
    ("File size is less than", "too short to be a MIDI file"),
    ("Invalid chunk length", "truncated or corrupt MIDI (a chunk runs past the end of the file)"),
    ("Division type is not ticks per quarter", "SMPTE time division is not supported"),
)


# --------------------------------------------------------------------------- reading
def read_midi(source: str | Path | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Score:
    """Read a standard MIDI file (a path, or the file's bytes) into a :class:`Score`.

    Raises :class:`InputError` with a one-line reason for anything that is not a usable MIDI
    file: missing, empty, over ``max_bytes``, truncated, garbage, SMPTE timing, 32-bit overflow.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        label, data = "<bytes>", bytes(source)
        if not data:
            raise InputError(label, "file is empty")
        if len(data) > max_bytes:
            raise InputError(label, too_big(len(data), max_bytes))
    else:
        label, data = str(source), read_input_bytes(source, max_bytes)
    try:
        sm = symusic.Score.from_midi(data)
    except Exception as e:  # symusic raises RuntimeError/ValueError/...: all mean "bad file"
        raise InputError(label, _midi_reason(e)) from None
    return _from_symusic(sm, label)


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


def _from_symusic(sm: symusic.Score, label: str) -> Score:
    """Convert a parsed symusic score, refusing times that overflowed."""
    if sm.tpq <= 0:
        raise InputError(label, f"MIDI header gives {sm.tpq} ticks per quarter")
    tracks = []
    for st in sm.tracks:
        cols = st.notes.numpy()
        if len(cols["time"]) == 0:
            continue
        _check_times(label, cols["time"])
        _check_times(label, cols["duration"])
        notes = make_notes(cols["time"], cols["duration"], cols["pitch"], cols["velocity"])
        name = st.name
        tracks.append(
            Track(
                notes,
                program=int(st.program) if 0 <= st.program <= 127 else 0,
                is_drum=bool(st.is_drum),
                name=name,
                voice=voice_from_name(name),
            )
        )
    tempo_cols = sm.tempos.numpy()
    sig_cols = sm.time_signatures.numpy()
    key_cols = sm.key_signatures.numpy()
    for cols in (tempo_cols, sig_cols, key_cols):
        _check_times(label, cols["time"])
    score = Score(
        tpq=int(sm.tpq),
        tracks=tracks,
        tempos=_tempos(tempo_cols),
        time_signatures=_time_signatures(sig_cols),
        key_signatures=_key_signatures(key_cols),
    )
    return check_span(label, score)


def _check_times(label: str, col: np.ndarray) -> None:
    if len(col) and int(col.min()) < 0:
        raise InputError(label, "times overflow 32 bits (enormous delta times): corrupt MIDI")


def _tempos(cols: dict[str, np.ndarray]) -> list[Tempo]:
    return [
        Tempo(int(t), round(60_000_000 / int(m), 2))
        for t, m in zip(cols["time"], cols["mspq"], strict=True)
        if m > 0
    ]


def _time_signatures(cols: dict[str, np.ndarray]) -> list[TimeSignature]:
    return [
        TimeSignature(int(t), int(n), int(d))
        for t, n, d in zip(cols["time"], cols["numerator"], cols["denominator"], strict=True)
        if n > 0 and d > 0
    ]


def _key_signatures(cols: dict[str, np.ndarray]) -> list[KeySignature]:
    return [
        KeySignature(int(t), int(k), bool(m))
        for t, k, m in zip(cols["time"], cols["key"], cols["tonality"], strict=True)
        if -7 <= k <= 7 and m in (0, 1)
    ]


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
    notes = resolve_overlaps(track.notes)
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
    times = [x.time for x in (*score.tempos, *score.time_signatures, *score.key_signatures)]
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
