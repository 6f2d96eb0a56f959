"""Music-theory rewards: RL Tuner's rules as small pure functions of a (partial) melody.

Jaques et al. (2017, "Sequence Tutor / RL Tuner") tuned a note RNN with rewards for following
textbook rules of melody writing. Each rule here is a function of a :class:`Line` (the top
line of a score: one note per onset, the highest) that counts something; the counts make
both the RL Tuner table of ``benchmarks/rl.py`` (:func:`rl_tuner_figures`) and the reward
(:func:`theory_reward`). Our own definitions, chosen to be simple and checkable by hand:

========================  ==================================================================
in key                    a note's pitch class is in the key's scale (major; minor: natural
                          and harmonic, both sevenths), the key being the score's
                          key signature's, else its Krumhansl-Schmuckler key
tonic                     the first / last note is the key's tonic
excessive repetition      a run of more than :data:`MAX_REPEATS` onsets on the same pitch:
                          every note past the 4th counts
leaps                     an interval of :data:`LEAP` semitones (a perfect fifth) or more is
                          *resolved* when the next interval turns back by no more than the
                          leap (a step back after a sixth, say); a leap followed by a repeat
                          or by motion on in the same direction is not. A leap with no note
                          after it (the end of a partial piece) is not judged
motif                     a bar whose notes take :data:`MOTIF_PITCHES` or more pitches; its
                          notes are *notes in motifs*. A motif bar *repeats* an earlier one
                          when its rhythm (onsets in the bar) and its intervals are the same
                          (transposed or not)
same-interval runs        more than :data:`INTERVAL_RUN` successive intervals equal and not 0
                          (a whole-tone scale, chains of thirds): every interval past the 3rd
========================  ==================================================================

A reward is any ``f(score) -> float``; :data:`REWARDS` names the built-in ones and
:func:`load_rewards` reads ``--reward`` (``theory``, ``key,tonic``, ``module:function`` or
``file.py:function``), summing the parts. Every function here is pure (no state, no
randomness) and takes a partial piece as well as a whole one.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from musegen.errors import MusegenError
from musegen.score import Score
from musegen.theory import HARMONIC_MINOR_SCALE, MAJOR_SCALE, NATURAL_MINOR_SCALE, score_key

MAX_REPEATS = 4  # onsets in a row on one pitch before the next counts as excessive
LEAP = 7  # semitones: a perfect fifth or more is a leap
MOTIF_PITCHES = 3  # distinct pitches a bar needs to be a motif
INTERVAL_RUN = 3  # successive equal intervals allowed before the next counts
MINOR_PCS = tuple(sorted({*NATURAL_MINOR_SCALE, *HARMONIC_MINOR_SCALE}))

Reward = Callable[[Score], float]


@dataclass(frozen=True)
class Line:
    """A melody as the rules see it: one note per onset (the highest sounding one), its
    onset tick, its bar (0 = the first bar line's bar) and its onset within that bar, and
    the key (tonic pitch class, minor?) the rules judge it in (None: nothing sounds)."""

    pitch: np.ndarray  # int64 [n]
    start: np.ndarray  # int64 [n] ticks
    bar: np.ndarray  # int64 [n]
    offset: np.ndarray  # int64 [n] ticks after the bar line
    key: tuple[int, bool] | None

    def __len__(self) -> int:
        return len(self.pitch)

    @property
    def intervals(self) -> np.ndarray:
        return np.diff(self.pitch)


def top_line(score: Score, key: tuple[int, bool] | None = None) -> Line:
    """The :class:`Line` of a score's pitched tracks (``key``: else the score's first key
    signature's, else estimated from its notes)."""
    table = score.note_table()
    drums = [i for i, t in enumerate(score.tracks) if t.is_drum]
    if drums:
        table = table[~np.isin(table["track"], drums)]
    table = table[np.lexsort((-table["pitch"].astype(np.int64), table["start"]))]
    first = np.ones(len(table), dtype=bool)
    first[1:] = table["start"][1:] != table["start"][:-1]
    start = table["start"][first].astype(np.int64)
    pitch = table["pitch"][first].astype(np.int64)
    if len(start):
        bars = score.bar_starts(int(start.max()) + 1).astype(np.int64)
        bar = np.searchsorted(bars, start, side="right") - 1
        bar = np.maximum(bar, 0)
        offset = start - bars[bar]
    else:
        bar = offset = np.zeros(0, dtype=np.int64)
    if key is None and len(start):
        key = score_key(score)
    return Line(pitch, start, bar, offset, None if key is None else (int(key[0]), bool(key[1])))


def line_of(piece: Score | Line) -> Line:
    return piece if isinstance(piece, Line) else top_line(piece)


# ----------------------------------------------------------------------------- the rules
def out_of_key(piece: Score | Line) -> int:
    """Notes whose pitch class is outside the key's scale."""
    line = line_of(piece)
    if line.key is None or not len(line):
        return 0
    tonic, minor = line.key
    scale = np.array(MINOR_PCS if minor else MAJOR_SCALE)
    return int((~np.isin((line.pitch - tonic) % 12, scale)).sum())


def starts_on_tonic(piece: Score | Line) -> bool:
    line = line_of(piece)
    return bool(len(line)) and line.key is not None and int(line.pitch[0]) % 12 == line.key[0]


def ends_on_tonic(piece: Score | Line) -> bool:
    line = line_of(piece)
    return bool(len(line)) and line.key is not None and int(line.pitch[-1]) % 12 == line.key[0]


def equal_runs(values: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of equal successive values."""
    if not len(values):
        return []
    edges = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(values)]])
    return [(int(s), int(e - s)) for s, e in zip(starts, ends, strict=True)]


def excess_repeats(piece: Score | Line, most: int = MAX_REPEATS) -> int:
    """Notes past the ``most``-th of a run of onsets on the same pitch."""
    line = line_of(piece)
    return sum(max(n - most, 0) for _, n in equal_runs(line.pitch))


def leaps(piece: Score | Line, leap: int = LEAP) -> tuple[int, int]:
    """(resolved, judged) leaps: see the module docstring."""
    steps = line_of(piece).intervals
    resolved = judged = 0
    for a, b in pairwise(steps.tolist()):
        if abs(a) < leap:
            continue
        judged += 1
        resolved += b != 0 and (b > 0) != (a > 0) and abs(b) <= abs(a)
    return resolved, judged


def interval_run_excess(piece: Score | Line, most: int = INTERVAL_RUN) -> int:
    """Intervals past the ``most``-th of a run of equal, non-zero successive intervals."""
    steps = line_of(piece).intervals
    return sum(max(n - most, 0) for s, n in equal_runs(steps) if steps[s] != 0)


def _bars(line: Line) -> list[np.ndarray]:
    """The note indices of each bar that has notes, in order."""
    if not len(line):
        return []
    return [np.flatnonzero(line.bar == b) for b in np.unique(line.bar)]


def motifs(piece: Score | Line, pitches: int = MOTIF_PITCHES) -> tuple[int, int, int, int]:
    """(notes in motifs, motif bars, notes in repeated motifs, repeated motif bars): see the
    module docstring. A bar repeats a motif when an earlier motif bar has its shape."""
    line = line_of(piece)
    seen: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
    notes = bars = rep_notes = rep_bars = 0
    for idx in _bars(line):
        if len(np.unique(line.pitch[idx])) < pitches:
            continue
        notes += len(idx)
        bars += 1
        shape = (tuple(line.offset[idx].tolist()), tuple(np.diff(line.pitch[idx]).tolist()))
        if shape in seen:
            rep_notes += len(idx)
            rep_bars += 1
        seen.add(shape)
    return notes, bars, rep_notes, rep_bars


# ----------------------------------------------------------------------------- figures
def rl_tuner_figures(piece: Score | Line) -> dict[str, float]:
    """Every rule's count for one piece (``notes``, ``intervals`` and ``bars`` to divide by):
    what :func:`rl_tuner_table` pools over a set."""
    line = line_of(piece)
    resolved, judged = leaps(line)
    in_motifs, motif_bars, in_repeated, repeated_bars = motifs(line)
    runs = equal_runs(line.pitch)
    return {
        "notes": float(len(line)),
        "intervals": float(max(len(line) - 1, 0)),
        "bars": float(len(np.unique(line.bar))),
        "excess_repeats": float(excess_repeats(line)),
        "out_of_key": float(out_of_key(line)),
        "starts_on_tonic": float(starts_on_tonic(line)),
        "ends_on_tonic": float(ends_on_tonic(line)),
        "leaps": float(judged),
        "leaps_resolved": float(resolved),
        "notes_in_motifs": float(in_motifs),
        "motif_bars": float(motif_bars),
        "notes_in_repeated_motifs": float(in_repeated),
        "repeated_motifs": float(repeated_bars),
        "interval_run_excess": float(interval_run_excess(line)),
        "runs_of_four": float(sum(n >= MAX_REPEATS for _, n in runs)),
        "runs_past_four": float(sum(n > MAX_REPEATS for _, n in runs)),
    }


TABLE_ROWS = (  # (figure, numerator, denominator): shares in percent, pooled over a set
    ("notes excessively repeated", "excess_repeats", "notes"),
    ("notes not in key", "out_of_key", "notes"),
    ("melodies starting on the tonic", "starts_on_tonic", "pieces"),
    ("melodies ending on the tonic", "ends_on_tonic", "pieces"),
    ("leaps resolved", "leaps_resolved", "leaps"),
    ("notes in motifs", "notes_in_motifs", "notes"),
    ("notes in repeated motifs", "notes_in_repeated_motifs", "notes"),
    ("intervals in long same-interval runs", "interval_run_excess", "intervals"),
    ("runs of four repeated onsets that go on", "runs_past_four", "runs_of_four"),
)


def rl_tuner_table(pieces: Sequence[Score | Line]) -> dict[str, float]:
    """RL Tuner's table over a set: each :data:`TABLE_ROWS` share in percent (NaN when
    nothing to divide by), pooled over the pieces; also ``repeated motifs per piece``."""
    rows = [rl_tuner_figures(p) for p in pieces]
    total = {k: sum(r[k] for r in rows) for k in (rows[0] if rows else {})}
    total["pieces"] = float(len(rows))
    out = {}
    for name, num, den in TABLE_ROWS:
        d = total.get(den, 0.0)
        out[name] = 100.0 * total[num] / d if d else float("nan")
    out["repeated motifs per piece"] = (
        total["repeated_motifs"] / len(rows) if rows else float("nan")
    )
    return out


# ----------------------------------------------------------------------------- rewards
def key_reward(piece: Score | Line) -> float:
    """-1 for a melody all out of key, 0 all in key: minus the share of notes out of key."""
    line = line_of(piece)
    return -out_of_key(line) / len(line) if len(line) else 0.0


def tonic_reward(piece: Score | Line) -> float:
    """0.5 for starting on the tonic, 0.5 for ending on it."""
    line = line_of(piece)
    return 0.5 * starts_on_tonic(line) + 0.5 * ends_on_tonic(line)


def repetition_reward(piece: Score | Line) -> float:
    """Minus the share of notes excessively repeated."""
    line = line_of(piece)
    return -excess_repeats(line) / len(line) if len(line) else 0.0


def leap_reward(piece: Score | Line) -> float:
    """Minus the share of judged leaps left unresolved (0 with no leap)."""
    resolved, judged = leaps(piece)
    return -(judged - resolved) / judged if judged else 0.0


def motif_reward(piece: Score | Line) -> float:
    """Half the share of notes in motifs plus half the share in repeated motifs."""
    line = line_of(piece)
    if not len(line):
        return 0.0
    in_motifs, _, in_repeated, _ = motifs(line)
    return 0.5 * (in_motifs + in_repeated) / len(line)


def interval_reward(piece: Score | Line) -> float:
    """Minus the share of intervals past the third of a same-interval run."""
    line = line_of(piece)
    n = len(line) - 1
    return -interval_run_excess(line) / n if n > 0 else 0.0


THEORY_WEIGHTS: dict[str, float] = {  # chosen before training, from folk's own pieces
    "key": 2.0,
    "tonic": 1.0,
    "repetition": 10.0,
    "leaps": 2.0,
    "motifs": 0.5,
    "intervals": 1.0,
}
PARTS: dict[str, Callable[[Score | Line], float]] = {
    "key": key_reward,
    "tonic": tonic_reward,
    "repetition": repetition_reward,
    "leaps": leap_reward,
    "motifs": motif_reward,
    "intervals": interval_reward,
}


def theory_reward(piece: Score | Line, weights: dict[str, float] | None = None) -> float:
    """RL Tuner's rules together: the :data:`THEORY_WEIGHTS`-weighted sum of every part
    (-15 for a melody that breaks every rule, 1.5 for one that keeps them all and is all
    repeated motifs; each part is a share, so the sum does not grow with length). Excessive
    repetition weighs most: it is rare (0.5% of the notes of the shipped ``folk``), so one
    such note in an 8-bar melody must cost as much as missing the tonic start. ``weights``:
    other weights by part (:func:`theory_weights`)."""
    line = line_of(piece)
    weights = THEORY_WEIGHTS if weights is None else weights
    return float(sum(w * PARTS[name](line) for name, w in weights.items()))


def theory_weights(changes: dict[str, float] | None) -> dict[str, float]:
    """:data:`THEORY_WEIGHTS` with some parts' weights changed (``musegen train rl
    --weights``); an unknown part or a weight that is not a finite number is an error."""
    out = dict(THEORY_WEIGHTS)
    for name, w in (changes or {}).items():
        if name not in THEORY_WEIGHTS:
            raise MusegenError(
                f"--weights: unknown part {name!r}; the parts: {', '.join(THEORY_WEIGHTS)}"
            )
        if not isinstance(w, int | float) or not np.isfinite(w):
            raise MusegenError(f"--weights: {name} must be a number, got {w!r}")
        out[name] = float(w)
    return out


REWARDS: dict[str, Reward] = {"theory": theory_reward, **PARTS}


# ----------------------------------------------------------------------------- per-note rewards
def prefix(line: Line, k: int) -> Line:
    """The first ``k`` notes of a line, judged in the whole line's key (the partial piece as
    it stood when its ``k``-th note was written)."""
    return Line(line.pitch[:k], line.start[:k], line.bar[:k], line.offset[:k], line.key)


def _unresolved(line: Line) -> int:
    resolved, judged = leaps(line)
    return judged - resolved


def _motif_notes(line: Line) -> int:
    in_motifs, _, in_repeated, _ = motifs(line)
    return in_motifs + in_repeated


COUNTS: dict[str, tuple[float, Callable[[Line], float]]] = {
    # each part's events on a partial piece, as (reward per event, count): what
    # :func:`note_rewards` credits to the note that changes the count
    "key": (-1.0, out_of_key),
    "tonic": (0.5, starts_on_tonic),  # the ending: credited to the last note only
    "repetition": (-1.0, excess_repeats),
    "leaps": (-1.0, _unresolved),
    "motifs": (0.5, _motif_notes),
    "intervals": (-1.0, interval_run_excess),
}
NOTE_WEIGHTS: dict[str, dict[str, float]] = {  # the built-in rewards --credit note splits
    "theory": THEORY_WEIGHTS,
    **{name: {name: 1.0} for name in PARTS},
}


def _share_of(name: str, line: Line) -> float:
    """What the piece reward divides part ``name``'s count by (1: not a share)."""
    n = len(line)
    if name in ("key", "repetition", "motifs"):
        return float(max(n, 1))
    if name == "intervals":
        return float(max(n - 1, 1))
    if name == "leaps":
        return float(max(leaps(line)[1], 1))
    return 1.0


