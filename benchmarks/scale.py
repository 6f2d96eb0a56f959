"""Scale by simulation: a generated corpus of 100,000 small MIDI files prepared into shards.

The files are made by code (``tests/shardhelpers.py``: 8 notes each, all different), nothing is
downloaded. Each run is ``musegen data prepare CORPUS -t remi --shards 16 -j 2`` in a fresh
process, cold (no output folder). Reported:

* files/s over the whole corpus (listing and hashing, reading, encoding, shards, manifest),
  against the issue's bar of 1,000 files/s on 2 cores, by the wall clock and by the CPU
  seconds of the command and its workers (two cores of one's own would do ``2 * files /
  CPU seconds`` at best: on a shared machine the wall clock also counts other work);
* peak memory: the largest sum of the proportional set sizes of the run's processes (the
  command and its workers, sampled every 50 ms), and the command's own, for corpora of 10,000,
  30,000 and 100,000 files, and how much of it grows per file (a line fitted through the
  three); then the same command again on the largest (warm: nothing to encode, nothing
  rewritten), its seconds and peak;
* the shard count;
* Ray's overhead per file: the same preparation of a smaller corpus with ``--engine ray`` on a
  local Ray cluster already started (its start-up time reported apart) against local worker
  processes, in this process, alternating (``_timing.interleaved``).

    .venv/bin/python benchmarks/scale.py [--files 100000] [--ray-files 5000]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _corpus import emit
from _timing import interleaved

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from shardhelpers import write_corpus

TARGET_FILES_PER_S = 1000.0  # the bar, on 2 cores


def _tree_memory(pid: int) -> int:
    """Proportional set size (shared pages split among their users, so forked workers do not
    count their parent's pages again) of ``pid`` and its descendants, in bytes (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def _own_memory(pid: int) -> int:
    """Proportional set size of ``pid`` alone, in bytes (Linux)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def prepare_run(
    corpus: Path, out: Path, shards: int, workers: int, cold: bool = True
) -> dict[str, float]:
    """One ``musegen data prepare`` in a fresh process (``cold``: no output folder yet):
    seconds, CPU seconds, peak memory of its processes and of the command alone."""
    if cold:
        shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "musegen", "data", "prepare", str(corpus), "-t", "remi"]
    cmd += ["--shards", str(shards), "-j", str(workers), "-o", str(out)]
    peak, own = [0], [0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_memory(proc.pid))
            own[0] = max(own[0], _own_memory(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - start
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command and its workers
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"prepare failed: {err[-2000:]}")
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_bytes": float(peak[0]),
        "own_peak_bytes": float(own[0]),
    }


def ray_overhead(corpus: Path, work: Path, workers: int, rounds: int) -> dict[str, float]:
    """Seconds per file of ``--engine ray`` minus local processes (cold runs, interleaved)."""
    import ray

    from musegen.data.dataset import prepare_dataset
    from musegen.data.sources import get_source
    from musegen.tokenizers import get_tokenizer

    t0 = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - t0
    tok = get_tokenizer("remi")

    def run(engine: str) -> None:
        out = work / engine
        shutil.rmtree(out, ignore_errors=True)
        source = get_source("folder", root=corpus)
        prepare_dataset(source, tok, out, workers=workers, progress=False, engine=engine)

    run("ray")  # workers imported and warm, as on a cluster that has been up a while
    times = interleaved({"local": lambda: run("local"), "ray": lambda: run("ray")}, rounds)
    ray.shutdown()
    n = sum(1 for _ in corpus.rglob("*.mid"))
    local = statistics.median(w for w, _ in times["local"])
    on_ray = statistics.median(w for w, _ in times["ray"])
    return {"files": n, "local_s": local, "ray_s": on_ray, "startup_s": startup}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--sizes", default="10000,30000", help="smaller corpora for memory")
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ray-files", type=int, default=5000, help="0: skip the Ray figure")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", help="folder for corpora and outputs (default: a temp one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="musegen-scale-"))
    load = os.getloadavg()[0]
    print(f"# load average before: {load:.2f} on {os.cpu_count()} CPUs", file=sys.stderr)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s] + [args.files]
        peaks, own = [], []
        for n in sizes:
            corpus = write_corpus(work / f"corpus{n}", n)
            r = prepare_run(corpus, work / f"out{n}", args.shards, args.workers)
            peaks.append(r["peak_bytes"])
            own.append(r["own_peak_bytes"])
            shards = len(list((work / f"out{n}").glob("*.tar")))
            rate, per_cpu = n / r["seconds"], n / r["cpu_seconds"]
            print(
                f"# {n} files: {r['seconds']:.1f} s, {rate:,.0f} files/s, "
                f"{r['cpu_seconds']:.1f} CPU s ({per_cpu:,.0f} files per CPU second), peak "
                f"{r['peak_bytes'] / 2**20:.0f} MiB (the command alone "
                f"{r['own_peak_bytes'] / 2**20:.0f} MiB), {shards} shards, "
                f"load {os.getloadavg()[0]:.1f}",
                file=sys.stderr,
            )
            if n == args.files:
                emit(
                    f"scale_prepare_{n}_files",
                    rate,
                    TARGET_FILES_PER_S,
                    "files/s",
                    workers=args.workers,
                    shards=shards,
                    seconds=round(r["seconds"], 1),
                    load=round(os.getloadavg()[0], 1),
                )
                # on a shared machine the wall time counts other people's work: what two
                # cores of our own would do, from the CPU seconds the run itself took
                emit(
                    f"scale_prepare_{n}_files_per_2_cpu_seconds",
                    2 * per_cpu,
                    TARGET_FILES_PER_S,
                    "files/s",
                    cpu_seconds=round(r["cpu_seconds"], 1),
                )
            if n == args.files:  # again, warm: the cache and the shards are there
                w = prepare_run(corpus, work / f"out{n}", args.shards, args.workers, cold=False)
                print(
                    f"# {n} files again (warm): {w['seconds']:.1f} s, {w['cpu_seconds']:.1f} "
                    f"CPU s, peak {w['peak_bytes'] / 2**20:.0f} MiB, "
                    f"load {os.getloadavg()[0]:.1f}",
                    file=sys.stderr,
                )
                emit(
                    f"scale_prepare_{n}_files_warm_seconds",
                    w["seconds"],
                    r["seconds"],
                    "s",
                    higher_is_better=False,
                    cpu_seconds=round(w["cpu_seconds"], 1),
                    peak_mib=round(w["peak_bytes"] / 2**20),
                )
            shutil.rmtree(work / f"out{n}", ignore_errors=True)
            if n != args.files:
                shutil.rmtree(corpus, ignore_errors=True)
        slope = statistics.linear_regression(sizes, peaks).slope if len(sizes) > 1 else 0.0
        emit(
            "scale_prepare_peak_memory",
            peaks[-1] / 2**20,
            peaks[0] / 2**20,
            "MiB",
            higher_is_better=False,
            files=sizes,
            peaks_mib=[round(p / 2**20) for p in peaks],
            command_peaks_mib=[round(p / 2**20) for p in own],
            bytes_per_file=round(slope),
        )
        if args.ray_files:
            corpus = work / f"corpus{args.ray_files}"
            write_corpus(corpus, args.ray_files)
            r = ray_overhead(corpus, work, args.workers, args.rounds)
            per_file = (r["ray_s"] - r["local_s"]) / r["files"]
            emit(
                "scale_ray_seconds_per_file",
                r["ray_s"] / r["files"] * 1e3,
                r["local_s"] / r["files"] * 1e3,
                "ms/file",
                higher_is_better=False,
                overhead_ms_per_file=round(per_file * 1e3, 4),
                files=r["files"],
                ray_startup_s=round(r["startup_s"], 1),
            )
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(f"# load average after: {os.getloadavg()[0]:.2f}", file=sys.stderr)


if __name__ == "__main__":
    main()
