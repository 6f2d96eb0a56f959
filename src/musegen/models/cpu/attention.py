"""Causal attention for several queries on the CPU, in query chunks, with its own backward.

``F.scaled_dot_product_attention(is_causal=True)`` on the CPU runs a flash kernel that skips
the masked half but reaches about half the speed of a plain matrix product; with a float mask
(the relative term) it falls back to the math path, which computes the full square and keeps
several ``[B, H, T, L]`` intermediates for autograd. Here queries go in chunks of ``chunk``
rows; chunk ``[a, b)`` meets only the keys up to its last query, so every product is one
batched matmul over the batch and only the ``[chunk, chunk]`` block at the diagonal needs a
mask. The loop runs over heads, then chunks: one chunk's scores of one head (``[B, c, n]``,
about the size of a core's L2 cache) go through the mask, the softmax and the next product
while they are still in the cache. The backward is written out (softmax probabilities are
kept, not recomputed): six matmuls per chunk, nine with the relative term, one fused softmax
backward; ``dK``, ``dV`` are summed over the chunks inside the products (``beta = 1``), and
the chunks go backwards so that the last one, which sees every key, writes them first.

Relative term (Music Transformer): ``q_i · E[min(i - j, R - 1)]`` comes from one matmul
``Q Eᵀ`` against the table rows of every distance the chunk can see, re-read with a skewed
stride (no copy); its gradient goes back through the same strided view.

Low precision (bf16 / fp16; under ``torch.autocast("cpu", dtype=torch.bfloat16)`` the layers
before hand ``q``, ``k``, ``v`` over in bf16): everything runs in ``q``'s dtype, whatever
dtype ``k``, ``v`` and the table come in (autocast is switched off inside, each input is cast
here; gradients go back in each input's own dtype, the table's summed in fp32). On the CPU
these products go to oneDNN, which first copies any operand that is not one whole contiguous
(or whole transposed) tensor -- for a transposed slice, a slow transposing copy; so operands
here are whole: the scaled queries as one block per (chunk, head), each head's keys and values
contiguous, with the prefix a chunk sees copied once (fast, row by row). Products accumulate in
fp32 inside oneDNN and round once into their bf16 result, so summing ``dK``, ``dV`` through
``beta = 1`` keeps them as precise as fp32 buffers would, at no extra pass (measured: the same
error against float64). Chunks are at least :data:`LOW_PRECISION_CHUNK` queries there: bf16
products are so fast that the per-chunk passes outweigh the extra masked work of longer chunks.

Same mathematics as ``softmax(scale · (q kᵀ [+ rel]) + causal mask) v``; no attention dropout.
"""

from __future__ import annotations

import math
from typing import Any

import torch

