"""Decoder-only transformer with relative attention (Music Transformer) and a KV cache.

Read top to bottom: config → norms → position schemes (relative, rotary) → attention → block →
model. Pre-norm residual blocks, GELU MLP, tied input/output embeddings by default.

Positions (``position=``):

* ``"relative"`` (default): Huang et al. 2018, *Music Transformer*. Each layer learns one vector
  per distance ``0 .. max_relative-1`` (per head, or shared across heads); query ``i`` attending
  to key ``j`` adds ``q_i · E[min(i - j, max_relative - 1)]`` to its logit. Several queries
  (training, a prompt) get these by the "skewing" trick: one matmul and a free re-view, no
  ``[T, T, d]`` tensor, in chunks of ``RELATIVE_CHUNK`` queries that skip the keys after the
  chunk; a one-token decoding step computes ``q · E`` per distance and gathers by distance.
  The relative term reaches ``scaled_dot_product_attention`` as an additive float mask, with
  the causal mask folded in (``-inf``).
* ``"rope"``: rotary embeddings on queries and keys (flash attention path, ``is_causal``).
* ``"absolute"``: learned position embeddings added to the input (baseline).

Incremental decoding: ``init_cache(B, max_len)`` preallocates keys and values
``[layers, B, heads, max_len, head_dim]``; ``forward(ids, cache)`` writes the new positions in
place, attends over ``[0, length)`` and advances ``cache.length``. Any chunk size works: a
prompt, then one token at a time.

The CPU fast path (:mod:`musegen.models.cpu`; off with ``MUSEGEN_FAST_CPU=0``) serves this
model at two points, and the modules here stay the reference it is tested against:

* several queries at once (training, a prompt) on the CPU take its chunked causal attention
  instead of SDPA, for every position scheme (not with attention dropout in training);
* on the CPU in float32 the cache carries a fused-step decoder made from
  :meth:`Transformer.export_for_decoding`, and one-token steps outside autograd and training
  run it (same arithmetic, a fraction of the per-call overhead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from musegen.errors import MusegenError
from musegen.models import cpu
from musegen.models.base import Dropout, LanguageModel, ModelConfig

POSITIONS = ("relative", "rope", "absolute")
RELATIVE_CHUNK = 128  # queries per relative-attention chunk (see Attention._relative_attention)
NORMS = ("layernorm", "rmsnorm")


@dataclass
class TransformerConfig(ModelConfig):
    """Hyper-parameters of :class:`Transformer`; defaults are a small music model."""

    vocab_size: int = 512
    n_layer: int = 6
    n_head: int = 4
    d_model: int = 256
    d_ff: int = 0  # MLP width; 0 means 4 * d_model
    dropout: float = 0.1  # on embeddings and residual branches
    attention_dropout: float = 0.0  # on attention weights
    norm: str = "layernorm"  # "layernorm" | "rmsnorm"
    bias: bool = True  # biases in linear layers and LayerNorm
    position: str = "relative"  # "relative" | "rope" | "absolute"
    max_relative: int = 512  # relative: distances >= this share the last embedding
    relative_shared_heads: bool = False  # relative: one table for all heads of a layer
    rope_base: float = 10000.0  # rope: frequency base
    max_positions: int = 2048  # absolute: longest sequence (other schemes have no limit)
    tie_embeddings: bool = True  # output projection = token embedding matrix

    def validate(self) -> None:
        self.check(self.vocab_size > 0, "vocab_size must be positive")
        self.check(self.n_layer > 0 and self.n_head > 0, "n_layer and n_head must be positive")
        self.check(
            self.d_model > 0 and self.d_model % self.n_head == 0,
            f"d_model ({self.d_model}) must be a positive multiple of n_head ({self.n_head})",
        )
        self.check(self.d_ff >= 0, "d_ff must be >= 0 (0 means 4 * d_model)")
        self.check(0 <= self.dropout < 1, "dropout must be in [0, 1)")
        self.check(0 <= self.attention_dropout < 1, "attention_dropout must be in [0, 1)")
        self.check(self.norm in NORMS, f"norm must be one of {NORMS}, got {self.norm!r}")
        self.check(
            self.position in POSITIONS,
            f"position must be one of {POSITIONS}, got {self.position!r}",
        )
        self.check(self.max_relative > 0, "max_relative must be positive")
        self.check(self.max_positions > 0, "max_positions must be positive")
        self.check(self.rope_base > 1, "rope_base must be > 1")
        self.check(
            self.position != "rope" or self.head_dim % 2 == 0,
            f"rope needs an even head dimension, got d_model / n_head = {self.head_dim}",
        )

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def ff_dim(self) -> int:
        return self.d_ff or 4 * self.d_model


# ----------------------------------------------------------------------------- norms


class RMSNorm(nn.Module):
    """Root-mean-square norm (no centring, no bias)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(F, "rms_norm"):
            return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def make_norm(config: TransformerConfig) -> nn.Module:
    if config.norm == "rmsnorm":
        return RMSNorm(config.d_model)
    return nn.LayerNorm(config.d_model, bias=config.bias)


