"""The Lakh MIDI Dataset v0.1 (Raffel 2016): 176,581 deduplicated MIDI files, downloaded.

Variants: ``full`` (all files), ``matched`` (files matched to the Million Song Dataset, one
folder per matched track) and ``aligned`` (the matched files aligned to the audio). ``fetch``
downloads the official archive (resumable, checksummed) and unpacks it into ``root``
(default ``data_home()/lakh``); a mirror is used by passing its :class:`Archive`.

LMD names every file by the MD5 of its content, so a piece's id is its path without the
extension and its split is :func:`hash_split` of that MD5: a content-hash split that needs no
reading of the files (``Piece.sha256`` is left empty for the same reason). In ``matched`` a
file matched to several tracks is stored once per track: the copies are listed in
``duplicates`` and left out. In ``aligned`` the copies differ (one alignment per track) and
are all kept, in the same split.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import ClassVar

from musegen.data.download import Archive, download_and_extract
from musegen.data.sources.base import Piece, Source, data_home, folder_entries, hash_split
from musegen.errors import MusegenError
from musegen.score import Score

_BASE = "http://hog.ee.columbia.edu/craffel/lmd"
ARCHIVES = {
    "full": Archive(
        url=f"{_BASE}/lmd_full.tar.gz",
        filename="lmd_full.tar.gz",
        size=1768163879,
        sha256="6fcfe2ac49ca08f3f214cec86ab138d4fc4dabcd7f27f491a838dae6db45a12b",
        md5="2536ce3fd2cede53ddaa264f731859ab",
    ),
    "matched": Archive(
        url=f"{_BASE}/lmd_matched.tar.gz",
        filename="lmd_matched.tar.gz",
        size=1407072670,
        sha256="621ff830aed771f469e5bfa13dc12a33c6ed69090adeda63d0b5c47783af0191",
        md5="fb80d01c22020295bb3eeef31f1aa63a",
    ),
    "aligned": Archive(
        url=f"{_BASE}/lmd_aligned.tar.gz",
        filename="lmd_aligned.tar.gz",
        size=272169548,
        sha256="2bf5400e82eba73204644946515489b68811e1e656b0cfd854efc14377f6e53b",
    ),
}
MIDI_EXTENSIONS = (".mid", ".midi")

RAFFEL_2016 = """@phdthesis{raffel2016learning,
  title  = {Learning-Based Methods for Comparing Sequences, with Applications to
            Audio-to-MIDI Alignment and Matching},
  author = {Raffel, Colin},
  school = {Columbia University},
  year   = {2016}
}"""


class Lakh(Source):
    name = "lakh"
    description = "Lakh MIDI Dataset v0.1 (full / matched / aligned), downloaded on request"
    citation = RAFFEL_2016
    license = "CC BY 4.0 (Colin Raffel); the MIDI files themselves come from the web."
    checksums: ClassVar[dict[str, str]] = {
        a.filename: f"sha256:{a.sha256}" for a in ARCHIVES.values()
    }

    def __init__(self, root: str | Path | None = None, variant: str = "full") -> None:
        _check_variant(variant)
        super().__init__(root if root is not None else data_home() / "lakh")
        self.variant = variant
        self._pieces: list[Piece] | None = None
        self._duplicates: dict[str, list[str]] = {}

    @classmethod
    def fetch(  # type: ignore[override]
        cls,
        root: str | Path | None = None,
        variant: str = "full",
        archive: Archive | None = None,
        progress: bool = True,
        keep_archive: bool = True,
    ) -> Path:
        """Download and unpack one variant (``archive``: a mirror's); returns its folder."""
        _check_variant(variant)
        root = Path(root) if root is not None else data_home() / "lakh"
        download_and_extract(archive or ARCHIVES[variant], root, progress, keep_archive)
        return cls(root, variant).folder()

    def folder(self) -> Path:
        """The unpacked ``lmd_VARIANT`` folder (``root`` may also be that folder itself)."""
        assert self.root is not None
        name = f"lmd_{self.variant}"
        for path in (self.root / name, self.root):
            if path.name == name and path.is_dir():
                return path
        raise MusegenError(
            f"Lakh MIDI ({self.variant}) is not in {self.root}: download it with "
            f"Lakh.fetch({str(self.root)!r}, variant={self.variant!r}) "
            f"({ARCHIVES[self.variant].size / 1e9:.1f} GB) or pass root= where it was unpacked"
        )

    @property
    def duplicates(self) -> dict[str, list[str]]:
        """Id of each kept piece -> ids of its identical copies (``matched`` only)."""
        self.pieces()
        return self._duplicates

    def pieces(self) -> list[Piece]:
        if self._pieces is None:
            base = self.folder()
            kept: dict[str, str] = {}
            pieces, self._duplicates = [], {}
            for path in _midi_files(base):
                rel = path.relative_to(base).as_posix()
                pid, md5 = rel.rsplit(".", 1)[0], path.stem
                if self.variant != "aligned":
                    if md5 in kept:
                        self._duplicates.setdefault(kept[md5], []).append(pid)
                        continue
                    kept[md5] = pid
                pieces.append(Piece(pid, hash_split(md5), str(path)))
            if not pieces:
                warnings.warn(f"{base}: no MIDI files found", stacklevel=2)
            self._pieces = pieces
        return self._pieces

    def iter_pieces(self) -> Iterator[Piece]:
        """:meth:`pieces` as a stream, for ``data prepare``: folders are listed one at a
        time and identical copies told apart through a set on disk, so the 176,581 files of
        ``full`` are never held as a list. Fills :attr:`duplicates`."""
        if self._pieces is not None:
            yield from self._pieces
            return
        from musegen.data.bookkeeping import KeySet

        base = self.folder()
        self._duplicates = {}
        files = _iter_midi_files(base)
        with KeySet() as kept:  # md5 -> the id kept
            while batch := list(islice(files, 512)):
                rows = [
                    (p.relative_to(base).as_posix().rsplit(".", 1)[0], p.stem, p) for p in batch
                ]
                if self.variant == "aligned":  # every copy is a piece of its own
                    first: list[str | None] = [None] * len(rows)
                else:
                    first = kept.add([md5 for _pid, md5, _p in rows], [pid for pid, _m, _p in rows])
                for (pid, md5, path), earlier in zip(rows, first, strict=True):
                    if earlier is not None:
                        self._duplicates.setdefault(earlier, []).append(pid)
                    else:
                        yield Piece(pid, hash_split(md5), str(path))

    def load(self, piece: Piece) -> Score:
        from musegen.data.sources._convert import load_file

        return load_file(Path(piece.origin))


def _check_variant(variant: str) -> None:
    if variant not in ARCHIVES:
        raise MusegenError(f"lakh variant must be one of {', '.join(ARCHIVES)}, got {variant!r}")


def _midi_files(base: Path) -> list[Path]:
    out = []
    for folder, dirs, names in os.walk(base):
        dirs.sort()
        out += [Path(folder) / n for n in names if n.lower().endswith(MIDI_EXTENSIONS)]
    return sorted(out)


def _iter_midi_files(folder: Path) -> Iterator[Path]:
    """:func:`_midi_files`' paths in its order (paths sort by their parts: a depth-first walk
    with each folder's entries sorted by name), a folder at a time."""
    for name, path, is_dir in sorted(folder_entries(folder)):
        if is_dir:
            yield from _iter_midi_files(Path(path))
        elif name.lower().endswith(MIDI_EXTENSIONS):
            yield Path(path)
