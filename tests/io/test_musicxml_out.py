"""Our own MusicXML writer: note values, ties, beams, accidentals, a valid document, and the
same notes read back by music21 and by verovio."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from musegen.errors import MusegenError
from musegen.io import load, save
from musegen.io._common import without_overlaps
from musegen.io.measures import (
    Value,
    Values,
    clef_for,
    lay_out_bars,
    lay_out_track,
    note_voices,
    speller,
)
from musegen.io.midi import read_midi
from musegen.io.music21 import _musicxml_to_score, musicxml_bytes
from musegen.score import KeySignature, Note, Score, Tempo, TimeSignature, Track, make_notes
from strategies import assert_same_notes, scores


def q(n: float) -> int:
    """Quarters as ticks at 480 per quarter."""
    return round(n * 480)


def mixed_score() -> Score:
    """Chords, a second voice, ties over bars, triplets, a meter change into 6/8, a key."""
    notes = [
        Note(72, 0, q(1.5)),  # dotted quarter
        Note(76, 0, q(1.5)),  # ... a chord with it
        Note(74, q(1.5), q(0.5)),
        Note(79, q(2), q(1 / 3)),  # three triplet eighths
        Note(77, q(2 + 1 / 3), q(1 / 3)),
        Note(75, q(2 + 2 / 3), q(1 / 3)),
        Note(74, q(3), q(2)),  # tied over the bar line
        Note(73, q(5), q(0.25)),  # 16ths
        Note(71, q(5.25), q(0.25)),
        Note(70, q(5.5), q(0.75)),
        Note(72, q(7), q(4.5)),  # into 6/8, tied twice
        Note(60, q(11.5), q(1.5)),
    ]
    low = [Note(48, 0, q(2)), Note(50, q(2), q(2))]  # under the chord: a second voice
    return Score(
        tracks=[Track.from_notes(notes + low, name="Piano"), Track.from_notes([Note(36, 0, 480)])],
        tempos=[Tempo(0, 100.0)],
        time_signatures=[TimeSignature(0, 4, 4), TimeSignature(q(8), 6, 8)],
        key_signatures=[KeySignature(0, -3, False)],
    )


def layout(score: Score, track: int = 0) -> list:
    return lay_out_track(score.tracks[track].notes, lay_out_bars(score), speller(score))


# --------------------------------------------------------------------------- note values
@pytest.mark.parametrize(
    ("per_quarter", "length", "expected"),
    [
        (4, 4, [Value(4, "quarter")]),
        (4, 5, [Value(4, "quarter"), Value(1, "16th")]),  # five 16ths: a quarter tied to a 16th
        (4, 6, [Value(6, "quarter", 1)]),
        (4, 7, [Value(7, "quarter", 2)]),
        (4, 16, [Value(16, "whole")]),
        (4, 20, [Value(16, "whole"), Value(4, "quarter")]),
        (4, 96, [Value(32, "breve")] * 3),  # past two breves: breves first
        (12, 4, [Value(4, "eighth", triplet=True)]),
        (12, 8, [Value(8, "quarter", triplet=True)]),
        (12, 12, [Value(12, "quarter")]),  # plain values win over triplets
        (12, 5, [Value(3, "16th"), Value(2, "16th", triplet=True)]),
        (480, 7, [Value(7, None)]),  # no value fits 7/480 of a quarter
    ],
)
def test_values_split_lengths_into_fewest_note_values(
    per_quarter: int, length: int, expected: list[Value]
) -> None:
    values = Values(per_quarter)
    assert values.split(length) == expected
    assert sum(v.length for v in values.split(length)) == length


def test_every_length_on_a_grid_adds_up() -> None:
    values = Values(12)
    for n in range(1, 200):
        parts = values.split(n)
        assert sum(v.length for v in parts) == n
        assert all(v.type for v in parts)


# --------------------------------------------------------------------------- layout
def test_bars_ties_rests_and_voices() -> None:
    score = mixed_score()
    lay = lay_out_bars(score)
    assert lay.per_quarter == 12 and lay.unit == 40
    assert [str(m) for m in lay.meters] == ["4/4", "4/4", "6/8", "6/8"]
    assert lay.new_meter == [True, False, True, False]
    bars = layout(score)
    assert len(bars) == 4
    first, second = bars[0], bars[1]
    assert len(first.voices) == 2 and len(second.voices) == 1
    upper = first.voices[0]
    assert [(e.offset, e.value.length, e.value.triplet) for e in upper] == [
        (0, 18, False),
        (18, 6, False),
        (24, 4, True),
        (28, 4, True),
        (32, 4, True),
        (36, 12, False),
    ]
    assert [p[0] for p in upper[0].pitches] == ["C", "E"]  # a chord, lowest first
    assert upper[-1].tie_start and second.voices[0][0].tie_stop
    lower = first.voices[1]
    assert [(e.offset, e.value.length, e.pitches[0][2]) for e in lower] == [(0, 24, 3), (24, 24, 3)]
    assert not lower[1].tie_start
    # a bar of 6/8 (36 divisions) with nothing in the drum track: one whole-bar rest
    drums = layout(score, 1)
    assert drums[3].voices[0][0].whole_bar and drums[3].voices[0][0].value.length == 36


def test_voices_take_the_lowest_free_one() -> None:
    notes = make_notes([0, 0, 0, 480, 960], [960, 960, 480, 480, 480], [60, 64, 48, 50, 52])
    voices = note_voices(notes)
    assert [[(g[0], g[2]) for g in v] for v in voices] == [
        [(0, [60, 64]), (960, [52])],
        [(0, [48]), (480, [50])],
    ]


def test_accidentals_follow_key_bar_and_ties() -> None:
    # E flat major: E natural shows, a second E natural in the bar does not, E flat then
    # shows again; in the next bar the tied-over E flat shows nothing
    pitches = [64, 64, 63, 63]
    notes = make_notes([0, 480, 960, 1440], [480, 480, 480, 960], pitches)
    score = Score(tracks=[Track(notes)], key_signatures=[KeySignature(0, -3)])
    bars = layout(score)
    shown = [e.accidentals for e in bars[0].voices[0]]
    assert shown == [["natural"], [None], ["flat"], [None]]
    assert bars[1].voices[0][0].tie_stop and bars[1].voices[0][0].accidentals == [None]


def test_spelling_follows_the_key() -> None:
    notes = make_notes([0, 480], [480, 480], [61, 70])
    for key, names in ((-2, [("D", -1), ("B", -1)]), (2, [("C", 1), ("A", 1)])):
        spell = speller(Score(tracks=[Track(notes)], key_signatures=[KeySignature(0, key)]))
        assert [spell(p, 0)[:2] for p in (61, 70)] == names
    assert speller(Score())(70, 0) == ("B", -1, 4)  # no key: as music21 spells it


def test_beams_group_by_beat() -> None:
    eighths = make_notes(np.arange(8) * 240, [240] * 8, [60] * 8)
    bars = layout(Score(tracks=[Track(eighths)]))
    beams = [e.beams for e in bars[0].voices[0]]
    assert beams == [[(1, "begin")], [(1, "end")]] * 4
    sixteenths = make_notes([0, 120, 240], [120, 120, 240], [60, 62, 64])
    bars = layout(Score(tracks=[Track(sixteenths)]))
    assert [e.beams for e in bars[0].voices[0][:3]] == [
        [(1, "begin"), (2, "begin")],
        [(1, "continue"), (2, "end")],
        [(1, "end")],
    ]
    six_eight = Score(tracks=[Track(eighths[:6])], time_signatures=[TimeSignature(0, 6, 8)])
    kinds = [e.beams[0][1] for e in layout(six_eight)[0].voices[0]]
    assert kinds == ["begin", "continue", "end"] * 2


def test_triplets_are_bracketed_and_beamed_apart() -> None:
    bars = layout(mixed_score())
    upper = bars[0].voices[0]
    assert [e.tuplet for e in upper[2:5]] == [("start",), (), ("stop",)]
    assert [e.beams for e in upper[2:5]] == [[(1, "begin")], [(1, "continue")], [(1, "end")]]
    assert upper[1].beams == []  # the plain eighth before them is not beamed to a triplet


def test_clef_from_the_range() -> None:
    spell = speller(Score())
    assert clef_for([spell(p, 0) for p in (72, 76, 79)]) == ("G", 2, 0)
    assert clef_for([spell(p, 0) for p in (40, 43, 48)]) == ("F", 4, 0)
    assert clef_for([]) == ("G", 2, 0)


# --------------------------------------------------------------------------- the document
def test_a_note_under_c0_is_refused_by_name() -> None:
    score = Score(tracks=[Track(make_notes([0, 480], [480, 480], [60, 11]), name="Bass")])
    with pytest.raises(MusegenError, match=r"Bass: MIDI pitch 11 at beat 2 lies under C0"):
        musicxml_bytes(score)
    score.tracks[0].notes["pitch"][1] = 12  # C0 is the lowest MusicXML writes
    assert b"<octave>0</octave>" in musicxml_bytes(score)


def test_document_reads_back_with_the_same_notes_and_maps() -> None:
    score = mixed_score()
    back = _musicxml_to_score("<test>", musicxml_bytes(score, grid=12))
    assert_same_notes(without_overlaps(score), back, check_velocity=False)
    assert back.tempos == score.tempos
    assert back.key_signatures == score.key_signatures
    assert [str(t) for t in back.time_signatures] == ["4/4", "6/8"]
    assert [t.name for t in back.tracks] == ["Piano", "Piano"]
    assert [t.is_drum for t in back.tracks] == [False, False]


def test_changes_in_mid_bar_read_back() -> None:
    """A key or tempo change inside a bar is written after the voices (back, then forward)."""
    notes = make_notes(np.arange(8) * 480, [480] * 8, [60 + i for i in range(8)])
    score = Score(
        tracks=[Track(notes)],
        tempos=[Tempo(0, 90.0), Tempo(q(5), 132.5)],
        key_signatures=[KeySignature(0, 0), KeySignature(q(6), 2, True)],
    )
    data = musicxml_bytes(score)
    assert b"<forward>" in data
    back = _musicxml_to_score("<test>", data)
    assert back.tempos == score.tempos
    assert back.key_signatures == score.key_signatures
    assert_same_notes(score, back)


def test_same_bytes_every_time(tmp_path: Path) -> None:
    score = mixed_score()
    assert musicxml_bytes(score) == musicxml_bytes(score.copy())
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        save(score, tmp_path / folder / "x.mxl")
    assert (tmp_path / "a/x.mxl").read_bytes() == (tmp_path / "b/x.mxl").read_bytes()


def test_empty_score_has_one_empty_part() -> None:
    root = ET.fromstring(musicxml_bytes(Score()))
    assert len(root.findall("part")) == 1
    assert root.find("part/measure/note/rest").get("measure") == "yes"


def test_long_score_is_written_bar_by_bar() -> None:
    """4,200 bars: music21's makeNotation needed ~120 s CPU, which benchmarks/fuzz.py counted
    as a hang of ``convert x.musicxml`` (see benchmarks/musicxml_write.py)."""
    bars = 4200
    notes = make_notes(np.arange(bars * 2) * 960, [960] * bars * 2, [60, 67] * bars)
    root = ET.fromstring(musicxml_bytes(Score(tracks=[Track(notes)])))
    assert len(root.findall("part/measure")) == bars
    assert len(root.findall("part/measure/note")) == bars * 2


# --------------------------------------------------------------------------- other readers
def _schema(tmp_path: Path):  # type: ignore[no-untyped-def]
    """music21's MusicXML schema, with local stand-ins for the two schemas it imports."""
    etree = pytest.importorskip("lxml.etree")
    import music21

    xsd = Path(music21.__file__).parent / "musicxml" / "musicxml.xsd"
    if not xsd.exists():
        pytest.skip("music21 ships no MusicXML schema")
    stubs = {
        "xml.xsd": ("http://www.w3.org/XML/1998/namespace", ["lang", "space"]),
        "xlink.xsd": (
            "http://www.w3.org/1999/xlink",
            ["href", "type", "role", "title", "show", "actuate"],
        ),
    }
    text = xsd.read_text()
    for name, (namespace, attributes) in stubs.items():
        body = "".join(f'<xs:attribute name="{a}" type="xs:string"/>' for a in attributes)
        (tmp_path / name).write_text(
            f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
            f'targetNamespace="{namespace}">{body}</xs:schema>'
        )
        text = re.sub(
            rf'schemaLocation="[^"]*/{name}"', f'schemaLocation="{tmp_path / name}"', text
        )
    (tmp_path / "musicxml.xsd").write_text(text)
    return etree, etree.XMLSchema(etree.parse(str(tmp_path / "musicxml.xsd")))


