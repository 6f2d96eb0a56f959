"""A MusicVAE trains with the one trainer (``musegen train --config``) on a prepared melody
dataset; segments are cut at bar lines; runs reproduce and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from latenthelpers import (
    TINY_VAE,
    chorale,
    chorale_tokenizer,
    melody_tokenizer,
    tiny_chorale_dataset,
    tiny_dataset,
    tune,
)
from musegen.cli.main import main
from musegen.models import build_model, load_model, save_model
from musegen.train.vae import SegmentDataset, melody_segments, piece_units

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TRAIN = {
    "batch_size": 4,
    "lr": 0.01,
    "max_steps": 4,
    "warmup_steps": 1,
    "eval_every": 2,
    "eval_batches": 0,
    "checkpoint_every": 2,
    "device": "cpu",
    "progress": False,
    "threads": 1,
    "precision": "fp32",
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_dataset(tmp_path_factory.mktemp("data") / "tunes")


def run_file(folder: Path, model: dict[str, object] | None = None, **train: object) -> Path:
    path = folder / "vae.json"
    run = {
        "model": "music-vae",
        "model_config": {**TINY_VAE, "decoder": "hierarchical", "n_bars": 2, **(model or {})},
        "train": TRAIN | train,
        "data": {"transpose": 2},
    }
    path.write_text(json.dumps(run))
    return path


def test_units_and_segments() -> None:
    tok = melody_tokenizer()
    config = build_model("music-vae", **TINY_VAE).config
    units = piece_units(tok.encode(tune(1)), tok, 16)
    assert units is not None and units.shape == (4, 16)
    assert piece_units(tok.encode(tune(1, meter=(3, 4))), tok, 16) is None
    half = piece_units(tok.encode(tune(1, bars=4, meter=(2, 4))), tok, 16)
    assert half is not None and half.shape == (2, 16)  # two bars of 2/4 a unit
    rows, origin = melody_segments([tok.encode(tune(i)) for i in range(3)], tok, config)
    assert rows.shape == (9, 32) and origin[:3] == [(0, 0), (0, 1), (0, 2)]
    assert not (rows[:, 0] == 1).any()  # no window starts inside a held note
    data = SegmentDataset(rows, config.n_classes, transpose=3, seed=1)
    assert len(data) == 9000
    assert np.array_equal(data[5].numpy(), data[5].numpy())
    moved = data[5].numpy() - rows[5]
    assert len(set(moved[rows[5] >= 2].tolist())) == 1 and (moved[rows[5] < 2] == 0).all()


def test_a_note_held_into_a_window_starts_there() -> None:
    """Bar 1 ends on a note held into bar 2 (two quarters, then a whole note from beat 3):
    the window from bar 2 starts with that note's pitch, then holds it."""
    from musegen.models.vae_steps import FIRST_PITCH, HOLD
    from musegen.score import Score, Tempo, TimeSignature, Track, make_notes

    tok = melody_tokenizer()
    config = build_model("music-vae", **{**TINY_VAE, "n_bars": 1}).config
    notes = make_notes(np.array([0, 480, 960, 2880]), np.array([480, 480, 1920, 960]),
                       np.array([60, 62, 64, 65]), 80)  # fmt: skip
    score = Score(tpq=480, tracks=[Track(notes, name="t")], tempos=[Tempo(0, 100.0)],
                  time_signatures=[TimeSignature(0, 4, 4)])  # fmt: skip
    rows, _ = melody_segments([tok.encode(score)], tok, config)
    e = 64 - config.low_pitch + FIRST_PITCH
    assert rows[0, 8:].tolist() == [e] + [HOLD] * 7
    assert rows[1, :8].tolist() == [e] + [HOLD] * 7  # an onset, where the piece holds it


@pytest.mark.slow
@pytest.mark.parametrize("model", [{}, {"encoder": "hierarchical", "batch_norm_mu": 1.0}])
def test_train_resume_and_reproduce(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], model: dict[str, object]
) -> None:
    """Seeds reproduce and a resumed run is the uninterrupted one (with batch-normalised
    means too: their running statistics travel with the checkpoint)."""
    run = run_file(tmp_path, model)
    args = ["train", "--config", str(run), "--data", str(dataset)]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    model_a, meta = load_model(tmp_path / "a" / "checkpoint")
    model_b, _ = load_model(tmp_path / "b" / "checkpoint")
    assert meta["model"] == "music-vae" and meta["tokenizer"]["tokenizer"] == "melody"
    assert meta["segments"]["train"] == 8 * 3 and int(model_a.kl_step) == 4
    for k, v in model_a.state_dict().items():
        assert np.array_equal(v.numpy(), model_b.state_dict()[k].numpy()), k
    assert (tmp_path / "a" / "best" / "model.safetensors").is_file()
    # two steps, then resumed to four: the same weights as four at once
    (tmp_path / "short").mkdir()
    short = run_file(tmp_path / "short", model, max_steps=2)
    out_c = str(tmp_path / "c")
    assert main(["train", "--config", str(short), "--data", str(dataset), "--out", out_c]) == 0
    assert main([*args, "--out", out_c, "--resume"]) == 0
    model_c, _ = load_model(tmp_path / "c" / "checkpoint")
    for k, v in model_a.state_dict().items():
        assert np.allclose(v.numpy(), model_c.state_dict()[k].numpy(), atol=1e-6), k


