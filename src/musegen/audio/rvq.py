"""Residual vector quantization (SoundStream / EnCodec): ``codebooks`` codebooks of
``codebook_size`` entries, each quantizing what the ones before it left.

* :func:`quantize`: nearest codes level by level, the quantized latents with straight-through
  gradients, and the commitment loss (``|z - sg(q)|^2``) that pulls latents to their codes.
* :class:`EmaCodebooks`: codes as exponential moving averages of the latents assigned to them
  (VQ-VAE-2), so codebooks need no gradient.
* :func:`restart_codes`: codes unused since the last call are moved onto random latents of
  their level (dead-code restart; at the first call every code starts from a latent).

The codebooks are one tensor ``(codebooks, codebook_size, dim)`` owned by the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def nearest(residual: torch.Tensor, book: torch.Tensor) -> torch.Tensor:
    """Index of the nearest code in ``book`` ``(K, D)`` for each row of ``residual`` ``(M, D)``."""
    dist = residual.pow(2).sum(-1, keepdim=True) - 2 * residual @ book.T + book.pow(2).sum(-1)
    return dist.argmin(-1)


def quantize(
    z: torch.Tensor, books: torch.Tensor, n_q: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Latents ``z`` ``(N, D, T)`` through the first ``n_q`` codebooks: the quantized latents
    (straight-through: the gradient passes to ``z``), codes ``(N, n_q, T)`` and the commitment
    loss (mean squared distance of ``z`` from its quantized value, codes held fixed)."""
    import torch

    n, d, t = z.shape
    residual = z.detach().transpose(1, 2).reshape(-1, d)
    quantized = torch.zeros_like(residual)
    codes = []
    for q in range(n_q):
        idx = nearest(residual, books[q].detach())
        chosen = books[q].detach()[idx]
        quantized = quantized + chosen
        residual = residual - chosen
        codes.append(idx.reshape(n, t))
    zq = quantized.reshape(n, t, d).transpose(1, 2)
    commit = (z - zq).pow(2).mean()
    straight = z + (zq - z).detach()
    return straight, torch.stack(codes, 1), commit


def lookup(codes: torch.Tensor, books: torch.Tensor) -> torch.Tensor:
    """Latents ``(N, D, T)`` of codes ``(N, n_q, T)``: the sum of their codebooks' entries."""
    z = sum(books[q][codes[:, q]] for q in range(codes.shape[1]))
    return z.transpose(1, 2)


def level_residuals(z: torch.Tensor, books: torch.Tensor) -> list[torch.Tensor]:
    """What each codebook is asked to quantize, ``(N * T, D)`` per level (no gradient)."""
    import torch

    with torch.no_grad():
        residual = z.transpose(1, 2).reshape(-1, books.shape[-1])
        out = []
        for q in range(books.shape[0]):
            out.append(residual)
            residual = residual - books[q][nearest(residual, books[q])]
        return out


def restart_codes(
    z: torch.Tensor, books: torch.Tensor, used: torch.Tensor, rng: np.random.Generator
) -> torch.Tensor:
    """Codes with ``used == 0`` (``used``: counts ``(codebooks, size)``) get random residuals
    of ``z`` at their level, in place. Returns the mask of moved codes."""
    import torch

    moved = torch.zeros(books.shape[:2], dtype=torch.bool)
    with torch.no_grad():
        for q, residual in enumerate(level_residuals(z, books)):
            dead = torch.nonzero(used[q] == 0).reshape(-1)
            if len(dead) and len(residual):
                pick = torch.as_tensor(rng.integers(0, len(residual), len(dead)))
                books[q, dead] = residual[pick]
                moved[q, dead] = True
    return moved


class EmaCodebooks:
    """Exponential moving averages of each code's assignment count and latent sum; a code is
    their ratio (counts Laplace-smoothed, so a code nobody picks stays finite until a restart
    moves it; a restart resets its averages to the new code)."""

    def __init__(self, books: torch.Tensor, decay: float) -> None:
        self.decay = decay
        self.size = books.new_ones(books.shape[:2])
        self.sum = books.detach().clone()

    def update(self, books: torch.Tensor, z: torch.Tensor, levels: int) -> None:
        """Move the first ``levels`` codebooks (in place) towards the latents of ``z``."""
        import torch

        size_k = books.shape[1]
        with torch.no_grad():
            for q, residual in enumerate(level_residuals(z, books)[:levels]):
                idx = nearest(residual, books[q])
                counts = torch.bincount(idx, minlength=size_k).to(residual.dtype)
                sums = torch.zeros_like(self.sum[q]).index_add_(0, idx, residual)
                self.size[q].mul_(self.decay).add_(counts, alpha=1 - self.decay)
                self.sum[q].mul_(self.decay).add_(sums, alpha=1 - self.decay)
                total = self.size[q].sum()
                smooth = (self.size[q] + 1e-5) / (total + size_k * 1e-5) * total
                books[q] = self.sum[q] / smooth[:, None]

    def restarted(self, books: torch.Tensor, moved: torch.Tensor) -> None:
        """Codes a restart moved start their averages afresh, at one assignment."""
        self.size[moved] = 1.0
        self.sum[moved] = books.detach()[moved]
