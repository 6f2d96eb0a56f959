"""Which arithmetic a training run uses: fp32, or bf16 autocast, chosen by measuring.

On a CPU the answer depends on the chip: where the matrix units take bf16 (Intel AMX) a bf16
product is many times faster than an fp32 one, and where they do not (AVX2 / AVX-512 without
bf16 support) torch falls back to reference kernels that are far slower than fp32. No flag
that torch exposes says which, so ``"auto"`` *measures*: :func:`probe_bf16` times one linear
layer's forward and backward at the model's own width, in fp32 and under
``torch.autocast("cpu", dtype=torch.bfloat16)``, on the run's threads, and bf16 is chosen only
when it is clearly faster (:data:`BF16_SPEEDUP`). A tiny scout of the bare bf16 kernel goes
first, so a chip on which bf16 crawls is found out without a full-size bf16 product.

Autocast keeps the master weights and the optimizer in fp32 and casts per operation; the
objectives compute their loss in fp32. On CUDA, ``"auto"`` keeps what the trainer always did:
bf16 autocast where the GPU supports bf16 (and ``amp`` is on), else fp32.

Every choice says how it was made (:meth:`Precision.to_dict`), so a run records what it used.
"""

from __future__ import annotations

import os
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from musegen.train.config import PRECISIONS

BF16_SPEEDUP = 1.3  # bf16 autocast must beat fp32 by this factor in the probe to be chosen
PROBE_FLOP = 2e9  # multiply-add work of one full-size probe step (forward + backward), in FLOP
PROBE_MIN_ROWS = 512  # ... but at least this many rows (or the whole batch, if smaller)
PROBE_REPEATS = 3  # timed full-size steps per precision (the fastest counts) ...
PROBE_BUDGET_S = 0.2  # ... fewer (at least one) when they take longer than this in all
SCOUT_SIZE = 256  # the scout's product is at most [256, 256] x [256, 256]
SCOUT_SLOWER = 2.0  # the bare bf16 kernel this much slower than fp32: stop, keep fp32


@dataclass(frozen=True)
class ProbeResult:
    """Seconds of one linear layer's forward + backward, ``[rows, width] x [width, hidden]``."""

    rows: int
    width: int
    hidden: int
    threads: int
    fp32_s: float
    bf16_s: float
    scout_only: bool = False  # the bf16 kernel was so slow in the scout that the rest was skipped

    @property
    def speedup(self) -> float:
        """fp32 time / bf16 time: above 1, bf16 autocast is faster."""
        return self.fp32_s / self.bf16_s if self.bf16_s > 0 else 0.0


@dataclass(frozen=True)
class Precision:
    """The arithmetic of one run: ``dtype`` ``"fp32"`` or ``"bf16"`` (autocast), what was
    asked for, on which device type, why, and the probe's times when one ran."""

    dtype: str
    asked: str
    device: str
    reason: str
    probe: ProbeResult | None = None

    def autocast(self) -> AbstractContextManager[Any]:
        """The context the forward pass and the loss run in (training and evaluation alike);
        the backward runs outside it, as torch recommends."""
        if self.dtype != "bf16":
            return nullcontext()
        return torch.autocast(self.device, dtype=torch.bfloat16)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "precision": self.dtype,
            "asked": self.asked,
            "device": self.device,
            "reason": self.reason,
        }
        if self.probe is not None:
            probe = asdict(self.probe)
            probe["speedup"] = round(self.probe.speedup, 3)
            probe["fp32_ms"] = round(probe.pop("fp32_s") * 1e3, 3)
            probe["bf16_ms"] = round(probe.pop("bf16_s") * 1e3, 3)
            out["probe"] = probe
        return out

    def describe(self) -> str:
        """One line for the console: what the run uses and why."""
        what = "bf16 autocast (fp32 weights and optimizer)" if self.dtype == "bf16" else "fp32"
        text = f"precision: {what} on {self.device}; {self.reason}"
        p = self.probe
        if p is not None:
            threads = f"{p.threads} thread{'s' if p.threads != 1 else ''}"
            text += (
                f" (probe [{p.rows}x{p.width}]x[{p.width}x{p.hidden}] fwd+bwd, {threads}: "
                f"fp32 {p.fp32_s * 1e3:.2f} ms, bf16 {p.bf16_s * 1e3:.2f} ms, "
                f"{p.speedup:.2f}x; bf16 needs {BF16_SPEEDUP}x)"
            )
        return text