def test_documents_are_valid_musicxml(tmp_path: Path) -> None:
    etree, schema = _schema(tmp_path)
    satb = load("corpus:bach/bwv66.6")
    drums = Score(tracks=[Track(make_notes([0], [q(0.5)], [36]), is_drum=True)])
    odd = Score(tracks=[Track(make_notes([0, 7], [5, 473], [60, 62]))])  # no grid: no types
    documents = [
        musicxml_bytes(mixed_score(), grid=12),
        musicxml_bytes(satb),
        musicxml_bytes(drums),
        musicxml_bytes(Score()),
        musicxml_bytes(odd, grid=None),
    ]
    for data in documents:
        doc = etree.fromstring(data, etree.XMLParser(load_dtd=False, no_network=True))
        # music21's schema is MusicXML 2.0's, which has no whole-bar rests (3.0 added them)
        for rest in doc.iter("rest"):
            assert rest.attrib.pop("measure", "yes") == "yes"
        assert schema.validate(doc), schema.error_log


def _verovio_notes(data: bytes, tmp_path: Path) -> list[tuple[int, int, int]]:
    """(start, duration, pitch) in 480ths of a quarter of verovio's MIDI, on a 12th grid
    (verovio's MIDI ends each note a tick early)."""
    verovio = pytest.importorskip("verovio")
    tk = verovio.toolkit()
    assert tk.loadData(data.decode())
    path = tmp_path / "verovio.mid"
    path.write_bytes(base64.b64decode(tk.renderToMIDI()))
    midi = read_midi(path)

    def snap(t: int) -> int:
        return round(t * 12 / midi.tpq) * 40

    return sorted(
        (snap(s), snap(s + d) - snap(s), p)
        for t in midi.tracks
        for s, d, p in t.notes[["start", "duration", "pitch"]].tolist()
    )


