"""MIDI reading and writing: round trips, what survives, and hostile files built byte by byte."""

from __future__ import annotations

import contextlib
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import symusic
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.errors import InputError
from musegen.io._common import resolve_overlaps, voice_from_name, without_overlaps
from musegen.io.midi import midi_bytes, read_midi, read_midi_many, write_midi
from musegen.score import (
    FERMATA,
    KeySignature,
    Marker,
    Score,
    Tempo,
    TimeSignature,
    Track,
    make_notes,
)
from strategies import assert_same_notes, scores


# --------------------------------------------------------------------------- hand-made MIDI
def vlq(n: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def header(n_tracks: int = 1, division: int = 480, fmt: int = 1) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, fmt, n_tracks, division)


def track(events: bytes, end: bool = True) -> bytes:
    body = events + (vlq(0) + b"\xff\x2f\x00" if end else b"")
    return b"MTrk" + struct.pack(">I", len(body)) + body


def note(pitch: int = 60, length: int = 480, delta: int = 0, ch: int = 0, vel: int = 64) -> bytes:
    return vlq(delta) + bytes([0x90 | ch, pitch, vel]) + vlq(length) + bytes([0x80 | ch, pitch, 0])


def midi(*tracks: bytes, division: int = 480) -> bytes:
    return header(len(tracks), division) + b"".join(tracks)


ONE_NOTE = midi(track(note()))


# --------------------------------------------------------------------------- round trips
@settings(max_examples=60, deadline=None)
@given(scores(max_notes=25))
def test_round_trip_keeps_notes_tracks_and_maps(score: Score) -> None:
    back = read_midi(midi_bytes(score))
    expected = without_overlaps(score, unisons=True)
    assert back.tpq == score.tpq
    assert_same_notes(expected, back)
    kept = [(t.program, t.is_drum, t.name) for t in expected.tracks if len(t)]
    assert [(t.program, t.is_drum, t.name) for t in back.tracks] == kept
    assert back.tempos == score.tempos
    assert back.time_signatures == score.time_signatures
    assert back.key_signatures == score.key_signatures


def test_write_read_file_keeps_tpq_names_and_voices(tmp_path: Path) -> None:
    satb = [
        Track(make_notes([0], [960], [p]), name=n)
        for p, n in zip((72, 67, 60, 48), "SATB", strict=True)
    ]
    satb.append(Track(make_notes([0], [480], [36]), is_drum=True, name="Drums"))
    score = Score(tpq=96, tracks=[Track(make_notes([0], [10], [60]), voice="A"), *satb])
    path = tmp_path / "out" / "satb.mid"  # missing folders are made
    write_midi(score, path)
    back = read_midi(path)
    assert back.tpq == 96
    assert [t.name for t in back.tracks] == ["Alto", "S", "A", "T", "B", "Drums"]
    assert [t.voice for t in back.tracks] == ["A", "S", "A", "T", "B", None]
    assert back.tracks[-1].is_drum
    assert not list(path.parent.glob(".*.tmp"))  # the atomic write left no temp file


def test_markers_round_trip_as_midi_marker_events() -> None:
    score = Score(
        tracks=[Track(make_notes([0, 960], [960, 960], [60, 62]))],
        markers=[Marker(960, FERMATA), Marker(0, "Verse")],
    )
    assert read_midi(midi_bytes(score)).markers == [Marker(0, "Verse"), Marker(960, FERMATA)]


def test_tempo_qpm_is_rounded_to_hundredths() -> None:
    score = Score(tempos=[Tempo(0, 90.0), Tempo(480, 133.33), Tempo(960, 61.5)])
    assert read_midi(midi_bytes(score)).tempos == score.tempos


