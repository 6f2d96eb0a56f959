"""MAESTRO v3.0.0 (Hawthorne et al. 2019): 1,276 virtuosic piano performances, downloaded.

``fetch`` downloads the official MIDI-only archive (58 MB, resumable, checksummed) and unpacks
it into ``root`` (default ``data_home()/maestro``); a mirror is used by passing its
:class:`Archive`. Pieces and their official split (train / validation / test -> train / valid /
test; no composition straddles two splits) come from the dataset's ``maestro-v3.0.0.csv``, or
its ``.json`` when the CSV is absent. A piece's id is its ``midi_filename``.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path, PurePosixPath
from typing import ClassVar

from musegen.data.download import Archive, download_and_extract
from musegen.data.sources.base import Piece, Source, data_home
from musegen.errors import MusegenError
from musegen.score import Score

ARCHIVES = {
    "v3.0.0": Archive(
        url="https://storage.googleapis.com/magentadata/datasets/maestro/v3.0.0/maestro-v3.0.0-midi.zip",
        filename="maestro-v3.0.0-midi.zip",
        size=58416533,
        sha256="70470ee253295c8d2c71e6d9d4a815189e35c89624b76d22fce5a019d5dde12c",
    ),
}
SPLIT_NAMES = {"train": "train", "validation": "valid", "test": "test"}

HAWTHORNE_2019 = """@inproceedings{hawthorne2019enabling,
  title     = {Enabling Factorized Piano Music Modeling and Generation with the {MAESTRO}
               Dataset},
  author    = {Hawthorne, Curtis and Stasyuk, Andriy and Roberts, Adam and Simon, Ian and
               Huang, Cheng-Zhi Anna and Dieleman, Sander and Elsen, Erich and Engel, Jesse
               and Eck, Douglas},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2019},
  url       = {https://openreview.net/forum?id=r1lYRjC9F7}
}"""


class Maestro(Source):
    name = "maestro"
    description = "MAESTRO v3.0.0 piano performances (MIDI), official split, downloaded on request"
    citation = HAWTHORNE_2019
    license = "CC BY-NC-SA 4.0 (Google LLC): non-commercial use, share alike."
    checksums: ClassVar[dict[str, str]] = {
        a.filename: f"sha256:{a.sha256}" for a in ARCHIVES.values()
    }

    def __init__(self, root: str | Path | None = None, variant: str = "v3.0.0") -> None:
        _check_variant(variant)
        super().__init__(root if root is not None else data_home() / "maestro")
        self.variant = variant

    @classmethod
    def fetch(  # type: ignore[override]
        cls,
        root: str | Path | None = None,
        variant: str = "v3.0.0",
        archive: Archive | None = None,
        progress: bool = True,
        keep_archive: bool = True,
    ) -> Path:
        """Download and unpack MAESTRO (``archive``: a mirror's); returns the dataset folder."""
        _check_variant(variant)
        root = Path(root) if root is not None else data_home() / "maestro"
        download_and_extract(archive or ARCHIVES[variant], root, progress, keep_archive)
        return cls(root, variant).metadata_file().parent

    def metadata_file(self) -> Path:
        """``maestro-VERSION.csv`` (or ``.json``) in ``root`` or its ``maestro-VERSION/``."""
        assert self.root is not None
        stem = f"maestro-{self.variant}"
        for folder in (self.root / stem, self.root):
            for ext in (".csv", ".json"):
                if (folder / f"{stem}{ext}").is_file():
                    return folder / f"{stem}{ext}"
        raise MusegenError(
            f"MAESTRO {self.variant} is not in {self.root}: download it with "
            f"Maestro.fetch({str(self.root)!r}) (58 MB) or pass root= where it was unpacked"
        )

    def pieces(self) -> list[Piece]:
        meta = self.metadata_file()
        rows = _read_metadata(meta)
        out, missing = [], []
        for name, split in rows:
            rel = PurePosixPath(name)
            if rel.is_absolute() or ".." in rel.parts or split not in SPLIT_NAMES:
                raise MusegenError(f"{meta}: bad row (midi_filename={name!r}, split={split!r})")
            path = meta.parent / rel
            if not path.is_file():
                missing.append(name)
                continue
            out.append(Piece(name, SPLIT_NAMES[split], str(path)))
        if missing:
            warnings.warn(
                f"{meta.parent}: {len(missing)} MIDI files listed in {meta.name} are missing "
                f"(e.g. {missing[0]}); they are skipped",
                stacklevel=2,
            )
        return out

    def load(self, piece: Piece) -> Score:
        from musegen.data.sources._convert import load_file

        return load_file(Path(piece.origin))


def _check_variant(variant: str) -> None:
    if variant not in ARCHIVES:
        raise MusegenError(f"maestro variant must be one of {', '.join(ARCHIVES)}, got {variant!r}")


def _read_metadata(path: Path) -> list[tuple[str, str]]:
    """``(midi_filename, split)`` of every row of the MAESTRO metadata (CSV or JSON)."""
    try:
        if path.suffix == ".csv":
            with open(path, newline="", encoding="utf-8") as f:
                return [(r["midi_filename"], r["split"]) for r in csv.DictReader(f)]
        columns = json.loads(path.read_text(encoding="utf-8"))
        names, splits = columns["midi_filename"], columns["split"]
        return [(names[k], splits[k]) for k in names]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MusegenError(f"{path}: not MAESTRO metadata ({e})") from e
