"""A four-part (SATB) voice-leading checker: the textbook rules, with bar and beat of each error.

Input: a score whose tracks are labelled S/A/T/B (or named Soprano/Alto/Tenor/Bass), a score
of exactly four pitched tracks ordered high to low, or a JSB SATB step array ``[T, 4]`` (-1 =
silent voice). The voices are cut into *slices*: the times where any voice starts or stops a
note, each with the pitch every voice sounds there. A *transition* is a pair of neighbouring
slices in which at least one voice moves from one pitch to another; an error of motion is
reported at the slice it moves into. Bars and beats are 1-based, beats in the time signature's
unit (2.5 = the second half of beat 2).

Rules (kinds):

================================  ===========================================================
parallel_fifths / _octaves        two voices a perfect fifth (octave, unison; compound too)
                                  apart move in the same direction to the same interval
hidden_fifths / _octaves          soprano and bass move in the same direction into a fifth
                                  (octave) from another interval, the soprano by leap (> 2)
voice_crossing                    a voice sounds above the voice above it (reported where a
                                  crossing starts)
voice_overlap                     a voice moves past the previous pitch of its neighbour
                                  without crossing it (not when the two leave a unison)
spacing                           more than an octave between S-A or A-T, more than a twelfth
                                  between T-B (reported where the wide spacing starts)
range                             a note outside its voice's range (:data:`VOICE_RANGES`)
unresolved_leading_tone           the soprano's leading tone (in the estimated key), sounding in
                                  a dominant chord (V, V7, vii°, vii°7, viiø7), leaves to a
                                  pitch other than the tonic a semitone up while the harmony
                                  moves off the dominant (reported at the leading tone)
large_leap                        a melodic leap of more than an octave
augmented_interval                a melodic augmented interval: the two pitches spelled in the
                                  key's scale (major, or harmonic minor) are a generic interval
                                  wider than its major/perfect size (e.g. aug 2nd, aug 4th);
                                  leaps to or from chromatic pitches are not judged
================================  ===========================================================

Rates (:class:`VoiceLeadingReport`): errors per 100 beats of the piece and per 100
transitions, for each kind and in total.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from musegen.errors import MusegenError
from musegen.metrics._time import TimeGrid, time_grid
from musegen.metrics.harmony import chords_per_beat
from musegen.score import NOTE_DTYPE, VOICES, Score, Track, pitch_name
from musegen.theory import (
    DOMINANT_QUALITIES,
    HARMONIC_MINOR_SCALE,
    LEADING_TONE_QUALITIES,
    MAJOR_SCALE,
    Key,
    estimate_key,
)

# Ranges after Kostka & Payne, *Tonal Harmony*: S C4-G5, A G3-D5, T C3-G4, B E2-C4.
VOICE_RANGES: dict[str, tuple[int, int]] = {
    "S": (60, 79),
    "A": (55, 74),
    "T": (48, 67),
    "B": (40, 60),
}
MAX_SPACING: dict[tuple[int, int], int] = {(0, 1): 12, (1, 2): 12, (2, 3): 19}
MAX_LEAP = 12
KINDS = (
    "parallel_fifths",
    "parallel_octaves",
    "hidden_fifths",
    "hidden_octaves",
    "voice_crossing",
    "voice_overlap",
    "spacing",
    "range",
    "unresolved_leading_tone",
    "large_leap",
    "augmented_interval",
)
_LARGEST = (0, 2, 4, 5, 7, 9, 11)  # semitones of the unison, major 2nd ... major 7th
_PAIRS = [(i, j) for i in range(4) for j in range(i + 1, 4)]


@dataclass(frozen=True)
class VoiceLeadingError:
    """One broken rule: its kind, the voices involved, where (1-based bar and beat), details."""

    kind: str
    voices: tuple[str, ...]
    bar: int
    beat: float
    tick: int
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "voices": "-".join(self.voices),
            "bar": self.bar,
            "beat": self.beat,
            "detail": self.detail,
        }

    def __str__(self) -> str:
        return (
            f"bar {self.bar} beat {self.beat:g}: {self.kind} {'-'.join(self.voices)} {self.detail}"
        )


@dataclass
class VoiceLeadingReport:
    """The errors of one piece, and the counts that make rates of them."""

    errors: list[VoiceLeadingError] = field(default_factory=list)
    n_beats: int = 0
    n_transitions: int = 0
    key: str = ""

    def counts(self) -> dict[str, int]:
        c = Counter(e.kind for e in self.errors)
        return {k: c.get(k, 0) for k in KINDS}

    def rates_per_100_beats(self) -> dict[str, float]:
        return _rates(self.counts(), self.n_beats)

    def rates_per_100_transitions(self) -> dict[str, float]:
        return _rates(self.counts(), self.n_transitions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "beats": self.n_beats,
            "transitions": self.n_transitions,
            "errors_total": len(self.errors),
            "counts": self.counts(),
            "per_100_beats": self.rates_per_100_beats(),
            "per_100_transitions": self.rates_per_100_transitions(),
            "errors": [e.to_dict() for e in self.errors],
        }


def _rates(counts: dict[str, int], n: int) -> dict[str, float]:
    if n <= 0:
        return {**dict.fromkeys(counts, float("nan")), "total": float("nan")}
    out = {k: 100.0 * v / n for k, v in counts.items()}
    out["total"] = 100.0 * sum(counts.values()) / n
    return out


# ----------------------------------------------------------------------------- input
def four_voices(score: Score) -> list[np.ndarray]:
    """The note arrays of S, A, T, B: tracks labelled so (reading a file labels tracks named
    Soprano, Alto, Tenor, Bass), else exactly four pitched tracks taken as ordered high to low.
    Raises MusegenError otherwise."""
    by_label: dict[str, np.ndarray] = {}
    for t in score.tracks:
        if t.voice and t.voice not in by_label and not t.is_drum:
            by_label[t.voice] = t.notes
    if all(v in by_label for v in VOICES):
        return [by_label[v] for v in VOICES]
    pitched = [t for t in score.tracks if not t.is_drum and len(t)]
    if len(pitched) == 4:
        return [t.notes for t in pitched]
    raise MusegenError(
        "voice leading needs four voices: tracks labelled S/A/T/B (named Soprano, Alto, "
        f"Tenor, Bass) or exactly four pitched tracks; this score has {len(pitched)} pitched "
        "track(s) and no such labels (to deal one track's notes out to four voices: "
        "'musegen evaluate voice-leading --separate', or musegen.voices.separate_voices)"
    )


def steps_score(steps: np.ndarray, steps_per_quarter: int = 4) -> Score:
    """A four-track S/A/T/B score from a JSB SATB step array ``[T, 4]`` (-1 = silent)."""
    from musegen.tokenizers.grid import steps_to_score

    return steps_to_score(steps, steps_per_quarter=steps_per_quarter)


@dataclass
class Slices:
    """Every time a note starts or stops in any voice, and what each voice sounds there."""

    times: np.ndarray  # [K] ticks
    pitch: np.ndarray  # [K, 4] sounding pitch, -1 = silent
    onset: np.ndarray  # [K, 4] a note starts here

    @property
    def moves(self) -> np.ndarray:
        """[K-1, 4] the voice goes from one pitch to another between slice k and k+1."""
        a, b = self.pitch[:-1], self.pitch[1:]
        return (a >= 0) & (b >= 0) & (a != b)


def make_slices(voices: list[np.ndarray]) -> Slices:
    """Cut four voices' notes into slices (see the module docstring)."""
    starts = [v["start"].astype(np.int64) for v in voices]
    ends = [s + v["duration"].astype(np.int64) for s, v in zip(starts, voices, strict=True)]
    times = np.unique(np.concatenate([*starts, *ends, np.zeros(0, np.int64)]))
    pitch = np.full((len(times), 4), -1, np.int64)
    onset = np.zeros((len(times), 4), bool)
    for k, (v, s, e) in enumerate(zip(voices, starts, ends, strict=True)):
        if not len(v):
            continue
        order = np.argsort(s, kind="stable")
        s, e, p = s[order], e[order], v["pitch"][order].astype(np.int64)
        i = np.searchsorted(s, times, side="right") - 1
        ok = (i >= 0) & (times < e[np.maximum(i, 0)])
        pitch[ok, k] = p[i[ok]]
        onset[np.searchsorted(times, s), k] = True
    return Slices(times, pitch, onset)


