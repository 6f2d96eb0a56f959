"""The CPU fast path (``musegen.models.cpu``) against the model's own module path: the fused
decoding step in every variant, its packed weights, the oneDNN and attention probes, BLAS
threads, the ``MUSEGEN_FAST_CPU`` switch and the exported weights."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from musegen.models import build_model, cpu
from musegen.models.cpu import attention, decode, onednn, probe, threads

VOCAB = 37
TINY_TRANSFORMER = {"vocab_size": VOCAB, "n_layer": 2, "n_head": 4, "d_model": 32}
CONFIGS = {
    "relative": {**TINY_TRANSFORMER, "position": "relative"},
    "relative-clipped-shared": {
        **TINY_TRANSFORMER,
        "position": "relative",
        "max_relative": 3,
        "relative_shared_heads": True,
        "norm": "rmsnorm",
    },
    "rope": {**TINY_TRANSFORMER, "position": "rope", "norm": "rmsnorm"},
    "absolute": {
        **TINY_TRANSFORMER,
        "position": "absolute",
        "tie_embeddings": False,
        "bias": False,
    },
}
TRANSFORMERS = list(CONFIGS)


@pytest.fixture(autouse=True)
def _fixed_kernel_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests pin the fixed rule of which kernel a batch takes (no measuring; the
    measured choice is tested in test_cpu_probe.py)."""
    monkeypatch.setenv(probe.ENV_PROBE, "0")
    monkeypatch.delenv(probe.ENV_KERNEL, raising=False)


