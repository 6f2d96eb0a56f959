"""Sharded datasets: a prepared dataset as tar shards, streamed for training.

``musegen data prepare SOURCE --shards N`` writes, in place of ``{split}.bin``::

    DIR/train-00000.tar ...   WebDataset-style tars: per piece ``NNNNNNNN.tokens.npy`` (its
                              framed ids, as in the memmap) and ``NNNNNNNN.json`` (id, sha256,
                              split, notes); N shards for train, valid and test cut to the
                              same size; pieces in the manifest's order, so the shards of a
                              split concatenated are the memmap's ``{split}.bin``
    DIR/shards.json           each shard's split, first piece, pieces, tokens, bytes, sha256
                              and where each piece's ``.npy`` member lies in it
    DIR/manifest.json         the same manifest as a memmap dataset's (checksums, splits,
                              failures, tokenizer config), written last

Why tars: any tool reads them (``tar``, the ``webdataset`` package, object stores that serve
byte ranges), they are read front to back, and they need no library of ours to write. The
few things a trainer needs that the format lacks (checksums, member offsets for a seek, the
tokenizer) live in our two JSON files. Tars are written deterministically (fixed times,
owners, order), so a run killed at any point and run again writes the same bytes.

:func:`~musegen.data.dataset.load_prepared` opens either kind; a sharded split
(:class:`ShardSplit`) reads pieces from the tars, and :class:`StreamWindows` serves training
windows from them: each epoch shuffles the shard order and the pieces in each shard (seeded
by ``(seed, epoch)``), cuts the stream into windows, and shuffles windows within blocks of
:data:`BLOCK` windows. Window ``p`` of the run (epoch ``p // len``) is a pure function of
``(seed, p)``: the trainer's global batch ``k`` is positions ``k*B*W ... (k+1)*B*W - 1`` and
rank ``r`` takes its ``B`` of them (:meth:`StreamWindows.rank_positions`; DataLoader
workers take every ``workers``-th of a rank's), so a resumed run (step ``k``) reads the same
windows as an uninterrupted one, and a run on W processes sees the batches of one process
with W times the batch.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np

from musegen.data.bookkeeping import EntryList
from musegen.data.dataset import (
    MANIFEST,
    ChunkCache,
    Manifest,
    PieceEntry,
    PreparedDataset,
    TokenSplit,
    entries_with_tokens,
    publish_lists,
)
from musegen.data.tarfiles import TarWriter, npy_bytes
from musegen.errors import MusegenError
from musegen.tokenizers.base import PAD
from musegen.utils import atomic_write_text, default_file_mode, sha256_bytes, sha256_file

INDEX = "shards.json"
INDEX_FORMAT = 1
BLOCK = 256  # windows shuffled together; a reader holds one block's tokens
IGNORE_INDEX = -100


# --------------------------------------------------------------------------- the index
@dataclass(frozen=True)
class Shard:
    """One tar: which pieces of which split, and where each piece's tokens are in it."""

    name: str
    split: str
    first: int  # index of its first piece in the split
    pieces: int
    tokens: int
    bytes: int
    sha256: str
    members: list[list[int]]  # [data offset, size] of each piece's .npy member

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _index_header(folder: Path) -> dict[str, Any]:
    """``shards.json`` without its shards: its first line when written a shard to a line
    (see :func:`_write_index`), else the whole file read."""
    with open(folder / INDEX, encoding="utf-8") as f:
        first = f.readline().rstrip()
    if first.endswith('"shards":['):
        return json.loads(first + "]}")
    return json.loads((folder / INDEX).read_text())


def _index_shards(folder: Path) -> Iterator[dict[str, Any]]:
    """``shards.json``'s shards one at a time (a line each), so that a preparation can check
    them without holding every shard's member list; any other layout is read whole."""
    with open(folder / INDEX, encoding="utf-8") as f:
        if not f.readline().rstrip().endswith('"shards":['):
            yield from json.loads((folder / INDEX).read_text())["shards"]
            return
        for line in f:
            line = line.rstrip().rstrip(",")
            if line.startswith("{"):
                yield json.loads(line)


def is_sharded(folder: str | Path) -> bool:
    """Whether ``folder`` holds shards written with its current manifest (and no memmap
    written since: the shard writer removes ``*.bin``, the memmap writer leaves the tars)."""
    folder = Path(folder)
    if any(folder.glob("*.bin")):
        return False
    try:
        header = _index_header(folder)
        return header.get("manifest_sha256") == sha256_file(folder / MANIFEST)
    except (OSError, ValueError, AttributeError):
        return False


