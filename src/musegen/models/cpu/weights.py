"""The weights the fused decoding step reads: a plain view, handed over by the model.

:meth:`musegen.models.transformer.Transformer.export_for_decoding` fills these from its modules
(detached tensors on the parameters' memory, nothing copied); the fast path reads nothing
else, so it never names a module attribute and a change to the model's layout is made in one
place, the export. Matrices keep ``nn.Linear``'s layout ``[out, in]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

NORMS = ("layernorm", "rmsnorm")


@dataclass(frozen=True)
class NormWeights:
    """A normalisation over the last axis: ``"layernorm"`` (``bias`` optional) or
    ``"rmsnorm"`` (no bias)."""

    kind: str
    weight: torch.Tensor  # [d_model]
    bias: torch.Tensor | None
    eps: float

    def __post_init__(self) -> None:
        if self.kind not in NORMS:
            raise ValueError(f"norm kind must be one of {NORMS}, got {self.kind!r}")


@dataclass(frozen=True)
class LayerWeights:
    """One pre-norm block: ``x + out(attention(qkv(norm1(x))))``, then
    ``x + down(gelu(up(norm2(x))))`` (the exact, erf GELU)."""

    norm1: NormWeights
    qkv: torch.Tensor  # [3 * d_model, d_model]: query, key, value rows; heads side by side
    qkv_bias: torch.Tensor | None
    out: torch.Tensor  # [d_model, d_model]
    out_bias: torch.Tensor | None
    norm2: NormWeights
    up: torch.Tensor  # [ff_dim, d_model]
    up_bias: torch.Tensor | None
    down: torch.Tensor  # [d_model, ff_dim]
    down_bias: torch.Tensor | None
    # relative attention (Music Transformer): [tables, max_relative, head_dim], one table per
    # head or one for all (tables = 1); row r is distance r, farther keys share the last row
    relative: torch.Tensor | None = None


@dataclass(frozen=True)
class DecodingWeights:
    """A decoder-only transformer for one-token steps: token embedding (plus learned absolute
    positions, or rotary angles ``inv_freq``, or relative tables in the layers), the blocks,
    a final norm and the output matrix."""

    n_head: int
    head_dim: int
    tok_emb: torch.Tensor  # [vocab, d_model]
    layers: tuple[LayerWeights, ...]
    norm: NormWeights
    head: torch.Tensor  # [vocab, d_model] (may be tok_emb itself)
    pos_emb: torch.Tensor | None = None  # [max_positions, d_model]
    inv_freq: torch.Tensor | None = None  # rotary: [head_dim / 2] angle per position
    max_relative: int = 1  # relative: distances >= max_relative - 1 share the last row

    @property
    def d_model(self) -> int:
        return self.n_head * self.head_dim

    @property
    def ff_dim(self) -> int:
        return self.layers[0].up.shape[0]

    @property
    def tensors(self) -> list[torch.Tensor]:
        """Every tensor of the view (for a device and dtype check)."""
        out = [self.tok_emb, self.head, *self._norm(self.norm)]
        for t in (self.pos_emb, self.inv_freq):
            if t is not None:
                out.append(t)
        for layer in self.layers:
            out += [*self._norm(layer.norm1), *self._norm(layer.norm2)]
            for t in (
                layer.qkv,
                layer.qkv_bias,
                layer.out,
                layer.out_bias,
                layer.up,
                layer.up_bias,
                layer.down,
                layer.down_bias,
                layer.relative,
            ):
                if t is not None:
                    out.append(t)
        return out

    @staticmethod
    def _norm(norm: NormWeights) -> list[torch.Tensor]:
        return [norm.weight] if norm.bias is None else [norm.weight, norm.bias]
