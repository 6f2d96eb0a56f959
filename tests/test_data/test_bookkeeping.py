"""Preparation's per-piece bookkeeping on disk: the streamed listing, the cache's SQLite index,
the manifest's JSON-lines lists, and a pool fed as the source is listed."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import tarfile
from pathlib import Path

import numpy as np
import pytest

from musegen.data import dataset
from musegen.data.bookkeeping import EntryList, KeySet
from musegen.data.dataset import (
    FAILURES_FILE,
    MANIFEST,
    PIECES_FILE,
    Manifest,
    PieceEntry,
    load_prepared,
    prepare_dataset,
)
from musegen.data.sources import get_source
from musegen.data.sources.lakh import Lakh
from musegen.data.tarfiles import TarWriter, npy_bytes
from musegen.tokenizers import get_tokenizer
from shardhelpers import small_midi, write_corpus


def _prepare(corpus: Path, out: Path, workers: int = 1) -> Manifest:
    source = get_source("folder", root=corpus)
    return prepare_dataset(source, get_tokenizer("remi"), out, workers=workers, progress=False)


def test_a_streamed_folder_lists_what_the_folder_lists(tmp_path: Path) -> None:
    names = ["a.mid", "a-b/x.mid", "a/x.mid", "a/y/z.mid", "b.MID", ".hidden.mid", "c/.d/e.mid"]
    for i, name in enumerate(names):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(small_midi(i))
    (tmp_path / "a" / "copy.mid").write_bytes(small_midi(0))  # a duplicate of a.mid
    (tmp_path / "notes.txt").write_text("not music")
    listed = get_source("folder", root=tmp_path)
    streamed = get_source("folder", root=tmp_path)
    assert list(streamed.iter_pieces()) == listed.pieces()
    assert [p.id for p in listed.pieces()] == [
        "a-b/x.mid",
        "a.mid",
        "a/x.mid",
        "a/y/z.mid",
        "b.MID",
    ]
    assert streamed.duplicates == listed.duplicates == {"a.mid": ["a/copy.mid"]}


def test_manifest_lists_are_json_lines_beside_it(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", 30)
    (corpus / "000" / "broken.mid").write_bytes(b"MThd")
    manifest = _prepare(corpus, tmp_path / "ds")
    header = json.loads((tmp_path / "ds" / MANIFEST).read_text())
    assert header["pieces"]["file"] == PIECES_FILE and header["pieces"]["count"] == 30
    lines = (tmp_path / "ds" / PIECES_FILE).read_text().splitlines()
    assert [PieceEntry(**json.loads(line)) for line in lines] == list(manifest.pieces)
    (failure,) = [json.loads(line) for line in (tmp_path / "ds" / FAILURES_FILE).open()]
    assert failure["id"] == "000/broken.mid" and "MIDI" in failure["reason"]
    assert (
        isinstance(manifest.pieces, EntryList) and manifest.pieces[-1] == list(manifest.pieces)[-1]
    )
    assert sum(c.pieces for c in manifest.splits.values()) == len(manifest.pieces) == 30


def test_format_1_manifests_with_their_lists_inside_are_still_read(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", 12)
    out = tmp_path / "ds"
    new = _prepare(corpus, out)
    old = {**new.to_dict(), "format": 1}
    (out / MANIFEST).write_text(json.dumps(old))
    (out / PIECES_FILE).unlink()
    read = load_prepared(out)
    assert [vars(e) for e in read.manifest.pieces] == old["pieces"]
    assert len(read.split("train")) == new.splits["train"].pieces
    again = _prepare(corpus, out)  # an older folder is brought up to date
    assert again.format == 2 and (out / PIECES_FILE).is_file()


def test_a_missing_list_file_is_a_one_line_error(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    _prepare(write_corpus(tmp_path / "corpus", 6), out)
    (out / PIECES_FILE).unlink()
    with pytest.raises(dataset.MusegenError, match=r"pieces\.jsonl is missing"):
        load_prepared(out)


def test_the_cache_index_is_rebuilt_from_the_chunk_files(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", 40)
    out = tmp_path / "ds"
    first = _prepare(corpus, out)
    (index,) = out.glob("cache/*/index.sqlite")
    with sqlite3.connect(index) as db:  # a run killed after writing chunks, before recording
        db.execute("DELETE FROM entries")
        db.execute("DELETE FROM chunks")
    chunks = sorted(p.stat().st_mtime_ns for p in out.glob("cache/*/*.npz"))
    assert _prepare(corpus, out).same_content(first)
    assert sorted(p.stat().st_mtime_ns for p in out.glob("cache/*/*.npz")) == chunks  # reused
    index.write_bytes(b"not a database at all" * 100)  # damaged: rebuilt
    assert _prepare(corpus, out).same_content(first)


def test_a_file_changed_after_listing_is_tried_again(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", 4)
    source = get_source("folder", root=corpus)
    pieces = list(source.iter_pieces())
    Path(pieces[0].origin).write_bytes(small_midi(99))
    loaded = source.load_many(pieces)
    assert isinstance(loaded[0], OSError) and "changed since it was listed" in str(loaded[0])
    assert all(not isinstance(s, Exception) for s in loaded[1:])


def test_a_pool_fed_from_a_stream_returns_every_chunk(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", 40)
    source = get_source("folder", root=corpus)
    chunks = ([(p.sha256, p)] for p in source.iter_pieces())  # more than the pool holds
    dtype = dataset.token_dtype(get_tokenizer("remi"))
    args = (source, get_tokenizer("remi"), dtype.str, str(tmp_path / "cache"))
    results = list(dataset._run_chunks(chunks, args, workers=2))
    assert sorted(k for r in results for k in r.keys) == sorted(p.sha256 for p in source.pieces())
    assert all(r.tokens is not None and len(r.tokens) for r in results)


def test_the_key_set_tells_new_keys_and_the_first_value() -> None:
    with KeySet() as keys:
        assert keys.add(["a", "b", "a"], ["1", "2", "3"]) == [None, None, "1"]
        assert keys.add(["b", "c"], ["4", "5"]) == ["2", None]
        assert keys.add_new(["c", "d", "d"]) == [False, True, False]
        assert keys.path is None  # no name left behind, even by a process killed now
        many = [f"{i:064x}" for i in range(20_000)]  # more than its page cache holds
        assert keys.add_new(many) == [True] * len(many)
        assert keys.add(many[::997], ["x"] * len(many[::997])) == [""] * len(many[::997])


def test_entry_lists_compare_by_checksum_and_by_items(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    manifest = _prepare(write_corpus(tmp_path / "corpus", 8), out)
    items = list(manifest.pieces)
    assert manifest.pieces == items and items == manifest.pieces
    assert manifest.pieces != items[:-1]
    assert list(manifest.pieces.where("split", "train")) == [e for e in items if e.split == "train"]
    tokens = load_prepared(out).split("train").tokens
    assert isinstance(tokens, np.memmap | np.ndarray) and len(tokens)


@pytest.mark.parametrize("sizes", [[0], [1, 511, 512, 513], [10240 - 1536]])
def test_tar_writer_writes_what_tarfile_writes(sizes: list[int]) -> None:
    ours, theirs = io.BytesIO(), io.BytesIO()
    writer = TarWriter(ours)
    with tarfile.open(fileobj=theirs, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for k, size in enumerate(sizes):
            data = bytes(range(256)) * (size // 256) + bytes(size % 256)
            name = f"{k:08d}.tokens.npy"
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = size, 0, 0o644, 0, 0
            info.uname = info.gname = ""
            start = tar.offset + tarfile.BLOCKSIZE
            tar.addfile(info, io.BytesIO(data))
            assert writer.add(name, data) == (start, size)
    writer.close()
    assert ours.getvalue() == theirs.getvalue()
    assert writer.sha256 == hashlib.sha256(theirs.getvalue()).hexdigest()


@pytest.mark.parametrize("shape", [(0,), (7,), (3, 4)])
def test_npy_bytes_are_what_numpy_saves(shape: tuple[int, ...]) -> None:
    arr = np.arange(int(np.prod(shape)), dtype=np.uint16).reshape(shape)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    assert npy_bytes(arr) == buf.getvalue()


@pytest.mark.parametrize("variant", ["full", "aligned"])
def test_a_streamed_lakh_lists_what_lakh_lists(tmp_path: Path, variant: str) -> None:
    base = tmp_path / f"lmd_{variant}"
    names = ["0/0aa.mid", "0/0ab.MID", "a/x/0aa.mid", "a-b/1bb.mid", "a.mid", "b/.c/2cc.mid"]
    for i, name in enumerate(names):
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_bytes(small_midi(i))
    listed = Lakh(tmp_path, variant=variant)
    streamed = Lakh(tmp_path, variant=variant)
    assert list(streamed.iter_pieces()) == listed.pieces()
    assert streamed.duplicates == listed.duplicates
    assert bool(listed.duplicates) == (variant == "full")


def test_a_shard_line_is_the_shards_compact_json() -> None:
    from array import array

    from musegen.data.shards import Shard, _write_shard_line

    members = array("q", range(2 * 1500))  # more pairs than one block of the writer
    shard = Shard("train-00000.tar", "train", 0, 1500, 9, 10240, "ab" * 32, [])
    out = io.StringIO()
    _write_shard_line(out, shard, members)
    pairs = [[members[j], members[j + 1]] for j in range(0, len(members), 2)]
    expected = json.dumps({**shard.to_dict(), "members": pairs}, separators=(",", ":"))
    assert out.getvalue() == expected + "\n"
