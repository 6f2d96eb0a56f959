"""Helpers shared by CLI commands: output, batch loading with skip-and-report, and the one
writer of generated pieces (``generate``, ``compose``, ``harmonize``, ``infill``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from musegen.errors import MusegenError


def progress(items: Iterable[Any], total: int, desc: str, min_items: int = 20) -> Iterable[Any]:
    """Progress on stderr (:func:`musegen.utils.progress`) when the job is long enough to
    need it."""
    if total < min_items:
        return items
    from musegen.utils import progress as show

    return show(items, total=total, desc=desc, unit="file", leave=False)


THREADS_HELP = (
    "CPU threads for PyTorch (default: $OMP_NUM_THREADS if set, else the cores this "
    "process may use)"
)


@contextmanager
def command_threads(threads: int | None) -> Iterator[int]:
    """Run a command with PyTorch on ``threads`` CPU threads (None: ``$OMP_NUM_THREADS`` if
    set, else :func:`musegen.utils.usable_cores`, not torch's own default of every physical
    core of the machine); yields the count.

    torch is imported only by the commands that need it: where it is not loaded yet,
    ``OMP_NUM_THREADS`` tells it the count when it loads (and any process the command
    starts). The environment, and torch's count if it was loaded before, are restored after.
    """
    from musegen.utils import usable_cores

    if threads is not None and threads < 1:
        raise MusegenError(f"--threads must be >= 1, got {threads}")
    env = os.environ.get("OMP_NUM_THREADS")
    if threads is None and env and env.strip().isdigit() and int(env) >= 1:
        count = int(env)
    else:
        count = threads or usable_cores()
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    os.environ["OMP_NUM_THREADS"] = str(count)
    if torch is not None:
        torch.set_num_threads(count)
    try:
        yield count
    finally:
        if env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env
        if torch is not None and before is not None:
            torch.set_num_threads(before)


def load_batch(
    sources: list[str], desc: str = "reading"
) -> tuple[list[tuple[str, Any]], list[str]]:
    """Load each source; return the good (source, Score) pairs and one error line per bad one.

    Bad files never stop the batch; callers print the failures and exit 2 at the end.
    """
    from musegen.io import load

    good, bad = [], []
    for src in progress(sources, len(sources), desc):
        try:
            good.append((src, load(src)))
        except MusegenError as e:
            bad.append(str(e))
    return good, bad


def report_failures(bad: list[str], command: str) -> int:
    """Print one line per failed input to stderr; the exit code for the batch."""
    for line in bad:
        sys.stderr.write(f"musegen {command}: skipped {line}\n")
    if bad:
        sys.stderr.write(f"musegen {command}: {len(bad)} input(s) failed\n")
        return 2
    return 0


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def at_least_one(text: str) -> int:
    """argparse type of a count (pieces, bars, tokens): an integer >= 1, anything else one
    line from argparse (exit 2) before any work starts."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def require(condition: bool, message: str) -> None:
    if not condition:
        raise MusegenError(message)


def write_pieces(
    pieces: list[Any], out: str | Path, name: str, settings: dict[str, Any], render: str = ""
) -> list[Path]:
    """Write generated pieces and how they were made; return the files written.

    Each :class:`~musegen.score.Score` goes to ``OUT/NAME.mid`` (``NAME_1.mid``, ``NAME_2.mid``
    ... when there are several) with any ``render`` kinds beside it (e.g. ``"wav,png"``), then
    ``settings`` plus the list of ``files`` and, under ``render``, how each render was made
    (synthesizer, SoundFont, engraver) to ``OUT/NAME.json``. Every file is written
    atomically, so a reader never sees half of one. A NAME may hold dots
    (``bwv66.6_harmonized``): suffixes are added, never replaced. Prints one line per piece
    and a last one with the seed (``settings["seed"]``; None: deterministic), the model and
    time taken when the settings name them, and where the settings are, so every command that
    writes music reports alike and any run can be repeated from what it printed.
    """
    written = write_piece_files(pieces, out, name, render, total=len(pieces))
    write_settings(out, name, settings, written, render)
    return written


def write_piece_files(
    pieces: list[Any], out: str | Path, name: str, render: str = "", first: int = 1, total: int = 1
) -> list[Path]:
    """Write ``pieces`` as pieces ``first``, ``first + 1`` ... of ``total`` (``NAME_i.mid``, or
    ``NAME.mid`` when ``total`` is 1) with their renders; one line each; the files written."""
    from musegen.io import save

    folder = Path(out)
    kinds = [k for k in render.split(",") if k.strip()]
    written: list[Path] = []
    for i, score in enumerate(pieces, first):
        stem_name = f"{name}_{i}" if total > 1 else name
        stem = folder / stem_name
        midi = stem.with_name(f"{stem_name}.mid")
        save(score, midi)
        files = [midi]
        if kinds:
            from musegen.render import render_outputs

            files += render_outputs(score, stem, kinds)
        written += files
        seconds = score.duration_seconds()
        print(f"wrote {', '.join(map(str, files))} ({score.n_notes} notes, {seconds:.1f} s)")
    return written


def write_settings(
    out: str | Path, name: str, settings: dict[str, Any], written: list[Path], render: str = ""
) -> Path:
    """``settings``, the ``files`` written and how the ``render`` kinds were made to
    ``OUT/NAME.json`` (atomically), and the summary line of :func:`write_pieces`; returns the
    JSON file's path."""
    from musegen.utils import atomic_write_text

    path = Path(out) / f"{name}.json"
    record = {**settings, "files": [str(w) for w in written]}
    kinds = [k for k in render.split(",") if k.strip()]
    if kinds:  # which synthesizer and SoundFont played the WAV, which engraver drew the PDF
        from musegen.render import describe_outputs

        record["render"] = describe_outputs(kinds)
    atomic_write_text(path, json.dumps(record, indent=2, default=str))
    seed = settings.get("seed")
    summary = [f"seed {'none (deterministic)' if seed is None else seed}"]
    if settings.get("model"):
        summary.append(f"model {settings['model']}")
    if settings.get("seconds_taken") is not None:
        summary.append(f"{settings['seconds_taken']:.1f} s")
    print("; ".join([*summary, f"settings in {path}"]))
    return path
