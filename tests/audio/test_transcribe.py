"""Transcription: note F-measure, note extraction from activations, and (where onnxruntime and
basic-pitch's model file are installed) a SoundFont-rendered scale transcribed back."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from musegen.audio.transcribe import TranscribeSettings, extract_notes, note_f1, score_onsets
from musegen.cli.main import main
from musegen.score import Score, Tempo, Track, make_notes

FPS = 22_050 / 256


def test_note_f1() -> None:
    ref = [(0.0, 60), (0.5, 62), (1.0, 64)]
    assert note_f1(ref, ref) == 1.0
    assert note_f1([(0.03, 60), (0.5, 62), (1.0, 65)], ref) == pytest.approx(2 / 3)
    assert note_f1([(0.0, 60), (0.01, 60)], [(0.0, 60)]) == pytest.approx(2 / 3)  # one match
    assert note_f1([], ref) == 0.0 and note_f1([], []) == 1.0


def test_extract_notes_from_activations() -> None:
    onset, note = np.zeros((200, 88)), np.zeros((200, 88))
    onset[10, 39], note[10:60, 39] = 0.9, 0.8  # C4 from frame 10 to 60
    note[30:31, 39] = 0.1  # a one-frame dip is bridged
    onset[100, 43], note[100:102, 43] = 0.9, 0.8  # too short: dropped
    notes = extract_notes(onset, note, TranscribeSettings())
    assert len(notes) == 1
    start, end, pitch, velocity = notes[0]
    assert pitch == 60 and start == pytest.approx(10 / FPS) and end == pytest.approx(60 / FPS)
    assert 1 <= velocity <= 127


def scale() -> Score:
    pitches = [60, 62, 64, 65, 67, 69, 71, 72]
    notes = make_notes([i * 480 for i in range(8)], [400] * 8, pitches, 90)
    return Score(tpq=480, tracks=[Track(notes)], tempos=[Tempo(0, 120.0)])


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None
    or importlib.util.find_spec("basic_pitch") is None
    or importlib.util.find_spec("tinysoundfont") is None,
    reason="needs onnxruntime, basic-pitch's model file and tinysoundfont",
)
def test_scale_round_trip(tmp_path: Path) -> None:
    from musegen.render.audio import find_soundfont, render_wav

    if find_soundfont() is None:
        pytest.skip("no SoundFont")
    wav = tmp_path / "scale.wav"
    render_wav(scale(), wav, synth="soundfont", sample_rate=22_050)
    assert main(["audio", "transcribe", str(wav), "--out", str(tmp_path / "t.mid")]) == 0
    from musegen.io import load

    got = load(tmp_path / "t.mid")
    assert note_f1(score_onsets(got), score_onsets(scale())) >= 0.8


def test_cli_bad_input_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["audio", "transcribe", str(tmp_path / "none.wav"), "--out", str(tmp_path / "x.mid")]
    )
    assert code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
