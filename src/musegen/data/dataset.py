"""Prepared token datasets: every piece of a source tokenized once, stored flat for training.

``prepare_dataset(source, tokenizer, out_dir)`` writes, per split::

    DIR/{split}.bin        all pieces' tokens concatenated, a raw array for np.memmap
                           (uint16 when the vocabulary has at most 65535 ids, else uint32);
                           sequence tokenizers: 1-D ids, each piece framed BOS ... EOS;
                           grid tokenizers: rows of ``frame_width`` cells, [total_rows, width]
    DIR/{split}.idx.npy    int64 offsets (pieces + 1) into it, in tokens (rows for grids)
    DIR/manifest.json      source, tokenizer config, dtype, each piece (id, origin, sha256,
                           split, offset, length, notes) and each failure with its reason,
                           counts per split, musegen version, seed, creation time

Encoding runs in worker processes, a chunk of pieces per task, loaded and encoded together
(``Source.load_many``, ``Tokenizer.encode_many``). Each finished chunk is kept in
``DIR/cache/<config key>/<chunk>.npz`` (plain arrays, no pickles), keyed by each piece's
sha256 under a key of the tokenizer config, source name and musegen version. A re-run encodes
only pieces whose content or config changed, and an interrupted run resumes from the chunks
already done. Failures that are the input's fault (:class:`MusegenError`) are cached too; any
other exception is listed but tried again next time. Chunks of other configs stay (switching
back is quick); ``DIR/cache`` may be deleted at any time. A source's ``load`` must depend only
on the piece's sha256 (for a given source name), which is what content hashes promise.

Final files are written to temporary names and renamed at the end, the manifest last; a
reader checks the files' sizes against the manifest.
"""

from __future__ import annotations

import copy
import gc
import hashlib
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from musegen.data.sources.base import SPLITS, Piece, Source
from musegen.errors import MusegenError
from musegen.score import Score
from musegen.tokenizers.base import BOS, EOS, Tokenizer
from musegen.utils import (
    atomic_write_text,
    default_file_mode,
    sha256_bytes,
    sha256_file,
)

FORMAT = 1  # bump when the files' layout changes
CACHE_FORMAT = 1  # bump when cached chunks stop being valid
MANIFEST = "manifest.json"
CACHE_DIR = "cache"
MAX_CHUNK = 64
BATCH_NOTES = 50_000  # a worker encodes loaded pieces together up to this many notes
_DAMAGED = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)  # reading a chunk


# --------------------------------------------------------------------------- manifest
@dataclass(frozen=True)
class PieceEntry:
    """A prepared piece: where its tokens are in ``{split}.bin`` and how many notes it had."""

    id: str
    split: str
    origin: str
    sha256: str
    offset: int
    length: int
    notes: int


@dataclass(frozen=True)
class Failure:
    """A piece that could not be loaded or encoded, and why."""

    id: str
    split: str
    origin: str
    sha256: str
    reason: str


@dataclass(frozen=True)
class SplitCounts:
    pieces: int = 0
    tokens: int = 0  # rows for grid tokenizers
    notes: int = 0
    failures: int = 0


