from __future__ import annotations

import os
import signal
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from musegen.errors import InputError, MusegenError
from musegen.render import audio
from musegen.render.audio import (
    BUILTIN_TAIL,
    DRUM_CHANNEL,
    PEAK,
    SAMPLE_RATE,
    SOUNDFONT_TAIL,
    TIMBRES,
    channel_plan,
    describe_audio,
    drum_sound,
    midi_notes,
    read_wav,
    render_audio,
    render_builtin,
    render_soundfont,
    render_wav,
    resolve_synth,
    timbre_name,
)
from musegen.score import Note, Score, Tempo, Track

SR = SAMPLE_RATE


def window_rms(audio: np.ndarray, t0: float, t1: float) -> float:
    a = audio[round(t0 * SR) : round(t1 * SR)]
    return float(np.sqrt(np.mean(a.astype(np.float64) ** 2)))


def assert_gap_shape(audio: np.ndarray, release: float) -> None:
    """Sound where the gap score's notes sound (0-1 s, 3-4 s), silence after the release."""
    for t in np.arange(0.05, 0.95, 0.1):
        assert window_rms(audio, t, t + 0.05) > 0.01, f"silent at {t:.2f} s"
    for t in np.arange(3.05, 3.95, 0.1):
        assert window_rms(audio, t, t + 0.05) > 0.01, f"silent at {t:.2f} s"
    assert window_rms(audio, 1.0 + release, 2.95) < 1e-4


# --------------------------------------------------------------------------- built-in synth
def test_builtin_wav_duration_gap_and_format(gap_score: Score, tmp_path: Path) -> None:
    path = render_wav(gap_score, tmp_path / "gap.wav", synth="builtin")
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 44_100)
    audio, rate = read_wav(path)
    assert rate == SR and audio.shape[1] == 2
    assert len(audio) == pytest.approx((4.0 + BUILTIN_TAIL) * SR, abs=2)
    assert abs(np.abs(audio).max() - PEAK) < 1e-3  # normalised to -1 dBFS
    assert_gap_shape(audio, release=max(t.release for t in TIMBRES.values()))
    assert window_rms(audio, 4.0, 4.2) > 1e-4  # the release tail of the last note is kept


def test_builtin_timbres_follow_gm_families() -> None:
    names = {p: timbre_name(Track(program=p)) for p in (0, 19, 33, 40, 56, 73, 81, 89)}
    assert names == {
        0: "piano",
        19: "organ",
        33: "pluck",
        40: "pad",
        56: "wind",
        73: "wind",
        81: "organ",
        89: "pad",
    }
    assert timbre_name(Track(is_drum=True)) == "drums"


def test_builtin_drum_track_plays_the_drum_kit() -> None:
    """A drum track's hit is exactly the kit's sample; the same key on a piano is not."""
    hit = Note(42, 0, 120, 127)
    drums = Score(tracks=[Track.from_notes([hit], is_drum=True)], tempos=[Tempo(0, 120.0)])
    left = render_builtin(drums)[:, 0]
    sample = drum_sound(42)
    n = len(sample)
    np.testing.assert_allclose(left[:n], np.cos(np.pi / 4) * sample, atol=1e-6)
    piano = Score(tracks=[Track.from_notes([hit], program=0)], tempos=[Tempo(0, 120.0)])
    assert not np.allclose(render_builtin(piano)[:n, 0], left[:n], atol=1e-3)


def test_oscillator_recurrence_matches_direct_sum() -> None:
    """The Chebyshev recurrence gives the same wave as summing sin(h x) directly."""
    timbre = TIMBRES["piano"]
    n, pitch = 20_000, 57
    weights = audio._harmonic_weights(timbre, n, SR)
    fast = audio._oscillator(timbre, pitch, n, SR, weights)
    t = np.arange(n) / SR
    f = 440.0 * 2 ** ((pitch - 69) / 12)
    amps = np.array(timbre.harmonics) / sum(timbre.harmonics)
    slow = sum(
        amps[h] * np.exp(-timbre.decays[h] * t) * np.sin(2 * np.pi * f * (h + 1) * t)
        for h in range(len(amps))
    )
    np.testing.assert_allclose(fast, slow, atol=2e-4)


def test_high_notes_drop_harmonics_above_nyquist() -> None:
    wave_ = audio._oscillator(TIMBRES["organ"], 120, 4096, SR, None)  # 8.4 kHz fundamental
    spectrum = np.abs(np.fft.rfft(wave_ * np.hanning(len(wave_))))
    freqs = np.fft.rfftfreq(len(wave_), 1 / SR)
    assert spectrum[freqs > 0.46 * SR].max() < 1e-3 * spectrum.max()


def test_empty_score_is_a_short_silent_wav(tmp_path: Path) -> None:
    for score in (Score(), Score(tracks=[Track(program=5)])):
        path = render_wav(score, tmp_path / "empty.wav", synth="builtin")
        data, rate = read_wav(path)
        assert rate == SR and len(data) == round(BUILTIN_TAIL * SR)
        assert not data.any()


