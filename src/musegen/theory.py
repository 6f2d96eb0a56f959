"""Music theory, in one place: pitch classes, scales and keys, key finding, chords, Roman
numerals and key signatures.

Every part of musegen that needs theory reads it here, so that there is one answer to "what
key is this in" and "what chord is this beat". It stands on the ground floor: numpy,
:mod:`musegen.score` and :mod:`musegen.errors` only, so every layer may use it.

* Keys: :class:`Key` (a ``(tonic, minor)`` named tuple, so a plain ``(0, False)`` works
  wherever a key is asked for), :func:`parse_key`, :func:`key_signature` / :func:`key_of_signature`,
  scales (:func:`scale_pcs`, :func:`scale_pitches`), :func:`leading_tone`.
* Key finding: Krumhansl-Schmuckler, the key whose profile correlates best with the
  duration-weighted pitch classes (:func:`find_key`, :func:`estimate_key`). The profile is a
  parameter: :data:`KEY_PROFILES` names the available ones (Krumhansl-Kessler is the default).
* Chords: :class:`Chord`, the template vocabulary :data:`CHORD_QUALITIES`, template matching
  with a :class:`ChordRule` (:func:`best_chords`, :func:`label_chords`).
* Roman numerals: :func:`roman_numeral` (chord -> ``"V65"``) and :func:`parse_roman` back.

Pitches are MIDI numbers; pitch classes are 0..11 (0 = C).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import numpy as np

from musegen.errors import MusegenError
from musegen.score import PITCH_NAMES, KeySignature, Score

# ----------------------------------------------------------------------------- scales
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
NATURAL_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
HARMONIC_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 11)
LETTER_PCS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def nearest_shift(from_pc: int, to_pc: int) -> int:
    """Semitones (-5..6) that move pitch class ``from_pc`` to ``to_pc``."""
    d = (to_pc - from_pc) % 12
    return d - 12 if d > 6 else d


# ----------------------------------------------------------------------------- keys
class Key(NamedTuple):
    """A major or minor key. A tuple, so ``Key(9, True) == (9, True)`` and ``tonic, minor =
    key`` work; ``str(key)`` is e.g. ``"A minor"`` (tonic named as :data:`PITCH_NAMES`),
    :attr:`spelled` the name its key signature gives (``"Db major"``, ``"G# minor"``)."""

    tonic: int  # pitch class, 0 = C
    minor: bool = False

    def __str__(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"

    @property
    def mode(self) -> str:
        return "minor" if self.minor else "major"

    @property
    def spelled(self) -> str:
        """The key as its signature names it: ``"F# major"``, ``"Eb minor"``."""
        return key_name(self)


C_MAJOR = Key(0, False)


def parse_key(text: str) -> Key:
    """``'G'``, ``'g minor'``, ``'Bb major'``, ``'F#m'``, ``'e'`` -> a :class:`Key`.

    A lower-case tonic or an ``m`` after it means minor; ``♭``/``♯`` are read as ``b``/``#``.
    """
    hint = "write e.g. 'G major', 'e minor', 'Bb', 'F#m'"
    t = text.strip().replace("♭", "b").replace("♯", "#")
    parts = t.split()
    name = parts[0] if parts else ""
    mode = parts[1].lower() if len(parts) > 1 else ""
    minor = mode in ("minor", "min", "m") or (not mode and name.endswith("m") and len(name) > 1)
    if not mode and name.endswith("m") and len(name) > 1:
        name = name[:-1]
    if not mode and name[:1].islower():
        minor = True
    if (
        not name
        or name[0].lower() not in LETTER_PCS
        or mode not in ("", "major", "maj", "minor", "min", "m")
    ):
        raise MusegenError(f"cannot read key {text!r}; {hint}")
    pc = LETTER_PCS[name[0].lower()]
    for accidental in name[1:]:
        if accidental == "#":
            pc += 1
        elif accidental == "b":
            pc -= 1
        else:
            raise MusegenError(f"cannot read key {text!r}; {hint}")
    return Key(pc % 12, minor)


def key_signature(key: tuple[int, bool], time: int = 0, max_sharps: int = 6) -> KeySignature:
    """The key signature of ``key`` at ``time``: sharps > 0, flats < 0, at most ``max_sharps``
    sharps. One key sits halfway round the circle of fifths, and ``max_sharps`` spells it:
    6 writes F# major / D# minor with six sharps, 5 writes Gb major / Eb minor with six flats."""
    tonic, minor = key
    major_tonic = (tonic + 3) % 12 if minor else tonic
    fifths = (major_tonic * 7) % 12
    if fifths > max_sharps:
        fifths -= 12
    return KeySignature(time, fifths, bool(minor))