LOW_PRECISION = (torch.bfloat16, torch.float16)
# least queries per chunk in bf16 / fp16 (see chunk_size), the fastest on an AMX Xeon
LOW_PRECISION_CHUNK = 128


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
    table ``[H or 1, R, d]`` (distances ``>= R - 1`` share its last row), or None; it may be of
    another dtype than ``q`` (an fp32 parameter under autocast): it is cast to ``q``'s dtype and
    its gradient comes back in its own. ``chunk``: queries per chunk (in bf16 / fp16 at least
    :data:`LOW_PRECISION_CHUNK`, see :func:`chunk_size`). Returns ``[B, H, T, d]`` in ``q``'s
    dtype (a transposed view of a ``[B, T, H, d]`` tensor, so that merging the heads back is
    free).
    """
    return _CausalAttention.apply(q, k, v, table, scale, chunk)


def chunk_size(dtype: torch.dtype, chunk: int) -> int:
    """Queries per chunk for ``dtype``: ``chunk`` in fp32 / fp64, at least
    :data:`LOW_PRECISION_CHUNK` in bf16 / fp16, whose products are so fast that the passes
    over the keys and values of each chunk weigh more than the masked work of a longer one."""
    return max(chunk, LOW_PRECISION_CHUNK) if dtype in LOW_PRECISION else chunk


def _columns(L: int, R: int, device: torch.device) -> torch.Tensor:
    """Table row for each column of ``Q Eᵀ`` over ``L`` keys: column ``c`` ↔ distance ``L - c``."""
    return torch.arange(L, -1, -1, device=device).clamp(max=R - 1)


def _skewed(qe: torch.Tensor, B: int, rows: int, keys: int) -> torch.Tensor:
    """One head's ``Q Eᵀ`` ``[B·rows, keys + 1]`` (row ``b·rows + i``: query ``i`` of sequence
    ``b``) → ``[B, rows, keys]``: ``(b, i, j)`` = column ``rows - i + j`` of row ``b·rows + i``.

    Column ``c`` holds distance ``keys - c`` (see ``_columns``), and query ``i`` of the chunk
    sits at position ``keys - rows + i``, so column ``rows - i + j`` is its distance to key
    ``j``. Entries past the diagonal run over into the next row (garbage that the causal mask
    removes; never past the end of ``qe``); every ``(b, i, j)`` maps to its own element, so the
    view can be written through as well as read. The only elements it leaves out are the first
    ``rows`` of each sequence's first row (see ``_uncovered``).
    """
    row = keys + 1
    return qe.as_strided((B, rows, keys), (rows * row, row - 1, 1), qe.storage_offset() + rows)


def _uncovered(qe: torch.Tensor, B: int, rows: int) -> torch.Tensor:
    """The elements of ``qe`` ``[B·rows, keys + 1]`` that ``_skewed`` leaves out, as ``[B, rows]``.

    Row ``b·rows + i`` holds its own entries from column ``rows - i`` to its end, and its
    run-over fills the next row up to column ``rows - i - 1``: only row ``b·rows`` has no row
    before it that runs over, and its first ``rows`` columns stay uncovered.
    """
    row = qe.shape[1]
    return qe.as_strided((B, rows), (rows * row, 1), qe.storage_offset())


def _chunks(T: int, chunk: int) -> list[tuple[int, int]]:
    return [(a, min(a + chunk, T)) for a in range(0, T, chunk)]


def _blocks(flat: torch.Tensor, shapes: list[tuple[int, ...]]) -> list[torch.Tensor]:
    """Consecutive contiguous views of ``flat``, one per shape."""
    out, at = [], 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(flat[at : at + size].view(shape))
        at += size
    return out


def _whole(x: torch.Tensor, low: bool) -> torch.Tensor:
    """``x`` as one contiguous tensor where oneDNN would otherwise copy it inside the product
    (low precision); fp32's MKL batched products take strided operands as they are."""
    return x.contiguous() if low else x


def _scaled_queries(q: torch.Tensor, scale: float, chunks: list[tuple[int, int]]) -> torch.Tensor:
    """``q · scale`` laid out chunk by chunk, then head by head: block ``(chunk, head)`` is one
    contiguous ``[B, c, d]`` (two copies at most: the full chunks, then a shorter last one)."""
    B, H, T, d = q.shape
    flat = torch.empty(B * H * T * d, dtype=q.dtype, device=q.device)
    C, N = chunks[0][1], len(chunks)
    full = N if chunks[-1][1] - chunks[-1][0] == C else N - 1
    if full:
        src = q[:, :, : full * C].unflatten(2, (full, C)).permute(2, 1, 0, 3, 4)
        torch.mul(src, scale, out=flat[: full * C * B * H * d].view(full, H, B, C, d))
    if full < N:
        a, b = chunks[-1]
        dst = flat[a * B * H * d :].view(H, B, b - a, d)
        torch.mul(q[:, :, a:b].transpose(0, 1), scale, out=dst)
    return flat


