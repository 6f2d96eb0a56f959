"""Training precision: the bf16 probe, forced choices, bf16 autocast in the trainer, records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from musegen.cli.main import build_parser
from musegen.errors import MusegenError
from musegen.models import build_model
from musegen.train import precision as prec
from musegen.train.config import TrainConfig
from musegen.train.trainer import Batch, Trainer, lm_objective
from tinymodels import TinyLM, Windows, cfg, save_tiny

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _no_probe(*args: object) -> prec.ProbeResult:
    raise AssertionError("the probe must not run here")


def test_probe_returns_a_valid_choice() -> None:
    choice = prec.choose_precision("auto", "cpu", rows=256, width=64, hidden=256)
    assert choice.dtype in ("fp32", "bf16")
    assert (choice.asked, choice.device) == ("auto", "cpu")
    probe = choice.probe
    assert probe is not None and probe.fp32_s > 0 and probe.bf16_s > 0
    assert (choice.dtype == "bf16") == (probe.speedup >= prec.BF16_SPEEDUP)
    record = json.loads(json.dumps(choice.to_dict()))  # JSON as it is saved with the run
    assert record["precision"] == choice.dtype and record["probe"]["threads"] >= 1
    assert record["probe"]["fp32_ms"] > 0 and record["probe"]["bf16_ms"] > 0
    assert choice.describe().startswith("precision: ")
    # asked again in the same process: the same answer, without measuring again
    assert prec.choose_precision("auto", "cpu", rows=256, width=64, hidden=256) == choice


def test_model_widths_and_probe_rows() -> None:
    model = build_model("transformer", vocab_size=16, n_layer=1, n_head=2, d_model=32)
    assert prec.model_widths(model) == (32, 128)  # the MLP: d_model x 4 d_model
    assert prec.probe_rows(64, 32, 128) == 64  # a small batch: all of it
    assert prec.probe_rows(10**9, 32, 128) == int(prec.PROBE_FLOP // (6 * 32 * 128))
    assert prec.probe_rows(10**9, 4096, 16384) == prec.PROBE_MIN_ROWS


def test_probe_failure_falls_back_to_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> prec.ProbeResult:
        raise RuntimeError("no bf16 kernel here")

    monkeypatch.setattr(prec, "probe_bf16", broken)
    choice = prec.choose_precision("auto", "cpu", rows=256, width=64, hidden=256)
    assert choice.dtype == "fp32" and choice.probe is None
    assert "probe failed" in choice.reason and "no bf16 kernel here" in choice.reason
    # nothing to probe (no weight matrix outside embeddings): fp32 too
    no_matrix = prec.precision_for(nn.Embedding(8, 4), "auto", "cpu", tokens=64)
    assert no_matrix.dtype == "fp32" and "no weight matrix" in no_matrix.reason


def test_forced_choices_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prec, "probe_bf16", _no_probe)
    for asked in ("fp32", "bf16"):
        choice = prec.precision_for(TinyLM(), asked, "cpu", tokens=96)
        assert choice.dtype == asked and choice.probe is None and choice.reason == "asked for"
    assert prec.choose_precision("auto", "cpu", 256, 64, 256, amp=False).dtype == "fp32"
    assert prec.choose_precision("auto", "meta", 256, 64, 256).dtype == "fp32"
    with pytest.raises(MusegenError, match="precision=fp16"):
        TrainConfig.from_dict({"precision": "fp16"})
    args = build_parser().parse_args(["train", "--data", "d", "--precision", "bf16"])
    assert args.precision == "bf16"


def test_trainer_runs_forward_and_evaluation_under_the_chosen_autocast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prec, "probe_bf16", _no_probe)
    seen: list[bool] = []

    def objective(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        seen.append(torch.is_autocast_enabled("cpu"))
        loss, n = lm_objective(model, batch)
        assert loss.dtype == torch.float32  # the loss is fp32 under autocast too
        return loss, n

    for asked, autocast in (("fp32", False), ("bf16", True)):
        seen.clear()
        torch.manual_seed(0)
        conf = cfg(precision=asked, max_steps=2, eval_every=2)
        t = Trainer(
            TinyLM(), Windows(), Windows(16), conf, tmp_path / asked, objective, save_fn=save_tiny
        )
        t.fit()
        # 2 steps, 2 evaluation batches, and for bf16 the check that the model runs under it
        assert len(seen) == 2 + 2 + autocast and all(s == autocast for s in seen)
        assert all(p.dtype == torch.float32 for p in t.raw_model.parameters())
        moments = [v for s in t.optimizer.state.values() for k, v in s.items() if k != "step"]
        assert moments and all(v.dtype == torch.float32 for v in moments)


class MixesDtypes(TinyLM):
    """Writes its (autocast: bf16) logits into an fp32 tensor through a mask, as a frame model
    did: fine in fp32, an error under bf16 autocast."""

    def forward(self, ids: torch.Tensor, cache: object = None) -> tuple[torch.Tensor, None]:
        logits, _ = super().forward(ids)
        out = torch.zeros(logits.shape)
        out[torch.ones(logits.shape[:-1], dtype=torch.bool)] = logits.reshape(-1, logits.shape[-1])
        return out, None


def test_a_model_that_fails_under_autocast_trains_in_fp32_or_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fast_bf16(rows: int, width: int, hidden: int) -> prec.ProbeResult:
        return prec.ProbeResult(rows, width, hidden, 1, fp32_s=4e-3, bf16_s=1e-3)

    monkeypatch.setattr(prec, "probe_bf16", fast_bf16)
    t = Trainer(MixesDtypes(), Windows(), None, cfg(max_steps=2), tmp_path / "a", save_fn=save_tiny)
    assert t.precision.dtype == "fp32" and "does not train under bf16" in t.precision.reason
    assert t.precision.probe is not None and t.precision.probe.speedup == 4.0
    assert all(p.grad is None for p in t.raw_model.parameters()) and t.raw_model.training
    t.fit()
    with pytest.raises(MusegenError, match="precision bf16: this model does not train"):
        Trainer(MixesDtypes(), Windows(), None, cfg(precision="bf16"), tmp_path / "b")


def _train(out: Path, precision: str) -> tuple[list[float], Trainer]:
    """A tiny relative-attention transformer (two query chunks of the CPU attention path)."""
    torch.manual_seed(0)
    model = build_model(
        "transformer", vocab_size=16, n_layer=2, n_head=2, d_model=32, dropout=0.0, max_relative=32
    )
    conf = cfg(
        precision=precision,
        seq_len=80,
        batch_size=4,
        max_steps=24,
        lr=3e-3,
        eval_every=12,
        checkpoint_every=12,
    )
    t = Trainer(model, Windows(32, 80), Windows(8, 80), conf, out)
    t.fit()
    rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r] + [t.state.best_valid], t


def test_bf16_training_matches_fp32_and_is_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fp32, _ = _train(tmp_path / "fp32", "fp32")
    bf16, trainer = _train(tmp_path / "bf16", "bf16")
    assert fp32[-1] < 0.6 * fp32[0]  # it learned something
    for a, b in zip(fp32, bf16, strict=True):
        assert abs(a - b) < 0.02 * a, (fp32, bf16)
    assert "precision: bf16 autocast" in capsys.readouterr().err
    # every record of the run says what it used
    run = tmp_path / "bf16"
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    event = next(r for r in rows if r.get("event") == "precision")
    assert event["precision"] == "bf16" and event["asked"] == "bf16" and event["step"] == 0
    info = json.loads((run / "checkpoint" / "trainer.json").read_text())
    assert info["precision"] == trainer.precision.to_dict()
    best = json.loads((run / "best" / "config.json").read_text())  # the model's meta
    assert best["precision"]["precision"] == "bf16"


def test_a_resumed_auto_run_keeps_its_precision_on_the_same_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    speed = {"bf16_s": 1e-3}

    def probe(rows: int, width: int, hidden: int) -> prec.ProbeResult:
        return prec.ProbeResult(rows, width, hidden, 1, fp32_s=4e-3, bf16_s=speed["bf16_s"])

    monkeypatch.setattr(prec, "probe_bf16", probe)
    first = Trainer(
        TinyLM(), Windows(), None, cfg(max_steps=2, checkpoint_every=2), tmp_path, save_fn=save_tiny
    )
    assert first.precision.dtype == "bf16"
    first.fit()
    speed["bf16_s"] = 8e-3  # the probe now says fp32 ...
    again = Trainer(
        TinyLM(), Windows(), None, cfg(max_steps=3, checkpoint_every=2), tmp_path, save_fn=save_tiny
    )
    again.fit(resume=True)  # ... but the run goes on as it began
    assert again.precision.dtype == "bf16" and "kept from the checkpoint" in again.precision.reason
    info = json.loads((tmp_path / "checkpoint" / "trainer.json").read_text())
    assert info["precision"]["precision"] == "bf16" and info["machine"]
    # on another machine the new probe decides
    info["machine"] = "another CPU"
    (tmp_path / "checkpoint" / "trainer.json").write_text(json.dumps(info))
    other = Trainer(
        TinyLM(), Windows(), None, cfg(max_steps=4, checkpoint_every=2), tmp_path, save_fn=save_tiny
    )
    other.fit(resume=True)
    assert other.precision.dtype == "fp32"


def test_busy_cpu_note_only_when_threads_oversubscribe_the_cores() -> None:
    from musegen.train.precision import busy_cpu_note

    assert busy_cpu_note(2, load=0.2, cores=2) is None  # quiet: two threads fit
    assert busy_cpu_note(1, load=1.0, cores=2) is None  # one other job, one thread: fits
    note = busy_cpu_note(2, load=7.2, cores=2)
    assert note is not None and "load average 7.2 on 2 cores" in note and "2 threads" in note
    assert "--threads 1" in note and "\n" not in note
