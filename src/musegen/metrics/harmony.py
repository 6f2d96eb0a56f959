"""Harmony analysis: key estimation, chord labels per beat, Roman numerals, cadences.

* :func:`estimate_key`: Krumhansl-Schmuckler key finding on duration-weighted pitch classes.
* :func:`chords_per_beat`: a chord per beat by matching the beat's pitch classes against
  major / minor / diminished / augmented triads and dominant / minor / major / half-diminished /
  diminished sevenths (:func:`label_chords` says how templates are scored).
* :func:`roman_numeral`: a chord's numeral relative to a key, with inversion figures.
* :func:`detect_cadences`: authentic, plagal, deceptive and half cadences at phrase ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musegen.metrics._time import TimeGrid, time_grid
from musegen.score import NOTE_DTYPE, PITCH_NAMES, Score

# Krumhansl & Kessler (1982) key profiles, C major / C minor.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class, 0 = C
    minor: bool
    confidence: float  # correlation with the profile, -1..1

    def __str__(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {'minor' if self.minor else 'major'}"


def pitch_class_weights(score: Score) -> np.ndarray:
    """Total duration per pitch class over pitched tracks."""
    w = np.zeros(12)
    for t in score.tracks:
        if not t.is_drum and len(t):
            np.add.at(w, t.notes["pitch"] % 12, t.notes["duration"])
    return w


def estimate_key(score: Score) -> Key | None:
    """Krumhansl-Schmuckler key finding: the best-correlating of the 24 rotated profiles."""
    w = pitch_class_weights(score)
    if not w.any():
        return None
    best: Key | None = None
    for minor, profile in ((False, MAJOR_PROFILE), (True, MINOR_PROFILE)):
        for tonic in range(12):
            r = float(np.corrcoef(w, np.roll(profile, tonic))[0, 1]) if w.std() else 0.0
            if best is None or r > best.confidence:
                best = Key(tonic, minor, r)
    return best


def parse_key(text: str) -> tuple[int, bool]:
    """'G', 'g minor', 'Bb major', 'F#m' -> (tonic pitch class, minor)."""
    from musegen.errors import MusegenError

    t = text.strip().replace("♭", "b").replace("♯", "#")
    parts = t.split()
    name = parts[0] if parts else ""
    mode = parts[1].lower() if len(parts) > 1 else ""
    minor = mode in ("minor", "min", "m") or (not mode and name.endswith("m") and len(name) > 1)
    if not mode and name.endswith("m") and len(name) > 1:
        name = name[:-1]
    if not mode and name[:1].islower():
        minor = True
    letters = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
    if (
        not name
        or name[0].lower() not in letters
        or mode not in ("", "major", "maj", "minor", "min", "m")
    ):
        raise MusegenError(
            f"cannot read key {text!r}; write e.g. 'G major', 'e minor', 'Bb', 'F#m'"
        )
    pc = letters[name[0].lower()]
    for accidental in name[1:]:
        if accidental == "#":
            pc += 1
        elif accidental == "b":
            pc -= 1
        else:
            raise MusegenError(
                f"cannot read key {text!r}; write e.g. 'G major', 'e minor', 'Bb', 'F#m'"
            )
    return pc % 12, minor


# ----------------------------------------------------------------------------- chords
# Chord templates: quality -> intervals above the root. Order matters for ties: triads first.
QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "dom7": (0, 4, 7, 10),
    "min7": (0, 3, 7, 10),
    "maj7": (0, 4, 7, 11),
    "hdim7": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9),
}
_SUFFIX = {
    "maj": "", "min": "m", "dim": "dim", "aug": "aug", "dom7": "7",
    "min7": "m7", "maj7": "maj7", "hdim7": "ø7", "dim7": "°7",
}  # fmt: skip
_NUMERAL_SUFFIX = {
    "maj": "", "min": "", "dim": "°", "aug": "+", "dom7": "7",
    "min7": "7", "maj7": "maj7", "hdim7": "ø7", "dim7": "°7",
}  # fmt: skip
_LOWER = {"min", "dim", "min7", "hdim7", "dim7"}
_SEVENTHS = {"dom7", "min7", "maj7", "hdim7", "dim7"}
DOMINANT_QUALITIES = frozenset({"maj", "dom7"})
LEADING_TONE_QUALITIES = frozenset({"dim", "hdim7", "dim7"})
MISSING_PENALTY = 0.25  # per template note that does not sound in the beat
SEVENTH_COST = 0.3  # for a four-note template, so a passing seventh does not make a 7th chord
BASS_BONUS = 0.1  # for a template whose root is the lowest sounding pitch class


@dataclass(frozen=True)
class Chord:
    """A chord: root and bass pitch classes and a quality (a key of :data:`QUALITIES`)."""

    root: int
    quality: str
    bass: int

    @property
    def pitch_classes(self) -> frozenset[int]:
        return frozenset((self.root + i) % 12 for i in QUALITIES[self.quality])

    @property
    def name(self) -> str:
        """E.g. ``C``, ``Am``, ``G7``, ``Bdim``, ``F#ø7``; ``/E`` for a bass other than the root."""
        slash = f"/{PITCH_NAMES[self.bass]}" if self.bass != self.root else ""
        return f"{PITCH_NAMES[self.root]}{_SUFFIX[self.quality]}{slash}"

    def __str__(self) -> str:
        return self.name


