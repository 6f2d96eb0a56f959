"""Four-part (SATB) harmonization of a melody as constraint satisfaction, solved exactly by
dynamic programming (Viterbi) over (chord, voicing) states, one state per beat.

**Slots.** The melody (top line; a polyphonic input is reduced to its top voice) is cut into
beats. A beat where the melody sounds or starts gets one chord; the alto, tenor and bass hold
one note each through it (beats where the melody rests extend the previous chord). The
melody note at the beat's start must be a chord tone (if no chord of the vocabulary holds it,
any chord may be used at a cost of :data:`NON_CHORD_TONE`); melody notes inside the beat are
free (passing tones), but the last of them counts for voice leading into the next beat.

**States.** For each chord of the key's vocabulary (:func:`vocabulary`: diatonic triads, V7,
vii°(7), secondary dominants, a few borrowed chords, each with a harmonic function) every
voicing with: each voice in its range (:data:`RANGES`); no crossing (S ≥ A ≥ T ≥ B); at most
an octave between S-A and A-T and a twelfth between T-B; root and third present (and the
seventh of a seventh chord); the leading tone and a seventh never doubled; root position or
first inversion (a seventh chord also in third inversion; diminished triads only in first).

**Hard rules** (a transition breaking one is impossible): no consecutive perfect fifths or
octaves/unisons between any two voices (parallel or contrary, measured from the last melody
note of a beat to the first of the next); no melodic leap over an octave in A/T/B; a leading
tone in A/T/B of a dominant-function chord rises a semitone when the next chord holds its
resolution; the seventh of a seventh chord falls by step when the chord changes.

**Cost** (minimised; the Viterbi path is the exact optimum of this sum):

* chord: its vocabulary cost (tonic 0, dominant/subdominant 0.3, … secondary dominants ~2),
  plus :data:`NON_CHORD_TONE` when the melody note is not in it;
* progression: a function-to-function cost (T→PD 0.2, T→D 0.3, PD→D 0, PD→T 0.8, …); a
  dominant to its tonic 0, to another dominant 0.3, deceptively to vi/VI 0.8, anywhere else
  (retrogressions) 2.5; a secondary dominant to its target 0, elsewhere 2.5; repeating a
  chord 0.7;
* voicing: first inversion 0.6 (dim triads 0), third inversion 1.5, doubled fifth 0.4,
  doubled third 0.8, missing fifth 0.8, unisons 0.5, 0.01 per semitone from each voice's
  middle, 1.5 if a melody note inside the beat dips below the alto, 1.5 for a dominant
  chord under a melody leading tone that does not rise to the tonic;
* voice leading: 0.1 per semitone moved in A and T, 0.04 in B, 1.5 per A/T leap over a
  fifth, 2 per tritone leap, 3 per augmented second, 1.5 for hidden fifths/octaves in the
  outer voices with a soprano leap, 0.5 if all voices move one way, 1 per voice overlap,
  50 for perfect fifths/octaves between the beats' first melody notes and the lower voices;
* form: a first chord other than the tonic 1.5; the last chord: tonic in root position 0,
  dominant in root position 3, anything else 8; the chord before a final tonic 1 unless
  dominant; at a phrase end (a melody note of two beats or more, or before a rest) 1 unless
  a root-position tonic or dominant.

The DP is bounded (beats × states², at most :data:`MAX_SLOTS` beats) and also has a time
limit; it reports the first beat where no state is reachable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from musegen.compose.melody import melody_line
from musegen.compose.search import SearchGaveUp
from musegen.errors import MusegenError
from musegen.score import Score, Tempo, TimeSignature, Track, make_notes, pitch_name
from musegen.theory import C_MAJOR, Key, find_key, key_of_signature, key_signature, parse_key

RANGES: dict[str, tuple[int, int]] = {"S": (60, 81), "A": (55, 74), "T": (48, 67), "B": (40, 60)}
MAX_SA, MAX_AT, MAX_TB = 12, 12, 19
MAX_SLOTS = 4000
NON_CHORD_TONE = 4.0
REPEAT = 0.7  # cost of keeping the chord on the next beat
CROSSING = 1.5  # cost of a melody note in the beat below the alto
STRAY_LEADING_TONE = 1.5  # a dominant under a melody leading tone that does not resolve
INF = np.inf
SHAPES = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "dom7": (0, 4, 7, 10),
    "dim7": (0, 3, 6, 9),
}


# --------------------------------------------------------------------------- the vocabulary
@dataclass(frozen=True)
class ChordDef:
    """A chord of the vocabulary, relative to the tonic."""

    label: str
    root: int  # semitones above the tonic
    quality: str
    function: str  # T tonic, PD predominant, D dominant, SD secondary dominant, X other
    cost: float
    target: int | None = None  # root (above the tonic) a dominant-function chord resolves to

    def pcs(self, tonic: int) -> tuple[int, ...]:
        return tuple((tonic + self.root + i) % 12 for i in SHAPES[self.quality])

    def leading(self, tonic: int) -> int | None:
        """The chord's leading tone (rises to the target), for dominant functions."""
        if self.target is None:
            return None
        return (tonic + self.target - 1) % 12

    def seventh(self, tonic: int) -> int | None:
        shape = SHAPES[self.quality]
        return (tonic + self.root + shape[3]) % 12 if len(shape) == 4 else None


