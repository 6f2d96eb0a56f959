"""A corpus of small, all-different MIDI files made in code (sharded-data tests, scale bench)."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path


def small_midi(index: int, notes: int = 8) -> bytes:
    """A valid type-0 MIDI file of ``notes`` quarter notes whose pitches come from ``index``
    (different indexes give different files), 480 ticks per quarter."""
    digest = hashlib.sha256(index.to_bytes(8, "little")).digest()
    events = bytearray()
    for k in range(notes):
        pitch = 40 + digest[k % len(digest)] % 48
        length = 240 * (1 + digest[(k + 7) % len(digest)] % 3)  # an 8th, a quarter or a dotted
        events += bytes([0x00, 0x90, pitch, 64])
        events += bytes([0x80 | (length >> 7), length & 0x7F, 0x80, pitch, 0])
    events += bytes([0x00, 0xFF, 0x2F, 0])
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480)
    return header + b"MTrk" + struct.pack(">I", len(events)) + bytes(events)


def write_corpus(folder: Path, n: int, per_folder: int = 1000) -> Path:
    """``n`` files as ``folder/NNN/NNNNNN.mid``, ``per_folder`` to a subfolder; returns it."""
    for i in range(n):
        sub = folder / f"{i // per_folder:03d}"
        if i % per_folder == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i:06d}.mid").write_bytes(small_midi(i))
    return folder
