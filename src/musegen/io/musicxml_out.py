"""A :class:`~musegen.score.Score` as a MusicXML 4.0 (partwise) document, written directly.

The score must already be on its notation grid (:func:`musegen.io.music21.write_musicxml`
snaps it); :mod:`musegen.io.measures` lays out bars, voices, ties, rests, beams and
accidentals, and this module turns that layout into elements. Each note and each bar is
visited a fixed number of times, so writing time grows linearly with length. The same score
always gives the same bytes (no dates, no random ids).

What is written: one part per track (an empty score gets one empty part), named as
:func:`~musegen.io._common.name_for_track` says, else by its General MIDI instrument (names
from the caller: :mod:`musegen.io.music21` passes music21's, so a file reads back with the part
names it always had, and this module imports no music21), with that instrument's MIDI
program and a channel (10 for drums); a clef chosen from the part's range (treble-8vb for a
tenor voice); key, time signatures and (in the first part) tempo marks where they change;
every note's velocity as MusicXML's ``dynamics`` (percent of forte, velocity 90).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator

import numpy as np

from musegen.errors import MusegenError
from musegen.io._common import name_for_track
from musegen.io.measures import (
    Bar,
    Event,
    Layout,
    clef_for,
    lay_out_bars,
    lay_out_track,
    speller,
)
from musegen.score import FERMATA, KeySignature, Score, Tempo, Track

HEADER = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 4.0 Partwise//EN" '
    b'"http://www.musicxml.org/dtds/partwise.dtd">\n'
)
DRUM_CHANNEL = 10  # 1-based, as MusicXML counts
FORTE = 90  # the velocity of dynamics="100"


InstrumentNames = Callable[[int], tuple[str | None, str | None, bool]]
"""General MIDI program -> (name, abbreviation, percussion?)."""


def musicxml_document(
    score: Score, *, title: str = "Untitled", instruments: InstrumentNames | None = None
) -> bytes:
    """``score`` (on its grid) as MusicXML bytes, UTF-8, indented two spaces.

    ``instruments`` names a track's instrument from its program (without it, a part with no
    track name is called "Track N").
    """
    import musegen

    root = ET.Element("score-partwise", version="4.0")
    ET.SubElement(ET.SubElement(root, "work"), "work-title").text = title
    ET.SubElement(root, "movement-title").text = title
    encoding = ET.SubElement(ET.SubElement(root, "identification"), "encoding")
    ET.SubElement(encoding, "software").text = f"musegen {musegen.__version__}"
    for element in ("accidental", "beam", "stem"):
        ET.SubElement(encoding, "supports", element=element, type="yes")
    part_list = ET.SubElement(root, "part-list")
    tracks = score.tracks or [Track()]
    layout = lay_out_bars(score)
    spell = speller(score)
    fermatas = {
        m.time // layout.unit
        for m in score.markers
        if m.text == FERMATA and m.time % layout.unit == 0
    }
    for index, (track, channel) in enumerate(zip(tracks, _channels(tracks), strict=True)):
        _check_octaves(track, index, score.tpq)
        pid = f"P{index + 1}"
        _score_part(part_list, pid, track, index, channel, bool(score.tracks), instruments)
        bars = lay_out_track(track.notes, layout, spell)
        part = ET.SubElement(root, "part", id=pid)
        events = _map_events(score, layout, with_tempo=index == 0)
        _write_bars(part, bars, layout, track, events, fermatas)
    ET.indent(root, "  ")
    return HEADER + ET.tostring(root, encoding="unicode").encode() + b"\n"


def _check_octaves(track: Track, index: int, tpq: int) -> None:
    """MusicXML's octaves run 0 to 9: a note under C0 (MIDI 0-11) cannot be written."""
    low = track.notes["pitch"] < 12
    if low.any():
        first = int(np.flatnonzero(low)[0])
        pitch, start = int(track.notes["pitch"][first]), int(track.notes["start"][first])
        name = track.name or f"track {index + 1}"
        raise MusegenError(
            f"{name}: MIDI pitch {pitch} at beat {start / tpq + 1:g} lies under C0, the "
            "lowest note MusicXML can write (write MIDI, or transpose the track)"
        )


