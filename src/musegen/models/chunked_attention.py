"""Causal attention for several queries on the CPU, in query chunks, with its own backward.

``F.scaled_dot_product_attention(is_causal=True)`` on the CPU runs a flash kernel that skips
the masked half but reaches about half the speed of a plain matrix product; with a float mask
(the relative term) it falls back to the math path, which computes the full square and keeps
several ``[B, H, T, L]`` intermediates for autograd. Here queries go in chunks of ``chunk``
rows; chunk ``[a, b)`` meets only the keys up to its last query, so every product is one
batched matmul over ``[B·H]`` and only the ``[chunk, chunk]`` block at the diagonal needs a mask.
The backward is written out (softmax probabilities are kept, not recomputed): six matmuls per
chunk, nine with the relative term, and a few row-wise passes.

Relative term (Music Transformer): ``q_i · E[min(i - j, R - 1)]`` comes from one matmul
``Q Eᵀ`` against the table rows of every distance the chunk can see, re-read with a skewed
stride (no copy); its gradient goes back through the same strided view.

Same mathematics as ``softmax(scale · (q kᵀ [+ rel]) + causal mask) v``; no attention dropout.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def causal_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    table: torch.Tensor | None = None,
    chunk: int = 64,
) -> torch.Tensor:
    """``softmax(scale · (q kᵀ + S_rel) + causal) v`` for the last ``T`` of ``L`` positions.

    ``q`` is ``[B, H, T, d]``; ``k``, ``v`` are ``[B, H, L, d]`` with ``L >= T`` (query ``i``
    sits at position ``L - T + i`` and sees keys ``0 .. L - T + i``). ``table`` is the relative
    table ``[H or 1, R, d]`` (distances ``>= R - 1`` share its last row), or None. Returns
    ``[B, H, T, d]`` (a transposed view of a ``[B, T, H, d]`` tensor, so that merging the heads
    back is free).
    """
    return _CausalAttention.apply(q, k, v, table, scale, chunk)


def _columns(L: int, R: int, device: torch.device) -> torch.Tensor:
    """Table row for each column of ``Q Eᵀ`` over ``L`` keys: column ``c`` ↔ distance ``L - c``."""
    return torch.arange(L, -1, -1, device=device).clamp(max=R - 1)


def _skewed(qe: torch.Tensor, B: int, rows: int, keys: int) -> torch.Tensor:
    """``Q Eᵀ`` ``[H, rows, B, keys + 1]`` → ``[B, H, rows, keys]``: ``(b, h, i, j)`` = column
    ``rows - i + j`` of query row ``(h, i, b)``.

    Column ``c`` holds distance ``keys - c`` (see ``_columns``), and query ``i`` of the chunk
    sits at position ``keys - rows + i``, so column ``rows - i + j`` is its distance to key
    ``j``. Entries past the diagonal read the next row's memory (garbage that the causal mask
    removes); every ``(b, h, i, j)`` maps to its own element, so the view can be written
    through as well as read.
    """
    H, row = qe.shape[0], keys + 1
    return qe.as_strided(
        (B, H, rows, keys),
        (row, rows * B * row, B * row - 1, 1),
        qe.storage_offset() + rows,
    )


def _heads(e: torch.Tensor, H: int) -> torch.Tensor:
    return e.expand(H, -1, -1) if e.shape[0] != H else e


def _chunks(T: int, chunk: int) -> list[tuple[int, int]]:
    return [(a, min(a + chunk, T)) for a in range(0, T, chunk)]


class _CausalAttention(torch.autograd.Function):
    """Layouts: ``qs``, ``k``, ``v`` as ``[B·H, positions, d]`` for the per-sequence products;
    for the relative term the queries again as ``[H, T, B, d]``, so that a chunk's queries of
    one head are one ``[chunk·B, d]`` matrix against that head's table rows (no per-sequence
    copies of the table).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        table: torch.Tensor | None,
        scale: float,
        chunk: int,
    ) -> torch.Tensor:
        B, H, T, d = q.shape
        L = k.shape[2]
        start = L - T
        qs = torch.empty(B, H, T, d, dtype=q.dtype, device=q.device)
        torch.mul(q, scale, out=qs)  # scaled once
        qt = None
        if table is not None:
            qt = torch.empty(H, T, B, d, dtype=q.dtype, device=q.device)
            qt.copy_(qs.permute(1, 2, 0, 3))
            e_all = table[:, _columns(L, table.shape[1], q.device)]  # [H or 1, L + 1, d]
        qs = qs.view(B * H, T, d)
        k = k.reshape(B * H, L, d)  # a view for contiguous tensors and the KV cache's slices
        v = v.reshape(B * H, L, d)
        out = torch.empty(B, T, H, d, dtype=q.dtype, device=q.device)
        probs = []
        for a, b in _chunks(T, chunk):
            c, n = b - a, start + b  # queries in the chunk, keys they see
            s = torch.bmm(qs[:, a:b], k[:, :n].transpose(1, 2))
            if qt is not None:
                e = _heads(e_all[:, L - n :], H)  # [H, n + 1, d]: columns of this chunk
                qe = torch.bmm(qt[:, a:b].reshape(H, c * B, d), e.transpose(1, 2))
                s.view(B, H, c, n).add_(_skewed(qe, B, c, n))
            future = torch.ones(c, c, dtype=torch.bool, device=q.device).triu_(1)
            s[:, :, n - c :].masked_fill_(future, -math.inf)
            p = torch.softmax(s, dim=-1)
            out[:, a:b] = torch.bmm(p, v[:, :n]).view(B, H, c, d).transpose(1, 2)
            probs.append(p)
        ctx.scale, ctx.chunk, ctx.shape = scale, chunk, (B, H, T, L, d)
        ctx.has_table = table is not None
        saved = [qs, k, v, out] + ([qt, table] if table is not None else [])
        ctx.save_for_backward(*saved, *probs)
        return out.transpose(1, 2)

    @staticmethod
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        B, H, T, L, d = ctx.shape
        start = L - T
        qs, k, v, out, *rest = ctx.saved_tensors
        qt, table = (rest.pop(0), rest.pop(0)) if ctx.has_table else (None, None)
        probs = rest
        # D_i = Σ_j p_ij dp_ij = do_i · o_i (the softmax backward's row term), [B·H, T, 1]
        rowdot = (dout * out.transpose(1, 2)).sum(-1).reshape(B * H, T, 1)
        dout = dout.reshape(B * H, T, d)  # one copy into [B·H, T, d] rows
        dq = torch.empty_like(qs)
        dk = torch.zeros(B * H, L, d, dtype=qs.dtype, device=qs.device)
        dv = torch.zeros_like(dk)
        dqt = de_all = e_all = None
        if table is not None and qt is not None:
            columns = _columns(L, table.shape[1], qs.device)
            e_all = table[:, columns]
            de_all = torch.zeros(H, L + 1, d, dtype=qs.dtype, device=qs.device)
            dqt = torch.empty_like(qt)
        for (a, b), p in zip(_chunks(T, ctx.chunk), probs, strict=True):
            c, n = b - a, start + b
            doc, qc = dout[:, a:b], qs[:, a:b]
            # (bmm, then added: baddbmm_ into a slice would run one addmm per sequence)
            dv[:, :n] += torch.bmm(p.transpose(1, 2), doc)
            ds = torch.bmm(doc, v[:, :n].transpose(1, 2))
            ds.sub_(rowdot[:, a:b]).mul_(p)  # softmax backward; masked entries have p = 0
            dq[:, a:b] = torch.bmm(ds, k[:, :n])
            dk[:, :n] += torch.bmm(ds.transpose(1, 2), qc)
            if qt is not None and dqt is not None and de_all is not None and e_all is not None:
                e = _heads(e_all[:, L - n :], H)
                dqe = ds.new_zeros(H, c * B, n + 1)
                _skewed(dqe, B, c, n).copy_(ds.view(B, H, c, n))
                dqt[:, a:b] = torch.bmm(dqe, e).view(H, c, B, d)
                de_all[:, L - n :] += torch.bmm(
                    dqe.transpose(1, 2), qt[:, a:b].reshape(H, c * B, d)
                )
        dq = dq.view(B, H, T, d)
        if dqt is not None:
            dq += dqt.permute(2, 0, 1, 3)
        dtable = None
        if table is not None and de_all is not None:
            if table.shape[0] == 1:
                de_all = de_all.sum(0, keepdim=True)
            dtable = torch.zeros_like(table).index_add_(1, columns, de_all)
        return dq.mul_(ctx.scale), dk.view(B, H, L, d), dv.view(B, H, L, d), dtable, None, None
