"""Dataset preparation throughput, musegen vs MidiTok, on the Bach chorales as MIDI files.

Ours: ``prepare_dataset`` on a folder source (hashing, reading with symusic, REMI encoding in
2 worker processes, writing the memmap files and manifest), timed end to end.

* cold: the output folder (and so the cache) removed before each run;
* warm: the same call again on the unchanged folder (a fresh source object, so the files are
  hashed again, as in a new ``musegen data prepare`` run).

Peer: for each file ``symusic.Score(path)`` then ``miditok.REMI(config).encode(score)`` with
the config of ``benchmarks/tokenizer_speed.py`` (matched to our REMI defaults), in one process as
MidiTok users do, and in 2 processes (the same parallelism as ours) for a like-for-like
figure. Files/s over the whole folder; best of three runs each.

    .venv/bin/python benchmarks/prepare.py      # needs: pip install -e ".[bench]"
"""

from __future__ import annotations

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
REPEATS = 3


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
    """Best wall time of REPEATS runs, and the CPU seconds that run took."""
    best = (float("inf"), 0.0)
    for _ in range(REPEATS):
        if setup is not None:
            setup()
        c, t = _cpu_seconds(), time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - t, _cpu_seconds() - c))
    return best


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
    out = work / "ds"
    try:
        manifest = _ours(CACHE, out)  # also warms the OS file cache and imports
        n_files = len(files)
        n_ok = len(manifest.pieces)  # type: ignore[attr-defined]
        print(
            f"# {n_files} chorale MIDI files ({n_ok} prepared), {os.cpu_count()} cores, "
            f"{WORKERS} workers, miditok {version('miditok')}",
            file=sys.stderr,
        )
        cold = _best(lambda: _ours(CACHE, out), setup=lambda: shutil.rmtree(out, True))
        warm = _best(lambda: _ours(CACHE, out))
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