# ----------------------------------------------------------------------------- rules
Found = list[tuple[str, tuple[int, ...], int, str]]  # kind, voice indices, slice index, detail


def _parallels(sl: Slices) -> Found:
    out: Found = []
    mv = sl.moves
    for i, j in _PAIRS:
        a = np.abs(sl.pitch[:-1, i] - sl.pitch[:-1, j])
        b = np.abs(sl.pitch[1:, i] - sl.pitch[1:, j])
        di = np.sign(sl.pitch[1:, i] - sl.pitch[:-1, i])
        dj = np.sign(sl.pitch[1:, j] - sl.pitch[:-1, j])
        together = mv[:, i] & mv[:, j] & (di == dj)
        for interval, kind in ((7, "parallel_fifths"), (0, "parallel_octaves")):
            hit = together & (a % 12 == interval) & (b % 12 == interval)
            for k in np.flatnonzero(hit):
                what = "unisons" if b[k] == 0 else _interval_name(int(b[k]))
                out.append((kind, (i, j), int(k) + 1, what))
    return out


def _hidden(sl: Slices) -> Found:
    out: Found = []
    s, b = sl.pitch[:, 0], sl.pitch[:, 3]
    mv = sl.moves
    ds, db = np.diff(s), np.diff(b)
    similar = mv[:, 0] & mv[:, 3] & (np.sign(ds) == np.sign(db)) & (np.abs(ds) > 2)
    before, after = np.abs(s[:-1] - b[:-1]) % 12, np.abs(s[1:] - b[1:]) % 12
    for interval, kind in ((7, "hidden_fifths"), (0, "hidden_octaves")):
        hit = similar & (after == interval) & (before != interval)
        for k in np.flatnonzero(hit):
            out.append((kind, (0, 3), int(k) + 1, f"soprano leaps {abs(int(ds[k]))} semitones"))
    return out


