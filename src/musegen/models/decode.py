"""One-token decoding steps of the :class:`~musegen.models.transformer.Transformer` on the CPU.

Sampling a small model one token at a time is bound by per-operation overhead, not arithmetic:
a step of the shipped 4-layer model is ~100 tiny operations, and each eager PyTorch call
(module dispatch, argument parsing, a fresh output tensor) costs several microseconds, more
than the work it launches. This module runs the same arithmetic as ``Transformer.forward`` for
one new token per sequence with fewer, cheaper calls:

* numpy for the small matrix products (its per-call overhead is a fraction of PyTorch's),
  PyTorch for the kernels numpy lacks or does slower (layer/RMS norm, softmax, ``erfc``), on
  the same memory (``Tensor.numpy()`` / ``torch.from_numpy`` share buffers, nothing is copied);
* constants folded into packed weights once per cache: the ``1/sqrt(head_dim)`` attention
  scale into the query projection, GELU's ``-1/sqrt(2)`` and ``-1/2`` (for ``erfc``) into
  the MLP weights;
* the relative-attention table stored reversed and transposed, so the relative logits of the
  new query against its last ``min(L, max_relative)`` keys are one product with a contiguous
  slice (no distance gather); older keys share the table's last row;
* keys and values written straight into the :class:`KVCache` tensors, so the cache stays
  valid for the generic PyTorch path too (prompts, chunks, autograd);
* batches of several sequences of a model too big to stay in cache multiply by weights
  packed once for oneDNN (PyTorch's CPU kernel library), with the GELU and the residual adds
  fused into the products: there the step is bound by reading the weights, and BLAS GEMM
  reads each one twice per call (it packs it first).

:meth:`Transformer.init_cache` attaches a :class:`Decoder` when the model is on the CPU in
float32; ``Transformer.forward`` uses it for one-token steps outside autograd and training.
A decoder snapshots the weights it packs; ``init_cache`` keeps one packing per model and
packs again when a weight has changed (new tensor or version counter), so a cache made after
a change sees the new weights, and an existing cache keeps the old. The tests check every
position scheme against the full forward pass.
"""

from __future__ import annotations

import copy
import ctypes
import functools
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from musegen.models.transformer import KVCache, Transformer, TransformerConfig

_SQRT_HALF = math.sqrt(0.5)


def _np(t: torch.Tensor) -> np.ndarray:
    """A numpy view of a parameter's memory (no copy)."""
    return t.detach().numpy()


def _scaled(t: torch.Tensor | None, factor: float) -> np.ndarray | None:
    """A scaled numpy copy of ``t``, laid out ``[in, out]`` if it is a matrix."""
    if t is None:
        return None
    a = _np(t)
    return np.ascontiguousarray(a.T if a.ndim == 2 else a) * np.float32(factor)


Norm = Callable[[torch.Tensor], torch.Tensor]


def _norm(module: torch.nn.Module) -> Norm:
    """The module's normalisation as a direct call of the ATen op (no module dispatch)."""
    weight = module.weight.detach()
    shape, eps = tuple(weight.shape), module.eps
    if isinstance(module, torch.nn.LayerNorm):
        bias = None if module.bias is None else module.bias.detach()
        return lambda x: torch.layer_norm(x, shape, weight, bias, eps)
    if hasattr(torch, "rms_norm"):
        return lambda x: torch.rms_norm(x, shape, weight, eps)
    return lambda x: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def cpu_autocast() -> bool:
    """Whether CPU autocast is on (the fused step computes in float32 only)."""
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


# get/set thread-count functions of the OpenBLAS builds numpy ships with or links to
_OPENBLAS_NAMES = [
    (f"{prefix}openblas_get_num_threads{suffix}", f"{prefix}openblas_set_num_threads{suffix}")
    for prefix in ("scipy_", "")
    for suffix in ("64_", "", "_64")
]


