"""Models: cached == full forward, causality, checkpoints, option errors, learning, determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from musegen.errors import MusegenError
from musegen.models import (
    available_models,
    build_model,
    cpu,
    load_model,
    model_config_class,
    save_model,
    transformer,
)
from musegen.models.transformer import gathered_relative_logits, skewed_relative_logits

VOCAB = 37
TINY_TRANSFORMER = {"vocab_size": VOCAB, "n_layer": 2, "n_head": 4, "d_model": 32}
TINY_RNN = {"vocab_size": VOCAB, "n_layer": 2, "d_embed": 16, "d_hidden": 32}

# every model and every position / tying option
CONFIGS = {
    "relative": ("transformer", {**TINY_TRANSFORMER, "position": "relative"}),
    "relative-clipped-shared": (
        "transformer",
        {
            **TINY_TRANSFORMER,
            "position": "relative",
            "max_relative": 3,
            "relative_shared_heads": True,
            "norm": "rmsnorm",
        },
    ),
    "rope": ("transformer", {**TINY_TRANSFORMER, "position": "rope", "norm": "rmsnorm"}),
    "absolute": (
        "transformer",
        {**TINY_TRANSFORMER, "position": "absolute", "tie_embeddings": False, "bias": False},
    ),
    "lstm": ("lstm", TINY_RNN),
    "lstm-tied-projected": ("lstm", {**TINY_RNN, "tie_embeddings": True}),
    "gru-tied": ("gru", {**TINY_RNN, "d_hidden": 16, "tie_embeddings": True, "layer_norm": False}),
}


def make(key: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    name, options = CONFIGS[key]
    return build_model(name, **options).eval()


def tokens(batch: int = 2, length: int = 20, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def tied_names(model: torch.nn.Module) -> set[frozenset[str]]:
    """Groups of parameter names that are one tensor."""
    groups: dict[int, set[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        groups.setdefault(id(p), set()).add(name)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


def decode_in_chunks(model: torch.nn.Module, ids: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    cache = model.init_cache(ids.shape[0], ids.shape[1] + 3)
    out, t = [], 0
    for size in sizes:
        logits, cache = model(ids[:, t : t + size], cache)
        out.append(logits)
        t += size
        assert cache.length == t
    assert t == ids.shape[1]
    return torch.cat(out, dim=1)


# ----------------------------------------------------------------------------- cache


@pytest.mark.parametrize("key", CONFIGS)
@torch.no_grad()
def test_cached_token_by_token_equals_full_forward(key: str) -> None:
    model, ids = make(key), tokens()
    full, cache = model(ids)
    assert cache is None and full.shape == (2, 20, VOCAB)
    cached = decode_in_chunks(model, ids, [1] * 20)
    assert (cached - full).abs().max() <= 1e-4


@pytest.mark.parametrize("key", CONFIGS)
@torch.no_grad()
def test_cached_prompt_then_tokens_equals_full_forward(key: str) -> None:
    model, ids = make(key), tokens()
    full, _ = model(ids)
    # a prompt, single tokens, then a chunk starting mid-sequence (offset causal mask)
    cached = decode_in_chunks(model, ids, [7, 1, 1, 1, 4, 1, 5])
    assert (cached - full).abs().max() <= 1e-4


@pytest.mark.parametrize("key", CONFIGS)
@torch.no_grad()
def test_next_logits_equals_full_forward(key: str) -> None:
    """The generator's one-step call (the fused step for transformers, forward otherwise)."""
    model, ids = make(key), tokens(3, 10)
    full, _ = model(ids)
    cache = model.init_cache(3, 10)
    logits, cache = model(ids[:, :4], cache)
    assert (logits - full[:, :4]).abs().max() <= 1e-4
    for t in range(4, 10):
        step, cache = model.next_logits(ids[:, t].numpy(), cache)
        assert step.dtype == np.float32 and step.shape == (3, VOCAB)
        assert np.abs(step - full[:, t].numpy()).max() <= 1e-4
    with pytest.raises(MusegenError, match="cache"):  # full: the generic path says so
        model.next_logits(ids[:, 0].numpy(), cache)


@pytest.mark.parametrize("key", ["relative", "rope", "lstm"])
@torch.no_grad()
def test_cache_limits_are_errors(key: str) -> None:
    model = make(key)
    cache = model.init_cache(2, 4)
    _, cache = model(tokens(2, 3), cache)
    with pytest.raises(MusegenError, match="max_len"):
        model(tokens(2, 2), cache)
    with pytest.raises(MusegenError, match="batch"):
        model(tokens(3, 1), model.init_cache(2, 4))
    with pytest.raises(MusegenError, match="token ids"):
        model(torch.zeros(2, 3))