@dataclass
class Manifest:
    """What ``manifest.json`` holds; ``to_dict``/``from_dict`` are its JSON form."""

    source: dict[str, Any]
    tokenizer: dict[str, Any]
    cache_key: str
    dtype: str
    frame_width: int | None
    splits: dict[str, SplitCounts]
    pieces: list[PieceEntry] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    seed: int | None = None
    musegen_version: str = ""
    created: str = ""
    format: int = FORMAT

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(
            source=copy.deepcopy(self.source),
            tokenizer=copy.deepcopy(self.tokenizer),
            splits={k: vars(v).copy() for k, v in self.splits.items()},
            pieces=[vars(p).copy() for p in self.pieces],
            failures=[vars(f).copy() for f in self.failures],
        )
        return d

    def to_json(self) -> str:
        """Indented JSON with one line per piece (readable, and quick to write)."""
        d = self.to_dict()
        lists = {k: d.pop(k) for k in ("pieces", "failures")}
        parts = [json.dumps(d, indent=1)[:-2]]
        for key, items in lists.items():
            lines = ",\n".join(f"  {json.dumps(x)}" for x in items)
            parts.append(f',\n "{key}": [\n{lines}\n ]' if items else f',\n "{key}": []')
        return "".join(parts) + "\n}\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        try:
            if d.get("format") != FORMAT:
                raise MusegenError(f"format {d.get('format')!r}, this musegen reads {FORMAT}")
            return cls(
                **{
                    **d,
                    "splits": {k: SplitCounts(**v) for k, v in d["splits"].items()},
                    "pieces": [PieceEntry(**p) for p in d["pieces"]],
                    "failures": [Failure(**f) for f in d["failures"]],
                }
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise MusegenError(f"not a musegen dataset manifest ({type(e).__name__}: {e})") from e

    @classmethod
    def load(cls, folder: str | Path) -> Manifest:
        path = Path(folder) / MANIFEST
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as e:
            raise MusegenError(
                f"{folder}: no {MANIFEST}; not a prepared dataset (run 'musegen data prepare')"
            ) from e
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise MusegenError(f"{path}: cannot read ({e})") from e
        try:
            return cls.from_dict(data)
        except MusegenError as e:
            raise MusegenError(f"{path}: {e}") from e

    def same_content(self, other: Manifest) -> bool:
        """Equal apart from the creation time."""
        return replace(self, created="") == replace(other, created="")


# --------------------------------------------------------------------------- split access
@dataclass
class TokenSplit:
    """One split's tokens (a read-only memmap) and the offsets of its pieces."""

    name: str
    tokens: np.ndarray
    offsets: np.ndarray
    entries: list[PieceEntry]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def piece(self, i: int) -> np.ndarray:
        """Tokens of piece ``i`` (framed BOS ... EOS for sequence tokenizers)."""
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.piece(i) for i in range(len(self)))

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])


class PreparedDataset:
    """A folder written by :func:`prepare_dataset`."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder)
        self.manifest = Manifest.load(self.path)
        self._tokenizer: Tokenizer | None = None
        self._splits: dict[str, TokenSplit] = {}

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer the data was made with, rebuilt from the manifest."""
        if self._tokenizer is None:
            from musegen.tokenizers import tokenizer_from_dict

            self._tokenizer = tokenizer_from_dict(self.manifest.tokenizer)
        return self._tokenizer

    @property
    def split_names(self) -> list[str]:
        return list(self.manifest.splits)

    def split(self, name: str) -> TokenSplit:
        if name not in self.manifest.splits:
            raise MusegenError(
                f"{self.path}: no split {name!r}; it has {', '.join(self.manifest.splits)}"
            )
        if name not in self._splits:
            self._splits[name] = _open_split(self.path, self.manifest, name)
        return self._splits[name]

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {v.pieces}" for k, v in self.manifest.splits.items())
        return f"PreparedDataset({str(self.path)!r}: {counts})"


def load_prepared(folder: str | Path) -> PreparedDataset:
    """Open a prepared dataset folder (cheap: splits are memory-mapped on first use, or
    streamed from tar shards when it was prepared with ``--shards``)."""
    from musegen.data.shards import ShardedDataset, is_sharded

    if is_sharded(folder):
        return ShardedDataset(folder)
    return PreparedDataset(folder)


def _open_split(folder: Path, manifest: Manifest, name: str) -> TokenSplit:
    problem = _split_problem(folder, manifest, name)
    if problem:
        raise MusegenError(f"{folder}: {problem}; run 'musegen data prepare' again")
    offsets = np.load(folder / f"{name}.idx.npy", allow_pickle=False)
    dtype, rows = np.dtype(manifest.dtype), int(offsets[-1])
    shape = (rows,) if manifest.frame_width is None else (rows, manifest.frame_width)
    if rows:
        tokens = np.memmap(folder / f"{name}.bin", dtype=dtype, mode="r", shape=shape)
    else:  # mmap cannot map an empty file
        tokens = np.zeros(shape, dtype)
    entries = [p for p in manifest.pieces if p.split == name]
    return TokenSplit(name, tokens, offsets, entries)


