"""Per-piece bookkeeping of a preparation kept on disk, so its memory does not grow with the
corpus: a preparation of 10,000 files and one of 1,000,000 hold the same few megabytes.

Two kinds of bookkeeping, two stores:

* **Lookups by content key** (is this piece encoded already, in which chunk, at which row?)
  go to SQLite (:class:`ChunkIndex`, :class:`KeySet`): Python's standard library has it, it
  answers a key in microseconds from an index on disk with a page cache of its own fixed
  size, and a transaction cut short by ``kill -9`` is rolled back when the file is opened
  again. Its bytes are not reproducible, which does not matter for a cache and a scratch set
  that may be deleted at any time.
* **Lists read front to back** (the manifest's pieces and failures, in the source's order)
  are JSON lines (:class:`JsonLinesWriter`, :class:`EntryList`): written by appending,
  readable with any tool (``head``, ``grep``, ``wc -l``, ``jq``), the same bytes for the same
  content (so a manifest can carry their checksum), and streamed back one line at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

from musegen.errors import MusegenError

T = TypeVar("T")
BLOCK = 500  # keys per query (SQLite allows 999 parameters in its oldest builds)
CACHE_KIB = 1024  # each connection's page cache: a fixed 1 MiB, whatever the corpus


# --------------------------------------------------------------------------- SQLite
def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), isolation_level=None)  # explicit transactions
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    db.execute("PRAGMA synchronous=OFF")  # a cache: a machine crash costs a rebuild at most
    db.execute("PRAGMA temp_store=FILE")
    return db


def _blocks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), BLOCK):
        yield items[i : i + BLOCK]


class ChunkIndex:
    """Which chunk file holds each content key, at which row, how long, and its outcome.

    The chunk files are the truth; this index is rebuilt from them when it is missing or
    damaged, and brought in line with them when it is opened (chunk files written by a run
    killed before it recorded them are indexed, rows of deleted files dropped).
    """

    def __init__(self, folder: Path, read_chunk: Callable[[Path], Any]) -> None:
        self.folder = folder
        self.path = folder / "index.sqlite"
        self._read_chunk = read_chunk  # path -> (keys, lengths, notes, errors) or None
        try:
            self.db = self._open()
        except sqlite3.DatabaseError:  # damaged: start again from the chunk files
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = _connect(self.path)
        db.execute("CREATE TABLE IF NOT EXISTS chunks (name TEXT PRIMARY KEY)")
        db.execute(
            "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, chunk TEXT NOT NULL, "
            "start INTEGER, length INTEGER, notes INTEGER, error TEXT)"
        )
        db.execute("CREATE INDEX IF NOT EXISTS entries_chunk ON entries (chunk)")
        self.db = db
        self._reconcile()
        return db

    def _reconcile(self) -> None:
        on_disk = {p.name for p in self.folder.glob("*.npz")}  # chunk names: ~1 per 64 pieces
        known = {name for (name,) in self.db.execute("SELECT name FROM chunks")}
        with self.transaction():
            for name in known - on_disk:
                self._forget(name)
        for name in sorted(on_disk - known):
            arrays = self._read_chunk(self.folder / name)
            if arrays is not None:
                self.add(name, *arrays)

    def transaction(self) -> Any:
        return _Transaction(self.db)

    def _forget(self, name: str) -> None:
        self.db.execute("DELETE FROM entries WHERE chunk = ?", (name,))
        self.db.execute("DELETE FROM chunks WHERE name = ?", (name,))

    def add(
        self,
        name: str,
        keys: list[str],
        lengths: list[int],
        notes: list[int],
        errors: list[str],
    ) -> None:
        """Record a chunk file's pieces (a key already recorded points here from now on)."""
        rows, start = [], 0
        for k, n, m, e in zip(keys, lengths, notes, errors, strict=True):
            rows.append((k, name, start, int(n), int(m), e))
            start += int(n)
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO chunks VALUES (?)", (name,))
            self.db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?)", rows)

    def lookup(self, keys: Sequence[str]) -> dict[str, tuple[str, int, int, int, str]]:
        """key -> (chunk name, start row, length, notes, error) for the keys recorded."""
        out = {}
        for block in _blocks(list(dict.fromkeys(keys))):
            marks = ",".join("?" * len(block))
            query = f"SELECT key, chunk, start, length, notes, error FROM entries WHERE key IN ({marks})"
            for key, *row in self.db.execute(query, list(block)):
                out[key] = tuple(row)
        return out  # type: ignore[return-value]

    def chunk_names(self) -> list[str]:
        return [name for (name,) in self.db.execute("SELECT name FROM chunks ORDER BY name")]

    def remove_chunks(self, names: Iterable[str]) -> None:
        with self.transaction():
            for name in names:
                self._forget(name)

    def close(self) -> None:
        self.db.close()


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN")

    def __exit__(self, kind: Any, *_rest: Any) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


