"""One-token decoding steps of a decoder-only transformer on the CPU, from its exported weights.

Sampling a small model one token at a time is bound by per-operation overhead, not arithmetic:
a step of the shipped 4-layer model is ~100 tiny operations, and each eager PyTorch call
(module dispatch, argument parsing, a fresh output tensor) costs several microseconds, more
than the work it launches. :class:`Decoder` runs the same arithmetic as the model's
``forward`` for one new token per sequence with fewer, cheaper calls:

* numpy for the small matrix products (its per-call overhead is a fraction of PyTorch's),
  PyTorch for the kernels numpy lacks or does slower (layer/RMS norm, softmax, ``erfc``), on
  the same memory (``Tensor.numpy()`` / ``torch.from_numpy`` share buffers, nothing is copied);
* constants folded into packed weights once per set of weights: the ``1/sqrt(head_dim)``
  attention scale into the query projection, GELU's ``-1/sqrt(2)`` and ``-1/2`` (for
  ``erfc``) into the MLP weights;
* the relative-attention table stored reversed and transposed, so the relative logits of the
  new query against its last ``min(L, max_relative)`` keys are one product with a contiguous
  slice (no distance gather); older keys share the table's last row;
* keys and values written straight into the cache's tensors, so the cache stays valid for the
  model's own path too (prompts, chunks, autograd);
* the products run on the kernel this CPU measured fastest for the model and the batch
  (:mod:`.probe`): numpy's BLAS, ``torch.mm``, or weights packed once for oneDNN
  (:mod:`.onednn`) with the GELU and the residual adds fused into the products.

The decoder reads only a :class:`~.weights.DecodingWeights` (the model's export), and its
packed weights are a snapshot: the model makes a new decoder when a weight changes.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from musegen.models.cpu import onednn, probe
from musegen.models.cpu.threads import blas_one_thread
from musegen.models.cpu.weights import DecodingWeights, LayerWeights, NormWeights

_SQRT_HALF = math.sqrt(0.5)

# the fixed rule, where the probe is off (MUSEGEN_CPU_PROBE=0; see .probe): the oneDNN step
# for batches from ONEDNN_MIN_BATCH rows on, of models whose weights are
# ONEDNN_MIN_WEIGHT_BYTES or more, where PyTorch has oneDNN; numpy's BLAS otherwise
ONEDNN_MIN_BATCH = 4
ONEDNN_MIN_WEIGHT_BYTES = 6 * 2**20
PROBE_ROUNDS = 7  # timed rounds of each kernel in a probe (after one warm-up round)


def _np(t: torch.Tensor) -> np.ndarray:
    """A numpy view of a tensor's memory (no copy)."""
    return t.detach().numpy()


def _scaled(t: torch.Tensor | None, factor: float) -> np.ndarray | None:
    """A scaled numpy copy of ``t``, laid out ``[in, out]`` if it is a matrix."""
    if t is None:
        return None
    a = _np(t)
    return np.ascontiguousarray(a.T if a.ndim == 2 else a) * np.float32(factor)


Norm = Callable[[torch.Tensor], torch.Tensor]


def _norm(norm: NormWeights) -> Norm:
    """The normalisation as a direct call of the ATen op (no module dispatch)."""
    weight = norm.weight.detach()
    shape, eps = tuple(weight.shape), norm.eps
    if norm.kind == "layernorm":
        bias = None if norm.bias is None else norm.bias.detach()
        return lambda x: torch.layer_norm(x, shape, weight, bias, eps)
    if hasattr(torch, "rms_norm"):
        return lambda x: torch.rms_norm(x, shape, weight, eps)
    return lambda x: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


