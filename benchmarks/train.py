"""Training throughput: musegen's transformer vs Hugging Face GPT-2 of the same size, one run.

Both models: 6 layers, d_model 256, 4 heads, MLP 1024, vocab 512, sequences of 512, batch 16,
fp32, AdamW, embedding/residual dropout 0.1, no attention dropout, tied embeddings. Steps are
interleaved (ours, peer, ours, peer, ...) so that load from other processes hits both alike;
tokens/s comes from the median step time after the warm-up steps. Each step is also timed in
CPU seconds of this process (``ours_cpu``, ``peer_cpu``, ``cpu_ratio``: tokens per CPU-second),
which on a shared machine moves much less than wall time when other processes take turns on
the cores; the load average before and after is part of every line.

Prints JSON lines: one per variant of ours (``relative`` = the default the product ships,
``rope``), plus the measured fp32 matmul peak. ``--compile`` adds torch.compile'd variants of
ours *and* of the peer: a compiled variant is compared with the compiled peer (``peer``), and
with the eager peer (``ratio_vs_eager_peer``); ``compile_s`` / ``peer_compile_s`` are the
seconds the first (compiling) step took.
MFU = achieved model FLOP/s / that peak (the best of measurements before the steps and after
each round, since other load lowers it), with model FLOPs per token =
6 · (weights used in matmuls, output layer included) + 12 · layers · T · d (attention scores and
weighted sum over the full T×T square, forward + backward) [+ 6 · layers · T · d for the
relative term ``Q·Eᵀ`` in relative attention]. Causal kernels (SDPA's flash kernel, our
chunked one) compute only about half of that square, so the attention share is counted twice
over: MFU is comparable between runs and models, not a fraction of what the hardware can do.

Needs ``transformers`` (``pip install -e '.[hf]'``). Run: ``python benchmarks/train.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from _corpus import emit
from _models import D_MODEL, LAYERS, VOCAB, gpt2, transformer


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of an ``n × n`` matmul: the ceiling the MFU figures are measured to."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def ours(position: str, seq: int) -> torch.nn.Module:
    return transformer(position, dropout=0.1, attention_dropout=0.0, max_relative=seq)


def peer(seq: int) -> torch.nn.Module:
    return gpt2(seq)


def ours_loss(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    logits, _ = model(x)
    return F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), x[:, 1:].reshape(-1))


def peer_loss(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(input_ids=x, labels=x, use_cache=False).loss


def matmul_weights(model: torch.nn.Module) -> int:
    """Weights of the linear layers (output layer included, once if tied); no lookup tables."""
    seen: dict[int, int] = {}
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, torch.nn.Embedding) or not isinstance(weight, torch.Tensor):
            continue
        if weight.dim() == 2:
            seen[id(weight)] = weight.numel()
    return sum(seen.values())


def flops_per_token(model: torch.nn.Module, seq: int, relative: bool) -> float:
    attention = 12 * LAYERS * seq * D_MODEL + (6 * LAYERS * seq * D_MODEL if relative else 0)
    return 6 * matmul_weights(model) + attention


Step = Callable[[], tuple[float, float]]


def make_step(model: torch.nn.Module, loss_fn: Callable, x: torch.Tensor) -> Step:
    """One training step; returns its (wall, CPU) seconds."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, fused=True)
    model.train()

    def step() -> tuple[float, float]:
        t, c = time.perf_counter(), time.process_time()
        loss = loss_fn(model, x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t, time.process_time() - c

    return step


def compiled(
    name: str, model: torch.nn.Module, loss_fn: Callable, x: torch.Tensor
) -> tuple[Step, float]:
    """A step of ``torch.compile(model)``, and the seconds its first (compiling) step took."""
    step = make_step(torch.compile(model), loss_fn, x)
    seconds, _ = step()
    print(f"# compiled {name} in {seconds:.0f} s", file=sys.stderr)
    return step, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--variants", default="relative,rope", help="positions of ours to time")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd ours")
    ap.add_argument("--threads", type=int, default=cpu_count())
    args = ap.parse_args()
    try:
        import transformers  # noqa: F401
    except ImportError:
        sys.exit("benchmarks/train.py needs transformers: pip install -e '.[hf]'")

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randint(0, VOCAB, (args.batch, args.seq))
    tokens = args.batch * args.seq
    peak = matmul_peak()
    print(f"# threads {args.threads}, fp32 matmul peak {peak:.1f} GFLOP/s", file=sys.stderr)

    load_before = os.getloadavg()[0]
    runs: dict[str, tuple[Step, float]] = {}
    compile_s: dict[str, float] = {}
    hf = peer(args.seq)
    hf_fpt = flops_per_token(hf, args.seq, False)
    runs["hf_gpt2"] = (make_step(hf, peer_loss, x), hf_fpt)
    if args.compile:
        step, compile_s["hf_gpt2_compiled"] = compiled("hf_gpt2", peer(args.seq), peer_loss, x)
        runs["hf_gpt2_compiled"] = (step, hf_fpt)
    for position in args.variants.split(","):
        model = ours(position, args.seq)
        fpt = flops_per_token(model, args.seq, position == "relative")
        runs[position] = (make_step(model, ours_loss, x), fpt)
        if args.compile:
            name = f"{position}_compiled"
            step, compile_s[name] = compiled(position, ours(position, args.seq), ours_loss, x)
            runs[name] = (step, fpt)

    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for i in range(args.warmup + args.steps):
        for name, (step, _) in runs.items():
            wall, cpu = step()
            if i >= args.warmup:
                times[name].append((wall, cpu))
            print(f"# step {i} {name}: {wall:.2f} s ({cpu:.2f} CPU s)", file=sys.stderr)
        peak = max(peak, matmul_peak())
    load_after = os.getloadavg()[0]
    print(f"# best fp32 matmul peak {peak:.1f} GFLOP/s", file=sys.stderr)

    def rate(name: str, cpu: bool = False) -> float:
        return tokens / statistics.median(t[cpu] for t in times[name])

    def mfu(name: str) -> float:
        return round(rate(name) * runs[name][1] / (peak * 1e9), 4)

    for name in runs:
        if name.startswith("hf_gpt2"):
            continue
        peer_name = "hf_gpt2_compiled" if name.endswith("_compiled") else "hf_gpt2"
        extra: dict[str, object] = {}
        if name in compile_s:
            extra = {
                "ratio_vs_eager_peer": round(rate(name) / rate("hf_gpt2"), 3),
                "compile_s": round(compile_s[name], 1),
                "peer_compile_s": round(compile_s[peer_name], 1),
            }
        emit(
            "train.tokens_per_s.transformer_vs_hf_gpt2",
            rate(name),
            rate(peer_name),
            "tokens/s",
            variant=name,
            peer_variant=peer_name,
            default=name == "relative",
            ours_cpu=round(rate(name, cpu=True), 3),
            peer_cpu=round(rate(peer_name, cpu=True), 3),
            cpu_ratio=round(rate(name, cpu=True) / rate(peer_name, cpu=True), 3),
            **extra,
            mfu=mfu(name),
            peer_mfu=mfu(peer_name),
            peak_gflops=round(peak, 1),
            model_gflop_per_token=round(runs[name][1] / 1e9, 4),
            peer_gflop_per_token=round(runs[peer_name][1] / 1e9, 4),
            batch=args.batch,
            seq=args.seq,
            steps=args.steps,
            threads=args.threads,
            load_average=[round(load_before, 2), round(load_after, 2)],
        )


if __name__ == "__main__":
    main()