def _starts(mask: np.ndarray) -> np.ndarray:
    """Indices where a boolean run begins."""
    return np.flatnonzero(mask & ~np.concatenate([[False], mask[:-1]]))


def _crossing_and_spacing(sl: Slices) -> Found:
    out: Found = []
    p = sl.pitch
    for u in range(3):
        both = (p[:, u] >= 0) & (p[:, u + 1] >= 0)
        crossed = both & (p[:, u + 1] > p[:, u])
        for k in _starts(crossed):
            detail = f"{pitch_name(int(p[k, u + 1]))} above {pitch_name(int(p[k, u]))}"
            out.append(("voice_crossing", (u, u + 1), int(k), detail))
        wide = both & (p[:, u] - p[:, u + 1] > MAX_SPACING[(u, u + 1)])
        for k in _starts(wide):
            out.append(("spacing", (u, u + 1), int(k), f"{int(p[k, u] - p[k, u + 1])} semitones"))
    return out


def _overlaps(sl: Slices) -> Found:
    out: Found = []
    p, mv = sl.pitch, sl.moves
    for u in range(3):
        lo = u + 1
        prev_u, prev_l, new_u, new_l = p[:-1, u], p[:-1, lo], p[1:, u], p[1:, lo]
        crossed = (new_u >= 0) & (new_l > new_u)
        unison = prev_u == prev_l  # voices leaving a unison pass nothing but themselves
        up = mv[:, lo] & (prev_u >= 0) & (new_l > prev_u)
        down = mv[:, u] & (prev_l >= 0) & (new_u < prev_l)
        for k in np.flatnonzero((up | down) & ~crossed & ~unison):
            mover = lo if up[k] else u
            out.append(("voice_overlap", (u, lo), int(k) + 1, f"{VOICES[mover]} moves past"))
    return out