def test_absolute_positions_are_bounded() -> None:
    model = build_model("transformer", **TINY_TRANSFORMER, position="absolute", max_positions=8)
    with pytest.raises(MusegenError, match="max_positions"):
        model(tokens(1, 9))
    with pytest.raises(MusegenError, match="max_positions"):
        model.init_cache(1, 9)


# ----------------------------------------------------------------------------- relative attention


def reference_relative_logits(q: torch.Tensor, table: torch.Tensor, start: int) -> torch.Tensor:
    """Direct ``q_i · table[min(i - j, R - 1)]`` for queries at ``start..``, causal part only."""
    _, _, T, _ = q.shape
    L, R = start + T, table.shape[1]
    out = torch.zeros(q.shape[0], q.shape[1], T, L)
    for i in range(T):
        for j in range(start + i + 1):
            out[:, :, i, j] = (q[:, :, i] * table[:, min(start + i - j, R - 1)]).sum(-1)
    return out


@pytest.mark.parametrize(("T", "start", "R", "heads"), [(6, 0, 10, 2), (6, 0, 3, 1), (4, 5, 4, 2)])
def test_skewing_matches_direct_relative_logits(T: int, start: int, R: int, heads: int) -> None:
    torch.manual_seed(0)
    q, table = torch.randn(2, 2, T, 8), torch.randn(heads, R, 8)
    L = start + T
    index = torch.arange(L, -1, -1).clamp(max=R - 1)
    got = skewed_relative_logits(q, table, index)
    want = reference_relative_logits(q, table, start)
    causal = torch.ones(T, L, dtype=torch.bool).tril(start)
    assert torch.allclose(got[..., causal], want[..., causal], atol=1e-5)
    # one-token steps gather by distance
    distance = (start + T - 1 - torch.arange(L)).clamp(max=R - 1).view(1, L)
    step = gathered_relative_logits(q[:, :, -1:], table, distance)
    assert torch.allclose(step, want[:, :, -1:], atol=1e-5)