_MAJOR = (
    ChordDef("I", 0, "maj", "T", 0.0),
    ChordDef("ii", 2, "min", "PD", 0.6),
    ChordDef("iii", 4, "min", "T", 1.5),
    ChordDef("IV", 5, "maj", "PD", 0.3),
    ChordDef("V", 7, "maj", "D", 0.3, 0),
    ChordDef("V7", 7, "dom7", "D", 0.6, 0),
    ChordDef("vi", 9, "min", "T", 0.7),
    ChordDef("vii°", 11, "dim", "D", 1.2, 0),
    ChordDef("vii°7", 11, "dim7", "D", 1.8, 0),
    ChordDef("V/V", 2, "maj", "SD", 1.8, 7),
    ChordDef("V7/V", 2, "dom7", "SD", 2.0, 7),
    ChordDef("V/vi", 4, "maj", "SD", 1.8, 9),
    ChordDef("V7/vi", 4, "dom7", "SD", 2.0, 9),
    ChordDef("V/ii", 9, "maj", "SD", 2.0, 2),
    ChordDef("V7/IV", 0, "dom7", "SD", 2.0, 5),
    ChordDef("V/iii", 11, "maj", "SD", 2.5, 4),
    ChordDef("vii°/V", 6, "dim", "SD", 2.2, 7),
    ChordDef("iv", 5, "min", "PD", 2.2),
    ChordDef("bVI", 8, "maj", "X", 2.8),
    ChordDef("bVII", 10, "maj", "X", 2.8),
)
_MINOR = (
    ChordDef("i", 0, "min", "T", 0.0),
    ChordDef("ii°", 2, "dim", "PD", 0.9),
    ChordDef("III", 3, "maj", "T", 1.2),
    ChordDef("iv", 5, "min", "PD", 0.3),
    ChordDef("V", 7, "maj", "D", 0.3, 0),
    ChordDef("V7", 7, "dom7", "D", 0.6, 0),
    ChordDef("VI", 8, "maj", "T", 0.7),
    ChordDef("VII", 10, "maj", "SD", 1.2, 3),
    ChordDef("vii°", 11, "dim", "D", 1.2, 0),
    ChordDef("vii°7", 11, "dim7", "D", 1.2, 0),
    ChordDef("I", 0, "maj", "SD", 2.0, 5),  # V/iv, or a Picardy third at the end
    ChordDef("V7/iv", 0, "dom7", "SD", 2.2, 5),
    ChordDef("V/V", 2, "maj", "SD", 2.0, 7),
    ChordDef("V7/V", 2, "dom7", "SD", 2.2, 7),
    ChordDef("V7/III", 10, "dom7", "SD", 1.8, 3),
    ChordDef("IV", 5, "maj", "PD", 1.8),
    ChordDef("v", 7, "min", "X", 2.0),
)
_FUNCTION_COST = {
    ("T", "T"): 0.6,
    ("T", "PD"): 0.2,
    ("T", "D"): 0.3,
    ("T", "SD"): 0.5,
    ("T", "X"): 1.0,
    ("PD", "T"): 0.8,
    ("PD", "PD"): 0.4,
    ("PD", "D"): 0.0,
    ("PD", "SD"): 0.6,
    ("PD", "X"): 1.0,
    ("X", "T"): 0.5,
    ("X", "PD"): 0.5,
    ("X", "D"): 0.3,
    ("X", "SD"): 0.8,
    ("X", "X"): 1.2,
}  # fmt: skip  (dominant and secondary-dominant chords: see progression_cost)