def test_what_midi_cannot_keep_is_documented_behaviour() -> None:
    notes = make_notes(
        [0, 240, 500, 500, 900, 1000],
        [1200, 120, 100, 300, 50, 10],
        [60, 60, 62, 62, 64, 65],
        [80, 90, 70, 71, 0, 50],
    )
    score = Score(tracks=[Track(notes, program=3), Track(program=4, name="empty")])
    back = read_midi(midi_bytes(score))
    assert len(back.tracks) == 1  # the empty track is gone
    got = back.tracks[0].notes
    # same-pitch overlaps are cut, a unison (one onset) keeps both notes, velocity 0 -> 1
    assert got[["start", "duration", "pitch"]].tolist() == [
        (0, 240, 60),
        (240, 120, 60),
        (500, 100, 62),
        (500, 300, 62),
        (900, 50, 64),
        (1000, 10, 65),
    ]
    assert got["velocity"].tolist() == [80, 90, 70, 71, 1, 50]


def test_resolve_overlaps_leaves_clean_notes_alone() -> None:
    notes = make_notes([0, 480, 0], [480, 480, 960], [60, 60, 64])
    assert resolve_overlaps(notes) is notes


def test_format0_channels_become_tracks() -> None:
    events = note(60, ch=0) + vlq(0) + b"\xc1\x28" + note(72, ch=1) + note(36, ch=9)
    score = read_midi(header(1, fmt=0) + track(events))
    assert sorted((t.program, t.is_drum, int(t.notes["pitch"][0])) for t in score.tracks) == [
        (0, False, 60),
        (0, True, 36),
        (40, False, 72),
    ]


# --------------------------------------------------------------------------- odd but valid
def test_zero_tracks_loads_as_empty_score() -> None:
    score = read_midi(header(0))
    assert score.tracks == [] and score.is_empty() and score.tpq == 480


def test_tracks_without_notes_load_as_empty_score() -> None:
    tempo = vlq(0) + b"\xff\x51\x03\x07\xa1\x20"  # 500000 us per quarter
    score = read_midi(midi(track(tempo), track(vlq(0) + b"\x90\x3c\x40")))  # no note-off
    assert score.tracks == []
    assert score.tempos == [Tempo(0, 120.0)]


def test_missing_end_of_track_is_tolerated() -> None:
    score = read_midi(midi(track(note(), end=False)))
    assert score.n_notes == 1


def test_nonsense_map_events_are_dropped() -> None:
    meta = (
        vlq(0)
        + b"\xff\x51\x03\x00\x00\x00"  # tempo 0
        + vlq(0)
        + b"\xff\x58\x04\x00\xff\x18\x08"  # meter 0 / 2**255
        + vlq(0)
        + b"\xff\x59\x02\x0c\x05"  # 12 sharps, mode 5
    )
    score = read_midi(midi(track(meta + note())))
    assert score.tempos == [] and score.time_signatures == [] and score.key_signatures == []
    assert score.n_notes == 1


