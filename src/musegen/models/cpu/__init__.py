"""The fast CPU path, behind one door: the only names a model or the sampler uses from it.

What it speeds up, and what it stands in for (the reference is always the model's own
``nn.Module`` path, which tests compare it with):

* **the fused decoding step** (:mod:`.decode`): one new token per sequence through numpy
  products (or oneDNN ones, :mod:`.onednn`, for batches of big models) with constants folded
  into packed weights, instead of ~100 eager PyTorch calls. It reads a plain view of the
  weights (:class:`DecodingWeights`, the model's ``export_for_decoding()``), never the model.
* **chunked causal attention** (:mod:`.attention`) for several queries (training, prompts):
  query chunks and a written-out backward instead of ``scaled_dot_product_attention``.
* **BLAS threads** (:mod:`.threads`): numpy's OpenBLAS pinned like ``torch.set_num_threads``.

One switch: the environment variable ``MUSEGEN_FAST_CPU=0`` (or ``false``/``no``/``off``)
turns all three off, read by :func:`enabled` and nowhere else; the model then runs its plain
module path and numpy's BLAS is left alone. Where a private PyTorch op the path relies on is
missing or answers wrongly, a probe (once per process) says so in one logged line and that
part falls back: chunked attention to the plain path, oneDNN products to numpy ones.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from musegen.models.cpu import attention as _attention
from musegen.models.cpu import threads as _threads
from musegen.models.cpu.decode import Decoder
from musegen.models.cpu.weights import DecodingWeights, LayerWeights, NormWeights

log = logging.getLogger(__name__)

ENV = "MUSEGEN_FAST_CPU"
_OFF = ("0", "false", "no", "off")
CHUNK = 64  # queries per chunk of the chunked attention (fp32; see attention.chunk_size)


def enabled() -> bool:
    """Whether the fast CPU path may run: the one place the switch is read."""
    return os.environ.get(ENV, "1").strip().lower() not in _OFF


def cpu_autocast() -> bool:
    """Whether CPU autocast is on (the fused step computes in float32 only)."""
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


# ----------------------------------------------------------------------------- decoding


def decoder_for(weights: DecodingWeights) -> Decoder | None:
    """A fused-step decoder of ``weights``, or None where the fast path is off or does not
    apply (weights not float32 on the CPU): the model then takes its own path."""
    if not enabled():
        return None
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in weights.tensors):
        return None
    return Decoder(weights)


# ----------------------------------------------------------------------------- attention


def chunked_attention_applies(device: torch.device) -> bool:
    """Whether several queries on ``device`` take :func:`causal_attention` (the CPU, the
    switch on, ``CHUNK`` > 0, and the private ops it uses present and right)."""
    if not (device.type == "cpu" and CHUNK > 0 and enabled()):
        return False
    ok = _PROBED.get("attention")  # a plain dict: torch.compile reads it as a constant
    if ok is None:
        ok = _PROBED["attention"] = _attention_probe()
    return ok


_PROBED: dict[str, bool] = {}


def causal_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    table: torch.Tensor | None = None,
) -> torch.Tensor:
    """``softmax(scale · (q kᵀ + S_rel) + causal) v`` in chunks of :data:`CHUNK` queries
    (see :func:`.attention.causal_attention` for the shapes)."""
    return _attention.causal_attention(q, k, v, scale, table, CHUNK)


@torch.compiler.disable
def _attention_probe() -> bool:
    """Whether the chunked attention runs here (it calls private ATen ops) and agrees with the
    plain softmax, forward and backward, on a small case; where not, logs why (once)."""
    try:
        gen = torch.Generator().manual_seed(0)
        with torch.inference_mode(False), torch.enable_grad(), torch.autocast("cpu", enabled=False):
            q, k, v = (torch.randn(1, 2, 5, 4, generator=gen, requires_grad=True) for _ in "qkv")
            table = torch.randn(2, 3, 4, generator=gen, requires_grad=True)
            got = _attention.causal_attention(q, k, v, 0.5, table, 2)
            distance = (torch.arange(5)[:, None] - torch.arange(5)).clamp(0, 2)
            rel = torch.einsum("bhid,hijd->bhij", q, table[:, distance])
            logits = (q @ k.transpose(-1, -2) + rel) * 0.5
            future = torch.ones(5, 5, dtype=torch.bool).triu(1)
            want = logits.masked_fill(future, float("-inf")).softmax(-1) @ v
            grad = torch.randn(want.shape, generator=gen)
            inputs = (q, k, v, table)
            pairs = zip(
                (got, *torch.autograd.grad(got, inputs, grad)),
                (want, *torch.autograd.grad(want, inputs, grad)),
                strict=True,
            )
            right = all(torch.allclose(a, b, atol=1e-5) for a, b in pairs)
    except Exception as e:  # a private op missing or changed in this build
        first = str(e).splitlines()[0] if str(e) else ""
        log.warning(
            "fast CPU attention off, plain attention instead: %s: %s", type(e).__name__, first
        )
        return False
    if not right:
        log.warning("fast CPU attention off, plain attention instead: it answers differently")
    return right


# ----------------------------------------------------------------------------- threads


@contextmanager
def blas_threads(n: int) -> Iterator[bool]:
    """Run numpy's OpenBLAS with ``n`` threads inside the block, as ``torch.set_num_threads``
    does for PyTorch; yields whether it could (the count is restored after). Changes nothing
    where the fast path is off (numpy then does no model arithmetic)."""
    if not enabled():
        yield False
        return
    with _threads.blas_threads(n) as done:
        yield done


__all__ = [
    "CHUNK",
    "ENV",
    "Decoder",
    "DecodingWeights",
    "LayerWeights",
    "NormWeights",
    "blas_threads",
    "causal_attention",
    "chunked_attention_applies",
    "cpu_autocast",
    "decoder_for",
    "enabled",
]