class _Weight:
    """A ``[in, out]`` matrix as numpy and as a tensor on the same memory."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.tensor = torch.from_numpy(array)


MatMul = Callable[[np.ndarray, _Weight, "np.ndarray | None"], np.ndarray]


def numpy_matmul(a: np.ndarray, w: _Weight, out: np.ndarray | None = None) -> np.ndarray:
    return np.matmul(a, w.array, out=out)


def torch_matmul(a: np.ndarray, w: _Weight, out: np.ndarray | None = None) -> np.ndarray:
    result = torch.mm(torch.from_numpy(a), w.tensor)
    if out is None:
        return result.numpy()
    out[...] = result.numpy()
    return out


def _copy(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach().clone()


class _Layer:
    """One block's packed weights: numpy matrices laid out ``[in, out]`` for ``x @ W``."""

    def __init__(self, weights: LayerWeights, scale: float) -> None:
        self.weights_in = weights  # for the oneDNN packing, made when a batch first needs it
        d = weights.qkv.shape[1]
        self.norm1, self.norm2 = _norm(weights.norm1), _norm(weights.norm2)
        qkv = _scaled(weights.qkv, 1.0)  # [d, 3d]
        qkv[:, :d] *= scale  # softmax(q kᵀ · scale): scale the query once
        self.qkv = _Weight(qkv)
        self.qkv_bias = _scaled(weights.qkv_bias, 1.0)
        if self.qkv_bias is not None:
            self.qkv_bias[:d] *= scale
        self.out = _Weight(_np(weights.out).T)
        self.out_bias = None if weights.out_bias is None else _np(weights.out_bias)
        # gelu(h) = h/2 · (1 + erf(h/√2)) = h/2 · erfc(-h/√2): with u = -h/√2 (folded into
        # ``up``), that is -√2/2 · u · erfc(u), and the -√2/2 goes into ``down``.
        self.up = _Weight(_scaled(weights.up, -_SQRT_HALF))
        self.up_bias = _scaled(weights.up_bias, -_SQRT_HALF)
        self.down = _Weight(_scaled(weights.down, -_SQRT_HALF))
        self.down_bias = None if weights.down_bias is None else _np(weights.down_bias)
        self.weights = (self.qkv, self.out, self.up, self.down)
        self.tensors = _Biases(self)
        self.relative_t: np.ndarray | None = None
        if weights.relative is not None:  # [tables, head_dim, R]: column c is distance R - 1 - c
            table = _np(weights.relative)[:, ::-1]
            self.relative_t = np.ascontiguousarray(table.transpose(0, 2, 1))


class _Biases:
    """A layer's bias vectors as tensors on the numpy copies' memory (for ``addmm``)."""

    def __init__(self, layer: _Layer) -> None:
        def tensor(a: np.ndarray | None) -> torch.Tensor | None:
            return None if a is None else torch.from_numpy(a)

        self.qkv_bias, self.out_bias = tensor(layer.qkv_bias), tensor(layer.out_bias)
        self.up_bias, self.down_bias = tensor(layer.up_bias), tensor(layer.down_bias)


class _PackedLayer:
    """One block's weights packed for oneDNN: the query scale folded in as for numpy; the MLP
    weights as they are (oneDNN's fused GELU is the exact one itself)."""

    def __init__(self, layer: _Layer, batch: int) -> None:
        w = layer.weights_in
        self.qkv = onednn.pack(layer.qkv.tensor.T, batch)
        self.qkv_bias = None if layer.qkv_bias is None else torch.from_numpy(layer.qkv_bias)
        self.out, self.out_bias = onednn.pack(w.out, batch), _copy(w.out_bias)
        self.up, self.up_bias = onednn.pack(w.up, batch), _copy(w.up_bias)
        self.down, self.down_bias = onednn.pack(w.down, batch), _copy(w.down_bias)