@pytest.mark.parametrize("chunked", [cpu, transformer])  # the CPU's attention, SDPA's
@torch.no_grad()
def test_relative_query_chunks_match_one_chunk(
    chunked: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    if chunked is transformer:  # the SDPA path (devices other than the CPU)
        monkeypatch.setattr(cpu, "CHUNK", 0)
    model, ids = make("relative-clipped-shared"), tokens(2, 20)
    whole, _ = model(ids)
    name = "CHUNK" if chunked is cpu else "RELATIVE_CHUNK"
    monkeypatch.setattr(chunked, name, 3)  # 20 queries: 7 chunks, last short
    chunked, _ = model(ids)
    assert (chunked - whole).abs().max() <= 1e-5
    assert (decode_in_chunks(model, ids, [8, 1, 5, 6]) - whole).abs().max() <= 1e-4


@pytest.mark.parametrize("cpu_chunk", [64, 4, 0])  # 0: the SDPA path
@torch.no_grad()
def test_relative_attention_matches_reference(
    cpu_chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One layer's attention against softmax((q kᵀ + q Eᵀ[clipped i - j]) / sqrt(d)) by hand."""
    monkeypatch.setattr(cpu, "CHUNK", cpu_chunk)
    model, x = make("relative-clipped-shared"), torch.randn(2, 9, 32)
    attn = model.blocks[0].attn
    q, k, v = attn.qkv(x).view(2, 9, 3, 4, 8).permute(2, 0, 3, 1, 4)
    logits = q @ k.transpose(-1, -2) + reference_relative_logits(q, attn.relative, 0)
    logits = logits.masked_fill(torch.ones(9, 9, dtype=torch.bool).triu(1), float("-inf"))
    y = (logits / 8**0.5).softmax(-1) @ v
    want = attn.out(y.transpose(1, 2).reshape(2 * 9, 32))
    got = attn(x.view(2 * 9, 32), model._context(2, 9, 0, x.device), None, 0)
    assert torch.allclose(got, want, atol=1e-5)


# ----------------------------------------------------------------------------- causality


@pytest.mark.parametrize("key", CONFIGS)
@torch.no_grad()
def test_future_tokens_do_not_change_past_logits(key: str) -> None:
    model, ids = make(key), tokens()
    changed = ids.clone()
    changed[:, 12] = (changed[:, 12] + 1) % VOCAB
    a, _ = model(ids)
    b, _ = model(changed)
    assert torch.equal(a[:, :12], b[:, :12]) or (a[:, :12] - b[:, :12]).abs().max() < 1e-6
    assert (a[:, 12:] - b[:, 12:]).abs().max() > 1e-4


# ----------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("key", CONFIGS)
@torch.no_grad()
def test_save_load_round_trip(key: str, tmp_path: Path) -> None:
    model, ids = make(key), tokens()
    save_model(model, tmp_path / "ckpt", extra={"step": 12, "tokenizer": {"name": "remi"}})
    loaded, meta = load_model(tmp_path / "ckpt")
    assert meta["model"] == CONFIGS[key][0] and meta["step"] == 12
    assert meta["config"] == model.config.to_dict() == loaded.config.to_dict()
    assert not loaded.training
    assert torch.equal(model(ids)[0], loaded(ids)[0])
    assert tied_names(loaded) == tied_names(model)
    assert loaded.num_parameters() == model.num_parameters()
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]


def test_tied_weights_stay_tied_after_loading(tmp_path: Path) -> None:
    model = make("relative")
    assert tied_names(model) == {frozenset({"tok_emb.weight", "lm_head.weight"})}
    save_model(model, tmp_path)
    loaded, _ = load_model(tmp_path)
    with torch.no_grad():
        loaded.tok_emb.weight[0, 0] = 123.0
    assert loaded.lm_head.weight[0, 0] == 123.0
    untied = build_model("transformer", **TINY_TRANSFORMER, tie_embeddings=False)
    assert untied.num_parameters() == model.num_parameters() + VOCAB * 32


def test_save_overwrites_and_keeps_dtype(tmp_path: Path) -> None:
    save_model(make("rope", seed=1), tmp_path)
    model = make("rope", seed=2).to(torch.bfloat16)
    save_model(model, tmp_path, extra={"note": "second"})
    loaded, meta = load_model(tmp_path)
    assert meta["note"] == "second" and loaded.tok_emb.weight.dtype == torch.bfloat16
    assert torch.equal(loaded.tok_emb.weight, model.tok_emb.weight)
    assert not list(tmp_path.glob(".*.tmp"))


def test_save_unwraps_a_distributed_wrapper(tmp_path: Path) -> None:
    class Wrapper(torch.nn.Module):  # like DistributedDataParallel: the model as .module
        def __init__(self, module: torch.nn.Module) -> None:
            super().__init__()
            self.module = module

    model = make("gru-tied")
    save_model(Wrapper(model), tmp_path)
    loaded, meta = load_model(tmp_path)
    assert meta["model"] == "gru" and torch.equal(loaded(tokens())[0], model(tokens())[0])


def test_save_rejects_reserved_or_unserialisable_extra(tmp_path: Path) -> None:
    with pytest.raises(MusegenError, match="reserved"):
        save_model(make("lstm"), tmp_path, extra={"config": 1})
    with pytest.raises(MusegenError, match="JSON"):
        save_model(make("lstm"), tmp_path, extra={"x": object()})
    assert not (tmp_path / "model.safetensors").exists()


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    save_model(make("relative"), tmp_path / "ckpt")
    return tmp_path / "ckpt"


def test_missing_directory_or_files_are_errors(saved: Path) -> None:
    with pytest.raises(MusegenError, match="no such model directory"):
        load_model(saved.parent / "nope")
    (saved / "model.safetensors").unlink()
    with pytest.raises(MusegenError, match="missing weights"):
        load_model(saved)
    (saved / "config.json").unlink()
    with pytest.raises(MusegenError, match=r"config\.json"):
        load_model(saved)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b"not a safetensors file at all",
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b"",
        lambda b: b[:8] + b"{garbage" + b[16:],  # broken header
    ],
)
def test_corrupt_weights_are_errors(saved: Path, damage) -> None:
    path = saved / "model.safetensors"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(MusegenError, match=r"model\.safetensors"):
        load_model(saved)


