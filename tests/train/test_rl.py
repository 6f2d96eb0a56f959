"""RL fine-tuning on a tiny melody model: the reward rises, resume is exact, errors are one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from musegen.errors import MusegenError
from musegen.score import Score
from musegen.train.rl import RLConfig, RLTrainer


def tiny_melody_model(folder: Path, seed: int = 0) -> Path:
    """A random one-layer transformer over a small melody tokenizer (4/4, C4..C5), saved."""
    from musegen.models import build_model, save_model
    from musegen.tokenizers import get_tokenizer

    tok = get_tokenizer("melody", time_signatures=["4/4"], max_bars=4, pitch_range=[60, 72])
    torch.manual_seed(seed)
    model = build_model(
        "transformer", vocab_size=len(tok), n_layer=1, n_head=2, d_model=32, d_ff=64, dropout=0.0
    )
    save_model(model, folder, {"tokenizer": tok.to_dict(), "description": "tiny"})
    return folder


def low_notes(score: Score) -> float:
    """A toy reward: the share of notes at or below E4."""
    pitches = np.concatenate([t.notes["pitch"] for t in score.tracks] or [np.zeros(0)])
    return float((pitches <= 64).mean()) if len(pitches) else 0.0


def config(model: Path, **kw: object) -> RLConfig:
    base = dict(model=str(model), reward="key", steps=4, batch_size=8, lr=3e-3, bars=2, kl=0.01)
    base |= dict(checkpoint_every=2, progress=False, seed=3)
    base |= kw
    return RLConfig(**base)  # type: ignore[arg-type]


def mean_reward(trainer: RLTrainer, steps: range) -> float:
    return float(np.mean([v["total"] for s in steps for v in trainer.score(trainer.rollout(s)[1])]))


@pytest.mark.slow
def test_reward_rises_under_a_few_steps(tmp_path: Path) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    trainer = RLTrainer(
        config(model, steps=6, lr=1e-2), tmp_path / "run", rewards=[("low", low_notes)]
    )
    held_out = range(1000, 1003)  # rollouts on seeds training never uses
    before = mean_reward(trainer, held_out)
    trainer.fit()
    after = mean_reward(trainer, held_out)
    assert after > before + 0.1
    assert (tmp_path / "run" / "checkpoint" / "model.safetensors").exists()
    rows = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(rows) == 6


def test_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    small = dict(batch_size=4, bars=1, checkpoint_every=1)
    RLTrainer(config(model, steps=2, **small), tmp_path / "straight").fit()
    RLTrainer(config(model, steps=1, **small), tmp_path / "resumed").fit()
    RLTrainer(config(model, steps=2, **small), tmp_path / "resumed").fit(resume=True)
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "straight" / "checkpoint" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "checkpoint" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert len((tmp_path / "resumed" / "log.jsonl").read_text().splitlines()) == 2


def test_the_tuned_model_loads_as_a_model_and_keeps_its_tokenizer(tmp_path: Path) -> None:
    from musegen.sampling.generators import GenerateRequest, load_generator

    model = tiny_melody_model(tmp_path / "tiny")
    RLTrainer(config(model, steps=1), tmp_path / "run").fit()
    generator = load_generator(str(tmp_path / "run"))
    assert generator.meta["rl"]["step"] == 1
    assert "tuned by RL" in generator.meta["description"]
    (piece,) = generator.generate(GenerateRequest(num=1, bars=2, seed=1)).pieces
    assert piece.n_bars >= 1


def test_run_errors(tmp_path: Path) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    RLTrainer(config(model, steps=1), tmp_path / "run").fit()
    with pytest.raises(MusegenError, match="--resume"):
        RLTrainer(config(model, steps=1), tmp_path / "run").fit()
    with pytest.raises(MusegenError, match="other settings"):
        RLTrainer(config(model, steps=2, kl=0.5), tmp_path / "run").fit(resume=True)
    with pytest.raises(MusegenError, match="no RL checkpoint"):
        RLTrainer(config(model, steps=1), tmp_path / "empty").fit(resume=True)
    with pytest.raises(MusegenError, match="--kl"):
        config(model, kl=-1)
    with pytest.raises(MusegenError, match="--batch-size"):
        config(model, batch_size=1)
