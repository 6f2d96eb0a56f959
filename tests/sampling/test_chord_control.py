"""Chord and density control end to end: forced tokens reach the sampled sequences, the
benchmark's checks agree with an independent chord-tone rule, and the CLI's errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from benchhelpers import load_benchmark
from musegen.cli.main import main
from musegen.models import build_model, save_model
from musegen.sampling.generate import SamplingConfig, generate
from musegen.score import Score, TimeSignature, Track, make_notes
from musegen.theory import parse_chord
from musegen.tokenizers import get_tokenizer

Q = 480


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("control")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tok = get_tokenizer("melody-chords", density_edges=[1.0, 1.5], steps_per_quarter=2)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
    folder = tmp_path_factory.mktemp("m") / "model"
    save_model(model, folder, {"tokenizer": tok.to_dict(), "description": "random weights"})
    return folder


def test_forced_chords_reach_the_sampled_bars(model_dir: Path, one_torch_thread: None) -> None:
    from musegen.models import load_model

    model, meta = load_model(model_dir)
    tok = get_tokenizer("melody-chords", **meta["tokenizer"]["config"])
    asked, dens = ["C", "G", "Am", "F", "Dm", "E7"], ["low", "high", "medium"]
    forced = tok.controlled(chords=asked, density=dens)  # type: ignore[attr-defined]
    primer = forced.primer_for_length(Score(tpq=Q, time_signatures=[TimeSignature(0)]), 6)
    seqs = generate(model, forced, num=3, primer=primer, config=SamplingConfig(seed=3))
    for ids in seqs:
        bars = forced.bar_controls(ids)
        assert [b.chord for b in bars] == asked
        assert [b.density for b in bars] == dens * 2


def test_sampled_bars_have_the_density_asked(
    model_dir: Path, bench: ModuleType, one_torch_thread: None
) -> None:
    """Counted while sampling, every bar's notes fall in its bin by the benchmark's check (the
    encoder's count); with the token alone a random model misses often."""
    from musegen.models import load_model

    model, meta = load_model(model_dir)
    tok = get_tokenizer("melody-chords", **meta["tokenizer"]["config"])
    chords, dens = ["C", "G", "Am", "F"] * 2, ["low", "medium", "high", "medium"] * 2
    primer = tok.primer_for_length(Score(tpq=Q, time_signatures=[TimeSignature(0)]), 8)
    hits = {}
    for count in (True, False):
        forced = tok.controlled(chords=chords, density=dens, count=count)  # type: ignore[attr-defined]
        seqs = generate(model, forced, num=4, primer=primer, config=SamplingConfig(seed=5))
        checks = [c for ids in seqs for c in bench.check_ids(tok, ids, chords, dens)]
        assert len(checks) == 32
        hits[count] = np.mean([c.density_hit for c in checks])
    assert hits[True] == 1.0 and hits[False] < 0.9


def melody(pitches_per_bar: list[list[int]]) -> Score:
    """4/4 bars of even notes, the given pitches in each."""
    notes = []
    for b, ps in enumerate(pitches_per_bar):
        step = 4 * Q // len(ps)
        notes += [(b * 4 * Q + k * step, step, p) for k, p in enumerate(ps)]
    start, dur, pitch = zip(*notes, strict=True)
    return Score(
        tpq=Q,
        tracks=[Track(make_notes(start, dur, pitch, 80))],
        time_signatures=[TimeSignature(0, 4, 4)],
    )


def covers(pitches: list[int], chord: str) -> bool:
    """The test's own chord check: every tone of the chord is sung, and at least three
    quarters of the bar's notes are chord tones."""
    tones = parse_chord(chord).pitch_classes
    pcs = [p % 12 for p in pitches]
    return tones <= set(pcs) and sum(pc in tones for pc in pcs) >= 0.75 * len(pcs)


def test_benchmark_checks_agree_with_an_independent_chord_rule(bench: ModuleType) -> None:
    tok = get_tokenizer("melody-chords", density_edges=[1.0, 1.5])
    rng = np.random.default_rng(0)
    names = ["C", "G", "Am", "F", "Dm", "E", "Bdim", "G7"]
    bars, asked, expected = [], [], []
    for _ in range(48):
        chord = str(rng.choice(names))
        tones = sorted(parse_chord(chord).pitch_classes)
        if rng.random() < 0.5:  # an arpeggio of the chord, from the root or not
            ps = [60 + t for t in tones] + [72 + tones[0]]
            ps = ps[int(rng.integers(0, 3)) :] + ps
        else:  # a triad that is neither the chord nor inside it
            other = parse_chord(str(rng.choice([n for n in names[:-2] if n != chord])))
            ps = [60 + t for t in sorted(other.pitch_classes)] * 2
        bars.append(ps)
        asked.append(chord)
        expected.append(covers(ps, chord))
    checks = bench.check_piece(tok, melody(bars), asked, [])
    hits = [c.chord_hit for c in checks]
    assert hits == expected
    shares = np.array([c.tone_share for c in checks])
    assert (shares[np.array(expected)] >= 0.75).all()
    assert 0.3 < np.mean(expected) < 0.7  # both kinds of bar are tested


def test_generate_with_chords_and_its_errors(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["generate", "--model", str(model_dir), "--bars", "4", "--seed", "1"]
    assert main([*args, "--chords", "C G Am F", "--density", "high", "--out", str(out)]) == 0
    settings = json.loads((out / "piece.json").read_text())
    assert settings["controls"] == {"chords": ["C", "G", "Am", "F"], "density": ["high"]}
    capsys.readouterr()
    for extra, message in (
        (["--chords", "C H"], "cannot read chord 'H'"),
        (["--chords", "Cmaj7"], "knows the qualities"),
        (["--chords", " "], "--chords is empty"),
        (["--density", "loud"], "choose low, medium or high"),
    ):
        assert main([*args, *extra, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert main(["generate", "--model", "bach", "--chords", "C", "--out", str(out)]) == 2
    assert "takes no chords" in capsys.readouterr().err