def test_bad_data(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_file(tmp_path)
    assert main(["train", "--config", str(run), "--out", str(tmp_path / "x")]) == 2
    assert "needs --data" in capsys.readouterr().err
    data = json.loads(run.read_text())
    data["data"] = {"hop_bars": 0}
    run.write_text(json.dumps(data))
    args = ["train", "--config", str(run), "--data", str(dataset)]
    assert main([*args, "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "hop_bars" in err and len(err.strip().splitlines()) == 1


def test_init_may_change_the_objective_not_the_network(tmp_path: Path) -> None:
    """``--init`` of a VAE: free bits, beta, dropouts may differ (a larger KL budget for a
    trained model); a different network is refused in one line."""
    from latenthelpers import tiny_vae
    from musegen.errors import MusegenError
    from musegen.train.vae import load_vae_init

    saved = tiny_vae(tmp_path / "v", seed=3)
    source, _ = load_model(saved)
    model = build_model("music-vae", **{**TINY_VAE, "free_bits": 64.0, "input_dropout": 0.2})
    load_vae_init(model, str(saved))
    for k, v in source.state_dict().items():
        assert np.array_equal(v.numpy(), model.state_dict()[k].numpy()), k
    assert model.config.free_bits == 64.0
    with pytest.raises(MusegenError, match="latent"):
        load_vae_init(build_model("music-vae", **{**TINY_VAE, "latent": 6}), str(saved))
    other = tmp_path / "gan"
    save_model(build_model("crnngan", length=4, d_noise=2, d_hidden=4, d_critic=2), other, {})
    with pytest.raises(MusegenError, match=r"--init: .* crnngan model, not a music-vae"):
        load_vae_init(model, str(other))


def test_init_parts_copies_named_modules_of_another_network(tmp_path: Path) -> None:
    """``init_parts``: a 2-bar VAE's decoder becomes the bar decoder of a 4-bar hierarchical
    one (two-bar segments); the rest stays fresh; a part of another shape is refused."""
    from latenthelpers import tiny_vae
    from musegen.errors import MusegenError
    from musegen.train.vae import copy_parts

    saved = tiny_vae(tmp_path / "v", seed=3)
    source, _ = load_model(saved)
    options = {**TINY_VAE, "bar_embed": TINY_VAE["latent"], "bar_tanh": False}
    model = build_model("music-vae", n_bars=4, segment_bars=2, decoder="hierarchical",
                        encoder="hierarchical", **options)  # fmt: skip
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    parts = ["embed", "encoder", "dec_init", "decoder", "out"]
    copy_parts(model, {"model": str(saved), "parts": parts})
    theirs, mine = source.state_dict(), model.state_dict()
    for k, v in mine.items():
        if k.split(".")[0] in parts:
            assert np.array_equal(v.numpy(), theirs[k].numpy()), k
        else:
            assert np.array_equal(v.numpy(), fresh[k].numpy()), k
    with pytest.raises(MusegenError, match="decoder"):
        copy_parts(build_model("music-vae", **{**TINY_VAE, "dec_hidden": 12}),
                   {"model": str(saved), "parts": ["decoder"]})  # fmt: skip
    with pytest.raises(MusegenError, match="no module"):
        copy_parts(model, {"model": str(saved), "parts": ["conductor"]})
    for bad in ({"model": str(saved)}, {"model": str(saved), "parts": "decoder"}, [1]):
        with pytest.raises(MusegenError, match="init_parts must be"):
            copy_parts(model, bad)


def test_chorale_segments_interleave_the_voices_and_keep_unisons() -> None:
    tok = chorale_tokenizer()
    config = build_model("music-vae", voices=4, **TINY_VAE).config
    piece = chorale(0)
    rows, origin = melody_segments([tok.encode(piece)], tok, config)
    assert rows.shape == (3, 2 * 16 * 4) and origin == [(0, 0), (0, 1), (0, 2)]
    grid = rows[0].reshape(-1, 4)  # steps x (S, A, T, B)
    s0 = int(piece.tracks[0].notes["pitch"][0])
    assert grid[0, 0] == grid[0, 1] == s0 - config.low_pitch + 2  # the unison stays two notes
    assert (grid[:, 3] >= 2).sum() == (piece.tracks[3].notes["start"] < 2 * 4 * 480).sum()


@pytest.mark.slow
def test_a_chorale_vae_trains_on_a_chorale_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tiny_chorale_dataset(tmp_path / "chorales"))
    run = run_file(tmp_path, {"voices": 4, "decoder": "flat"})
    assert main(["train", "--config", str(run), "--data", data, "--out", str(tmp_path / "a")]) == 0
    model, meta = load_model(tmp_path / "a" / "checkpoint")
    assert model.config.voices == 4 and meta["tokenizer"]["tokenizer"] == "chorale"
    assert meta["segments"]["train"] == 6 * 3
    capsys.readouterr()
    melody = run_file(tmp_path, {"decoder": "flat"})  # one voice on four-voice data
    assert (
        main(["train", "--config", str(melody), "--data", data, "--out", str(tmp_path / "b")]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert "writes 4 voice(s)" in err and len(err.splitlines()) == 1