def _templates() -> tuple[np.ndarray, list[tuple[int, str]]]:
    """[n, 12] 0/1 rows of every (quality, root) template, and what each row is."""
    rows, labels = [], []
    for quality, intervals in QUALITIES.items():
        for root in range(12):
            row = np.zeros(12)
            row[[(root + i) % 12 for i in intervals]] = 1.0
            rows.append(row)
            labels.append((root, quality))
    return np.array(rows), labels


TEMPLATES, TEMPLATE_LABELS = _templates()


def beat_pitch_classes(score: Score) -> tuple[np.ndarray, np.ndarray, TimeGrid]:
    """Per beat: how long each pitch class sounds in it ``[beats, 12]`` (ticks) and the lowest
    sounding pitch (-1 where nothing sounds), with the beat grid."""
    from musegen.metrics.stats import view

    v = view(score)
    grid = v.grid if not v.empty else time_grid(score, max(score.end, 1))
    weights = np.zeros((grid.n_beats, 12))
    low = np.full(grid.n_beats, 999, np.int64)
    if v.empty:
        return weights, np.full(grid.n_beats, -1, np.int64), grid
    first = grid.beat_index(v.start)
    last = grid.beat_index(np.maximum(v.end - 1, v.start))
    span = last - first + 1
    note = np.repeat(np.arange(len(v)), span)
    beat = np.repeat(first, span) + np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span)
    b0 = grid.beat_starts[beat]
    b1 = b0 + grid.beat_lengths[beat]
    overlap = np.minimum(v.end[note], b1) - np.maximum(v.start[note], b0)
    overlap = np.maximum(overlap, 0)
    np.add.at(weights, (beat, v.pitch_class[note]), overlap)
    np.minimum.at(low, beat, v.pitch[note])
    return weights, np.where(low == 999, -1, low), grid


def label_chords(weights: np.ndarray, bass: np.ndarray) -> list[Chord | None]:
    """The best template chord for each row of pitch-class weights (None for silent rows).

    Score of a template: weight of its pitch classes - weight of the others (weights
    normalised to sum 1) - 0.25 per template note that is silent - 0.3 for a seventh chord
    (so that a passing seventh does not make one) + 0.1 if its root is the bass. Ties go to
    the earlier template (triads before sevenths).
    """
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum(axis=1, keepdims=True)
    norm = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
    match = norm @ TEMPLATES.T
    present = (w > 0).astype(np.float64) @ TEMPLATES.T
    size = TEMPLATES.sum(axis=1)
    missing = size[None, :] - present
    roots = np.array([r for r, _ in TEMPLATE_LABELS])
    bass_pc = np.where(bass >= 0, bass % 12, -1)
    score = (
        2 * match
        - 1
        - MISSING_PENALTY * missing
        - SEVENTH_COST * (size[None, :] > 3)
        + BASS_BONUS * (roots[None, :] == bass_pc[:, None])
    )
    best = score.argmax(axis=1)
    out: list[Chord | None] = []
    for i, k in enumerate(best):
        if total[i, 0] <= 0:
            out.append(None)
            continue
        root, quality = TEMPLATE_LABELS[k]
        out.append(Chord(root, quality, int(bass_pc[i]) if bass_pc[i] >= 0 else root))
    return out