def motif_match(line: Line, pitches: int = MOTIF_PITCHES) -> int:
    """The notes of a partial piece's last bar when its rhythm and intervals so far are a
    proper beginning of an earlier motif bar's (the bar is on its way to repeating that
    motif), else 0: the potential of :func:`note_rewards`' motif shaping. A bar that matches
    a whole earlier motif is counted by :func:`motifs` instead."""
    bars = _bars(line)
    if len(bars) < 2:
        return 0
    last = bars[-1]
    m = len(last)
    offsets, steps = line.offset[last].tolist(), np.diff(line.pitch[last]).tolist()
    longer = False
    for idx in bars[:-1]:
        if len(idx) < m or len(np.unique(line.pitch[idx])) < pitches:
            continue
        if (
            line.offset[idx[:m]].tolist() == offsets
            and np.diff(line.pitch[idx[:m]]).tolist() == steps
        ):
            if len(idx) == m:
                return 0  # a whole repeat already
            longer = True
    return m if longer else 0


def note_rewards(
    piece: Score | Line, weights: dict[str, float] | None = None, shaping: bool = False
) -> np.ndarray:
    """Each note's reward ``[n]`` (RL Tuner's per-note credit): the rules evaluated on the
    partial piece when the note is written. For each part (:data:`COUNTS`), note ``k`` gets
    the change it makes to the part's event count on the partial piece (a note out of key
    -1, an excessive repeat -1, a leap it leaves unresolved -1, a same-interval run's excess
    -1, 0.5 for each note that joins a motif or a repeated motif, 0.5 for a tonic start;
    the last note 0.5 more for ending on the tonic), divided by what the piece reward takes
    the part as a share of (the piece's notes, intervals or judged leaps) and weighted
    (``weights`` by part, default :data:`THEORY_WEIGHTS`). So the notes' rewards add up to
    the piece's reward (:func:`theory_reward` for the default weights), and writing more
    notes earns nothing by itself.

    ``shaping``: motif shaping as well (with the ``motifs`` part), a potential-based
    (Ng et al. 1999) denser credit for repeating a motif: each note that keeps its bar on
    the way to an earlier motif bar's rhythm and intervals (:func:`motif_match`) earns what
    a note of a repeated motif earns, and the note that leaves that way (or the end of the
    piece) gives it all back; the bar that completes the repeat is then credited by the
    rule itself. The shaping adds up to 0 over a piece, so the sum is still the piece's
    reward."""
    line = line_of(piece)
    weights = THEORY_WEIGHTS if weights is None else weights
    n = len(line)
    out = np.zeros(n)
    for name, w in weights.items():
        per_event, count = COUNTS[name]
        counts = np.array([count(prefix(line, k)) for k in range(n + 1)], dtype=float)
        out += w * per_event * np.diff(counts) / _share_of(name, line)
    if n and "tonic" in weights:
        out[-1] += weights["tonic"] * 0.5 * ends_on_tonic(line)
    if n and shaping and "motifs" in weights:
        unit = weights["motifs"] * COUNTS["motifs"][0] / _share_of("motifs", line)
        potential = np.array([motif_match(prefix(line, k)) for k in range(n + 1)], dtype=float)
        out += unit * np.diff(potential)
        out[-1] -= unit * potential[-1]
    return out


