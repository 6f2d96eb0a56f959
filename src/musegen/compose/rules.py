"""Species counterpoint in the manner of Fux, by generate-and-test with backtracking.

Like Hiller and Isaacson's Illiac Suite, notes are proposed one at a time (in a random,
seeded order that prefers small steps) and each is tested against the rules at once; a note
that breaks one is replaced, and a dead end backs up to the previous note. The search has a
step and a time limit and says when it gave up.

The rules, for a counterpoint (CP) above or below a cantus firmus (CF), one note per CF note
(first species) or two half notes per CF note with a whole note at the end (second species):

* **harmony** — every CP note on a downbeat makes a consonance with the CF (unison, 3rds,
  P5, 6ths, octaves and their compounds); an upbeat (2nd species) is consonant or a passing
  tone, approached and left by step in one direction; no unison except at the ends; the
  voices never cross and stay within a tenth;
* **beginning and end** — the first interval is P1/P5/P8 (P1/P8 below the CF), the last is
  P1/P8 on the tonic, reached by step in contrary motion to the CF; a 7th degree there is
  the leading tone (raised in minor);
* **motion** — no consecutive perfect intervals of one kind (parallel or contrary fifths,
  octaves, unisons), in 2nd species also not on successive downbeats; no perfect interval
  reached by similar motion (hidden fifths/octaves); at most three thirds or sixths in a row;
* **melody** — diatonic (natural minor; the raised 6th and 7th only in the rise to the final:
  a raised 6th goes up to the leading tone, and the note before the final is never the
  lowered 7th), no repeated notes, only steps, 3rds, 4ths, 5ths, the rising minor 6th and the
  octave (no augmented or diminished interval); a leap of a 4th or more turns back, one of a
  5th or more by step; no three leaps in a row in one direction; range at most a tenth; a
  single climax (the highest note occurs once, neither first nor last); no swinging between
  two notes (x y x y).

A generated CF follows the melodic rules too (diatonic, no pitch more than three times),
starts and ends on the tonic and falls to it from the 2nd degree, which it reaches from
above (so that a counterpoint below it can cadence too). A given CF only has to end on the
tonic (with 4..32 notes); :func:`check_cantus` lists its other departures from the rules.
:func:`check_counterpoint` lists every broken rule of a finished piece.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from musegen.compose.melody import melody_line
from musegen.compose.scores import build_score
from musegen.compose.search import Budget, SearchGaveUp, make_rng
from musegen.errors import MusegenError
from musegen.score import Score, pitch_name
from musegen.theory import C_MAJOR, Key, key_name, leading_tone, scale_pcs

CONSONANT = frozenset({0, 3, 4, 7, 8, 9})
PERFECT = frozenset({0, 7})
THIRDS, SIXTHS = frozenset({3, 4}), frozenset({8, 9})
MAX_SPREAD = 16  # a tenth, between the voices and across the CP's range
# (generic size in scale steps, semitones) of the melodic intervals allowed, both directions
MELODIC = frozenset({(1, 1), (1, 2), (2, 3), (2, 4), (3, 5), (4, 7), (7, 12)})
RISING_MINOR_SIXTH = (5, 8)
MIN_CANTUS, MAX_CANTUS = 4, 32
RESTART_STEPS = 500


# --------------------------------------------------------------------------- pitch helpers
class Scale:
    """Diatonic degree numbers of pitches in a key (the raised 7th counts as the 7th)."""

    def __init__(self, key: Key) -> None:
        self.key = key
        self.pcs = [int(x) for x in scale_pcs(key)]
        rel = [(pc - key[0]) % 12 for pc in self.pcs]
        self._index = [max(i for i, r in enumerate(rel) if r <= x) for x in range(12)]
        self.leading = leading_tone(key)

    def degree(self, pitch: int) -> int:
        octave, r = divmod(pitch - self.key[0], 12)
        return octave * 7 + self._index[r]

    def diatonic(self, pitch: int) -> bool:
        return pitch % 12 in self.pcs

    def pitches(self, low: int, high: int) -> list[int]:
        return [p for p in range(low, high + 1) if p % 12 in self.pcs]


def melodic_ok(scale: Scale, a: int, b: int) -> bool:
    """A legal melodic interval: a step, 3rd, 4th, 5th, rising minor 6th or octave."""
    s = b - a
    g = abs(scale.degree(b) - scale.degree(a))
    if (g, abs(s)) in MELODIC:
        return True
    return (g, s) == RISING_MINOR_SIXTH


def _leap_rules(scale: Scale, seq: Sequence[int], k: int) -> str | None:
    """Leap recovery and no three leaps one way, for the interval ending at ``seq[k]``."""
    if k < 2:
        return None
    g1 = scale.degree(seq[k - 1]) - scale.degree(seq[k - 2])
    g2 = scale.degree(seq[k]) - scale.degree(seq[k - 1])
    if abs(g1) >= 3 and g1 * g2 > 0:
        return "leap not followed by a turn"
    if abs(g1) >= 4 and abs(g2) != 1:
        return "leap of a fifth or more not followed by a step back"
    if k >= 3:
        g0 = scale.degree(seq[k - 2]) - scale.degree(seq[k - 3])
        if min(abs(g0), abs(g1), abs(g2)) >= 2 and (g0 > 0) == (g1 > 0) == (g2 > 0):
            return "three leaps in a row in one direction"
    return None


def _oscillates(seq: Sequence[int], k: int) -> bool:
    """Notes ``k-3..k`` swing between two pitches (x y x y)."""
    return k >= 3 and seq[k] == seq[k - 2] and seq[k - 1] == seq[k - 3]


def _climax_ok(seq: Sequence[int]) -> bool:
    top = max(seq)
    return seq.count(top) == 1 and seq[0] != top and seq[-1] != top


# --------------------------------------------------------------------------- cantus firmus
def _unusable(cantus: Sequence[int], key: Key) -> list[str]:
    """Why no counterpoint can be written to this cantus at all (empty if it can)."""
    if not MIN_CANTUS <= len(cantus) <= MAX_CANTUS:
        return [f"length {len(cantus)} outside {MIN_CANTUS}..{MAX_CANTUS}"]
    if cantus[-1] % 12 != key[0]:
        return [f"does not end on the tonic of {key_name(key)}"]
    return []


def check_cantus(cantus: Sequence[int], key: Key) -> list[str]:
    """Broken cantus-firmus rules (empty if none)."""
    scale, cf = Scale(key), list(cantus)
    out = _unusable(cf, key)
    if out:
        return out
    if cf[0] % 12 != key[0]:
        out.append("does not begin on the tonic")
    if scale.degree(cf[-2]) - scale.degree(cf[-1]) != 1:
        out.append("does not fall to the final from the 2nd degree")
    for k, p in enumerate(cf):
        if not scale.diatonic(p):
            out.append(f"note {k + 1} ({pitch_name(p)}) is not in {key_name(key)}")
        if k and not melodic_ok(scale, cf[k - 1], p):
            out.append(f"bad melodic interval into note {k + 1}")
        why = _leap_rules(scale, cf, k)
        if why:
            out.append(f"{why} at note {k + 1}")
        if _oscillates(cf, k) or cf[: k + 1].count(p) > 3:
            out.append(f"monotonous at note {k + 1} (x y x y, or a pitch more than 3 times)")
    if max(cf) - min(cf) > MAX_SPREAD:
        out.append("range wider than a tenth")
    if not _climax_ok(cf):
        out.append("no single climax")
    return out


def generate_cantus(
    key: Key, length: int, rng: np.random.Generator, budget: Budget, tonic_pitch: int
) -> list[int]:
    """A random cantus firmus obeying :func:`check_cantus`, by backtracking."""
    if not MIN_CANTUS <= length <= MAX_CANTUS:
        raise MusegenError(f"cantus length must be {MIN_CANTUS}..{MAX_CANTUS}, got {length}")
    scale = Scale(key)
    pool = scale.pitches(tonic_pitch - 5, tonic_pitch + 12)
    second = next(p for p in pool if scale.degree(p) == scale.degree(tonic_pitch) + 1)
    seq = [tonic_pitch]

    def extend() -> bool:
        budget.tick()
        k = len(seq)
        if k == length:
            return _climax_ok(seq)
        if k == length - 1:
            options = [tonic_pitch]
        elif k == length - 2:
            options = [second]
        elif k == length - 3:  # approach the 2nd degree from above (…3 2 1 or …5 2 1)
            options = [p for p in _ordered(pool, seq[-1], rng) if p > second]
        else:
            options = _ordered(pool, seq[-1], rng)
        for p in options:
            if not melodic_ok(scale, seq[-1], p):
                continue
            seq.append(p)
            fine = (
                max(seq) - min(seq) <= MAX_SPREAD
                and _leap_rules(scale, seq, k) is None
                and not _oscillates(seq, k)
                and seq.count(p) <= 3
            )
            if fine and extend():
                return True
            seq.pop()
        return False

    if not extend():
        raise MusegenError(f"no cantus firmus of length {length} in {key_name(key)}")
    return seq


def _ordered(pool: Sequence[int], prev: int, rng: np.random.Generator) -> list[int]:
    """Candidates in a random order biased towards small intervals from ``prev``."""
    keys = [abs(p - prev) + rng.exponential(3.0) for p in pool]
    return [pool[i] for i in np.argsort(keys)]


def cantus_from_score(score: Score, key: Key | None = None) -> tuple[list[int], Key]:
    """The CF's pitches (top line; rhythm ignored) and its key (default: the final's tonic,
    in the mode whose scale holds more of its notes)."""
    line = melody_line(score, "cantus firmus")
    cf = [int(p) for p in line.pitch]
    if not MIN_CANTUS <= len(cf) <= MAX_CANTUS:
        raise MusegenError(
            f"a cantus firmus needs {MIN_CANTUS}..{MAX_CANTUS} notes, this has {len(cf)}"
        )
    if key is None:
        tonic = cf[-1] % 12
        fit = [sum(p % 12 in scale_pcs((tonic, m)) for p in cf) for m in (False, True)]
        key = (tonic, fit[1] > fit[0])
    fatal = _unusable(cf, key)
    if fatal:
        raise MusegenError(f"cantus firmus in {key_name(key)}: {'; '.join(fatal)}")
    return cf, key


# --------------------------------------------------------------------------- counterpoint
@dataclass
class Counterpoint:
    """A cantus firmus and its counterpoint: notes as (pitch, bar, beat) with beat 0/1."""

    cantus: list[int]
    line: list[tuple[int, int, int]]
    key: Key
    species: int
    above: bool
    seed: int
    steps: int

    def score(self, qpm: float = 160.0, tpq: int = 480) -> Score:
        """Two tracks (counterpoint, cantus firmus) in whole notes (half notes in 2nd species)."""
        bar = 4 * tpq
        n = len(self.cantus)
        cf = ("cantus firmus", np.arange(n) * bar, np.full(n, bar), np.array(self.cantus))
        starts = np.array([b * bar + beat * bar // 2 for _, b, beat in self.line])
        ends = np.append(starts[1:], n * bar)
        cp = ("counterpoint", starts, ends - starts, np.array([p for p, _, _ in self.line]))
        parts = [cp, cf] if self.above else [cf, cp]
        return build_score(parts, tpq=tpq, qpm=qpm, key=self.key, program=52)


class _Search:
    """State of one counterpoint search: slots to fill and the rule tests per new note."""

    def __init__(self, cf: list[int], key: Key, species: int, above: bool) -> None:
        self.cf, self.key, self.species, self.above = cf, key, species, above
        self.scale = Scale(key)
        n = len(cf)
        self.slots = [(i, b) for i in range(n - 1) for b in range(species)] + [(n - 1, 0)]
        self.raised_sixth = (key[0] + 9) % 12

    def interval(self, pitch: int, bar: int) -> int:
        return pitch - self.cf[bar] if self.above else self.cf[bar] - pitch

    def candidates(self, k: int) -> list[int]:
        bar, _ = self.slots[k]
        c = self.cf[bar]
        low, high = (c, c + MAX_SPREAD) if self.above else (c - MAX_SPREAD, c)
        if k == len(self.slots) - 1:
            return [p for p in (c, c + 12, c - 12) if low <= p <= high]
        pitches = self.scale.pitches(low, high)
        last = len(self.slots) - 1
        if self.key[1] and k in (last - 1, last - 2):  # melodic minor rising to the final
            raised = self.scale.leading if k == last - 1 else self.raised_sixth
            extra = [p for p in range(low, high + 1) if p % 12 == raised]
            sub = (self.key[0] - 2) % 12
            pitches = sorted([p for p in pitches if k != last - 1 or p % 12 != sub] + extra)
        return pitches

    def violation(self, seq: list[int], k: int) -> str | None:
        """The first rule broken by note ``k`` of ``seq`` given the notes before it."""
        p = seq[k]
        bar, beat = self.slots[k]
        last = len(self.slots) - 1
        d = self.interval(p, bar)
        if d < 0 or d > MAX_SPREAD:
            return "voices cross or are more than a tenth apart"
        if d == 0 and 0 < k < last:
            return "unison inside the piece"
        if not self.scale.diatonic(p) and not self._raised_ok(seq, k):
            return f"{pitch_name(p)} is not in {key_name(self.key)}"
        consonant = d % 12 in CONSONANT
        if beat == 0 and not consonant:
            return "dissonance on a downbeat"
        if k == 0 and d % 12 not in (PERFECT if self.above else {0}):
            return "does not begin on a perfect consonance"
        if k == last and (d % 12 != 0 or p % 12 != self.key[0]):
            return "does not end on the tonic in unison or octave"
        if k == 0:
            return None
        q = seq[k - 1]
        pbar, pbeat = self.slots[k - 1]
        if self.key[1] and q % 12 == self.raised_sixth and p - q != 2:
            return "raised 6th does not rise to the leading tone"
        if not melodic_ok(self.scale, q, p):
            return f"bad melodic interval {pitch_name(q)}-{pitch_name(p)}"
        why = _leap_rules(self.scale, seq, k)
        if why:
            return why
        if _oscillates(seq, k):
            return "monotonous swing between two notes (x y x y)"
        if max(seq[: k + 1]) - min(seq[: k + 1]) > MAX_SPREAD:
            return "range wider than a tenth"
        dq = self.interval(q, pbar)
        if pbeat == 1 and dq % 12 not in CONSONANT:  # a dissonant upbeat must pass by step
            g1 = self.scale.degree(q) - self.scale.degree(seq[k - 2])
            g2 = self.scale.degree(p) - self.scale.degree(q)
            if abs(g1) != 1 or g1 != g2:
                return "dissonant upbeat that is not a passing tone"
        if bar != pbar:
            cf_move = self.cf[bar] - self.cf[pbar]
            if d % 12 in PERFECT and dq % 12 == d % 12:
                return "consecutive perfect intervals"
            if d % 12 in PERFECT and cf_move * (p - q) > 0:
                return "perfect interval reached by similar motion"
            if self.species == 2 and beat == 0 and bar >= 1:
                down = self.interval(seq[k - 2], bar - 1) if k >= 2 else None
                if down is not None and d % 12 in PERFECT and down % 12 == d % 12:
                    return "consecutive perfect intervals on downbeats"
        if beat == 0 and bar >= 3:
            downs = [self.interval(seq[j], self.slots[j][0]) % 12 for j in self._downbeats(k)]
            if len(downs) >= 4 and (set(downs[-4:]) <= THIRDS or set(downs[-4:]) <= SIXTHS):
                return "more than three thirds or sixths in a row"
        if k == last:
            cf_move = self.cf[bar] - self.cf[pbar]
            if abs(self.scale.degree(p) - self.scale.degree(q)) != 1:
                return "final not reached by step"
            if cf_move * (p - q) > 0:
                return "final not reached in contrary motion"
            if self.scale.degree(q) % 7 == 6 and q % 12 != self.scale.leading:
                return "7th degree before the final is not the leading tone"
            if not _climax_ok(seq):
                return "no single climax"
        return None

    def _raised_ok(self, seq: list[int], k: int) -> bool:
        """Minor only: the leading tone just before the final, the raised 6th just before it."""
        last = len(self.slots) - 1
        pc = seq[k] % 12
        return self.key[1] and (
            (k == last - 1 and pc == self.scale.leading)
            or (k == last - 2 and pc == self.raised_sixth)
        )

    def _downbeats(self, k: int) -> list[int]:
        return [j for j in range(k + 1) if self.slots[j][1] == 0]


def check_counterpoint(
    cantus: Sequence[int],
    line: Sequence[tuple[int, int, int]],
    key: Key,
    species: int = 1,
    above: bool = True,
) -> list[str]:
    """Every rule (of this module's list) that a finished counterpoint breaks."""
    search = _Search(list(cantus), key, species, above)
    if [(b, beat) for _, b, beat in line] != search.slots:
        return ["notes do not fill the bars of the species"]
    seq = [p for p, _, _ in line]
    out = []
    for k in range(len(seq)):
        why = search.violation(seq, k)
        if why:
            out.append(f"note {k + 1} ({pitch_name(seq[k])}): {why}")
    return out


def compose_counterpoint(
    cantus: Sequence[int] | None = None,
    *,
    key: Key = C_MAJOR,
    species: int = 1,
    above: bool = True,
    length: int = 10,
    seed: int | None = None,
    max_steps: int = 200_000,
    max_seconds: float = 10.0,
) -> Counterpoint:
    """A counterpoint to ``cantus`` (MIDI pitches) or to a generated CF of ``length`` notes.

    Raises :class:`~musegen.compose.search.SearchGaveUp` (a MusegenError) when the step or
    time limit runs out, and MusegenError when the search space is exhausted.
    """
    if species not in (1, 2):
        raise MusegenError(f"species must be 1 or 2, got {species}")
    rng, seed = make_rng(seed)
    budget = Budget("counterpoint search", max_steps, max_seconds)
    if cantus is not None:
        cf = [int(p) for p in cantus]
        fatal = _unusable(cf, key)
        if fatal:
            raise MusegenError(f"cantus firmus in {key_name(key)}: {'; '.join(fatal)}")
        found = _solve(cf, key, species, above, rng, budget)
    else:  # a generated CF: give each of up to 8 CFs an equal share of the step limit
        base = 55 if above else 67
        tonic_pitch = base + (key[0] - base) % 12
        found = None
        for _ in range(8):
            cf = generate_cantus(key, length, rng, budget, tonic_pitch)
            share = Budget("one cantus firmus", max_steps // 8, max_seconds)
            try:
                found = _solve(cf, key, species, above, rng, budget, share)
            except SearchGaveUp:
                if budget.steps >= max_steps or budget.elapsed > max_seconds:
                    raise
            if found:
                break
    if not found:
        raise MusegenError(
            f"no {'first' if species == 1 else 'second'}-species counterpoint "
            f"{'above' if above else 'below'} the cantus firmus obeys all the rules"
        )
    return Counterpoint(cf, found, key, species, above, seed, budget.steps)


def _solve(
    cf: list[int],
    key: Key,
    species: int,
    above: bool,
    rng: np.random.Generator,
    *budgets: Budget,
) -> list[tuple[int, int, int]] | None:
    """Depth-first search with randomised restarts (each allowed 1.5x the steps of the last),
    which avoids thrashing deep in one unlucky branch; None if the space is exhausted."""
    search = _Search(cf, key, species, above)
    cap = RESTART_STEPS
    while True:
        seq: list[int] = []
        restart = Budget("restart", cap, float("inf"))
        try:
            if not _fill(search, seq, rng, (*budgets, restart)):
                return None  # the whole space searched without a restart: none exists
        except SearchGaveUp:
            if restart.steps <= cap:
                raise  # an outer limit ran out
            cap = int(cap * 1.5)
            continue
        return [(p, b, beat) for p, (b, beat) in zip(seq, search.slots, strict=True)]


def _fill(
    search: _Search, seq: list[int], rng: np.random.Generator, budgets: tuple[Budget, ...]
) -> bool:
    """Depth-first: extend ``seq`` note by note, testing each against the rules."""
    k = len(seq)
    if k == len(search.slots):
        return True
    pool = search.candidates(k)
    order = _ordered(pool, seq[-1], rng) if seq else [pool[i] for i in rng.permutation(len(pool))]
    for p in order:
        for b in budgets:
            b.tick()
        seq.append(p)
        if search.violation(seq, k) is None and _fill(search, seq, rng, budgets):
            return True
        seq.pop()
    return False


__all__ = [
    "Counterpoint",
    "Scale",
    "cantus_from_score",
    "check_cantus",
    "check_counterpoint",
    "compose_counterpoint",
    "generate_cantus",
    "melodic_ok",
]