# Roman numerals by semitones above the tonic. Minor keys count from the natural minor scale;
# the raised seventh degree (leading-tone chords) is "VII" for diminished chords (vii°) and
# "#VII" otherwise.
_MAJOR_DEGREES = ("I", "bII", "II", "bIII", "III", "IV", "#IV", "V", "bVI", "VI", "bVII", "VII")
_MINOR_DEGREES = ("I", "bII", "II", "III", "#III", "IV", "#IV", "V", "VI", "#VI", "VII", "#VII")
_FIGURES = {  # (seventh chord?, bass interval above root) -> inversion figure
    (False, 3): "6", (False, 4): "6", (False, 7): "64", (False, 6): "64", (False, 8): "64",
    (True, 3): "65", (True, 4): "65", (True, 6): "43", (True, 7): "43",
    (True, 9): "42", (True, 10): "42", (True, 11): "42",
}  # fmt: skip


def roman_numeral(chord: Chord, key: Key | tuple[int, bool]) -> str:
    """The chord's Roman numeral in ``key`` (a :class:`Key` or ``(tonic, minor)``), with
    quality (upper case major/augmented, lower case minor/diminished, °, ø, +, 7) and an
    inversion figure from the bass (6, 64, 65, 43, 42): ``V7``, ``ii65``, ``vii°``, ``bVI``."""
    tonic, minor = (key.tonic, key.minor) if isinstance(key, Key) else key
    degree = (chord.root - tonic) % 12
    numeral = (_MINOR_DEGREES if minor else _MAJOR_DEGREES)[degree]
    if minor and degree == 11 and chord.quality in LEADING_TONE_QUALITIES:
        numeral = "VII"
    if chord.quality in _LOWER:
        numeral = numeral.lower()
    figure = _FIGURES.get((chord.quality in _SEVENTHS, (chord.bass - chord.root) % 12), "")
    suffix = _NUMERAL_SUFFIX[chord.quality]
    if figure and suffix.endswith("7"):
        suffix = suffix[:-1]
    return f"{numeral}{suffix}{figure}"


@dataclass(frozen=True)
class BeatChord:
    """The chord of one beat (None where nothing sounds) and where the beat is (1-based)."""

    tick: int
    bar: int
    beat: float
    chord: Chord | None
    numeral: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "bar": self.bar,
            "beat": self.beat,
            "chord": self.chord.name if self.chord else None,
            "numeral": self.numeral,
        }


def chords_per_beat(score: Score, key: Key | tuple[int, bool] | None = None) -> list[BeatChord]:
    """A chord label for every beat of ``score`` by template matching (see
    :func:`label_chords`), with its Roman numeral in ``key`` (default: the estimated key)."""
    weights, bass, grid = beat_pitch_classes(score)
    key = key if key is not None else estimate_key(score)
    labels = label_chords(weights, bass)
    bars, beats = grid.locate(grid.beat_starts)
    return [
        BeatChord(
            int(t),
            int(b),
            round(float(q), 4),
            c,
            roman_numeral(c, key) if c is not None and key is not None else None,
        )
        for t, b, q, c in zip(grid.beat_starts, bars, beats, labels, strict=True)
    ]


# ----------------------------------------------------------------------------- cadences
CADENCE_KINDS = ("authentic", "half", "plagal", "deceptive")


@dataclass(frozen=True)
class Cadence:
    """A cadence arriving at ``bar``/``beat`` (1-based): its kind and the two chords.

    ``perfect`` (authentic cadences only): both chords in root position and the top voice on
    the tonic.
    """

    kind: str
    bar: int
    beat: float
    tick: int
    chords: tuple[str, str]
    perfect: bool | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "bar": self.bar,
            "beat": self.beat,
            "chords": list(self.chords),
            "perfect": self.perfect,
        }


def _chord_events(chords: list[BeatChord]) -> list[tuple[int, int]]:
    """Runs of beats with the same chord: ``(first beat, last beat)`` indices (silence ends a
    run and starts none)."""
    events: list[tuple[int, int]] = []
    for i, bc in enumerate(chords):
        if bc.chord is None:
            continue
        prev = chords[i - 1].chord if i else None
        if events and events[-1][1] == i - 1 and prev is not None and _same(prev, bc.chord):
            events[-1] = (events[-1][0], i)
        else:
            events.append((i, i))
    return events


def _same(a: Chord, b: Chord) -> bool:
    return a.root == b.root and a.quality == b.quality