def test_enormous_delta_time_loads_fast_without_memory_blowup(tmp_path: Path) -> None:
    """A delta of 2**28 - 1 ticks (the VLQ maximum): end ≈ 2**28, nothing sized by it."""
    path = tmp_path / "huge_delta.mid"
    path.write_bytes(midi(track(note(60, length=2**28 - 1) + note(62, delta=10))))
    code = (
        "import resource, time, sys\n"
        "from musegen.io import load\n"
        "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "before = peak()\n"
        "t = time.perf_counter()\n"
        "s = load(sys.argv[1])\n"
        "assert s.end == 2**28 + 489, s.end\n"
        "assert s.n_bars > 100_000\n"
        "print(time.perf_counter() - t, peak() - before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    # the timeout above is the hang guard; the peak RSS grows by little: no giant arrays. (The
    # growth, not the peak itself: Linux keeps a forked parent's high-water mark across exec.)
    _seconds, growth_kb = out.stdout.split()
    assert int(growth_kb) < 300 * 1024


def test_times_overflowing_32_bits_are_refused() -> None:
    """symusic wraps times past 2**31 into negatives; we refuse rather than load nonsense."""
    skip = b"".join(vlq(2**28 - 1) + b"\xff\x01\x00" for _ in range(9))  # text events
    data = midi(track(note(60) + skip + note(62)))
    with pytest.raises(InputError, match="overflow"):
        read_midi(data)


# --------------------------------------------------------------------------- hostile input
@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"MThd", "too short"),
        (b"hello, this is not a MIDI file at all" * 3, "not a MIDI file"),
        (b"RIFF" + struct.pack("<I", 100) + b"WAVEfmt " + bytes(20), "RIFF file of kind WAVE"),
        (b"RIFF" + struct.pack("<I", 12) + b"RMIDLIST" + bytes(4), "without a 'data' chunk"),
        (b"RIFF" + struct.pack("<I", 100) + b"RMIDdata" + bytes(20), "too short"),
        (ONE_NOTE[:-6], "truncated"),
        (header(1) + b"MTrk" + struct.pack(">I", 10**9) + note(), "truncated"),
        (midi(track(vlq(0) + b"\x3c\x40")), "corrupt MIDI"),  # data byte with no status
        (midi(track(vlq(0) + b"\x90\x3c\xf0")), "velocity 240 is out of range"),
        (midi(track(note()), division=0xE700), "SMPTE time division with 0 ticks per frame"),
        (midi(track(note()), division=0), "0 ticks per quarter"),
    ],
    ids=[
        "empty",
        "header-only",
        "garbage",
        "riff-wave",
        "rmid-no-data",
        "rmid-empty-data",
        "truncated",
        "chunk-length-lies",
        "running-status",
        "velocity",
        "smpte",
        "division-0",
    ],
)
def test_hostile_bytes_give_one_line_input_error(data: bytes, reason: str) -> None:
    with pytest.raises(InputError, match=reason) as info:
        read_midi(data)
    assert "\n" not in str(info.value)
    assert info.value.source == "<bytes>"


def test_garbage_file_with_mid_extension(tmp_path: Path) -> None:
    path = tmp_path / "fake.mid"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError) as info:
        read_midi(path)
    assert info.value.source == str(path)


def test_max_bytes_refuses_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.mid"
    path.write_bytes(ONE_NOTE)
    with pytest.raises(InputError, match="limit"):
        read_midi(path, max_bytes=10)
    with pytest.raises(InputError, match="limit"):
        read_midi(ONE_NOTE, max_bytes=10)
    assert read_midi(path, max_bytes=len(ONE_NOTE)).n_notes == 1


def test_mutated_files_never_escape_as_other_errors() -> None:
    """A quick fuzz: random byte edits of a real file load or raise InputError, fast."""
    base = midi_bytes(
        Score(
            tracks=[Track(make_notes(np.arange(32) * 120, [100] * 32, np.arange(40, 72)))],
            tempos=[Tempo(0, 100.0)],
            time_signatures=[TimeSignature(0, 3, 4)],
            key_signatures=[KeySignature(0, -2, True)],
        )
    )
    rng = np.random.default_rng(1)
    for _ in range(1500):
        b = bytearray(base)
        for j in rng.integers(0, len(b), rng.integers(1, 6)):
            b[j] = rng.integers(0, 256)
        with contextlib.suppress(InputError):
            read_midi(bytes(b))


# --------------------------------------------------------------------------- writing errors
@pytest.mark.parametrize(
    ("score", "reason"),
    [
        (Score(tracks=[Track(make_notes([0], [10], [128]))]), "pitches"),
        (Score(tracks=[Track(make_notes([-5], [10], [60]))]), "negative"),
        (Score(tracks=[Track(make_notes([2**31], [10], [60]))]), "times must lie"),
        (Score(tempos=[Tempo(0, 0.0)]), "tempo"),
        (Score(tempos=[Tempo(0, 1.0)]), "tempo"),  # 60 s per quarter: over 3 bytes of us
        (Score(time_signatures=[TimeSignature(0, 7, 6)]), "time signature 7/6"),
        (Score(key_signatures=[KeySignature(0, 9)]), "key signature"),
        (Score(tpq=40000), "ticks per quarter"),
    ],
    ids=["pitch", "negative", "beyond-32-bit", "tempo-0", "tempo-slow", "meter", "key", "tpq"],
)
def test_unwritable_scores_raise_input_error(score: Score, reason: str, tmp_path: Path) -> None:
    path = tmp_path / "x.mid"
    with pytest.raises(InputError, match=reason):
        write_midi(score, path)
    assert not path.exists()


