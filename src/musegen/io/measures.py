"""A score laid out for notation: bars, voices, note values, ties, rests, beams, accidentals.

Pure Python and numpy (no music21): :mod:`musegen.io.musicxml_out` turns the layout into
MusicXML elements. Each step is one pass over the notes or over the bars, so the time to lay
out a score grows linearly with its length (music21's ``makeNotation`` grows with the square:
34 s for 2,000 bars).

Times here are in *divisions*: ticks divided by the greatest common divisor of every time that
is written, so a score on a 16th-note grid has 4 divisions per quarter (MusicXML's
``<divisions>``). A length is written as the fewest note values that add up to it (dotted
values and triplets included, plain values preferred); a length no value fits is written with
its duration only.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from musegen.score import KeySignature, Score, TimeSignature

TYPES = ("128th", "64th", "32nd", "16th", "eighth", "quarter", "half", "whole", "breve")
"""Note types from the shortest; ``TYPES[i]`` lasts ``2 ** (i - 5)`` quarters."""
_QUARTER = TYPES.index("quarter")
FLAGS = {"eighth": 1, "16th": 2, "32nd": 3, "64th": 4, "128th": 5}
"""Beams (flags) of each beamable type."""
_STEPS = "CDEFGAB"
_SHARP_ORDER, _FLAT_ORDER = "FCGDAEB", "BEADGCF"
# pitch class -> (step, alter): with no key, as music21 spells a MIDI number; in a key with
# sharps (or none) black keys are sharps; in a key with flats they are flats
_DEFAULT = (
    ("C", 0), ("C", 1), ("D", 0), ("E", -1), ("E", 0), ("F", 0),
    ("F", 1), ("G", 0), ("G", 1), ("A", 0), ("B", -1), ("B", 0),
)  # fmt: skip
_SHARPS = tuple({3: ("D", 1), 10: ("A", 1)}.get(pc, s) for pc, s in enumerate(_DEFAULT))
_FLATS = tuple(
    {1: ("D", -1), 6: ("G", -1), 8: ("A", -1)}.get(pc, s) for pc, s in enumerate(_DEFAULT)
)
ACCIDENTALS = {1: "sharp", -1: "flat", 0: "natural"}

Pitch = tuple[str, int, int]  # step, alter, octave
Group = tuple[int, int, list[int], list[int]]  # start, duration, pitches, velocities


# --------------------------------------------------------------------------- note values
@dataclass(frozen=True, slots=True)
class Value:
    """One written duration: a note type with dots, or a triplet of one (3 in the time of 2).

    ``type`` None: no note value fits ``length`` (written with its duration alone).
    """

    length: int  # divisions
    type: str | None
    dots: int = 0
    triplet: bool = False


class Values:
    """Splits lengths (in divisions) into note values, for ``per_quarter`` divisions a quarter.

    The fewest values win; among those, fewer triplets, then fewer dots. Worked out by dynamic
    programming over lengths, grown as longer lengths are asked for; lengths past two breves
    first give up whole breves.
    """

    _RAW = 10**9  # the cost of a length written without a type: only when nothing fits

    def __init__(self, per_quarter: int) -> None:
        self.per_quarter = per_quarter
        self.choices: list[Value] = []
        for i, name in enumerate(TYPES):
            base = Fraction(per_quarter) * Fraction(2) ** (i - _QUARTER)
            for dots in (0, 1, 2):
                length = base * (2 - Fraction(1, 2**dots))
                if length.denominator == 1:
                    self.choices.append(Value(int(length), name, dots))
            if (base * 2 / 3).denominator == 1:
                self.choices.append(Value(int(base * 2 / 3), name, 0, triplet=True))
        self.costs = [10_000 + 100 * v.triplet + v.dots for v in self.choices]
        plain = [v.length for v in self.choices if v.type == "breve" and not v.dots]
        self.breve = plain[0] if plain else None
        self.best = [0]  # cost of writing each length
        self.pick = [-1]  # the value taken first for each length (-1: none / untyped)
        self.cache: dict[int, list[Value]] = {}

    def split(self, length: int) -> list[Value]:
        """Values adding up to ``length`` (> 0), longest first."""
        if length in self.cache:
            return self.cache[length]
        rest, out = length, []
        if self.breve:
            while rest > 2 * self.breve:
                out.append(Value(self.breve, "breve"))
                rest -= self.breve
        self._grow(rest)
        while rest > 0:
            k = self.pick[rest]
            if k < 0:
                out.append(Value(rest, None))
                break
            out.append(self.choices[k])
            rest -= self.choices[k].length
        out.sort(key=lambda v: -v.length)
        if len(self.cache) < 4096:
            self.cache[length] = out
        return out

    def _grow(self, upto: int) -> None:
        best, pick = self.best, self.pick
        for n in range(len(best), upto + 1):
            cost, choice = self._RAW, -1
            for k, v in enumerate(self.choices):
                if v.length <= n and best[n - v.length] + self.costs[k] < cost:
                    cost, choice = best[n - v.length] + self.costs[k], k
            best.append(cost)
            pick.append(choice)


# --------------------------------------------------------------------------- bars
@dataclass(slots=True)
class Event:
    """A note, chord or rest in one voice of one bar (one note value: longer ones are tied)."""

    offset: int  # divisions from the bar's start
    value: Value
    pitches: list[Pitch] = field(default_factory=list)  # empty: a rest
    velocity: int = 64
    tie_stop: bool = False  # goes on from the event before
    tie_start: bool = False  # goes on into the next event
    whole_bar: bool = False  # a rest filling its bar
    accidentals: list[str | None] = field(default_factory=list)  # shown, per pitch
    beams: list[tuple[int, str]] = field(default_factory=list)  # (level, begin|continue|...)
    tuplet: tuple[str, ...] = ()  # "start" and/or "stop" of a triplet bracket


@dataclass(slots=True)
class Bar:
    start: int  # divisions from the start of the score
    length: int
    meter: TimeSignature
    key: KeySignature | None
    voices: list[list[Event]] = field(default_factory=list)  # at least one


@dataclass(slots=True)
class Layout:
    """Bars shared by every track; :func:`lay_out_track` fills each track's own copy."""

    per_quarter: int  # divisions per quarter
    unit: int  # ticks per division
    starts: np.ndarray  # bar starts, divisions
    ends: np.ndarray  # bar ends, divisions
    meters: list[TimeSignature]  # one per bar
    new_meter: list[bool]  # a time signature is written at this bar
    keys: list[KeySignature | None]  # the key in force at each bar's start
    values: Values


