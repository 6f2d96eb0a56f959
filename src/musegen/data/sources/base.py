"""What every data source provides: a list of pieces with their split, and a loader.

A source is one small module per corpus (its citation, licence and file checksums beside the
code). ``pieces()`` is cheap (no parsing); ``load(piece)`` gives the :class:`Score`. Sources of
piano rolls also give ``roll(piece)`` for frame models.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from musegen.errors import MusegenError
from musegen.score import Score

SPLITS = ("train", "valid", "test")
SPLIT_RULE = "first 8 bytes of sha256(key), big-endian, % 100: 0-79 train, 80-89 valid, 90-99 test"


@dataclass(frozen=True)
class Piece:
    """One piece of a source: a stable id, its split, where it comes from, a content hash."""

    id: str
    split: str
    origin: str
    sha256: str = ""


class Source(ABC):
    """Base class of a corpus source; subclasses fill in the class facts and two methods."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    license: ClassVar[str] = ""
    has_rolls: ClassVar[bool] = False
    #: published checksums of the files the source reads, file name -> "md5:..." / "sha256:..."
    checksums: ClassVar[dict[str, str]] = {}

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else None

    @abstractmethod
    def pieces(self) -> list[Piece]: ...

    @abstractmethod
    def load(self, piece: Piece) -> Score: ...

    def iter_pieces(self) -> Iterator[Piece]:
        """The pieces of :meth:`pieces`, in its order, one at a time. A source of very many
        files may list them as it goes instead of holding the list (``data prepare`` reads
        them this way, so that its memory does not grow with the corpus)."""
        return iter(self.pieces())

    def load_many(self, pieces: list[Piece]) -> list[Score | Exception]:
        """``load`` of each piece, with the exception it raised in place of a score it could
        not load. A source may load many pieces at once faster than one by one."""
        out: list[Score | Exception] = []
        for piece in pieces:
            try:
                out.append(self.load(piece))
            except Exception as e:  # the caller sorts bad input from other failures
                out.append(e)
        return out

    def preload(self) -> None:
        """Import what ``load`` needs; called before worker processes fork, so that they
        inherit the modules instead of each importing them again. Optional."""
        return None  # sources import lazily in load by default

    def roll(self, piece: Piece) -> np.ndarray:
        """Binary piano roll [frames, 88] (MIDI 21..108), for sources that have one."""
        raise MusegenError(f"source {self.name!r} has no piano rolls")

    @classmethod
    def fetch(cls, root: str | Path | None = None, **options: object) -> Path:
        """Download the corpus into ``root``; only sources too large to ship have to."""
        raise MusegenError(
            f"source {cls.name!r} has nothing to download: it ships with musegen or music21, "
            "or reads a folder you give it"
        )

    def splits(self) -> dict[str, list[Piece]]:
        out: dict[str, list[Piece]] = {s: [] for s in SPLITS}
        for p in self.pieces():
            out.setdefault(p.split, []).append(p)
        return out

    def scores(self, split: str | None = None) -> Iterator[tuple[Piece, Score]]:
        for p in self.pieces():
            if split is None or p.split == split:
                yield p, self.load(p)


def shared_data_dir() -> Path | None:
    """The benchmark data folder: ``$MUSEGEN_DATA``, else ``shared/data`` in cwd or above it,
    else beside a source checkout of musegen."""
    env = os.environ.get("MUSEGEN_DATA")
    if env:
        return Path(env)
    here = Path.cwd().resolve()
    checkout = Path(__file__).resolve().parents[4]  # src/musegen/data/sources/base.py
    for base in (here, *here.parents, checkout.parent):
        if (base / "shared" / "data").is_dir():
            return base / "shared" / "data"
    return None


def data_home() -> Path:
    """Where downloaded corpora go by default: ``$MUSEGEN_HOME``, else ``~/.cache/musegen``."""
    env = os.environ.get("MUSEGEN_HOME")
    return Path(env) if env else Path.home() / ".cache" / "musegen"


def hash_split(key: str) -> str:
    """The split of a piece from a hash of a stable key (its id or content hash): 80/10/10.

    Depends on nothing but the key, so a piece never changes split when others are added.
    """
    bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % 100
    return "train" if bucket < 80 else "valid" if bucket < 90 else "test"


def find_file(root: Path | None, filename: str, subdir: str) -> Path | None:
    """A data file: ``root`` itself if it is a file, else ``root/filename`` or
    ``root/subdir/filename``; without ``root``, ``shared_data_dir()/subdir/filename``.

    None when no ``root`` was given and the shared folder lacks the file; an explicit
    ``root`` without it is an error.
    """
    if root is None:
        shared = shared_data_dir()
        path = shared / subdir / filename if shared else None
        return path if path is not None and path.is_file() else None
    if root.is_file():
        return root
    for path in (root / filename, root / subdir / filename):
        if path.is_file():
            return path
    raise MusegenError(f"{root}: no {filename} there (nor in {subdir}/)")


def check_md5(path: Path, expected: str) -> None:
    """Raise if ``path`` is not the published file (a different version or a corrupt copy)."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    if h.hexdigest() != expected:
        raise MusegenError(
            f"{path}: MD5 {h.hexdigest()} differs from the published {expected}; "
            "this is not the file the benchmark splits were published with"
        )


def folder_entries(folder: str | os.PathLike[str]) -> list[tuple[str, str, bool]]:
    """``(name, path, is a folder)`` of a folder's entries, as ``os.walk`` sees them: an
    unreadable folder has none, an entry whose type cannot be read is a file, and a link to
    a folder is left out (not followed)."""
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
        return []
    out = []
    for e in entries:
        try:
            is_dir = e.is_dir()
        except OSError:
            is_dir = False
        if not (is_dir and e.is_symlink()):
            out.append((e.name, e.path, is_dir))
    return out
