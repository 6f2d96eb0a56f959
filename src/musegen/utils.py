"""Small helpers shared across the package: atomic writes, hashing, the CPU's name, and the
one progress display of every command (:func:`progress`)."""

from __future__ import annotations

import hashlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename.

    A reader never sees a half-written file, and an interrupted write leaves the old file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_file_mode() -> int:
    """The permissions a plain ``open(path, "w")`` would give: 0666 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def cpu_model_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` says, else ``""``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor()


# ----------------------------------------------------------------------------- progress
PLAIN_EVERY = 10.0  # seconds between progress lines when the stream is not a terminal


def progress(
    iterable: Iterable[Any] | None = None,
    *,
    desc: str = "",
    total: float | None = None,
    unit: str = "it",
    initial: float = 0,
    file: TextIO | None = None,
    disable: bool = False,
    every: float = PLAIN_EVERY,
    **options: Any,
) -> Any:
    """The one progress display of every command, on ``file`` (default: stderr).

    On a terminal it is tqdm's bar (``options`` go to it). Elsewhere (a log file, a pipe) a
    bar would write a line per update, so :class:`PlainProgress` writes a plain line at most
    every ``every`` seconds and a summary at the end if it wrote any: a short job stays
    silent. With ``disable`` nothing is shown. Either way the object iterates over
    ``iterable`` and has tqdm's ``update``, ``set_postfix``, ``close`` and ``with``.
    """
    stream = file if file is not None else sys.stderr
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if disable:
        return PlainProgress(iterable, desc, total, unit, initial, stream, every=math.inf)
    if _is_terminal(stream):
        from tqdm import tqdm

        return tqdm(
            iterable, desc=desc, total=total, unit=unit, initial=initial, file=stream, **options
        )
    scale = bool(options.get("unit_scale"))
    return PlainProgress(iterable, desc, total, unit, initial, stream, every=every, scale=scale)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class PlainProgress:
    """Progress as plain lines (``desc: 120/500 step (24%), 3.1 step/s, loss=2.3, 2:05
    left``), one at most every ``every`` seconds, and a last one on ``close`` if any was
    written."""

    def __init__(
        self,
        iterable: Iterable[Any] | None,
        desc: str,
        total: float | None,
        unit: str,
        initial: float,
        stream: TextIO,
        every: float = PLAIN_EVERY,
        scale: bool = False,
    ) -> None:
        self.iterable, self.desc, self.total, self.unit = iterable, desc, total, unit
        self.n = self.initial = initial
        self.stream, self.every, self.scale = stream, every, scale
        self.postfix = ""
        self.start = self.last = time.monotonic()
        self.lines = 0
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        assert self.iterable is not None, "nothing to iterate over"
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._write(self._status(now))

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        now = time.monotonic()
        if self.lines or now - self.start >= self.every:
            done = f"{self._count(self.n)} {self.unit} in {_clock(now - self.start)}"
            rate = self._rate(now)
            self._write(", ".join(x for x in (done, rate, self.postfix) if x))

    def _status(self, now: float) -> str:
        parts = [f"{self._count(self.n)} {self.unit}"]
        if self.total:
            parts[0] = f"{self._count(self.n)}/{self._count(self.total)} {self.unit}"
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        parts += [self._rate(now), self.postfix]
        speed = (self.n - self.initial) / max(now - self.start, 1e-9)
        if self.total and speed > 0 and self.n < self.total:
            parts.append(f"{_clock((self.total - self.n) / speed)} left")
        return ", ".join(p for p in parts if p)

    def _rate(self, now: float) -> str:
        speed = (self.n - self.initial) / max(now - self.start, 1e-9)
        return f"{self._count(speed)} {self.unit}/s" if speed else ""

    def _count(self, x: float) -> str:
        if self.scale:
            for prefix in ("", "k", "M", "G", "T"):
                if abs(x) < 999.5:
                    return f"{x:.3g}{prefix}"
                x /= 1000
            return f"{x:.3g}P"
        return f"{x:,.0f}" if abs(x) >= 10 or float(x).is_integer() else f"{x:.2g}"

    def _write(self, text: str) -> None:
        self.lines += 1
        line = f"{self.desc}: {text}" if self.desc else text
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: progress is not worth failing
            pass


def _clock(seconds: float) -> str:
    """``42.0 s``, ``3:07``, ``1:02:03``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def reject_unknown(options: Iterable[str], known: Iterable[str], what: str) -> None:
    """A one-line error naming the ``options`` that are not ``known`` (e.g. the fields of a
    settings dataclass), so a misspelt setting in a run file is never silently ignored."""
    from musegen.errors import MusegenError

    unknown = sorted(set(options) - set(known))
    if unknown:
        raise MusegenError(f"unknown {what}: {', '.join(unknown)}")