def read_index(folder: Path) -> list[Shard]:
    try:
        index = json.loads((folder / INDEX).read_text())
        if index.get("format") != INDEX_FORMAT:
            raise MusegenError(f"format {index.get('format')!r}, this musegen reads {INDEX_FORMAT}")
        return [Shard(**s) for s in index["shards"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MusegenError(f"{folder / INDEX}: cannot read ({e}); prepare it again") from e


# --------------------------------------------------------------------------- writing
def check_shard_count(shards: int) -> None:
    if shards < 1:
        raise MusegenError(f"--shards must be >= 1, got {shards}")


def shard_size(manifest: Manifest, shards: int) -> int:
    """Tokens per shard: ``shards`` shards for train (the largest split if none)."""
    check_shard_count(shards)
    totals = {s: c.tokens for s, c in manifest.splits.items()}
    base = totals.get("train") or max(totals.values(), default=0)
    return max(1, -(-base // shards))


def _split_entries(manifest: Manifest, split: str) -> Iterator[PieceEntry]:
    if isinstance(manifest.pieces, EntryList):  # skips the other splits' lines unparsed
        return manifest.pieces.where("split", split)
    return (e for e in manifest.pieces if e.split == split)


def _cut(items: Iterable[Any], size: int, entry: Any = None) -> Iterator[Iterator[Any]]:
    """Consecutive items of a split grouped into shards: a cut where the split's token count
    crosses a multiple of ``size`` (``entry`` finds an item's :class:`PieceEntry`)."""
    get = entry or (lambda item: item)
    return (group for _bucket, group in groupby(items, key=lambda it: get(it).offset // size))


def plan_shards(manifest: Manifest, shards: int) -> dict[str, list[list[PieceEntry]]]:
    """Pieces of each split cut into shards: ``shards`` for train, the rest at that size.

    Cuts fall where a split's token count crosses a multiple of the shard size, so shards
    hold about equal tokens; a piece larger than a shard is a shard of its own.
    """
    size = shard_size(manifest, shards)
    return {s: [list(g) for g in _cut(_split_entries(manifest, s), size)] for s in manifest.splits}


def _layout(manifest: Manifest, size: int) -> list[tuple[str, int, int]]:
    """(split, first piece, pieces) of each shard the plan makes, without holding pieces."""
    layout = []
    for split in manifest.splits:
        first = 0
        for group in _cut(_split_entries(manifest, split), size):
            n = sum(1 for _ in group)
            layout.append((split, first, n))
            first += n
    return layout


def write_shards(out: Path, manifest: Manifest, cache: ChunkCache, shards: int) -> Manifest:
    """Write the splits as tar shards, ``shards.json``, then the manifest; returns it.

    Nothing is rewritten when the folder already holds these shards. The old manifest goes
    first and the new one comes last (as for memmaps), so a killed run leaves no manifest,
    and the next run writes every shard again from the cache, byte for byte the same. Pieces
    stream from the manifest's list and the cache into one shard at a time; each shard's
    index line goes to a scratch file as it is done.
    """
    out.mkdir(parents=True, exist_ok=True)
    size = shard_size(manifest, shards)
    old = _unchanged(out, manifest, size)
    if old is not None:
        return old
    (out / MANIFEST).unlink(missing_ok=True)
    for path in out.glob(".*.tar.*.tmp"):  # shards of a killed run
        path.unlink(missing_ok=True)
    fd, lines = tempfile.mkstemp(prefix=f".{INDEX}.lines.", suffix=".tmp", dir=out)
    try:
        names = set()
        with os.fdopen(fd, "w", encoding="utf-8") as index_lines:
            for split in manifest.splits:
                first = 0
                pieces = entries_with_tokens(_split_entries(manifest, split), cache)
                for k, group in enumerate(_cut(pieces, size, entry=lambda item: item[0])):
                    name = f"{split}-{k:05d}.tar"
                    shard, members = _write_tar(out / name, split, first, group, manifest.dtype)
                    _write_shard_line(index_lines, shard, members)
                    names.add(name)
                    first += shard.pieces
        for path in out.glob("*.tar"):  # shards of an earlier, larger plan
            if path.name not in names:
                path.unlink()
        for split in manifest.splits:  # memmap files of an earlier run
            (out / f"{split}.bin").unlink(missing_ok=True)
            (out / f"{split}.idx.npy").unlink(missing_ok=True)
        manifest = publish_lists(out, manifest)
        text = manifest.to_json()
        header = {
            "format": INDEX_FORMAT,
            "kind": "webdataset-tar",
            "manifest_sha256": sha256_bytes(text.encode("utf-8")),
        }
        _write_index(out, header, Path(lines))
    finally:
        Path(lines).unlink(missing_ok=True)
    atomic_write_text(out / MANIFEST, text)
    return Manifest.load(out)


def _write_index(out: Path, header: dict[str, Any], lines: Path) -> None:
    """``shards.json``: the header, then a shard to a line (valid JSON throughout)."""
    head = json.dumps(header, separators=(",", ":"))[:-1] + ',"shards":['
    fd, tmp = tempfile.mkstemp(prefix=f".{INDEX}.", suffix=".tmp", dir=out)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f, open(lines, encoding="utf-8") as src:
            f.write(head)
            sep = "\n"
            for line in src:
                f.write(sep + line.rstrip("\n"))
                sep = ",\n"
            f.write("\n]}\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, out / INDEX)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _unchanged(out: Path, manifest: Manifest, size: int) -> Manifest | None:
    """The existing manifest when the folder already holds these pieces in shards of
    ``size`` tokens."""
    if not is_sharded(out):
        return None
    try:
        old = Manifest.load(out)
        if not old.same_content(manifest):
            return None
        found = []
        for s in _index_shards(out):
            path = out / s["name"]
            if not path.is_file() or path.stat().st_size != s["bytes"]:
                return None
            found.append((s["split"], s["first"], s["pieces"]))
    except (MusegenError, OSError, ValueError, KeyError, TypeError):
        return None
    return old if found == _layout(manifest, size) else None


def _write_tar(
    path: Path,
    split: str,
    first: int,
    pieces: Iterable[tuple[PieceEntry, np.ndarray]],
    dtype: str,
) -> tuple[Shard, array]:
    """One shard of ``pieces`` (entries with their tokens), to a temporary name then
    renamed; members in a fixed form (:mod:`musegen.data.tarfiles`). Returns the shard
    (without its member list) and its members' offsets and sizes, flat."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    members = array("q")  # data offset, size of each piece's .npy member
    tokens = 0
    n = 0
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            tar = TarWriter(f)
            for i, (e, ids) in enumerate(pieces):
                key = f"{first + i:08d}"
                members.extend(
                    tar.add(f"{key}.tokens.npy", npy_bytes(ids.astype(dtype, copy=False)))
                )
                meta = {"id": e.id, "sha256": e.sha256, "split": split, "notes": e.notes}
                tar.add(f"{key}.json", json.dumps(meta, sort_keys=True).encode())
                tokens += e.length
                n += 1
            tar.close()
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Shard(path.name, split, first, n, tokens, tar.offset, tar.sha256, []), members


def _write_shard_line(f: Any, shard: Shard, members: array) -> None:
    """A shard's line of ``shards.json`` (compact JSON of :meth:`Shard.to_dict`), its member
    list written from the flat ``members`` (offset, size, offset, size, ...) a block at a
    time."""
    head = json.dumps({**shard.to_dict(), "members": None}, separators=(",", ":"))
    f.write(head[: -len("null}")] + "[")
    for b in range(0, len(members), 2048):
        block = members[b : b + 2048]
        pairs = ",".join(f"[{block[j]},{block[j + 1]}]" for j in range(0, len(block), 2))
        f.write(("," if b else "") + pairs)
    f.write("]}\n")


# --------------------------------------------------------------------------- reading
class ShardSplit(TokenSplit):
    """A split read from its shards: pieces by index or in order, tokens only if asked.

    It answers what a memmap :class:`~musegen.data.dataset.TokenSplit` answers; ``tokens``
    (the whole split in memory) is made on first use, meant for small splits such as valid.
    Training reads the train split through :class:`StreamWindows` instead.
    """

    def __init__(
        self, folder: Path, name: str, shards: list[Shard], entries: list[PieceEntry], dtype: str
    ) -> None:
        self.name = name
        self.folder = folder
        self.shards = shards
        self.entries = entries
        self.dtype = np.dtype(dtype)
        lengths = np.array([e.length for e in entries], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self._firsts = np.array([s.first for s in shards], np.int64)
        self._files: dict[str, Any] = {}
        self._tokens: np.ndarray | None = None

    __eq__ = object.__eq__  # not the dataclass's: that would read every token
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"ShardSplit({self.name!r}: {len(self)} pieces in {len(self.shards)} shards)"

    def piece(self, i: int) -> np.ndarray:
        if not 0 <= i < len(self):
            raise IndexError(f"piece {i} out of range 0..{len(self) - 1}")
        k = int(np.searchsorted(self._firsts, i, side="right")) - 1
        shard = self.shards[k]
        offset, size = shard.members[i - shard.first]
        f = self._files.get(shard.name)
        if f is None:
            f = self._files[shard.name] = open(self.folder / shard.name, "rb")  # noqa: SIM115
        f.seek(offset)
        data = f.read(size)
        if len(data) != size:
            raise MusegenError(f"{self.folder / shard.name}: shorter than its index says")
        return np.load(io.BytesIO(data), allow_pickle=False)

    @property  # type: ignore[override]
    def tokens(self) -> np.ndarray:
        if self._tokens is None:
            parts = [self.piece(i) for i in range(len(self))]
            self._tokens = np.concatenate(parts) if parts else np.zeros(0, self.dtype)
        return self._tokens

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_files"] = {}  # each process opens its own
        state["_tokens"] = None
        return state

    def verify(self) -> list[str]:
        """The shards whose bytes differ from their checksum (empty: all good)."""
        return [s.name for s in self.shards if sha256_file(self.folder / s.name) != s.sha256]


class ShardedDataset(PreparedDataset):
    """A folder written by ``prepare_dataset(..., shards=N)``; splits are :class:`ShardSplit`."""

    def __init__(self, folder: str | Path) -> None:
        super().__init__(folder)
        self.shards = read_index(self.path)

    def split(self, name: str) -> ShardSplit:  # type: ignore[override]
        if name not in self.manifest.splits:
            raise MusegenError(
                f"{self.path}: no split {name!r}; it has {', '.join(self.manifest.splits)}"
            )
        if name not in self._splits:
            shards = [s for s in self.shards if s.split == name]
            for s in shards:
                path = self.path / s.name
                if not path.is_file() or path.stat().st_size != s.bytes:
                    raise MusegenError(
                        f"{path}: missing or not the size {INDEX} lists; run "
                        "'musegen data prepare' again"
                    )
            entries = list(_split_entries(self.manifest, name))
            self._splits[name] = ShardSplit(self.path, name, shards, entries, self.manifest.dtype)
        return self._splits[name]  # type: ignore[return-value]

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {v.pieces}" for k, v in self.manifest.splits.items())
        return f"ShardedDataset({str(self.path)!r}: {len(self.shards)} shards; {counts})"


# --------------------------------------------------------------------------- streaming
class StreamWindows:
    """Training windows of ``seq_len + 1`` tokens streamed from a :class:`ShardSplit`.

    ``shuffle=True`` (training): position ``p`` is window ``p % len`` of epoch ``p // len``,
    where an epoch is the shards in a seeded order, each shard's pieces in a seeded order,
    cut into whole windows, shuffled within blocks of :data:`BLOCK`. ``shuffle=False``: the
    split in its own order, windows starting every ``seq_len`` tokens, the last one padded:
    the same items as :class:`~musegen.data.training.WindowDataset` in ``"tile"`` mode on the
    memmap of the same data. Items are ``(x, y)``; ``augment`` as for ``WindowDataset``.
    """

    def __init__(
        self,
        split: ShardSplit,
        seq_len: int,
        seed: int = 0,
        shuffle: bool = True,
        augment: Any = None,
        block: int = BLOCK,
    ) -> None:
        if seq_len < 1:
            raise MusegenError(f"seq_len must be >= 1, got {seq_len}")
        if split.n_tokens < 2:
            raise MusegenError(f"split {split.name!r} has {split.n_tokens} tokens; need >= 2")
        self.split = split
        self.seq_len = seq_len
        self.seed = seed
        self.shuffle = shuffle
        self.augment = augment
        self.block = max(1, block)
        self.n_tokens = split.n_tokens
        targets = self.n_tokens - 1
        self._len = max(1, targets // seq_len) if shuffle else -(-targets // seq_len)
        self._order: tuple[int, np.ndarray, np.ndarray] | None = None  # epoch, pieces, starts
        self._blocks: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        """Windows per epoch."""
        return self._len

    # ----------------------------------------------------------- positions
    def rank_positions(
        self,
        step: int,
        batch: int,
        rank: int = 0,
        world: int = 1,
        worker: int = 0,
        workers: int = 1,
    ) -> list[int]:
        """Positions of global batch ``step`` that ``rank`` of ``world`` reads (``batch`` per
        rank), and of those the ones DataLoader ``worker`` of ``workers`` makes."""
        start = (step * world + rank) * batch
        return list(range(start + worker, start + batch, workers))

    def batch_items(self, step: int, batch: int, rank: int = 0, world: int = 1) -> list[Any]:
        """Rank ``rank``'s items of global batch ``step`` (what the trainer asks for)."""
        return [self[p] for p in self.rank_positions(step, batch, rank, world)]

    # ----------------------------------------------------------- windows
    def window(self, position: int) -> np.ndarray:
        """The ``seq_len + 1`` tokens at ``position`` (shorter at the end when not shuffled)."""
        if position < 0 or (not self.shuffle and position >= self._len):
            raise IndexError(f"window {position} out of range")
        epoch, j = divmod(position, self._len)
        L = self.seq_len
        if not self.shuffle:
            start = j * L
            return self._span(0, start, min(start + L + 1, self.n_tokens))
        b, lo = j // self.block, (j // self.block) * self.block
        hi = min(lo + self.block, self._len)
        perm = np.random.default_rng((self.seed, epoch, b, 7)).permutation(hi - lo)
        w = lo + int(perm[j - lo])
        key = (epoch, b)
        tokens = self._blocks.get(key)
        if tokens is None:
            tokens = self._span(epoch, lo * L, min(hi * L + 1, self.n_tokens))
            self._blocks[key] = tokens
            if len(self._blocks) > 2:
                self._blocks.popitem(last=False)
        start = (w - lo) * L
        window = tokens[start : start + L + 1]
        if self.augment is None:
            return window
        rng = np.random.default_rng((self.seed, epoch, j, 1))
        if hasattr(self.augment, "window"):
            return np.asarray(self.augment.window(tokens, start, start + len(window), rng))
        return np.asarray(self.augment(window, rng))

    def arrays(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        w = np.asarray(self.window(position), np.int64)
        n = len(w) - 1
        x = np.full((self.seq_len, *w.shape[1:]), PAD, np.int64)
        y = np.full((self.seq_len, *w.shape[1:]), IGNORE_INDEX, np.int64)
        x[:n], y[:n] = w[:-1], w[1:]
        return x, y

    def __getitem__(self, position: int) -> tuple[Any, Any]:
        import torch

        x, y = self.arrays(position)
        return torch.from_numpy(x), torch.from_numpy(y)

    def set_epoch(self, epoch: int) -> None:
        """Nothing to do: positions carry their epoch."""

    # ----------------------------------------------------------- the epoch's stream
    def epoch_order(self, epoch: int) -> np.ndarray:
        """Piece indices in the order epoch ``epoch`` streams them."""
        n = len(self.split)
        if not self.shuffle:
            return np.arange(n)
        rng = np.random.default_rng((self.seed, epoch))
        parts = []
        for k in rng.permutation(len(self.split.shards)):
            s = self.split.shards[int(k)]
            inner = np.random.default_rng((self.seed, epoch, int(k))).permutation(s.pieces)
            parts.append(s.first + inner)
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def _span(self, epoch: int, a: int, b: int) -> np.ndarray:
        """Tokens ``[a, b)`` of epoch ``epoch``'s stream."""
        if self._order is None or self._order[0] != epoch:
            order = self.epoch_order(epoch)
            lengths = np.diff(self.split.offsets)[order]
            starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            self._order = (epoch, order, starts)
        _, order, starts = self._order
        first = int(np.searchsorted(starts, a, side="right")) - 1
        parts, pos = [], int(starts[first])
        k = first
        while pos < b and k < len(order):
            ids = self.split.piece(int(order[k]))
            parts.append(ids)
            pos += len(ids)
            k += 1
        joined = np.concatenate(parts)
        skip = a - int(starts[first])
        return joined[skip : skip + (b - a)]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_order"], state["_blocks"] = None, OrderedDict()
        return state
