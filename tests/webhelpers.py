"""What the studio's tests share: a server in a thread, the notes of a take's MIDI, and the
region check."""

from __future__ import annotations

import io
import socket
import tempfile
import threading
import time
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


class Running:
    """A uvicorn server in a thread of this process, on ``url``."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Running:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the studio server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()
