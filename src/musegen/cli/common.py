"""Helpers shared by CLI commands: output, batch loading with skip-and-report."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from musegen.errors import MusegenError


def progress(items: Iterable[Any], total: int, desc: str, min_items: int = 20) -> Iterable[Any]:
    """A tqdm bar on stderr when the job is long enough to need one."""
    if total < min_items:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc=desc, unit="file", file=sys.stderr, leave=False)


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


def require(condition: bool, message: str) -> None:
    if not condition:
        raise MusegenError(message)
