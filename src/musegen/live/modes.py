"""What musegen plays in a live session, one class per ``--mode``.

* ``harmonize``: each melody note gets alto, tenor and bass at once (channels 2-4), chosen by
  :class:`~musegen.live.harmony.CausalHarmonizer`; voices that keep their pitch are held, not
  struck again; when the melody stops they are let go one 16th later (at most 150 ms), unless
  a new note comes first.
* ``accompany``: a chord pattern (channel 2) and a bass line (channel 3), and with ``drums`` a
  drum pattern (channel 10), on the beat grid, planned ``lookahead`` seconds before each beat.
  The chord changes at most every half bar: the key's chord that best covers what the player
  played over the last two beats (what sounds at the moment of planning counts double).
  The pattern starts on the first beat after the player's first note and stops after two
  bars of silence.
* ``answer`` and ``continue``: a token model (:mod:`musegen.live.model`).

Times are seconds on the session's clock; every note goes through the session's scheduler.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from musegen.compose import csp
from musegen.errors import MusegenError
from musegen.live.harmony import CausalHarmonizer, detect_chord

if TYPE_CHECKING:
    from musegen.live.session import LiveSession

MODES = ("harmonize", "accompany", "answer", "continue")
HARMONY = "harmony"
VOICE_CHANNELS = {"A": 1, "T": 2, "B": 3}
CHORD_CH, BASS_CH, DRUM_CH = 1, 2, 9
KICK, SNARE, HAT = 36, 38, 42


class Mode:
    """What every mode answers to (the session calls these with times in seconds)."""

    name = ""

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self.grid = session.grid
        self.scheduler = session.scheduler
        self.velocity = session.config.velocity

    def on_note_on(self, pitch: int, velocity: int, t: float) -> None:
        pass

    def on_note_off(self, pitch: int, t: float) -> None:
        pass

    def update(self, t: float) -> None:
        pass

    def close(self) -> None:
        pass

    def channels(self) -> list[int]:
        return []

    def track_names(self) -> dict[tuple[str, int], str]:
        return {}

    def stats(self) -> dict[str, Any]:
        return {}


class HarmonizeMode(Mode):
    """Alto, tenor and bass under each melody note (see the module docstring)."""

    name = "harmonize"

    def __init__(self, session: LiveSession) -> None:
        super().__init__(session)
        self.harmonizer = CausalHarmonizer()
        self.harmonizer.warm(session.keys.key)
        self.voices: dict[str, tuple[int, int] | None] = dict.fromkeys(
            VOICE_CHANNELS
        )  # (pitch, id)
        self.release_at: float | None = None
        self.chords: list[str] = []

    def on_note_on(self, pitch: int, velocity: int, t: float) -> None:
        self.release_at = None
        beat = round(self.grid.step_at(t)) // 4
        voicing = self.harmonizer.note(pitch, beat, self.session.keys.key)
        if not self.chords or self.chords[-1] != voicing.chord:
            self.chords.append(voicing.chord)
        for name, new in zip(VOICE_CHANNELS, voicing.lower, strict=True):
            ch = VOICE_CHANNELS[name]
            old = self.voices[name]
            if old is not None and old[0] == new:
                continue
            if old is not None:
                self.scheduler.end_note(old[1], t, old[0], ch, HARMONY)
            nid = self.scheduler.start_note(t, new, velocity or self.velocity, ch, HARMONY)
            self.voices[name] = (new, nid)

    def on_note_off(self, pitch: int, t: float) -> None:
        if not self.session.sounding:
            self.release_at = t + min(self.grid.step_seconds, 0.15)

    def update(self, t: float) -> None:
        if self.release_at is not None and t >= self.release_at:
            self._release(self.release_at)
            self.release_at = None

    def _release(self, t: float) -> None:
        for name, ch in VOICE_CHANNELS.items():
            old = self.voices[name]
            if old is not None:
                self.scheduler.end_note(old[1], t, old[0], ch, HARMONY)
                self.voices[name] = None

    def close(self) -> None:
        self._release(self.session.last_input)

    def channels(self) -> list[int]:
        return list(VOICE_CHANNELS.values())

    def track_names(self) -> dict[tuple[str, int], str]:
        return {
            (HARMONY, ch): name
            for name, ch in zip(("Alto", "Tenor", "Bass"), VOICE_CHANNELS.values(), strict=True)
        }

    def stats(self) -> dict[str, Any]:
        return {"chord_changes": len(self.chords)}


def close_triad(
    pcs: tuple[int, ...], previous: tuple[int, ...] | None, low: int = 52, high: int = 64
) -> tuple[int, ...]:
    """The chord's first three tones in close position, its lowest note in ``low..high``,
    nearest the ``previous`` voicing (else nearest middle C)."""
    best: tuple[int, ...] | None = None
    best_cost = math.inf
    for bottom in range(low, high + 1):
        if bottom % 12 not in pcs[:3]:
            continue
        tones = [bottom]
        for _ in range(2):
            nxt = tones[-1] + 1
            while nxt % 12 not in pcs[:3] or nxt % 12 in {x % 12 for x in tones}:
                nxt += 1
            tones.append(nxt)
        ref = previous or (57, 60, 64)
        cost = sum(abs(a - b) for a, b in zip(tones, sorted(ref), strict=True))
        if cost < best_cost:
            best, best_cost = tuple(tones), cost
    assert best is not None
    return best


def bass_note(pc: int, low: int = 40, high: int = 52) -> int:
    """The pitch of class ``pc`` in ``low..high`` (the lowest)."""
    return low + (pc - low) % 12 if low + (pc - low) % 12 <= high else low


class AccompanyMode(Mode):
    """Chords and bass (and drums) on the grid (see the module docstring)."""

    name = "accompany"
    PART = "accompaniment"
    WINDOW_BEATS = 2.0

    def __init__(self, session: LiveSession) -> None:
        super().__init__(session)
        self.next_beat: int | None = None
        self.chord: csp.ChordDef | None = None
        self.voicing: tuple[int, ...] | None = None
        self.chords: list[str] = []
        self.drums = session.config.drums

    def on_note_on(self, pitch: int, velocity: int, t: float) -> None:
        if self.next_beat is None:  # start on the first beat after the first note
            self.next_beat = math.floor(self.grid.beat_at(t)) + 1

    def _weights(self, t: float) -> np.ndarray:
        """Pitch-class weights of the last two beats' notes (sounding ones count double)."""
        w = np.zeros(12)
        since = t - self.WINDOW_BEATS * self.grid.beat_seconds
        for note in reversed(self.session.played):
            end = t if note.end is None else note.end
            if end < since:
                if note.start < since - 8 * self.grid.beat_seconds:
                    break
                continue
            w[note.pitch % 12] += max(min(end, t) - max(note.start, since), 0.01)
            if note.end is None:
                w[note.pitch % 12] += self.grid.beat_seconds
        return w

    def update(self, t: float) -> None:
        if self.next_beat is None:
            return
        lookahead = self.session.config.lookahead
        while self.grid.time_of_beat(self.next_beat) - t <= lookahead:
            beat = self.next_beat
            self.next_beat += 1
            idle = t - self.session.last_input
            if (
                not self.session.sounding
                and idle > 2 * self.grid.beats_per_bar * self.grid.beat_seconds
            ):
                self.next_beat = None  # two bars of silence: stop until the player comes back
                return
            self._plan(beat, t)

    def _plan(self, beat: int, t: float) -> None:
        g = self.grid
        in_bar = beat % g.beats_per_bar
        key = self.session.keys.key
        if self.chord is None or in_bar % 2 == 0:
            chord = detect_chord(self._weights(t), key, self.chord)
            if chord != self.chord or not self.chords:
                self.chords.append(chord.label)
            self.chord = chord
        pcs = self.chord.pcs(key[0])
        start = g.time_of_beat(beat)
        b = g.beat_seconds
        v = self.velocity
        self.voicing = close_triad(pcs, self.voicing)
        for p in self.voicing:
            self.scheduler.add_note(start, start + 0.45 * b, p, v - 10, CHORD_CH, self.PART)
        bass_pc = pcs[0] if in_bar % 2 == 0 else pcs[2]
        self.scheduler.add_note(start, start + 0.9 * b, bass_note(bass_pc), v, BASS_CH, self.PART)
        if self.drums:
            drum = KICK if in_bar % 2 == 0 else SNARE
            self.scheduler.add_note(start, start + 0.1 * b, drum, v, DRUM_CH, self.PART)
            for half in (0.0, 0.5):
                self.scheduler.add_note(
                    start + half * b, start + (half + 0.1) * b, HAT, v - 20, DRUM_CH, self.PART
                )

    def channels(self) -> list[int]:
        return [CHORD_CH, BASS_CH] + ([DRUM_CH] if self.drums else [])

    def track_names(self) -> dict[tuple[str, int], str]:
        return {
            (self.PART, CHORD_CH): "Chords",
            (self.PART, BASS_CH): "Bass",
            (self.PART, DRUM_CH): "Drums",
        }

    def stats(self) -> dict[str, Any]:
        return {"chord_changes": len(self.chords)}


def make_mode(name: str, session: LiveSession) -> Mode:
    """The mode called ``name`` for ``session``."""
    if name == "harmonize":
        return HarmonizeMode(session)
    if name == "accompany":
        return AccompanyMode(session)
    if name in ("answer", "continue"):
        from musegen.live.model import ModelMode

        return ModelMode(session, endless=name == "continue")
    raise MusegenError(f"unknown live mode {name!r}; choose one of: {', '.join(MODES)}")
