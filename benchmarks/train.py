"""Training throughput: musegen's transformer vs Hugging Face GPT-2 of the same size, one run.

Both models: 6 layers, d_model 256, 4 heads, MLP 1024, vocab 512, sequences of 512, batch 16,
AdamW (fused), embedding/residual dropout 0.1, no attention dropout, tied embeddings. Steps are
interleaved (one step of every run per round, the order rotating each round) so that load from
other processes hits both alike; tokens/s comes from the median step time after the warm-up
steps, and ``ratio`` is the median of the rounds' own ratios (the peer's step time over ours,
``_timing.py``), with their quartiles and range. Each step is also timed in CPU seconds of
this process (``ours_cpu``, ``peer_cpu``: tokens per CPU-second; ``cpu_ratio``: the median of
the rounds' CPU-time ratios), which on a shared machine moves much less than wall time when
other processes take turns on the cores; the load average before and after is part of every
line.

Precision. Ours runs as users run it: the trainer's ``precision: "auto"``, i.e. bf16 autocast
where the probe of ``musegen.train.precision`` measures it clearly faster on this CPU (chips
with AMX), else fp32; Hugging Face GPT-2 as its users run it by default, in fp32. Three JSON
lines per variant of ours (``relative`` = the default the product ships, ``rope``):

* ``train.tokens_per_s.transformer_vs_hf_gpt2``: ours at the auto precision vs GPT-2 in fp32
  (as each is run; ``precision`` says what auto chose, ``probe`` its measurement);
* ``….bf16``: both under the same ``torch.autocast("cpu", dtype=torch.bfloat16)`` (weights and
  optimizer fp32, loss in fp32) -- run only where auto chose bf16, or with ``--bf16 yes``
  (on a CPU without bf16 matrix units a bf16 step takes minutes);
* ``….fp32``: both in fp32.

``--compile`` adds torch.compile'd fp32 variants of ours *and* of the peer (``….fp32`` lines):
a compiled variant is compared with the compiled peer (``peer``), and with the eager peer
(``ratio_vs_eager_peer``); ``compile_s`` / ``peer_compile_s`` are the seconds the first
(compiling) step took.
MFU = achieved model FLOP/s / the matmul peak of the run's precision (fp32 or bf16, the best of
measurements before the steps and after each round, since other load lowers it), with model
FLOPs per token = 6 · (weights used in matmuls, output layer included) + 12 · layers · T · d
(attention scores and weighted sum over the full T×T square, forward + backward) [+ 6 · layers
· T · d for the relative term ``Q·Eᵀ`` in relative attention]. Causal kernels (SDPA's flash
kernel, our chunked one) compute only about half of that square, so the attention share is
counted twice over: MFU is comparable between runs and models, not a fraction of what the
hardware can do.

Needs ``transformers`` (``pip install -e '.[hf]'``). Run: ``python benchmarks/train.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from _corpus import emit
from _models import D_MODEL, LAYERS, VOCAB, gpt2, transformer
from _timing import paired_ratios, spread
from musegen.utils import usable_cores


def matmul_peak(dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of an ``n × n`` matmul in ``dtype``: the ceiling MFU is measured to."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
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
    """Next-token cross-entropy, in fp32 as the trainer's ``lm_objective`` computes it."""
    logits, _ = model(x)
    return F.cross_entropy(logits[:, :-1].float().reshape(-1, VOCAB), x[:, 1:].reshape(-1))