def model_widths(model: nn.Module) -> tuple[int, int]:
    """``(width, hidden)`` of the model's largest weight matrix, embeddings aside: the matrix
    product that dominates its training step (a transformer's MLP, ``d_model x d_ff``)."""
    embeddings = {
        id(m.weight) for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))
    }
    best: tuple[int, int] = (0, 0)
    for p in model.parameters():
        if p.dim() == 2 and id(p) not in embeddings and p.numel() > best[0] * best[1]:
            hidden, width = p.shape
            best = (int(width), int(hidden))
    if best == (0, 0):
        raise ValueError("the model has no weight matrix to probe")
    return best


def probe_rows(tokens: int, width: int, hidden: int) -> int:
    """Rows of the probe's activations: the tokens of one batch, capped so that a step costs
    about :data:`PROBE_FLOP` (big enough to time, small enough to stay well under a second),
    but not below :data:`PROBE_MIN_ROWS`, where the per-step cast of the weight to bf16 would
    weigh more than it does in a real batch."""
    cap = int(PROBE_FLOP // (6 * width * hidden))
    return max(min(tokens, PROBE_MIN_ROWS), min(tokens, cap))


_PROBES: dict[tuple[int, int, int, int], ProbeResult] = {}


def _scout(width: int, hidden: int, threads: int, gen: torch.Generator) -> ProbeResult | None:
    """A small plain product, bf16 against fp32 with no casts timed: the chip's bf16 kernel
    alone. Returns a result when bf16 is :data:`SCOUT_SLOWER` times slower (no need to time it
    at full size, which could take seconds on such a chip), else None."""
    rows, width, hidden = SCOUT_SIZE, min(width, SCOUT_SIZE), min(hidden, SCOUT_SIZE)
    a, b = torch.randn(rows, width, generator=gen), torch.randn(width, hidden, generator=gen)
    best: dict[torch.dtype, float] = {}
    for dtype in (torch.float32, torch.bfloat16):
        x, y = a.to(dtype), b.to(dtype)
        times = []
        for _ in range(3):  # the first call sets the kernel up; the best of the rest counts
            start = time.perf_counter()
            x @ y
            times.append(time.perf_counter() - start)
        best[dtype] = min(times[1:])
    if best[torch.bfloat16] > SCOUT_SLOWER * best[torch.float32]:
        return ProbeResult(
            rows, width, hidden, threads, best[torch.float32], best[torch.bfloat16], True
        )
    return None


def probe_bf16(rows: int, width: int, hidden: int) -> ProbeResult:
    """Time ``y = x Wᵀ`` and its backward at ``[rows, width] x [width, hidden]``, fp32 vs bf16
    autocast (weight and input casts included, as in training), on torch's current threads,
    after a small scout of the bare bf16 kernel (:func:`_scout`). Raises whatever torch raises.

    Results are kept per process (and shape, and thread count): every trainer in a process sees
    the same answer, and the second asks nothing of the clock.
    """
    threads = torch.get_num_threads()
    key = (rows, width, hidden, threads)
    if key in _PROBES:
        return _PROBES[key]
    gen = torch.Generator().manual_seed(0)  # the run's own RNG streams are left alone
    result = _scout(width, hidden, threads, gen)
    if result is None:
        weight = nn.Parameter(torch.randn(hidden, width, generator=gen) * width**-0.5)
        x = torch.randn(rows, width, generator=gen).requires_grad_()
        grad = torch.randn(rows, hidden, generator=gen)

        def step(bf16: bool) -> float:
            start = time.perf_counter()
            with torch.enable_grad(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                y = torch.nn.functional.linear(x, weight)
                y.backward(grad.to(y.dtype))
            weight.grad = x.grad = None
            return time.perf_counter() - start

        step(False), step(True)  # warm-up: the first calls set kernels and autograd up
        times: dict[bool, list[float]] = {False: [], True: []}
        start = time.perf_counter()
        while len(times[True]) < PROBE_REPEATS and (
            not times[True] or time.perf_counter() - start < PROBE_BUDGET_S
        ):
            for bf16 in (False, True):  # interleaved, so other load hits both alike
                times[bf16].append(step(bf16))
        result = ProbeResult(rows, width, hidden, threads, min(times[False]), min(times[True]))
    _PROBES[key] = result
    return result


def busy_cpu_note(threads: int, load: float | None = None, cores: int | None = None) -> str | None:
    """A warning when the CPU is already busy: ``threads`` torch threads on top of the
    one-minute ``load`` average (the system's when None) oversubscribe the ``cores`` (the
    system's when None). Threads that wait for each other then spin while descheduled (a
    2-thread run measured 0.025 steps/s beside three other sessions on 2 cores, 0.7 with one
    thread), and the bf16 probe times the other work as much as its own. None when it fits,
    or when the load cannot be read."""
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # Windows has no load average
            return None
    cores = cores or os.cpu_count() or 1
    if load + threads <= cores + 0.5:
        return None
    return (
        f"note: the CPU is busy (load average {load:.1f} on {cores} cores) and this run asks "
        f"for {threads} thread{'s' if threads != 1 else ''}: oversubscribed threads run far "
        "slower and the bf16 probe may misjudge; --threads 1 and an explicit --precision help"
    )


def choose_precision(
    asked: str,
    device: torch.device | str,
    rows: int,
    width: int,
    hidden: int,
    amp: bool = True,
) -> Precision:
    """The precision of a run: ``asked`` (``auto`` / ``fp32`` / ``bf16``) on ``device``.

    ``auto`` on the CPU probes (:func:`probe_bf16`) at ``[rows, width] x [width, hidden]``; a
    probe that fails chooses fp32 and says why. ``amp=False`` makes ``auto`` mean fp32 (the
    setting older run files carry).
    """
    if asked not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {asked!r}")
    kind = torch.device(device).type
    if asked != "auto":
        return Precision(asked, asked, kind, "asked for")
    if not amp:
        return Precision("fp32", asked, kind, "amp is off")
    if kind == "cuda":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return Precision("bf16", asked, kind, "the GPU supports bf16")
        return Precision("fp32", asked, kind, "the GPU has no bf16")
    if kind != "cpu":
        return Precision("fp32", asked, kind, f"no probe on {kind}")
    try:
        probe = probe_bf16(rows, width, hidden)
    except Exception as e:  # any failure of bf16 on this build or chip means: stay in fp32
        return Precision("fp32", asked, kind, f"bf16 probe failed ({type(e).__name__}: {e})")
    if probe.speedup >= BF16_SPEEDUP:
        return Precision("bf16", asked, kind, "bf16 autocast measured faster", probe)
    return Precision("fp32", asked, kind, "bf16 autocast not measured clearly faster", probe)


def precision_for(
    model: nn.Module, asked: str, device: torch.device | str, tokens: int, amp: bool = True
) -> Precision:
    """:func:`choose_precision` for ``model`` training on ``tokens`` tokens per step."""
    if asked != "auto" or torch.device(device).type != "cpu":
        return choose_precision(asked, device, 0, 0, 0, amp)
    try:
        width, hidden = model_widths(model)
    except ValueError as e:
        return Precision("fp32", asked, "cpu", str(e))
    return choose_precision(asked, device, probe_rows(tokens, width, hidden), width, hidden, amp)