def _split_problem(folder: Path, manifest: Manifest, name: str) -> str | None:
    """Why the split's files do not match the manifest, or None."""
    counts = manifest.splits[name]
    bin_path, idx_path = folder / f"{name}.bin", folder / f"{name}.idx.npy"
    if not bin_path.exists() or not idx_path.exists():
        return f"{bin_path.name} or {idx_path.name} is missing"
    row = np.dtype(manifest.dtype).itemsize * (manifest.frame_width or 1)
    if bin_path.stat().st_size != counts.tokens * row:
        return f"{bin_path.name} does not have the {counts.tokens} tokens the manifest lists"
    try:
        offsets = np.load(idx_path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError) as e:
        return f"{idx_path.name} is unreadable ({e})"
    if offsets.shape != (counts.pieces + 1,) or int(offsets[-1]) != counts.tokens:
        return f"{idx_path.name} does not match the manifest"
    return None


# --------------------------------------------------------------------------- the chunk cache
@dataclass(frozen=True)
class CacheEntry:
    """A cached piece: its chunk file, where its rows start there, how many, notes, error."""

    path: Path
    start: int
    length: int
    notes: int
    error: str


class ChunkCache:
    """Encoded pieces by content key, in NPZ chunk files under one config folder."""

    def __init__(self, folder: Path, keep_loaded: int = 4, hold_bytes: int = 256 << 20) -> None:
        self.folder = folder
        self.entries: dict[str, CacheEntry] = {}
        self._loaded: OrderedDict[Path, np.ndarray] = OrderedDict()  # read back, a few at most
        self._keep = keep_loaded
        self._held: dict[Path, np.ndarray] = {}  # this run's chunks, up to hold_bytes
        self._hold_left = hold_bytes
        if folder.is_dir():
            _remove_temporaries(folder)
            for path in sorted(folder.glob("*.npz")):
                self._index(path)

    def _index(self, path: Path) -> None:
        try:
            with np.load(path, allow_pickle=False) as z:
                keys, lengths, notes, errors = z["keys"], z["lengths"], z["notes"], z["errors"]
        except _DAMAGED:
            path.unlink(missing_ok=True)  # a damaged chunk is encoded again
            return
        self.add(path, keys.tolist(), lengths.tolist(), notes.tolist(), errors.tolist())

    def add(
        self,
        path: Path,
        keys: list[str],
        lengths: list[int],
        notes: list[int],
        errors: list[str],
        tokens: np.ndarray | None = None,
    ) -> None:
        """Index a chunk; ``tokens`` (just encoded) are kept in memory while there is room."""
        if tokens is not None and tokens.nbytes <= self._hold_left:
            self._held[path] = tokens
            self._hold_left -= tokens.nbytes
        start = 0
        for k, n, m, e in zip(keys, lengths, notes, errors, strict=True):
            self.entries[k] = CacheEntry(path, start, n, m, e)
            start += n

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def tokens(self, key: str) -> np.ndarray:
        e = self.entries[key]
        return self._chunk_tokens(e.path)[e.start : e.start + e.length]

    def _chunk_tokens(self, path: Path) -> np.ndarray:
        if path in self._held:
            return self._held[path]
        if path in self._loaded:
            self._loaded.move_to_end(path)
        else:
            try:
                with np.load(path, allow_pickle=False) as z:
                    self._loaded[path] = z["tokens"]
            except _DAMAGED as e:
                path.unlink(missing_ok=True)
                raise MusegenError(
                    f"cached chunk {path} was damaged ({e}); removed it: run again to re-encode"
                ) from e
            if len(self._loaded) > self._keep:
                self._loaded.popitem(last=False)
        return self._loaded[path]

    def prune(self, used: set[str]) -> None:
        """Delete chunk files holding none of the ``used`` keys."""
        live = {self.entries[k].path for k in used if k in self.entries}
        for path in {e.path for e in self.entries.values()} - live:
            path.unlink(missing_ok=True)


def _remove_temporaries(folder: Path) -> None:
    """Delete temporary files (``.NAME.XXXX.tmp``) a killed run left behind."""
    for path in folder.glob(".*.tmp"):
        path.unlink(missing_ok=True)