def key_name(key: tuple[int, bool]) -> str:
    """A key named as its signature spells it: ``(1, False)`` -> ``"Db major"``."""
    return str(key_signature(key))


def key_of_signature(signature: KeySignature) -> Key:
    """The key a key signature names."""
    return Key(signature.tonic, bool(signature.minor))


def scale_pcs(key: tuple[int, bool]) -> np.ndarray:
    """The seven pitch classes of ``key`` (natural minor for minor keys), tonic first."""
    tonic, minor = key
    return (np.array(NATURAL_MINOR_SCALE if minor else MAJOR_SCALE) + tonic) % 12


def scale_pitches(key: tuple[int, bool], low: int, high: int) -> np.ndarray:
    """Every diatonic MIDI pitch of ``key`` in ``[low, high]``."""
    p = np.arange(low, high + 1)
    return p[np.isin(p % 12, scale_pcs(key))]


def leading_tone(key: tuple[int, bool]) -> int:
    """The pitch class a semitone below the tonic (the raised 7th in minor)."""
    return (key[0] - 1) % 12


# ----------------------------------------------------------------------------- key finding
@dataclass(frozen=True)
class KeyProfile:
    """Weights of the 12 pitch classes above the tonic of a major and a minor key."""

    name: str
    major: tuple[float, ...]
    minor: tuple[float, ...]
    source: str