def test_verovio_reads_the_same_notes(tmp_path: Path) -> None:
    score = mixed_score()
    expected = sorted(
        (s, d, p)
        for t in without_overlaps(score).tracks
        for s, d, p in t.notes[["start", "duration", "pitch"]].tolist()
    )
    assert _verovio_notes(musicxml_bytes(score, grid=12), tmp_path) == expected


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(score=scores(max_tracks=2, grid=40, max_notes=15, max_start_steps=96, pitch_range=(21, 108)))
def test_verovio_reads_the_same_notes_of_random_scores(
    tmp_path_factory: pytest.TempPathFactory, score: Score
) -> None:
    """Onsets and lengths on a grid of 12ths of a quarter (16ths and triplets mixed)."""
    expected = sorted(
        (s, d, p)
        for t in without_overlaps(score.quantize(40)).tracks
        for s, d, p in t.notes[["start", "duration", "pitch"]].tolist()
    )
    got = _verovio_notes(musicxml_bytes(score, grid=12), tmp_path_factory.mktemp("vrv"))
    assert got == expected


def test_long_document_reads_back() -> None:
    """1,000 bars read back: music21's importer, with measures put in unsorted and sorted
    once (it re-measured the part for each measure: reading was quadratic)."""
    n = 2250  # triplet half notes across the bar lines of 1,000 bars of 3/4
    notes = make_notes(np.arange(n) * 640, [640] * n, [60, 64, 67] * (n // 3))
    score = Score(tracks=[Track(notes)], time_signatures=[TimeSignature(0, 3, 4)])
    back = _musicxml_to_score("<test>", musicxml_bytes(score, grid=12))
    assert_same_notes(score, back)
    assert back.n_bars == score.n_bars == 1000