def test_write_into_unwritable_place(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="cannot write"):
        write_midi(Score(), blocker / "sub" / "x.mid")
    with pytest.raises(InputError, match="cannot write"):
        write_midi(Score(), tmp_path)  # a folder where the file should go


# --------------------------------------------------------------------------- the fast reader
def _reference_from_symusic(sm: symusic.Score) -> Score:
    """The plain per-track conversion the reader once was: the fast one must give the same."""
    tracks = []
    for track_ in sm.tracks:
        cols = track_.notes.numpy()
        if len(cols["time"]):
            notes = make_notes(cols["time"], cols["duration"], cols["pitch"], cols["velocity"])
            name = track_.name
            program = int(track_.program) if 0 <= track_.program <= 127 else 0
            tracks.append(Track(notes, program, bool(track_.is_drum), name, voice_from_name(name)))
    t, s, k = sm.tempos.numpy(), sm.time_signatures.numpy(), sm.key_signatures.numpy()
    return Score(
        tpq=int(sm.tpq),
        tracks=tracks,
        tempos=[
            Tempo(int(a), round(60_000_000 / int(b), 2))
            for a, b in zip(t["time"], t["mspq"], strict=True)
            if b > 0
        ],
        time_signatures=[
            TimeSignature(int(a), int(b), int(c))
            for a, b, c in zip(s["time"], s["numerator"], s["denominator"], strict=True)
            if b > 0 and c > 0
        ],
        key_signatures=[
            KeySignature(int(a), int(b), bool(c))
            for a, b, c in zip(k["time"], k["key"], k["tonality"], strict=True)
            if -7 <= b <= 7 and c in (0, 1)
        ],
    )


def assert_identical(a: Score, b: Score) -> None:
    assert (a.tpq, a.tempos, a.time_signatures, a.key_signatures) == (
        b.tpq,
        b.tempos,
        b.time_signatures,
        b.key_signatures,
    )
    assert len(a.tracks) == len(b.tracks)
    for x, y in zip(a.tracks, b.tracks, strict=True):
        assert (x.program, x.is_drum, x.name, x.voice) == (y.program, y.is_drum, y.name, y.voice)
        assert x.notes.dtype == y.notes.dtype
        assert np.array_equal(x.notes, y.notes)


@settings(max_examples=80, deadline=None)
@given(scores(max_notes=30, max_tracks=4))
def test_reader_gives_what_the_plain_per_track_conversion_gives(score: Score) -> None:
    data = midi_bytes(score)
    assert_identical(read_midi(data), _reference_from_symusic(symusic.Score.from_midi(data)))


def test_reader_sorts_chords_and_long_notes_like_the_plain_conversion() -> None:
    """Notes out of canonical order (a chord written top down, equal onsets with several
    durations), several tracks, and music so long that the one-key sort falls back to lexsort."""
    chord = note(72, 240) + note(64, 960) + note(60, 480) + note(60, 240) + note(67, 480, vel=90)
    for data in (
        midi(track(chord), track(note(48, 100) + note(36, 100, delta=5)), track(chord)),
        midi(track(note(60, 2**27) + note(59, 2**27 - 1, delta=1) + chord)),
        midi(*(track(note(40 + i, 30 * i + 1)) for i in range(20))),
        _ODD_FILES[-1],
    ):
        sm = symusic.Score.from_midi(data)
        assert_identical(read_midi(data), _reference_from_symusic(sm))


def _read_one(data: bytes, label: str) -> Score | InputError:
    try:
        score = read_midi(data)
    except InputError as e:
        return InputError(label, e.reason)
    return score


