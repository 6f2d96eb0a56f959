"""Sharded datasets: the memmap's tokens in tars, a killed preparation run again, and
streamed windows that split by rank and worker and resume exactly."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from musegen.data import shards as shards_module
from musegen.data.dataset import Manifest, load_prepared, prepare_dataset
from musegen.data.shards import INDEX, ShardedDataset, StreamWindows, is_sharded, read_index
from musegen.data.sources import get_source
from musegen.data.training import WindowDataset
from musegen.errors import MusegenError
from musegen.tokenizers import get_tokenizer
from shardhelpers import write_corpus


def _prepare(corpus: Path, out: Path, shards: int = 0, workers: int = 1) -> Manifest:
    source = get_source("folder", root=corpus)
    tok = get_tokenizer("remi")
    return prepare_dataset(source, tok, out, workers=workers, progress=False, shards=shards)


def _tar_bytes(folder: Path) -> dict[str, object]:
    """Every shard's bytes and the index's shard list (its manifest hash covers the
    manifest's creation time)."""
    files: dict[str, object] = {p.name: p.read_bytes() for p in sorted(folder.glob("*.tar"))}
    files[INDEX] = json.loads((folder / INDEX).read_text())["shards"]
    return files


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"), 150, per_folder=50)


@pytest.fixture(scope="module")
def both(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("prepared")
    _prepare(corpus, base / "memmap")
    _prepare(corpus, base / "shards", shards=4)
    return base / "memmap", base / "shards"


# --------------------------------------------------------------------------- writing
def test_shards_hold_the_memmaps_tokens(both: tuple[Path, Path]) -> None:
    memmap, sharded = both
    a, b = load_prepared(memmap), load_prepared(sharded)
    assert isinstance(b, ShardedDataset) and not isinstance(a, ShardedDataset)
    assert a.manifest.same_content(b.manifest)  # checksums, splits, failures, tokenizer
    assert not (sharded / "train.bin").exists()
    for name in a.split_names:
        bin_hash = hashlib.sha256((memmap / f"{name}.bin").read_bytes()).hexdigest()
        tokens = b.split(name).tokens
        assert hashlib.sha256(tokens.astype(a.manifest.dtype).tobytes()).hexdigest() == bin_hash
        assert [p.tolist() for p in b.split(name)] == [p.tolist() for p in a.split(name)]
    assert [s.split for s in b.shards].count("train") == 4
    assert b.split("train").verify() == []


def test_a_shard_is_a_plain_webdataset_tar(both: tuple[Path, Path]) -> None:
    _, sharded = both
    data = load_prepared(sharded)
    split = data.split("valid")
    with tarfile.open(sharded / "valid-00000.tar") as tar:
        names = tar.getnames()
        first = np.load(io.BytesIO(tar.extractfile(names[0]).read()), allow_pickle=False)  # type: ignore[union-attr]
    assert names[:2] == ["00000000.tokens.npy", "00000000.json"]
    assert first.tolist() == split.piece(0).tolist()


def test_unchanged_rerun_rewrites_nothing_and_memmap_again_wins(
    corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    _prepare(corpus, out, shards=3)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")}
    _prepare(corpus, out, shards=3)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")} == stamps
    _prepare(corpus, out, shards=2)  # another plan: fewer shards, the extra ones removed
    assert len(read_index(out)) == len(list(out.glob("*.tar")))
    _prepare(corpus, out)  # memmaps into the same folder: the shards' index is stale now
    assert not is_sharded(out) and not isinstance(load_prepared(out), ShardedDataset)


def test_shard_writing_stopped_half_way_writes_the_same_bytes_again(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _prepare(corpus, tmp_path / "clean", shards=3)
    real, calls = shards_module._write_tar, []

    def breaks_on_the_second(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(shards_module, "_write_tar", breaks_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        _prepare(corpus, tmp_path / "ds", shards=3)
    assert not (tmp_path / "ds" / "manifest.json").exists()
    monkeypatch.setattr(shards_module, "_write_tar", real)
    _prepare(corpus, tmp_path / "ds", shards=3)
    assert _tar_bytes(tmp_path / "ds") == _tar_bytes(tmp_path / "clean")


@pytest.mark.slow
def test_kill_9_mid_preparation_then_again_gives_the_same_shards(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", 3000)
    cmd = [sys.executable, "-m", "musegen", "data", "prepare", str(corpus), "-t", "remi"]
    cmd += ["--shards", "3", "-j", "1", "-o"]
    out = tmp_path / "ds"
    proc = subprocess.Popen([*cmd, str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("cache/*/*.npz")) and proc.poll() is None:
            assert time.monotonic() < deadline, "no chunk was written"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed while it worked, not after
    assert not (out / "manifest.json").exists()
    done = list(out.glob("cache/*/*.npz"))
    again = subprocess.run([*cmd, str(out)], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert set(done) <= set(out.glob("cache/*/*.npz"))  # chunks finished before were kept
    _prepare(corpus, tmp_path / "clean", shards=3)
    assert _tar_bytes(out) == _tar_bytes(tmp_path / "clean")
    assert Manifest.load(out).same_content(Manifest.load(tmp_path / "clean"))


def test_bad_shard_counts_and_damaged_shards_are_one_line_errors(
    both: tuple[Path, Path], tmp_path: Path
) -> None:
    with pytest.raises(MusegenError, match="--shards must be >= 1"):
        shards_module.plan_shards(Manifest.load(both[1]), 0)
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in both[1].iterdir():
        if p.is_file():
            (copy / p.name).write_bytes(p.read_bytes())
    (copy / "test-00000.tar").write_bytes(b"short")
    with pytest.raises(MusegenError, match="prepare' again"):
        load_prepared(copy).split("test")


# --------------------------------------------------------------------------- streaming
def test_unshuffled_stream_is_the_memmaps_tiling(both: tuple[Path, Path]) -> None:
    memmap, sharded = both
    tile = WindowDataset(load_prepared(memmap).split("train"), 16, mode="tile")
    stream = StreamWindows(load_prepared(sharded).split("train"), 16, shuffle=False)
    assert len(stream) == len(tile)
    for i in range(len(tile)):
        for u, v in zip(stream.arrays(i), tile.arrays(i), strict=True):
            assert np.array_equal(u, v)


def test_an_epoch_streams_every_piece_once_in_a_seeded_order(both: tuple[Path, Path]) -> None:
    split = load_prepared(both[1]).split("train")
    stream = StreamWindows(split, 8, seed=3, block=16)
    order = stream.epoch_order(0)
    assert sorted(order.tolist()) == list(range(len(split)))
    assert order.tolist() != list(range(len(split)))
    assert stream.epoch_order(1).tolist() != order.tolist()
    stream_tokens = np.concatenate([split.piece(int(i)) for i in order])
    windows = [stream.window(p) for p in range(len(stream))]
    starts = sorted(
        next(
            s
            for s in range(0, len(stream_tokens), 8)
            if np.array_equal(stream_tokens[s : s + 9], w)
        )
        for w in windows[:20]
    )
    assert len(set(starts)) == 20  # distinct windows of the stream
    again = StreamWindows(split, 8, seed=3, block=16)
    assert all(np.array_equal(again.window(p), windows[p]) for p in range(0, len(stream), 7))


def test_ranks_and_workers_split_a_global_batch(both: tuple[Path, Path]) -> None:
    stream = StreamWindows(load_prepared(both[1]).split("train"), 8, seed=1)
    for step in (0, 5):
        whole = stream.rank_positions(step, 8)
        ranks = [stream.rank_positions(step, 4, r, 2) for r in range(2)]
        assert ranks[0] + ranks[1] == whole
        parts = [stream.rank_positions(step, 4, 1, 2, w, 3) for w in range(3)]
        assert sorted(p for part in parts for p in part) == ranks[1]
    one = stream.batch_items(3, 8)
    two = stream.batch_items(3, 4, 0, 2) + stream.batch_items(3, 4, 1, 2)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(one, two, strict=True))


def test_a_stream_pickles_without_its_open_files(both: tuple[Path, Path]) -> None:
    stream = StreamWindows(load_prepared(both[1]).split("train"), 8, seed=2)
    first = stream.window(5)
    copy = pickle.loads(pickle.dumps(stream))
    assert np.array_equal(copy.window(5), first)
    assert stream.window(len(stream) + 5).shape == first.shape  # the next epoch


def test_training_stopped_mid_epoch_resumes_with_the_same_batches(
    tmp_path: Path, one_torch_thread: None
) -> None:
    from musegen.train.trainer import Trainer
    from tinymodels import TinyLM, cfg, save_tiny

    _prepare(write_corpus(tmp_path / "corpus", 20), tmp_path / "ds", shards=2)
    data = load_prepared(tmp_path / "ds")
    seen: list[tuple[int, int]] = []

    class Recorded(StreamWindows):
        stop_at: int | None = None

        def batch_items(self, step, batch, rank=0, world=1):  # type: ignore[no-untyped-def]
            if step == self.stop_at:
                raise KeyboardInterrupt  # the run is killed here
            seen.append((step, self.rank_positions(step, batch, rank, world)[0]))
            return super().batch_items(step, batch, rank, world)

    def trainer(out: Path, stop_at: int | None) -> Trainer:
        torch.manual_seed(0)
        stream = Recorded(data.split("train"), 12, seed=4, block=8)
        stream.stop_at = stop_at
        assert len(stream) < 12 * 8  # the runs go on into a second epoch
        c = cfg(max_steps=12, checkpoint_every=3, precision="fp32", eval_every=100)
        model = TinyLM(vocab=len(data.tokenizer))
        return Trainer(model, stream, None, c, out, save_fn=save_tiny)

    trainer(tmp_path / "a", None).fit()
    whole = list(seen)
    seen.clear()
    with pytest.raises(KeyboardInterrupt):
        trainer(tmp_path / "b", stop_at=7).fit()  # mid-epoch; last checkpoint at step 6
    seen.clear()
    resumed = trainer(tmp_path / "b", None)
    resumed.fit(resume=True)
    assert seen == whole[6:]
    from safetensors.torch import load_file

    wa = load_file(str(tmp_path / "a" / "checkpoint" / "model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "checkpoint" / "model.safetensors"))
    for k in wa:
        assert torch.equal(wa[k], wb[k])
