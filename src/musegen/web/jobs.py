"""A bounded pool of worker processes for the studio's jobs: a queue and a time limit.

Generation, parsing an upload and rendering run in worker processes, never in the server's
own: a job over its time limit is stopped by ending its process (a thread could not be
stopped), and a fresh worker takes its place. ``workers`` jobs run at once, at most
``queue`` more wait; one more is refused at once (:class:`PoolBusy`, HTTP 503), so a client
that sends many requests cannot grow the server's memory or hold the others back for long.

Each worker is a fresh Python process (``python -m musegen.web.tasks``: no fork of a threaded
server, no re-import of the caller's script) running :func:`musegen.web.tasks.worker_main`:
it reads one JSON line ``[task, params]`` and answers one JSON line, ``["ok", result]`` or
``["error", status, message]``. Only JSON crosses the pipes.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from musegen.errors import MusegenError


class JobError(MusegenError):
    """A job that did not give a result; ``status`` is the HTTP status to answer with."""

    status = 500


class PoolBusy(JobError):
    status = 503


class JobTimeout(JobError):
    status = 504


class JobFailed(JobError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Worker:
    """One worker process (``python -m musegen.web.tasks``) and the parent's ends of its
    pipes: a JSON line per job each way."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "musegen.web.tasks", str(self.threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        self.process = None

    def call(self, task: str, params: dict[str, Any], limit: float) -> Any:
        """Run one job (blocking); restart the process when it runs over or dies."""
        assert self.process is not None and self.process.stdin and self.process.stdout
        try:
            self.process.stdin.write(json.dumps([task, params]).encode() + b"\n")
            self.process.stdin.flush()
            ready, _, _ = select.select([self.process.stdout], [], [], limit)
            line = self.process.stdout.readline() if ready else None
        except (OSError, ValueError):
            line = b""
        if line is None:
            self.restart()
            raise JobTimeout(f"the job ran over its time limit of {limit:g} s and was stopped")
        if not line:
            self.restart()
            raise JobFailed("the worker stopped while running the job; try again", 500)
        answer = json.loads(line)
        if answer[0] == "ok":
            return answer[1]
        _, status, message = answer
        raise JobFailed(message, status)

    def restart(self) -> None:
        self.stop()
        self.start()


class JobPool:
    """``workers`` processes, at most ``queue`` jobs waiting, ``time_limit`` seconds a job."""

    def __init__(
        self, workers: int = 1, queue: int = 16, time_limit: float = 120.0, threads: int = 1
    ) -> None:
        if workers < 1 or queue < 0 or time_limit <= 0:
            raise MusegenError("the job pool needs workers >= 1, queue >= 0, time limit > 0")
        self.size, self.queue, self.time_limit, self.threads = workers, queue, time_limit, threads
        self._workers: list[Worker] = []
        self._idle: asyncio.Queue[Worker] | None = None
        self._waiter = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="musegen-job")
        self._pending = 0
        self._lock = threading.Lock()
        self.done = 0
        self.failed = 0

    async def start(self, warm: tuple[str, dict[str, Any]] | None = None) -> Any:
        """Start the worker processes (in threads: each takes a while to import torch); with
        ``warm``, run that task on every worker first (loading what they share, so no request
        pays for it) and return the first worker's result."""
        loop = asyncio.get_running_loop()
        self._idle = asyncio.Queue()
        starts = [
            loop.run_in_executor(self._waiter, Worker, self.threads) for _ in range(self.size)
        ]
        self._workers = list(await asyncio.gather(*starts))
        results = [None]
        if warm is not None:
            task, params = warm
            calls = [
                loop.run_in_executor(self._waiter, w.call, task, params, self.time_limit)
                for w in self._workers
            ]
            results = await asyncio.gather(*calls)
        for worker in self._workers:
            self._idle.put_nowait(worker)
        return results[0]

    async def run(self, task: str, params: dict[str, Any], limit: float | None = None) -> Any:
        """Run ``task`` in a free worker (waiting in the queue for one); its result."""
        if self._idle is None:
            raise JobFailed("the job pool is not started", 500)
        with self._lock:
            if self._pending >= self.size + self.queue:
                raise PoolBusy(
                    f"the server is busy ({self._pending} jobs running or waiting); "
                    "try again in a moment"
                )
            self._pending += 1
        try:
            worker = await self._idle.get()
        except BaseException:
            self._release()
            raise
        loop = asyncio.get_running_loop()
        limit = min(limit or self.time_limit, self.time_limit)
        job = loop.run_in_executor(self._waiter, worker.call, task, params, limit)

        def finished(_: object) -> None:  # the worker is free only when its job is over,
            self._idle.put_nowait(worker)  # also when the client that asked has gone
            self._release()

        job.add_done_callback(finished)
        try:
            result = await asyncio.shield(job)
        except JobError:
            self.failed += 1
            raise
        self.done += 1
        return result

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1

    def stats(self) -> dict[str, Any]:
        return {
            "workers": self.size,
            "queue": self.queue,
            "time_limit_s": self.time_limit,
            "pending": self._pending,
            "done": self.done,
            "failed": self.failed,
        }

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()
        self._workers.clear()
        self._waiter.shutdown(wait=False, cancel_futures=True)
