"""The one score type that every part of musegen meets at.

A :class:`Score` holds tracks of notes in integer ticks at a stated resolution (``tpq``,
ticks per quarter note), plus tempo, time-signature and key-signature maps. Notes of a track
live in one numpy structured array (:data:`NOTE_DTYPE`), so that tokenizers and metrics work
on whole columns (``track.notes["pitch"]``) instead of Python objects; :class:`Note` is the
friendly per-note view for code that wants one.

Nothing here knows symusic, music21 or torch: converters live in :mod:`musegen.io`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

NOTE_DTYPE = np.dtype(
    [("start", np.int64), ("duration", np.int64), ("pitch", np.int16), ("velocity", np.int16)]
)
VOICES = ("S", "A", "T", "B")
DEFAULT_QPM = 120.0
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MAJOR_KEYS = ("Cb", "Gb", "Db", "Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#")
_MINOR_KEYS = ("Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#", "G#", "D#", "A#")


def pitch_name(pitch: int) -> str:
    """MIDI pitch number to a name with octave, e.g. 60 -> ``C4``."""
    return f"{PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}"


@dataclass(frozen=True, slots=True)
class Note:
    pitch: int
    start: int
    duration: int
    velocity: int = 64

    @property
    def end(self) -> int:
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class Tempo:
    time: int
    qpm: float  # quarter notes per minute


@dataclass(frozen=True, slots=True)
class TimeSignature:
    time: int
    numerator: int = 4
    denominator: int = 4

    def bar_ticks(self, tpq: int) -> int:
        return tpq * 4 * self.numerator // self.denominator

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@dataclass(frozen=True, slots=True)
class Marker:
    """A named point in time: ``"fermata"`` marks where a phrase of a chorale comes to rest
    (the notes starting at ``time`` carry a fermata in the score)."""

    time: int
    text: str


FERMATA = "fermata"


@dataclass(frozen=True, slots=True)
class KeySignature:
    time: int
    key: int = 0  # sharps (> 0) or flats (< 0), -7..7
    minor: bool = False

    @property
    def tonic(self) -> int:
        """Pitch class of the tonic (0 = C)."""
        return (7 * self.key + (9 if self.minor else 0)) % 12

    def __str__(self) -> str:
        names = _MINOR_KEYS if self.minor else _MAJOR_KEYS
        return f"{names[self.key + 7]} {'minor' if self.minor else 'major'}"


def notes_array(notes: Iterable[Note] | np.ndarray | None = None) -> np.ndarray:
    """A sorted structured note array from :class:`Note` objects, tuples or an array."""
    if notes is None:
        return np.zeros(0, NOTE_DTYPE)
    if isinstance(notes, np.ndarray):
        arr = notes.astype(NOTE_DTYPE, copy=True) if notes.dtype != NOTE_DTYPE else notes.copy()
    else:
        rows = [
            (n.start, n.duration, n.pitch, n.velocity) if isinstance(n, Note) else tuple(n)
            for n in notes
        ]
        arr = np.array(rows, dtype=NOTE_DTYPE) if rows else np.zeros(0, NOTE_DTYPE)
    return sort_notes(arr)


def make_notes(
    start: Sequence[int] | np.ndarray,
    duration: Sequence[int] | np.ndarray,
    pitch: Sequence[int] | np.ndarray,
    velocity: Sequence[int] | np.ndarray | int = 64,
) -> np.ndarray:
    """A sorted structured note array from columns."""
    n = len(start)
    arr = np.zeros(n, NOTE_DTYPE)
    arr["start"] = start
    arr["duration"] = duration
    arr["pitch"] = pitch
    arr["velocity"] = velocity
    return sort_notes(arr)


def sort_notes(arr: np.ndarray) -> np.ndarray:
    """Notes in canonical order: by start, then pitch, then duration, then velocity."""
    if len(arr) < 2:
        return arr
    order = np.lexsort((arr["velocity"], arr["duration"], arr["pitch"], arr["start"]))
    return arr[order]


@dataclass
class Track:
    """One instrument's notes. ``voice`` is an optional S/A/T/B label."""

    notes: np.ndarray = field(default_factory=lambda: np.zeros(0, NOTE_DTYPE))
    program: int = 0
    is_drum: bool = False
    name: str = ""
    voice: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.notes, np.ndarray) or self.notes.dtype != NOTE_DTYPE:
            self.notes = notes_array(self.notes)
        if not 0 <= self.program <= 127:
            raise ValueError(f"program must be 0..127, got {self.program}")
        if self.voice is not None and self.voice not in VOICES:
            raise ValueError(f"voice must be one of {VOICES}, got {self.voice!r}")

    @classmethod
    def from_notes(cls, notes: Iterable[Note], **kwargs: object) -> Track:
        return cls(notes_array(notes), **kwargs)  # type: ignore[arg-type]

    def note_list(self) -> list[Note]:
        return [
            Note(int(p), int(s), int(d), int(v))
            for s, d, p, v in zip(
                self.notes["start"],
                self.notes["duration"],
                self.notes["pitch"],
                self.notes["velocity"],
                strict=True,
            )
        ]

    def __len__(self) -> int:
        return len(self.notes)

    @property
    def end(self) -> int:
        if len(self.notes) == 0:
            return 0
        return int((self.notes["start"] + self.notes["duration"]).max())

    def copy(self, notes: np.ndarray | None = None) -> Track:
        return replace(self, notes=self.notes.copy() if notes is None else sort_notes(notes))