def lay_out_bars(score: Score) -> Layout:
    """The bars of ``score`` and the division unit every time of it is a multiple of."""
    tpq = score.tpq
    starts = score.bar_starts()
    meters_at = {m.time: m for m in bar_meters(score)}
    meters, new_meter, current = [], [], TimeSignature(0)
    for b in starts.tolist():
        new_meter.append(b in meters_at or not meters)
        current = meters_at.get(b, current)
        meters.append(current)
    last = int(starts[-1]) + meters[-1].bar_ticks(tpq)
    ends = np.append(starts[1:], last)
    times = [np.array([tpq, last], np.int64), starts]
    for t in score.tracks:
        times += [t.notes["start"], t.notes["duration"]]
    times += [np.array([e.time for e in (*score.key_signatures, *score.tempos)], np.int64)]
    unit = int(np.gcd.reduce(np.concatenate(times).astype(np.int64))) or 1
    keys = [score.key_signature_at(b) for b in starts.tolist()]
    return Layout(tpq // unit, unit, starts // unit, ends // unit, meters, new_meter, keys,
                  Values(tpq // unit))  # fmt: skip


def bar_meters(score: Score) -> list[TimeSignature]:
    """Time signatures that make bars fall where :meth:`Score.bar_starts` puts them.

    A meter change in mid-bar ends that bar early; notation needs a meter for such a short
    bar, so it gets one of its own (e.g. 1/4 before a change to 3/4 one beat into a 6/8 bar).
    """
    starts = score.bar_starts()
    out: list[TimeSignature] = []
    for i, b in enumerate(starts.tolist()):
        ts = score.time_signature_at(b)
        length = int(starts[i + 1]) - b if i + 1 < len(starts) else ts.bar_ticks(score.tpq)
        want = ts if length == ts.bar_ticks(score.tpq) else _short_bar(length, ts, score.tpq)
        if not out or (out[-1].numerator, out[-1].denominator) != (
            want.numerator,
            want.denominator,
        ):
            out.append(TimeSignature(b, want.numerator, want.denominator))
    return out


def _short_bar(length: int, ts: TimeSignature, tpq: int) -> TimeSignature:
    """A meter exactly ``length`` ticks long, in ``ts``'s beat unit or a finer one."""
    den = ts.denominator
    while (length * den) % (4 * tpq) and den < 128:
        den *= 2
    return TimeSignature(0, max(length * den // (4 * tpq), 1), den)


# --------------------------------------------------------------------------- spelling
def speller(score: Score) -> Callable[[int, int], Pitch]:
    """A function (MIDI pitch, tick) -> (step, alter, octave): black keys are flats in keys
    with flats, sharps in other keys, and as music21 spells them where there is no key."""
    times = np.array([k.time for k in score.key_signatures], dtype=np.int64)
    tables = [_FLATS if k.key < 0 else _SHARPS for k in score.key_signatures]

    def spell(midi: int, tick: int) -> Pitch:
        table = _DEFAULT
        if tables:
            table = tables[max(int(np.searchsorted(times, tick, side="right")) - 1, 0)]
        step, alter = table[midi % 12]
        return step, alter, midi // 12 - 1

    return spell


def key_alters(key: KeySignature | None) -> dict[str, int]:
    """The alteration a key signature gives each step."""
    if key is None or key.key == 0:
        return {}
    order = _SHARP_ORDER if key.key > 0 else _FLAT_ORDER
    sign = 1 if key.key > 0 else -1
    return {step: sign for step in order[: abs(key.key)]}


def clef_for(pitches: list[Pitch]) -> tuple[str, int, int]:
    """(sign, line, octave change) of the clef whose staff suits these pitches best.

    The mean staff height (diatonic steps from C0), with notes far above or below weighing
    more, picks treble 8va, treble, bass or bass 8vb.
    """
    if not pitches:
        return "G", 2, 0
    total = 0
    for step, _, octave in pitches:
        height = 7 * octave + _STEPS.index(step) + 1  # middle C: 29
        total += height + (3 if height > 33 else -3 if height < 24 else 0)
    mean = total / len(pitches)
    if mean > 49:
        return "G", 2, 1
    if mean > 28:
        return "G", 2, 0
    return ("F", 4, 0) if mean > 10 else ("F", 4, -1)


# --------------------------------------------------------------------------- voices
def note_voices(notes: np.ndarray) -> list[list[Group]]:
    """Chords (same onset and duration) dealt into voices that never overlap: each to the
    lowest-numbered voice free at its onset (two heaps, so many voices stay cheap).

    A chord's velocity list keeps each note's; the writer gives the chord their mean.
    """
    groups: dict[tuple[int, int], Group] = {}
    for s, d, p, v in zip(
        notes["start"].tolist(),
        notes["duration"].tolist(),
        notes["pitch"].tolist(),
        notes["velocity"].tolist(),
        strict=True,
    ):
        g = groups.setdefault((s, d), (s, d, [], []))
        g[2].append(p)
        g[3].append(v)
    voices: list[list[Group]] = []
    busy: list[tuple[int, int]] = []  # (end, voice) of voices still sounding
    free: list[int] = []  # voices that have ended, lowest first
    for g in sorted(groups.values(), key=lambda g: (g[0], -max(g[2]))):
        while busy and busy[0][0] <= g[0]:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            v = heapq.heappop(free)
        else:
            v = len(voices)
            voices.append([])
        voices[v].append(g)
        heapq.heappush(busy, (g[0] + g[1], v))
    return voices or [[]]


def lay_out_track(
    notes: np.ndarray, layout: Layout, spell: Callable[[int, int], Pitch]
) -> list[Bar]:
    """One track's bars: each voice sounding in a bar, filled with rests, beamed, with the
    accidentals a reader needs. A bar where nothing sounds holds one whole-bar rest."""
    u = layout.unit
    starts, ends = layout.starts, layout.ends
    # bar -> voice -> [(offset, length, pitches, velocity, tie_stop, tie_start)]
    spans: dict[int, dict[int, list[tuple]]] = {}
    for v, groups in enumerate(note_voices(notes)):
        for start, dur, midis, vels in groups:
            a, end = start // u, (start + dur) // u
            pitches = [spell(m, start) for m in sorted(midis)]
            velocity = round(sum(vels) / len(vels))
            b = int(np.searchsorted(starts, a, side="right")) - 1
            pos = a
            while pos < end:
                stop = min(end, int(ends[b]))
                span = (pos - int(starts[b]), stop - pos, pitches, velocity, pos > a, stop < end)
                spans.setdefault(b, {}).setdefault(v, []).append(span)
                pos, b = stop, b + 1
    bars = []
    for b in range(len(starts)):
        length = int(ends[b] - starts[b])
        bar = Bar(int(starts[b]), length, layout.meters[b], layout.keys[b])
        voices = spans.get(b, {})
        for v in sorted(voices):
            bar.voices.append(_voice_events(voices[v], length, layout))
        if not bar.voices:
            bar.voices.append([Event(0, Value(length, None), whole_bar=True)])
        _mark_accidentals(bar)
        beat = _beam_beat(bar.meter, layout.per_quarter)
        for events in bar.voices:
            _mark_tuplets(events, layout.per_quarter)
            _mark_beams(events, beat)
        bars.append(bar)
    return bars


def _voice_events(spans: list[tuple], length: int, layout: Layout) -> list[Event]:
    """A voice's notes in one bar as events, the gaps filled with rests."""
    out: list[Event] = []
    pos = 0
    for offset, span, pitches, velocity, tie_stop, tie_start in spans:
        if offset > pos:
            out += _rests(pos, offset - pos, layout.values)
        values = layout.values.split(span)
        at = offset
        for i, value in enumerate(values):
            out.append(
                Event(
                    at,
                    value,
                    pitches,
                    velocity,
                    tie_stop=tie_stop or i > 0,
                    tie_start=tie_start or i < len(values) - 1,
                )
            )
            at += value.length
        pos = offset + span
    if pos < length:
        out += _rests(pos, length - pos, layout.values)
    return out


def _rests(offset: int, length: int, values: Values) -> list[Event]:
    out = []
    for value in values.split(length):
        out.append(Event(offset, value))
        offset += value.length
    return out


def _mark_accidentals(bar: Bar) -> None:
    """Show an accidental where a note's alteration differs from what the key signature or
    an earlier note of that step and octave in the bar set; tied-over notes show none."""
    alters = key_alters(bar.key)
    state: dict[tuple[str, int], int] = {}
    timeline = sorted(
        ((e.offset, v, i) for v, events in enumerate(bar.voices) for i, e in enumerate(events)),
    )
    for _, v, i in timeline:
        event = bar.voices[v][i]
        if not event.pitches:
            continue
        shown: list[str | None] = []
        for step, alter, octave in event.pitches:
            current = state.get((step, octave), alters.get(step, 0))
            if event.tie_stop or alter == current:
                shown.append(None)
            else:
                shown.append(ACCIDENTALS[alter])
                state[(step, octave)] = alter
        event.accidentals = shown


def _beam_beat(meter: TimeSignature, per_quarter: int) -> int | None:
    """Divisions of one beam group: a dotted beat in compound meters, else a quarter."""
    unit = Fraction(4 * per_quarter, meter.denominator)
    beat = (
        3 * unit if meter.denominator >= 8 and meter.numerator % 3 == 0 else Fraction(per_quarter)
    )
    return int(beat) if beat.denominator == 1 and beat > 0 else None


def _mark_beams(events: list[Event], beat: int | None) -> None:
    """Beam runs of two or more eighths (or shorter) within one beat and one triplet bracket
    (or none); rests break a run."""
    if beat is None:
        return
    run: list[Event] = []
    for e in events:
        fits = (
            bool(e.pitches)
            and e.value.type in FLAGS
            and e.offset // beat == (e.offset + e.value.length - 1) // beat
        )
        if (
            fits
            and run
            and run[-1].offset // beat == e.offset // beat
            and _same_bracket(run[-1], e)
        ):
            run.append(e)
            continue
        if len(run) > 1:
            _beam(run)
        run = [e] if fits else []
    if len(run) > 1:
        _beam(run)


def _same_bracket(a: Event, b: Event) -> bool:
    """Whether ``b`` right after ``a`` is inside the same triplet bracket, or both outside one
    (a beam that mixes the two makes verovio stretch the bracket over the whole beam)."""
    if a.value.triplet != b.value.triplet:
        return False
    return not a.value.triplet or ("stop" not in a.tuplet and "start" not in b.tuplet)


def _beam(run: list[Event]) -> None:
    flags = [FLAGS[e.value.type] for e in run]  # type: ignore[index]
    for i, e in enumerate(run):
        for level in range(1, flags[i] + 1):
            before = i > 0 and flags[i - 1] >= level
            after = i < len(run) - 1 and flags[i + 1] >= level
            if before and after:
                kind = "continue"
            elif before:
                kind = "end"
            elif after:
                kind = "begin"
            else:
                kind = "forward hook" if i == 0 else "backward hook"
            e.beams.append((level, kind))


def _mark_tuplets(events: list[Event], per_quarter: int) -> None:
    """Bracket runs of triplet values; a bracket closes on each quarter-note beat. A lone
    triplet value gets a bracket of its own (verovio reads no triplet without one)."""
    run: list[Event] = []
    for i, e in enumerate(events):
        if not e.value.triplet:
            continue
        run.append(e)
        end = e.offset + e.value.length
        if i == len(events) - 1 or not events[i + 1].value.triplet or end % per_quarter == 0:
            run[0].tuplet += ("start",)
            run[-1].tuplet += ("stop",)
            run = []
