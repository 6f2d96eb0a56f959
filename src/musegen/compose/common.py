"""What the algorithmic composers share: keys and scales, chords, search budgets, seeds,
reading a melody line, building output scores and loading a training corpus.

Pitches are MIDI numbers; pitch classes are 0..11 (0 = C). A key is ``(tonic, minor)``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from musegen.errors import InputError, MusegenError
from musegen.score import (
    KeySignature,
    Score,
    Tempo,
    TimeSignature,
    Track,
    make_notes,
    pitch_name,
)

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)  # natural minor; the raised 7th is added where needed
QUALITIES = ("maj", "min", "dim", "dom7")
CHORD_SHAPES = {"maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "dom7": (0, 4, 7, 10)}
NO_CHORD = len(QUALITIES) * 12  # symbol of "no chord" in chord alphabets (root * 4 + quality)

Key = tuple[int, bool]  # (tonic pitch class, minor)


# --------------------------------------------------------------------------- seeds, budgets
def make_rng(seed: int | None) -> tuple[np.random.Generator, int]:
    """A generator and the seed it came from (a fresh random seed when ``seed`` is None)."""
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    return np.random.default_rng(seed), seed


class SearchGaveUp(MusegenError):
    """A search hit its step or time limit before finding an answer."""


@dataclass
class Budget:
    """A step and wall-time limit for a search; :meth:`tick` raises when either is spent."""

    what: str
    max_steps: int = 200_000
    max_seconds: float = 10.0
    steps: int = 0
    started: float = field(default_factory=time.perf_counter)

    def tick(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > self.max_steps:
            raise SearchGaveUp(
                f"{self.what}: gave up after {self.max_steps:,} search steps without a solution "
                "(raise the step limit, or relax the request: shorter, other key or range)"
            )
        if self.steps % 256 == 0 and self.elapsed > self.max_seconds:
            raise SearchGaveUp(
                f"{self.what}: gave up after {self.max_seconds:g} s ({self.steps:,} steps) "
                "without a solution (raise the time limit, or relax the request)"
            )

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


# --------------------------------------------------------------------------- keys and scales
def parse_key_text(text: str) -> Key:
    """'G major', 'e minor', 'Bb', 'F#m' -> (tonic pitch class, minor)."""
    from musegen.metrics.harmony import parse_key

    return parse_key(text)


def key_name(key: Key) -> str:
    return str(key_signature(key))


def key_signature(key: Key, time: int = 0) -> KeySignature:
    """The key signature (sharps > 0, flats < 0) of a key."""
    tonic, minor = key
    major_tonic = (tonic + 3) % 12 if minor else tonic
    fifths = (major_tonic * 7) % 12
    if fifths > 6:
        fifths -= 12
    return KeySignature(time, fifths, minor)


def scale_pcs(key: Key) -> np.ndarray:
    """The seven pitch classes of the key (natural minor for minor keys)."""
    tonic, minor = key
    return (np.array(MINOR_SCALE if minor else MAJOR_SCALE) + tonic) % 12


def scale_pitches(key: Key, low: int, high: int) -> np.ndarray:
    """Every diatonic MIDI pitch of ``key`` in ``[low, high]``."""
    p = np.arange(low, high + 1)
    return p[np.isin(p % 12, scale_pcs(key))]


def leading_tone(key: Key) -> int:
    """Pitch class a semitone below the tonic (raised 7th in minor)."""
    return (key[0] - 1) % 12


def nearest_shift(from_pc: int, to_pc: int) -> int:
    """Semitones (-5..6) that move pitch class ``from_pc`` to ``to_pc``."""
    d = (to_pc - from_pc) % 12
    return d - 12 if d > 6 else d


@lru_cache(maxsize=1)
def _key_profiles() -> np.ndarray:
    """The 24 Krumhansl-Kessler profiles (12 major, then 12 minor), centred and unit-norm."""
    from musegen.metrics.harmony import MAJOR_PROFILE, MINOR_PROFILE

    rows = [np.roll(p, t) for p in (MAJOR_PROFILE, MINOR_PROFILE) for t in range(12)]
    m = np.array(rows) - np.mean(rows, axis=1, keepdims=True)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    m.flags.writeable = False
    return m


def key_from_weights(weights: np.ndarray) -> Key | None:
    """Krumhansl-Schmuckler key of a 12-bin pitch-class weight vector (None if all zero).

    The same answer as :func:`musegen.metrics.harmony.estimate_key`, in one matrix product.
    """
    w = np.asarray(weights, dtype=np.float64)
    if not w.any():
        return None
    c = w - w.mean()
    norm = np.linalg.norm(c)
    if norm == 0:
        return 0, False
    best = int(np.argmax(_key_profiles() @ (c / norm)))
    return best % 12, best >= 12


def score_key(score: Score) -> Key | None:
    """The score's first key signature, else the Krumhansl-Schmuckler estimate."""
    if score.key_signatures:
        ks = score.key_signatures[0]
        return ks.tonic, ks.minor
    from musegen.metrics.harmony import pitch_class_weights

    return key_from_weights(pitch_class_weights(score))