def vocabulary(minor: bool) -> tuple[ChordDef, ...]:
    """The chords a harmonization in a major or minor key may use."""
    return _MINOR if minor else _MAJOR


def progression_cost(a: ChordDef, b: ChordDef) -> float:
    """Cost of chord ``b`` following chord ``a`` (see the module docstring)."""
    if a.label == b.label:
        return REPEAT
    if a.function == "SD":  # a secondary dominant goes to its target
        return 0.0 if b.root == a.target else 2.5
    if a.function == "D":
        if b.root == a.target:
            return 0.0
        if b.function == "D":
            return 0.3
        if b.function == "T" and b.root in (8, 9):  # deceptive: V-vi, V-VI
            return 0.8
        return 2.5
    return _FUNCTION_COST[(a.function, b.function)]


def progression_costs(chords: tuple[ChordDef, ...]) -> np.ndarray:
    """``[n, n]`` matrix of :func:`progression_cost`."""
    return np.array([[progression_cost(a, b) for b in chords] for a in chords])


# --------------------------------------------------------------------------- slots and states
@dataclass
class Slot:
    """One beat to harmonize: where it starts and ends, and the melody at its edges."""

    start: int
    end: int
    head: int  # melody pitch at the beat's start (or first in it)
    tail: int  # last melody pitch sounding in the beat
    voices_from: int  # where the lower voices start (the melody's entry on a pickup)
    low: int = 0  # lowest melody pitch in the beat
    phrase_end: bool = False
    stray_leading_tone: bool = False  # the melody's leading tone here does not rise to the tonic


@dataclass
class States:
    """All (chord, voicing) states of one slot, as columns."""

    chord: np.ndarray
    A: np.ndarray
    T: np.ndarray
    B: np.ndarray
    cost: np.ndarray

    def __len__(self) -> int:
        return len(self.chord)


