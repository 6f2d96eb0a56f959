"""Thread count of numpy's BLAS, as ``torch.set_num_threads`` sets PyTorch's.

numpy offers no call for it, so the OpenBLAS that numpy ships with (or links to) is looked up
among the libraries loaded into the process (Linux: ``/proc/self/maps``) and its own get/set
functions are called through ``ctypes``. Where there is none (another BLAS, another platform)
the helpers say so and change nothing.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from musegen.utils import usable_cores

log = logging.getLogger(__name__)

# get/set thread-count functions of the OpenBLAS builds numpy ships with or links to
_OPENBLAS_NAMES = [
    (f"{prefix}openblas_get_num_threads{suffix}", f"{prefix}openblas_set_num_threads{suffix}")
    for prefix in ("scipy_", "")
    for suffix in ("64_", "", "_64")
]

Functions = tuple[Callable[[], int], Callable[[int], None]]


@functools.cache
def openblas() -> Functions | None:
    """numpy's OpenBLAS thread-count functions ``(get, set)``, or None where there are none."""
    import numpy  # noqa: F401  (loads numpy's BLAS, if it is not loaded yet)

    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError as e:
        log.info("numpy's BLAS threads left alone: no /proc/self/maps (%s)", e)
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get, set_ in _OPENBLAS_NAMES:
            if hasattr(lib, get) and hasattr(lib, set_):
                getter, setter = getattr(lib, get), getattr(lib, set_)
                getter.restype, setter.restype = ctypes.c_int, None
                setter.argtypes = [ctypes.c_int]
                return getter, setter
    log.info("numpy's BLAS threads left alone: no OpenBLAS among the loaded libraries")
    return None


@contextmanager
def blas_threads(n: int) -> Iterator[bool]:
    """Run numpy's OpenBLAS with ``n`` threads inside the block; yields whether it could (the
    count is restored after)."""
    functions = openblas()
    if functions is None:
        yield False
        return
    get, set_ = functions
    before = get()
    set_(n)
    try:
        yield True
    finally:
        set_(before)


def blas_one_thread() -> bool:
    """Whether numpy's OpenBLAS runs single-threaded (asked of the library where it can be,
    else its thread variables, else the CPU count)."""
    functions = openblas()
    if functions is not None:
        return functions[0]() == 1
    for name in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name):
            return os.environ[name].strip() == "1"
    return usable_cores() == 1