# --------------------------------------------------------------------------- chords
@lru_cache(maxsize=1)
def chord_templates() -> np.ndarray:
    """Binary ``[48, 12]`` templates, row ``root * 4 + quality`` (see :data:`QUALITIES`)."""
    t = np.zeros((48, 12))
    for root in range(12):
        for q, name in enumerate(QUALITIES):
            t[root * 4 + q, [(root + i) % 12 for i in CHORD_SHAPES[name]]] = 1
    t.flags.writeable = False
    return t


def label_chords(weights: np.ndarray) -> np.ndarray:
    """Chord symbol (``root * 4 + quality``, or :data:`NO_CHORD`) per row of pc weights.

    Template matching: weight inside the chord minus half the weight outside it; triads win
    ties over seventh chords.
    """
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    t = chord_templates()
    score = w @ t.T - 0.5 * (w @ (1 - t).T)
    score -= 1e-6 * t.sum(axis=1)  # prefer the simpler chord on a tie
    out = np.argmax(score, axis=1)
    out[w.sum(axis=1) <= 0] = NO_CHORD
    return out


def chord_pcs(symbol: int) -> tuple[int, ...]:
    """Pitch classes of a chord symbol (empty for :data:`NO_CHORD`)."""
    if symbol >= NO_CHORD or symbol < 0:
        return ()
    root, q = divmod(int(symbol), 4)
    return tuple((root + i) % 12 for i in CHORD_SHAPES[QUALITIES[q]])


def chord_symbol_name(symbol: int) -> str:
    """'C', 'Am', 'Bdim', 'G7' or 'N.C.'."""
    from musegen.score import PITCH_NAMES

    if symbol >= NO_CHORD or symbol < 0:
        return "N.C."
    root, q = divmod(int(symbol), 4)
    return PITCH_NAMES[root] + {"maj": "", "min": "m", "dim": "dim", "dom7": "7"}[QUALITIES[q]]


_NUMERALS = ("I", "II", "III", "IV", "V", "VI", "VII")


def parse_roman(text: str, key: Key) -> int:
    """A Roman numeral ('I', 'vi', 'V7', 'vii°', 'viio', 'bVII', 'iv') -> chord symbol in ``key``.

    Upper case = major, lower case = minor, ``°``/``o`` = diminished, a trailing ``7`` on an
    upper-case numeral = dominant seventh. Degrees follow the key's scale (natural minor),
    except that V is major in minor keys as in common practice.
    """
    t = text.strip()
    flat = t.startswith("b")
    core = t[1:] if flat else t
    seventh = core.endswith("7")
    core = core[:-1] if seventh else core
    dim = core.endswith(("°", "o"))
    core = core[:-1] if dim else core
    if core.upper() not in _NUMERALS:
        raise MusegenError(f"cannot read chord {text!r}; write Roman numerals like I, ii, V7, vii°")
    degree = _NUMERALS.index(core.upper())
    root = int(scale_pcs(key)[degree]) - (1 if flat else 0)
    if key[1] and degree == 4 and core.isupper():
        root = (key[0] + 7) % 12
    if key[1] and degree == 6 and dim:
        root = leading_tone(key)
    quality = (
        "dim"
        if dim
        else "dom7"
        if seventh and core.isupper()
        else "maj"
        if core.isupper()
        else "min"
    )
    return (root % 12) * 4 + QUALITIES.index(quality)


# --------------------------------------------------------------------------- melodies
@dataclass
class Line:
    """A monophonic line: note columns in ticks, and whether a polyphonic input was reduced."""

    start: np.ndarray
    duration: np.ndarray
    pitch: np.ndarray
    tpq: int
    reduced: bool = False

    def __len__(self) -> int:
        return len(self.pitch)


def melody_line(score: Score, what: str = "melody") -> Line:
    """The top line of a score: its 'S' track if labelled, else the skyline of all tracks.

    A polyphonic input is reduced (documented choice, reported in ``Line.reduced``): at each
    onset the highest note wins, a lower note starting under a sounding higher one is
    dropped, and every kept note ends where the next kept note starts. No notes at all is a
    :class:`MusegenError`.
    """
    tracks = [t for t in score.tracks if not t.is_drum and len(t)]
    if not tracks:
        raise MusegenError(f"the {what} has no notes")
    soprano = [t for t in tracks if t.voice == "S"]
    notes = soprano[0].notes if soprano else np.concatenate([t.notes for t in tracks])
    order = np.lexsort((-notes["pitch"].astype(np.int64), notes["start"]))
    notes = notes[order]
    keep: list[int] = []
    end = -1
    for i in range(len(notes)):
        s = int(notes["start"][i])
        if keep:
            j = keep[-1]
            if s == int(notes["start"][j]):
                continue  # a lower note at the same onset
            if s < end and notes["pitch"][i] < notes["pitch"][j]:
                continue  # under a sounding higher note
        keep.append(i)
        end = s + int(notes["duration"][i])
    kept = notes[keep].copy()
    nxt = np.append(kept["start"][1:], np.iinfo(np.int64).max)
    kept["duration"] = np.maximum(np.minimum(kept["duration"], nxt - kept["start"]), 1)
    return Line(
        kept["start"].astype(np.int64),
        kept["duration"].astype(np.int64),
        kept["pitch"].astype(np.int64),
        score.tpq,
        reduced=len(kept) < len(notes),
    )


