"""Coconet: shapes, range masking, orderless masks, save/load, and training via the Trainer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from musegen.errors import MusegenError
from musegen.models import build_model, load_model, save_model
from musegen.models.coconet import (
    OUT_OF_RANGE,
    REST,
    coconet_objective,
    random_hidden,
    to_classes,
    to_pitches,
)
from musegen.train.coconet import FixedValid, Windows, collate
from musegen.train.config import TrainConfig
from musegen.train.trainer import Trainer
from tinymodels import COCONET_CHORDS, TINY_COCONET

TINY, CHORDS = TINY_COCONET, COCONET_CHORDS


def tiny(**changes: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("coconet", **{**TINY, **changes})


def chorale_grid(steps: int = 64) -> torch.Tensor:
    """Pitches [steps, 4] cycling through CHORDS, one chord per quarter note."""
    rows = [CHORDS[(t // 4) % len(CHORDS)] for t in range(steps)]
    return torch.tensor(rows)


def test_forward_shape_and_voice_ranges() -> None:
    model = tiny().eval()
    cells = to_classes(chorale_grid(16)[None], 48, 79)
    hidden = torch.zeros_like(cells, dtype=torch.bool)
    hidden[0, ::2, 1:] = True
    logits = model(cells, hidden)
    assert logits.shape == (1, 16, 4, 1 + 79 - 48 + 1)
    # bass (36-62 → classes 1..15) can't sing a soprano's high notes, and vice versa
    assert (logits[..., 3, 1 + 63 - 48 :] <= OUT_OF_RANGE / 2).all()
    assert (logits[..., 0, 1 : 1 + 60 - 48] <= OUT_OF_RANGE / 2).all()
    assert (logits[..., :, REST] > OUT_OF_RANGE / 2).all()  # the rest is always possible


def test_classes_round_trip_and_range_check() -> None:
    pitches = torch.tensor([[60, -1, 48, 79]])
    classes = to_classes(pitches, 48, 79)
    assert classes.tolist() == [[13, REST, 1, 32]]
    assert torch.equal(to_pitches(classes, 48), pitches)
    with pytest.raises(ValueError, match="outside"):
        to_classes(torch.tensor([47]), 48, 79)


def test_config_validation() -> None:
    with pytest.raises(MusegenError, match="n_layers"):
        build_model("coconet", n_layers=3)
    with pytest.raises(MusegenError, match="soprano range"):
        build_model("coconet", soprano=[60, 90])
    with pytest.raises(MusegenError, match="unknown"):
        build_model("coconet", vocab_size=10)


def test_random_hidden_counts_are_orderless() -> None:
    g = torch.Generator().manual_seed(0)
    hidden = random_hidden((500, 8, 4), generator=g)
    counts = hidden.sum(dim=(1, 2))
    assert counts.min() >= 1 and counts.max() <= 32
    assert 12 <= counts.float().mean() <= 21  # uniform on 1..32: mean 16.5


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = tiny().eval()
    save_model(model, tmp_path / "m", {"description": "tiny"})
    loaded, meta = load_model(tmp_path / "m")
    assert meta["model"] == "coconet" and meta["config"]["pitch_dilations"] == [1, 12]
    cells = to_classes(chorale_grid(8)[None], 48, 79)
    hidden = torch.rand(cells.shape, generator=torch.Generator().manual_seed(1)) < 0.5
    assert torch.allclose(model(cells, hidden), loaded(cells, hidden))
    # weights only in safetensors; the range mask is rebuilt from the config
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]


def test_tiny_model_learns_through_the_trainer(tmp_path: Path) -> None:
    """The one trainer with the orderless objective: the valid loss must fall."""
    grids = [to_classes(chorale_grid(64), 48, 79)] * 4
    train = Windows(grids, 16)
    valid = FixedValid(grids, 16, seed=0)
    cfg = TrainConfig(
        seq_len=16,
        batch_size=8,
        lr=1e-2,
        warmup_steps=2,
        max_steps=40,
        eval_every=10,
        eval_batches=0,
        checkpoint_every=40,
        log_every=10,
        device="cpu",
        progress=False,
    )
    model = tiny()
    trainer = Trainer(
        model, train, valid, cfg, tmp_path, objective=coconet_objective, collate=collate
    )
    state = trainer.fit()
    losses = [h["valid_loss"] for h in state.history]
    assert losses[-1] < 0.6 * losses[0], losses
    _, meta = load_model(tmp_path / "best")
    assert meta["step"] > 0 and meta["model"] == "coconet"
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert any("valid_loss" in row for row in log)