class KeySet:
    """A set of strings on disk, each with the value it was first added with: what a stream
    needs to tell new keys from ones it has seen.

    A scratch file that nobody else opens: its name is removed as soon as it is open (where
    the system allows; the data stay reachable through the open file), so not even ``kill -9``
    leaves it behind, and its rollback journal is kept in memory (one block's pages)."""

    def __init__(self, folder: Path | None = None) -> None:
        fd, name = tempfile.mkstemp(prefix=".musegen-keys.", suffix=".tmp", dir=folder)
        os.close(fd)
        self.path: Path | None = Path(name)
        self.db = _connect(self.path)
        self.db.execute("PRAGMA journal_mode=MEMORY")
        self.db.execute("CREATE TABLE keys (key TEXT PRIMARY KEY, value TEXT)")
        try:
            self.path.unlink()
            self.path = None
        except OSError:  # a system that cannot remove an open file: removed on close
            pass

    def add_new(self, keys: Sequence[str], values: Sequence[str] | None = None) -> list[bool]:
        """Add ``keys``; for each, True when it was not in the set before (nor earlier in
        ``keys``)."""
        return [v is None for v in self.add(keys, values)]

    def add(self, keys: Sequence[str], values: Sequence[str] | None = None) -> list[str | None]:
        """Add ``keys`` (with ``values``, default ""); for each, None when it is new, else
        the value it was first added with (here or earlier in ``keys``)."""
        values = values if values is not None else [""] * len(keys)
        first: dict[str, str] = {}
        for block in _blocks(list(dict.fromkeys(keys))):
            marks = ",".join("?" * len(block))
            query = f"SELECT key, value FROM keys WHERE key IN ({marks})"
            first.update(self.db.execute(query, list(block)))
        out: list[str | None] = []
        new = []
        for k, v in zip(keys, values, strict=True):
            out.append(first.get(k))
            if k not in first:
                first[k] = v
                new.append((k, v))
        with _Transaction(self.db):
            self.db.executemany("INSERT INTO keys VALUES (?, ?)", new)
        return out

    def close(self) -> None:
        self.db.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> KeySet:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


# --------------------------------------------------------------------------- JSON lines
class JsonLinesWriter:
    """Objects appended one JSON line each (keys in the order given), counted and hashed as
    they go; ``path`` is a temporary file the caller renames or deletes."""

    def __init__(self, folder: Path, name: str) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        self.path = Path(tmp)
        self._file = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        self._hash = hashlib.sha256()
        self.count = 0

    def write(self, row: dict[str, Any]) -> None:
        line = json.dumps(row) + "\n"
        self._file.write(line)
        self._hash.update(line.encode("utf-8"))
        self.count += 1

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class EntryList(Sequence[T], Generic[T]):
    """A manifest's list kept in a JSON-lines file: iterated one line at a time, never held.

    ``len`` is the count the manifest records; indexing reads up to the item (meant for a
    glance at the first few; iterate for more). Two lists are equal when they have the same
    items; two files with the same checksum are equal without being read.
    """

    def __init__(self, path: Path, kind: type[T], count: int, sha256: str = "") -> None:
        self.path = path
        self.kind = kind
        self.count = count
        self.sha256 = sha256

    def __iter__(self) -> Iterator[T]:
        try:
            with open(self.path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    try:
                        yield self.kind(**json.loads(line))
                    except (ValueError, TypeError) as e:
                        raise MusegenError(f"{self.path}, line {n}: not a valid entry ({e})") from e
        except OSError as e:
            raise MusegenError(f"{self.path}: cannot read ({e}); prepare it again") from e

    def where(self, name: str, value: str) -> Iterator[T]:
        """The items whose field ``name`` is ``value``; lines that cannot hold it (their text
        lacks ``"name": "value"`` as this module writes it) are skipped without parsing."""
        text = f"{json.dumps(name)}: {json.dumps(value)}"
        try:
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    if text in line:
                        item = self.kind(**json.loads(line))
                        if getattr(item, name) == value:
                            yield item
        except (OSError, ValueError, TypeError) as e:
            raise MusegenError(f"{self.path}: cannot read ({e}); prepare it again") from e

    def __len__(self) -> int:
        return self.count

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: int | slice) -> T | list[T]:
        if isinstance(i, slice):
            return list(self)[i]
        if i < 0:
            i += self.count
        if not 0 <= i < self.count:
            raise IndexError(f"entry {i} out of range")
        for k, item in enumerate(self):
            if k == i:
                return item
        raise IndexError(f"entry {i}: {self.path} is shorter than its manifest says")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        if len(self) != len(other):
            return False
        if isinstance(other, EntryList) and self.sha256 and other.sha256:
            return self.sha256 == other.sha256
        return all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EntryList({str(self.path)!r}: {self.count} {self.kind.__name__})"