_PAST_THE_END = midi(  # a note starting at 2**31 - 100 ticks and lasting 480: ends past 2**31
    track(
        b"".join(vlq(2**28 - 1) + b"\xff\x01\x00" for _ in range(7))
        + vlq(2**31 - 100 - 7 * (2**28 - 1))
        + b"\xff\x01\x00"
        + note(60, 480)
    )
)
_ODD_FILES = [
    b"",
    b"MThd",
    ONE_NOTE[:-6],
    midi(track(note()), division=0),
    midi(track(note(60) + b"".join(vlq(2**28 - 1) + b"\xff\x01\x00" for _ in range(9)) + note(62))),
    _PAST_THE_END,
    midi(track(vlq(0) + b"\xff\x51\x03\x07\xa1\x20")),  # a tempo and no notes
    header(0),
    ONE_NOTE,
    midi(  # more map events than the reader takes one by one
        track(
            b"".join(
                vlq(10) + b"\xff\x51\x03" + (400000 + 9000 * i).to_bytes(3, "big")
                for i in range(12)
            )
            + b"".join(vlq(5) + b"\xff\x58\x04" + bytes([2 + i % 5, 2, 24, 8]) for i in range(10))
            + note()
        )
    ),
]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(scores(max_notes=20, max_tracks=3), st.integers(0, len(_ODD_FILES) - 1)),
        max_size=8,
    )
)
def test_read_midi_many_gives_what_read_midi_gives_each(items: list[Score | int]) -> None:
    files = [
        (_ODD_FILES[x] if isinstance(x, int) else midi_bytes(x), f"file{i}")
        for i, x in enumerate(items)
    ]
    got = read_midi_many(files)
    assert len(got) == len(files)
    for (data, label), result in zip(files, got, strict=True):
        expected = _read_one(data, label)
        if isinstance(expected, InputError):
            assert isinstance(result, InputError)
            assert (result.source, result.reason) == (expected.source, expected.reason)
        else:
            assert isinstance(result, Score)
            assert_identical(result, expected)


def test_read_midi_refuses_music_past_tick_2_31() -> None:
    with pytest.raises(InputError, match="past 2"):
        read_midi(_PAST_THE_END)


# --------------------------------------------------------------------------- RMID and SMPTE
def riff_chunk(tag: bytes, body: bytes) -> bytes:
    """A RIFF chunk: tag, little-endian size, body, a pad byte to an even length."""
    return tag + struct.pack("<I", len(body)) + body + b"\0" * (len(body) % 2)


def rmid(smf: bytes, before: bytes = b"") -> bytes:
    """``smf`` wrapped as a RIFF RMID file, with other chunks ``before`` its data chunk."""
    body = b"RMID" + before + riff_chunk(b"data", smf)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def smpte(fps: int, ticks_per_frame: int) -> int:
    """The header's division word for SMPTE timing: -fps in the high byte."""
    return ((256 - fps) << 8) | ticks_per_frame


TWO_TRACKS = midi(
    track(vlq(0) + b"\xff\x51\x03" + (400_000).to_bytes(3, "big") + note(60, 480) + note(64, 960)),
    track(note(48, 960, delta=480)),
)


def test_rmid_reads_as_the_midi_file_inside() -> None:
    plain = read_midi(TWO_TRACKS)
    info = riff_chunk(b"LIST", b"INFOINAM" + struct.pack("<I", 3) + b"abc\0")  # odd: padded
    for data in (rmid(TWO_TRACKS), rmid(TWO_TRACKS, before=info)):
        back = read_midi(data)
        assert back.tpq == plain.tpq and back.tempos == plain.tempos
        assert len(back.tracks) == 2
        for a, b in zip(back.tracks, plain.tracks, strict=True):
            assert np.array_equal(a.notes, b.notes)


def test_rmi_files_load_by_extension(tmp_path: Path) -> None:
    from musegen.io import load

    (tmp_path / "song.rmi").write_bytes(rmid(TWO_TRACKS))
    (tmp_path / "song.mid").write_bytes(rmid(TWO_TRACKS))  # wrapped, named .mid
    for name in ("song.rmi", "song.mid"):
        assert load(tmp_path / name).n_notes == 3