# --------------------------------------------------------------------------- parts
def _channels(tracks: list[Track]) -> Iterator[int]:
    """MIDI channels (1-based): 10 for drums, the others in turn for the rest."""
    free = [c for c in range(1, 17) if c != DRUM_CHANNEL]
    k = 0
    for t in tracks:
        if t.is_drum:
            yield DRUM_CHANNEL
        else:
            yield free[k % len(free)]
            k += 1


def _score_part(
    part_list: ET.Element,
    pid: str,
    track: Track,
    index: int,
    channel: int,
    real: bool,
    instruments: InstrumentNames | None,
) -> None:
    inst: str | None = None
    abbr: str | None = None
    if track.is_drum:
        inst, abbr = "Percussion", "Perc"
    elif real and instruments is not None:
        inst, abbr, percussion = instruments(track.program)
        if percussion:  # e.g. program 113 (Agogo) on a pitched track: its name alone
            abbr = None
    name = name_for_track(track) or (inst or (f"Track {index + 1}" if real else ""))
    if track.voice:
        abbr = f"{track.voice}."
    sp = ET.SubElement(part_list, "score-part", id=pid)
    ET.SubElement(sp, "part-name").text = name
    if abbr:
        ET.SubElement(sp, "part-abbreviation").text = abbr
    if not real:
        return
    si = ET.SubElement(sp, "score-instrument", id=f"{pid}-I1")
    ET.SubElement(si, "instrument-name").text = inst or name
    if abbr:
        ET.SubElement(si, "instrument-abbreviation").text = abbr
    mi = ET.SubElement(sp, "midi-instrument", id=f"{pid}-I1")
    ET.SubElement(mi, "midi-channel").text = str(channel)
    ET.SubElement(mi, "midi-program").text = str(track.program + 1)


# --------------------------------------------------------------------------- bars
MapEvent = KeySignature | Tempo


def _map_events(score: Score, layout: Layout, *, with_tempo: bool) -> dict[int, list]:
    """Key signatures (and tempo marks) by bar: ``{bar: [(offset, event)]}``.

    Events after the music's end are dropped (there is no bar to hold them), but never
    those at its start.
    """
    out: dict[int, list[tuple[int, MapEvent]]] = {}
    events: list[MapEvent] = list(score.key_signatures)
    if with_tempo:
        events += [t for t in score.tempos if np.isfinite(t.qpm) and t.qpm > 0]
    for e in events:
        if e.time and e.time >= score.end:
            continue
        at = max(e.time, 0) // layout.unit
        b = max(int(np.searchsorted(layout.starts, at, side="right")) - 1, 0)
        out.setdefault(b, []).append((at - int(layout.starts[b]), e))
    return out


def _write_bars(
    part: ET.Element,
    bars: list[Bar],
    layout: Layout,
    track: Track,
    events: dict[int, list],
    fermatas: set[int],
) -> None:
    """The measures of one part; a note that starts where a fermata marker stands (in
    divisions: ``fermatas``) carries the fermata."""
    every_pitch = [
        p for bar in bars for v in bar.voices for e in v if not e.tie_stop for p in e.pitches
    ]  # each note once
    clef = ("G", 2, -1) if track.voice == "T" else clef_for(every_pitch)
    for b, bar in enumerate(bars):
        m = ET.SubElement(part, "measure", number=str(b + 1))
        here = sorted(events.get(b, []), key=lambda oe: (oe[0], isinstance(oe[1], Tempo)))
        keys = [e for off, e in here if off == 0 and isinstance(e, KeySignature)]
        if b == 0 or keys or layout.new_meter[b]:
            attributes = ET.SubElement(m, "attributes")
            if b == 0:
                ET.SubElement(attributes, "divisions").text = str(layout.per_quarter)
            if keys:
                _key(attributes, keys[-1])
            if layout.new_meter[b]:
                time = ET.SubElement(attributes, "time")
                ET.SubElement(time, "beats").text = str(bar.meter.numerator)
                ET.SubElement(time, "beat-type").text = str(bar.meter.denominator)
            if b == 0:
                _clef(attributes, clef)
        for off, e in here:
            if off == 0 and isinstance(e, Tempo):
                _tempo(m, e)
        for number, voice in enumerate(bar.voices, 1):
            if number > 1:
                _duration(ET.SubElement(m, "backup"), bar.length)
            stem = None if len(bar.voices) == 1 else ("up" if number % 2 else "down")
            for event in voice:
                held = bar.start + event.offset in fermatas and not event.tie_stop
                _note(m, event, number, stem, held and bool(event.pitches))
        later = [(off, e) for off, e in here if off > 0]
        if later:  # mid-bar changes: back to the bar's start, then forward to each
            _duration(ET.SubElement(m, "backup"), bar.length)
            pos = 0
            for off, e in later:
                if off > pos:
                    _duration(ET.SubElement(m, "forward"), off - pos)
                    pos = off
                if isinstance(e, Tempo):
                    _tempo(m, e)
                else:
                    _key(ET.SubElement(m, "attributes"), e)
        if b == len(bars) - 1:
            barline = ET.SubElement(m, "barline", location="right")
            ET.SubElement(barline, "bar-style").text = "light-heavy"


