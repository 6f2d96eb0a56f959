"""RL-Chord: the chord-lstm model, its generator and ``musegen harmonize --model``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from musegen.score import Score, TimeSignature, Track, make_notes


def tiny_chord_model(folder: Path) -> Path:
    from musegen.models import build_model, save_model

    torch.manual_seed(0)
    model = build_model("chord-lstm", hidden=16, chord_dim=8)
    save_model(model, folder, {"description": "tiny RL-Chord"})
    return folder


def melody(pitches: list[int]) -> Score:
    n = len(pitches)
    notes = make_notes([480 * i for i in range(n)], [480] * n, pitches, 80)
    return Score(tpq=480, tracks=[Track(notes=notes)], time_signatures=[TimeSignature(0, 4, 4)])


def test_padding_changes_nothing_with_lengths() -> None:
    from musegen.models import build_model
    from musegen.models.chord_lstm import CHORDS, FEATURES

    torch.manual_seed(0)
    model = build_model("chord-lstm", hidden=16, chord_dim=8).eval()
    x = torch.rand(1, 6, FEATURES)
    chords = torch.randint(0, CHORDS, (1, 6))
    alone, _ = model(x, chords)
    padded, _ = model(torch.cat([x, torch.rand(1, 3, FEATURES)], 1),
                      torch.cat([chords, torch.zeros(1, 3, dtype=torch.long)], 1),
                      torch.tensor([6]))  # fmt: skip
    torch.testing.assert_close(padded[:, :6], alone)


def test_the_generator_writes_melody_and_chords(tmp_path: Path) -> None:
    from musegen.sampling.generators import load_generator

    generator = load_generator(str(tiny_chord_model(tmp_path / "m")))
    assert type(generator).__name__ == "RlChordGenerator"
    tune = melody([67, 69, 71, 72, 74, 72, 71, 67])  # G major
    (out,) = generator.harmonize(tune, seed=1, samples=2).pieces
    assert len(out.tracks) == 2
    np.testing.assert_array_equal(out.tracks[0].notes, tune.tracks[0].notes)
    chords = out.tracks[1].notes
    assert len(chords) and chords["pitch"].min() >= 48 and chords["pitch"].max() < 72
    assert chords["start"].max() < 8 * 480
    again = generator.harmonize(tune, seed=1, samples=2).pieces[0]
    np.testing.assert_array_equal(again.tracks[1].notes, chords)


def test_harmonize_cli_with_a_chord_model(tmp_path: Path) -> None:
    from musegen.cli.main import main
    from musegen.io import save

    model = tiny_chord_model(tmp_path / "m")
    save(melody([60, 62, 64, 65, 67]), tmp_path / "tune.mid")
    argv = ["harmonize", str(tmp_path / "tune.mid"), "--model", str(model), "--seed", "3"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--threads", "1"]) == 0
    assert list((tmp_path / "out").glob("*.mid"))
    assert main([*argv, "--voices", "A", "--out", str(tmp_path / "o2")]) == 2


def test_the_shipped_rl_chord_harmonizes_in_the_melodys_key() -> None:
    from musegen.sampling.generators import load_generator

    generator = load_generator("rl-chord")
    tune = melody([67, 71, 74, 72, 71, 69, 66, 67])  # G major: G B D C B A F# G
    (out,) = generator.harmonize(tune, seed=0, temperature=0.0).pieces
    chords = out.tracks[1].notes
    roots = chords["pitch"][chords["start"] == chords["start"].max()] % 12
    assert 7 in roots  # the last chord holds G, the tonic
