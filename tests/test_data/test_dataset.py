"""Prepared datasets: round trip, manifest counts, cache reuse, resume, training windows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from musegen.data.dataset import (
    PreparedDataset,
    load_prepared,
    prepare_dataset,
)
from musegen.data.sources.base import Piece, Source
from musegen.data.training import IGNORE_INDEX, RollDataset, WindowDataset, collate_rolls
from musegen.errors import InputError, MusegenError
from musegen.score import Score, Track, make_notes
from musegen.tokenizers import get_tokenizer
from musegen.tokenizers.remi import RemiTokenizer
from musegen.utils import sha256_bytes


def tiny_score(seed: int, n: int = 24, drums: bool = False) -> Score:
    """A small random score on a 16th grid (ticks at 480 per quarter)."""
    rng = np.random.default_rng(seed)
    start = np.sort(rng.integers(0, 64, n)) * 120
    notes = make_notes(start, rng.integers(1, 8, n) * 120, rng.integers(48, 84, n), 80)
    tracks = [Track(notes, program=int(rng.integers(0, 8)))]
    if drums:
        tracks.append(Track(make_notes(start[:6], [120] * 6, [36] * 6, 100), is_drum=True))
    return Score(tpq=480, tracks=tracks)


class TinySource(Source):
    """Scores made in code; ``bad`` pieces raise InputError; every load is logged to a file.

    ``interrupt_at`` makes loading that piece raise KeyboardInterrupt (a user's Ctrl-C) and
    ``die_at`` kills the worker process outright, each only while ``trap`` exists.
    """

    name = "tiny"
    description = "test pieces"

    def __init__(self, n: int = 9, log: Path | None = None, trap: Path | None = None) -> None:
        super().__init__(None)
        self.scores = {f"p{i}": tiny_score(i, drums=i == 1) for i in range(n)}
        self.splits = {f"p{i}": ("train", "valid", "test")[i % 3] for i in range(n)}
        self.bad = {"p4"}
        self.crash: set[str] = set()  # pieces whose loading breaks in an unexpected way
        self.log, self.trap = log, trap
        self.interrupt_at: str | None = None
        self.die_at: str | None = None

    def pieces(self) -> list[Piece]:
        return [
            Piece(pid, self.splits[pid], f"tiny:{pid}", sha256_bytes(_content(s)))
            for pid, s in self.scores.items()
        ]

    def load(self, piece: Piece) -> Score:
        if self.log is not None:
            with open(self.log, "a") as f:
                f.write(piece.id + "\n")
        trapped = self.trap is not None and self.trap.exists()
        if trapped and piece.id == self.interrupt_at:
            raise KeyboardInterrupt
        if trapped and piece.id == self.die_at:
            os._exit(3)
        if piece.id in self.bad:
            raise InputError(piece.origin, "not a score")
        if piece.id in self.crash:
            raise ValueError("parser bug")
        return self.scores[piece.id]


def _content(score: Score) -> bytes:
    return b"".join(t.notes.tobytes() + bytes([t.is_drum, t.program]) for t in score.tracks)


def loads(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.fixture
def remi():  # type: ignore[no-untyped-def]
    return get_tokenizer("remi")


# --------------------------------------------------------------------------- prepare
def test_prepare_round_trip_and_manifest(tmp_path: Path, remi) -> None:  # type: ignore[no-untyped-def]
    src = TinySource()
    manifest = prepare_dataset(src, remi, tmp_path / "ds", workers=2, progress=False)
    ds = load_prepared(tmp_path / "ds")
    assert isinstance(ds, PreparedDataset) and ds.manifest == manifest
    assert ds.tokenizer.to_dict() == remi.to_dict()
    assert manifest.dtype == "uint16" and manifest.frame_width is None
    # counts per split; the bad piece is listed with its reason
    assert {s: c.pieces for s, c in manifest.splits.items()} == {"train": 3, "valid": 2, "test": 3}
    assert manifest.splits["valid"].failures == 1
    (failure,) = manifest.failures
    assert failure.id == "p4" and "not a score" in failure.reason
    for name in ("train", "valid", "test"):
        split = ds.split(name)
        assert isinstance(split.tokens, np.memmap) or split.n_tokens == 0
        assert split.n_tokens == manifest.splits[name].tokens == int(split.offsets[-1])
        assert manifest.splits[name].notes == sum(e.notes for e in split.entries)
        for i, entry in enumerate(split.entries):
            ids = np.asarray(split.piece(i))
            assert ids[0] == 1 and ids[-1] == 2 and len(ids) == entry.length  # BOS ... EOS
            np.testing.assert_array_equal(ids, remi.encode(src.scores[entry.id]))
            decoded = remi.decode(ids)
            assert decoded.n_notes == remi.prepare(src.scores[entry.id]).n_notes == entry.notes
    on_disk = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert on_disk["source"]["name"] == "tiny" and on_disk["musegen_version"]
    assert set(on_disk["libraries"]) == {"music21", "symusic", "numpy"}  # what read the pieces


def test_rerun_uses_cache_and_changes_encode_only_new(tmp_path: Path, remi) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "loads.txt"
    src = TinySource(log=log)
    first = prepare_dataset(src, remi, tmp_path / "ds", workers=2, progress=False)
    assert sorted(loads(log)) == sorted(src.scores)  # each piece loaded once (bad one too)
    mtime = (tmp_path / "ds" / "train.bin").stat().st_mtime_ns
    log.unlink()
    again = prepare_dataset(src, remi, tmp_path / "ds", workers=2, progress=False)
    assert loads(log) == []  # nothing loaded, nothing encoded, nothing rewritten
    assert again == first and (tmp_path / "ds" / "train.bin").stat().st_mtime_ns == mtime
    # one changed piece and one new piece: only those are encoded
    src.scores["p0"] = tiny_score(100)
    src.scores["p9"], src.splits["p9"] = tiny_score(9), "train"
    third = prepare_dataset(src, remi, tmp_path / "ds", workers=2, progress=False)
    assert sorted(loads(log)) == ["p0", "p9"]
    assert third.splits["train"].pieces == 4
    ds = load_prepared(tmp_path / "ds")
    np.testing.assert_array_equal(ds.split("train").piece(0), remi.encode(src.scores["p0"]))
    # another tokenizer config is another cache
    log.unlink()
    prepare_dataset(src, get_tokenizer("remi", velocity_bins=0), tmp_path / "ds", 1, False)
    assert len(loads(log)) == len(src.scores)


def test_unexpected_errors_are_listed_and_tried_again(tmp_path: Path, remi) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "loads.txt"
    src = TinySource(n=6, log=log)
    src.crash = {"p2"}
    manifest = prepare_dataset(src, remi, tmp_path / "ds", workers=1, progress=False)
    reasons = {f.id: f.reason for f in manifest.failures}
    assert reasons == {"p2": "ValueError: parser bug", "p4": "tiny:p4: not a score"}
    log.unlink()
    prepare_dataset(src, remi, tmp_path / "ds", workers=1, progress=False)
    assert loads(log) == ["p2"]  # bad input is cached, a crash is not


class PickyRemi(RemiTokenizer):
    """REMI that refuses scores with drums, and so any batch holding one."""

    def encode_many(self, scores, bos=True, eos=True):  # type: ignore[no-untyped-def]
        scores = list(scores)
        if any(t.is_drum for s in scores for t in s.tracks):
            raise MusegenError("no drums here")
        return super().encode_many(scores, bos, eos)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_batch_that_fails_is_encoded_piece_by_piece(tmp_path: Path, workers: int) -> None:
    src = TinySource(n=6)  # p1 has drums: the batch fails, then only p1 does
    manifest = prepare_dataset(src, PickyRemi(), tmp_path / "ds", workers, progress=False)
    assert {f.id: f.reason for f in manifest.failures} == {
        "p1": "no drums here",
        "p4": "tiny:p4: not a score",
    }
    ds = load_prepared(tmp_path / "ds")
    remi = RemiTokenizer()
    for name in ds.split_names:
        split = ds.split(name)
        for i, entry in enumerate(split.entries):
            np.testing.assert_array_equal(split.piece(i), remi.encode(src.scores[entry.id]))


def _files(folder: Path) -> dict[str, bytes]:
    skip = ("manifest.json",)
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name not in skip}


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_run_resumes_to_the_same_result(tmp_path: Path, remi, workers: int) -> None:  # type: ignore[no-untyped-def]
    log, trap = tmp_path / "loads.txt", tmp_path / "trap"
    src = TinySource(n=30, log=log, trap=trap)
    trap.touch()
    if workers == 1:
        src.interrupt_at = "p20"
        with pytest.raises(KeyboardInterrupt):
            prepare_dataset(src, remi, tmp_path / "ds", workers=workers, progress=False)
    else:
        src.die_at = "p20"
        with pytest.raises(MusegenError, match="run the same command again to resume"):
            prepare_dataset(src, remi, tmp_path / "ds", workers=workers, progress=False)
    assert not (tmp_path / "ds" / "manifest.json").exists()  # no half-written dataset
    trap.unlink()
    log.unlink()
    resumed = prepare_dataset(src, remi, tmp_path / "ds", workers=workers, progress=False)
    redone = set(loads(log))
    assert "p20" in redone and "p0" not in redone  # chunks finished before were kept
    clean = prepare_dataset(src, remi, tmp_path / "clean", workers=workers, progress=False)
    assert resumed.same_content(clean)
    assert _files(tmp_path / "ds") == _files(tmp_path / "clean")


def test_grid_tokenizer_stores_rows(tmp_path: Path) -> None:
    tok = get_tokenizer("roll", low=21, high=108)
    src = TinySource(n=4)
    manifest = prepare_dataset(src, tok, tmp_path / "ds", workers=1, progress=False)
    assert manifest.frame_width == 88
    split = load_prepared(tmp_path / "ds").split("train")
    for i, entry in enumerate(split.entries):
        np.testing.assert_array_equal(split.piece(i), tok.encode(src.scores[entry.id]))
    from musegen.data.augment import TokenTranspose

    windows = WindowDataset(split, seq_len=8, seed=0, augment=TokenTranspose(tok, max_shift=3))
    x, y = windows[0]
    assert x.shape == y.shape == (8, 88)
    assert x.sum() > 0 and set(np.unique(x.numpy())) <= {0, 1, 2}


def test_bad_inputs_are_musegen_errors(tmp_path: Path, remi) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MusegenError, match="not a prepared dataset"):
        load_prepared(tmp_path)
    src = TinySource(n=3)
    src.bad = set(src.scores)
    manifest = prepare_dataset(src, remi, tmp_path / "ds", workers=1, progress=False)
    assert (
        len(manifest.failures) == 3 and load_prepared(tmp_path / "ds").split("train").n_tokens == 0
    )
    (tmp_path / "ds" / "train.bin").write_bytes(b"\0\0")
    with pytest.raises(MusegenError, match="prepare' again"):
        load_prepared(tmp_path / "ds").split("train")
    with pytest.raises(MusegenError, match="no split"):
        load_prepared(tmp_path / "ds").split("nope")


# --------------------------------------------------------------------------- windows
@pytest.fixture
def prepared(tmp_path: Path, remi) -> PreparedDataset:  # type: ignore[no-untyped-def]
    prepare_dataset(TinySource(n=12), remi, tmp_path / "ds", workers=1, progress=False)
    return load_prepared(tmp_path / "ds")


def test_random_windows_are_shaped_and_reproducible(prepared: PreparedDataset) -> None:
    split = prepared.split("train")
    ds = WindowDataset(split, seq_len=32, seed=3)
    assert len(ds) == (split.n_tokens - 1) // 32
    x, y = ds[0]
    assert x.shape == y.shape == (32,) and str(x.dtype) == "torch.int64"
    assert (x[1:] == y[:-1]).all()
    start = ds.start(0)
    np.testing.assert_array_equal(x.numpy(), split.tokens[start : start + 32])
    again = WindowDataset(split, seq_len=32, seed=3)
    assert [again.start(i) for i in range(len(ds))] == [ds.start(i) for i in range(len(ds))]
    assert [WindowDataset(split, 32, seed=4).start(i) for i in range(len(ds))] != [
        ds.start(i) for i in range(len(ds))
    ]
    first = [ds.start(i) for i in range(len(ds))]
    ds.set_epoch(1)
    assert [ds.start(i) for i in range(len(ds))] != first


def test_windows_pickle_as_a_file_reference(prepared: PreparedDataset) -> None:
    import pickle

    ds = WindowDataset(prepared.split("train"), seq_len=16, seed=2)
    blob = pickle.dumps(ds)
    assert len(blob) < 2000  # the tokens stay in their file
    back = pickle.loads(blob)
    assert isinstance(back.tokens, np.memmap)
    np.testing.assert_array_equal(back.arrays(3)[0], ds.arrays(3)[0])


def test_tiling_covers_every_target_once(prepared: PreparedDataset) -> None:
    split = prepared.split("train")
    ds = WindowDataset(split, seq_len=50, mode="tile")
    ys = [ds.arrays(i)[1] for i in range(len(ds))]
    targets = np.concatenate(ys)
    targets = targets[targets != IGNORE_INDEX]
    np.testing.assert_array_equal(targets, split.tokens[1:])
    assert ds.arrays(len(ds) - 1)[0].shape == (50,)


def test_windows_with_token_transposition(prepared: PreparedDataset) -> None:
    from musegen.data.augment import TokenTranspose

    split = prepared.split("train")
    aug = TokenTranspose(prepared.tokenizer, max_shift=5)
    ds = WindowDataset(split, seq_len=64, seed=1, augment=aug)
    plain = WindowDataset(split, seq_len=64, seed=1)
    x0, _ = ds[0]
    assert x0.shape == (64,)
    np.testing.assert_array_equal(ds[0][0].numpy(), x0.numpy())  # deterministic
    changed = sum(not np.array_equal(ds.arrays(i)[0], plain.arrays(i)[0]) for i in range(len(ds)))
    assert changed > 0


def test_roll_dataset_and_collate() -> None:
    rng = np.random.default_rng(0)
    rolls = [rng.random((t, 88)) < 0.05 for t in (5, 9, 7)]
    ds = RollDataset(rolls, max_frames=8, seed=0)
    items = [ds[i] for i in range(len(ds))]
    assert [len(r) for r in items] == [5, 8, 7]
    batch = collate_rolls(items)
    assert tuple(batch["rolls"].shape) == (3, 8, 88)
    assert batch["lengths"].tolist() == [5, 8, 7]
    assert batch["mask"].sum().item() == 20 and not batch["mask"][0, 5:].any()
    assert (batch["rolls"][0, :5].numpy() == rolls[0]).all()


def test_roll_dataset_from_a_roll_source() -> None:
    from musegen.data.sources import get_source

    try:
        src = get_source("jsb")
        pieces = src.pieces()
    except MusegenError as e:
        pytest.skip(f"jsb source not available: {e}")
    assert pieces
    ds = RollDataset.from_source(src, "valid")
    assert len(ds) == 76 and ds[0].shape[1] == 88


def test_data_package_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, musegen.data, musegen.data.dataset, musegen.data.training, "
        "musegen.data.augment; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
