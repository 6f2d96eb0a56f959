"""What the studio's tests share: the notes of a take's MIDI, and the region check."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path


def midi_notes(data: bytes) -> list[set[tuple[int, int, int]]]:
    """Per track, the (start, duration, pitch) of every note of a MIDI file's bytes."""
    from musegen.io import load

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "take.mid"
        path.write_bytes(data)
        score = load(path)
    return [{(int(s), int(d), int(p)) for s, d, p, _ in t.notes} for t in score.tracks]


def bar_ticks(data: bytes) -> list[int]:
    from musegen.io import load

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "take.mid"
        path.write_bytes(data)
        score = load(path)
    return [int(t) for t in score.bar_starts()] + [int(score.end)]


def sounding(notes: set[tuple[int, int, int]], step: int, end: int) -> list[set[int]]:
    """The pitches sounding at each ``step`` ticks from 0 to ``end``."""
    return [{p for s, d, p in notes if s <= t < s + d} for t in range(0, end, step)]


def changed_only_region(before: bytes, after: bytes, bars: tuple[int, int], voices: str) -> bool:
    """Whether ``after`` sounds as ``before`` does everywhere but in ``bars`` (1-based,
    inclusive) of the ``voices`` (S, A, T, B: tracks 0-3): the same pitches at every 16th
    note outside the region (a note held into the region from outside may be cut there) and
    every note of the other voices unchanged."""
    old, new = midi_notes(before), midi_notes(after)
    starts = bar_ticks(before)
    start, stop, end, step = starts[bars[0] - 1], starts[bars[1]], starts[-1], 120
    for index, (a, b) in enumerate(zip(old, new, strict=True)):
        if "SATB"[index] in voices:
            was, now = sounding(a, step, end), sounding(b, step, end)
            if any(was[i] != now[i] for i in range(len(was)) if not start <= i * step < stop):
                return False
        elif a != b:
            return False
    return True


def many_notes_midi(n: int) -> bytes:
    """A MIDI file of ``n`` short notes (over the studio's note cap in tests)."""
    from musegen.io import save
    from musegen.score import Score, Track, make_notes

    track = Track(make_notes(range(0, 120 * n, 120), [100] * n, [60 + i % 12 for i in range(n)]))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "many.mid"
        save(Score(tracks=[track]), path)
        return io.BytesIO(path.read_bytes()).getvalue()