# ----------------------------------------------------------------------------- KV cache


@dataclass
class KVCache:
    """Preallocated keys/values for every layer; positions ``[0, length)`` are filled."""

    keys: torch.Tensor  # [n_layer, B, n_head, max_len, head_dim]
    values: torch.Tensor
    length: int = 0
    decoder: cpu.Decoder | None = None  # fused one-token steps (the CPU fast path), or None

    @property
    def batch_size(self) -> int:
        return self.keys.shape[1]

    @property
    def max_len(self) -> int:
        return self.keys.shape[3]


# ----------------------------------------------------------------------------- positions


@dataclass
class RelativeChunk:
    """Queries ``[first, last)`` of the new tokens attend to keys ``[0, keys)``.

    ``index`` is the skewing column → table row map ``[keys + 1]`` (several queries), or the
    distance of each key ``[1, keys]`` for one query; ``future`` marks keys after a query.
    """

    first: int
    last: int
    keys: int
    index: torch.Tensor
    future: torch.Tensor | None


@dataclass
class AttentionContext:
    """What every layer needs for one forward call, computed once per call."""

    batch: int  # sequences (the blocks see hidden states flattened to [batch * new, d_model])
    new: int  # new tokens per sequence in this call
    start: int  # position of the first new token
    length: int  # keys attended to after this call (start + new tokens)
    is_causal: bool = False  # SDPA's own causal mask applies (square, no cache offset)
    mask: torch.Tensor | None = None  # bool [T, L] (True = may attend) for rope/absolute
    rope: tuple[torch.Tensor, torch.Tensor] | None = None  # cos, sin [T, head_dim / 2]
    relative: list[RelativeChunk] | None = None  # query chunks for relative attention
    chunked: bool = False  # several queries on the CPU: the fast path's chunked attention


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding: rotate feature pairs ``(x[k], x[k + d/2])`` by position angles."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def skewed_relative_logits(
    q: torch.Tensor, table: torch.Tensor, index: torch.Tensor, scale: float = 1.0
) -> torch.Tensor:
    """``S[i, j] = scale · q_i · table[dist(i, j)]`` for the last ``T`` of ``L`` positions (skewing).

    ``q`` is ``[B, H, T, d]``; ``index`` ``[L + 1]`` picks the table row for each column of
    ``Q Eᵀ``: column 0 is a dummy, column ``c`` holds distance ``L - c`` (clipped). Padding
    ``Q Eᵀ`` ``[T, L + 1]`` this way and re-reading its memory as ``[T, L]`` from offset ``T``
    lands distance ``i + (L - T) - j`` at ``(i, j)`` for every ``j <= i + L - T``; the other
    (future) entries are garbage that the causal mask removes. The re-read is a view: no copy.
    """
    B, H, T, _ = q.shape
    L = index.shape[0] - 1
    e = table[:, index] * scale  # [H or 1, L + 1, d]: smaller than q, so scale here
    qe = dot_table(q, e)  # [B, H, T, L + 1]
    return qe.flatten(-2)[..., T : T + T * L].view(B, H, T, L)


def gathered_relative_logits(
    q: torch.Tensor, table: torch.Tensor, distance: torch.Tensor, scale: float = 1.0
) -> torch.Tensor:
    """``S[i, j] = scale · q_i · table[distance[i, j]]``: ``q · E`` per distance, then a gather.

    For decoding steps (few queries): costs ``T · min(L, max_relative)`` dot products.
    ``distance`` is ``[T, L]`` with values below ``L`` (the longest distance to a key).
    """
    B, H, T, _ = q.shape
    L = distance.shape[-1]
    qe = dot_table(q * scale, table[:, :L])  # [B, H, T, min(L, R)]
    return qe.gather(-1, distance.expand(B, H, T, L))