LOCAL_PARTS = ("key", "repetition", "leaps", "intervals")  # judged by a note and those before


def next_note_rewards(
    line: Line,
    pitches: np.ndarray,
    weights: dict[str, float],
    whole: Line,
    shares: bool = True,
) -> np.ndarray:
    """The reward ``[len(pitches)]`` each candidate pitch would earn as the next note after
    the partial piece ``line``, by the parts of ``weights`` that a note's own pitch and the
    notes before it decide (:data:`LOCAL_PARTS`; others are ignored): what
    :func:`note_rewards` would give it, the shares taken from ``whole`` (the piece drawn)
    and the key being ``line``'s. ``musegen train rl --candidates`` credits every pitch the
    policy could have written with these. ``shares=False``: each broken rule counts ``-w``
    itself, not divided by what the piece reward takes the part as a share of (``--rule-tilt``
    takes these as log-factors)."""
    pitches = np.asarray(pitches, dtype=np.int64)
    out = np.zeros(len(pitches))
    n = len(line)
    last = int(line.pitch[-1]) if n else None
    for name in LOCAL_PARTS:
        w = weights.get(name, 0.0)
        if not w:
            continue
        events = np.zeros(len(pitches))
        if name == "key" and line.key is not None:
            tonic, minor = line.key
            scale = np.array(MINOR_PCS if minor else MAJOR_SCALE)
            events = (~np.isin((pitches - tonic) % 12, scale)).astype(float)
        elif name == "repetition" and last is not None:
            run = equal_runs(line.pitch)[-1][1]
            events = ((pitches == last) & (run >= MAX_REPEATS)).astype(float)
        elif name == "leaps" and n >= 2:
            leap = int(line.pitch[-1] - line.pitch[-2])
            if abs(leap) >= LEAP:
                step = pitches - last
                resolved = (step != 0) & ((step > 0) != (leap > 0)) & (np.abs(step) <= abs(leap))
                events = (~resolved).astype(float)
        elif name == "intervals" and n >= 2:
            start, run = equal_runs(line.intervals)[-1]
            d = int(line.intervals[start])
            if d != 0 and run >= INTERVAL_RUN:
                events = (pitches - last == d).astype(float)
        out += w * COUNTS[name][0] * events / (_share_of(name, whole) if shares else 1.0)
    return out