def test_config_mismatch_names_the_tensor(saved: Path) -> None:
    meta = json.loads((saved / "config.json").read_text())
    meta["config"]["vocab_size"] = VOCAB + 1
    (saved / "config.json").write_text(json.dumps(meta))
    with pytest.raises(MusegenError, match=r"tok_emb\.weight.*\(37, 32\).*\(38, 32\)"):
        load_model(saved)
    meta["config"]["vocab_size"] = VOCAB
    meta["config"]["position"] = "rope"  # no relative tables expected
    (saved / "config.json").write_text(json.dumps(meta))
    with pytest.raises(MusegenError, match=r"unexpected.*relative"):
        load_model(saved)
    meta["config"]["wings"] = 2
    (saved / "config.json").write_text(json.dumps(meta))
    with pytest.raises(MusegenError, match="wings"):
        load_model(saved)
    (saved / "config.json").write_text("{")
    with pytest.raises(MusegenError, match=r"config\.json"):
        load_model(saved)


# ----------------------------------------------------------------------------- registry, options


def test_registry() -> None:
    names = available_models()
    assert {"gru", "lstm", "transformer"} <= set(names) and names == sorted(names)
    config = model_config_class("transformer")()
    assert config.position == "relative" and config.tie_embeddings
    assert model_config_class("gru")().cell == "gru"
    assert model_config_class("transformer")(**config.to_dict()) == config


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("nope", {}, "unknown model 'nope'"),
        ("transformer", {"n_heads": 4}, "unknown .*n_heads"),
        ("lstm", {"d_model": 4}, "unknown .*d_model"),
        ("transformer", {"d_model": 30, "n_head": 4}, "multiple of n_head"),
        ("transformer", {"position": "alibi"}, "position must be one of"),
        ("transformer", {"norm": "batchnorm"}, "norm must be one of"),
        ("transformer", {"n_layer": "2"}, "n_layer must be int"),
        ("transformer", {"tie_embeddings": 1}, "tie_embeddings must be bool"),
        ("transformer", {"dropout": 1.5}, "dropout"),
        ("transformer", {"position": "rope", "d_model": 12, "n_head": 4}, "even head"),
        ("gru", {"cell": "lstm"}, "model 'gru' has cell='gru'"),
        ("lstm", {"vocab_size": 0}, "vocab_size"),
    ],
)
def test_bad_options_are_errors(name: str, options: dict, match: str) -> None:
    with pytest.raises(MusegenError, match=match):
        build_model(name, **options)


def test_importing_models_does_not_import_torch() -> None:
    code = "import sys, musegen.models; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- learning


@pytest.mark.parametrize("key", ["relative", "rope", "lstm"])
def test_tiny_model_overfits_a_repeated_sequence(key: str) -> None:
    torch.manual_seed(0)
    name, options = CONFIGS[key]
    model = build_model(name, **{**options, "dropout": 0.0})
    pattern = torch.tensor([3, 9, 4, 4, 20, 7, 1, 30])
    ids = pattern.repeat(4, 4)  # [4, 32]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def loss() -> torch.Tensor:
        logits, _ = model(ids[:, :-1])
        return F.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1))

    start = loss().item()
    for _ in range(40):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    assert start > 3.0 and value.item() < 0.15 * start


@pytest.mark.parametrize("key", ["relative", "rope", "gru-tied"])
def test_deterministic_given_seed(key: str) -> None:
    ids = tokens()
    a, b = make(key, seed=5).train(), make(key, seed=5).train()
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert na == nb and torch.equal(pa, pb)
    torch.manual_seed(7)
    out_a, _ = a(ids)  # dropout active: same seed, same masks
    torch.manual_seed(7)
    out_b, _ = b(ids)
    assert torch.equal(out_a, out_b)
    first = next(iter(a.state_dict()))
    assert not torch.equal(
        make(key, seed=5).state_dict()[first], make(key, seed=6).state_dict()[first]
    )


def test_num_parameters_counts_tied_weights_once() -> None:
    model = make("relative")
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())
    assert model.num_parameters(exclude_embeddings=True) == model.num_parameters()  # tied: head
    absolute = make("absolute")
    lookups = absolute.tok_emb.weight.numel() + absolute.pos_emb.weight.numel()
    assert absolute.num_parameters() - absolute.num_parameters(exclude_embeddings=True) == lookups


@torch.no_grad()
def test_forward_hooks_take_the_module_path() -> None:
    """A forward hook sees (and may change) every step: the fused step stands aside for it."""
    model, ids = make("relative"), tokens(2, 5)
    seen: list[int] = []
    model.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].shape[1]))
    cache = model.init_cache(2, 5)
    _, cache = model(ids[:, :3], cache)
    model.next_logits(ids[:, 3].numpy(), cache)
    model(ids[:, 4:5], cache)
    assert seen == [3, 1, 1]
