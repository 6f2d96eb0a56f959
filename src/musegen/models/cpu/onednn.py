"""Products with weights packed once for oneDNN (PyTorch's CPU kernel library).

The ops are PyTorch's own and private (``torch.ops.mkldnn``), so a build is asked rather than
trusted: :func:`available` runs each on a small product against ``torch.addmm`` once per
process and says no, with a logged reason, where one is missing or answers differently. The
fused decoding step then multiplies with numpy instead (the same numbers, slower for big
batches of big models).
"""

from __future__ import annotations

import functools
import logging

import torch

log = logging.getLogger(__name__)

# the private ops, by name (a test swaps in a missing one)
LINEAR = "_linear_pointwise"
REORDER = "_reorder_linear_weight"


def linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ Wᵀ + b`` with oneDNN-packed ``W``."""
    return getattr(torch.ops.mkldnn, LINEAR)(x, packed, bias, "none", [], "")


def linear_gelu(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``gelu(x @ Wᵀ + b)`` (the exact, erf GELU) in one oneDNN call."""
    return getattr(torch.ops.mkldnn, LINEAR)(x, packed, bias, "gelu", [], "none")


def linear_add(
    x: torch.Tensor, residual: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``residual + x @ Wᵀ + b`` in one oneDNN call."""
    return getattr(torch.ops.mkldnn, LINEAR).binary(x, residual, packed, bias, "add")


def pack(weight: torch.Tensor, batch: int) -> torch.Tensor:
    """A copy of ``weight`` ``[out, in]`` in oneDNN's blocked layout for products with
    ``batch`` rows (products with fewer rows take it as well)."""
    with torch.no_grad():
        return getattr(torch.ops.mkldnn, REORDER)(weight.detach().contiguous(), batch)


@functools.cache
def available() -> bool:
    """Whether this PyTorch runs the oneDNN products the step needs and gets them right;
    where not, logs why (once)."""
    if not torch.backends.mkldnn.is_available():
        log.info("oneDNN products off: this PyTorch is built without oneDNN")
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        weight, bias = torch.randn(24, 16, generator=gen), torch.randn(24, generator=gen)
        x, residual = torch.randn(5, 16, generator=gen), torch.randn(5, 24, generator=gen)
        with torch.no_grad():
            packed = pack(weight, 5)
            expect = torch.addmm(bias, x, weight.T)
            right = all(
                torch.allclose(got, want, atol=1e-4)
                for got, want in (
                    (linear(x, packed, bias), expect),
                    (linear_gelu(x, packed, bias), torch.nn.functional.gelu(expect)),
                    (linear_add(x, residual, packed, bias), expect + residual),
                )
            )
    except Exception as e:  # any failure of a private op means: not in this build
        log.warning(
            "oneDNN products off, numpy products instead: torch.ops.mkldnn failed (%s: %s)",
            type(e).__name__,
            str(e).splitlines()[0] if str(e) else "",
        )
        return False
    if not right:
        log.warning("oneDNN products off, numpy products instead: they answer differently")
    return right
