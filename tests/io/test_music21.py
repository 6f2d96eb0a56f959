"""MusicXML / ABC / corpus through music21: conversions, round trips and hostile files.

music21 is slow (about a second to import, tenths of a second per score), so the corpus piece
is parsed once per module and the property test runs few examples.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from musegen.errors import InputError
from musegen.io import load, save
from musegen.io._common import without_overlaps
from musegen.io.music21 import (
    from_music21,
    musicxml_bytes,
    read_abc,
    read_corpus,
    read_musicxml,
    to_music21,
    write_musicxml,
)
from musegen.score import KeySignature, Score, Tempo, TimeSignature, Track, make_notes
from strategies import assert_same_notes, scores

BWV = "corpus:bach/bwv66.6"


@pytest.fixture(scope="module")
def chorale() -> Score:
    return load(BWV)


# --------------------------------------------------------------------------- corpus
def test_corpus_chorale_has_four_labelled_voices(chorale: Score) -> None:
    assert chorale.tpq == 480
    assert [t.voice for t in chorale.tracks] == ["S", "A", "T", "B"]
    assert [t.name for t in chorale.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert [len(t) for t in chorale.tracks] == [36, 42, 44, 41]  # ties joined
    assert chorale.tempos == [Tempo(0, 96.0)]
    assert chorale.time_signatures == [TimeSignature(0, 4, 4)]
    assert chorale.key_signatures == [KeySignature(0, 3, True)]  # F# minor
    # the one-beat pickup moves in by three beats so that bar 2 starts at tick 1920
    assert int(chorale.tracks[0].notes["start"][0]) == 3 * 480
    assert chorale.end == 17280 + 3 * 480


def test_tie_joining_matches_music21_strip_ties(chorale: Score) -> None:
    """Two paths to one answer: our one-pass tie join vs music21's stripTies."""
    from music21 import corpus

    parsed = corpus.parse("bach/bwv66.6")
    for part, t in zip(parsed.parts, chorale.tracks, strict=True):
        rows = [
            (round((n.offset + 3) * 480), round(n.quarterLength * 480), p.midi)
            for n in part.stripTies().flatten().notes
            for p in n.pitches
        ]
        assert sorted(rows) == t.notes[["start", "duration", "pitch"]].tolist()


def test_fermatas_become_markers_at_their_onsets(chorale: Score) -> None:
    """BWV 66.6 rests on six fermatas, the last on its final chord; the pickup shift moves
    them with the notes."""
    from music21 import corpus, expressions

    parsed = corpus.parse("bach/bwv66.6")
    soprano = parsed.parts[0].flatten()
    expected = [
        round((n.getOffsetBySite(soprano) + 3) * 480)
        for n in soprano.notes
        if any(isinstance(x, expressions.Fermata) for x in n.expressions)
    ]
    assert [m.time for m in chorale.markers] == expected
    assert len(expected) == 6 and {m.text for m in chorale.markers} == {"fermata"}
    assert chorale.markers[-1].time == int(chorale.tracks[0].notes["start"][-1])


@pytest.mark.parametrize("ref", ["corpus:bach/no_such_piece", "corpus:"])
def test_unknown_corpus_piece(ref: str) -> None:
    with pytest.raises(InputError, match="corpus"):
        read_corpus(ref)


def test_ambiguous_corpus_name() -> None:
    with pytest.raises(InputError, match=r"names \d+ corpus pieces, e\.g\. corpus:bach/bwv"):
        read_corpus("corpus:bach")


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "bach/../x", "a b"])
def test_corpus_names_cannot_reach_outside(name: str) -> None:
    with pytest.raises(InputError, match="corpus names look like"):
        load("corpus:" + name)


# --------------------------------------------------------------------------- round trips
def _effective(items: list, end: int) -> list:  # type: ignore[type-arg]
    """Map events that matter for music ending at ``end``: no repeats, none after the end."""
    out: list = []  # type: ignore[type-arg]
    for x in items:
        if x.time and x.time >= end:
            continue
        if out and replace(out[-1], time=0) == replace(x, time=0):
            continue
        out.append(x)
    return out


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(score=scores(max_tracks=2, max_notes=10, max_start_steps=64, pitch_range=(12, 127)))
def test_musicxml_round_trip_of_quantized_score(
    tmp_path_factory: pytest.TempPathFactory, score: Score
) -> None:
    path = tmp_path_factory.mktemp("xml") / "a.musicxml"
    save(score, path)
    back = load(path)
    expected = without_overlaps(score.quantize(120))  # 16ths at 480 tpq
    assert len(back.tracks) == len(score.tracks)  # one part per track, empty ones too
    assert_same_notes(expected, back, check_velocity=False)  # chords share one velocity
    for maps in ("tempos", "key_signatures"):
        assert _effective(getattr(back, maps), back.end) == _effective(
            getattr(expected, maps), expected.end
        )
    assert np.array_equal(back.bar_starts(expected.end), expected.bar_starts())