def _slots(line_start, line_dur, line_pitch, beat: int) -> list[Slot]:  # type: ignore[no-untyped-def]
    """Beats that hold melody, with head/tail pitches; rests extend the previous beat."""
    t0 = int(line_start[0]) // beat * beat
    end = int((line_start + line_dur).max())
    n_beats = -(-(end - t0) // beat)
    if n_beats > MAX_SLOTS:
        raise MusegenError(
            f"melody is {n_beats} beats long; the harmonizer takes at most {MAX_SLOTS}"
        )
    ends = line_start + line_dur
    slots: list[Slot] = []
    for k in range(n_beats):
        a, b = t0 + k * beat, t0 + (k + 1) * beat
        inside = np.flatnonzero((line_start < b) & (ends > a))
        if not len(inside):
            if slots:
                slots[-1].end = b
            continue
        first = inside[0]
        head = int(line_pitch[first])
        starts_later = line_start[first] > a
        entry = int(line_start[first]) if starts_later else a
        low = int(line_pitch[inside].min())
        slots.append(Slot(a, b, head, int(line_pitch[inside[-1]]), entry, low))
    for s in slots:  # phrase ends: a melody note of 2+ beats starting here, or a rest after
        here = np.flatnonzero((line_start == s.start) & (line_dur >= 2 * beat))
        s.phrase_end = bool(len(here)) or s.end - s.start > beat
    return slots


@dataclass
class _ChordVoicings:
    """Every (A, T, B) of one chord that fits the ranges, ordering and lower spacing, with
    what the soprano-dependent tests need (computed once per chord and harmonization)."""

    chord: ChordDef
    A: np.ndarray
    T: np.ndarray
    B: np.ndarray
    tones: dict[str, int]  # role -> pitch class (root, third, fifth, seventh, lt, key_lt)
    counts: dict[str, np.ndarray]  # role -> how many of A, T, B hold it
    cost: np.ndarray  # voicing cost without the soprano's part

    @classmethod
    def make(
        cls, chord: ChordDef, tonic: int, ranges: dict[str, tuple[int, int]], key_lt: int
    ) -> _ChordVoicings:
        pcs = chord.pcs(tonic)
        member = np.zeros(12, bool)
        member[list(pcs)] = True

        def voice(name: str) -> np.ndarray:
            p = np.arange(ranges[name][0], ranges[name][1] + 1)
            return p[member[p % 12]]

        A, T, B = (
            x.ravel() for x in np.meshgrid(voice("A"), voice("T"), voice("B"), indexing="ij")
        )
        tones = {"root": pcs[0], "third": pcs[1], "fifth": pcs[2], "key_lt": key_lt}
        if len(pcs) == 4:
            tones["seventh"] = pcs[3]
        lt = chord.leading(tonic)
        if lt is not None:
            tones["lt"] = lt
        bass = B % 12
        ok = (A >= T) & (T >= B) & (A - T <= MAX_AT) & (T - B <= MAX_TB)
        ok &= bass != pcs[2]  # no six-four chords
        if chord.quality == "dim":
            ok &= bass == pcs[1]  # diminished triads in first inversion only
        A, T, B, bass = A[ok], T[ok], B[ok], bass[ok]
        counts = {
            r: (pc == A % 12).astype(int) + (pc == T % 12) + (bass == pc) for r, pc in tones.items()
        }
        cost = np.where(bass == pcs[1], 0.0 if chord.quality == "dim" else 0.6, 0.0)
        if len(pcs) == 4:
            cost += np.where(bass == pcs[3], 1.5, 0.0)
        cost += 0.5 * ((A == T).astype(float) + (T == B))
        mid = {v: sum(ranges[v]) / 2 for v in "ATB"}
        cost += 0.01 * (np.abs(A - mid["A"]) + np.abs(T - mid["T"]) + np.abs(B - mid["B"]))
        return cls(chord, A, T, B, tones, counts, cost)

    def under(self, soprano: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
        """The voicings under ``soprano``, their full voicing costs, and whether the
        soprano is a chord tone."""
        s = soprano % 12
        n = {
            r: c + (pc == s)
            for (r, c), pc in zip(self.counts.items(), self.tones.values(), strict=True)
        }
        ok = (soprano >= self.A) & (soprano - self.A <= MAX_SA) & (n["root"] > 0) & (n["third"] > 0)
        if "seventh" in n:
            ok &= n["seventh"] == 1
        ok &= n["key_lt"] <= 1
        if "lt" in n:
            ok &= n["lt"] <= 1
        cost = self.cost + 0.5 * (soprano == self.A) + np.where(n["fifth"] == 0, 0.8, 0.0)
        if "seventh" not in n:
            cost += np.where(n["fifth"] >= 2, 0.4, 0.0)
            cost += np.where(n["third"] >= 2, 0.3 if self.chord.quality != "maj" else 0.8, 0.0)
        cost += np.where(n["root"] >= 3, 2.0, 0.0)
        in_chord = s in self.chord.pcs(self.tones["root"] - self.chord.root)
        return self.A[ok], self.T[ok], self.B[ok], cost[ok], in_chord


def _slot_states(
    slot: Slot,
    voicings: list[_ChordVoicings],
    key: Key,
    position: str,
) -> States:
    """Every state of one slot with its unigram cost (chord + voicing + form)."""
    tonic = key[0]
    parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    fallback: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for ci, cv in enumerate(voicings):
        A, T, B, vc, in_chord = cv.under(slot.head)
        if not len(A):
            continue
        ch = cv.chord
        c = vc + ch.cost + _form_cost(ch, (tonic + ch.root) % 12 == B % 12, position, slot, key)
        c = c + CROSSING * (slot.low < A)  # a melody note inside the beat dips under the alto
        if slot.stray_leading_tone and ch.function == "D":
            c = c + STRAY_LEADING_TONE
        (parts if in_chord else fallback).append((ci, A, T, B, c))
    if not parts:  # a melody note no chord holds: treat it as a non-chord tone
        parts = [(ci, A, T, B, c + NON_CHORD_TONE) for ci, A, T, B, c in fallback]
    if not parts:
        return States(*(np.zeros(0, np.int64) for _ in range(4)), np.zeros(0))
    return States(
        np.concatenate([np.full(len(p[1]), p[0]) for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] for p in parts]),
        np.concatenate([p[4] for p in parts]),
    )


def _form_cost(
    ch: ChordDef, root_pos: np.ndarray, position: str, slot: Slot, key: Key
) -> np.ndarray:
    """Cost of a chord for where its beat is: first, last, before the last, a phrase end."""
    picardy = key[1] and ch.label == "I"  # a major tonic in a minor key
    tonic = ch.root == 0 and (ch.function == "T" or picardy)
    dominant = ch.root == 7 and ch.function == "D"
    out = np.zeros(len(root_pos))
    if position == "first":
        return out + (0.0 if tonic and not picardy else 1.5)
    if position == "last":
        if tonic:  # a Picardy third costs 0.3 here instead of its vocabulary cost
            return np.where(root_pos, 0.3 - ch.cost if picardy else 0.0, 8.0)
        if dominant and ch.quality == "maj":
            return np.where(root_pos, 3.0, 8.0)
        return out + 8.0
    if position == "penultimate" and ch.function != "D":
        out += 1.0
    if slot.phrase_end:
        preferred = (tonic and not picardy) or dominant
        out += np.where(root_pos, 0.0, 1.0) if preferred else 1.0
    return out


# --------------------------------------------------------------------------- transitions
_HI = np.array([0, 0, 0, 1, 1, 2])  # voice pairs (S-A, S-T, S-B, A-T, A-B, T-B), 0 = S
_LO = np.array([1, 2, 3, 2, 3, 3])


@dataclass
class _Tables:
    """Per-key lookups shared by all transitions of one harmonization."""

    prog: np.ndarray  # [chords, chords] progression cost
    holds: np.ndarray  # [chords, 12] chord holds pitch class
    leading: np.ndarray  # [chords] leading tone pitch class or -1
    seventh: np.ndarray  # [chords] seventh pitch class or -1
    tonic: int
    minor: bool

    @classmethod
    def make(cls, chords: tuple[ChordDef, ...], key: Key) -> _Tables:
        t = key[0]
        holds = np.zeros((len(chords), 12), bool)
        for i, c in enumerate(chords):
            holds[i, list(c.pcs(t))] = True
        lead = [c.leading(t) for c in chords]
        sev = [c.seventh(t) for c in chords]
        return cls(
            progression_costs(chords),
            holds,
            np.array([-1 if x is None else x for x in lead]),
            np.array([-1 if x is None else x for x in sev]),
            t,
            key[1],
        )


def _transition(
    prev: States, cur: States, s_prev: tuple[int, int], s_cur: int, tab: _Tables
) -> np.ndarray:
    """``[len(prev), len(cur)]`` cost of every transition (inf = a hard rule broken).

    ``s_prev`` is the previous slot's (head, tail) melody pitch, ``s_cur`` this slot's head.
    """
    head0, tail0 = s_prev
    n0, n1 = len(prev), len(cur)
    p0 = np.stack([np.full(n0, tail0), prev.A, prev.T, prev.B])  # [4, n0]
    p1 = np.stack([np.full(n1, s_cur), cur.A, cur.T, cur.B])  # [4, n1]
    d = p1[1:, None, :] - p0[1:, :, None]  # [3, n0, n1] motion of A, T, B
    ad = np.abs(d)
    cost = tab.prog[prev.chord[:, None], cur.chord[None, :]]
    cost = cost + 0.1 * (ad[0] + ad[1]) + 0.04 * ad[2]
    cost += 1.5 * (ad[:2] > 7).sum(0) + 2.0 * (ad == 6).sum(0)
    hard = (ad > 12).any(0)
    if tab.minor:  # augmented second between the lowered 6th and the raised 7th
        six, seven = (tab.tonic + 8) % 12, (tab.tonic + 11) % 12
        a, b = (p0[1:] % 12)[:, :, None], (p1[1:] % 12)[:, None, :]
        aug = (ad == 3) & (((a == six) & (b == seven)) | ((a == seven) & (b == six)))
        cost += 3.0 * aug.sum(0)
    # consecutive perfect fifths / octaves between any two voices (hard)
    q = np.abs(p1[_HI] - p1[_LO]) % 12  # [6, n1]; abs: a passing melody note may dip below
    perfect = ((q == 0) | (q == 7))[:, None, :]
    moved_lo = p0[_LO][:, :, None] != p1[_LO][:, None, :]
    moved_hi = p0[_HI][:, :, None] != p1[_HI][:, None, :]
    same = (np.abs(p0[_HI] - p0[_LO]) % 12)[:, :, None] == q[:, None, :]
    hard |= (perfect & same & moved_lo & moved_hi).any(0)
    if head0 != tail0:  # softly, also from the beat's first melody note
        same2 = (np.abs(head0 - p0[_LO[:3]]) % 12)[:, :, None] == q[:3, None, :]
        moved2 = moved_lo[:3] & (head0 != s_cur)
        cost += 50.0 * (perfect[:3] & same2 & moved2).any(0)
    # hidden fifths/octaves in the outer voices with a soprano leap; all voices one way
    ds = s_cur - tail0
    if abs(ds) > 2:
        cost += 1.5 * (perfect[2] & (ds * d[2] > 0))
    if ds:
        cost += 0.5 * ((np.sign(d) == np.sign(ds)).all(0))
    # voice overlap: a voice moving past where its neighbour just was
    cost += (p1[1][None, :] > tail0) + (p1[1][None, :] < p0[2][:, None])
    cost += (p1[2][None, :] > p0[1][:, None]) + (p1[2][None, :] < p0[3][:, None])
    cost += p1[3][None, :] > p0[2][:, None]
    # leading tones rise when the next chord holds their goal; sevenths fall by step (hard)
    lt = tab.leading[prev.chord]
    goal = tab.holds[cur.chord[None, :], ((lt + 1) % 12)[:, None]] & (lt >= 0)[:, None]
    on_lt = (p0[1:] % 12 == lt[None, :])[:, :, None]
    hard |= (on_lt & goal[None] & (d != 1)).any(0)
    sev = tab.seventh[prev.chord]
    change = prev.chord[:, None] != cur.chord[None, :]
    on_sev = ((p0[1:] % 12 == sev[None, :]) & (sev >= 0)[None, :])[:, :, None]
    hard |= (on_sev & change[None] & (d != -1) & (d != -2)).any(0)
    return np.where(hard, INF, cost)


# --------------------------------------------------------------------------- the solver
@dataclass
class Harmonization:
    """A four-part harmonization and how it was found."""

    score: Score
    key: Key
    chords: list[str]  # Roman numeral per harmonized beat
    beat_starts: list[int]
    cost: float
    seconds: float
    states: int  # total states over all beats
    notes: list[str] = field(default_factory=list)  # choices made about the input


def harmonize(
    melody: Score,
    *,
    key: Key | str | None = None,
    ranges: dict[str, tuple[int, int]] | None = None,
    beat: int | None = None,
    fit_octave: bool = True,
    max_seconds: float = 30.0,
) -> Harmonization:
    """Harmonize ``melody`` in four parts (see the module docstring for rules and cost).

    ``key``: '(tonic, minor)' or text like 'G major' (default: the melody's key signature,
    else estimated from the melody, preferring the relative key whose tonic triad holds the
    last note). ``beat``: ticks per harmonized beat (default a quarter note). A melody outside
    the soprano range is moved by octaves when ``fit_octave`` and that makes it fit.
    """
    t_start = time.perf_counter()
    rng = dict(RANGES)
    rng.update(ranges or {})
    for v, (lo, hi) in rng.items():
        if v not in RANGES or not 0 <= lo <= hi <= 127:
            raise MusegenError(
                f"bad range for voice {v!r}: {lo}..{hi} (voices S, A, T, B; MIDI 0..127)"
            )
    line = melody_line(melody)
    notes: list[str] = []
    if line.reduced:
        notes.append("the melody was polyphonic: harmonized its top voice")
    pitch = line.pitch.copy()
    lo, hi = rng["S"]
    if pitch.min() < lo or pitch.max() > hi:
        shift = next(
            (
                o
                for o in (12, -12, 24, -24, 36, -36)
                if pitch.min() + o >= lo and pitch.max() + o <= hi
            ),
            None,
        )
        if shift is None or not fit_octave:
            bad = int(pitch.min() if pitch.min() < lo else pitch.max())
            raise MusegenError(
                f"melody note {pitch_name(bad)} is outside the soprano range "
                f"{pitch_name(lo)}-{pitch_name(hi)}"
                + ("" if shift is None else " (fit_octave is off)")
                + "; transpose the melody or widen the range"
            )
        pitch = pitch + shift
        notes.append(f"moved the melody {shift:+d} semitones into the soprano range")
    key = _choose_key(melody, pitch, line.duration, key)
    beat = beat or melody.tpq
    slots = _slots(line.start, line.duration, pitch, beat)
    lt = (key[0] - 1) % 12
    for a, b in zip(slots, [*slots[1:], None], strict=True):
        nxt = b.head if b is not None else None
        a.stray_leading_tone = a.tail % 12 == lt and nxt not in (a.tail, a.tail + 1)
    chords = vocabulary(key[1])
    tables = _Tables.make(chords, key)
    voicings = [_ChordVoicings.make(c, key[0], rng, (key[0] - 1) % 12) for c in chords]
    n = len(slots)
    states: list[States] = []
    for k, slot in enumerate(slots):
        position = (
            "first" if k == 0 else "last" if k == n - 1 else "penultimate" if k == n - 2 else "mid"
        )
        st = _slot_states(slot, voicings, key, position)
        if not len(st):
            raise MusegenError(
                f"no voicing for the melody note {pitch_name(slot.head)} at beat {k + 1} "
                "within the voice ranges; widen the ranges"
            )
        states.append(st)
    total = states[0].cost.copy()
    back: list[np.ndarray] = []
    for k in range(1, n):
        if time.perf_counter() - t_start > max_seconds:
            raise SearchGaveUp(
                f"harmonizer: gave up after {max_seconds:g} s at beat {k + 1} of {n}"
            )
        edge = (slots[k - 1].head, slots[k - 1].tail)
        m = _transition(states[k - 1], states[k], edge, slots[k].head, tables)
        tot = total[:, None] + m
        arg = np.argmin(tot, axis=0)
        best = tot[arg, np.arange(tot.shape[1])]
        if not np.isfinite(best).any():
            raise MusegenError(
                f"no harmonization obeys the voice-leading rules from beat {k} to beat {k + 1} "
                f"(melody {pitch_name(slots[k - 1].tail)} to {pitch_name(slots[k].head)}); "
                "widen the voice ranges"
            )
        back.append(arg)
        total = best + states[k].cost
    idx = [int(np.argmin(total))]
    cost = float(total[idx[0]])
    for arg in reversed(back):
        idx.append(int(arg[idx[-1]]))
    idx.reverse()
    score = _build(melody, line, pitch, slots, states, idx, key)
    labels = [chords[states[k].chord[i]].label for k, i in enumerate(idx)]
    return Harmonization(
        score,
        key,
        labels,
        [s.start for s in slots],
        cost,
        time.perf_counter() - t_start,
        sum(len(s) for s in states),
        notes,
    )


def harmonize_csp(melody: Score, **options: object) -> Score:
    """Four tracks labelled S/A/T/B harmonizing ``melody`` (see :func:`harmonize`)."""
    return harmonize(melody, **options).score  # type: ignore[arg-type]


def _choose_key(melody: Score, pitch: np.ndarray, dur: np.ndarray, key: Key | str | None) -> Key:
    if isinstance(key, str):
        return parse_key(key)
    if key is not None:
        return Key(int(key[0]) % 12, bool(key[1]))
    if melody.key_signatures:
        return key_of_signature(melody.key_signatures[0])
    w = np.zeros(12)
    np.add.at(w, pitch % 12, dur)
    found = find_key(w) or C_MAJOR
    last = int(pitch[-1]) % 12
    triad = lambda k: {k[0], (k[0] + (3 if k[1] else 4)) % 12, (k[0] + 7) % 12}  # noqa: E731
    if last not in triad(found):
        relative = (
            Key((found[0] - 3) % 12, True) if not found[1] else Key((found[0] + 3) % 12, False)
        )
        if last in triad(relative):
            return relative
    return found


def _build(
    melody: Score,
    line,  # type: ignore[no-untyped-def]
    pitch: np.ndarray,
    slots: list[Slot],
    states: list[States],
    idx: list[int],
    key: Key,
) -> Score:
    tracks = [
        Track(
            make_notes(line.start, line.duration, pitch, 80), program=52, name="Soprano", voice="S"
        )
    ]
    for v, name in (("A", "Alto"), ("T", "Tenor"), ("B", "Bass")):
        starts, durs, pits = [], [], []
        prev_chord, prev_pitch = None, None
        for k, slot in enumerate(slots):
            st, i = states[k], idx[k]
            p = int(getattr(st, v)[i])
            ch = int(st.chord[i])
            if (
                p == prev_pitch
                and ch == prev_chord
                and starts
                and starts[-1] + durs[-1] == slot.start
            ):
                durs[-1] += slot.end - slot.start  # hold a repeated chord tone
            else:
                starts.append(slot.voices_from)
                durs.append(slot.end - slot.voices_from)
                pits.append(p)
            prev_chord, prev_pitch = ch, p
        tracks.append(Track(make_notes(starts, durs, pits, 70), program=52, name=name, voice=v))
    return Score(
        tpq=melody.tpq,
        tracks=tracks,
        tempos=list(melody.tempos) or [Tempo(0, 90.0)],
        time_signatures=list(melody.time_signatures) or [TimeSignature(0)],
        key_signatures=[key_signature(key)],
    )


__all__ = [
    "RANGES",
    "ChordDef",
    "Harmonization",
    "harmonize",
    "harmonize_csp",
    "progression_costs",
    "vocabulary",
]
