"""Run torchrun launchers from a test: output to files (a full pipe cannot stall a launcher),
poll them all, stop every one as soon as one fails, and report the workers' own errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def leave_group() -> None:
    """End a torchrun worker whose work is written: wait for every rank, then leave at once.

    Neither the process group nor the interpreter is torn down: in their teardown a rank now
    and then aborts ("terminate called without an active exception", a C++ thread still
    joinable) or crashes, and its peer, still connected, fails too."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def error_lines(err: str) -> str:
    """The workers' own error lines (a C++ abort prints 'what(): …' long before the
    launcher's summary), the Python stack of a crashed worker (faulthandler's), then the
    summary's tail."""
    keys = ("what()", "Error", "error", "terminate", "Traceback")
    lines = err.splitlines()
    kept = [line for line in lines if any(k in line for k in keys)][:40]
    for i, line in enumerate(lines):
        if line.startswith("Fatal Python error"):
            kept += lines[i + 1 : i + 30]
    return "\n".join(kept) + "\n---\n" + err[-1500:]


def run_launchers(
    cmds: list[list[str]], logs: Path, env: dict[str, str] | None = None, timeout: float = 240
) -> None:
    """Start every command in its own session, wait for all; any failure or the timeout
    kills the rest and fails with that launcher's errors."""
    logs.mkdir(parents=True, exist_ok=True)
    env = {**(os.environ if env is None else env), "PYTHONFAULTHANDLER": "1"}  # a crash's stack
    procs = []
    for k, cmd in enumerate(cmds):
        with open(logs / f"launcher{k}.err", "w") as err:
            procs.append(
                subprocess.Popen(
                    cmd,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    text=True,
                    start_new_session=True,
                )
            )
    deadline = time.monotonic() + timeout
    failed: str | None = None
    try:
        while failed is None and any(p.poll() is None for p in procs):
            for k, p in enumerate(procs):
                if p.poll() not in (None, 0):
                    failed = f"launcher {k} exited {p.returncode}"
            if time.monotonic() > deadline:
                failed = f"timed out after {timeout:.0f} s"
            time.sleep(0.2)
        if failed is None:
            bad = [k for k, p in enumerate(procs) if p.returncode != 0]
            failed = f"launcher {bad[0]} exited {procs[bad[0]].returncode}" if bad else None
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)  # a launcher and its workers
                p.wait()
    if failed is not None:
        text = "\n".join(
            f"== launcher {k}\n" + error_lines((logs / f"launcher{k}.err").read_text())
            for k in range(len(procs))
        )
        raise AssertionError(f"{failed}\n{text}")
