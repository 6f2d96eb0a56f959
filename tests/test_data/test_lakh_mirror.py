"""The Lakh download code against a local mirror folder laid out like the real one
(``lmd_full.tar.gz`` holding ``lmd_full/<first hex digit>/<md5>.mid``), by ``file://`` URL,
with its size, sha256 and md5 checked; then prepared into shards."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from datahelpers import make_tar_gz
from musegen.data.dataset import load_prepared, prepare_dataset
from musegen.data.download import Archive
from musegen.data.sources import get_source
from musegen.data.sources.base import hash_split
from musegen.data.sources.lakh import Lakh
from musegen.errors import MusegenError
from musegen.tokenizers import get_tokenizer
from shardhelpers import small_midi


def _mirror(folder: Path, n: int) -> tuple[Archive, list[str]]:
    """A mirror folder with ``lmd_full.tar.gz`` of ``n`` files; its Archive and the md5s."""
    songs = [small_midi(i) for i in range(n)]
    md5s = [hashlib.md5(s).hexdigest() for s in songs]
    data = make_tar_gz({f"lmd_full/{m[0]}/{m}.mid": s for m, s in zip(md5s, songs, strict=True)})
    folder.mkdir(parents=True)
    (folder / "lmd_full.tar.gz").write_bytes(data)
    archive = Archive(
        url=(folder / "lmd_full.tar.gz").as_uri(),
        filename="lmd_full.tar.gz",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),
    )
    return archive, md5s


def test_lakh_from_a_local_mirror_folder_into_shards(tmp_path: Path) -> None:
    archive, md5s = _mirror(tmp_path / "mirror", 40)
    folder = Lakh.fetch(tmp_path / "lakh", archive=archive, progress=False, keep_archive=False)
    assert folder == tmp_path / "lakh" / "lmd_full"
    assert not (tmp_path / "lakh" / "lmd_full.tar.gz").exists()
    source = get_source("lakh", root=tmp_path / "lakh")
    pieces = source.pieces()
    assert sorted(p.id for p in pieces) == sorted(f"{m[0]}/{m}" for m in md5s)
    assert all(p.split == hash_split(p.id.split("/")[1]) for p in pieces)
    prepare_dataset(source, get_tokenizer("remi"), tmp_path / "ds", progress=False, shards=2)
    data = load_prepared(tmp_path / "ds")
    assert sum(c.pieces for c in data.manifest.splits.values()) == 40
    assert data.split("train").verify() == []


def test_a_mirror_with_other_bytes_is_refused_and_nothing_kept(tmp_path: Path) -> None:
    archive, _ = _mirror(tmp_path / "mirror", 5)
    bad = Archive(archive.url, archive.filename, archive.size, "0" * 64, archive.md5)
    with pytest.raises(MusegenError, match="corrupt"):
        Lakh.fetch(tmp_path / "lakh", archive=bad, progress=False)
    assert not any((tmp_path / "lakh").glob("lmd_full*"))
