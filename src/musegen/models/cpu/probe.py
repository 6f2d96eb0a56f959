"""Which products the fused decoding step multiplies with on this CPU: measured, cached on disk.

The step multiplies a batch's rows by every weight matrix of the model. Three kernels can do
it, and which is fastest depends on the CPU, the batch and the model's size, so no constant
holds everywhere (measured with the benchmark model, 6 × 256, batch 8, one thread: on an AMD
EPYC host oneDNN with packed weights beat OpenBLAS; on an Intel Xeon (Sapphire Rapids)
PyTorch's ``torch.mm`` beat both by 1.4-2×; one row is a matrix-vector product where numpy's
lower cost per call wins everywhere):

* ``"numpy"``: numpy's ``matmul`` (OpenBLAS, pinned to one thread while decoding);
* ``"torch"``: ``torch.mm`` on the same memory (PyTorch's own BLAS, MKL on x86 builds);
* ``"onednn"``: weights packed once for oneDNN, GELU and residual adds fused (:mod:`.onednn`).

So the decoder asks :func:`kernel_for` once per model shape and batch size; the first time on
a machine it times the step's products with each kernel on the model's own weights (a few
tens of milliseconds, rounds interleaved so that other load hits every kernel alike) and
keeps the fastest, numpy unless another is at least :data:`MARGIN` times faster. The answer
is kept in memory and in ``cpu-kernels.json`` in the user cache folder (``$MUSEGEN_HOME``,
else ``~/.cache/musegen``), keyed by the CPU's model name, the PyTorch and numpy versions and
the thread counts, so another machine, library or thread count measures again.

Switches: ``MUSEGEN_CPU_KERNEL=numpy|torch|onednn`` forces a kernel;
``MUSEGEN_CPU_PROBE=0`` measures nothing and keeps the fixed rule of :mod:`.decode`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

KERNELS = ("numpy", "torch", "onednn")
ENV_KERNEL = "MUSEGEN_CPU_KERNEL"
ENV_PROBE = "MUSEGEN_CPU_PROBE"
MARGIN = 1.1  # another kernel replaces numpy only when at least this much faster
FILE_NAME = "cpu-kernels.json"
_OFF = ("0", "false", "no", "off")

_MEMORY: dict[tuple[str, str], str] = {}


def forced() -> str | None:
    """The kernel ``MUSEGEN_CPU_KERNEL`` forces, or None."""
    name = os.environ.get(ENV_KERNEL, "").strip().lower()
    if not name:
        return None
    if name not in KERNELS:
        log.warning("%s=%s ignored: expected one of %s", ENV_KERNEL, name, ", ".join(KERNELS))
        return None
    return name


def probing() -> bool:
    """Whether kernels are chosen by measuring (``MUSEGEN_CPU_PROBE`` not off)."""
    return os.environ.get(ENV_PROBE, "1").strip().lower() not in _OFF


def cache_file() -> Path:
    """``cpu-kernels.json`` in ``$MUSEGEN_HOME``, else ``~/.cache/musegen``."""
    home = os.environ.get("MUSEGEN_HOME")
    return (Path(home) if home else Path.home() / ".cache" / "musegen") / FILE_NAME


def machine_key() -> str:
    """What a measurement holds for: CPU model, library versions, thread counts."""
    import numpy as np
    import torch

    from musegen.models.cpu.threads import blas_one_thread
    from musegen.utils import cpu_model_name

    blas = "blas 1 thread" if blas_one_thread() else "blas threads"
    return (
        f"{cpu_model_name() or 'unknown CPU'} | torch {torch.__version__} | numpy "
        f"{np.__version__} | {torch.get_num_threads()} torch threads | {blas}"
    )


def decide(milliseconds: dict[str, float]) -> str:
    """The fastest kernel, numpy unless another is :data:`MARGIN` times faster."""
    best = min(milliseconds, key=milliseconds.__getitem__)
    if "numpy" in milliseconds and milliseconds["numpy"] <= MARGIN * milliseconds[best]:
        return "numpy"
    return best


def kernel_for(shape: str, measure: Callable[[], dict[str, float]]) -> str:
    """The kernel for ``shape`` (a model's sizes and the batch, as text) on this machine:
    remembered, else read from the cache file, else measured by ``measure()`` (milliseconds
    per kernel) and written there."""
    machine = machine_key()
    key = (machine, shape)
    if key in _MEMORY:
        return _MEMORY[key]
    path = cache_file()
    table = _read(path)
    entry = table.get(machine, {}).get(shape)
    if isinstance(entry, dict) and entry.get("kernel") in KERNELS:
        _MEMORY[key] = entry["kernel"]
        return entry["kernel"]
    milliseconds = measure()
    kernel = decide(milliseconds)
    _MEMORY[key] = kernel
    shown = ", ".join(f"{k} {v:.2f} ms" for k, v in milliseconds.items())
    log.info("CPU decoding products for %s: %s (%s)", shape, kernel, shown)
    table = _read(path)  # again: another process may have added entries meanwhile
    table.setdefault(machine, {})[shape] = {
        "kernel": kernel,
        "ms": {k: round(v, 4) for k, v in milliseconds.items()},
    }
    try:
        from musegen.utils import atomic_write_text

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(table, indent=1, sort_keys=True))
    except OSError as e:  # a read-only home: measured again next time, nothing worse
        log.info("CPU kernel choice not cached (%s)", e)
    return kernel


def _read(path: Path) -> dict[str, dict[str, object]]:
    """The cache file's table, or an empty one where it is missing or unreadable."""
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(table, dict):
        return {}
    return {k: v for k, v in table.items() if isinstance(v, dict)}


def forget() -> None:
    """Drop the choices kept in memory (tests; the cache file stays)."""
    _MEMORY.clear()