def make(key: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("transformer", **CONFIGS[key]).eval()


def tokens(batch: int = 2, length: int = 20, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("batch", "matmul"), [(1, "numpy"), (3, "numpy"), (3, "torch"), (5, "onednn")]
)
@pytest.mark.parametrize(
    "key", [*TRANSFORMERS, "relative-clipped-per-head", "relative-clipped-one-head"]
)
def test_fused_cpu_step_equals_the_module_path(
    key: str, batch: int, matmul: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One-token steps outside autograd take the fused step; they match the modules' path
    (which ``forward`` takes with autograd on) and the full forward pass, past max_relative."""
    if matmul == "onednn":  # the tiny model's weights are far below the size that takes it
        monkeypatch.setattr(decode, "ONEDNN_MIN_WEIGHT_BYTES", 0)
    options = {
        "relative-clipped-per-head": {**TINY_TRANSFORMER, "max_relative": 4},
        "relative-clipped-one-head": {**TINY_TRANSFORMER, "max_relative": 4, "n_head": 1},
    }
    torch.manual_seed(0)
    model = (build_model("transformer", **options[key]) if key in options else make(key)).eval()
    ids = tokens(batch, 12)
    with torch.no_grad():
        full, _ = model(ids)
        fast = model.init_cache(batch, 12)
        assert fast.decoder is not None
        if matmul == "onednn":  # batches from ONEDNN_MIN_BATCH on, where PyTorch has it
            if not onednn.available():
                pytest.skip("this PyTorch has no oneDNN products")
            assert fast.decoder.onednn
        else:
            assert not fast.decoder.onednn and fast.decoder.matmul is decode.numpy_matmul
        if matmul == "torch":  # what big batches use when numpy's BLAS runs threads
            fast.decoder.matmul = decode.torch_matmul
    slow = model.init_cache(batch, 12)
    for t in range(12):
        with torch.no_grad():
            a, fast = model(ids[:, t : t + 1], fast)
        b, slow = model(ids[:, t : t + 1], slow)  # autograd on: the module path
        assert b.requires_grad and not a.requires_grad
        assert (a - b).abs().max() <= 1e-5 and (a[:, 0] - full[:, t]).abs().max() <= 1e-4
    assert torch.allclose(fast.keys, slow.keys, atol=1e-5)  # the same cache contents
    assert fast.length == slow.length == 12


@torch.no_grad()
def test_packed_weights_are_reused_until_a_weight_changes() -> None:
    model, ids = make("relative"), tokens(1, 6)
    first, second = model.init_cache(1, 6), model.init_cache(2, 8)
    assert first.decoder.layers is second.decoder.layers  # packed once
    for p in model.parameters():  # an in-place change (an optimizer step, load_state_dict)
        p.mul_(1.5)
    changed = model.init_cache(1, 6)
    assert changed.decoder.layers is not first.decoder.layers
    full, _ = model(ids)
    for t in range(6):
        step, changed = model.next_logits(ids[:, t].numpy(), changed)
    assert np.abs(step - full[:, -1].numpy()).max() <= 1e-4
    model.load_state_dict(make("relative", seed=3).state_dict())
    assert model.init_cache(1, 6).decoder.layers is not changed.decoder.layers
    with torch.inference_mode():  # tensors made here have no version counter: no reuse
        fresh = make("relative")
        assert fresh.init_cache(1, 6).decoder.layers is not fresh.init_cache(1, 6).decoder.layers


@torch.no_grad()
def test_onednn_weights_are_packed_once_and_shared_by_smaller_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The oneDNN packing is made by the first big batch and kept by the decoder: caches
    made later and sequences selected from a batch (fewer rows) use the same packing, and
    a batch that falls below ONEDNN_MIN_BATCH steps on with numpy, still right. Models
    with small weights (they stay in cache) keep to numpy at any batch."""
    if not onednn.available():
        pytest.skip("this PyTorch has no oneDNN products")
    model, ids = make("relative"), tokens(6, 9)
    assert not model.init_cache(8, 9).decoder.onednn  # a tiny model
    monkeypatch.setattr(decode, "ONEDNN_MIN_WEIGHT_BYTES", 0)
    full, _ = model(ids)
    assert not model.init_cache(2, 9).decoder.onednn_weights  # not needed yet
    cache = model.init_cache(6, 9)
    packed = cache.decoder.onednn_weights["layers"]
    assert model.init_cache(8, 9).decoder.onednn_weights["layers"] is packed
    _, cache = model(ids[:, :5], cache)
    rows = torch.tensor([0, 2, 3, 5])
    for keep in (rows, torch.tensor([1, 3])):  # 4 rows: oneDNN; 2 of those: numpy
        cache = model.select_cache(cache, keep)
        ids, full = ids[keep], full[keep]
        assert cache.decoder.onednn == (len(keep) >= decode.ONEDNN_MIN_BATCH)
        assert cache.decoder.onednn_weights["layers"] is packed
        step, cache = model.next_logits(ids[:, cache.length].numpy(), cache)
        assert np.abs(step - full[:, cache.length - 1].numpy()).max() <= 1e-4


def test_onednn_probe_says_no_where_the_ops_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PyTorch whose private oneDNN ops are missing or answer differently is not used."""
    onednn.available.cache_clear()
    monkeypatch.setattr(onednn, "LINEAR", "no_such_op")
    monkeypatch.setattr(decode, "ONEDNN_MIN_WEIGHT_BYTES", 0)
    try:
        assert not onednn.available()
        assert not make("relative").init_cache(8, 4).decoder.onednn
    finally:
        onednn.available.cache_clear()


@torch.no_grad()
def test_blas_threads_pins_numpy_blas_and_restores_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside ``blas_threads(1)`` a big batch's numpy step takes numpy's (one-thread) BLAS."""
    if threads.openblas() is None:
        pytest.skip("numpy's BLAS is not an OpenBLAS this helper can reach")
    monkeypatch.setattr(decode, "ONEDNN_MIN_BATCH", 2**20)  # the numpy step's choice
    model, (get, set_) = make("relative"), threads.openblas()
    original = get()
    try:
        set_(2)
        if get() != 2:
            pytest.skip("this OpenBLAS cannot run two threads")
        assert model.init_cache(2**14, 2).decoder.matmul is decode.torch_matmul
        with cpu.blas_threads(1) as pinned:
            assert pinned and get() == 1 and threads.blas_one_thread()
            assert model.init_cache(2**14, 2).decoder.matmul is decode.numpy_matmul
        assert get() == 2 and not threads.blas_one_thread()
    finally:
        set_(original)


@torch.no_grad()
def test_fused_step_rejects_bad_ids_and_steps_aside_when_training() -> None:
    model, ids = make("relative"), tokens(2, 6)
    cache = model.init_cache(2, 6)
    model(ids[:, :5], cache)
    with pytest.raises(IndexError):
        model(torch.full((2, 1), -1), cache)
    with pytest.raises(IndexError):
        model(torch.full((2, 1), VOCAB), cache)
    model.train()  # training mode takes the module path (dropout) and still works
    assert model(ids[:, 5:6], cache)[0].shape == (2, 1, VOCAB)
    assert build_model("transformer", **TINY_TRANSFORMER).double().init_cache(1, 4).decoder is None


# ----------------------------------------------------------------------------- the switch


@pytest.mark.parametrize("value", ["0", "false", "Off"])
@torch.no_grad()
def test_the_switch_turns_every_part_off(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``MUSEGEN_FAST_CPU=0``: no fused step, SDPA for several queries, numpy's BLAS alone;
    the logits are the modules' own (those the fast path is tested against)."""
    model, ids = make("relative"), tokens(2, 9)
    fast_full, _ = model(ids)
    fast_cache = model.init_cache(2, 9)
    assert fast_cache.decoder is not None
    model(ids[:, :8], fast_cache)
    fast_step, _ = model(ids[:, 8:], fast_cache)
    monkeypatch.setenv(cpu.ENV, value)
    assert not cpu.enabled()
    assert not cpu.chunked_attention_applies(torch.device("cpu"))
    assert not model._context(2, 9, 0, torch.device("cpu")).chunked
    cache = model.init_cache(2, 9)
    assert cache.decoder is None
    with cpu.blas_threads(1) as pinned:
        assert not pinned
    plain_full, _ = model(ids)
    model(ids[:, :8], cache)
    plain_step, _ = model(ids[:, 8:], cache)
    assert (plain_full - fast_full).abs().max() <= 1e-5
    assert (plain_step - fast_step).abs().max() <= 1e-5
    monkeypatch.setenv(cpu.ENV, "1")
    assert cpu.enabled() and model.init_cache(2, 9).decoder is not None


def test_the_attention_probe_falls_back_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A PyTorch without a private op the chunked attention calls: one logged line, and
    several queries take SDPA (the same logits)."""

    def missing(*args: object, **kwargs: object) -> None:
        raise AttributeError("'_OpNamespace' 'aten' object has no attribute '_softmax'")

    model, ids = make("relative-clipped-shared"), tokens(2, 9)
    with torch.no_grad():
        chunked, _ = model(ids)
    cpu._PROBED.clear()
    monkeypatch.setattr(attention, "_forward", missing)
    try:
        with caplog.at_level(logging.WARNING, logger="musegen.models.cpu"):
            assert not cpu.chunked_attention_applies(torch.device("cpu"))
            assert not cpu.chunked_attention_applies(torch.device("cpu"))  # asked once
        (record,) = caplog.records
        assert "plain attention instead" in record.getMessage()
        assert "_softmax" in record.getMessage() and "\n" not in record.getMessage()
        with torch.no_grad():
            plain, _ = model(ids)
        assert (plain - chunked).abs().max() <= 1e-5
    finally:
        monkeypatch.undo()
        cpu._PROBED.clear()
    assert cpu.chunked_attention_applies(torch.device("cpu"))


def test_the_attention_probe_says_yes_here() -> None:
    assert cpu._attention_probe()


# ----------------------------------------------------------------------------- export


def test_the_export_is_a_view_of_the_parameters() -> None:
    """No copies: the exported tensors are the parameters' memory, detached."""
    for key in TRANSFORMERS:
        model = make(key)
        w = model.export_for_decoding()
        params = {p.data_ptr() for p in model.parameters()} | {
            b.data_ptr() for b in model.buffers()
        }
        assert all(t.data_ptr() in params and not t.requires_grad for t in w.tensors), key
        assert len(w.layers) == model.config.n_layer and w.d_model == model.config.d_model
        assert w.ff_dim == model.config.ff_dim
        assert (w.pos_emb is not None) == (key == "absolute")
        assert (w.inv_freq is not None) == (key == "rope")
        assert (w.layers[0].relative is not None) == key.startswith("relative")


@torch.no_grad()
def test_a_decoder_made_from_the_export_alone_steps_like_the_model() -> None:
    """The fast path needs nothing but the export: a decoder of it over a bare cache."""
    model, ids = make("rope"), tokens(3, 7)
    full, _ = model(ids)
    decoder = cpu.decoder_for(model.export_for_decoding())
    assert decoder is not None
    keys = torch.zeros(2, 3, 4, 7, 8)
    values = torch.zeros_like(keys)
    bound = decoder.bind(keys, values)
    for t in range(7):
        logits = bound.step(ids[:, t].numpy(), t)
    assert np.abs(logits - full[:, -1].numpy()).max() <= 1e-4
    assert cpu.decoder_for(model.double().export_for_decoding()) is None  # float32 only
