"""The neural synthesizer: block synthesis equals per-sample synthesis, save/load round trip,
the shipped model renders a score (and `render --synth neural`), a tiny training run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from musegen.audio.synth import (  # noqa: E402
    SynthConfig,
    build_network,
    harmonic_audio,
    harmonic_audio_blocks,
    instrument_index,
    load_synth,
    render_neural,
    render_notes,
    save_synth,
)
from musegen.errors import InputError, MusegenError  # noqa: E402
from musegen.score import Score, Tempo, Track, make_notes  # noqa: E402

TINY = SynthConfig(harmonics=8, noise_bands=4, hidden=16, layers=1, pitch_dim=4)


def chorale_bit(program: int = 19) -> Score:
    soprano = make_notes([0, 480, 960], [480, 480, 960], [67, 69, 71], [80, 70, 90])
    bass = make_notes([0, 960], [960, 960], [43, 43], 64)
    return Score(
        tpq=480,
        tracks=[Track(soprano, program=program), Track(bass, program=program)],
        tempos=[Tempo(0, 120.0)],
    )


@pytest.mark.parametrize("n_samples", [1000, 1024, 1056, 64 * 17 + 31])
def test_block_synthesis_equals_per_sample(n_samples: int) -> None:
    """Harmonic and stretched partials alike."""
    torch.manual_seed(0)
    harm = torch.rand(3, n_samples // TINY.hop + 1, TINY.harmonics)
    k = torch.arange(1, TINY.harmonics + 1, dtype=torch.float64)
    f0 = 440.0 * 2.0 ** ((torch.tensor([30.0, 60.0, 100.0]) - 69.0) / 12.0)
    hz = f0[:, None] * k * torch.sqrt(1.0 + torch.tensor([[0.0], [3e-4], [1e-3]]) * k * k)
    slow = harmonic_audio(harm, hz, n_samples, TINY)
    fast = harmonic_audio_blocks(harm, hz, n_samples, TINY)
    assert fast.shape == slow.shape
    assert float((fast - slow).abs().max()) < 1e-4 * float(slow.abs().max())


def test_stretch_table_of_ones_is_the_harmonic_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    plain = build_network(TINY).eval()
    stretched = build_network(SynthConfig(**{**TINY.__dict__, "stretch": True})).eval()
    stretched.load_state_dict({**plain.state_dict(), "partials": stretched.partials})
    args = (torch.tensor([40, 70]), torch.tensor([80.0, 50.0]), torch.tensor([0, 1]))
    with torch.no_grad():
        a = plain(*args, torch.tensor([0.3, 0.2]), 4000, blocks=True)
        b = stretched(*args, torch.tensor([0.3, 0.2]), 4000, blocks=True)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        stretched.partials[0, 40] = torch.tensor([1.0, 1e-3])  # the first note's partials move
        c = stretched(*args, torch.tensor([0.3, 0.2]), 4000, blocks=True)
    assert float((c[0] - a[0]).abs().max()) > 1e-3
    np.testing.assert_array_equal(c[1].numpy(), a[1].numpy())
    save_synth(stretched, tmp_path / "s")  # the table travels with the weights
    assert float(load_synth(tmp_path / "s").partials[0, 40, 1]) == pytest.approx(1e-3)


def test_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_network(TINY).eval()
    save_synth(model, tmp_path / "m")
    again = load_synth(tmp_path / "m")
    args = (torch.tensor([60]), torch.tensor([80.0]), torch.tensor([1]), torch.tensor([0.3]))
    with torch.no_grad():
        np.testing.assert_array_equal(model(*args, 4000).numpy(), again(*args, 4000).numpy())
    assert json.loads((tmp_path / "m" / "config.json").read_text())["kind"] == "ddsp-synth"


def test_render_notes_adds_repeated_notes_once_rendered() -> None:
    torch.manual_seed(0)
    model = build_network(TINY).eval()
    one = render_notes(model, *(np.array([x]) for x in (0, 3200, 60, 80, 0)), total=20_000)
    two = render_notes(
        model,
        np.array([0, 8000]),
        np.array([3200, 3200]),
        np.array([60, 60]),
        np.array([80, 80]),
        np.array([0, 0]),
        total=20_000,
    )
    np.testing.assert_allclose(two[:8000], one[:8000], atol=1e-6)
    np.testing.assert_allclose(two[8000:], one[8000:] + one[:12_000], atol=1e-5)


def test_shipped_model_renders_a_score() -> None:
    audio = render_neural(chorale_bit(), 16_000)
    assert audio.shape[1] == 2 and audio.shape[0] >= 2 * 16_000
    assert np.isfinite(audio).all() and np.abs(audio).max() > 1e-3
    np.testing.assert_array_equal(audio, render_neural(chorale_bit(), 16_000))  # deterministic


def test_instrument_mapping() -> None:
    assert instrument_index(0, [0, 19]) == 0
    assert instrument_index(19, [0, 19]) == 1
    assert instrument_index(48, [0, 19]) == 1  # strings: sustained -> organ
    assert instrument_index(24, [0, 19]) == 0  # guitar: decaying -> piano


def test_missing_model_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        load_synth(tmp_path / "none")


@pytest.mark.slow
def test_render_command_neural(tmp_path: Path) -> None:
    from musegen.cli.main import main
    from musegen.io import save

    midi = tmp_path / "bit.mid"
    save(chorale_bit(), midi)
    assert main(["render", str(midi), "--wav", "--synth", "neural", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "bit.render.json").read_text())
    assert record["outputs"]["wav"]["synth"] == "neural"
    assert (tmp_path / "bit.wav").stat().st_size > 44_100 * 4


@pytest.mark.slow
def test_tiny_training_run(tmp_path: Path) -> None:
    pytest.importorskip("tinysoundfont")
    from musegen.audio.train_synth import TrainSynthConfig, train_synth

    run = TrainSynthConfig(
        model=TINY,
        notes_per_instrument=4,
        valid_notes=4,
        max_note_seconds=0.3,
        steps=3,
        batch=2,
        crop=1024,
        valid_every=3,
    )
    summary = train_synth(run, tmp_path / "run", log=lambda _: None)
    assert np.isfinite(summary["best_valid_loss"])
    assert load_synth(tmp_path / "run" / "best").cfg.harmonics == 8


def _tiny_run(steps: int = 5):  # type: ignore[no-untyped-def]
    from musegen.audio.train_synth import TrainSynthConfig

    return TrainSynthConfig(
        model=TINY, notes_per_instrument=4, valid_notes=4, max_note_seconds=0.3,
        steps=steps, batch=2, crop=1024, valid_every=2,
    )  # fmt: skip


@pytest.mark.slow
def test_training_stopped_by_ctrl_c_resumes_to_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during step 3 (between validations) saves that step and stops with the
    one-line message; ``resume`` then ends with the weights, the best model and the log an
    uninterrupted run ends with."""
    import os
    import signal

    from safetensors.torch import load_file

    pytest.importorskip("tinysoundfont")
    from musegen.audio import train_synth as ts
    from musegen.errors import Interrupted

    quiet = {"log": lambda _: None}
    ts.train_synth(_tiny_run(), tmp_path / "straight", **quiet)
    calls = {"n": 0}
    crop = ts.crop_start

    def crop_then_ctrl_c(*a, **k):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:  # the user presses Ctrl-C during the third step
            os.kill(os.getpid(), signal.SIGINT)
        return crop(*a, **k)

    monkeypatch.setattr(ts, "crop_start", crop_then_ctrl_c)
    with pytest.raises(Interrupted, match="after step 3"):
        ts.train_synth(_tiny_run(), tmp_path / "resumed", **quiet)
    monkeypatch.setattr(ts, "crop_start", crop)
    with pytest.raises(MusegenError, match="already holds a synth run"):
        ts.train_synth(_tiny_run(), tmp_path / "resumed", **quiet)
    with pytest.raises(MusegenError, match=r"other settings than the run's \(steps\)"):
        ts.train_synth(_tiny_run(steps=7), tmp_path / "resumed", resume=True, **quiet)
    ts.train_synth(_tiny_run(), tmp_path / "resumed", resume=True, **quiet)
    for part in ("checkpoint", "best"):
        a = load_file(str(tmp_path / "straight" / part / "model.safetensors"))
        b = load_file(str(tmp_path / "resumed" / part / "model.safetensors"))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), part

    def rows(folder: Path) -> list[dict]:  # type: ignore[type-arg]
        lines = (folder / "log.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in lines]

    assert rows(tmp_path / "straight") == rows(tmp_path / "resumed")


def test_resume_without_a_checkpoint_is_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from musegen.cli.main import main

    run = tmp_path / "run.json"
    run.write_text(json.dumps(_tiny_run().to_dict()))
    code = main(["audio", "train-synth", "--config", str(run), "--out", str(tmp_path / "x"),
                 "--resume"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no checkpoint to resume from" in err[0]