def _ranges(sl: Slices) -> Found:
    out: Found = []
    for v, name in enumerate(VOICES):
        lo, hi = VOICE_RANGES[name]
        p = sl.pitch[:, v]
        bad = sl.onset[:, v] & (p >= 0) & ((p < lo) | (p > hi))
        for k in np.flatnonzero(bad):
            out.append(
                (
                    "range",
                    (v,),
                    int(k),
                    f"{pitch_name(int(p[k]))} outside {pitch_name(lo)}-{pitch_name(hi)}",
                )
            )
    return out


def _melodic_motions(sl: Slices) -> list[tuple[int, int, int, int]]:
    """(voice, slice it arrives at, from pitch, to pitch) of every melodic motion."""
    mv = sl.moves
    out = []
    for v in range(4):
        for k in np.flatnonzero(mv[:, v]):
            out.append((v, int(k) + 1, int(sl.pitch[k, v]), int(sl.pitch[k + 1, v])))
    return out


def _scale_step(pc: int, tonic: int, minor: bool) -> int | None:
    scale = HARMONIC_MINOR_SCALE if minor else MAJOR_SCALE
    rel = (pc - tonic) % 12
    return scale.index(rel) if rel in scale else None


def is_augmented(a: int, b: int, tonic: int, minor: bool) -> bool:
    """Whether the interval between pitches ``a`` and ``b``, spelled in the key's scale, is
    augmented (False when either pitch is outside the scale)."""
    lo, hi = min(a, b), max(a, b)
    s_lo, s_hi = _scale_step(lo % 12, tonic, minor), _scale_step(hi % 12, tonic, minor)
    if s_lo is None or s_hi is None or lo == hi:
        return False
    generic = (s_hi - s_lo) % 7
    return (hi - lo) % 12 > _LARGEST[generic] and (hi - lo) % 12 != 0


def _leaps(sl: Slices, key: tuple[int, bool] | None) -> Found:
    out: Found = []
    for v, k, a, b in _melodic_motions(sl):
        if abs(b - a) > MAX_LEAP:
            out.append(
                ("large_leap", (v,), k, f"{pitch_name(a)}-{pitch_name(b)}: {abs(b - a)} semitones")
            )
        elif key is not None and is_augmented(a, b, *key):
            out.append(("augmented_interval", (v,), k, f"{pitch_name(a)}-{pitch_name(b)}"))
    return out


def _leading_tones(
    sl: Slices, key: tuple[int, bool] | None, dominant_at: np.ndarray, voices: tuple[int, ...]
) -> Found:
    """Leading tones in a dominant chord that leave to something other than the tonic above,
    where the harmony the voice arrives in is no longer dominant."""
    if key is None:
        return []
    out: Found = []
    lt = (key[0] + 11) % 12
    for v in voices:
        p = sl.pitch[:, v]
        for k in np.flatnonzero(sl.onset[:, v] & (p >= 0) & (p % 12 == lt) & dominant_at):
            later = np.flatnonzero(p[k + 1 :] != p[k])
            if not len(later):
                continue
            nxt = k + 1 + int(later[0])
            if p[nxt] < 0 or p[nxt] == p[k] + 1 or dominant_at[nxt]:
                continue
            out.append(
                (
                    "unresolved_leading_tone",
                    (v,),
                    int(k),
                    f"{pitch_name(int(p[k]))} to {pitch_name(int(p[nxt]))}",
                )
            )
    return out