@functools.cache
def _openblas() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """numpy's OpenBLAS thread-count functions, found among the loaded libraries (Linux:
    ``/proc/self/maps``); None where there is none (another BLAS, another platform)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get, set_ in _OPENBLAS_NAMES:
            if hasattr(lib, get) and hasattr(lib, set_):
                getter, setter = getattr(lib, get), getattr(lib, set_)
                getter.restype, setter.restype = ctypes.c_int, None
                setter.argtypes = [ctypes.c_int]
                return getter, setter
    return None


@contextmanager
def blas_threads(n: int) -> Iterator[bool]:
    """Run numpy's OpenBLAS with ``n`` threads inside the block, as ``torch.set_num_threads``
    does for PyTorch; yields whether it could (the count is restored after)."""
    functions = _openblas()
    if functions is None:
        yield False
        return
    get, set_ = functions
    before = get()
    set_(n)
    try:
        yield True
    finally:
        set_(before)


def _blas_one_thread() -> bool:
    """Whether numpy's OpenBLAS runs single-threaded (asked of the library where it can be,
    else its thread variables, else the CPU count)."""
    functions = _openblas()
    if functions is not None:
        return functions[0]() == 1
    for name in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name):
            return os.environ[name].strip() == "1"
    cpus = (
        os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    )
    return len(cpus) == 1


class _Weight:
    """A ``[in, out]`` matrix as numpy and as a tensor on the same memory."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.tensor = torch.from_numpy(array)


def _numpy_matmul(a: np.ndarray, w: _Weight, out: np.ndarray | None = None) -> np.ndarray:
    return np.matmul(a, w.array, out=out)


# PyTorch's own (private) oneDNN ops: products with weights laid out for the kernel once
_LINEAR = "_linear_pointwise"
_REORDER = "_reorder_linear_weight"


def _linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ Wᵀ + b`` with oneDNN-packed ``W``."""
    return getattr(torch.ops.mkldnn, _LINEAR)(x, packed, bias, "none", [], "")


def _linear_gelu(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``gelu(x @ Wᵀ + b)`` (the exact, erf GELU) in one oneDNN call."""
    return getattr(torch.ops.mkldnn, _LINEAR)(x, packed, bias, "gelu", [], "none")


