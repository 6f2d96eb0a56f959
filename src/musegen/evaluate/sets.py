"""Sets of pieces to evaluate, named by references (:mod:`musegen.data.refs`: files, folders,
prepared datasets, ``source:NAME[:SPLIT]``, ``corpus:...``).

A folder gives every file in it, copies included: an evaluation counts what a generator wrote.
Pieces that cannot be read are skipped and listed with the reason, so one bad file does not
stop an evaluation.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from musegen.data.refs import resolve
from musegen.errors import MusegenError
from musegen.render.common import check_bars
from musegen.score import Score

MAX_BARS = 5000
"""Longest piece evaluated (bar self-similarity is quadratic in bars, chords are per beat)."""


@dataclass
class PieceSet:
    """Named scores from one or more references, and the pieces that failed (with reasons)."""

    name: str
    pieces: list[tuple[str, Score]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pieces)

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.pieces]

    @property
    def scores(self) -> list[Score]:
        return [s for _, s in self.pieces]


def load_set(
    specs: str | Iterable[str],
    split: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    progress: bool = False,
    name: str | None = None,
) -> PieceSet:
    """Load the pieces that ``specs`` name into one set; ``split`` picks the split of sources
    and prepared datasets whose reference names none (None: every split).

    ``limit`` keeps a seeded random choice of that many pieces (in their original order), so
    large references stay quick; ``progress`` shows a bar on stderr.
    """
    specs = [specs] if isinstance(specs, str) else list(specs)
    refs = [ref for spec in specs for ref in resolve(spec, split)]
    if limit is not None and len(refs) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(refs), size=limit, replace=False))
        refs = [refs[i] for i in keep]
    out = PieceSet(name or ", ".join(specs))
    for ref in _progress(refs, progress, f"reading {out.name}"):
        try:
            score = ref.load()
        except MusegenError as e:
            out.failures.append((ref.name, str(e)))
            continue
        if score.is_empty():
            out.failures.append((ref.name, "no notes"))
            continue
        try:  # a stray note days after the music: per-bar figures would take all the memory
            check_bars(score, MAX_BARS, "evaluation")
        except MusegenError as e:
            out.failures.append((ref.name, str(e)))
            continue
        out.pieces.append((ref.name, score))
    return out


def _progress(items: list, enabled: bool, desc: str) -> Iterable:  # type: ignore[type-arg]
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc[:40], unit="piece", file=sys.stderr, leave=False)