def test_single_note_velocities_survive_musicxml() -> None:
    score = Score(tracks=[Track(make_notes([0, 480, 960], [480] * 3, [60, 62, 64], [1, 64, 127]))])
    back = read_musicxml_bytes(musicxml_bytes(score))
    assert back.tracks[0].notes["velocity"].tolist() == [1, 64, 127]


def test_mxl_round_trip_of_chorale(chorale: Score, tmp_path: Path) -> None:
    path = tmp_path / "chorale.mxl"
    save(chorale, path)
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist()[0] == "mimetype"
    back = load(path)
    assert [t.voice for t in back.tracks] == ["S", "A", "T", "B"]
    for a, b in zip(chorale.tracks, back.tracks, strict=True):
        assert np.array_equal(a.notes, b.notes)
    assert back.key_signatures == chorale.key_signatures
    assert back.tempos == chorale.tempos
    assert back.markers == chorale.markers  # the fermatas are written on the notes


def test_tenor_is_written_in_the_treble_8vb_clef(chorale: Score) -> None:
    """Sounding pitches are kept (the round trip above); the clef is the tenor's own."""
    parts = to_music21(chorale).parts
    clefs = [type(p.recurse().getElementsByClass("Clef").first()).__name__ for p in parts]
    assert clefs == ["TrebleClef", "TrebleClef", "Treble8vbClef", "BassClef"]


def test_programs_drums_and_odd_instruments_survive(tmp_path: Path) -> None:
    """music21 alone turns programs 1..5 into 0, drops channel-only drums, and files
    program 113 (Agogo) as percussion; the reader and writer correct all three."""
    tracks = [
        Track(make_notes([0], [480], [60 + i]), program=p) for i, p in enumerate((3, 113, 40))
    ]
    tracks.append(Track(make_notes([0], [480], [36]), is_drum=True))
    path = tmp_path / "band.xml"
    write_musicxml(Score(tracks=tracks), path)
    back = read_musicxml(path)
    assert [(t.program, t.is_drum) for t in back.tracks] == [
        (3, False),
        (113, False),
        (40, False),
        (0, True),
    ]


def test_to_music21_makes_chords_and_voices() -> None:
    from music21 import chord, stream

    notes = make_notes([0, 0, 0, 480], [960, 960, 480, 480], [60, 64, 48, 50])
    m21 = to_music21(Score(tracks=[Track(notes)], key_signatures=[KeySignature(0, -3)]))
    first = m21.parts[0].getElementsByClass(stream.Measure).first()
    assert [v.id for v in first.voices] == ["1", "2"]
    chords = list(first.recurse().getElementsByClass(chord.Chord))
    assert len(chords) == 1 and [p.midi for p in chords[0].pitches] == [60, 64]
    assert from_music21(m21).tracks[0].notes.tolist() == notes.tolist()


def test_flat_keys_spell_with_flats() -> None:
    from music21 import note

    score = Score(tracks=[Track(make_notes([0, 480], [480, 480], [70, 61]))])
    flat = to_music21(replace(score, key_signatures=[KeySignature(0, -2)]))
    sharp = to_music21(replace(score, key_signatures=[KeySignature(0, 2)]))
    names = [n.name for n in flat.recurse().getElementsByClass(note.Note)]
    assert names == ["B-", "D-"]
    assert [n.name for n in sharp.recurse().getElementsByClass(note.Note)] == ["A#", "C#"]


# --------------------------------------------------------------------------- a hand-written file
def _n(step: str, octave: int, dur: int, inner: str = "", attrs: str = "", alter: int = 0) -> str:
    """One MusicXML <note>; ``inner`` goes before <pitch> (e.g. <chord/>) or after it."""
    a = f"<alter>{alter}</alter>" if alter else ""
    before, after = (inner, "") if inner in ("<chord/>", "<grace/>") else ("", inner)
    d = "" if inner == "<grace/>" else f"<duration>{dur}</duration>"
    return (
        f"<note {attrs}>{before}<pitch><step>{step}</step>{a}<octave>{octave}</octave></pitch>"
        f"{d}{after}</note>"
    )


