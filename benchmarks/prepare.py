"""Dataset preparation throughput, musegen vs MidiTok, on the Bach chorales as MIDI files.

Ours: ``prepare_dataset`` on a folder source (hashing, reading with symusic, REMI encoding in
2 worker processes, writing the memmap files and manifest), timed end to end, in a fresh
(spawned) Python process that has imported musegen and nothing else, like the process of
``musegen data prepare``: not in this one, which holds MidiTok, torch and music21 (a larger
process to fork workers from, and modules no musegen run has loaded).

* cold: the output folder (and so the cache) removed before each run;
* warm: the same call again on the unchanged folder (a fresh source object, so the files are
  hashed again, as in a new ``musegen data prepare`` run).

Peer: for each file ``symusic.Score(path)`` then ``miditok.REMI(config).encode(score)`` with
the config of ``benchmarks/tokenizer_speed.py`` (matched to our REMI defaults), in one process as
MidiTok users do, and in 2 processes (the same parallelism as ours) for a like-for-like
figure. Files/s over the whole folder; best of five runs each, of wall time and (apart) of
CPU seconds, which count every process of a run (workers included): files per CPU-second
are the figure a loaded machine disturbs least.

    .venv/bin/python benchmarks/prepare.py      # needs: pip install -e ".[bench]"
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import version
from pathlib import Path

from _corpus import CACHE, bach_midi_files, emit
from tokenizer_speed import miditok_config

WORKERS = 2
REPEATS = 5


def _peer_config():  # type: ignore[no-untyped-def]
    """The MidiTok config of benchmarks/tokenizer_speed.py, matched to our REMI defaults."""
    return miditok_config()


_PEER: dict[str, object] = {}


def _peer_encode(paths: list[str]) -> int:
    """MidiTok: read each file with symusic and REMI-encode it; returns the token count."""
    import symusic

    if "tok" not in _PEER:
        import miditok

        _PEER["tok"] = miditok.REMI(_peer_config())
    tok = _PEER["tok"]
    n = 0
    for p in paths:
        seq = tok.encode(symusic.Score(p))  # type: ignore[attr-defined]
        n += len(seq.ids)
    return n


def _peer_parallel(paths: list[str], workers: int) -> int:
    chunks = [paths[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        return sum(pool.map(_peer_encode, chunks))


def _ours(folder: Path, out: Path) -> object:
    from musegen.data.dataset import prepare_dataset
    from musegen.data.sources import get_source
    from musegen.tokenizers import get_tokenizer

    source = get_source("folder", root=folder)
    return prepare_dataset(source, get_tokenizer("remi"), out, workers=WORKERS, progress=False)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _best(fn, setup=None) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Best wall time and best CPU seconds of REPEATS runs (each the least disturbed by the
    other load of a shared machine; they may come from different runs)."""
    wall, cpu = float("inf"), float("inf")
    for _ in range(REPEATS):
        if setup is not None:
            setup()
        c, t = _cpu_seconds(), time.perf_counter()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, _cpu_seconds() - c)
    return wall, cpu


def _ours_runs(folder: str, out: str) -> tuple[int, tuple[float, float], tuple[float, float]]:
    """In the spawned process: one warm-up run, then (pieces, best cold, best warm)."""
    manifest = _ours(Path(folder), Path(out))  # also warms the OS file cache and imports
    cold = _best(lambda: _ours(Path(folder), Path(out)), setup=lambda: shutil.rmtree(out, True))
    warm = _best(lambda: _ours(Path(folder), Path(out)))
    return len(manifest.pieces), cold, warm  # type: ignore[attr-defined]


def _ours_fresh(folder: Path, out: Path) -> tuple[int, tuple[float, float], tuple[float, float]]:
    """:func:`_ours_runs` in a new interpreter (see the module docstring)."""
    with ProcessPoolExecutor(1, mp.get_context("spawn")) as pool:
        return pool.submit(_ours_runs, str(folder), str(out)).result()


def main() -> int:
    try:
        import miditok  # noqa: F401
        import symusic  # noqa: F401
    except ImportError:
        print("benchmarks/prepare.py needs MidiTok: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    files = bach_midi_files()
    paths = [str(f) for f in files]
    # the folder source reads the whole cache folder: it must hold exactly these files
    assert sorted(Path(p).name for p in paths) == sorted(p.name for p in CACHE.glob("*.mid"))
    work = Path(tempfile.mkdtemp(prefix="musegen-bench-prepare-"))
    try:
        n_ok, cold, warm = _ours_fresh(CACHE, work / "ds")
        n_files = len(files)
        print(
            f"# {n_files} chorale MIDI files ({n_ok} prepared), {os.cpu_count()} cores, "
            f"{WORKERS} workers, miditok {version('miditok')}, "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
            file=sys.stderr,
        )
        _peer_encode(paths[:5])
        peer1 = _best(lambda: _peer_encode(paths))
        peer2 = _best(lambda: _peer_parallel(paths, WORKERS))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def row(name: str, ours: tuple[float, float], peer: tuple[float, float], workers: int) -> None:
        # files per CPU-second: a figure the load of a shared machine disturbs less
        emit(name, n_files / ours[0], n_files / peer[0], "files/s", peer_workers=workers,
             ours_files_per_cpu_s=round(n_files / ours[1], 1),
             peer_files_per_cpu_s=round(n_files / peer[1], 1))  # fmt: skip

    row("prepare.cold_vs_miditok_remi", cold, peer1, 1)
    row("prepare.cold_vs_miditok_remi_2proc", cold, peer2, WORKERS)
    row("prepare.warm_vs_miditok_remi", warm, peer1, 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
