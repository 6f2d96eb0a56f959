"""The CPU's chunked causal attention equals the straightforward computation, gradients too."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import musegen
from musegen.models import build_model, cpu, load_model
from musegen.models.cpu.attention import LOW_PRECISION_CHUNK, causal_attention, chunk_size

PRETRAINED = Path(musegen.__file__).parent / "pretrained"


def reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, table: torch.Tensor | None
) -> torch.Tensor:
    """``softmax(scale · (q kᵀ + q · E[min(i - j, R - 1)]) + causal) v``, term by term."""
    B, H, T, _ = q.shape
    L = k.shape[2]
    logits = q @ k.transpose(-1, -2)
    if table is not None:
        R = table.shape[1]
        rel = torch.zeros(B, H, T, L, dtype=q.dtype)
        for i in range(T):
            for j in range(L - T + i + 1):
                e = table[:, min(L - T + i - j, R - 1)]  # [H or 1, d]
                rel[:, :, i, j] = (q[:, :, i] * e).sum(-1)
        logits = logits + rel
    future = torch.ones(T, L, dtype=torch.bool).triu(L - T + 1)
    weights = (logits * scale).masked_fill(future, -math.inf).softmax(-1)
    return weights @ v


@pytest.mark.parametrize("table_heads", [0, 3, 1])  # no relative term, per head, shared
@pytest.mark.parametrize(("T", "L", "R"), [(11, 11, 20), (11, 11, 4), (5, 12, 7), (1, 6, 3)])
@pytest.mark.parametrize("chunk", [1, 4, 64])
def test_equals_reference_with_gradients(
    table_heads: int, T: int, L: int, R: int, chunk: int
) -> None:
    torch.manual_seed(0)
    f64 = {"dtype": torch.float64, "requires_grad": True}
    q = torch.randn(2, 3, T, 8, **f64)
    k, v = torch.randn(2, 3, L, 8, **f64), torch.randn(2, 3, L, 8, **f64)
    table = torch.randn(table_heads, R, 8, **f64) if table_heads else None
    inputs = [t for t in (q, k, v, table) if t is not None]

    got = causal_attention(q, k, v, 0.35, table, chunk)
    want = reference(q, k, v, 0.35, table)
    assert got.shape == (2, 3, T, 8)
    assert (got - want).abs().max() < 1e-12
    grad = torch.randn_like(want)
    for a, b in zip(
        torch.autograd.grad(got, inputs, grad), torch.autograd.grad(want, inputs, grad), strict=True
    ):
        assert (a - b).abs().max() < 1e-12


def test_float32_within_1e5_of_reference() -> None:
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 4, 150, 16, requires_grad=True) for _ in range(3))
    table = (torch.randn(4, 100, 16) * 0.5).requires_grad_()
    got = causal_attention(q, k, v, 0.25, table, 64)
    want = reference(q.double(), k.double(), v.double(), 0.25, table.double())
    assert (got - want).abs().max() < 1e-5
    grad = torch.randn_like(got)
    got_grads = torch.autograd.grad(got, (q, k, v, table), grad)
    want_grads = torch.autograd.grad(want, (q, k, v, table), grad.double())
    for a, b in zip(got_grads, want_grads, strict=True):
        assert (a - b).abs().max() < 1e-5 * max(1.0, b.abs().max().item())


@pytest.mark.parametrize(
    "options",
    [
        {"position": "relative", "max_relative": 5},
        {"position": "relative", "relative_shared_heads": True},
        {"position": "rope", "norm": "rmsnorm"},
        {"position": "absolute", "tie_embeddings": False},
    ],
)
def test_training_step_equals_the_sdpa_path(options: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loss and every gradient of a model in training mode (dropout on), both attention paths."""
    ids = torch.randint(0, 40, (3, 30), generator=torch.Generator().manual_seed(2))
    results = []
    for cpu_chunk in (8, 0):  # 0: F.scaled_dot_product_attention
        monkeypatch.setattr(cpu, "CHUNK", cpu_chunk)
        torch.manual_seed(0)
        model = build_model(
            "transformer", vocab_size=40, n_layer=2, n_head=4, d_model=32, **options
        ).train()
        logits, _ = model(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, 40), ids[:, 1:].reshape(-1))
        loss.backward()
        results.append((loss, {n: p.grad for n, p in model.named_parameters()}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert (loss_a - loss_b).abs() < 1e-5
    assert grads_a.keys() == grads_b.keys()
    for name, g in grads_a.items():
        assert (g - grads_b[name]).abs().max() < 1e-5, name


def shipped_transformers() -> list[str]:
    return sorted(
        d.name
        for d in PRETRAINED.iterdir()
        if (d / "config.json").is_file()
        and json.loads((d / "config.json").read_text())["model"] == "transformer"
    )


@pytest.mark.parametrize("name", shipped_transformers())
@torch.no_grad()
def test_shipped_models_give_the_same_logits(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = load_model(PRETRAINED / name)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (2, model.config.max_relative + 40))  # past the clipping
    chunked, _ = model(ids)
    monkeypatch.setattr(cpu, "CHUNK", 0)
    sdpa, _ = model(ids)
    assert (chunked - sdpa).abs().max() < 5e-5


def dense_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, table: torch.Tensor | None
) -> torch.Tensor:
    """``reference`` with the relative term gathered in one step (fast enough for long T)."""
    H, T = q.shape[1:3]
    L = k.shape[2]
    logits = q @ k.transpose(-1, -2)
    if table is not None:
        distance = torch.arange(L - T, L)[:, None] - torch.arange(L)[None, :]
        rows = table[:, distance.clamp(0, table.shape[1] - 1)]  # [H or 1, T, L, d]
        logits = logits + torch.einsum("bhtd,htld->bhtl", q, rows.expand(H, -1, -1, -1))
    future = torch.ones(T, L, dtype=torch.bool).triu(L - T + 1)
    return (logits * scale).masked_fill(future, -math.inf).softmax(-1) @ v


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.double() - want).norm() / want.norm()).item()


