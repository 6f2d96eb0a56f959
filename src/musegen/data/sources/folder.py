"""Any folder of MIDI / MusicXML / ABC files, searched recursively.

Each file is a piece, except that an ABC tune book gives one piece per tune (id ``FILE#X``).
Pieces are told apart by content: the SHA-256 of the file's bytes (of a tune's text without
its ``X:`` line), so copies under other names are listed in :attr:`Folder.duplicates` and left
out, and the split is :func:`hash_split` of that hash (80/10/10, stable when files are added).

``pieces()`` only reads and hashes bytes (in threads, over all cores): a garbage, empty or
hostile file still becomes a piece, and ``load`` raises :class:`InputError` for it, so a batch
step can skip it and say why. Hidden files and folders (names starting with ``.``) are skipped.

The bytes of small MIDI files read for hashing are kept (up to :data:`KEEP_BYTES` in all) and
``load`` parses those instead of reading the file again: that spares a second read and makes
sure the score is the content the hash names. They stay in this process (a source sent to a
spawned worker process goes without them, and its ``load`` reads the files).

``iter_pieces()`` gives the same pieces in the same order as a stream, for corpora too large
to hold as a list: folders are walked one at a time, files hashed as they come, duplicates
told apart through a set on disk, and no bytes kept (``load`` reads a MIDI file again and
checks it still has the hash it was listed with).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

from musegen.data.sources._abc import split_tunes, tune_sha256
from musegen.data.sources.base import Piece, Source, folder_entries, hash_split
from musegen.errors import InputError, MusegenError
from musegen.score import Score

# What musegen.io reads (kept here so listing a folder does not import symusic/music21).
EXTENSIONS = (".mid", ".midi", ".kar", ".rmi", ".musicxml", ".xml", ".mxl", ".abc")
MAX_TUNE_BOOK_BYTES = 16 << 20  # larger .abc files are not split (load will refuse them)
MIDI_EXTENSIONS = (".mid", ".midi", ".kar", ".rmi")  # as musegen.io.midi has them
KEEP_FILE_BYTES = 1 << 20  # MIDI files up to this size keep their bytes for load ...
KEEP_BYTES = 64 << 20  # ... up to this much in all
_HASH_BATCH = 32  # files a hashing thread takes at a time
_STREAM_BATCH = 512  # files iter_pieces hashes and checks for duplicates together


class Folder(Source):
    name = "folder"
    description = "Your own folder of MIDI / MusicXML / ABC files (recursive, deduplicated)"
    license = "Whatever applies to your files."

    def __init__(
        self,
        root: str | Path | None = None,
        extensions: tuple[str, ...] = EXTENSIONS,
        workers: int | None = None,
    ) -> None:
        if root is None:
            raise MusegenError("the folder source needs root=FOLDER (the folder to read)")
        super().__init__(root)
        self.extensions = tuple(e.lower() for e in extensions)
        self.workers = workers or os.cpu_count() or 1
        self._pieces: list[Piece] | None = None
        self._duplicates: dict[str, list[str]] = {}
        self._texts: dict[str, bytes] = {}
        self._data: dict[str, bytes] = {}  # piece id -> the MIDI bytes that were hashed

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["_data"] = {}  # pickled for a spawned worker: it reads the files instead
        return state

    def files(self) -> list[Path]:
        """The music files under the folder, sorted by relative path."""
        return [path for _rel, path in self._walk()]

    def _walk(self) -> list[tuple[str, Path]]:
        """``(relative POSIX path, path)`` of each music file, sorted by the former."""
        assert self.root is not None
        if not self.root.is_dir():
            raise MusegenError(f"{self.root}: not a folder")
        top = os.fspath(self.root)
        found = []
        for folder, dirs, names in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            base = Path(folder)
            rel = folder[len(top) :].lstrip(os.sep).replace(os.sep, "/")
            prefix = f"{rel}/" if rel else ""
            found += [
                (prefix + n, base / n)
                for n in names
                if not n.startswith(".") and os.path.splitext(n)[1].lower() in self.extensions
            ]
        found.sort(key=lambda item: item[0])
        return found

    def _walk_stream(self) -> Iterator[tuple[str, Path]]:
        """What :meth:`_walk` lists, in its order, a folder at a time: paths sorted as strings
        are a depth-first walk with each folder's entries sorted by name, a subfolder's name
        with its ``/`` (a folder ``a`` comes after ``a-b.mid`` and ``a.mid``, as ``a/...``
        does)."""
        assert self.root is not None
        if not self.root.is_dir():
            raise MusegenError(f"{self.root}: not a folder")
        yield from self._visit(os.fspath(self.root), "")

    def _visit(self, folder: str, prefix: str) -> Iterator[tuple[str, Path]]:
        items = []
        for name, path, is_dir in folder_entries(folder):
            if name.startswith("."):
                continue
            if is_dir:
                items.append((name + "/", path))
            elif os.path.splitext(name)[1].lower() in self.extensions:
                items.append((name, path))
        items.sort(key=lambda item: item[0])
        for name, path in items:
            if name.endswith("/"):
                yield from self._visit(path, prefix + name)
            else:
                yield prefix + name, Path(path)

    def iter_pieces(self) -> Iterator[Piece]:
        """:meth:`pieces` as a stream (see the module's notes); fills :attr:`duplicates`."""
        if self._pieces is not None:
            yield from self._pieces
            return
        from musegen.data.bookkeeping import KeySet

        self._duplicates = {}
        files = self._walk_stream()
        with KeySet() as kept:  # content hash -> the id kept
            while batch := list(islice(files, _STREAM_BATCH)):
                found = [
                    (rel if key is None else f"{rel}#{key}", sha, path)
                    for rel, path in batch
                    for key, sha, _text in _hash_file(path)
                ]
                first = kept.add([sha for _pid, sha, _p in found], [pid for pid, _s, _p in found])
                for (pid, sha, path), earlier in zip(found, first, strict=True):
                    if earlier is not None:
                        self._duplicates.setdefault(earlier, []).append(pid)
                    else:
                        yield Piece(pid, hash_split(sha), str(path), sha)

    def pieces(self) -> list[Piece]:
        if self._pieces is None:
            self._scan()
        assert self._pieces is not None
        return self._pieces

    @property
    def duplicates(self) -> dict[str, list[str]]:
        """Id of each kept piece -> ids of the pieces with the same content, left out."""
        self.pieces()
        return self._duplicates

    def _scan(self) -> None:
        found = self._walk()
        paths = [path for _rel, path in found]
        batches = [paths[i : i + _HASH_BATCH] for i in range(0, len(paths), _HASH_BATCH)]
        if len(batches) > 1 and self.workers > 1:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(batches))) as pool:
                hashed = [items for batch in pool.map(_hash_files, batches) for items in batch]
        else:
            hashed = _hash_files(paths)
        kept: dict[str, str] = {}  # content hash -> id kept
        pieces: list[Piece] = []
        self._duplicates, self._texts, self._data = {}, {}, {}
        budget = KEEP_BYTES
        for (rel, path), items in zip(found, hashed, strict=True):
            for key, sha, text in items:
                pid = rel if key is None else f"{rel}#{key}"
                if sha in kept:
                    self._duplicates.setdefault(kept[sha], []).append(pid)
                    continue
                kept[sha] = pid
                if key is None and text is not None:  # the bytes of a MIDI file
                    if len(text) <= budget:
                        self._data[pid] = text
                        budget -= len(text)
                elif text is not None:
                    self._texts[pid] = text
                pieces.append(Piece(pid, hash_split(sha), str(path), sha))
        self._pieces = pieces

    def preload(self) -> None:
        import musegen.data.sources._convert

        if self._data:  # MIDI files to read: symusic
            import musegen.io.midi  # noqa: F401

    def load_many(self, pieces: list[Piece]) -> list[Score | Exception]:
        """``load`` of each piece (or its exception); the MIDI files whose bytes were kept are
        read together (:func:`~musegen.io.midi.read_midi_many`)."""
        from musegen.io.midi import read_midi_many

        data = {p.id: self._midi_bytes(p) for p in pieces}
        kept = [p for p in pieces if isinstance(data[p.id], bytes)]
        if len(kept) < 2:
            return super().load_many(pieces)
        read = iter(read_midi_many((data[p.id], p.origin) for p in kept))  # type: ignore[misc]
        out: list[Score | Exception] = []
        for piece in pieces:
            got = data[piece.id]
            if isinstance(got, bytes):
                out.append(next(read))
            elif isinstance(got, Exception):
                out.append(got)
            else:
                out += super().load_many([piece])
        return out

    def _midi_bytes(self, piece: Piece) -> bytes | Exception | None:
        """The bytes of a small MIDI file: kept from listing, else read again and checked
        against the hash it was listed with (a file changed since is an error that is not
        the input's fault, so a later run tries it again); None for other files."""
        if piece.id in self._data:
            return self._data[piece.id]
        path = Path(piece.origin)
        if "#" in piece.id or path.suffix.lower() not in MIDI_EXTENSIONS or not piece.sha256:
            return None
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode) or not 0 < st.st_size <= KEEP_FILE_BYTES:
                    return None
                data = f.read()
        except OSError:
            return None  # load says why
        if hashlib.sha256(data).hexdigest() != piece.sha256:
            return ChangedFileError(f"{piece.origin}: changed since it was listed")
        return data

    def load(self, piece: Piece) -> Score:
        """The piece's score; :class:`InputError` (naming the file) if it cannot be read."""
        from musegen.data.sources._convert import load_abc_tune, load_file, load_midi_bytes

        if piece.id in self._texts:
            return load_abc_tune(self._texts[piece.id], piece.id)
        data = self._midi_bytes(piece)
        if isinstance(data, Exception):
            raise data
        if data is not None:
            return load_midi_bytes(data, piece.origin)
        path = Path(piece.origin)
        if "#" in piece.id and path.suffix.lower() == ".abc":
            key = piece.id.rpartition("#")[2]
            try:
                tunes = dict(split_tunes(path.read_bytes()))
            except OSError as e:
                raise InputError(piece.id, f"cannot read: {e.strerror or e}") from None
            if key not in tunes:
                raise InputError(piece.id, f"no tune X:{key} in {path}")
            return load_abc_tune(tunes[key], piece.id)
        return load_file(path, str(path))