def load_reward(spec: str) -> Reward:
    """One reward: a name of :data:`REWARDS`, ``module:function`` (importable) or
    ``path/to/file.py:function``; the function takes a :class:`~musegen.score.Score` and
    returns a number."""
    spec = spec.strip()
    if spec in REWARDS:
        return REWARDS[spec]
    if ":" not in spec:
        raise MusegenError(
            f"unknown reward {spec!r}: give one of {', '.join(REWARDS)}, module:function or "
            "file.py:function"
        )
    where, _, name = spec.rpartition(":")
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise MusegenError(f"reward {spec!r}: no file {where}")
            loader = importlib.util.spec_from_file_location(f"musegen_reward_{path.stem}", path)
            if loader is None or loader.loader is None:
                raise MusegenError(f"reward {spec!r}: cannot load {where}")
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except MusegenError:
        raise
    except Exception as e:  # the user's module: any error while importing it
        raise MusegenError(
            f"reward {spec!r}: cannot import {where} ({type(e).__name__}: {e})"
        ) from e
    fn = getattr(module, name, None)
    if not callable(fn):
        raise MusegenError(f"reward {spec!r}: {where} has no function {name!r}")
    return fn


def load_rewards(specs: str) -> list[tuple[str, Reward]]:
    """``--reward`` (comma-separated specs, see :func:`load_reward`) as (spec, function)."""
    names = [s.strip() for s in specs.split(",") if s.strip()]
    if not names:
        raise MusegenError("--reward names no reward: give e.g. theory or key,tonic")
    return [(name, load_reward(name)) for name in names]


def total_reward(rewards: Sequence[tuple[str, Reward]], score: Score) -> dict[str, float]:
    """Each reward's value for ``score`` and their sum (``total``); a reward that fails or
    returns no finite number is a one-line error naming it."""
    out: dict[str, float] = {}
    for name, fn in rewards:
        try:
            value = float(fn(score))
        except (TypeError, ValueError) as e:
            raise MusegenError(f"reward {name} did not return a number ({e})") from e
        if not np.isfinite(value):
            raise MusegenError(f"reward {name} returned {value} (not a finite number)")
        out[name] = value
    out["total"] = float(sum(out[name] for name, _ in rewards))
    return out