# Named key profiles. Another profile is one more entry here, e.g. "aarden-essen" or
# "temperley"; every function that finds keys takes ``profile=`` by name.
KEY_PROFILES: dict[str, KeyProfile] = {
    p.name: p
    for p in (
        KeyProfile(
            "krumhansl-kessler",
            (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
            (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17),
            "Krumhansl & Kessler (1982), probe-tone ratings",
        ),
    )
}
DEFAULT_PROFILE = "krumhansl-kessler"
# Correlations this close to the best count as equal. A pitch-class distribution symmetric
# under a rotation (only C and F# for equal time, say) correlates equally with several keys
# in exact arithmetic, and rounding alone would pick one; within the tolerance the first key
# in KEYS order wins instead.
KEY_TIE_TOLERANCE = 1e-12
KEYS = tuple(Key(tonic, minor) for minor in (False, True) for tonic in range(12))


def key_profile(name: str = DEFAULT_PROFILE) -> KeyProfile:
    """The key profile called ``name`` (see :data:`KEY_PROFILES`)."""
    try:
        return KEY_PROFILES[name]
    except KeyError:
        known = ", ".join(KEY_PROFILES)
        raise MusegenError(f"unknown key profile {name!r}; choose one of: {known}") from None


def profile_vector(key: tuple[int, bool], profile: str = DEFAULT_PROFILE) -> np.ndarray:
    """The 12 weights of ``profile`` rotated to ``key``'s tonic (index = pitch class)."""
    p = key_profile(profile)
    return np.roll(np.array(p.minor if key[1] else p.major), key[0])


@cache
def _profile_matrix(profile: str) -> np.ndarray:
    """``[24, 12]``: the profile rotated to every key of :data:`KEYS`, rows centred and of
    unit length, so that one product with a centred unit vector gives Pearson correlations."""
    rows = np.array([profile_vector(k, profile) for k in KEYS])
    m = rows - rows.mean(axis=1, keepdims=True)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    m.flags.writeable = False
    return m


def key_correlations(weights: np.ndarray, profile: str = DEFAULT_PROFILE) -> np.ndarray:
    """Pearson correlation of 12 pitch-class weights with the profile of each key of
    :data:`KEYS` (major C..B, then minor C..B); all 0 when the weights are all equal.
    Rows of weights ``[N, 12]`` give ``[N, 24]``."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 2:
        c = w - w.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(c, axis=1, keepdims=True)
        return (c / np.where(norm > 0, norm, 1.0)) @ _profile_matrix(profile).T
    c = w - w.mean()
    norm = np.linalg.norm(c)
    if norm == 0:
        return np.zeros(len(KEYS))
    return _profile_matrix(profile) @ (c / norm)


def find_key(weights: np.ndarray, profile: str = DEFAULT_PROFILE) -> Key | None:
    """Krumhansl-Schmuckler: the key whose ``profile`` correlates best with 12 pitch-class
    weights (None when they are all zero). Ties (within :data:`KEY_TIE_TOLERANCE`) go to the
    first key in :data:`KEYS` order, so all-equal weights give C major."""
    w = np.asarray(weights, dtype=np.float64)
    if not w.any():
        return None
    r = key_correlations(w, profile)
    return KEYS[int(np.flatnonzero(r >= r.max() - KEY_TIE_TOLERANCE)[0])]


def key_confidence(
    weights: np.ndarray, key: tuple[int, bool], profile: str = DEFAULT_PROFILE
) -> float:
    """How well ``key`` fits 12 pitch-class weights: their Pearson correlation with its
    profile (-1..1; 0 when the weights are all equal)."""
    w = np.asarray(weights, dtype=np.float64)
    if not w.std():
        return 0.0
    return float(np.corrcoef(w, profile_vector(key, profile))[0, 1])


def pitch_class_weights(score: Score) -> np.ndarray:
    """Total duration (ticks) of each pitch class over the pitched (non-drum) tracks."""
    w = np.zeros(12)
    for t in score.tracks:
        if not t.is_drum and len(t):
            np.add.at(w, t.notes["pitch"] % 12, t.notes["duration"])
    return w


def estimate_key(score: Score, profile: str = DEFAULT_PROFILE) -> Key | None:
    """The Krumhansl-Schmuckler key of a score's duration-weighted pitch classes
    (:func:`find_key`); None when nothing sounds."""
    return find_key(pitch_class_weights(score), profile)


def score_key(score: Score, profile: str = DEFAULT_PROFILE) -> Key | None:
    """The key of the score's first key signature, else its estimated key."""
    if score.key_signatures:
        return key_of_signature(score.key_signatures[0])
    return estimate_key(score, profile)


# ----------------------------------------------------------------------------- chords
# Chord qualities: intervals above the root, in the order template ties are broken (triads
# before sevenths).
CHORD_QUALITIES: dict[str, tuple[int, ...]] = {
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
CHORD_SUFFIX = {
    "maj": "", "min": "m", "dim": "dim", "aug": "aug", "dom7": "7",
    "min7": "m7", "maj7": "maj7", "hdim7": "ø7", "dim7": "°7",
}  # fmt: skip
SEVENTH_QUALITIES = frozenset({"dom7", "min7", "maj7", "hdim7", "dim7"})
DOMINANT_QUALITIES = frozenset({"maj", "dom7"})
LEADING_TONE_QUALITIES = frozenset({"dim", "hdim7", "dim7"})


@dataclass(frozen=True)
class Chord:
    """A chord: root and bass pitch classes and a quality (a key of :data:`CHORD_QUALITIES`)."""

    root: int
    quality: str
    bass: int

    @property
    def tones(self) -> tuple[int, ...]:
        """Pitch classes from the root up, in the order of the quality's intervals."""
        return tuple((self.root + i) % 12 for i in CHORD_QUALITIES[self.quality])

    @property
    def pitch_classes(self) -> frozenset[int]:
        return frozenset(self.tones)

    @property
    def name(self) -> str:
        """E.g. ``C``, ``Am``, ``G7``, ``Bdim``, ``F#ø7``; ``/E`` for a bass other than the root."""
        slash = f"/{PITCH_NAMES[self.bass]}" if self.bass != self.root else ""
        return f"{PITCH_NAMES[self.root]}{CHORD_SUFFIX[self.quality]}{slash}"

    def __str__(self) -> str:
        return self.name


class ChordVocabulary:
    """Chord templates: one 0/1 row of 12 pitch classes per ``(root, quality)``, in a fixed
    order (``by_root``: root-major, row ``root * len(qualities) + q``; else quality-major,
    row ``q * 12 + root``). Template matching breaks ties by that order."""

    def __init__(self, qualities: Sequence[str], by_root: bool = False) -> None:
        unknown = [q for q in qualities if q not in CHORD_QUALITIES]
        if unknown:
            raise MusegenError(f"unknown chord qualities {unknown}; known: {list(CHORD_QUALITIES)}")
        self.qualities = tuple(qualities)
        self.by_root = by_root
        if by_root:
            labels = [(r, q) for r in range(12) for q in self.qualities]
        else:
            labels = [(r, q) for q in self.qualities for r in range(12)]
        self.labels: list[tuple[int, str]] = labels
        rows = np.zeros((len(labels), 12))
        for i, (root, quality) in enumerate(labels):
            rows[i, [(root + k) % 12 for k in CHORD_QUALITIES[quality]]] = 1.0
        rows.flags.writeable = False
        self.matrix = rows
        self.roots = np.array([r for r, _ in labels])
        self.sizes = rows.sum(axis=1)

    def __len__(self) -> int:
        return len(self.labels)

    def transpose(self, rows: np.ndarray, shift: int) -> np.ndarray:
        """The rows of the same qualities with their roots moved ``shift`` semitones."""
        rows = np.asarray(rows)
        roots = self.roots[rows]
        stride = len(self.qualities) if self.by_root else 1
        return rows + ((roots + shift) % 12 - roots) * stride


@dataclass(frozen=True)
class ChordRule:
    """How a template is scored against a row of pitch-class weights (the best score wins):

    ``inside - outside * (total - inside)`` (the weight of the template's pitch classes and
    of the others; weights first divided by their sum with ``normalise``), minus ``missing``
    per template note that does not sound, minus ``seventh`` for a four-note template, plus
    ``bass`` when the template's root is the lowest sounding pitch class, minus ``simpler``
    per template note (a tie-break towards smaller chords)."""

    normalise: bool = True
    outside: float = 1.0
    missing: float = 0.0
    seventh: float = 0.0
    bass: float = 0.0
    simpler: float = 0.0


# The analysis rule: a passing seventh must not make a seventh chord, and a root in the bass
# decides between chords that share their notes (C-E: C major over A minor).
TEMPLATE_RULE = ChordRule(normalise=True, outside=1.0, missing=0.25, seventh=0.3, bass=0.1)
ANALYSIS_CHORDS = ChordVocabulary(tuple(CHORD_QUALITIES))


def best_chords(
    weights: np.ndarray,
    bass: np.ndarray | None = None,
    *,
    vocabulary: ChordVocabulary = ANALYSIS_CHORDS,
    rule: ChordRule = TEMPLATE_RULE,
) -> np.ndarray:
    """The row of ``vocabulary`` that scores best under ``rule`` for each row of pitch-class
    weights ``[n, 12]`` (a single row of 12 is one row), -1 for rows that are all zero.

    ``bass``: the lowest sounding MIDI pitch (or pitch class) per row, -1 where nothing
    sounds; only the ``rule.bass`` bonus reads it. Ties go to the earlier template.
    """
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    t = vocabulary.matrix
    total = w.sum(axis=1, keepdims=True)
    if rule.normalise:
        x = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
        mass: np.ndarray | float = 1.0
    else:
        x, mass = w, total
    # (1 + c) * inside - c * mass == inside - c * (mass - inside), with no rounding of the
    # outside weight of its own
    score = (1.0 + rule.outside) * (x @ t.T) - rule.outside * mass
    size = vocabulary.sizes
    if rule.missing:
        present = (w > 0).astype(np.float64) @ t.T
        score = score - rule.missing * (size[None, :] - present)
    if rule.seventh:
        score = score - rule.seventh * (size[None, :] > 3)
    if rule.bass and bass is not None:
        b = np.asarray(bass)
        bass_pc = np.where(b >= 0, b % 12, -1)
        score = score + rule.bass * (vocabulary.roots[None, :] == bass_pc[:, None])
    if rule.simpler:
        score -= rule.simpler * size
    best = score.argmax(axis=1)
    best[total[:, 0] <= 0] = -1
    return best


def label_chords(
    weights: np.ndarray,
    bass: np.ndarray | None = None,
    *,
    vocabulary: ChordVocabulary = ANALYSIS_CHORDS,
    rule: ChordRule = TEMPLATE_RULE,
) -> list[Chord | None]:
    """The best template chord for each row of pitch-class weights (None for silent rows),
    by :func:`best_chords`; its bass is the row's lowest pitch class (the root if unknown)."""
    best = best_chords(weights, bass, vocabulary=vocabulary, rule=rule)
    b = np.full(len(best), -1) if bass is None else np.asarray(bass)
    out: list[Chord | None] = []
    for i, k in enumerate(best):
        if k < 0:
            out.append(None)
            continue
        root, quality = vocabulary.labels[k]
        out.append(Chord(root, quality, int(b[i] % 12) if b[i] >= 0 else root))
    return out


# ----------------------------------------------------------------------------- Roman numerals
# Numerals by semitones above the tonic. Minor keys count from the natural minor scale; the
# raised seventh degree is "VII" for leading-tone chords (vii°, viiø7, vii°7), "#VII" otherwise.
_MAJOR_DEGREES = ("I", "bII", "II", "bIII", "III", "IV", "#IV", "V", "bVI", "VI", "bVII", "VII")
_MINOR_DEGREES = ("I", "bII", "II", "III", "#III", "IV", "#IV", "V", "VI", "#VI", "VII", "#VII")
_NUMERALS = ("I", "II", "III", "IV", "V", "VI", "VII")
_NUMERAL_SUFFIX = {
    "maj": "", "min": "", "dim": "°", "aug": "+", "dom7": "7",
    "min7": "7", "maj7": "maj7", "hdim7": "ø7", "dim7": "°7",
}  # fmt: skip
_LOWER = frozenset({"min", "dim", "min7", "hdim7", "dim7"})
_FIGURES = {  # (seventh chord?, bass interval above root) -> inversion figure
    (False, 3): "6", (False, 4): "6", (False, 7): "64", (False, 6): "64", (False, 8): "64",
    (True, 3): "65", (True, 4): "65", (True, 6): "43", (True, 7): "43",
    (True, 9): "42", (True, 10): "42", (True, 11): "42",
}  # fmt: skip
_FIGURE_TONE = {"6": 1, "64": 2, "65": 1, "43": 2, "42": 3}  # figure -> chord tone in the bass
ROMAN_HELP = "write Roman numerals like I, ii, V7, vii°"


def roman_numeral(chord: Chord, key: tuple[int, bool]) -> str:
    """The chord's Roman numeral in ``key``, with quality (upper case major/augmented, lower
    case minor/diminished, °, ø, +, 7) and an inversion figure from the bass (6, 64, 65, 43,
    42): ``V7``, ``ii65``, ``vii°``, ``bVI``."""
    tonic, minor = key
    degree = (chord.root - tonic) % 12
    numeral = (_MINOR_DEGREES if minor else _MAJOR_DEGREES)[degree]
    if minor and degree == 11 and chord.quality in LEADING_TONE_QUALITIES:
        numeral = "VII"
    if chord.quality in _LOWER:
        numeral = numeral.lower()
    seventh = chord.quality in SEVENTH_QUALITIES
    figure = _FIGURES.get((seventh, (chord.bass - chord.root) % 12), "")
    suffix = _NUMERAL_SUFFIX[chord.quality]
    if figure and suffix.endswith("7"):
        suffix = suffix[:-1]
    return f"{numeral}{suffix}{figure}"


def parse_roman(text: str, key: tuple[int, bool]) -> Chord:
    """A Roman numeral in ``key`` -> its :class:`Chord`; the inverse of :func:`roman_numeral`.

    ``[b|#] NUMERAL [°|o|ø|+] [7|maj7] [6|64|65|43|42]``: upper case is major (``7``:
    dominant seventh), lower case minor (``7``: minor seventh); ``°``/``o`` diminished (``°7``
    diminished seventh), ``ø7`` half-diminished, ``+`` augmented. Degrees follow the key's
    scale (natural minor in minor keys), ``b``/``#`` lower or raise them, and in minor a
    leading-tone chord on VII (vii°, viiø7, vii°7) stands on the raised seventh degree. A
    figure puts a chord tone in the bass and makes 65/43/42 seventh chords.
    """
    t = text.strip().replace("♭", "b").replace("♯", "#")
    shift = {"b": -1, "#": 1}.get(t[:1], 0)
    rest = t[1:] if shift else t
    n = 0
    while n < len(rest) and rest[n].upper() in "IV":
        n += 1
    core, rest = rest[:n], rest[n:]
    figure = next((f for f in ("64", "65", "43", "42", "6") if rest.endswith(f)), "")
    rest = rest[: len(rest) - len(figure)]
    if core.upper() not in _NUMERALS or (core != core.upper() and core != core.lower()):
        raise MusegenError(f"cannot read chord {text!r}; {ROMAN_HELP}")
    upper = core.isupper()
    seventh = rest.endswith("7") or figure in ("65", "43", "42")
    mark = rest[:-1] if rest.endswith("7") else rest
    qualities = {
        ("", False, True): "maj", ("", False, False): "min",
        ("", True, True): "dom7", ("", True, False): "min7",
        ("maj", True, True): "maj7", ("+", False, True): "aug",
        ("°", False, None): "dim", ("°", True, None): "dim7", ("ø", True, None): "hdim7",
    }  # fmt: skip
    mark = "°" if mark == "o" else mark
    quality = qualities.get((mark, seventh, upper)) or qualities.get((mark, seventh, None))
    if quality is None:
        raise MusegenError(f"cannot read chord {text!r}; {ROMAN_HELP}")
    degree = _NUMERALS.index(core.upper())
    tonic, minor = key
    step = (NATURAL_MINOR_SCALE if minor else MAJOR_SCALE)[degree]
    if minor and degree == 6 and not shift and quality in LEADING_TONE_QUALITIES:
        step = 11
    root = (tonic + step + shift) % 12
    tones = Chord(root, quality, root).tones
    return Chord(root, quality, tones[_FIGURE_TONE[figure]] if figure else root)


# ----------------------------------------------------------------------------- chord names
CHORD_NAME_HELP = "write chord names like C, Am, G7, Bdim, Fmaj7, Caug, Bm7b5, D/F#"
_NAME_SUFFIXES = {
    "": "maj", "maj": "maj", "M": "maj", "m": "min", "min": "min", "-": "min",
    "dim": "dim", "°": "dim", "o": "dim", "aug": "aug", "+": "aug", "7": "dom7",
    "dom7": "dom7", "m7": "min7", "min7": "min7", "-7": "min7", "maj7": "maj7", "M7": "maj7",
    "ø7": "hdim7", "ø": "hdim7", "m7b5": "hdim7", "hdim7": "hdim7", "°7": "dim7",
    "o7": "dim7", "dim7": "dim7",
}  # fmt: skip


def _pitch_class_name(text: str, whole: str) -> int:
    """``C``, ``F#``, ``Bb``, ``Eb`` … -> pitch class (one-line error otherwise)."""
    t = text.replace("♯", "#").replace("♭", "b")
    if not t or t[0].lower() not in LETTER_PCS or t[0] != t[0].upper():
        raise MusegenError(f"cannot read chord {whole!r}; {CHORD_NAME_HELP}")
    shift = sum({"#": 1, "b": -1}.get(c, 99) for c in t[1:])
    if abs(shift) > 2:
        raise MusegenError(f"cannot read chord {whole!r}; {CHORD_NAME_HELP}")
    return (LETTER_PCS[t[0].lower()] + shift) % 12


def parse_chord(text: str) -> Chord:
    """A chord name -> its :class:`Chord`; the inverse of :attr:`Chord.name` (which it reads
    back exactly), and the usual spellings besides: ``C``, ``Am``, ``Amin``, ``G7``,
    ``Bdim``/``B°``, ``Caug``/``C+``, ``Fmaj7``, ``Dm7``, ``Bm7b5``/``Bø7``, ``C#°7``,
    ``D/F#`` (a bass other than the root)."""
    t = text.strip().replace("♯", "#").replace("♭", "b")
    head, slash, bass_text = t.partition("/")
    n = 1
    while n < len(head) and head[n] in "#b":  # no suffix starts with b or #
        n += 1
    root = _pitch_class_name(head[:n], text)
    quality = _NAME_SUFFIXES.get(head[n:])
    if quality is None:
        raise MusegenError(f"cannot read chord {text!r}; {CHORD_NAME_HELP}")
    bass = _pitch_class_name(bass_text, text) if slash else root
    return Chord(root, quality, bass)


# ----------------------------------------------------------------------------- tonal centroids
def _tonal_centroid_matrix() -> np.ndarray:
    """Harte, Sandler & Gasser (2006)'s 6 x 12 projection of pitch classes: the circles of
    fifths (radius 1), minor thirds (1) and major thirds (0.5), sine and cosine each."""
    pc = np.arange(12)
    rows = []
    for radius, angle in ((1.0, 7 * np.pi / 6), (1.0, 3 * np.pi / 2), (0.5, 2 * np.pi / 3)):
        rows += [radius * np.sin(pc * angle), radius * np.cos(pc * angle)]
    return np.array(rows)


TONAL_CENTROID = _tonal_centroid_matrix()


def tonal_centroids(chroma: np.ndarray) -> np.ndarray:
    """Tonal centroids ``[n, 6]`` of chroma rows ``[n, 12]``, each row's weights normalised
    to sum 1 (zero rows give zeros)."""
    c = np.atleast_2d(np.asarray(chroma, dtype=np.float64))
    total = np.abs(c).sum(1, keepdims=True)
    c = np.divide(c, total, out=np.zeros_like(c), where=total > 0)
    return c @ TONAL_CENTROID.T