def peer_loss(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(input_ids=x, labels=x, use_cache=False).loss  # upcasts logits to fp32 itself


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


@dataclass
class Run:
    """One timed configuration: its step, model FLOPs per token, and precision."""

    step: Step
    flops: float
    precision: str = "fp32"


def make_step(
    model: torch.nn.Module, loss_fn: Callable, x: torch.Tensor, precision: str = "fp32"
) -> Step:
    """One training step (forward under bf16 autocast when ``precision`` is bf16, backward
    and the fused AdamW step outside it, as the trainer does); returns its (wall, CPU) s."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, fused=True)
    model.train()
    bf16 = precision == "bf16"

    def step() -> tuple[float, float]:
        t, c = time.perf_counter(), time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
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
    ap.add_argument(
        "--bf16",
        choices=("auto", "yes", "no"),
        default="auto",
        help="also time both under bf16 autocast: auto = where the probe chose bf16",
    )
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd ours")
    ap.add_argument("--threads", type=int, default=usable_cores())
    args = ap.parse_args()
    try:
        import transformers  # noqa: F401
    except ImportError:
        sys.exit("benchmarks/train.py needs transformers: pip install -e '.[hf]'")
    from musegen.train.precision import precision_for

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randint(0, VOCAB, (args.batch, args.seq))
    tokens = args.batch * args.seq
    positions = args.variants.split(",")
    # what the trainer's precision "auto" picks for ours on this CPU (the same for every variant)
    auto = precision_for(ours(positions[0], args.seq), "auto", "cpu", tokens)
    print(f"# {auto.describe()}", file=sys.stderr)
    with_bf16 = args.bf16 == "yes" or (args.bf16 == "auto" and auto.dtype == "bf16")
    peaks = {"fp32": matmul_peak()}
    if with_bf16:
        peaks["bf16"] = matmul_peak(torch.bfloat16)
    print(f"# threads {args.threads}, matmul peak GFLOP/s {fmt(peaks)}", file=sys.stderr)

    load_before = os.getloadavg()[0]
    runs: dict[str, Run] = {}
    compile_s: dict[str, float] = {}
    precisions = ["fp32", "bf16"] if with_bf16 else ["fp32"]
    hf_fpt = flops_per_token(peer(args.seq), args.seq, False)
    for precision in precisions:
        runs[named("hf_gpt2", precision)] = Run(
            make_step(peer(args.seq), peer_loss, x, precision), hf_fpt, precision
        )
    if args.compile:
        step, compile_s["hf_gpt2_compiled"] = compiled("hf_gpt2", peer(args.seq), peer_loss, x)
        runs["hf_gpt2_compiled"] = Run(step, hf_fpt)
    for position in positions:
        fpt = flops_per_token(ours(position, args.seq), args.seq, position == "relative")
        for precision in precisions:
            step = make_step(ours(position, args.seq), ours_loss, x, precision)
            runs[named(position, precision)] = Run(step, fpt, precision)
        if args.compile:
            name = f"{position}_compiled"
            step, compile_s[name] = compiled(position, ours(position, args.seq), ours_loss, x)
            runs[name] = Run(step, fpt)

    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    names = list(runs)
    for i in range(args.warmup + args.steps):
        k = i % len(names)  # the order rotates: no run always follows the same one
        for name in names[k:] + names[:k]:
            wall, cpu = runs[name].step()
            if i >= args.warmup:
                times[name].append((wall, cpu))
            print(f"# step {i} {name}: {wall:.2f} s ({cpu:.2f} CPU s)", file=sys.stderr)
        peaks["fp32"] = max(peaks["fp32"], matmul_peak())
        if with_bf16:
            peaks["bf16"] = max(peaks["bf16"], matmul_peak(torch.bfloat16))
    load_after = os.getloadavg()[0]
    print(f"# best matmul peak GFLOP/s {fmt(peaks)}", file=sys.stderr)

    def rate(name: str, cpu: bool = False) -> float:
        return tokens / statistics.median(t[cpu] for t in times[name])

    def mfu(name: str) -> float:
        run = runs[name]
        return round(rate(name) * run.flops / (peaks[run.precision] * 1e9), 4)

    def paired(name: str, peer_name: str, cpu: bool = False) -> list[float]:
        return paired_ratios([t[cpu] for t in times[name]], [t[cpu] for t in times[peer_name]])

    def line(benchmark: str, name: str, peer_name: str, **extra: object) -> None:
        cpu = spread(paired(name, peer_name, cpu=True))
        emit(
            benchmark,
            rate(name),
            rate(peer_name),
            "tokens/s",
            **spread(paired(name, peer_name)),
            variant=name,
            peer_variant=peer_name,
            precision=runs[name].precision,
            peer_precision=runs[peer_name].precision,
            default=name.startswith("relative") and "_compiled" not in name,
            ours_cpu=round(rate(name, cpu=True), 3),
            peer_cpu=round(rate(peer_name, cpu=True), 3),
            cpu_ratio=cpu["ratio"],
            cpu_ratio_range=cpu["ratio_range"],
            **extra,
            mfu=mfu(name),
            peer_mfu=mfu(peer_name),
            peak_gflops=round(peaks[runs[name].precision], 1),
            model_gflop_per_token=round(runs[name].flops / 1e9, 4),
            peer_gflop_per_token=round(runs[peer_name].flops / 1e9, 4),
            batch=args.batch,
            seq=args.seq,
            steps=args.steps,
            threads=args.threads,
            load_average=[round(load_before, 2), round(load_after, 2)],
        )

    bench = "train.tokens_per_s.transformer_vs_hf_gpt2"
    for position in positions:
        line(bench, named(position, auto.dtype), "hf_gpt2", auto=auto.to_dict())
        if with_bf16:
            line(f"{bench}.bf16", named(position, "bf16"), named("hf_gpt2", "bf16"))
        line(f"{bench}.fp32", position, "hf_gpt2")
        if args.compile:
            name = f"{position}_compiled"
            line(
                f"{bench}.fp32",
                name,
                "hf_gpt2_compiled",
                ratio_vs_eager_peer=round(rate(name) / rate("hf_gpt2"), 3),
                compile_s=round(compile_s[name], 1),
                peer_compile_s=round(compile_s["hf_gpt2_compiled"], 1),
            )


def named(model: str, precision: str) -> str:
    """A run's name: the model's, with ``_bf16`` for bf16 autocast."""
    return model if precision == "fp32" else f"{model}_{precision}"


def fmt(peaks: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in peaks.items())


if __name__ == "__main__":
    main()
