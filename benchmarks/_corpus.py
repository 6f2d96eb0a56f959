"""Benchmark inputs: music21's Bach chorales as MIDI files, converted once and cached.

music21 converts only a few files per second, so the MIDI files are kept under
``.cache/bach_midi/`` (git-ignored), named by a hash of the source file's bytes.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bach_midi"


def _convert(args: tuple[str, str]) -> str | None:
    src, dst = args
    from musegen.errors import MusegenError
    from musegen.io import load, save

    try:
        save(load(src), dst)
        return dst
    except MusegenError as e:
        print(f"skip {src}: {e}", file=sys.stderr)
        return None


def bach_midi_files(workers: int = 2) -> list[Path]:
    """Every Bach chorale of music21's corpus (MusicXML) as a cached MIDI file."""
    from music21 import corpus

    sources = sorted(p for p in corpus.getComposer("bach") if p.suffix in (".mxl", ".xml"))
    CACHE.mkdir(parents=True, exist_ok=True)
    jobs = []
    for src in sources:
        digest = hashlib.sha1(src.read_bytes()).hexdigest()[:10]
        dst = CACHE / f"{src.stem}-{digest}.mid"
        jobs.append((str(src), str(dst)))
    todo = [j for j in jobs if not Path(j[1]).exists()]
    if todo:
        print(f"converting {len(todo)} chorales to MIDI (cached in {CACHE})", file=sys.stderr)
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_convert, todo, chunksize=8))
    return [Path(d) for _, d in jobs if Path(d).exists()]


def best_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """Best wall time of ``repeats`` runs (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def emit(
    benchmark: str,
    ours: float,
    peer: float,
    unit: str,
    higher_is_better: bool = True,
    **extra: object,
) -> None:
    """Print one JSON line; ratio > 1 means musegen is better."""
    ratio = ours / peer if higher_is_better else peer / ours
    row = {
        "benchmark": benchmark,
        "ours": round(ours, 3),
        "peer": round(peer, 3),
        "ratio": round(ratio, 3),
        "unit": unit,
    }
    row.update(extra)
    print(json.dumps(row), flush=True)