def dot_table(q: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``q [B, H, T, d] · table [H or 1, N, d]ᵀ -> [B, H, T, N]`` without copying the table B times.

    (``torch.matmul`` would broadcast the table over the batch and materialise the copies.)
    """
    B, H, T, d = q.shape
    if table.shape[0] == 1:
        return torch.mm(q.reshape(B * H * T, d), table[0].t()).view(B, H, T, -1)
    heads_first = q.transpose(0, 1).reshape(H, B * T, d)
    return torch.bmm(heads_first, table.transpose(1, 2)).view(H, B, T, -1).transpose(0, 1)


# ----------------------------------------------------------------------------- layers


class Attention(nn.Module):
    """Multi-head causal self-attention: fused QKV projection, SDPA (or the CPU's chunked
    attention), optional relative term."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.n_head, self.head_dim = config.n_head, config.head_dim
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.out = nn.Linear(config.d_model, config.d_model, bias=config.bias)
        self.attention_dropout = config.attention_dropout
        self.drop = Dropout(config.dropout)
        self.relative: nn.Parameter | None = None
        if config.position == "relative":
            heads = 1 if config.relative_shared_heads else config.n_head
            self.relative = nn.Parameter(torch.empty(heads, config.max_relative, self.head_dim))

    def forward(
        self, x: torch.Tensor, ctx: AttentionContext, cache: KVCache | None, layer: int
    ) -> torch.Tensor:
        B, T, C = ctx.batch, ctx.new, x.shape[-1]
        qkv = self.qkv(x).view(B, T, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [B, H, T, d]
        if ctx.rope is not None:
            cos, sin = ctx.rope
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        if cache is not None:
            cache.keys[layer, :, :, ctx.start : ctx.length] = k
            cache.values[layer, :, :, ctx.start : ctx.length] = v
            k = cache.keys[layer, :, :, : ctx.length]
            v = cache.values[layer, :, :, : ctx.length]
            if k.dtype != q.dtype:  # autocast: the cache keeps the weights' dtype
                k, v = k.to(q.dtype), v.to(q.dtype)

        dropout = self.attention_dropout if self.training else 0.0
        if ctx.chunked:  # the same softmax, in query chunks with a written-out backward
            y = cpu.causal_attention(q, k, v, 1.0 / math.sqrt(self.head_dim), self.relative)
        elif self.relative is not None:
            y = self._relative_attention(q, k, v, ctx.relative, dropout)
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=ctx.mask, dropout_p=dropout, is_causal=ctx.is_causal
            )
        y = self.out(y.transpose(1, 2).reshape(B * T, C))
        return self.drop(y) if self.training else y

    def _relative_attention(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        chunks: list[RelativeChunk],
        dropout: float,
    ) -> torch.Tensor:
        """SDPA with the relative term as an additive mask, one query chunk at a time.

        Chunking skips the keys after each chunk (a causal saving flash attention makes on its
        own) and keeps the ``[B, H, chunk, keys]`` bias small.
        """
        scale = 1.0 / math.sqrt(self.head_dim)  # softmax((q kᵀ + S_rel) / sqrt(d))
        out = []
        for chunk in chunks:
            qc = q[:, :, chunk.first : chunk.last]
            if chunk.future is None:
                bias = gathered_relative_logits(qc, self.relative, chunk.index, scale)
            else:
                bias = skewed_relative_logits(qc, self.relative, chunk.index, scale)
                bias = bias.masked_fill(chunk.future, -math.inf)
            kc, vc = k[:, :, : chunk.keys], v[:, :, : chunk.keys]
            out.append(
                F.scaled_dot_product_attention(qc, kc, vc, attn_mask=bias, dropout_p=dropout)
            )
        return out[0] if len(out) == 1 else torch.cat(out, dim=2)


class MLP(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.up = nn.Linear(config.d_model, config.ff_dim, bias=config.bias)
        self.down = nn.Linear(config.ff_dim, config.d_model, bias=config.bias)
        self.drop = Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(F.gelu(self.up(x)))
        return self.drop(y) if self.training else y


class Block(nn.Module):
    """Pre-norm residual block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.norm1, self.attn = make_norm(config), Attention(config)
        self.norm2, self.mlp = make_norm(config), MLP(config)

    def forward(
        self, x: torch.Tensor, ctx: AttentionContext, cache: KVCache | None, layer: int
    ) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), ctx, cache, layer)
        return x + self.mlp(self.norm2(x))


# ----------------------------------------------------------------------------- model


class Transformer(LanguageModel):
    """Token ids ``[B, T]`` → next-token logits ``[B, T, vocab]``; see the module docstring."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = (
            nn.Embedding(config.max_positions, config.d_model)
            if config.position == "absolute"
            else None
        )
        self.drop = Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = make_norm(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.position == "rope":
            half = config.head_dim // 2
            inv_freq = config.rope_base ** (-torch.arange(half, dtype=torch.float64) / half)
            self.register_buffer("inv_freq", inv_freq.float(), persistent=False)
        self.apply(self._init_weights)
        for block in self.blocks:  # GPT-2: residual branches' last layer scaled by depth
            for last in (block.attn.out, block.mlp.down):
                nn.init.normal_(last.weight, 0.0, 0.02 / math.sqrt(2 * config.n_layer))
        if config.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight

    @property
    def model_name(self) -> str:
        return "transformer"

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """GPT-2 style: weights N(0, 0.02), biases 0."""
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, 0.0, 0.02)
        elif isinstance(module, Attention) and module.relative is not None:
            nn.init.normal_(module.relative, 0.0, 0.02)

    def embedding_parameters(self) -> list[nn.Parameter]:
        params = [] if self.config.tie_embeddings else [self.tok_emb.weight]
        return params + ([self.pos_emb.weight] if self.pos_emb is not None else [])

    def init_cache(self, batch_size: int, max_len: int) -> KVCache:
        """Empty KV cache for ``batch_size`` sequences of up to ``max_len`` tokens."""
        c = self.config
        if batch_size <= 0 or max_len <= 0:
            raise MusegenError(
                f"cache needs batch_size and max_len > 0, got {batch_size}, {max_len}"
            )
        if c.position == "absolute" and max_len > c.max_positions:
            raise MusegenError(
                f"max_len {max_len} exceeds the model's max_positions {c.max_positions}"
            )
        w = self.tok_emb.weight
        shape = (c.n_layer, batch_size, c.n_head, max_len, c.head_dim)
        cache = KVCache(
            torch.zeros(shape, dtype=w.dtype, device=w.device),
            torch.zeros(shape, dtype=w.dtype, device=w.device),
        )
        decoder = self._fast_decoder()
        if decoder is not None:
            cache.decoder = decoder.bind(cache.keys, cache.values)
        return cache

    def export_for_decoding(self) -> cpu.DecodingWeights:
        """The weights as the CPU fast path reads them: detached views of the parameters (no
        copies), named by their role, not by this module's attributes."""
        c = self.config

        def norm(module: nn.Module) -> cpu.NormWeights:
            bias = getattr(module, "bias", None)
            return cpu.NormWeights(
                c.norm,
                module.weight.detach(),
                None if bias is None else bias.detach(),
                module.eps,
            )

        def detached(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.detach()

        layers = tuple(
            cpu.LayerWeights(
                norm1=norm(b.norm1),
                qkv=b.attn.qkv.weight.detach(),
                qkv_bias=detached(b.attn.qkv.bias),
                out=b.attn.out.weight.detach(),
                out_bias=detached(b.attn.out.bias),
                norm2=norm(b.norm2),
                up=b.mlp.up.weight.detach(),
                up_bias=detached(b.mlp.up.bias),
                down=b.mlp.down.weight.detach(),
                down_bias=detached(b.mlp.down.bias),
                relative=detached(b.attn.relative),
            )
            for b in self.blocks
        )
        return cpu.DecodingWeights(
            n_head=c.n_head,
            head_dim=c.head_dim,
            tok_emb=self.tok_emb.weight.detach(),
            layers=layers,
            norm=norm(self.norm),
            head=self.lm_head.weight.detach(),
            pos_emb=None if self.pos_emb is None else self.pos_emb.weight.detach(),
            inv_freq=self.inv_freq.detach() if c.position == "rope" else None,
            max_relative=c.max_relative,
        )

    def _fast_decoder(self) -> cpu.Decoder | None:
        """The fast path's decoder of the current weights (None where it does not apply),
        made again only when a weight has changed (another tensor, or an in-place write:
        optimizer steps and ``load_state_dict`` bump a tensor's version counter), so a sampler
        can make caches cheaply."""
        if not cpu.enabled():
            return None
        tensors = [*self.parameters(), *self.buffers()]
        try:
            key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)
        except (RuntimeError, AttributeError):  # inference-mode tensors keep no version counter
            return cpu.decoder_for(self.export_for_decoding())
        made = self.__dict__.get("_fast_decoder_made")
        if made is None or made[0] != key:
            made = (key, cpu.decoder_for(self.export_for_decoding()))
            self.__dict__["_fast_decoder_made"] = made  # plain attribute, not module state
        return made[1]

    def select_cache(self, cache: KVCache, rows: torch.Tensor) -> KVCache:
        rows = torch.as_tensor(rows, dtype=torch.long, device=cache.keys.device)
        out = KVCache(cache.keys[:, rows], cache.values[:, rows], cache.length)
        if cache.decoder is not None:
            out.decoder = cache.decoder.bind(out.keys, out.values)
        return out

    def next_logits(self, tokens: np.ndarray, cache: KVCache) -> tuple[np.ndarray, KVCache]:
        """One decoding step straight through the fused CPU step when it applies (no module
        call, no tensors in between); otherwise :meth:`forward`."""
        if (
            not self._fused_step_applies(cache)
            or len(tokens) != cache.batch_size
            or cache.length >= cache.max_len
        ):
            return super().next_logits(tokens, cache)
        logits = cache.decoder.step(tokens, cache.length)
        cache.length += 1
        return logits, cache

    def _fused_step_applies(self, cache: KVCache | None) -> bool:
        """Whether one new token per sequence may take the cache's fused CPU step: a decoder,
        and nothing it does not do (dropout in training, autograd, autocast, forward hooks)."""
        return (
            cache is not None
            and cache.decoder is not None
            and not self.training
            and not (self._forward_hooks or self._forward_pre_hooks)
            and not torch.is_grad_enabled()
            and not cpu.cpu_autocast()
        )

    def forward(
        self, ids: torch.Tensor, cache: KVCache | None = None
    ) -> tuple[torch.Tensor, KVCache | None]:
        """Logits for ``ids``; with a cache, ``ids`` continue the cached sequence."""
        self._check_ids(ids)
        B, T = ids.shape
        start = 0
        if cache is not None:
            start = cache.length
            if cache.batch_size != B:
                raise MusegenError(f"batch of {B} sequences but the cache holds {cache.batch_size}")
            if start + T > cache.max_len:
                raise MusegenError(
                    f"KV cache full: {start} + {T} tokens exceed its max_len {cache.max_len}"
                )
        elif self.pos_emb is not None and self.config.max_positions < T:
            raise MusegenError(
                f"{T} tokens exceed the model's max_positions {self.config.max_positions}"
            )
        if T == 1 and self._fused_step_applies(cache):  # one new token per sequence
            logits = cache.decoder.step(ids.numpy().reshape(B), start)
            cache.length = start + 1
            return torch.from_numpy(logits).view(B, 1, -1), cache

        ctx = self._context(B, T, start, ids.device)
        x = self.tok_emb(ids.reshape(B * T))  # hidden states stay 2-D: [B * T, d_model]
        if self.pos_emb is not None:
            pos = self.pos_emb(torch.arange(start, start + T, device=ids.device))
            x = (x.view(B, T, -1) + pos).view(B * T, -1)
        if self.training:
            x = self.drop(x)
        for layer, block in enumerate(self.blocks):
            x = block(x, ctx, cache, layer)
        if cache is not None:
            cache.length = start + T
        return self.lm_head(self.norm(x)).view(B, T, -1), cache

    def _context(self, B: int, T: int, start: int, device: torch.device) -> AttentionContext:
        """Masks, relative-distance indices and rotary angles shared by every layer."""
        c = self.config
        L = start + T
        ctx = AttentionContext(batch=B, new=T, start=start, length=L)
        # several queries on the CPU: chunked causal attention (not with attention dropout)
        ctx.chunked = (
            T > 1
            and not (self.training and c.attention_dropout > 0)
            and cpu.chunked_attention_applies(device)
        )
        if c.position == "relative":
            if not ctx.chunked:
                ctx.relative = self._relative_chunks(start, T, device)
            return ctx
        if c.position == "rope":
            pos = torch.arange(start, L, device=device, dtype=torch.float32)
            angles = torch.outer(pos, self.inv_freq)
            ctx.rope = (angles.cos(), angles.sin())
        if T > 1 and not ctx.chunked:
            if start == 0:
                ctx.is_causal = True
            else:
                ctx.mask = torch.ones(T, L, dtype=torch.bool, device=device).tril(start)
        return ctx

    def _relative_chunks(self, start: int, T: int, device: torch.device) -> list[RelativeChunk]:
        far = self.config.max_relative - 1
        if T == 1:  # decoding step: distance of every key, gathered
            distance = (start - torch.arange(start + 1, device=device)).clamp(max=far)
            return [RelativeChunk(0, 1, start + 1, distance.view(1, -1), None)]
        chunks = []
        for first in range(0, T, RELATIVE_CHUNK):
            last = min(first + RELATIVE_CHUNK, T)
            keys = start + last
            columns = torch.arange(keys, -1, -1, device=device)  # column c ↔ distance keys - c
            future = torch.ones(last - first, keys, dtype=torch.bool, device=device)
            future = future.triu(start + first + 1)
            chunks.append(RelativeChunk(first, last, keys, columns.clamp(max=far), future))
        return chunks
