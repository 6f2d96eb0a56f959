"""Collections of music21's bundled corpus (offline) with a stored, deterministic split.

A source names a corpus folder and the file kinds it takes. Its split lives in a committed
manifest (``data/vendor/corpus-NAME.json``, written by ``scripts/make_corpus_manifests.py``):

```
{"source": ..., "music21": version, "folder": ..., "split_rule": ..., "counts": {...},
 "files": {"bach/bwv1.6.mxl": {"sha256": FILE_HASH, "split": "train"},
           "essenFolksong/altdeu10.abc": {"sha256": FILE_HASH, "tunes": {"1": "valid", ...}}},
 "duplicates": {"palestrina/Gloria_15_a": "palestrina/Gloria_14_a", ...}}
```

A piece's id is its file path in the corpus without the extension (``bach/bwv66.6``, the same
name as ``corpus:bach/bwv66.6``), plus ``#X`` for a tune of an ABC tune book. Its split is
:func:`hash_split` of a group key (by default the id; a source may group pieces that must not
straddle splits, e.g. the movements of one mass), so it never changes when files are added.
Pieces whose content repeats an earlier piece are left out and listed as duplicates.

``pieces()`` reads the manifest and the files' bytes (no parsing): missing files are warned
about and skipped; files whose hash changed (another music21 version) are warned about and kept.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from musegen.data.sources._abc import split_tunes, tune_sha256
from musegen.data.sources._citations import MUSIC21
from musegen.data.sources._polymusic import VENDOR_DIR
from musegen.data.sources.base import SPLIT_RULE, SPLITS, Piece, Source, hash_split
from musegen.errors import InputError, MusegenError
from musegen.score import Score


def music21_corpus_dir() -> Path:
    """The ``corpus`` folder of the installed music21, found without importing music21."""
    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        raise MusegenError("music21 is not installed (pip install music21)")
    return Path(next(iter(spec.submodule_search_locations))) / "corpus"


def music21_version() -> str:
    from importlib.metadata import version

    return version("music21")


@dataclass(frozen=True)
class Entry:
    """One piece found in the corpus: id, file (relative to the corpus dir), hashes, tune."""

    id: str
    file: str
    file_sha256: str
    sha256: str  # of the piece's content: the file, or the tune's text
    group: str
    tune: str | None = None


class CorpusSource(Source):
    """Base of the music21 corpus sources; subclasses state folder, file kinds and manifest."""

    citation = MUSIC21
    folder: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]
    exclude: ClassVar[frozenset[str]] = frozenset()  # file names left out (not this corpus)
    tune_books: ClassVar[bool] = False  # ABC files holding many tunes: one piece per tune
    group_rule: ClassVar[str] = "the piece id"  # what group_key returns, for the manifest

    def __init__(self, root: str | Path | None = None) -> None:
        """``root``: a music21-style corpus folder (default: the installed music21's)."""
        super().__init__(root)
        self._texts: dict[str, bytes] = {}

    @classmethod
    def manifest_path(cls) -> Path:
        return VENDOR_DIR / f"corpus-{cls.name}.json"

    @classmethod
    def group_key(cls, piece_id: str, data: bytes) -> str:
        """Pieces with the same key share a split; the default key is the piece id."""
        return piece_id

    def corpus_dir(self) -> Path:
        return self.root if self.root is not None else music21_corpus_dir()

    # ------------------------------------------------------------------ building the manifest
    def scan(self) -> list[Entry]:
        """Every piece in the corpus folder, in file order (reads bytes, parses nothing)."""
        base = self.corpus_dir()
        folder = base / self.folder
        if not folder.is_dir():
            raise MusegenError(f"{folder}: no such corpus folder")
        entries: list[Entry] = []
        files = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() in self.suffixes and p.name not in self.exclude
        )
        for path in files:
            data = path.read_bytes()
            rel = path.relative_to(base).as_posix()
            stem = rel[: -len(path.suffix)]
            file_sha = hashlib.sha256(data).hexdigest()
            tunes = split_tunes(data) if self.tune_books else []
            if not tunes:
                group = self.group_key(stem, data)
                entries.append(Entry(stem, rel, file_sha, file_sha, group))
                continue
            for key, text in tunes:
                pid = f"{stem}#{key}"
                group = self.group_key(pid, text)
                entries.append(Entry(pid, rel, file_sha, tune_sha256(text), group, key))
        return entries

    def build_manifest(self) -> dict[str, Any]:
        """The manifest of the corpus as installed now (deterministic)."""
        files: dict[str, dict[str, Any]] = {}
        first: dict[str, str] = {}  # content hash -> id of the piece kept
        duplicates: dict[str, str] = {}
        counts = dict.fromkeys(SPLITS, 0)
        for e in self.scan():
            if e.sha256 in first:
                duplicates[e.id] = first[e.sha256]
                continue
            first[e.sha256] = e.id
            split = hash_split(e.group)
            counts[split] += 1
            entry = files.setdefault(e.file, {"sha256": e.file_sha256})
            if e.tune is None:
                entry["split"] = split
            else:
                entry.setdefault("tunes", {})[e.tune] = split
        return {
            "source": self.name,
            "music21": music21_version(),
            "folder": self.folder,
            "split_rule": f"{SPLIT_RULE}; key: {self.group_rule}",
            "counts": counts,
            "files": files,
            "duplicates": duplicates,
        }

    # ------------------------------------------------------------------ Source API
    def manifest(self) -> dict[str, Any]:
        path = self.manifest_path()
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise MusegenError(f"{path}: cannot read the split manifest ({e})") from e

    def pieces(self) -> list[Piece]:
        base = self.corpus_dir()
        missing, changed, out = [], [], []
        self._texts.clear()
        for rel, entry in self.manifest()["files"].items():
            path = base / rel
            try:
                data = path.read_bytes()
            except OSError:
                missing.append(rel)
                continue
            file_sha = hashlib.sha256(data).hexdigest()
            if file_sha != entry["sha256"]:
                changed.append(rel)
            stem = rel[: -len(Path(rel).suffix)]
            if "tunes" not in entry:
                out.append(Piece(stem, entry["split"], str(path), file_sha))
                continue
            tunes = dict(split_tunes(data))
            for key, split in entry["tunes"].items():
                if key not in tunes:
                    missing.append(f"{rel}#{key}")
                    continue
                pid = f"{stem}#{key}"
                self._texts[pid] = tunes[key]
                out.append(Piece(pid, split, str(path), tune_sha256(tunes[key])))
        if missing:
            warnings.warn(
                f"{self.name}: {len(missing)} pieces of the split manifest are not in {base} "
                f"(e.g. {missing[0]}); they are skipped",
                stacklevel=2,
            )
        if changed:
            warnings.warn(
                f"{self.name}: {len(changed)} corpus files differ from the split manifest "
                f"(e.g. {changed[0]}; another music21 version?); splits are kept by piece id",
                stacklevel=2,
            )
        return out

    def load(self, piece: Piece) -> Score:
        from musegen.data.sources._convert import load_abc_tune, load_file

        path = Path(piece.origin)
        if "#" not in piece.id:
            return load_file(path, piece.id)
        if piece.id not in self._texts:
            key = piece.id.partition("#")[2]
            tunes = dict(split_tunes(path.read_bytes())) if path.is_file() else {}
            if key not in tunes:
                raise InputError(piece.id, f"no tune X:{key} in {path}")
            self._texts[piece.id] = tunes[key]
        return load_abc_tune(self._texts[piece.id], piece.id)


def dump_manifest(manifest: dict[str, Any]) -> str:
    """The manifest as JSON with one file per line (small, and diffs stay readable)."""
    lines = ["{"]
    keys = list(manifest)
    for i, key in enumerate(keys):
        value = manifest[key]
        comma = "," if i < len(keys) - 1 else ""
        if isinstance(value, dict) and key in ("files", "duplicates"):
            items = [
                f"  {json.dumps(k)}: {json.dumps(v, separators=(', ', ': '))}"
                for k, v in value.items()
            ]
            body = ",\n".join(items)
            lines.append(
                f" {json.dumps(key)}: {{\n{body}\n }}{comma}"
                if items
                else f" {json.dumps(key)}: {{}}{comma}"
            )
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"