class ChangedFileError(OSError):
    """A file's content is no longer the one its piece was listed with."""


def _hash_files(paths: list[Path]) -> list[list[tuple[str | None, str, bytes | None]]]:
    return [_hash_file(path) for path in paths]


def _hash_file(path: Path) -> list[tuple[str | None, str, bytes | None]]:
    """``(tune key or None, content hash, text or None)`` for each piece of a file.

    The text is a tune's (for a tune of an ABC book), or the whole file's for a MIDI file
    of at most :data:`KEEP_FILE_BYTES` (key None).
    """
    try:
        suffix = path.suffix.lower()
        if suffix == ".abc" and path.stat().st_size <= MAX_TUNE_BOOK_BYTES:
            data = path.read_bytes()
            tunes = split_tunes(data)
            if len(tunes) > 1:
                return [(key, tune_sha256(text), text) for key, text in tunes]
            return [(None, hashlib.sha256(data).hexdigest(), None)]
        if suffix in MIDI_EXTENSIONS:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                if stat.S_ISREG(st.st_mode) and st.st_size <= KEEP_FILE_BYTES:
                    data = f.read()  # one buffer of the file's size
                    keep = data if 0 < len(data) <= KEEP_FILE_BYTES else None
                    return [(None, hashlib.sha256(data).hexdigest(), keep)]
                h = hashlib.sha256()
                while block := f.read(1 << 20):
                    h.update(block)
            return [(None, h.hexdigest(), None)]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        return [(None, h.hexdigest(), None)]
    except OSError as e:
        # unreadable now: still a piece, so the batch lists it with load's reason
        return [(None, hashlib.sha256(f"unreadable:{path}:{e}".encode()).hexdigest(), None)]