def test_odd_notes_do_not_crash(tmp_path: Path) -> None:
    """Zero-length, zero-velocity, negative-start and out-of-range notes render quietly."""
    notes = np.array(
        [(0, 0, 60, 80), (-100, 50, 62, 80), (10, 480, 64, 0), (0, 480, 130, 80), (0, 480, -3, 80)],
        dtype=[("start", "i8"), ("duration", "i8"), ("pitch", "i2"), ("velocity", "i2")],
    )
    score = Score(tracks=[Track(notes), Track(notes.copy(), is_drum=True)])
    out = render_audio(score, synth="builtin")
    assert np.isfinite(out).all() and out.shape[1] == 2


def test_pans_spread_tracks(band_score: Score) -> None:
    out = render_builtin(band_score)
    assert not np.allclose(out[:, 0], out[:, 1])  # really stereo


# --------------------------------------------------------------------------- choosing a synth
def test_auto_without_soundfont_uses_builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio, "system_soundfonts", lambda: iter(()))
    monkeypatch.setattr(audio, "packaged_soundfonts", lambda: iter(()))
    assert resolve_synth("auto") == ("builtin", None)
    assert describe_audio() == {"synth": "builtin", "why": "no SoundFont found"}
    with pytest.raises(MusegenError, match="no SoundFont found"):
        resolve_synth("soundfont")
    with pytest.raises(MusegenError, match="unknown synth"):
        resolve_synth("fm")


def test_the_packaged_soundfont_comes_before_the_system_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pretty_midi's TimGM6mb.sf2 plays on every machine alike, whatever /usr/share holds."""
    packaged = list(audio.packaged_soundfonts())
    if not packaged:
        pytest.skip("pretty_midi is not installed (make venv installs it)")
    (tmp_path / "other.sf2").write_bytes(b"RIFF\x04\x00\x00\x00sfbk")
    monkeypatch.setattr(audio, "SYSTEM_SOUNDFONT_GLOBS", (str(tmp_path / "*.sf2"),))
    assert audio.locate_soundfont() == (packaged[0], "the pretty_midi package")
    monkeypatch.setattr(audio, "packaged_soundfonts", lambda: iter(()))
    assert audio.locate_soundfont() == (tmp_path / "other.sf2", "system")


def test_describe_audio_names_the_synth_and_soundfont(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sf = tmp_path / "x.sf2"
    sf.write_bytes(b"RIFF\x04\x00\x00\x00sfbk")
    monkeypatch.setattr(audio, "has_tinysoundfont", lambda: True)
    assert describe_audio("auto", sf) == {
        "synth": "soundfont",
        "soundfont": str(sf),
        "soundfont_from": "--soundfont",
    }
    monkeypatch.setenv("MUSEGEN_SOUNDFONT", str(sf))
    assert describe_audio()["soundfont_from"] == "$MUSEGEN_SOUNDFONT"
    assert describe_audio("builtin") == {"synth": "builtin", "why": "--synth builtin"}
    monkeypatch.delenv("MUSEGEN_SOUNDFONT")
    monkeypatch.setattr(audio, "has_tinysoundfont", lambda: False)
    assert describe_audio() == {"synth": "builtin", "why": "tinysoundfont is not installed"}


def test_missing_and_bad_soundfont_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="SoundFont not found"):
        resolve_synth("auto", tmp_path / "nope.sf2")
    with pytest.raises(InputError, match="is a folder"):
        resolve_synth("soundfont", tmp_path)
    garbage = tmp_path / "garbage.sf2"
    garbage.write_bytes(os.urandom(5000))
    with pytest.raises(InputError, match="no RIFF 'sfbk' header"):
        resolve_synth("auto", garbage)
    monkeypatch.setenv("MUSEGEN_SOUNDFONT", str(tmp_path / "gone.sf2"))
    with pytest.raises(InputError, match=r"\$MUSEGEN_SOUNDFONT"):
        resolve_synth("auto")
    assert resolve_synth("builtin", tmp_path / "nope.sf2") == ("builtin", None)


def test_missing_tinysoundfont_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sf = tmp_path / "x.sf2"
    sf.write_bytes(b"RIFF\x04\x00\x00\x00sfbk")
    monkeypatch.setattr(audio, "has_tinysoundfont", lambda: False)
    with pytest.raises(MusegenError, match="--no-deps tinysoundfont"):
        resolve_synth("auto", sf)


# --------------------------------------------------------------------------- channels
def test_drums_go_to_channel_ten(band_score: Score) -> None:
    plan = channel_plan(band_score)
    assert plan == [0, 1, 2, DRUM_CHANNEL]
    notes = midi_notes(band_score)
    drum_keys = set(band_score.tracks[3].notes["pitch"].tolist())
    on_nine = notes[notes["channel"] == DRUM_CHANNEL]
    assert len(on_nine) == len(band_score.tracks[3]) and set(on_nine["key"].tolist()) == drum_keys