def _dominant_slices(score: Score, sl: Slices, key: tuple[int, bool], grid: TimeGrid) -> np.ndarray:
    """[K] whether the chord of the beat holding each slice is a dominant (V, V7, vii° ...)."""
    chords = chords_per_beat(score, key)
    tonic = key[0]
    dom = np.array(
        [
            c.chord is not None
            and (
                ((c.chord.root - tonic) % 12 == 7 and c.chord.quality in DOMINANT_QUALITIES)
                or ((c.chord.root - tonic) % 12 == 11 and c.chord.quality in LEADING_TONE_QUALITIES)
            )
            for c in chords
        ]
        + [False]
    )
    beat = np.minimum(grid.beat_index(sl.times), len(chords))
    return dom[beat]


# ----------------------------------------------------------------------------- the checker
def check_voice_leading(
    piece: Score | np.ndarray,
    key: tuple[int, bool] | None = None,
    steps_per_quarter: int = 4,
    leading_tone_voices: tuple[str, ...] = ("S",),
) -> VoiceLeadingReport:
    """Check a four-voice piece (see the module docstring) in ``key`` (default: estimated)."""
    score = piece if isinstance(piece, Score) else steps_score(np.asarray(piece), steps_per_quarter)
    voices = four_voices(score)
    satb = Score(
        tpq=score.tpq,
        tracks=[
            Track(np.asarray(v, NOTE_DTYPE), voice=name)
            for v, name in zip(voices, VOICES, strict=True)
        ],
        time_signatures=score.time_signatures,
    )
    sl = make_slices(voices)
    end = int(sl.times.max()) if len(sl.times) else 0
    grid = time_grid(satb, max(end, 1))
    k = key if key is not None else estimate_key(satb)
    kt = None if k is None else Key(*k)
    found: Found = []
    found += _parallels(sl) + _hidden(sl) + _crossing_and_spacing(sl) + _overlaps(sl)
    found += _ranges(sl) + _leaps(sl, kt)
    if kt is not None and len(sl.times):
        dom = _dominant_slices(satb, sl, kt, grid)
        lt_voices = tuple(VOICES.index(v) for v in leading_tone_voices)
        found += _leading_tones(sl, kt, dom, lt_voices)
    errors = _locate(found, sl, grid)
    transitions = int(sl.moves.any(axis=1).sum()) if len(sl.times) > 1 else 0
    key_name = str(kt) if kt is not None else ""
    return VoiceLeadingReport(errors, grid.n_beats if end > 0 else 0, transitions, key_name)


def _locate(found: Found, sl: Slices, grid: TimeGrid) -> list[VoiceLeadingError]:
    if not found:
        return []
    ticks = sl.times[[f[2] for f in found]]
    bars, beats = grid.locate(ticks)
    errors = [
        VoiceLeadingError(
            kind, tuple(VOICES[v] for v in vs), int(bar), round(float(beat), 4), int(t), detail
        )
        for (kind, vs, _, detail), t, bar, beat in zip(found, ticks, bars, beats, strict=True)
    ]
    return sorted(errors, key=lambda e: (e.tick, KINDS.index(e.kind), e.voices))


def _interval_name(semitones: int) -> str:
    if semitones % 12 == 7:
        return "fifths" if semitones == 7 else "compound fifths"
    return "octaves" if semitones == 12 else "compound octaves"


def summarize(reports: list[VoiceLeadingReport]) -> dict[str, Any]:
    """Pooled rates over many pieces: all errors / all beats (and transitions), x 100."""
    counts = Counter()  # type: Counter[str]
    for r in reports:
        counts.update(r.counts())
    beats = sum(r.n_beats for r in reports)
    transitions = sum(r.n_transitions for r in reports)
    full = {k: counts.get(k, 0) for k in KINDS}
    return {
        "pieces": len(reports),
        "beats": beats,
        "transitions": transitions,
        "errors_total": sum(full.values()),
        "counts": full,
        "per_100_beats": _rates(full, beats),
        "per_100_transitions": _rates(full, transitions),
    }