class Decoder:
    """Packed weights of one model, and (once bound, :meth:`bind`) views of one cache's keys
    and values and work buffers for its batch: one-token steps (:meth:`step`)."""

    def __init__(self, weights: DecodingWeights) -> None:
        self.n_head, self.head_dim, self.d_model = weights.n_head, weights.head_dim, weights.d_model
        self.ff_dim = weights.ff_dim
        self.max_relative = weights.max_relative
        self.layers = [_Layer(w, 1.0 / math.sqrt(weights.head_dim)) for w in weights.layers]
        self.tok_emb = _np(weights.tok_emb)
        self.pos_emb = None if weights.pos_emb is None else _np(weights.pos_emb)
        self.inv_freq = None if weights.inv_freq is None else _np(weights.inv_freq)
        self.norm = _norm(weights.norm)
        self.head = _Weight(_np(weights.head).T)  # [d, vocab]
        # per-head relative tables need the sequences of a batch apart
        self.per_head_tables = any(
            w.relative is not None and w.relative.shape[0] > 1 for w in weights.layers
        )
        # oneDNN-packed weights, made by the first binding that needs them and shared by
        # every bound copy: "layers" (_PackedLayer list), "head"
        self.onednn_weights: dict[str, object] = {}

    def bind(self, keys: torch.Tensor, values: torch.Tensor) -> Decoder:
        """A copy of this decoder stepping over a cache's ``keys`` and ``values`` (float32
        CPU tensors ``[layers, batch, heads, max_len, head_dim]``, written in place): the
        packed weights are shared, only the cache views and buffers are new."""
        other = copy.copy(self)
        other._bind(keys, values)
        return other

    def _bind(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        n_layer, B, H, max_len, hd = keys.shape
        # Which kernel multiplies fastest depends on the CPU (see .probe): a batch of several
        # sequences of a model of several MB is bound by reading the weights, which BLAS GEMM
        # reads twice per call (it packs them first) and oneDNN once (packed here, GELU and
        # residual adds fused); but on some CPUs torch.mm's BLAS (MKL) is faster still, and
        # one row is a matrix-vector product where numpy's lower cost per call wins.
        weights = [self.head, *(w for layer in self.layers for w in layer.weights)]
        kernel = self._kernel(B, sum(w.array.nbytes for w in weights))
        self.onednn = kernel == "onednn"
        if self.onednn and not self.onednn_weights:
            self._pack(B)
        # numpy's OpenBLAS runs a product of more than 2**18 multiply-adds on all its threads,
        # which for these sizes costs far more than it saves (many times more on a busy
        # machine): unless it runs one thread (the generator sees to that: blas_threads),
        # such batches go through torch.mm, which keeps to torch's thread count (but is
        # slower than one-thread OpenBLAS for these shapes)
        small = B * max(w.array.size for w in weights) <= 2**18
        numpy_ok = small or blas_one_thread()
        self.matmul: MatMul = numpy_matmul if kernel == "numpy" and numpy_ok else torch_matmul
        # the cache's memory as numpy, heads of all sequences on one axis: keys transposed
        # [layer, B * H, hd, max_len], values [layer, B * H, max_len, hd]
        flat = (n_layer, B * H, max_len, hd)
        self.keys_t = keys.numpy().reshape(flat).transpose(0, 1, 3, 2)
        self.values = values.numpy().reshape(flat)
        self.split_batch = B > 1 and self.per_head_tables
        # work buffers, each with a tensor view for the torch kernels
        self.x = np.empty((B, self.d_model), np.float32)  # the residual stream
        self.x_t = torch.from_numpy(self.x)
        self.u = np.empty((B, self.ff_dim), np.float32)  # MLP pre-activation (· -1/√2)
        self.u_t = torch.from_numpy(self.u)
        self.g = np.empty((B, self.ff_dim), np.float32)  # erfc(u), then the activation
        self.g_t = torch.from_numpy(self.g)

    def _pack(self, batch: int) -> None:
        """Pack every weight for oneDNN products of ``batch`` rows (kept and shared by every
        bound copy: fewer rows use the same packing)."""
        self.onednn_weights["layers"] = [_PackedLayer(layer, batch) for layer in self.layers]
        self.onednn_weights["head"] = onednn.pack(self.head.tensor.T, batch)

    def _kernel(self, batch: int, weight_bytes: int) -> str:
        """``"numpy"``, ``"torch"`` or ``"onednn"`` for steps of ``batch`` rows: forced by
        the environment, else measured on this CPU (:mod:`.probe`), else the fixed rule."""
        kernel = probe.forced()
        if kernel is None and probe.probing():
            shape = (
                f"{len(self.layers)} layers, d_model {self.d_model}, ff {self.ff_dim}, "
                f"vocab {self.head.array.shape[1]}, batch {batch}"
            )
            packed = bool(self.onednn_weights)
            kernel = probe.kernel_for(shape, lambda: self._measure(batch))
            if kernel != "onednn" and not packed:
                self.onednn_weights.clear()  # packed only to be measured
        if kernel is None:
            big = batch >= ONEDNN_MIN_BATCH and weight_bytes >= ONEDNN_MIN_WEIGHT_BYTES
            kernel = "onednn" if big else "numpy"
        if kernel == "onednn" and not onednn.available():
            kernel = "numpy"
        return kernel

    def _measure(self, batch: int) -> dict[str, float]:
        """Milliseconds of one step's products (every layer's four and the head) for
        ``batch`` rows with each kernel, on these weights, in CPU time of this process: the
        median of :data:`PROBE_ROUNDS` rounds, the kernels taking turns within a round."""
        rng = np.random.default_rng(0)
        x = (0.1 * rng.standard_normal((batch, self.d_model))).astype(np.float32)
        h = (0.1 * rng.standard_normal((batch, self.ff_dim))).astype(np.float32)
        x_t, h_t = torch.from_numpy(x), torch.from_numpy(h)

        def blas(mm: MatMul) -> Callable[[], None]:
            def run() -> None:
                for layer in self.layers:
                    mm(x, layer.qkv, None)
                    mm(x, layer.out, None)
                    mm(x, layer.up, None)
                    mm(h, layer.down, None)
                mm(x, self.head, None)

            return run

        runs = {"numpy": blas(numpy_matmul), "torch": blas(torch_matmul)}
        if onednn.available():
            if not self.onednn_weights:
                self._pack(batch)  # kept: the step uses them if oneDNN wins
            packed: list[_PackedLayer] = self.onednn_weights["layers"]  # type: ignore[assignment]
            head: torch.Tensor = self.onednn_weights["head"]  # type: ignore[assignment]

            def fused() -> None:
                for p in packed:
                    onednn.linear(x_t, p.qkv, p.qkv_bias)
                    onednn.linear_add(x_t, x_t, p.out, p.out_bias)
                    onednn.linear_gelu(x_t, p.up, p.up_bias)
                    onednn.linear_add(h_t, x_t, p.down, p.down_bias)
                onednn.linear(x_t, head, None)

            runs["onednn"] = fused
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        names = list(runs)
        for r in range(PROBE_ROUNDS + 1):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                start = time.process_time()  # CPU time: not the turns other processes take
                runs[name]()
                if r:  # round 0 warms up
                    seconds[name].append(time.process_time() - start)
        return {name: 1000 * statistics.median(s) for name, s in seconds.items()}

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
        if self.matmul is torch_matmul:
            return self._torch_blocks(pos, rope)
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

    def _torch_blocks(self, pos: int, rope: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        """The blocks and the head with ``torch.mm`` products written in place: biases and
        residual adds inside the products (``addmm``), no result copied (the embedded tokens
        in ``self.x``; the same arithmetic as the numpy loop of :meth:`step`)."""
        x, u, g = self.x_t, self.u_t, self.g_t
        for layer, keys_t, values in zip(self.layers, self.keys_t, self.values, strict=True):
            t = layer.tensors
            h = layer.norm1(x)
            qkv = (
                torch.mm(h, layer.qkv.tensor)
                if t.qkv_bias is None
                else t.qkv_bias.addmm(h, layer.qkv.tensor)
            )
            attended = self._attend(layer, qkv.numpy(), keys_t, values, pos, rope)
            x.addmm_(torch.from_numpy(attended), layer.out.tensor)
            if t.out_bias is not None:
                x += t.out_bias
            h = layer.norm2(x)
            if t.up_bias is None:
                torch.mm(h, layer.up.tensor, out=u)
            else:
                torch.addmm(t.up_bias, h, layer.up.tensor, out=u)
            torch.erfc(u, out=g)
            g *= u
            x.addmm_(g, layer.down.tensor)
            if t.down_bias is not None:
                x += t.down_bias
        return torch.mm(self.norm(x), self.head.tensor).numpy()

    def _onednn_blocks(self, pos: int, rope: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        """The blocks and the head with oneDNN products (the embedded tokens in ``self.x``)."""
        x = self.x_t
        packed: list[_PackedLayer] = self.onednn_weights["layers"]  # type: ignore[assignment]
        for layer, p, keys_t, values in zip(
            self.layers, packed, self.keys_t, self.values, strict=True
        ):
            qkv = onednn.linear(layer.norm1(x), p.qkv, p.qkv_bias).numpy()
            attended = self._attend(layer, qkv, keys_t, values, pos, rope)
            x = onednn.linear_add(torch.from_numpy(attended), x, p.out, p.out_bias)
            up = onednn.linear_gelu(layer.norm2(x), p.up, p.up_bias)
            x = onednn.linear_add(up, x, p.down, p.down_bias)
        head: torch.Tensor = self.onednn_weights["head"]  # type: ignore[assignment]
        return onednn.linear(self.norm(x), head, None).numpy()

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
    """Rotary embedding of one position (the model's ``rotate``, in numpy)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate((x1 * cos - x2 * sin, x2 * cos + x1 * sin), axis=-1)