def test_many_tracks_share_channels_by_program_never_the_drum_channel() -> None:
    tracks = [Track.from_notes([Note(60, 0, 10)], program=i % 20) for i in range(40)]
    plan = channel_plan(Score(tracks=[*tracks, Track(is_drum=True)]))
    assert DRUM_CHANNEL not in plan[:-1] and plan[-1] == DRUM_CHANNEL
    assert plan[0] == plan[20]  # same program, same channel


def test_soundfont_channels_get_programs_and_the_drum_kit(band_score: Score) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple] = []

        def program_select(self, *args: object) -> None:
            self.calls.append(("program", *args))

        def control_change(self, *args: object) -> None:
            self.calls.append(("cc", *args))

    rec = Recorder()
    audio._select_programs(rec, 0, band_score, Path("x.sf2"))
    programs = [c[1:] for c in rec.calls if c[0] == "program"]
    assert programs == [
        (0, 0, 0, 0, False),
        (1, 0, 0, 33, False),
        (2, 0, 0, 48, False),
        (9, 0, 0, 0, True),
    ]


# --------------------------------------------------------------------------- real SoundFont
def test_soundfont_wav_duration_and_gap(gap_score: Score, soundfont: Path, tmp_path: Path) -> None:
    path = render_wav(gap_score, tmp_path / "sf.wav", synth="soundfont", soundfont=soundfont)
    data, rate = read_wav(path)
    assert rate == SR and data.shape[1] == 2
    assert 4.0 * SR <= len(data) <= (4.0 + SOUNDFONT_TAIL) * SR
    assert_gap_shape(data, release=1.0)


def test_soundfont_drums_differ_from_piano(soundfont: Path) -> None:
    hit = [Note(38, 0, 240, 110)]
    drum = render_soundfont(Score(tracks=[Track.from_notes(hit, is_drum=True)]), soundfont)
    piano = render_soundfont(Score(tracks=[Track.from_notes(hit, program=0)]), soundfont)
    n = min(len(drum), len(piano), SR // 4)
    assert np.abs(drum[:n]).max() > 0.01
    assert not np.allclose(drum[:n], piano[:n], atol=1e-3)


def test_note_cache_matches_streaming_the_events(band_score: Score, soundfont: Path) -> None:
    """Rendering each distinct note once equals streaming note-on/off events through the synth."""
    import tinysoundfont

    cached = render_soundfont(band_score, soundfont)
    synth = tinysoundfont.Synth(samplerate=SR)
    audio._select_programs(synth, synth.sfload(str(soundfont)), band_score, soundfont)
    notes = midi_notes(band_score)
    events = sorted(
        [(onset, 1, ch, key, vel) for onset, _, ch, key, vel in notes.tolist()]
        + [(onset + length, 0, ch, key, 0) for onset, length, ch, key, _ in notes.tolist()]
    )
    stream = np.zeros_like(cached)
    pos = 0
    for sample, on, channel, key, velocity in events:
        sample = min(sample, len(stream))
        if sample > pos:
            stream[pos:sample] = np.frombuffer(
                synth.generate_simple(sample - pos), np.float32
            ).reshape(-1, 2)
            pos = sample
        synth.noteon(channel, key, velocity) if on else synth.noteoff(channel, key)
    stream[pos:] = np.frombuffer(synth.generate_simple(len(stream) - pos), np.float32).reshape(
        -1, 2
    )
    err = np.sqrt(np.mean((cached - stream) ** 2)) / np.sqrt(np.mean(stream**2))
    assert err < 0.01


def test_empty_score_with_soundfont_is_silent(soundfont: Path) -> None:
    out = render_audio(Score(), synth="soundfont", soundfont=soundfont)
    assert out.shape[1] == 2 and 0 < len(out) <= SR and not out.any()


def test_soundfont_with_a_valid_header_but_garbage(tmp_path: Path) -> None:
    pytest.importorskip("tinysoundfont")
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00sfbkLIST" + os.urandom(4000))
    score = Score(tracks=[Track.from_notes([Note(60, 0, 480)])])
    with pytest.raises(InputError, match="not a usable SoundFont"):
        render_audio(score, soundfont=bad)


def test_soundfont_that_crashes_the_synth_is_an_error(soundfont: Path, tmp_path: Path) -> None:
    """A corrupt index in the 'ibag' table segfaults TinySoundFont: we get a message instead."""
    data = bytearray(soundfont.read_bytes())
    at = data.find(b"ibag") + 8 + 4  # the second record's generator index
    data[at : at + 2] = struct.pack("<H", 4096)
    bad = tmp_path / "corrupt.sf2"
    bad.write_bytes(bytes(data))
    score = Score(tracks=[Track.from_notes([Note(60, 0, 480)])])
    with pytest.raises(InputError, match="crashed the synthesizer"):
        render_audio(score, soundfont=bad)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_child_crash_and_errors_come_back_as_exceptions() -> None:
    with pytest.raises(InputError, match="signal"):
        audio._in_child(lambda: os.kill(os.getpid(), signal.SIGSEGV), Path("x.sf2"))

    def fail() -> None:
        raise InputError("x.sf2", "SoundFont has no preset for program 5")

    with pytest.raises(InputError, match="no preset for program 5"):
        audio._in_child(fail, Path("x.sf2"))
