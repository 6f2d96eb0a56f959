"""Where ``musegen data prepare`` runs its per-file work: local processes, or a Ray cluster.

The work is the same either way: :func:`musegen.data.dataset.chunk_arrays` loads and encodes a
chunk of pieces (``Source.load_many``, ``Tokenizer.encode_many``) in a worker set up with the
source and the tokenizer. Locally the workers are forked processes that write their chunk
files themselves (:func:`musegen.data.dataset._run_chunks`). With ``--engine ray`` each chunk
is a Ray task: the task returns the chunk's arrays and this process writes the chunk file, so
the workers need to read the source's files (a shared file system, or a source that fetches
them) but not to write anywhere. Chunks, keys and cache are the local run's, so the dataset
written is the same file for file, and a run stopped half-way resumes from the chunks done,
whichever engine ran them.

Why Ray rather than Dask: the work is a bag of independent tasks of a few milliseconds to a
second each with numpy results, which is Ray's task model as it is (no dataframe, no graph);
its scheduler handles tens of thousands of small tasks, a task on a node that dies is run
again elsewhere (``max_retries``), and the same code runs on a laptop (``ray.init()`` starts a
local cluster) and on a cluster (``RAY_ADDRESS``). Ray is an extra (``pip install
musegen[cluster]``), imported only when ``--engine ray`` is asked for.

A chunk whose task fails for good (its worker died three times, say) does not stop the run:
its pieces are listed as failures with the reason, and are tried again on the next run, as
unexpected errors are locally.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from musegen.data.sources.base import Piece
from musegen.errors import MusegenError

ENGINES = ("local", "ray")
IN_FLIGHT_PER_CPU = 2  # tasks queued per cluster CPU: enough to keep it busy, memory bounded

Chunk = list[tuple[str, Piece]]
Runner = Callable[[Iterable[Chunk], tuple[Any, ...], int], Iterator[Any]]


def chunk_runner(engine: str) -> Runner:
    """The function that runs chunks for ``engine`` (``local`` or ``ray``)."""
    if engine == "local":
        from musegen.data.dataset import _run_chunks

        return _run_chunks
    if engine == "ray":
        return run_chunks_on_ray
    raise MusegenError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise MusegenError(
            "--engine ray needs Ray: pip install 'musegen[cluster]' (or pip install ray)"
        ) from e
    return ray


def connect(ray: Any, workers: int) -> bool:
    """Join the cluster at ``RAY_ADDRESS``, or start a local one with ``workers`` CPUs;
    True when this call started Ray (and so should stop it). A Ray already started in this
    process (by a test, a notebook) is used as it is."""
    if ray.is_initialized():
        return False
    address = os.environ.get("RAY_ADDRESS")
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=workers, **options)
    return True


# --------------------------------------------------------------------------- the task
_READY: dict[str, Any] = {}  # in a Ray worker: which run's source and tokenizer it holds


def encode_on_worker(run: str, init_args: tuple[Any, ...], chunk: Chunk) -> tuple[Any, Any]:
    """A Ray task: the local per-file work of one chunk; returns its arrays (or None) and the
    unexpected failures. A worker sets itself up once per run (``run`` names it)."""
    from musegen.data import dataset

    if _READY.get("run") != run:
        dataset._init_worker(*init_args)
        _READY["run"] = run
    return dataset.chunk_arrays(chunk)


def run_chunks_on_ray(
    chunks: Iterable[Chunk], init_args: tuple[Any, ...], workers: int
) -> Iterator[Any]:
    """Encode ``chunks`` as Ray tasks; yield a :class:`~musegen.data.dataset.ChunkResult`
    for each as it finishes (chunk files written here). Chunks are taken from ``chunks``
    (which may be listing the source as it goes) only as tasks finish."""
    from musegen.data.dataset import chunk_result

    todo = iter(chunks)
    first = next(todo, None)
    if first is None:
        return
    ray = import_ray()
    started = connect(ray, workers)
    try:
        task = ray.remote(max_retries=3)(encode_on_worker)
        folder = Path(init_args[3])
        shared = ray.put(init_args)  # the source and tokenizer go to the cluster once
        run = f"{os.getpid()}-{id(todo)}-{folder}"
        cpus = max(1, int(ray.cluster_resources().get("CPU", workers)))
        limit = max(workers, cpus) * IN_FLIGHT_PER_CPU
        pending: dict[Any, Chunk] = {task.remote(run, shared, first): first}
        while True:
            for chunk in islice(todo, limit - len(pending)):
                pending[task.remote(run, shared, chunk)] = chunk
            if not pending:
                break
            done, _ = ray.wait(list(pending), num_returns=1)
            chunk = pending.pop(done[0])
            try:
                arrays, transient = ray.get(done[0])
            except Exception as e:  # the task failed for good: its pieces are failures
                reason = f"ray task failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
                arrays, transient = None, {key: reason for key, _piece in chunk}
            yield chunk_result(folder, arrays, transient)
    finally:
        if started:
            ray.shutdown()