class _CausalAttention(torch.autograd.Function):
    """Layouts: scaled queries as one contiguous ``[B, c, d]`` block per (chunk, head) -- the
    same block read as ``[B·c, d]`` is that head's query matrix against its table rows, so the
    relative term needs neither per-sequence copies of the table nor another layout of the
    queries; probabilities of all chunks in one flat buffer, ``[B, c, n]`` per (head, chunk);
    ``k``, ``v`` as ``[H, B, L, d]``; gradients of ``q``, ``k``, ``v`` written as ``[H, B, ·,
    d]`` and handed back as ``[B, H, ·, d]`` views.
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
        with torch.autocast(q.device.type, enabled=False):  # dtypes are chosen here, per input
            return _forward(ctx, q, k, v, table, scale, chunk)

    @staticmethod
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        with torch.autocast(dout.device.type, enabled=False):
            return _backward(ctx, dout)


def _views(
    qs: torch.Tensor,
    probs: torch.Tensor,
    shape: tuple[int, int, int, int, int],
    chunks: list[tuple[int, int]],
    kept: bool = True,
) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
    """Per (head, chunk): the ``[B, c, d]`` scaled-query block and the ``[B, c, n]``
    probabilities (all in one place when they are not ``kept`` for a backward)."""
    B, H, T, L, d = shape
    N, start = len(chunks), L - T
    q_blocks = _blocks(qs, [(B, b - a, d) for a, b in chunks for _ in range(H)])
    if kept:
        p_blocks = _blocks(probs, [(B, b - a, start + b) for _ in range(H) for a, b in chunks])
    else:
        p_blocks = [
            probs[: B * (b - a) * (start + b)].view(B, b - a, start + b) for a, b in chunks
        ] * H
    return (
        [[q_blocks[i * H + h] for i in range(N)] for h in range(H)],
        [[p_blocks[h * N + i] for i in range(N)] for h in range(H)],
    )


def _masks(
    chunks: list[tuple[int, int]], dtype: torch.dtype, device: torch.device
) -> dict[int, torch.Tensor]:
    """``[c, c]`` additive masks (``-inf`` above the diagonal) for each chunk length."""
    C = chunks[0][1]
    full = torch.zeros(C, C, dtype=dtype, device=device)
    full.masked_fill_(torch.ones(C, C, dtype=torch.bool, device=device).triu_(1), -math.inf)
    return {b - a: full[: b - a, : b - a] for a, b in chunks}


def _by_head(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` ``[B, H, L, d]`` copied to a contiguous ``[H, B, L, d]`` in ``dtype`` (one pass):
    each head's keys one block, whose prefixes copy fast (or go to MKL as they are in fp32)."""
    B, H, L, d = x.shape
    return torch.empty(H, B, L, d, dtype=dtype, device=x.device).copy_(x.transpose(0, 1))


def _forward(
    ctx: Any,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    table: torch.Tensor | None,
    scale: float,
    chunk: int,
) -> torch.Tensor:
    B, H, T, d = q.shape
    L, dtype, device = k.shape[2], q.dtype, q.device
    start, low = L - T, dtype in LOW_PRECISION
    chunks = _chunks(T, chunk_size(dtype, chunk))
    C = chunks[0][1]
    ctx.dtypes = (k.dtype, v.dtype, None if table is None else table.dtype)
    k, v = _by_head(k, dtype), _by_head(v, dtype)
    qs = _scaled_queries(q, scale, chunks)
    kept = any(ctx.needs_input_grad[:4])  # probabilities for the backward (else one chunk's)
    size = H * sum((b - a) * (start + b) for a, b in chunks) if kept else C * L
    probs = torch.empty(B * size, dtype=dtype, device=device)
    q_blocks, p_blocks = _views(qs, probs, (B, H, T, L, d), chunks, kept)
    e_all = qe_flat = None
    if table is not None:
        e_all = table.to(dtype)[:, _columns(L, table.shape[1], device)]  # [H or 1, L + 1, d]
        qe_flat = torch.empty(B * C * (L + 1), dtype=dtype, device=device)
    scores = torch.empty(B * C * L, dtype=dtype, device=device)
    masks = _masks(chunks, dtype, device)
    out = torch.empty(B, T, H, d, dtype=dtype, device=device)
    for h in range(H):
        for i, (a, b) in enumerate(chunks):
            c, n = b - a, start + b  # queries in the chunk, keys they see
            qc = q_blocks[h][i]
            kc, vc = _whole(k[h, :, :n], low), _whole(v[h, :, :n], low)
            s = scores[: B * c * n].view(B, c, n)
            if e_all is not None and qe_flat is not None:
                e = e_all[h if e_all.shape[0] > 1 else 0, L - n :]  # [n + 1, d]: its columns
                qe = qe_flat[: B * c * (n + 1)].view(B * c, n + 1)
                torch.mm(qc.view(B * c, d), e.t(), out=qe)
                s.copy_(_skewed(qe, B, c, n))
                s.baddbmm_(qc, kc.transpose(1, 2))
            else:
                torch.bmm(qc, kc.transpose(1, 2), out=s)
            s[:, :, n - c :].add_(masks[c])
            p = p_blocks[h][i]  # (the aten op softmax's out= variant: no tensor per chunk)
            torch.ops.aten._softmax.out(s, -1, False, out=p)
            torch.bmm(p, vc, out=out[:, a:b, h])
    ctx.scale, ctx.chunks, ctx.shape = scale, chunks, (B, H, T, L, d)
    ctx.table_shape = None if table is None else table.shape
    if kept:
        ctx.save_for_backward(k, v, qs, probs, e_all)
    return out.transpose(1, 2)