def _linear_add(
    x: torch.Tensor, residual: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``residual + x @ Wᵀ + b`` in one oneDNN call."""
    return getattr(torch.ops.mkldnn, _LINEAR).binary(x, residual, packed, bias, "add")


def _pack(weight: torch.Tensor, batch: int) -> torch.Tensor:
    """A copy of ``weight`` ``[out, in]`` in oneDNN's blocked layout for products with ``batch``
    rows (measured: any batch from 2 to 256 runs as fast on it)."""
    with torch.no_grad():
        return getattr(torch.ops.mkldnn, _REORDER)(weight.detach().contiguous(), batch)


# the oneDNN step is taken by batches from ONEDNN_MIN_BATCH rows on, of models whose weights
# are ONEDNN_MIN_WEIGHT_BYTES or more, where PyTorch has oneDNN (see Decoder._bind)
ONEDNN_MIN_BATCH = 4
ONEDNN_MIN_WEIGHT_BYTES = 6 * 2**20


@functools.cache
def onednn_available() -> bool:
    """Whether this PyTorch runs the oneDNN products the step needs and gets them right
    (the ops are private to PyTorch, so a build is asked rather than trusted)."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        gen = torch.Generator().manual_seed(0)
        weight, bias = torch.randn(24, 16, generator=gen), torch.randn(24, generator=gen)
        x, residual = torch.randn(5, 16, generator=gen), torch.randn(5, 24, generator=gen)
        with torch.no_grad():
            packed = _pack(weight, 5)
            expect = torch.addmm(bias, x, weight.T)
            return all(
                torch.allclose(got, want, atol=1e-4)
                for got, want in (
                    (_linear(x, packed, bias), expect),
                    (_linear_gelu(x, packed, bias), torch.nn.functional.gelu(expect)),
                    (_linear_add(x, residual, packed, bias), expect + residual),
                )
            )
    except Exception:  # any failure of a private op means: not in this build
        return False


def _torch_matmul(a: np.ndarray, w: _Weight, out: np.ndarray | None = None) -> np.ndarray:
    result = torch.mm(torch.from_numpy(a), w.tensor)
    if out is None:
        return result.numpy()
    out[...] = result.numpy()
    return out


class _PackedLayer:
    """One block's weights packed for oneDNN: the query scale folded in as for numpy; the MLP
    weights as they are (oneDNN's fused GELU is the exact one itself)."""

    def __init__(self, layer: _Layer, batch: int) -> None:
        attn, mlp = layer.block.attn, layer.block.mlp
        self.qkv = _pack(layer.qkv.tensor.T, batch)
        self.qkv_bias = None if layer.qkv_bias is None else torch.from_numpy(layer.qkv_bias)
        self.out, self.out_bias = _pack(attn.out.weight, batch), _copy(attn.out.bias)
        self.up, self.up_bias = _pack(mlp.up.weight, batch), _copy(mlp.up.bias)
        self.down, self.down_bias = _pack(mlp.down.weight, batch), _copy(mlp.down.bias)


def _copy(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach().clone()


class _Layer:
    """One block's packed weights: numpy matrices laid out ``[in, out]`` for ``x @ W``."""

    def __init__(self, block: torch.nn.Module, scale: float) -> None:
        attn, mlp = block.attn, block.mlp
        self.block = block  # for the oneDNN packing, made when a batch first needs it
        d = attn.qkv.in_features
        self.norm1, self.norm2 = _norm(block.norm1), _norm(block.norm2)
        qkv = _scaled(attn.qkv.weight, 1.0)  # [d, 3d]
        qkv[:, :d] *= scale  # softmax(q kᵀ · scale): scale the query once
        self.qkv = _Weight(qkv)
        self.qkv_bias = _scaled(attn.qkv.bias, 1.0)
        if self.qkv_bias is not None:
            self.qkv_bias[:d] *= scale
        self.out = _Weight(_np(attn.out.weight).T)
        self.out_bias = None if attn.out.bias is None else _np(attn.out.bias)
        # gelu(h) = h/2 · (1 + erf(h/√2)) = h/2 · erfc(-h/√2): with u = -h/√2 (folded into
        # ``up``), that is -√2/2 · u · erfc(u), and the -√2/2 goes into ``down``.
        self.up = _Weight(_scaled(mlp.up.weight, -_SQRT_HALF))
        self.up_bias = _scaled(mlp.up.bias, -_SQRT_HALF)
        self.down = _Weight(_scaled(mlp.down.weight, -_SQRT_HALF))
        self.down_bias = None if mlp.down.bias is None else _np(mlp.down.bias)
        self.weights = (self.qkv, self.out, self.up, self.down)
        self.relative_t: np.ndarray | None = None
        if attn.relative is not None:  # [H or 1, head_dim, R]: column c is distance R - 1 - c
            table = _np(attn.relative)[:, ::-1]
            self.relative_t = np.ascontiguousarray(table.transpose(0, 2, 1))


class Decoder:
    """Packed weights, cache views and buffers of one model and cache for one-token steps."""

    def __init__(self, model: Transformer, cache: KVCache | None = None) -> None:
        c = model.config
        self.n_head, self.head_dim, self.d_model = c.n_head, c.head_dim, c.d_model
        self.max_relative = c.max_relative
        self.layers = [_Layer(b, 1.0 / math.sqrt(c.head_dim)) for b in model.blocks]
        self.tok_emb = _np(model.tok_emb.weight)
        self.pos_emb = None if model.pos_emb is None else _np(model.pos_emb.weight)
        self.inv_freq = _np(model.inv_freq) if c.position == "rope" else None
        self.norm = _norm(model.norm)
        self.head = _Weight(_np(model.lm_head.weight).T)  # [d, vocab]
        # oneDNN-packed weights, made by the first binding that needs them and shared by
        # every decoder copy (for_cache): "layers" (_PackedLayer list), "head"
        self.onednn_weights: dict[str, object] = {}
        if cache is not None:  # else packed weights only: see for_cache
            self._bind(cache, model.config)

    def for_cache(self, cache: KVCache, config: TransformerConfig) -> Decoder:
        """This decoder's packed weights over another cache of the same model (e.g. a few
        sequences selected from the batch): only the cache views and buffers are new."""
        other = copy.copy(self)
        other._bind(cache, config)
        return other

    def _bind(self, cache: KVCache, c: TransformerConfig) -> None:
        """Views of ``cache``'s memory and work buffers for its batch size."""
        B = cache.batch_size
        # A batch of several sequences multiplies every weight once per step, and the weights
        # of a model of several MB do not stay in cache from one step to the next: the
        # products are bound by reading them. BLAS GEMM (OpenBLAS, MKL) copies ("packs") the
        # weight on every call, reading it twice; oneDNN reads weights laid out for its
        # kernel once, here, and fuses the GELU and the residual adds into the products.
        # Measured (one thread, AMD EPYC, 1 MiB L2): 6 x d256 (19 MB) steps 1.4-1.7x faster
        # at batch 4-8, 2 x d256 (6 MB) 1.3x, 4 x d192 (7 MB) on par, at batch 3 on par. A
        # small model's weights stay in cache and oneDNN's ≈ 14 µs per call loses (4 x d128,
        # 3 MB, the shipped bach model: 0.5-0.7x); one row is a matrix-vector product that
        # BLAS streams without packing, with numpy's lower call cost.
        weights = [self.head, *(w for layer in self.layers for w in layer.weights)]
        self.onednn = (
            B >= ONEDNN_MIN_BATCH
            and sum(w.array.nbytes for w in weights) >= ONEDNN_MIN_WEIGHT_BYTES
            and onednn_available()
        )
        if self.onednn and not self.onednn_weights:
            self.onednn_weights["layers"] = [_PackedLayer(layer, B) for layer in self.layers]
            self.onednn_weights["head"] = _pack(self.head.tensor.T, B)
        # numpy's OpenBLAS runs a product of more than 2**18 multiply-adds on all its threads,
        # which for these sizes costs far more than it saves (many times more on a busy
        # machine): unless it runs one thread (the generator sees to that: blas_threads),
        # such batches go through torch.mm, which keeps to torch's thread count (but is
        # about twice as slow as one-thread OpenBLAS for these shapes)
        small = B * max(w.array.size for w in weights) <= 2**18
        self.matmul = _numpy_matmul if small or _blas_one_thread() else _torch_matmul
        # the cache's memory as numpy, heads of all sequences on one axis: keys transposed
        # [layer, B * H, hd, max_len], values [layer, B * H, max_len, hd]
        flat = (c.n_layer, B * c.n_head, cache.max_len, c.head_dim)
        self.keys_t = cache.keys.numpy().reshape(flat).transpose(0, 1, 3, 2)
        self.values = cache.values.numpy().reshape(flat)
        # per-head relative tables need the sequences apart, unless there is one sequence
        self.split_batch = B > 1 and not c.relative_shared_heads
        # work buffers, each with a tensor view for the torch kernels
        self.x = np.empty((B, c.d_model), np.float32)  # the residual stream
        self.x_t = torch.from_numpy(self.x)
        self.u = np.empty((B, c.ff_dim), np.float32)  # MLP pre-activation (· -1/√2)
        self.u_t = torch.from_numpy(self.u)
        self.g = np.empty((B, c.ff_dim), np.float32)  # erfc(u), then the activation
        self.g_t = torch.from_numpy(self.g)

    @staticmethod
    def supports(model: Transformer) -> bool:
        w = model.tok_emb.weight
        return w.device.type == "cpu" and w.dtype == torch.float32

    def step(self, tokens: np.ndarray, pos: int) -> np.ndarray:
        """Logits ``[B, vocab]`` after ``tokens`` ``[B]`` at position ``pos`` (cache filled to it)."""
        if tokens.min() < 0:  # numpy would wrap negative ids round; the embedding raises
            raise IndexError("token ids must be >= 0")
        x = self.x
        np.take(self.tok_emb, tokens, axis=0, out=x)
        if self.pos_emb is not None:
            x += self.pos_emb[pos]
        rope = None
        if self.inv_freq is not None:
            angles = np.float32(pos) * self.inv_freq
            rope = (np.cos(angles), np.sin(angles))
        if self.onednn:
            return self._onednn_blocks(pos, rope)
        x_t, u, g, mm = self.x_t, self.u, self.g, self.matmul
        for layer, keys_t, values in zip(self.layers, self.keys_t, self.values, strict=True):
            qkv = mm(layer.norm1(x_t).numpy(), layer.qkv)
            if layer.qkv_bias is not None:
                qkv += layer.qkv_bias
            x += mm(self._attend(layer, qkv, keys_t, values, pos, rope), layer.out)
            if layer.out_bias is not None:
                x += layer.out_bias
            mm(layer.norm2(x_t).numpy(), layer.up, out=u)
            if layer.up_bias is not None:
                u += layer.up_bias
            torch.erfc(self.u_t, out=self.g_t)
            g *= u
            x += mm(g, layer.down)
            if layer.down_bias is not None:
                x += layer.down_bias
        return mm(self.norm(x_t).numpy(), self.head)

    def _onednn_blocks(self, pos: int, rope: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        """The blocks and the head with oneDNN products (the embedded tokens in ``self.x``)."""
        x = self.x_t
        packed: list[_PackedLayer] = self.onednn_weights["layers"]  # type: ignore[assignment]
        for layer, p, keys_t, values in zip(
            self.layers, packed, self.keys_t, self.values, strict=True
        ):
            qkv = _linear(layer.norm1(x), p.qkv, p.qkv_bias).numpy()
            attended = self._attend(layer, qkv, keys_t, values, pos, rope)
            x = _linear_add(torch.from_numpy(attended), x, p.out, p.out_bias)
            x = _linear_add(_linear_gelu(layer.norm2(x), p.up, p.up_bias), x, p.down, p.down_bias)
        head: torch.Tensor = self.onednn_weights["head"]  # type: ignore[assignment]
        return _linear(self.norm(x), head, None).numpy()

    def _attend(
        self,
        layer: _Layer,
        qkv: np.ndarray,
        keys_t: np.ndarray,
        values: np.ndarray,
        pos: int,
        rope: tuple[np.ndarray, np.ndarray] | None,
    ) -> np.ndarray:
        """Attention of the new tokens' queries ``qkv`` ``[B, 3 * d]`` (keys and values go into
        the cache at ``pos``): the heads' outputs side by side, ``[B, d]``."""
        B, H, hd = qkv.shape[0], self.n_head, self.head_dim
        BH, L = B * H, pos + 1
        near = min(L, self.max_relative)  # keys with their own relative distance
        if B > 1:  # [B, (3, H, hd)] -> [3, B * H, hd] (a view for one sequence)
            qkv = qkv.reshape(B, 3, self.d_model).transpose(1, 0, 2)
        qkv = qkv.reshape(3, BH, 1, hd)
        if rope is not None:
            qkv[:2] = _rotate(qkv[:2], *rope)
        q = qkv[0]  # [B * H, 1, hd]
        keys_t[:, :, pos] = qkv[1, :, 0]
        values[:, pos] = qkv[2, :, 0]
        scores = q @ keys_t[:, :, :L]  # [B * H, 1, L]
        if layer.relative_t is not None:
            table = layer.relative_t[:, :, self.max_relative - near :]  # distances near-1..0
            if self.split_batch:  # per head: the batch's queries [B, hd] meet its table
                rel = (q.reshape(B, H, hd).transpose(1, 0, 2) @ table).transpose(1, 0, 2)
                into = scores.reshape(B, H, L)  # a view: rel is [B, H, near]
            else:
                rel, into = q @ table, scores
            into[..., L - near :] += rel
            if near < L:  # the farther keys all use the last table row
                into[..., : L - near] += rel[..., :1]
        probs = torch.softmax(torch.from_numpy(scores), dim=-1).numpy()
        return (probs @ values[:, :L]).reshape(B, self.d_model)


def _rotate(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotary embedding of one position (see ``transformer.rotate``)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate((x1 * cos - x2 * sin, x2 * cos + x1 * sin), axis=-1)
