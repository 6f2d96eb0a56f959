"""``generate --num N`` in batches that a kill cannot undo.

Pieces are drawn :data:`BATCH` at a time and each batch's files are written (atomically) as
soon as it is done, so a run stopped part-way (Ctrl-C, ``kill -9``, a full disk) loses one
batch at most. ``OUT/.NAME.resume.json`` records the command, its seed and the batches
written; the same command again (the same options; with no ``--seed`` the recorded one is
taken) skips those batches and writes what an uninterrupted run writes. The record goes
when the run is complete.

Batch 0 draws with the run's seed, so up to :data:`BATCH` pieces are exactly what one batch
always was; batch ``b`` draws with a seed made from ``(seed, b)``, so every batch's pieces
depend on the seed and their index only, never on which batches ran in this process.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from musegen.cli.common import write_piece_files

BATCH = 16  # pieces drawn together (one batch of the sampler)


def record_path(out: str | Path, name: str) -> Path:
    return Path(out) / f".{name}.resume.json"


def batch_seed(seed: int, batch: int) -> int:
    """Batch 0: the run's seed; batch b: a seed made from (seed, b), below 2**31."""
    if batch == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed, batch]).generate_state(1)[0] >> 1)


def read_record(out: str | Path, name: str, command: dict[str, Any]) -> dict[str, Any] | None:
    """The record of an interrupted run of ``command`` writing ``OUT/NAME``, or None (none,
    another command's, or unreadable)."""
    try:
        record = json.loads(record_path(out, name).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("command") != _jsonable(command):
        return None
    return record


def generate_batches(
    generator: Any,
    request: Any,
    out: str | Path,
    name: str,
    render: str,
    command: dict[str, Any],
) -> tuple[list[Path], dict[str, Any]]:
    """Ask ``generator`` for ``request.num`` pieces, batch by batch, writing each batch's
    files; skip the batches an interrupted run of ``command`` (options as JSON, the seed
    apart) wrote with the same seed. Returns every file and the settings of batch 0 (with
    each batch's seed when there are several)."""
    import torch

    num, seed = request.num, request.seed
    for stale in Path(out).glob(f".{name}*.tmp"):  # what a killed run was writing
        stale.unlink(missing_ok=True)
    if num <= BATCH:  # one batch, as ever: nothing to record
        result = generator.generate(request)
        return write_piece_files(result.pieces, out, name, render, total=len(result.pieces)), (
            result.settings
        )
    batches = math.ceil(num / BATCH)
    path = record_path(out, name)
    record = read_record(out, name, command)
    if record is None or record.get("seed") != seed:
        record = {"command": _jsonable(command), "seed": seed, "settings": None, "done": {}}
    done: dict[str, list[str]] = {
        b: files for b, files in record["done"].items() if all(Path(f).exists() for f in files)
    }
    if done:
        kept = sum(min(BATCH, num - int(b) * BATCH) for b in done)
        print(f"resuming: {kept} of {num} pieces were written before (seed {seed})")
    else:
        print(
            f"{num} pieces in {batches} batches of up to {BATCH}; if stopped, the same "
            "command again goes on from the last batch written"
        )
    record["done"] = done
    _write_record(path, record)  # the seed is kept from the start
    written: list[Path] = []
    for b in range(batches):
        lo, hi = b * BATCH, min(num, (b + 1) * BATCH)
        if str(b) in done:
            written += [Path(f) for f in done[str(b)]]
            continue
        if b:
            torch.manual_seed(batch_seed(seed, b))  # batch 0 goes on from the run's seeding
        result = generator.generate(replace(request, num=hi - lo, seed=batch_seed(seed, b)))
        files = write_piece_files(result.pieces, out, name, render, first=lo + 1, total=num)
        written += files
        if b == 0:
            record["settings"] = result.settings
        done[str(b)] = [str(f) for f in files]
        record["done"] = done
        _write_record(path, record)
    settings = dict(record["settings"] or {})
    settings["batch_seeds"] = [batch_seed(seed, b) for b in range(batches)]
    return written, settings


def finish(out: str | Path, name: str) -> None:
    """The run is complete: its record goes."""
    record_path(out, name).unlink(missing_ok=True)


def _write_record(path: Path, record: dict[str, Any]) -> None:
    from musegen.utils import atomic_write_text

    atomic_write_text(path, json.dumps(record, default=str))


def _jsonable(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (so a record compares equal to a command)."""
    return json.loads(json.dumps(obj, default=str))