def _backward(ctx: Any, dout: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
    B, H, T, L, d = ctx.shape
    start, chunks = L - T, ctx.chunks
    C = chunks[0][1]
    k, v, qs, probs, e_all = ctx.saved_tensors  # k, v: [H, B, L, d]
    dtype, device = k.dtype, k.device
    low = dtype in LOW_PRECISION
    q_blocks, p_blocks = _views(qs, probs, ctx.shape, chunks)
    dout = dout.to(dtype)
    # every key is seen by the last chunk: going backwards over the chunks, it writes dK, dV
    # whole and the others add into their prefixes (no zeroing)
    dk = torch.empty(H, B, L, d, dtype=dtype, device=device)
    dv = torch.empty_like(dk)
    dq = torch.empty(H, B, T, d, dtype=dtype, device=device)
    de_all = dqe_flat = None
    if e_all is not None:
        de_all = torch.zeros(e_all.shape, dtype=torch.float32 if low else dtype, device=device)
        dqe_flat = torch.empty(B * C * (L + 1), dtype=dtype, device=device)
    dp_flat = torch.empty(B * C * L, dtype=dtype, device=device)
    ds_flat = torch.empty_like(dp_flat)
    dqe_e = torch.empty(B * C * d, dtype=dtype, device=device)
    doc_flat = torch.empty_like(dqe_e)
    # with S = Qs Kᵀ [+ skew(Qs Eᵀ)], P = softmax(S), O = P V:  dV = Pᵀ dO,
    # dS = P ∘ (dO Vᵀ - rowsum(P ∘ dO Vᵀ)), dK = dSᵀ Qs, dQ = scale · (dS K + skew⁻¹(dS) E),
    # dE = skew⁻¹(dS)ᵀ Qs (then summed into the table rows by distance)
    last = len(chunks) - 1
    for h in range(H):
        for i in range(last, -1, -1):
            a, b = chunks[i]
            c, n = b - a, start + b
            qc, p = q_blocks[h][i], p_blocks[h][i]
            kc, vc = _whole(k[h, :, :n], low), _whole(v[h, :, :n], low)
            doc = dout[:, h, a:b]
            if low:
                doc = doc_flat[: B * c * d].view(B, c, d).copy_(doc)
            dp = torch.bmm(doc, vc.transpose(1, 2), out=dp_flat[: B * c * n].view(B, c, n))
            ds = ds_flat[: B * c * n].view(B, c, n)
            torch.ops.aten._softmax_backward_data.out(dp, p, -1, dtype, grad_input=ds)
            _accumulate(dv[h, :, :n], p.transpose(1, 2), doc, i == last)
            _accumulate(dk[h, :, :n], ds.transpose(1, 2), qc, i == last)
            dqc = dq[h, :, a:b]
            if e_all is not None and de_all is not None and dqe_flat is not None:
                hh = h if e_all.shape[0] > 1 else 0
                dqe = dqe_flat[: B * c * (n + 1)].view(B * c, n + 1)
                _uncovered(dqe, B, c).zero_()
                _skewed(dqe, B, c, n).copy_(ds)
                rel = torch.mm(dqe, e_all[hh, L - n :], out=dqe_e[: B * c * d].view(B * c, d))
                torch.baddbmm(rel.view(B, c, d), ds, kc, beta=ctx.scale, alpha=ctx.scale, out=dqc)
                de_all[hh, L - n :] += torch.mm(dqe.t(), qc.view(B * c, d))
            else:
                torch.baddbmm(dqc, ds, kc, beta=0, alpha=ctx.scale, out=dqc)
    dtable = None
    if de_all is not None:
        columns = _columns(L, ctx.table_shape[1], device)
        dtable = torch.zeros(ctx.table_shape, dtype=de_all.dtype, device=device)
        dtable = dtable.index_add_(1, columns, de_all).to(ctx.dtypes[2])
    dk, dv = dk.to(ctx.dtypes[0]).transpose(0, 1), dv.to(ctx.dtypes[1]).transpose(0, 1)
    return dq.transpose(0, 1), dk, dv, dtable, None, None


def _accumulate(acc: torch.Tensor, x: torch.Tensor, y: torch.Tensor, first: bool) -> None:
    """``acc = x @ y`` (``first``) or ``acc += x @ y`` in one product (the sum is formed in
    the product's fp32 accumulators, then rounded once to ``acc``'s dtype)."""
    if first:
        torch.bmm(x, y, out=acc)
    else:
        acc.baddbmm_(x, y)
