"""Sets of pieces to evaluate, named by a reference string.

=================================  ============================================================
``source:NAME[:SPLIT]``            a corpus source (``musegen data sources``), e.g.
                                   ``source:bach:test``, ``source:jsb-satb:test``
``corpus:PATH``                    one piece of music21's corpus, e.g. ``corpus:bach/bwv66.6``
a prepared dataset folder          (it holds ``manifest.json``) its pieces, decoded from tokens
a folder                           every MIDI / MusicXML / ABC file under it (recursive),
                                   named by its path inside the folder
a file                             that one file
=================================  ============================================================

A ``split`` argument picks the split of a source or prepared dataset when the reference does
not name one (None: every split). Pieces that cannot be read are skipped and listed with the
reason, so one bad file does not stop an evaluation.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musegen.errors import MusegenError
from musegen.score import Score

SOURCE_PREFIX = "source:"


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


def _source_items(spec: str, split: str | None) -> Iterator[tuple[str, object]]:
    """(piece id, loader) pairs of ``source:NAME[:SPLIT]``."""
    from musegen.data.sources import SPLITS, get_source

    name, _, named_split = spec[len(SOURCE_PREFIX) :].partition(":")
    split = named_split or split
    if split and split not in SPLITS:
        raise MusegenError(f"{spec}: no split {split!r}; choose one of {', '.join(SPLITS)}")
    source = get_source(name)
    for piece in source.pieces():
        if split is None or piece.split == split:
            yield piece.id, lambda p=piece: source.load(p)


def _prepared_items(folder: Path, split: str | None) -> Iterator[tuple[str, object]]:
    from musegen.data.dataset import load_prepared

    data = load_prepared(folder)
    names = [split] if split else data.split_names
    tok = data.tokenizer
    for name in names:
        part = data.split(name)
        for i, entry in enumerate(part.entries):
            yield entry.id, lambda part=part, i=i: tok.decode(np.asarray(part.piece(i)))


def _file_items(paths: Iterable[Path], root: Path | None = None) -> Iterator[tuple[str, object]]:
    """Files by name: relative to ``root`` when they come from a folder."""
    from musegen.io import load

    for path in paths:
        name = path.relative_to(root).as_posix() if root is not None else str(path)
        yield name, lambda path=path: load(path)


def _items(spec: str, split: str | None) -> Iterator[tuple[str, object]]:
    from musegen.io import CORPUS_PREFIX, load

    if spec.startswith(SOURCE_PREFIX):
        return _source_items(spec, split)
    if spec.startswith(CORPUS_PREFIX):
        return iter([(spec, lambda: load(spec))])
    path = Path(spec)
    if path.is_dir() and (path / "manifest.json").exists():
        return _prepared_items(path, split)
    if path.is_dir():
        from musegen.data.sources.folder import Folder

        files = Folder(path).files()
        if not files:
            raise MusegenError(f"{spec}: no MIDI / MusicXML / ABC files in this folder")
        return _file_items(files, path)
    if path.exists():
        return _file_items([path])
    raise MusegenError(
        f"{spec}: no such file or folder; give files, a folder, a prepared dataset, "
        "source:NAME[:SPLIT] or corpus:NAME"
    )


def load_set(
    specs: str | Iterable[str],
    split: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    progress: bool = False,
    name: str | None = None,
) -> PieceSet:
    """Load the pieces that ``specs`` name (see the module docstring) into one set.

    ``limit`` keeps a seeded random choice of that many pieces (in their original order), so
    large references stay quick; ``progress`` shows a bar on stderr.
    """
    specs = [specs] if isinstance(specs, str) else list(specs)
    items = [item for spec in specs for item in _items(spec, split)]
    if limit is not None and len(items) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(items), size=limit, replace=False))
        items = [items[i] for i in keep]
    out = PieceSet(name or ", ".join(specs))
    for piece_id, loader in _progress(items, progress, f"reading {out.name}"):
        try:
            score = loader()  # type: ignore[operator]
        except MusegenError as e:
            out.failures.append((piece_id, str(e)))
            continue
        if score.is_empty():
            out.failures.append((piece_id, "no notes"))
            continue
        out.pieces.append((piece_id, score))
    return out


def _progress(items: list, enabled: bool, desc: str) -> Iterable:  # type: ignore[type-arg]
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc[:40], unit="piece", file=sys.stderr, leave=False)