BF16 = torch.bfloat16


@pytest.mark.parametrize(
    ("table_heads", "cast_table"),  # the fp32 table passed as it is, or cast first
    [(0, False), (2, False), (1, False), (2, True), (1, True)],
)
@pytest.mark.parametrize(("T", "L", "R"), [(300, 300, 400), (300, 300, 50), (130, 170, 90)])
def test_bf16_autocast_gradients_match_the_reference(
    table_heads: int, cast_table: bool, T: int, L: int, R: int
) -> None:
    """Under CPU bf16 autocast (bf16 q, k, v as a linear layer would give them; the table an
    fp32 parameter, passed as it is or cast to bf16 as the transformer does): output and every
    gradient within bf16 precision of the float64 computation from the same rounded inputs."""
    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 2, n, 16).to(BF16).float() for n in (T, L, L))
    table = (torch.randn(table_heads, R, 16) * 0.5).to(BF16).float() if table_heads else None
    grad = torch.randn(2, 2, T, 16).to(BF16)
    leaves = [t.requires_grad_() for t in (q, k, v, table) if t is not None]
    with torch.autocast("cpu", dtype=BF16):
        relative = table.to(BF16) if cast_table and table is not None else table
        got = causal_attention(q.to(BF16), k.to(BF16), v.to(BF16), 0.25, relative, 64)
    assert got.dtype == BF16
    got_grads = torch.autograd.grad(got, leaves, grad)

    exact = [t.detach().double().requires_grad_() for t in leaves]
    e_q, e_k, e_v, *e_table = exact
    want = dense_reference(e_q, e_k, e_v, 0.25, e_table[0] if e_table else None)
    want_grads = torch.autograd.grad(want, exact, grad.double())
    assert relative_error(got, want) < 1e-2
    for g, w, leaf in zip(got_grads, want_grads, leaves, strict=True):
        assert g.dtype == leaf.dtype == torch.float32
        assert relative_error(g, w) < 2e-2


def test_bf16_backward_takes_an_fp32_table_by_itself() -> None:
    """bf16 queries with an fp32 table, no autocast: the table is cast inside, its gradient
    comes back fp32 and equals the one through an explicit cast."""
    torch.manual_seed(4)
    q, k, v = (torch.randn(2, 3, 140, 8, dtype=BF16, requires_grad=True) for _ in range(3))
    table = torch.randn(3, 60, 8, requires_grad=True)
    grad = torch.randn(2, 3, 140, 8, dtype=BF16)
    inside = torch.autograd.grad(causal_attention(q, k, v, 0.3, table, 64), table, grad)[0]
    outside = torch.autograd.grad(causal_attention(q, k, v, 0.3, table.to(BF16), 64), table, grad)[
        0
    ]
    assert inside.dtype == outside.dtype == torch.float32
    assert relative_error(inside, outside.double()) < 1e-2


def test_bf16_chunks_are_at_least_the_low_precision_chunk() -> None:
    assert chunk_size(torch.float32, 64) == 64
    assert chunk_size(torch.float64, 1) == 1
    assert chunk_size(BF16, 64) == max(64, LOW_PRECISION_CHUNK)
    assert chunk_size(BF16, 1024) == 1024


@pytest.mark.parametrize(
    "options",
    [
        {"position": "relative"},
        {"position": "relative", "relative_shared_heads": True},
        {"position": "rope"},
    ],
)
def test_autocast_training_step_equals_the_sdpa_path(
    options: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loss and gradients of a model trained under CPU bf16 autocast, both attention paths,
    within bf16 precision (the relative table's gradient arrives fp32)."""
    ids = torch.randint(0, 40, (2, 150), generator=torch.Generator().manual_seed(5))
    results = []
    for cpu_chunk in (64, 0):  # 0: F.scaled_dot_product_attention
        monkeypatch.setattr(cpu, "CHUNK", cpu_chunk)
        torch.manual_seed(0)
        model = build_model(
            "transformer", vocab_size=40, n_layer=2, n_head=2, d_model=32, dropout=0.0, **options
        ).train()
        with torch.autocast("cpu", dtype=BF16):
            logits, _ = model(ids)
            loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, 40), ids[:, 1:].reshape(-1))
        loss.backward()
        results.append((loss, {n: p.grad for n, p in model.named_parameters()}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert (loss_a - loss_b).abs() < 1e-2
    for name, g in grads_a.items():
        assert g.dtype == torch.float32, name
        assert relative_error(g, grads_b[name].double()) < 5e-2, name


@pytest.mark.parametrize("dtype", [torch.float64, BF16])
def test_without_gradients_equals_with(dtype: torch.dtype) -> None:
    """Under no_grad only one chunk's probabilities are kept: the same output, bit for bit."""
    torch.manual_seed(6)
    q = torch.randn(2, 2, 300, 16, dtype=dtype)
    k, v = torch.randn(2, 2, 330, 16, dtype=dtype), torch.randn(2, 2, 330, 16, dtype=dtype)
    table = torch.randn(2, 100, 16, dtype=dtype)
    with torch.no_grad():
        fast = causal_attention(q, k, v, 0.25, table, 64)
    slow = causal_attention(q, k, v, 0.25, table.requires_grad_(), 64)
    assert torch.equal(fast, slow.detach())