def _top_voice(score: Score) -> np.ndarray:
    """The notes of the top voice: the track labelled S, else the highest pitched track."""
    pitched = [t for t in score.tracks if not t.is_drum and len(t)]
    if not pitched:
        return np.zeros(0, NOTE_DTYPE)
    for t in pitched:
        if t.voice == "S":
            return t.notes
    return max(pitched, key=lambda t: float(t.notes["pitch"].mean())).notes


def phrase_end_ticks(score: Score) -> np.ndarray:
    """Ticks where a phrase ends: the onset of a long top-voice note (at least one beat and
    twice the voice's median length), of a note followed by a rest in every voice, and of the
    last onset of the piece."""
    from musegen.metrics.stats import view

    v = view(score)
    if v.empty:
        return np.zeros(0, np.int64)
    top = _top_voice(score)
    beat = v.grid.beat_lengths[0]
    ends = [v.start.max()]
    if len(top):
        dur = top["duration"].astype(np.int64)
        long_enough = max(int(beat), 2 * int(np.median(dur)))
        ends += list(top["start"][dur >= long_enough])
    counts_end = np.maximum.accumulate(v.end)  # latest note-off so far, in onset order
    gaps = v.start[1:] > counts_end[:-1]
    ends += list(v.start[:-1][gaps])
    return np.unique(np.asarray(ends, dtype=np.int64))


def detect_cadences(
    score: Score,
    key: Key | tuple[int, bool] | None = None,
    chords: list[BeatChord] | None = None,
) -> list[Cadence]:
    """Cadences at phrase ends (:func:`phrase_end_ticks`), judged from the chord arriving
    there and the chord before it, in ``key`` (default: the estimated key of the whole piece):

    * authentic: V or V7 -> I/i (``perfect`` when both in root position, top voice on tonic)
    * plagal: IV/iv -> I/i
    * deceptive: V or V7 -> vi (major) / VI (minor)
    * half: any other chord -> V
    """
    key = key if key is not None else estimate_key(score)
    if key is None:
        return []
    tonic, minor = (key.tonic, key.minor) if isinstance(key, Key) else key
    chords = chords if chords is not None else chords_per_beat(score, (tonic, minor))
    events = _chord_events(chords)
    event_of_beat = np.full(len(chords), -1)
    for k, (a, b) in enumerate(events):
        event_of_beat[a : b + 1] = k
    beat_ticks = np.array([c.tick for c in chords])
    top = _top_voice(score)
    found: dict[int, Cadence] = {}
    for t in phrase_end_ticks(score):
        k = int(event_of_beat[max(int(np.searchsorted(beat_ticks, t, side="right")) - 1, 0)])
        if k < 1:
            continue
        prev, cur = chords[events[k - 1][0]], chords[events[k][0]]
        cad = _classify(prev, cur, tonic, minor, _top_pitch_class(top, cur.tick))
        if cad is not None:
            found[cur.tick] = cad
    return [found[t] for t in sorted(found)]


def _top_pitch_class(top: np.ndarray, tick: int) -> int | None:
    if len(top) == 0:
        return None
    sounding = (top["start"] <= tick) & (top["start"] + top["duration"] > tick)
    if not sounding.any():
        sounding = top["start"] >= tick
        if not sounding.any():
            return None
    return int(top["pitch"][np.flatnonzero(sounding)[0]]) % 12


def _classify(
    prev: BeatChord, cur: BeatChord, tonic: int, minor: bool, top_pc: int | None
) -> Cadence | None:
    a, b = prev.chord, cur.chord
    if a is None or b is None:
        return None
    da, db = (a.root - tonic) % 12, (b.root - tonic) % 12
    a_dominant = da == 7 and a.quality in DOMINANT_QUALITIES
    b_tonic = db == 0 and b.quality in ("maj", "min")
    kind = None
    perfect = None
    if a_dominant and b_tonic:
        kind = "authentic"
        perfect = a.bass == a.root and b.bass == b.root and top_pc == tonic
    elif da == 5 and a.quality in ("maj", "min") and b_tonic:
        kind = "plagal"
    elif a_dominant and (
        (not minor and db == 9 and b.quality == "min") or (minor and db == 8 and b.quality == "maj")
    ):
        kind = "deceptive"
    elif db == 7 and b.quality in DOMINANT_QUALITIES and not _same(a, b):
        kind = "half"
    if kind is None:
        return None
    return Cadence(
        kind, cur.bar, cur.beat, cur.tick, (prev.numeral or "", cur.numeral or ""), perfect
    )