def write_chunk(folder: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Save one chunk as NPZ under a name made from its keys (temp file + rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = sha256_bytes("\n".join(arrays["keys"].tolist()).encode())[:24]
    path = folder / f"{name}.npz"
    fd, tmp = tempfile.mkstemp(prefix=".chunk.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------- encoding
@dataclass
class ChunkResult:
    """What a worker reports for one chunk: the file written and each piece's outcome."""

    path: Path | None
    keys: list[str]
    lengths: list[int]
    notes: list[int]
    errors: list[str]
    transient: dict[str, str]  # failures not worth caching (unexpected errors): key -> reason
    tokens: np.ndarray | None  # what the chunk file holds, to spare reading it back


_WORKER: dict[str, Any] = {}


def _init_worker(source: Source, tokenizer: Tokenizer, dtype: str, folder: str) -> None:
    _WORKER.update(source=source, tokenizer=tokenizer, dtype=np.dtype(dtype), folder=Path(folder))


def _encode_chunk(chunk: list[tuple[str, Piece]]) -> ChunkResult:
    """Worker task: load and encode pieces, save the cacheable outcomes as one NPZ."""
    arrays_out, transient = chunk_arrays(chunk)
    return chunk_result(_WORKER["folder"], arrays_out, transient)


def chunk_result(
    folder: Path, arrays: dict[str, np.ndarray] | None, transient: dict[str, str]
) -> ChunkResult:
    """Save a chunk's arrays (if any piece has a cacheable outcome) and say what it holds."""
    if arrays is None:
        return ChunkResult(None, [], [], [], [], transient, None)
    path = write_chunk(folder, arrays)
    keys, lengths = arrays["keys"].tolist(), arrays["lengths"].tolist()
    notes, errors = arrays["notes"].tolist(), arrays["errors"].tolist()
    return ChunkResult(path, keys, lengths, notes, errors, transient, arrays["tokens"])


def chunk_arrays(
    chunk: list[tuple[str, Piece]],
) -> tuple[dict[str, np.ndarray] | None, dict[str, str]]:
    """The per-file work of one chunk (in a worker set up by ``_init_worker``): its NPZ
    arrays (None when every piece failed unexpectedly) and the unexpected failures."""
    keys, arrays, notes, errors, transient = [], [], [], [], {}
    outcomes = _encode_pieces([piece for _key, piece in chunk])
    for (key, _piece), (ids, n_notes, error, unexpected) in zip(chunk, outcomes, strict=True):
        if unexpected:
            transient[key] = unexpected
            continue
        keys.append(key)
        arrays.append(ids)
        notes.append(n_notes)
        errors.append(error)
    if not keys:
        return None, transient
    lengths = [0 if a is None else len(a) for a in arrays]
    arrays_out = {
        "keys": np.array(keys),
        "lengths": np.array(lengths, np.int64),
        "notes": np.array(notes, np.int64),
        "errors": np.array(errors),
        "tokens": _concat([a for a in arrays if a is not None], _WORKER["dtype"]),
    }
    return arrays_out, transient


_Outcome = tuple[np.ndarray | None, int, str, str]  # ids, notes, error, unexpected error


def _encode_pieces(pieces: list[Piece]) -> list[_Outcome]:
    """(ids, notes, error, unexpected error) for each piece.

    A :class:`MusegenError` (bad input) is cached like a result; any other exception (hostile
    input can break a parser in any way, or a bug may be fixed) is reported but tried again
    on the next run. Pieces are loaded together (``Source.load_many``) and encoded together,
    up to :data:`BATCH_NOTES` notes at a time (``Tokenizer.encode_many``): many small pieces
    cost little more than a few large ones.
    """
    source: Source = _WORKER["source"]
    try:
        loaded = source.load_many(pieces)
    except Exception:  # something broke the batch: one by one, so each piece gets its outcome
        loaded = Source.load_many(source, pieces)
    out: list[_Outcome | None] = [None] * len(pieces)
    batch: list[tuple[int, Score, int]] = []
    n_notes = 0
    for i, score in enumerate(loaded):
        if isinstance(score, MusegenError):
            out[i] = (None, 0, str(score) or type(score).__name__, "")
            continue
        if isinstance(score, Exception):
            out[i] = (None, 0, "", f"{type(score).__name__}: {score}")
            continue
        n = score.n_notes
        batch.append((i, score, n))
        n_notes += n
        if n_notes >= BATCH_NOTES:
            _encode_batch(batch, out)
            batch, n_notes = [], 0
    _encode_batch(batch, out)
    return out  # type: ignore[return-value]


def _encode_batch(batch: list[tuple[int, Score, int]], out: list[_Outcome | None]) -> None:
    """Encode loaded scores into ``out`` (by index); one by one if the batch call fails, so
    each piece gets its own outcome."""
    if not batch:
        return
    tok = _WORKER["tokenizer"]
    try:
        encoded = tok.encode_many([score for _i, score, _n in batch])
    except Exception:
        encoded = None
    for k, (i, score, n_notes) in enumerate(batch):
        out[i] = _encode_score(score, n_notes, None if encoded is None else encoded[k])


def _encode_score(score: Score, n_notes: int, ids: np.ndarray | None = None) -> _Outcome:
    """The outcome of encoding one loaded score (``ids``: its ids, if already encoded)."""
    tok = _WORKER["tokenizer"]
    try:
        framed = frame_ids(tok.check_ids(tok.encode(score) if ids is None else ids))
    except MusegenError as e:
        return None, 0, str(e) or type(e).__name__, ""
    except Exception as e:
        return None, 0, "", f"{type(e).__name__}: {e}"
    return framed, n_notes, "", ""


def _concat(arrays: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    if not arrays:
        return np.zeros(0, dtype)
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) > 1:
        raise MusegenError(f"tokenizer returned arrays of mixed shapes {sorted(shapes)}")
    return np.concatenate(arrays).astype(dtype, copy=False)


def frame_ids(ids: np.ndarray) -> np.ndarray:
    """Sequence ids framed BOS ... EOS (added only where missing); grids pass unchanged."""
    if ids.ndim != 1:
        return ids
    has_bos = len(ids) > 0 and ids[0] == BOS
    has_eos = len(ids) > int(has_bos) and ids[-1] == EOS
    if has_bos and has_eos:
        return ids
    head = np.array([] if has_bos else [BOS], ids.dtype)
    tail = np.array([] if has_eos else [EOS], ids.dtype)
    return np.concatenate([head, ids, tail])


def piece_key(piece: Piece) -> str:
    """The content key of a piece: its sha256, else a hash of its origin file or its name."""
    if piece.sha256:
        return piece.sha256
    origin = Path(piece.origin)
    if origin.is_file():
        return sha256_file(origin)
    return sha256_bytes(f"{piece.id}\0{piece.origin}".encode())


def token_dtype(tokenizer: Tokenizer) -> np.dtype:
    return np.dtype(np.uint16 if len(tokenizer.vocab) <= 65535 else np.uint32)


def cache_key(source: Source, tokenizer: Tokenizer) -> str:
    """Names the cache folder: chunks are only valid for this config, source and version."""
    from musegen import __version__

    spec = {
        "cache_format": CACHE_FORMAT,
        "musegen": __version__,
        "source": source.name,
        "tokenizer": tokenizer.to_dict(),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _chunks(todo: list[tuple[str, Piece]], workers: int) -> list[list[tuple[str, Piece]]]:
    size = max(1, min(MAX_CHUNK, -(-len(todo) // (max(workers, 1) * 4))))
    return [todo[i : i + size] for i in range(0, len(todo), size)]


def _pool_context() -> mp.context.BaseContext:
    """fork where the OS has it (workers start in milliseconds), else the default."""
    if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods():
        return mp.get_context("fork")
    return mp.get_context()


def _run_chunks(
    chunks: list[list[tuple[str, Piece]]],
    init_args: tuple[Any, ...],
    workers: int,
) -> Iterator[ChunkResult]:
    """Encode chunks in this process (one worker or one chunk) or in a process pool."""
    if workers <= 1 or len(chunks) <= 1:
        saved = dict(_WORKER)
        _init_worker(*init_args)
        try:
            for chunk in chunks:
                yield _encode_chunk(chunk)
        finally:
            _WORKER.clear()
            _WORKER.update(saved)
        return
    context = _pool_context()
    if context.get_start_method() == "fork":
        init_args[0].preload()  # imported once here, inherited by every worker
        gc.freeze()  # until the workers are forked: their collectors leave the inherited
        # objects alone, so those pages stay shared instead of being copied into each worker
    pool = ProcessPoolExecutor(
        min(workers, len(chunks)), context, initializer=_init_worker, initargs=init_args
    )
    try:
        try:
            pending: set[Future[ChunkResult]] = {pool.submit(_encode_chunk, c) for c in chunks}
        finally:
            gc.unfreeze()  # forked at the first submit (fork cannot add workers later)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
    except BrokenProcessPool as e:
        pool.shutdown(wait=False, cancel_futures=True)
        raise MusegenError(
            "a worker process died while preparing (out of memory?); finished pieces are "
            "cached: run the same command again to resume, or use --workers 1"
        ) from e
    except BaseException:  # Ctrl-C, or a result that cannot be used: stop without waiting
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None
    from musegen.utils import progress as show

    return show(total=total, desc=desc, unit="piece", leave=False)


# --------------------------------------------------------------------------- prepare
def prepare_dataset(
    source: Source,
    tokenizer: Tokenizer,
    out_dir: str | Path,
    workers: int = 2,
    progress: bool = True,
    shards: int = 0,
    engine: str = "local",
) -> Manifest:
    """Tokenize every piece of ``source`` into ``out_dir``; returns the manifest written.

    Pieces that fail to load or encode are skipped and listed in the manifest with the reason.
    Only pieces missing from the cache are encoded, so a re-run on an unchanged source costs
    little and an interrupted run resumes. Nothing is rewritten when nothing changed.
    ``shards`` > 0 writes the splits as tar shards (:mod:`musegen.data.shards`) in place of
    memmaps; ``engine`` runs the per-file work elsewhere (:mod:`musegen.data.engines`).
    """
    run_chunks = _run_chunks
    if engine != "local":
        from musegen.data.engines import chunk_runner

        run_chunks = chunk_runner(engine)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise MusegenError(f"{out}: exists and is not a folder")
    pieces = source.pieces()
    if not pieces:
        raise MusegenError(f"source {source.name!r} has no pieces (is its data there?)")
    key = cache_key(source, tokenizer)
    dtype = token_dtype(tokenizer)
    cache = ChunkCache(out / CACHE_DIR / key)
    keys = [piece_key(p) for p in pieces]

    todo: dict[str, Piece] = {}
    for k, p in zip(keys, pieces, strict=True):
        if k not in cache and k not in todo:
            todo[k] = p
    transient: dict[str, str] = {}
    init_args = (source, tokenizer, dtype.str, str(cache.folder))
    bar = None  # made after the workers start: forking a process with tqdm's thread is unsafe
    try:
        for result in run_chunks(_chunks(list(todo.items()), workers), init_args, workers):
            if result.path is not None:
                cache.add(
                    result.path,
                    result.keys,
                    result.lengths,
                    result.notes,
                    result.errors,
                    result.tokens,
                )
            transient.update(result.transient)
            bar = bar or _progress(len(todo), f"preparing {source.name}", progress)
            if bar is not None:
                bar.update(len(result.keys) + len(result.transient))
    finally:
        if bar is not None:
            bar.close()

    manifest = _build_manifest(source, tokenizer, key, dtype, pieces, keys, cache, transient)
    if shards:
        from musegen.data.shards import write_shards

        manifest = write_shards(out, manifest, cache, shards)
        cache.prune(set(keys))
        return manifest
    old = _existing_manifest(out)
    if old is not None and old.same_content(manifest) and _files_ok(out, old):
        return old
    _write_outputs(out, manifest, cache)
    cache.prune(set(keys))
    return manifest


def _build_manifest(
    source: Source,
    tokenizer: Tokenizer,
    key: str,
    dtype: np.dtype,
    pieces: list[Piece],
    keys: list[str],
    cache: ChunkCache,
    transient: dict[str, str],
) -> Manifest:
    from musegen import __version__

    names = list(SPLITS) + [s for s in dict.fromkeys(p.split for p in pieces) if s not in SPLITS]
    counts = {s: [0, 0, 0, 0] for s in names}  # pieces, tokens, notes, failures
    entries, failures = [], []
    for k, p in zip(keys, pieces, strict=True):
        c = counts[p.split]
        e = cache.entries.get(k)
        reason = transient.get(k, "") if e is None else e.error
        if e is None or e.error:
            failures.append(Failure(p.id, p.split, p.origin, k, reason or "not encoded"))
            c[3] += 1
            continue
        entries.append(PieceEntry(p.id, p.split, p.origin, k, c[1], e.length, e.notes))
        c[0], c[1], c[2] = c[0] + 1, c[1] + e.length, c[2] + e.notes
    root = getattr(source, "root", None)
    return Manifest(
        source={"name": source.name, "root": None if root is None else str(root)},
        tokenizer=tokenizer.to_dict(),
        cache_key=key,
        dtype=dtype.name,
        frame_width=_frame_width(tokenizer, cache, entries),
        splits={s: SplitCounts(*c) for s, c in counts.items()},
        pieces=entries,
        failures=failures,
        seed=_source_seed(source),
        musegen_version=__version__,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def _source_seed(source: Source) -> int | None:
    """The seed a source used to assign splits, where it has one."""
    seed = getattr(source, "seed", None)
    return seed if isinstance(seed, int) else None


def _frame_width(tokenizer: Tokenizer, cache: ChunkCache, entries: list[PieceEntry]) -> int | None:
    """Cells per row for grid tokenizers, None for sequence tokenizers."""
    if entries:
        sample = cache.tokens(entries[0].sha256)
    else:
        try:
            sample = np.asarray(tokenizer.encode(Score()))
        except Exception:  # an empty score may be refused; then there is nothing to shape
            return None
    return None if sample.ndim == 1 else int(sample.shape[1])


def _existing_manifest(out: Path) -> Manifest | None:
    try:
        return Manifest.load(out)
    except MusegenError:
        return None


def _files_ok(out: Path, manifest: Manifest) -> bool:
    return all(_split_problem(out, manifest, s) is None for s in manifest.splits)


def _write_outputs(out: Path, manifest: Manifest, cache: ChunkCache) -> None:
    """All split files to temporary names in one pass over the pieces, then renamed.

    The old manifest goes first and the new one comes last, so a run stopped half-way
    leaves no manifest (and the next run starts again from the cache), never a manifest
    describing other files. The split files are flushed to disk together (in threads), then
    renamed; then the manifest is written.
    """
    out.mkdir(parents=True, exist_ok=True)
    _remove_temporaries(out)
    by_split: dict[str, list[PieceEntry]] = {s: [] for s in manifest.splits}
    for e in manifest.pieces:
        by_split[e.split].append(e)
    temps: dict[Path, Path] = {}
    files = {}
    try:
        for s in manifest.splits:
            for name in (f"{s}.bin", f"{s}.idx.npy"):
                fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
                files[name] = os.fdopen(fd, "wb")
                temps[Path(tmp)] = out / name
        dtype = np.dtype(manifest.dtype)
        for e in manifest.pieces:  # source order: chunk files are read about once each
            tokens = cache.tokens(e.sha256)
            files[f"{e.split}.bin"].write(np.ascontiguousarray(tokens, dtype).tobytes())
        for s, entries in by_split.items():
            files[f"{s}.idx.npy"].write(_npy_bytes(_offsets(entries)))
        with ThreadPoolExecutor(len(files)) as pool:  # fsyncs wait on the disk: together
            list(pool.map(_flush_to_disk, files.values()))
        (out / MANIFEST).unlink(missing_ok=True)
        mode = default_file_mode()
        for tmp, final in temps.items():
            os.chmod(tmp, mode)
            os.replace(tmp, final)
        temps.clear()
        atomic_write_text(out / MANIFEST, manifest.to_json())
    finally:
        for f in files.values():
            f.close()
        for tmp in temps:
            tmp.unlink(missing_ok=True)


def _flush_to_disk(f: Any) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


def _offsets(entries: Iterable[PieceEntry]) -> np.ndarray:
    lengths = [e.length for e in entries]
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()