@dataclass
class Score:
    """Tracks of notes in ticks at ``tpq`` ticks per quarter, with tempo/meter/key maps.

    Maps are sorted by time; empty maps mean 120 quarters per minute, 4/4, C major.
    """

    tpq: int = 480
    tracks: list[Track] = field(default_factory=list)
    tempos: list[Tempo] = field(default_factory=list)
    time_signatures: list[TimeSignature] = field(default_factory=list)
    key_signatures: list[KeySignature] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.tpq <= 0:
            raise ValueError(f"tpq must be positive, got {self.tpq}")
        self.tempos = sorted(self.tempos, key=lambda t: t.time)
        self.time_signatures = sorted(self.time_signatures, key=lambda t: t.time)
        self.key_signatures = sorted(self.key_signatures, key=lambda t: t.time)
        self.markers = sorted(self.markers, key=lambda m: (m.time, m.text))

    # ----------------------------------------------------------------- basic facts
    @property
    def n_notes(self) -> int:
        return sum(len(t) for t in self.tracks)

    @property
    def end(self) -> int:
        """Tick at which the last note ends (0 for an empty score)."""
        return max((t.end for t in self.tracks), default=0)

    def is_empty(self) -> bool:
        return self.n_notes == 0

    def copy(self) -> Score:
        return replace(self, tracks=[t.copy() for t in self.tracks])

    def pitch_range(self, include_drums: bool = False) -> tuple[int, int] | None:
        cols = [
            t.notes["pitch"] for t in self.tracks if len(t) and (include_drums or not t.is_drum)
        ]
        if not cols:
            return None
        allp = np.concatenate(cols)
        return int(allp.min()), int(allp.max())

    def note_table(self) -> np.ndarray:
        """All notes of all tracks as one structured array with a ``track`` column."""
        dtype = np.dtype([*NOTE_DTYPE.descr, ("track", np.int16)])
        out = np.zeros(self.n_notes, dtype)
        i = 0
        for k, t in enumerate(self.tracks):
            n = len(t)
            for name in NOTE_DTYPE.names:
                out[name][i : i + n] = t.notes[name]
            out["track"][i : i + n] = k
            i += n
        return out

    # ----------------------------------------------------------------- time maps
    def _tempo_segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tick of each tempo segment, seconds per tick in it, and seconds at its start."""
        tempos = [t for t in self.tempos if t.qpm > 0]
        if not tempos or tempos[0].time > 0:
            first = tempos[0].qpm if tempos else DEFAULT_QPM
            tempos = [Tempo(0, first), *tempos]
        ticks = np.array([t.time for t in tempos], dtype=np.float64)
        spt = np.array([60.0 / (t.qpm * self.tpq) for t in tempos])
        secs = np.concatenate([[0.0], np.cumsum(np.diff(ticks) * spt[:-1])])
        return ticks, spt, secs

    def ticks_to_seconds(self, ticks: np.ndarray | int | float) -> np.ndarray | float:
        t = np.asarray(ticks, dtype=np.float64)
        seg_ticks, spt, secs = self._tempo_segments()
        i = np.clip(np.searchsorted(seg_ticks, t, side="right") - 1, 0, None)
        out = secs[i] + (t - seg_ticks[i]) * spt[i]
        return float(out) if out.ndim == 0 else out

    def seconds_to_ticks(self, seconds: np.ndarray | float) -> np.ndarray | int:
        s = np.asarray(seconds, dtype=np.float64)
        seg_ticks, spt, secs = self._tempo_segments()
        i = np.clip(np.searchsorted(secs, s, side="right") - 1, 0, None)
        out = np.rint(seg_ticks[i] + (s - secs[i]) / spt[i]).astype(np.int64)
        return int(out) if out.ndim == 0 else out

    def duration_seconds(self) -> float:
        return float(self.ticks_to_seconds(self.end))

    def ticks_to_beats(self, ticks: np.ndarray | int) -> np.ndarray | float:
        """Ticks to quarter-note beats."""
        out = np.asarray(ticks, dtype=np.float64) / self.tpq
        return float(out) if out.ndim == 0 else out

    def time_signature_at(self, tick: int) -> TimeSignature:
        current = TimeSignature(0)
        for ts in self.time_signatures:
            if ts.time <= tick:
                current = ts
        return current

    def key_signature_at(self, tick: int) -> KeySignature | None:
        current = None
        for ks in self.key_signatures:
            if ks.time <= tick:
                current = ks
        return current

    def tempo_at(self, tick: int) -> float:
        current = self.tempos[0].qpm if self.tempos else DEFAULT_QPM
        for t in self.tempos:
            if t.time <= tick:
                current = t.qpm
        return current

    def bar_starts(self, end: int | None = None) -> np.ndarray:
        """Start tick of every bar up to ``end`` (default: the score's end).

        A time-signature change starts a new bar even if the previous bar was incomplete.
        Always returns at least one bar (tick 0).
        """
        end = self.end if end is None else end
        sigs = [ts for ts in self.time_signatures if ts.time < max(end, 1)]
        if not sigs or sigs[0].time > 0:
            sigs = [TimeSignature(0), *sigs]
        parts = []
        for k, ts in enumerate(sigs):
            seg_end = sigs[k + 1].time if k + 1 < len(sigs) else max(end, ts.time + 1)
            step = max(ts.bar_ticks(self.tpq), 1)
            parts.append(np.arange(ts.time, seg_end, step, dtype=np.int64))
        out = np.unique(np.concatenate(parts))
        return out if len(out) else np.zeros(1, np.int64)

    @property
    def n_bars(self) -> int:
        return len(self.bar_starts()) if self.end > 0 else 0

    def ticks_to_bars(self, ticks: np.ndarray | int) -> np.ndarray | float:
        """Ticks to bar positions: bar index (0-based) plus the fraction of that bar elapsed."""
        t = np.asarray(ticks, dtype=np.int64)
        top = int(t.max()) + 1 if t.size else 1
        starts = self.bar_starts(max(self.end, top))
        i = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, None)
        lengths = np.array([self.time_signature_at(int(s)).bar_ticks(self.tpq) for s in starts])
        out = i + (t - starts[i]) / lengths[i]
        return float(out) if out.ndim == 0 else out

    # ----------------------------------------------------------------- transformations
    def _map_times(self, fn) -> Score:  # type: ignore[no-untyped-def]
        """Apply ``fn`` (tick array -> tick array) to every onset, offset and map time."""
        tracks = []
        for t in self.tracks:
            notes = t.notes.copy()
            start = fn(notes["start"])
            end = fn(notes["start"] + notes["duration"])
            notes["start"] = start
            notes["duration"] = end - start
            tracks.append(t.copy(notes))

        def one(x: int) -> int:
            return int(fn(np.array([x], dtype=np.int64))[0])

        return Score(
            tpq=self.tpq,
            tracks=tracks,
            tempos=_dedupe([replace(x, time=one(x.time)) for x in self.tempos]),
            time_signatures=_dedupe([replace(x, time=one(x.time)) for x in self.time_signatures]),
            key_signatures=_dedupe([replace(x, time=one(x.time)) for x in self.key_signatures]),
            markers=list({replace(x, time=one(x.time)) for x in self.markers}),
        )

    def resample(self, tpq: int) -> Score:
        """The same music at a new resolution (notes keep at least one tick)."""
        factor = tpq / self.tpq
        out = self._map_times(lambda x: np.rint(x * factor).astype(np.int64))
        out.tpq = tpq
        for t in out.tracks:
            np.maximum(t.notes["duration"], 1, out=t.notes["duration"])
        return out

    def quantize(self, step: int) -> Score:
        """Snap onsets and offsets to a grid of ``step`` ticks; every note lasts >= one step."""
        if step <= 0:
            raise ValueError(f"quantize step must be positive, got {step}")
        out = self._map_times(
            lambda x: (np.floor_divide(x + step // 2, step) * step).astype(np.int64)
        )
        for t in out.tracks:
            np.maximum(t.notes["duration"], step, out=t.notes["duration"])
        return out

    def transpose(self, semitones: int, drop_out_of_range: bool = False) -> Score:
        """Move every pitched note by ``semitones`` (drums stay); keys follow.

        Raises ``ValueError`` if a note would leave 0..127, unless ``drop_out_of_range``.
        """
        tracks = []
        for t in self.tracks:
            if t.is_drum or semitones == 0:
                tracks.append(t.copy())
                continue
            notes = t.notes.copy()
            p = notes["pitch"].astype(np.int32) + semitones
            ok = (p >= 0) & (p <= 127)
            if not ok.all() and not drop_out_of_range:
                raise ValueError(f"transposing by {semitones} puts notes outside MIDI range 0..127")
            notes["pitch"] = np.clip(p, 0, 127)
            tracks.append(t.copy(notes[ok]))
        keys = [replace(k, key=(k.key + 7 * semitones + 6) % 12 - 6) for k in self.key_signatures]
        return replace(self, tracks=tracks, key_signatures=keys)

    def slice_ticks(self, start: int, stop: int) -> Score:
        """Notes starting in ``[start, stop)``, shifted to begin at 0, cut at ``stop``."""
        tracks = []
        for t in self.tracks:
            n = t.notes
            keep = n[(n["start"] >= start) & (n["start"] < stop)].copy()
            keep["duration"] = np.minimum(keep["start"] + keep["duration"], stop) - keep["start"]
            keep["start"] -= start
            tracks.append(t.copy(keep))

        def window(items: list, default):  # type: ignore[no-untyped-def]
            before = [x for x in items if x.time <= start]
            inside = [replace(x, time=x.time - start) for x in items if start < x.time < stop]
            head = [replace(before[-1], time=0)] if before else ([default] if default else [])
            return head + inside

        return Score(
            tpq=self.tpq,
            tracks=tracks,
            tempos=window(self.tempos, None),
            time_signatures=window(self.time_signatures, None),
            key_signatures=window(self.key_signatures, None),
            markers=[
                replace(m, time=m.time - start) for m in self.markers if start <= m.time < stop
            ],
        )

    def opening(self, bars: int) -> Score:
        """The first ``bars`` whole bars, after a pickup if the score opens with one (its first
        note after the first bar line's tick but before the second's): a generated piece of
        ``bars`` bars has its pickup on top of them too."""
        starts = self.bar_starts()
        first = min((int(t.notes["start"].min()) for t in self.tracks if len(t)), default=0)
        pickup = len(starts) >= 2 and 0 < first < int(starts[1])
        bars += int(pickup)
        return self if self.n_bars <= bars else self.slice_bars(0, bars)

    def slice_bars(self, start_bar: int, stop_bar: int) -> Score:
        """Bars ``start_bar`` .. ``stop_bar - 1`` (0-based) as a new score starting at 0."""
        if start_bar < 0 or stop_bar <= start_bar:
            raise ValueError(f"bad bar range {start_bar}..{stop_bar}")
        starts = self.bar_starts()
        bar_len = self.time_signature_at(int(starts[-1])).bar_ticks(self.tpq)
        extra = np.arange(1, stop_bar - len(starts) + 2) * bar_len + starts[-1]
        starts = np.concatenate([starts, extra])
        return self.slice_ticks(int(starts[start_bar]), int(starts[stop_bar]))

    def merge_tracks(self, indices: Sequence[int] | None = None, name: str = "") -> Score:
        """Merge the given tracks (default: all pitched ones) into one, placed first."""
        idx = (
            [i for i, t in enumerate(self.tracks) if not t.is_drum]
            if indices is None
            else list(indices)
        )
        if not idx:
            return self.copy()
        chosen = [self.tracks[i] for i in idx]
        merged = Track(
            notes_array(np.concatenate([t.notes for t in chosen])),
            program=chosen[0].program,
            is_drum=chosen[0].is_drum,
            name=name or chosen[0].name,
        )
        rest = [t.copy() for i, t in enumerate(self.tracks) if i not in idx]
        return replace(self, tracks=[merged, *rest])

    def split_track(self, index: int, at_pitch: int = 60) -> Score:
        """Split a track in two at ``at_pitch`` (upper: >= at_pitch), e.g. piano hands."""
        t = self.tracks[index]
        upper = t.notes["pitch"] >= at_pitch
        hi = replace(t, notes=t.notes[upper].copy(), name=(t.name + " upper").strip())
        lo = replace(t, notes=t.notes[~upper].copy(), name=(t.name + " lower").strip())
        tracks = [x.copy() for x in self.tracks]
        tracks[index : index + 1] = [hi, lo]
        return replace(self, tracks=tracks)

    def voices(self) -> dict[str, Track]:
        """Tracks labelled with a voice (S/A/T/B), by label."""
        return {t.voice: t for t in self.tracks if t.voice}


def _dedupe(items: list) -> list:  # type: ignore[type-arg]
    """Keep the last event at each time (after a time mapping collapsed some)."""
    out: dict[int, object] = {}
    for x in sorted(items, key=lambda x: x.time):
        out[x.time] = x
    return list(out.values())
