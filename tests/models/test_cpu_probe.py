"""The fused step's kernel chosen by measuring this CPU (``musegen.models.cpu.probe``): the
decision rule, the cache file keyed by machine, the switches, and every kernel's step right."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from musegen.models import build_model
from musegen.models.cpu import decode, onednn, probe

SIZES = {"vocab_size": 37, "n_layer": 2, "n_head": 4, "d_model": 32}


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh cache folder and no choices remembered, before and after each test."""
    monkeypatch.setenv("MUSEGEN_HOME", str(tmp_path))
    monkeypatch.delenv(probe.ENV_KERNEL, raising=False)
    monkeypatch.delenv(probe.ENV_PROBE, raising=False)
    probe.forget()
    yield tmp_path
    probe.forget()


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("transformer", **SIZES).eval()


def test_numpy_unless_another_kernel_is_clearly_faster() -> None:
    assert probe.decide({"numpy": 1.0, "torch": 0.95, "onednn": 2.0}) == "numpy"
    assert probe.decide({"numpy": 1.0, "torch": 0.8, "onednn": 0.85}) == "torch"
    assert probe.decide({"numpy": 1.0, "torch": 0.8, "onednn": 0.5}) == "onednn"
    assert probe.decide({"torch": 1.0, "onednn": 0.99}) == "onednn"


def test_measured_once_then_read_from_the_cache_file(home: Path) -> None:
    calls = []

    def measure() -> dict[str, float]:
        calls.append(1)
        return {"numpy": 2.0, "torch": 1.0}

    assert probe.kernel_for("shape A", measure) == "torch"
    assert probe.kernel_for("shape A", measure) == "torch"  # remembered
    probe.forget()
    assert probe.kernel_for("shape A", measure) == "torch"  # read back from the file
    assert len(calls) == 1
    table = json.loads((home / probe.FILE_NAME).read_text())
    assert table[probe.machine_key()]["shape A"] == {
        "kernel": "torch",
        "ms": {"numpy": 2.0, "torch": 1.0},
    }
    # another machine (CPU, library version or thread count) measures for itself
    table = {"another CPU | torch 0": {"shape A": {"kernel": "onednn", "ms": {}}}}
    (home / probe.FILE_NAME).write_text(json.dumps(table))
    probe.forget()
    assert probe.kernel_for("shape A", measure) == "torch" and len(calls) == 2
    kept = json.loads((home / probe.FILE_NAME).read_text())
    assert set(kept) == {"another CPU | torch 0", probe.machine_key()}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"m": {"shape A": {"kernel": "x"}}}'])
def test_a_broken_cache_file_is_measured_over(home: Path, text: str) -> None:
    (home / probe.FILE_NAME).write_text(text)
    assert probe.kernel_for("shape A", lambda: {"numpy": 1.0, "torch": 3.0}) == "numpy"
    assert json.loads((home / probe.FILE_NAME).read_text())[probe.machine_key()]


@torch.no_grad()
def test_the_decoder_measures_its_own_products_and_remembers(home: Path) -> None:
    m = model()
    cache = m.init_cache(3, 8)
    table = json.loads((home / probe.FILE_NAME).read_text())[probe.machine_key()]
    (shape, entry), *_ = table.items()
    assert shape == "2 layers, d_model 32, ff 128, vocab 37, batch 3"
    kernels = {"numpy", "torch"} | ({"onednn"} if onednn.available() else set())
    assert set(entry["ms"]) == kernels and all(ms > 0 for ms in entry["ms"].values())
    assert cache.decoder.onednn == (entry["kernel"] == "onednn")
    if entry["kernel"] != "onednn":  # packed only to be measured, then let go
        assert not cache.decoder.onednn_weights
    m.init_cache(3, 8)
    assert len(json.loads((home / probe.FILE_NAME).read_text())[probe.machine_key()]) == 1


@pytest.mark.parametrize("kernel", probe.KERNELS)
@torch.no_grad()
def test_every_kernel_steps_like_the_full_forward(
    kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if kernel == "onednn" and not onednn.available():
        pytest.skip("this PyTorch has no oneDNN products")
    monkeypatch.setenv(probe.ENV_KERNEL, kernel)
    m, ids = model(), torch.randint(0, 37, (3, 10), generator=torch.Generator().manual_seed(1))
    full, _ = m(ids)
    cache = m.init_cache(3, 10)
    assert cache.decoder.onednn == (kernel == "onednn")
    if kernel != "onednn":
        matmul = decode.numpy_matmul if kernel == "numpy" else decode.torch_matmul
        assert cache.decoder.matmul is matmul
    _, cache = m(ids[:, :4], cache)
    for t in range(4, 10):
        step, cache = m.next_logits(ids[:, t].numpy(), cache)
        assert np.abs(step - full[:, t].numpy()).max() <= 1e-4


def test_switches(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(probe.ENV_KERNEL, "fastest")
    with caplog.at_level(logging.WARNING):
        assert probe.forced() is None
    assert "ignored" in caplog.text
    monkeypatch.setenv(probe.ENV_KERNEL, "Torch")
    assert probe.forced() == "torch"
    monkeypatch.delenv(probe.ENV_KERNEL)
    monkeypatch.setenv(probe.ENV_PROBE, "0")  # the fixed rule, nothing measured or written
    monkeypatch.setattr(decode, "ONEDNN_MIN_WEIGHT_BYTES", 0)
    m = model()
    with torch.no_grad():
        assert not m.init_cache(decode.ONEDNN_MIN_BATCH - 1, 4).decoder.onednn
        assert m.init_cache(decode.ONEDNN_MIN_BATCH, 4).decoder.onednn == onednn.available()
    assert not (Path(probe.cache_file())).exists()