@pytest.mark.parametrize(
    ("fps", "ticks_per_frame"), [(24, 4), (25, 40), (25, 1), (29, 80), (30, 100)]
)
def test_smpte_timing_keeps_seconds(fps: int, ticks_per_frame: int) -> None:
    """Notes land at the seconds the SMPTE clock gives; the file's tempo events do not apply."""
    per_second = (30_000 / 1001 if fps == 29 else fps) * ticks_per_frame
    tempo = vlq(0) + b"\xff\x51\x03" + (300_000).to_bytes(3, "big")  # ignored under SMPTE
    events = tempo + note(60, 3 * ticks_per_frame, delta=7 * ticks_per_frame) + note(62, 1000)
    score = read_midi(midi(track(events), division=smpte(fps, ticks_per_frame)))
    notes = score.tracks[0].notes
    ticks = np.array([7, 10]) * ticks_per_frame
    assert notes["start"].tolist() == ticks.tolist()  # ticks as in the file
    np.testing.assert_allclose(score.ticks_to_seconds(ticks), ticks / per_second, rtol=1e-5)
    np.testing.assert_allclose(score.duration_seconds(), (ticks[1] + 1000) / per_second, rtol=1e-5)
    assert len(score.tempos) == 1 and score.tempos[0].qpm in (120.0, 119.88, 60.0, 59.94)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([24, 25, 29, 30]),
    st.integers(1, 255),
    st.lists(st.integers(0, 5000), min_size=1, max_size=8),
)
def test_smpte_ticks_to_seconds_property(fps: int, ticks_per_frame: int, gaps: list[int]) -> None:
    per_second = (30_000 / 1001 if fps == 29 else fps) * ticks_per_frame
    events = b"".join(note(60 + i % 12, 10, delta=g) for i, g in enumerate(gaps))
    score = read_midi(midi(track(events), division=smpte(fps, ticks_per_frame)))
    starts = score.tracks[0].notes["start"]
    np.testing.assert_allclose(score.ticks_to_seconds(starts), starts / per_second, rtol=1e-5)
    back = read_midi(midi_bytes(score))  # what we read, we can write as ordinary MIDI
    np.testing.assert_allclose(back.ticks_to_seconds(starts), starts / per_second, rtol=1e-5)


def test_rmid_and_smpte_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from musegen.cli.main import main
    from musegen.render.audio import read_wav

    wrapped, timed = tmp_path / "wrapped.rmi", tmp_path / "timed.mid"
    wrapped.write_bytes(rmid(TWO_TRACKS))
    # 25 frames of 40 ticks: 1000 ticks a second; a 2-second note from 1 s
    timed.write_bytes(midi(track(note(67, 2000, delta=1000)), division=smpte(25, 40)))
    assert main(["info", str(wrapped), str(timed), "--json"]) == 0
    a, b = json.loads(capsys.readouterr().out)
    assert a["notes"] == 3 and a["pitch_range"] == [48, 64]
    assert b["notes"] == 1 and b["duration_seconds"] == pytest.approx(3.0)
    out = tmp_path / "out"
    for path in (wrapped, timed):
        args = ["render", str(path), "--wav", "--synth", "builtin", "--out", str(out)]
        assert main(args) == 0, capsys.readouterr().err
    audio, rate = read_wav(out / "timed.wav")
    assert len(audio) >= 3 * rate  # three seconds of music
    assert read_wav(out / "wrapped.wav")[0].std() > 0


@settings(max_examples=40, deadline=None)
@given(scores(max_notes=20, max_tracks=2), st.data())
def test_unisons_in_one_track_survive_a_write(score: Score, data: st.DataObject) -> None:
    """Two voices merged into one track on the same pitch at the same time stay two notes
    (a decoded REMI or events piece holds such copies)."""
    for t in score.tracks:
        if len(t):
            picks = data.draw(st.lists(st.integers(0, len(t) - 1), max_size=4))
            copies = t.notes[picks].copy()
            copies["duration"] += data.draw(st.sampled_from([0, 0, 120]))  # longer, or the same
            t.notes = np.concatenate([t.notes, copies])
            t.notes = t.notes[np.lexsort((t.notes["start"],))]
    back = read_midi(midi_bytes(score))
    expected = without_overlaps(score, unisons=True)
    assert_same_notes(expected, back, check_velocity=False)
    assert back.n_notes == score.n_notes  # overlaps are cut, never dropped