def _duration(parent: ET.Element, length: int) -> None:
    ET.SubElement(parent, "duration").text = str(length)


def _key(attributes: ET.Element, key: KeySignature) -> None:
    el = ET.SubElement(attributes, "key")
    ET.SubElement(el, "fifths").text = str(key.key)
    ET.SubElement(el, "mode").text = "minor" if key.minor else "major"


def _clef(attributes: ET.Element, clef: tuple[str, int, int]) -> None:
    sign, line, octave = clef
    el = ET.SubElement(attributes, "clef")
    ET.SubElement(el, "sign").text = sign
    ET.SubElement(el, "line").text = str(line)
    if octave:
        ET.SubElement(el, "clef-octave-change").text = str(octave)


def _tempo(measure: ET.Element, tempo: Tempo) -> None:
    qpm = f"{round(tempo.qpm, 2):.2f}".rstrip("0").rstrip(".")
    direction = ET.SubElement(measure, "direction", placement="above")
    metronome = ET.SubElement(ET.SubElement(direction, "direction-type"), "metronome")
    ET.SubElement(metronome, "beat-unit").text = "quarter"
    ET.SubElement(metronome, "per-minute").text = qpm
    ET.SubElement(direction, "sound", tempo=qpm)


def _note(
    measure: ET.Element, e: Event, voice: int, stem: str | None, fermata: bool = False
) -> None:
    """One ``<note>`` per pitch of ``e`` (``<chord/>`` on all but the first), or a rest.

    Children go in the order MusicXML's schema asks for.
    """
    dynamics = f"{e.velocity * 100 / FORTE:.2f}"
    for k, pitch in enumerate(e.pitches or [None]):
        if pitch is None:
            note = ET.SubElement(measure, "note")
            rest = ET.SubElement(note, "rest")
            if e.whole_bar:
                rest.set("measure", "yes")
        else:
            note = ET.SubElement(measure, "note", dynamics=dynamics)
            if k:
                ET.SubElement(note, "chord")
            step, alter, octave = pitch
            p = ET.SubElement(note, "pitch")
            ET.SubElement(p, "step").text = step
            if alter:
                ET.SubElement(p, "alter").text = str(alter)
            ET.SubElement(p, "octave").text = str(octave)
        _duration(note, e.value.length)
        ties = [t for t, on in (("stop", e.tie_stop), ("start", e.tie_start)) if on and pitch]
        for t in ties:
            ET.SubElement(note, "tie", type=t)
        ET.SubElement(note, "voice").text = str(voice)
        if e.value.type and not e.whole_bar:
            ET.SubElement(note, "type").text = e.value.type
            for _ in range(e.value.dots):
                ET.SubElement(note, "dot")
        if pitch and e.accidentals[k]:
            ET.SubElement(note, "accidental").text = e.accidentals[k]
        if e.value.triplet:
            tm = ET.SubElement(note, "time-modification")
            ET.SubElement(tm, "actual-notes").text = "3"
            ET.SubElement(tm, "normal-notes").text = "2"
        if stem and pitch:
            ET.SubElement(note, "stem").text = stem
        if k == 0:
            for level, kind in e.beams:
                ET.SubElement(note, "beam", number=str(level)).text = kind
        brackets = e.tuplet if k == 0 else ()
        mark = fermata and k == 0  # once per chord
        if ties or brackets or mark:
            notations = ET.SubElement(note, "notations")
            for t in ties:
                ET.SubElement(notations, "tied", type=t)
            if mark:
                ET.SubElement(notations, "fermata", type="upright")
            for t in brackets:
                attrs = {"type": t, "number": "1"}
                if t == "start":
                    attrs["bracket"] = "yes"
                ET.SubElement(notations, "tuplet", attrs)
