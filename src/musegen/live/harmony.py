"""Causal harmony for live playing: the key so far, the chord so far, and alto/tenor/bass under
each melody note, decided when the note comes (nothing after it is known).

* :class:`KeyTracker`: Krumhansl-Schmuckler (:func:`musegen.theory.key_correlations`) on the
  player's pitch classes, each weighted by its length and fading with a half-life of
  ``half_life`` beats; the key changes only when another fits better by ``margin`` (so one
  chromatic note does not flip it), and stays ``default`` until ``min_notes`` have been heard.
* :class:`CausalHarmonizer`: the four-part harmonizer of :mod:`musegen.compose.csp` (its chord
  vocabulary, voicings, costs and hard voice-leading rules), solved greedily one note at a
  time instead of by Viterbi over the whole melody: each new beat's state (chord, A, T, B) is
  the cheapest given the state before it, decided by the beat's first note. Later notes in
  the same beat are free, as in the CSP (passing notes keep the chord and voicing), unless
  one falls under the alto or more than an octave above it: then the beat is voiced again. A melody outside the
  soprano range is harmonized an octave or two in (the lower voices stay in their ranges).
* :func:`detect_chord`: the key's chord (from the same vocabulary) that best covers recent
  pitch-class weights, with the vocabulary's own cost and the progression cost from the last
  chord as tie-breakers (for ``accompany``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musegen.compose import csp
from musegen.theory import KEYS, Key, key_correlations

DEFAULT_KEY = Key(0, False)


@dataclass
class KeyTracker:
    """The key of what the player has played so far (see the module docstring)."""

    default: Key = DEFAULT_KEY
    half_life: float = 16.0  # beats
    margin: float = 0.1
    min_notes: int = 6
    fixed: bool = False  # a key given on the command line: never change it

    def __post_init__(self) -> None:
        self.key = self.default
        self.weights = np.zeros(12)
        self.notes = 0
        self._beat = 0.0

    def add(self, pitch: int, beats: float, at_beat: float) -> Key:
        """Count a note of ``beats`` length that started at ``at_beat``; the key now."""
        self.weights *= 0.5 ** (max(at_beat - self._beat, 0.0) / self.half_life)
        self._beat = max(self._beat, at_beat)
        self.weights[pitch % 12] += max(beats, 0.05)
        self.notes += 1
        if self.fixed or self.notes < self.min_notes:
            return self.key
        r = key_correlations(self.weights)
        best = int(np.argmax(r))
        if KEYS[best] != self.key and r[best] > r[KEYS.index(self.key)] + self.margin:
            self.key = KEYS[best]
        return self.key


@dataclass(frozen=True)
class Voicing:
    chord: str  # Roman numeral in the key
    alto: int
    tenor: int
    bass: int

    @property
    def lower(self) -> tuple[int, int, int]:
        return (self.alto, self.tenor, self.bass)


def fit_soprano(pitch: int) -> int:
    """``pitch`` moved by octaves into the soprano range (nearest first)."""
    lo, hi = csp.RANGES["S"]
    for shift in (0, 12, -12, 24, -24, 36, -36, 48, -48):
        if lo <= pitch + shift <= hi:
            return pitch + shift
    return min(max(pitch, lo), hi)


class _KeyTables:
    """Everything the harmonizer precomputes for one key."""

    def __init__(self, key: Key) -> None:
        self.key = key
        self.chords = csp.vocabulary(key[1])
        self.tables = csp._Tables.make(self.chords, key)
        self.voicings = [
            csp._ChordVoicings.make(c, key[0], csp.RANGES, (key[0] - 1) % 12) for c in self.chords
        ]
        self._states: dict[tuple[int, str], csp.States] = {}

    def states(self, soprano: int, position: str) -> csp.States:
        """Every (chord, voicing) state under ``soprano`` with its cost (kept: a melody uses
        few pitches, and this is most of a note's work)."""
        k = (soprano, position)
        if k not in self._states:
            slot = csp.Slot(0, 1, soprano, soprano, 0, soprano)
            self._states[k] = csp._slot_states(slot, self.voicings, self.key, position)
        return self._states[k]

    def warm(self) -> None:
        """Compute the states of every soprano pitch now (before playing starts)."""
        lo, hi = csp.RANGES["S"]
        for p in range(lo, hi + 1):
            for position in ("first", "mid"):
                self.states(p, position)


class CausalHarmonizer:
    """Alto, tenor and bass under a melody, one note at a time (see the module docstring)."""

    def __init__(self) -> None:
        self._tables: dict[Key, _KeyTables] = {}
        self.key: Key | None = None
        self._state: csp.States | None = None  # one state: the last choice
        self._head = self._tail = 0
        self._beat: int | None = None
        self.current: Voicing | None = None

    def _for(self, key: Key) -> _KeyTables:
        if key not in self._tables:
            self._tables[key] = _KeyTables(key)
        return self._tables[key]

    def warm(self, key: Key) -> None:
        """Precompute what ``key`` needs, so the first notes cost no more than later ones."""
        self._for(key).warm()

    def reset(self) -> None:
        """Forget the last state (after a rest: the next note starts afresh)."""
        self._state, self.current, self._beat = None, None, None

    def note(self, pitch: int, beat: int, key: Key) -> Voicing:
        """The voicing under melody ``pitch`` starting in ``beat`` (an integer beat index)."""
        soprano = fit_soprano(pitch)
        if key != self.key:
            self.key, self._state = key, None
        kt = self._for(key)
        passing = self._state is not None and beat == self._beat and self.current is not None
        if passing and 0 <= soprano - self.current.alto <= csp.MAX_SA:  # type: ignore[union-attr]
            self._tail = soprano  # a passing note in the beat
            return self.current  # type: ignore[return-value]
        position = "first" if self._state is None else "mid"
        states = kt.states(soprano, position)
        if not len(states):  # cannot happen with the default ranges; keep what sounds
            return self.current or Voicing(
                "?", *csp.RANGES["A"][:1], csp.RANGES["T"][0], csp.RANGES["B"][0]
            )
        cost = states.cost
        if self._state is not None:
            move = csp._transition(
                self._state, states, (self._head, self._tail), soprano, kt.tables
            )[0]
            cost = np.where(np.isfinite(move), cost + move, np.inf)
            if not np.isfinite(cost).any():  # every move breaks a hard rule: start afresh
                cost = states.cost
        i = int(np.argmin(cost))
        self._state = csp.States(
            states.chord[i : i + 1],
            states.A[i : i + 1],
            states.T[i : i + 1],
            states.B[i : i + 1],
            states.cost[i : i + 1],
        )
        self._head = self._tail = soprano
        self._beat = beat
        self.current = Voicing(
            kt.chords[int(states.chord[i])].label,
            int(states.A[i]),
            int(states.T[i]),
            int(states.B[i]),
        )
        return self.current


def detect_chord(
    weights: np.ndarray, key: Key, previous: csp.ChordDef | None = None
) -> csp.ChordDef:
    """The chord of ``key``'s vocabulary that best covers pitch-class ``weights``: weight in
    the chord minus half the weight outside, less a tenth of its vocabulary cost and of the
    progression cost from ``previous`` (the tonic when nothing sounds)."""
    chords = csp.vocabulary(key[1])
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum()
    if total <= 0:
        return chords[0]
    w = w / total
    best, best_score = chords[0], -np.inf
    for c in chords:
        member = np.zeros(12, bool)
        member[list(c.pcs(key[0]))] = True
        score = w[member].sum() - 0.5 * w[~member].sum() - 0.1 * c.cost
        if previous is not None:
            score -= 0.1 * csp.progression_cost(previous, c)
        if score > best_score:
            best, best_score = c, score
    return best