# Alto: a one-beat pickup in 3/4, a two-note chord with velocity, a grace note, a tie over
# the bar; program 4 (1-based: Honky-tonk piano). Kit: a drum part given only channel 10.
HANDMADE = f"""<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="4.0">
  <part-list>
    <score-part id="P1"><part-name>Alto</part-name>
      <score-instrument id="P1-I1"><instrument-name>Honky-tonk Piano</instrument-name>
      </score-instrument>
      <midi-instrument id="P1-I1"><midi-channel>1</midi-channel><midi-program>4</midi-program>
      </midi-instrument></score-part>
    <score-part id="P2"><part-name>Kit</part-name>
      <midi-instrument id="P2-I1"><midi-channel>10</midi-channel></midi-instrument>
    </score-part>
  </part-list>
  <part id="P1">
    <measure number="0" implicit="yes">
      <attributes><divisions>2</divisions><key><fifths>-2</fifths><mode>minor</mode></key>
        <time><beats>3</beats><beat-type>4</beat-type></time></attributes>
      <direction><direction-type><metronome><beat-unit>quarter</beat-unit>
        <per-minute>72</per-minute></metronome></direction-type><sound tempo="72"/></direction>
      {_n("B", 4, 2, alter=-1)}
    </measure>
    <measure number="1">
      {_n("E", 4, 2, attrs='dynamics="88.89"')}
      {_n("G", 4, 2, "<chord/>", attrs='dynamics="88.89"')}
      {_n("D", 5, 0, "<grace/>")}
      {_n("C", 5, 4, '<tie type="start"/>')}
    </measure>
    <measure number="2">
      {_n("C", 5, 2, '<tie type="stop"/>')}
      <note><rest/><duration>4</duration></note>
    </measure>
  </part>
  <part id="P2">
    <measure number="0" implicit="yes">
      <attributes><divisions>2</divisions><time><beats>3</beats><beat-type>4</beat-type></time>
      </attributes><note><rest/><duration>2</duration></note>
    </measure>
    <measure number="1">{_n("C", 2, 2)}<note><rest/><duration>4</duration></note></measure>
    <measure number="2"><note><rest/><duration>6</duration></note></measure>
  </part>
</score-partwise>
"""


def read_musicxml_bytes(data: bytes) -> Score:
    """Parse MusicXML bytes without a file (the reader's inner step)."""
    from musegen.io.music21 import _musicxml_to_score

    return _musicxml_to_score("<test>", data)


def test_handmade_musicxml(tmp_path: Path) -> None:
    path = tmp_path / "handmade.musicxml"
    path.write_text(HANDMADE)
    score = load(path)
    alto, kit = score.tracks
    assert (alto.name, alto.voice, alto.program, alto.is_drum) == ("Alto", "A", 3, False)
    assert (kit.name, kit.is_drum) == ("Kit", True)
    # pickup (one beat of 3/4) moves in by two beats; grace note skipped; tie joined
    assert alto.notes.tolist() == [
        (960, 480, 70, 64),
        (1440, 480, 64, 80),
        (1440, 480, 67, 80),
        (1920, 1440, 72, 64),
    ]
    assert kit.notes.tolist() == [(1440, 480, 36, 64)]
    assert score.tempos == [Tempo(0, 72.0)]
    assert score.time_signatures == [TimeSignature(0, 3, 4)]
    assert score.key_signatures == [KeySignature(0, -2, True)]


# --------------------------------------------------------------------------- ABC
TUNE = """X:1
T:Tiny
M:3/4
L:1/8
Q:1/4=100
K:G
D2 | G2 B2 d2 | [ce]2 A2 F2 | G4- G2 |]
"""


def test_abc_tiny_tune(tmp_path: Path) -> None:
    path = tmp_path / "tiny.abc"
    path.write_text(TUNE)
    score = load(path)
    (t,) = score.tracks
    assert score.tempos == [Tempo(0, 100.0)]
    assert score.time_signatures == [TimeSignature(0, 3, 4)]
    assert score.key_signatures == [KeySignature(0, 1, False)]
    assert t.notes[["start", "duration", "pitch"]].tolist() == [
        (960, 480, 62),  # the pickup D, moved to the last beat of a 3/4 bar
        (1440, 480, 67),
        (1920, 480, 71),
        (2400, 480, 74),
        (2880, 480, 72),  # chord [ce]
        (2880, 480, 76),
        (3360, 480, 69),
        (3840, 480, 66),
        (4320, 1440, 67),  # G4- G2 tied into one note
    ]


