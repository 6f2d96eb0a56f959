"""RL-Chord's training script: pretraining, tuning, and a tuning stopped and resumed."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from musegen.errors import Interrupted, MusegenError
from musegen.train import rl_chord
from musegen.train.rl_chord import RLChordConfig, main, train_rl_chord

CFG = RLChordConfig(hidden=8, pretrain_epochs=1, batch_size=4, window=64, rl_steps=12,
                    melodies=2, samples=2)  # fmt: skip


def tunes(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Melodies of eighth-note frames in C (rests -1) over 16-24 beats, chords I and V."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        beats = int(rng.integers(16, 25))
        melody = rng.choice([60, 62, 64, 65, 67, -1], 2 * beats)
        chords = np.where(np.arange(beats) % 4 < 2, 0, 1)  # two chords, two beats each
        out.append((melody.astype(np.int64), chords.astype(np.int64)))
    return out


@pytest.fixture(autouse=True)
def tiny_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        rl_chord, "nottingham", lambda split: tunes(8, 0 if split == "train" else 1)
    )


def weights(folder: Path) -> dict[str, torch.Tensor]:
    from musegen.models import load_model

    return load_model(folder)[0].state_dict()


def test_a_stopped_tuning_resumes_to_the_uninterrupted_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.set_num_threads(1)
    whole = train_rl_chord(CFG, tmp_path / "whole", log=lambda _s: None)
    assert whole["last"]["step"] == 12 and (tmp_path / "whole" / "checkpoint").is_dir()
    calls = {"n": 0}
    real = rl_chord.harmonic_rewards

    def stop_in_step_5(*args: object) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == 4 * CFG.melodies * CFG.samples + 1:  # the first draw of step 5
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(rl_chord, "harmonic_rewards", stop_in_step_5)
    with pytest.raises(Interrupted, match="stopped after step 5"):
        train_rl_chord(CFG, tmp_path / "cut", log=lambda _s: None)
    monkeypatch.setattr(rl_chord, "harmonic_rewards", real)
    with pytest.raises(MusegenError, match="add --resume"):
        train_rl_chord(CFG, tmp_path / "cut", log=lambda _s: None)
    train_rl_chord(CFG, tmp_path / "cut", log=lambda _s: None, resume=True)
    for name in ("base", "rl-chord"):
        a, b = weights(tmp_path / "whole" / name), weights(tmp_path / "cut" / name)
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert log_rows(tmp_path / "cut") == log_rows(tmp_path / "whole")
    assert len(log_rows(tmp_path / "whole")) == 12


def log_rows(out: Path) -> list[dict[str, float]]:
    """The tuning's log rows without their timings."""
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_the_script_says_bad_settings_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"hiden": 8}')
    assert main(["--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "rl_chord: error:" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err