def pitches_text(pitches: Sequence[int]) -> str:
    return " ".join(pitch_name(int(p)) for p in pitches)


# --------------------------------------------------------------------------- output scores
def build_score(
    parts: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    *,
    tpq: int = 480,
    qpm: float = 100.0,
    key: Key | None = None,
    time_signature: tuple[int, int] = (4, 4),
    voices: Sequence[str | None] | None = None,
    program: int = 0,
) -> Score:
    """A score from ``(name, start, duration, pitch)`` parts in ticks, with tempo/meter/key."""
    tracks = []
    for i, (name, start, duration, pitch) in enumerate(parts):
        voice = voices[i] if voices else None
        tracks.append(
            Track(make_notes(start, duration, pitch, 80), program=program, name=name, voice=voice)
        )
    return Score(
        tpq=tpq,
        tracks=tracks,
        tempos=[Tempo(0, qpm)],
        time_signatures=[TimeSignature(0, *time_signature)],
        key_signatures=[key_signature(key)] if key is not None else [],
    )


def chord_track_parts(
    symbols: np.ndarray, unit: int, low: int = 48
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block chords (root position, close, from the octave above ``low``) for one symbol per
    ``unit`` ticks; a run of equal symbols becomes one held chord; N.C. is silent."""
    starts, durs, pitches = [], [], []
    i = 0
    while i < len(symbols):
        j = i
        while j + 1 < len(symbols) and symbols[j + 1] == symbols[i]:
            j += 1
        pcs = chord_pcs(int(symbols[i]))
        if pcs:
            root = low + (pcs[0] - low) % 12
            prev = root
            for k, pc in enumerate(pcs):
                p = root if k == 0 else prev + (pc - prev) % 12
                starts.append(i * unit)
                durs.append((j - i + 1) * unit)
                pitches.append(p)
                prev = p
        i = j + 1
    return np.array(starts, np.int64), np.array(durs, np.int64), np.array(pitches, np.int64)


# --------------------------------------------------------------------------- corpora
SPEC_HELP = (
    "source:NAME[:SPLIT] (e.g. source:nottingham, source:jsb-satb:train), corpus:NAME for a "
    "music21 collection (bach, folk, palestrina) or corpus:PATH for one corpus file, a "
    "prepared dataset folder, a folder of MIDI/MusicXML/ABC files, or one file"
)


def iter_corpus(
    spec: str, *, split: str | None = "train", max_pieces: int | None = None
) -> Iterator[Score]:
    """Scores of a training corpus named by ``spec`` (see :data:`SPEC_HELP`).

    Named sources and prepared datasets give their ``split`` (None: all); folders give every
    piece.
    Pieces that cannot be read are skipped; at most ``max_pieces`` are given.
    """
    from musegen.data.sources import available_sources, get_source

    count = 0

    def limited(scores: Iterator[Score]) -> Iterator[Score]:
        nonlocal count
        for s in scores:
            if max_pieces is not None and count >= max_pieces:
                return
            count += 1
            yield s

    text = spec.strip()
    name, piece_split = None, split
    if text.startswith("source:"):
        name, _, rest = text[len("source:") :].partition(":")
        piece_split = rest or split
    elif text.startswith("corpus:") and text[len("corpus:") :] in available_sources():
        name = text[len("corpus:") :]
    elif text in available_sources():
        name = text
    if name is not None:
        source = get_source(name)
        pieces = [p for p in source.pieces() if piece_split is None or p.split == piece_split]
        if not pieces:
            raise MusegenError(f"{spec}: no pieces in split {piece_split!r}")
        yield from limited(_load_pieces(source, pieces))
        return
    path = Path(text)
    if text.startswith("corpus:") or path.is_file():
        from musegen.io import load

        yield from limited(iter([load(text)]))
        return
    if path.is_dir() and (path / "manifest.json").is_file():
        yield from limited(_dataset_scores(path, split))
        return
    if path.is_dir():
        source = get_source("folder", root=path)
        yield from limited(_load_pieces(source, source.pieces()))
        return
    raise MusegenError(
        f"{spec}: not a source, corpus, dataset folder, folder or file ({SPEC_HELP})"
    )


def _load_pieces(source, pieces) -> Iterator[Score]:  # type: ignore[no-untyped-def]
    for p in pieces:
        try:
            yield source.load(p)
        except InputError:
            continue


def _dataset_scores(path: Path, split: str | None) -> Iterator[Score]:
    """Decoded pieces of a prepared dataset: its ``split`` if it has one, else all."""
    from musegen.data.dataset import load_prepared

    ds = load_prepared(path)
    tok = ds.tokenizer
    names = [split] if split in ds.split_names else ds.split_names
    for name in names:
        part = ds.split(name)
        for i in range(len(part)):
            try:
                yield tok.decode(np.asarray(part.piece(i)))
            except (MusegenError, ValueError):
                continue
