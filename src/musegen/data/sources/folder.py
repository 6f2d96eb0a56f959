"""Any folder of MIDI / MusicXML / ABC files, searched recursively.

Each file is a piece, except that an ABC tune book gives one piece per tune (id ``FILE#X``).
Pieces are told apart by content: the SHA-256 of the file's bytes (of a tune's text without
its ``X:`` line), so copies under other names are listed in :attr:`Folder.duplicates` and left
out, and the split is :func:`hash_split` of that hash (80/10/10, stable when files are added).

``pieces()`` only reads and hashes bytes (in threads, over all cores): a garbage, empty or
hostile file still becomes a piece, and ``load`` raises :class:`InputError` for it, so a batch
step can skip it and say why. Hidden files and folders (names starting with ``.``) are skipped.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from musegen.data.sources._abc import split_tunes, tune_sha256
from musegen.data.sources.base import Piece, Source, hash_split
from musegen.errors import InputError, MusegenError
from musegen.score import Score

# What musegen.io reads (kept here so listing a folder does not import symusic/music21).
EXTENSIONS = (".mid", ".midi", ".kar", ".musicxml", ".xml", ".mxl", ".abc")
MAX_TUNE_BOOK_BYTES = 16 << 20  # larger .abc files are not split (load will refuse them)


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

    def files(self) -> list[Path]:
        """The music files under the folder, sorted by relative path."""
        assert self.root is not None
        if not self.root.is_dir():
            raise MusegenError(f"{self.root}: not a folder")
        found = []
        for folder, dirs, names in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found += [
                Path(folder) / n
                for n in names
                if not n.startswith(".") and Path(n).suffix.lower() in self.extensions
            ]
        return sorted(found, key=lambda p: p.relative_to(self.root).as_posix())  # type: ignore[arg-type]

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
        assert self.root is not None
        paths = self.files()
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            hashed = list(pool.map(_hash_file, paths))
        kept: dict[str, str] = {}  # content hash -> id kept
        pieces: list[Piece] = []
        self._duplicates, self._texts = {}, {}
        for path, items in zip(paths, hashed, strict=True):
            rel = path.relative_to(self.root).as_posix()
            for key, sha, text in items:
                pid = rel if key is None else f"{rel}#{key}"
                if sha in kept:
                    self._duplicates.setdefault(kept[sha], []).append(pid)
                    continue
                kept[sha] = pid
                if text is not None:
                    self._texts[pid] = text
                pieces.append(Piece(pid, hash_split(sha), str(path), sha))
        self._pieces = pieces

    def load(self, piece: Piece) -> Score:
        """The piece's score; :class:`InputError` (naming the file) if it cannot be read."""
        from musegen.data.sources._convert import load_abc_tune, load_file

        if piece.id in self._texts:
            return load_abc_tune(self._texts[piece.id], piece.id)
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


def _hash_file(path: Path) -> list[tuple[str | None, str, bytes | None]]:
    """``(tune key or None, content hash, tune text or None)`` for each piece of a file."""
    try:
        if path.suffix.lower() == ".abc" and path.stat().st_size <= MAX_TUNE_BOOK_BYTES:
            data = path.read_bytes()
            tunes = split_tunes(data)
            if len(tunes) > 1:
                return [(key, tune_sha256(text), text) for key, text in tunes]
            return [(None, hashlib.sha256(data).hexdigest(), None)]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        return [(None, h.hexdigest(), None)]
    except OSError as e:
        # unreadable now: still a piece, so the batch lists it with load's reason
        return [(None, hashlib.sha256(f"unreadable:{path}:{e}".encode()).hexdigest(), None)]