def test_abc_without_unit_length_and_several_tunes(tmp_path: Path) -> None:
    path = tmp_path / "two.abc"
    path.write_text("X:1\nT:A\nK:D\nDEF A2|\n\nX:2\nT:B\nK:G\nGABc|\n")
    (t,) = read_abc(path).tracks  # the first tune, unit length 1/8 by ABC's default
    assert t.notes[["start", "duration", "pitch"]].tolist() == [
        (0, 240, 62),
        (240, 240, 64),
        (480, 240, 66),
        (720, 480, 69),
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("hello world\nthis is not abc\n", "no 'K:'"),
        ("X:1\nK:C\n[[[[ ]]]] ((((( 7/0/0\n", "invalid ABC"),
        ("X:1\nK:C\nC/0 D\n", "invalid ABC"),
        ("X:1\nM:0/0\nK:C\nCDE\n", "invalid ABC"),
    ],
    ids=["not-abc", "bad-chord", "zero-length", "zero-meter"],
)
def test_invalid_abc(text: str, reason: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.abc"
    path.write_text(text)
    with pytest.raises(InputError, match=reason) as info:
        load(path)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- hostile MusicXML
def _score_xml(measure: str) -> str:
    return (
        '<?xml version="1.0"?><score-partwise version="4.0"><part-list>'
        '<score-part id="P1"><part-name>x</part-name></score-part></part-list>'
        f'<part id="P1"><measure number="1"><attributes><divisions>1</divisions></attributes>'
        f"{measure}</measure></part></score-partwise>"
    )


LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaaaaaaaa">'
    + "".join(
        f'<!ENTITY a{i} "{("&a" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + "]><score-partwise>&a9;</score-partwise>"
)


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("garbage.musicxml", "<not xml", "not valid XML"),
        ("page.xml", "<?xml version='1.0'?><html><body/></html>", "root element is <html>"),
        ("time.xml", "<?xml version='1.0'?><score-timewise/>", "timewise"),
        ("laughs.musicxml", LAUGHS, "not valid XML"),
        (
            "div0.musicxml",
            _score_xml(
                "<note><pitch><step>C</step><octave>4</octave></pitch><duration>1</duration></note>"
            ).replace("<divisions>1<", "<divisions>0<"),
            "invalid MusicXML",
        ),
        (
            "step.musicxml",
            _score_xml(
                "<note><pitch><step>Q</step><octave>4</octave></pitch><duration>1</duration></note>"
            ),
            "invalid MusicXML",
        ),
        (
            "long.musicxml",
            _score_xml(
                "<note><pitch><step>C</step><octave>4</octave></pitch>"
                "<duration>1000000000000</duration></note>"
            ),
            "past 2\\*\\*31",
        ),
        ("fake.mxl", "PK\x03\x04 not really a zip", "not a valid .mxl"),
    ],
    ids=["garbage", "html", "timewise", "billion-laughs", "divisions-0", "bad-step", "huge", "mxl"],
)
def test_hostile_musicxml(name: str, text: str, reason: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=reason) as info:
        load(path)
    assert "\n" not in str(info.value)
    assert info.value.source == str(path)


def test_mxl_without_a_score_inside(tmp_path: Path) -> None:
    path = tmp_path / "empty.mxl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "nothing here")
    with pytest.raises(InputError, match="no score document"):
        load(path)


def test_musicxml_without_parts_loads_empty(tmp_path: Path) -> None:
    path = tmp_path / "none.musicxml"
    path.write_text(
        '<?xml version="1.0"?><score-partwise version="4.0"><part-list/></score-partwise>'
    )
    assert load(path).tracks == []


def test_too_long_to_notate(tmp_path: Path) -> None:
    """A score spanning 2**28 ticks (as a hostile MIDI can) is refused, not notated for hours."""
    score = Score(tracks=[Track(make_notes([0, 2**28], [480, 480], [60, 62]))])
    with pytest.raises(InputError, match="too long to notate") as info:
        save(score, tmp_path / "long.musicxml")
    assert info.value.source == str(tmp_path / "long.musicxml")
    assert not (tmp_path / "long.musicxml").exists()


def test_too_many_parts_to_notate(tmp_path: Path) -> None:
    """Thousands of tracks (a MIDI file can hold them) times thousands of bars is refused."""
    long = Track(make_notes([0, 1920 * 999], [480, 480], [60, 62]))
    score = Score(tracks=[long] + [Track() for _ in range(200)])
    with pytest.raises(InputError, match="1000 bars x 201 parts is too much to notate"):
        save(score, tmp_path / "many.musicxml")
    assert not (tmp_path / "many.musicxml").exists()


def test_importing_musegen_io_does_not_import_music21() -> None:
    code = "import sys, musegen.io; print('music21' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_voice_parts_get_their_own_short_names(tmp_path: Path) -> None:
    """Engravers print the part abbreviation from the second system on: a labelled voice is
    'S.', 'A.', 'T.', 'B.', not its instrument's ('Pno')."""
    tracks = [
        Track(make_notes([0], [480], [p]), name=name, voice=voice)
        for p, name, voice in ((72, "Soprano", "S"), (65, "Alto", "A"), (57, "Tenor", "T"))
    ]
    tracks.append(Track(make_notes([0], [480], [48]), name="Piano"))
    out = tmp_path / "satb.musicxml"
    save(Score(tracks=tracks), out)
    text = out.read_text()
    for short in ("S.", "A.", "T."):
        assert f"<part-abbreviation>{short}</part-abbreviation>" in text
    assert text.count("<part-abbreviation>") == 4  # the unlabelled track keeps its instrument's
