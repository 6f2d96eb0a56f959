"""Gibbs sampling with Coconet: given notes kept, ranges, reproducibility, tasks and CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from musegen.cli.main import main
from musegen.errors import MusegenError
from musegen.io import load, save
from musegen.metrics.voice_leading import check_voice_leading
from musegen.models import build_model, save_model
from musegen.sampling.gibbs import (
    AnnealSchedule,
    HarmonizeOptions,
    generate_chorales,
    grid_score,
    harmonize,
    infill,
    parse_bars,
    parse_voices,
    sample_pitches,
    score_grid,
)
from musegen.sampling.rules_energy import RuleWeights
from musegen.score import Note, Score, TimeSignature, Track

RANGES = {"soprano": [60, 79], "alto": [55, 72], "tenor": [50, 67], "bass": [48, 62]}
FAST = AnnealSchedule(steps=6)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny convolutions


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    opts = {"n_layers": 2, "channels": 8, "time_dilations": [1, 2], "low": 48, "high": 79}
    return build_model("coconet", **opts, **RANGES).eval()


@pytest.fixture(scope="module")
def model_dir(model: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("m") / "coconet-tiny"
    save_model(model, folder, {"description": "random weights"})
    return folder


def in_range(pitches: np.ndarray) -> bool:
    lows = np.array([r[0] for r in RANGES.values()])
    highs = np.array([r[1] for r in RANGES.values()])
    return bool(((pitches >= lows) & (pitches <= highs)).all())


def melody(pitches: list[int], quarter: int = 480) -> Score:
    """Quarter notes; a repeated pitch stays two notes."""
    notes = [Note(p, i * quarter, quarter) for i, p in enumerate(pitches)]
    return Score(tracks=[Track.from_notes(notes)], time_signatures=[TimeSignature(0, 4, 4)])


def parallels(score: Score) -> int:
    counts = check_voice_leading(score).counts()
    return counts["parallel_fifths"] + counts["parallel_octaves"]


TUNE = [72, 74, 76, 74, 72, 71, 72, 74, 76, 77, 79, 77, 76, 74, 72, 72]


def chorale(bars: int = 4) -> Score:
    """A four-voice score, a chord per quarter note, voices labelled S/A/T/B."""
    chords = [[72, 67, 64, 48], [72, 69, 65, 53], [74, 67, 62, 55], [72, 67, 64, 48]]
    rows = [chords[(t // 4) % 4] for t in range(bars * 16)]
    score = grid_score(np.array(rows))
    score.time_signatures = [TimeSignature(0, 4, 4)]
    return score


# ----------------------------------------------------------------------------- the sampler
def test_schedule_anneals_and_scales_with_cells() -> None:
    s = AnnealSchedule()
    total = 100
    p = [s.block_probability(n, total) for n in range(total)]
    assert p[0] == 1.0 and p[1] <= s.pmax and p[-1] == s.pmin
    assert all(a >= b for a, b in itertools.pairwise(p[1:]))
    assert s.n_steps(1200) > s.n_steps(900) > s.n_steps(10) == s.min_steps
    assert s.n_steps(10**9) == s.max_steps and AnnealSchedule(steps=7).n_steps(999) == 7
    with pytest.raises(MusegenError):
        AnnealSchedule(pmin=0.5, pmax=0.2)


def test_given_cells_never_change_and_free_cells_stay_in_range(model: torch.nn.Module) -> None:
    rng = np.random.default_rng(0)
    lows = np.array([60, 55, 50, 48])
    pitches = lows + rng.integers(0, 8, size=(3, 48, 4))
    pitches[0, 5, 2] = -1  # a given rest
    given = rng.random(pitches.shape) < 0.4
    out = sample_pitches(model, pitches, given, seed=3, schedule=FAST)
    assert out.shape == pitches.shape
    assert np.array_equal(out[given], pitches[given])
    chosen = np.where(given, lows + 1, out)  # given cells replaced by in-range stand-ins
    assert in_range(chosen)  # no rests and no out-of-range pitch where the model chose


def test_sampling_is_reproducible_from_the_seed(model: torch.nn.Module) -> None:
    pitches = np.full((32, 4), -1)
    given = np.zeros((32, 4), dtype=bool)
    a = sample_pitches(model, pitches, given, seed=7, schedule=FAST, temperature=0.9)
    b = sample_pitches(model, pitches, given, seed=7, schedule=FAST, temperature=0.9)
    c = sample_pitches(model, pitches, given, seed=8, schedule=FAST, temperature=0.9)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    greedy = sample_pitches(model, pitches, given, seed=1, schedule=FAST, temperature=0)
    assert in_range(greedy)


def test_a_penalty_steers_and_forbids_but_never_forbids_everything(
    model: torch.nn.Module,
) -> None:
    every_step = AnnealSchedule(pmin=1.0, pmax=1.0, steps=2)  # step 1 redraws every free cell
    pitches = np.full((16, 4), 60)
    given = np.zeros((16, 4), dtype=bool)
    given[:, 0] = True
    wanted = np.array([72, 64, 57, 50])  # the one pitch each voice is allowed

    def only(grid: np.ndarray, hidden: np.ndarray) -> np.ndarray:
        assert grid.shape == hidden.shape == (1, 16, 4) and not hidden[..., 0].any()
        classes = np.arange(model.config.n_classes) - 1 + model.config.low
        voice = np.nonzero(hidden)[2]
        return np.where(classes[None, :] == wanted[voice, None], 0, np.inf)

    out = sample_pitches(model, pitches, given, seed=0, schedule=every_step, penalty=only)
    assert (out[:, 1:] == wanted[1:]).all()

    def nothing(grid: np.ndarray, hidden: np.ndarray) -> np.ndarray:
        return np.full((int(hidden.sum()), model.config.n_classes), np.inf)

    out = sample_pitches(model, pitches, given, seed=0, schedule=every_step, penalty=nothing)
    assert in_range(np.where(given, 72, out))  # ignored where it forbids every class


def test_given_notes_off_the_model_axis_are_refused(model: torch.nn.Module) -> None:
    pitches = np.full((4, 4), 60)
    pitches[0, 0] = 100
    with pytest.raises(MusegenError, match="pitch range"):
        sample_pitches(model, pitches, np.ones((4, 4), bool))


# ----------------------------------------------------------------------------- tasks
def test_harmonize_keeps_the_melody_exactly(model: torch.nn.Module) -> None:
    line = melody([72, 72, 74, 76, 77, 76, 74, 72])  # a repeated note at the start
    out = harmonize(model, line, seed=1, schedule=FAST)
    assert [t.voice for t in out.tracks] == ["S", "A", "T", "B"]
    soprano = out.tracks[0].notes
    assert soprano.tolist() == line.tracks[0].notes.tolist()
    pitch, _ = score_grid(out)
    assert (pitch >= 0).all() and in_range(pitch)
    assert out.time_signatures == line.time_signatures


def test_harmonize_transposes_a_high_melody_and_back(model: torch.nn.Module) -> None:
    line = melody([84, 86, 88, 86, 84, 83, 84, 84])  # above the tiny soprano range (60-79)
    out = harmonize(model, line, seed=2, schedule=FAST)
    assert out.tracks[0].notes.tolist() == line.tracks[0].notes.tolist()
    pitch, _ = score_grid(out)
    assert in_range(pitch - 9)  # the smallest shift into range was -9: the others moved back


def test_harmonize_top_voice_of_a_polyphonic_input_and_other_given_voices(
    model: torch.nn.Module,
) -> None:
    line = melody([72, 74, 76, 77])
    low = Track.from_notes([Note(48, 0, 1920)])
    poly = Score(tracks=[line.tracks[0], low])
    out = harmonize(model, poly, "S", seed=0, schedule=FAST)
    assert out.tracks[0].notes["pitch"].tolist() == [72, 74, 76, 77]
    two = harmonize(model, poly, "SB", seed=0, schedule=FAST)
    assert two.tracks[3].notes["pitch"].tolist() == [48]  # the bass was given, kept
    # a track labelled S is the melody even where another part goes above it
    above = Track.from_notes([Note(79, 0, 960)], voice="A")
    labelled = Score(tracks=[above, Track(line.tracks[0].notes, voice="S")])
    out = harmonize(model, labelled, "S", seed=0, schedule=FAST)
    assert out.tracks[0].notes["pitch"].tolist() == [72, 74, 76, 77]
    with pytest.raises(MusegenError, match="needs 3 parts"):
        harmonize(model, poly, "SAB")
    with pytest.raises(MusegenError, match="no notes"):
        harmonize(model, Score())


def test_harmonize_strict_never_writes_parallel_fifths_or_octaves(
    model: torch.nn.Module,
) -> None:
    line = melody(TUNE)
    bare = HarmonizeOptions.plain()
    plain = [harmonize(model, line, seed=s, schedule=FAST, options=bare) for s in range(3)]
    assert sum(parallels(p) for p in plain) > 0  # the random tiny model writes them freely
    for seed in range(3):
        strict = HarmonizeOptions(strict=True)
        out = harmonize(model, line, seed=seed, schedule=FAST, options=strict)
        assert parallels(out) == 0
        assert out.tracks[0].notes.tolist() == line.tracks[0].notes.tolist()
        pitch, _ = score_grid(out)
        assert (pitch >= 0).all() and in_range(pitch)
    # the guarantee holds without any steering too: the repair pass alone
    bare = HarmonizeOptions(rules=RuleWeights(), smooth="none", strict=True)
    assert parallels(harmonize(model, line, seed=0, schedule=FAST, options=bare)) == 0


def test_harmonize_options(model: torch.nn.Module) -> None:
    line = melody(TUNE[:8])
    best = HarmonizeOptions(samples=3)
    a = harmonize(model, line, seed=4, schedule=FAST, options=best)
    b = harmonize(model, line, seed=4, schedule=FAST, options=best)
    assert [t.notes.tolist() for t in a.tracks] == [t.notes.tolist() for t in b.tracks]
    smooth = harmonize(model, line, seed=4, schedule=FAST, options=HarmonizeOptions(smooth="all"))
    for track in smooth.tracks[1:3]:  # no 16th notes left in the alto and tenor, here
        assert (track.notes["duration"] >= smooth.tpq // 2).all()
    for bad in ({"smooth": "some"}, {"samples": 0}):
        with pytest.raises(MusegenError):
            HarmonizeOptions(**bad)  # type: ignore[arg-type]


def test_shipped_model_harmonizes_strictly_and_cleanly() -> None:
    """The shipped Coconet, 4 bars: strict writes no parallels; the default steering leaves
    far fewer voice-leading errors than bare Coconet on the same melody and seed."""
    from musegen.models import load_model
    from musegen.models.pretrained import resolve_model

    shipped, _ = load_model(resolve_model("coconet"))
    line = melody(TUNE)
    short = AnnealSchedule(steps=16)
    out = harmonize(shipped, line, seed=0, schedule=short, options=HarmonizeOptions(strict=True))
    assert parallels(out) == 0
    assert out.tracks[0].notes.tolist() == line.tracks[0].notes.tolist()
    errors = len(check_voice_leading(harmonize(shipped, line, seed=0, schedule=short)).errors)
    plain = harmonize(shipped, line, seed=0, schedule=short, options=HarmonizeOptions.plain())
    assert errors < len(check_voice_leading(plain).errors)


def test_infill_rewrites_only_the_chosen_bars_and_voices(model: torch.nn.Module) -> None:
    score = chorale(bars=4)
    before, _ = score_grid(score)
    out = infill(model, score, (2, 3), "ATB", seed=0, schedule=FAST)
    after, _ = score_grid(out)
    assert after.shape == before.shape
    outside = np.ones(len(before), dtype=bool)
    outside[16:48] = False
    assert np.array_equal(after[outside], before[outside])
    assert np.array_equal(after[:, 0], before[:, 0])  # soprano not asked for
    assert in_range(after)
    with pytest.raises(MusegenError, match="has 4 bar"):
        infill(model, score, (3, 6))


def test_generate_chorales(model: torch.nn.Module) -> None:
    pieces = generate_chorales(model, bars=2, num=3, seed=5, schedule=FAST)
    assert len(pieces) == 3
    for p in pieces:
        pitch, _ = score_grid(p)
        assert pitch.shape == (32, 4) and in_range(pitch)
        assert str(p.time_signatures[0]) == "4/4"
    again = generate_chorales(model, bars=2, num=3, seed=5, schedule=FAST)
    assert [p.tracks[1].notes.tolist() for p in pieces] == [
        p.tracks[1].notes.tolist() for p in again
    ]


def test_parsers() -> None:
    assert parse_voices("atb") == [1, 2, 3] and parse_voices("BS") == [0, 3]
    assert parse_bars("5-8") == (5, 8) and parse_bars("3") == (3, 3)
    for bad in ("", "X", "SS"):
        with pytest.raises(MusegenError, match="--voices"):
            parse_voices(bad)
    for bad in ("0-2", "8-5", "a-b", "1-2-3"):
        with pytest.raises(MusegenError, match="--bars"):
            parse_bars(bad)


# ----------------------------------------------------------------------------- CLI
def test_cli_harmonize_and_infill_write_files(model_dir: Path, tmp_path: Path) -> None:
    save(melody([72, 74, 76, 74, 72, 71, 72, 72]), tmp_path / "tune.mid")
    out = tmp_path / "out"
    args = ["harmonize", str(tmp_path / "tune.mid"), "--model", str(model_dir), "--steps", "4"]
    assert main([*args, "--out", str(out), "--seed", "3"]) == 0
    score = load(out / "tune_harmonized.mid")
    assert len([t for t in score.tracks if len(t)]) == 4
    assert (out / "tune_harmonized.json").exists()

    strict = [*args, "--strict", "--samples", "2", "--name", "strict"]
    assert main([*strict, "--out", str(out), "--seed", "3"]) == 0
    assert parallels(load(out / "strict.mid")) == 0
    info = json.loads((out / "strict.json").read_text())
    assert info["strict"] is True and info["samples"] == 2

    save(chorale(bars=3), tmp_path / "piece.mid")
    args = ["infill", str(tmp_path / "piece.mid"), "--bars", "2", "--voices", "AT"]
    assert main([*args, "--model", str(model_dir), "--steps", "4", "--out", str(out)]) == 0
    assert load(out / "piece_infilled.mid").n_notes > 0


def test_cli_harmonize_with_the_csp_harmonizer(tmp_path: Path) -> None:
    pytest.importorskip("musegen.compose.csp")
    save(melody([72, 74, 76, 74, 72, 71, 72, 72]), tmp_path / "tune.mid")
    assert (
        main(["harmonize", str(tmp_path / "tune.mid"), "--model", "csp", "-o", str(tmp_path)]) == 0
    )
    score = load(tmp_path / "tune_harmonized_csp.mid")
    assert len([t for t in score.tracks if len(t)]) == 4
    info = json.loads((tmp_path / "tune_harmonized_csp.json").read_text())
    assert info["model"] == "csp" and info["model_folder"] is None
    assert info["seed"] is None and info["samples"] is None  # deterministic, one draw


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["harmonize", "{empty}"], "no notes"),
        (["harmonize", "{tune}", "--voices", "SX"], "--voices"),
        (["harmonize", "{tune}", "--samples", "0"], "--samples"),
        (["infill", "{piece}", "--bars", "7-2"], "--bars"),
        (["infill", "{piece}", "--bars", "9"], "has 2 bar"),
        (["infill", "{piece}", "--bars", "1", "--voices", "Q"], "--voices"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(
    argv: list[str],
    message: str,
    model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    save(Score(), tmp_path / "empty.mid")
    save(melody([72, 74]), tmp_path / "tune.mid")
    save(chorale(bars=2), tmp_path / "piece.mid")
    files = {k: str(tmp_path / f"{k}.mid") for k in ("empty", "tune", "piece")}
    argv = [a.format(**files) for a in argv]
    code = main([*argv, "--model", str(model_dir), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
