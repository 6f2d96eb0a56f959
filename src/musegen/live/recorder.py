"""The session's recording: what the player played and what musegen answered, as one MIDI file.

Every note event in and out is kept with its time; :meth:`Recorder.score` pairs note-ons with
note-offs (a note still sounding at the end ends there) and makes one track per part and
channel ("player", then musegen's voices). Times are kept in seconds exactly: ticks at the
session's starting tempo, from the bar line at or before the first note. :meth:`Recorder.write`
saves it atomically (:func:`musegen.io.save`), so a stopped session (Ctrl-C, a closed port)
leaves either the whole file or none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musegen.live.clock import BeatGrid
from musegen.live.ports import MidiEvent
from musegen.score import Score, Tempo, TimeSignature, Track, make_notes

TPQ = 480
PLAYER = "player"


@dataclass
class Recorder:
    """Note events with times (seconds), per part."""

    grid: BeatGrid
    names: dict[tuple[str, int], str] = field(default_factory=dict)  # (part, channel) -> name
    events: list[tuple[float, str, MidiEvent]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bpm = self.grid.bpm
        self.origin = self.grid.origin

    def add(self, t: float, part: str, event: MidiEvent) -> None:
        if event.kind in ("note_on", "note_off"):
            self.events.append((t, part, event.normal()))

    def score(self, end: float | None = None) -> Score:
        """The recording as a score (see the module docstring)."""
        if not self.events:
            return Score(tpq=TPQ, tempos=[Tempo(0, self.bpm)], time_signatures=[TimeSignature(0)])
        times = [t for t, _, _ in self.events]
        end = max(times) if end is None else max(end, max(times))
        bar = self.grid.beats_per_bar * 60.0 / self.bpm
        start = self.origin + np.floor((min(times) - self.origin) / bar) * bar
        notes: dict[tuple[str, int], list[tuple[float, float, int, int]]] = {}
        open_: dict[tuple[str, int, int], list[tuple[float, int]]] = {}
        for t, part, ev in sorted(self.events, key=lambda x: x[0]):
            key = (part, ev.channel, ev.note)
            if ev.kind == "note_on":
                open_.setdefault(key, []).append((t, ev.velocity))
            elif open_.get(key):
                t0, vel = open_[key].pop(0)
                notes.setdefault((part, ev.channel), []).append((t0, t, ev.note, vel))
        for (part, ch, pitch), started in open_.items():
            for t0, vel in started:
                notes.setdefault((part, ch), []).append((t0, end, pitch, vel))
        ticks_per_second = TPQ * self.bpm / 60.0
        tracks = []
        for part, ch in sorted(notes, key=lambda k: (k[0] != PLAYER, k[0], k[1])):
            rows = np.array(notes[(part, ch)], dtype=np.float64)
            on = np.round((rows[:, 0] - start) * ticks_per_second).astype(np.int64)
            off = np.round((rows[:, 1] - start) * ticks_per_second).astype(np.int64)
            name = self.names.get((part, ch), part if ch == 0 else f"{part} {ch}")
            tracks.append(
                Track(
                    make_notes(
                        on, np.maximum(off - on, 1), rows[:, 2].astype(int), rows[:, 3].astype(int)
                    ),
                    name=name,
                    is_drum=ch == 9,
                )
            )
        return Score(
            tpq=TPQ,
            tracks=tracks,
            tempos=[Tempo(0, self.bpm)],
            time_signatures=[TimeSignature(0, self.grid.beats_per_bar, 4)],
        )

    def write(self, path: str | Path, end: float | None = None) -> Path:
        """Save the recording (atomically) and return its path."""
        from musegen.io import save

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save(self.score(end), path)
        return path
