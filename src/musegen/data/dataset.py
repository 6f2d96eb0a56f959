"""Prepared token datasets: every piece of a source tokenized once, stored flat for training.

``prepare_dataset(source, tokenizer, out_dir)`` writes, per split::

    DIR/{split}.bin        all pieces' tokens concatenated, a raw array for np.memmap
                           (uint16 when the vocabulary has at most 65535 ids, else uint32);
                           sequence tokenizers: 1-D ids, each piece framed BOS ... EOS;
                           grid tokenizers: rows of ``frame_width`` cells, [total_rows, width]
    DIR/{split}.idx.npy    int64 offsets (pieces + 1) into it, in tokens (rows for grids)

and for the whole dataset::

    DIR/pieces.jsonl       each piece, one JSON line: id, split, origin, sha256, offset,
                           length, notes (in the source's order)
    DIR/failures.jsonl     each piece that failed, one JSON line: id, split, origin, sha256,
                           reason
    DIR/manifest.json      source, tokenizer config, dtype, counts per split, musegen
                           version, seed, creation time, and each list's file, count and
                           sha256 (format 1 manifests held the two lists themselves)

Encoding runs in worker processes, a chunk of pieces per task, loaded and encoded together
(``Source.load_many``, ``Tokenizer.encode_many``), while the source is still being listed.
Each finished chunk is kept in ``DIR/cache/<config key>/<chunk>.npz`` (plain arrays, no
pickles), keyed by each piece's sha256 under a key of the tokenizer config, source name and
musegen version, and found through ``index.sqlite`` beside them. A re-run encodes only
pieces whose content or config changed, and an interrupted run resumes from the chunks
already done. Failures that are the input's fault (:class:`MusegenError`) are cached too;
any other exception is listed but tried again next time. Chunks of other configs stay
(switching back is quick); ``DIR/cache`` may be deleted at any time. A source's ``load``
must depend only on the piece's sha256 (for a given source name), which is what content
hashes promise.

No per-piece record is held in memory (:mod:`musegen.data.bookkeeping`): a corpus of a
million files prepares in the memory of one of ten thousand.

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
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, fields, replace
from itertools import chain, islice
from pathlib import Path
from typing import Any

import numpy as np

from musegen.data.bookkeeping import ChunkIndex, EntryList, JsonLinesWriter, KeySet
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

FORMAT = 2  # bump when the files' layout changes
READS = (1, 2)  # manifest formats this musegen reads
CACHE_FORMAT = 1  # bump when cached chunks stop being valid
MANIFEST = "manifest.json"
PIECES_FILE = "pieces.jsonl"
FAILURES_FILE = "failures.jsonl"
CACHE_DIR = "cache"
MAX_CHUNK = 64
BATCH_NOTES = 50_000  # a worker encodes loaded pieces together up to this many notes
IN_FLIGHT_PER_WORKER = 4  # chunks given out per worker at a time
LIST_BLOCK = 512  # pieces listed, looked up and recorded together
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


_LISTS = {"pieces": (PIECES_FILE, PieceEntry), "failures": (FAILURES_FILE, Failure)}


@dataclass
class Manifest:
    """What ``manifest.json`` holds, with its two lists (``pieces.jsonl``, ``failures.jsonl``).

    ``pieces`` and ``failures`` are sequences: lists in memory, or :class:`EntryList` views of
    the files that iterate them a line at a time (what :meth:`load` gives), so that opening a
    manifest of a million pieces costs nothing until they are read.
    """

    source: dict[str, Any]
    tokenizer: dict[str, Any]
    cache_key: str
    dtype: str
    frame_width: int | None
    splits: dict[str, SplitCounts]
    pieces: Sequence[PieceEntry] = field(default_factory=list)
    failures: Sequence[Failure] = field(default_factory=list)
    seed: int | None = None
    musegen_version: str = ""
    created: str = ""
    format: int = FORMAT
    # versions of the libraries that read the pieces (music21's parser changes between
    # releases, and with it a corpus's notes and token counts)
    libraries: dict[str, str] = field(default_factory=dict)

    def header(self) -> dict[str, Any]:
        """Everything but the two lists."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _LISTS}
        d.update(
            source=copy.deepcopy(self.source),
            tokenizer=copy.deepcopy(self.tokenizer),
            libraries=dict(self.libraries),
            splits={k: vars(v).copy() for k, v in self.splits.items()},
        )
        return d

    def to_dict(self) -> dict[str, Any]:
        """The whole manifest in memory, the lists included (for small datasets)."""
        return {
            **self.header(),
            "pieces": [vars(p).copy() for p in self.pieces],
            "failures": [vars(f).copy() for f in self.failures],
        }

    def to_json(self) -> str:
        """``manifest.json``: the header, and each list's file, count and checksum."""
        d = self.header()
        d["format"] = FORMAT
        for key, (name, _kind) in _LISTS.items():
            items = getattr(self, key)
            digest = getattr(items, "sha256", "") or _lines_sha256(items)
            d[key] = {"file": name, "count": len(items), "sha256": digest}
        return json.dumps(d, indent=1) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any], folder: Path | None = None) -> Manifest:
        """From ``manifest.json``'s content; the lists' files are looked for in ``folder``
        (format 1 manifests hold the lists themselves)."""
        try:
            if d.get("format") not in READS:
                raise MusegenError(f"format {d.get('format')!r}, this musegen reads {FORMAT}")
            lists: dict[str, Sequence[Any]] = {}
            for key, (name, kind) in _LISTS.items():
                value = d[key]
                if isinstance(value, list):
                    lists[key] = [kind(**x) for x in value]
                    continue
                if folder is None or value.get("file") != name:
                    raise MusegenError(f"{key} should be in {name} beside the manifest")
                path = folder / name
                if not path.is_file():
                    raise MusegenError(f"{name} is missing")
                lists[key] = EntryList(path, kind, int(value["count"]), str(value["sha256"]))
            return cls(
                **{
                    **d,
                    **lists,
                    "splits": {k: SplitCounts(**v) for k, v in d["splits"].items()},
                }
            )
        except (KeyError, TypeError, AttributeError, ValueError) as e:
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
            return cls.from_dict(data, Path(folder))
        except MusegenError as e:
            raise MusegenError(f"{path}: {e}") from e

    def same_content(self, other: Manifest) -> bool:
        """Equal apart from the creation time (lists in files compare by checksum)."""
        return replace(self, created="") == replace(other, created="")


def _lines_sha256(items: Iterable[Any]) -> str:
    """The checksum of a list as :class:`JsonLinesWriter` writes it."""
    h = hashlib.sha256()
    for item in items:
        h.update((json.dumps(vars(item)) + "\n").encode("utf-8"))
    return h.hexdigest()


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
    pieces = manifest.pieces
    if isinstance(pieces, EntryList):  # skips the other splits' lines unparsed
        entries = list(pieces.where("split", name))
    else:
        entries = [p for p in pieces if p.split == name]
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
class ChunkCache:
    """Encoded pieces by content key, in NPZ chunk files under one config folder, found
    through an index on disk (:class:`~musegen.data.bookkeeping.ChunkIndex`); a few chunks'
    tokens are held in memory at a time."""

    def __init__(self, folder: Path, keep_loaded: int = 8) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_temporaries(folder)
        self.folder = folder
        self.index = ChunkIndex(folder, _chunk_outcomes)
        self._loaded: OrderedDict[str, np.ndarray] = OrderedDict()  # chunk name -> tokens
        self._keep = keep_loaded

    def add(
        self,
        path: Path,
        keys: list[str],
        lengths: list[int],
        notes: list[int],
        errors: list[str],
        tokens: np.ndarray | None = None,
    ) -> None:
        """Index a chunk written by a worker (``tokens``: what it holds, if at hand)."""
        self.index.add(path.name, keys, lengths, notes, errors)
        if tokens is not None:
            self._hold(path.name, tokens)

    def __contains__(self, key: str) -> bool:
        return bool(self.index.lookup([key]))

    def lookup(self, keys: list[str]) -> dict[str, CacheEntry]:
        """The cached outcome of each of ``keys`` that has one."""
        return {k: CacheEntry(*row) for k, row in self.index.lookup(keys).items()}

    def tokens(self, key: str) -> np.ndarray:
        return self.entry_tokens(self.lookup([key])[key])

    def entry_tokens(self, e: CacheEntry) -> np.ndarray:
        return self._chunk_tokens(e.chunk)[e.start : e.start + e.length]

    def _hold(self, name: str, tokens: np.ndarray) -> None:
        self._loaded[name] = tokens
        self._loaded.move_to_end(name)
        while len(self._loaded) > self._keep:
            self._loaded.popitem(last=False)

    def _chunk_tokens(self, name: str) -> np.ndarray:
        if name in self._loaded:
            self._loaded.move_to_end(name)
            return self._loaded[name]
        path = self.folder / name
        try:
            with np.load(path, allow_pickle=False) as z:
                tokens = z["tokens"]
        except _DAMAGED as e:
            path.unlink(missing_ok=True)
            raise MusegenError(
                f"cached chunk {path} was damaged ({e}); removed it: run again to re-encode"
            ) from e
        self._hold(name, tokens)
        return tokens

    def prune(self, used: set[str]) -> None:
        """Delete the chunk files (and their index rows) not in ``used`` (chunk names)."""
        unused = [name for name in self.index.chunk_names() if name not in used]
        for name in unused:
            (self.folder / name).unlink(missing_ok=True)
        self.index.remove_chunks(unused)

    def close(self) -> None:
        self.index.close()


@dataclass(frozen=True)
class CacheEntry:
    """A cached piece: its chunk file's name, where its rows start there, how many, notes,
    and the error that made it a failure (empty for a piece encoded)."""

    chunk: str
    start: int
    length: int
    notes: int
    error: str


def _chunk_outcomes(path: Path) -> tuple[list[str], list[int], list[int], list[str]] | None:
    """A chunk file's keys, lengths, notes and errors; None (and the file removed) when it
    is damaged, so that its pieces are encoded again."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return (
                z["keys"].tolist(),
                z["lengths"].tolist(),
                z["notes"].tolist(),
                z["errors"].tolist(),
            )
    except _DAMAGED:
        path.unlink(missing_ok=True)
        return None


def _remove_temporaries(folder: Path) -> None:
    """Delete temporary files (``.NAME.XXXX.tmp``, and a scratch database's journal) a
    killed run left behind."""
    for pattern in (".*.tmp", ".*.tmp-journal"):
        for path in folder.glob(pattern):
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


Chunk = list[tuple[str, Piece]]


def _chunks(todo: Iterable[tuple[str, Piece]], workers: int) -> Iterator[Chunk]:
    """The pieces to encode cut into chunks as they come: as many as 4 per worker while the
    stream is short (``ceil(n / (4 * workers))`` pieces each), :data:`MAX_CHUNK` pieces once
    it is longer than that. A look-ahead of ``4 * workers * MAX_CHUNK`` pieces tells which."""
    ahead = max(workers, 1) * 4
    it = iter(todo)
    first = list(islice(it, ahead * MAX_CHUNK + 1))
    size = MAX_CHUNK if len(first) > ahead * MAX_CHUNK else max(1, -(-len(first) // ahead))
    chunk: Chunk = []
    for item in chain(first, it):
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _pool_context() -> mp.context.BaseContext:
    """fork where the OS has it (workers start in milliseconds), else the default."""
    if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods():
        return mp.get_context("fork")
    return mp.get_context()


def _run_chunks(
    chunks: Iterable[Chunk], init_args: tuple[Any, ...], workers: int
) -> Iterator[ChunkResult]:
    """Encode chunks in this process (one worker or one chunk) or in a process pool, at most
    :data:`IN_FLIGHT_PER_WORKER` chunks per worker given out at a time: chunks are taken from
    ``chunks`` (which may be listing the source as it goes) only as fast as they are done."""
    it = iter(chunks)
    head = list(islice(it, 2))
    if workers <= 1 or len(head) <= 1:
        saved = dict(_WORKER)
        _init_worker(*init_args)
        try:
            for chunk in chain(head, it):
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
    pool = ProcessPoolExecutor(workers, context, initializer=_init_worker, initargs=init_args)
    todo = chain(head, it)
    try:
        try:
            pending: set[Future[ChunkResult]] = {pool.submit(_encode_chunk, next(todo))}
        finally:
            gc.unfreeze()  # forked at the first submit (fork cannot add workers later)
        while True:
            for chunk in islice(todo, workers * IN_FLIGHT_PER_WORKER - len(pending)):
                pending.add(pool.submit(_encode_chunk, chunk))
            if not pending:
                break
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


def _progress(desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from musegen.utils import progress as show

    return show(desc=desc, unit="piece", leave=False)


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

    Memory does not grow with the corpus: the source is listed as a stream
    (``Source.iter_pieces``), encoded while it is listed, and every per-piece record goes to
    disk (:mod:`musegen.data.bookkeeping`): the listing and the manifest's lists to JSON
    lines, the cache's index to SQLite. Three passes: list and encode; the manifest's lists
    from the listing and the cache; the split files from those lists and the cache.
    """
    if shards:
        from musegen.data.shards import check_shard_count

        check_shard_count(shards)
    run_chunks = _run_chunks
    if engine != "local":
        from musegen.data.engines import chunk_runner

        run_chunks = chunk_runner(engine)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise MusegenError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    _remove_temporaries(out)
    key = cache_key(source, tokenizer)
    dtype = token_dtype(tokenizer)
    cache = ChunkCache(out / CACHE_DIR / key)
    listing = JsonLinesWriter(out, "listing")
    lists: list[JsonLinesWriter] = []
    try:
        transient = _encode_missing(
            source, tokenizer, dtype, cache, listing, workers, run_chunks, progress
        )
        listing.close()
        if not listing.count:
            raise MusegenError(f"source {source.name!r} has no pieces (is its data there?)")
        manifest, lists, used = _build_manifest(
            out, source, tokenizer, key, dtype, listing.path, cache, transient
        )
        if shards:
            from musegen.data.shards import write_shards

            manifest = write_shards(out, manifest, cache, shards)
        else:
            manifest = _write_memmaps(out, manifest, cache)
        cache.prune(used)
        return manifest
    finally:
        for writer in (listing, *lists):
            writer.discard()  # temporaries not renamed into place
        cache.close()


def _encode_missing(
    source: Source,
    tokenizer: Tokenizer,
    dtype: np.dtype,
    cache: ChunkCache,
    listing: JsonLinesWriter,
    workers: int,
    run_chunks: Any,
    progress: bool,
) -> dict[str, str]:
    """Pass 1: list the source into ``listing`` and encode the pieces the cache lacks, while
    listing; returns the failures not worth caching (key -> reason)."""
    transient: dict[str, str] = {}
    init_args = (source, tokenizer, dtype.str, str(cache.folder))
    bar = None  # made after the workers start: forking a process with tqdm's thread is unsafe
    with KeySet(listing.path.parent) as sent:  # keys given to a worker in this run

        def todo() -> Iterator[tuple[str, Piece]]:
            for block in _blocks_of(source.iter_pieces(), LIST_BLOCK):
                keys = [piece_key(p) for p in block]
                for k, p in zip(keys, block, strict=True):
                    listing.write({"id": p.id, "split": p.split, "origin": p.origin, "key": k})
                cached = cache.index.lookup(keys)
                missing = [(k, p) for k, p in zip(keys, block, strict=True) if k not in cached]
                fresh = sent.add_new([k for k, _p in missing])
                yield from (item for item, new in zip(missing, fresh, strict=True) if new)

        try:
            for result in run_chunks(_chunks(todo(), workers), init_args, workers):
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
                bar = bar or _progress(f"preparing {source.name}", progress)
                if bar is not None:
                    bar.update(len(result.keys) + len(result.transient))
        finally:
            if bar is not None:
                bar.close()
    return transient


def _blocks_of(items: Iterable[Piece], size: int) -> Iterator[list[Piece]]:
    it = iter(items)
    while block := list(islice(it, size)):
        yield block


def _listing_rows(path: Path, size: int) -> Iterator[list[dict[str, str]]]:
    with open(path, encoding="utf-8") as f:
        while block := [json.loads(line) for line in islice(f, size)]:
            yield block


def _build_manifest(
    out: Path,
    source: Source,
    tokenizer: Tokenizer,
    key: str,
    dtype: np.dtype,
    listing: Path,
    cache: ChunkCache,
    transient: dict[str, str],
) -> tuple[Manifest, list[JsonLinesWriter], set[str]]:
    """Pass 2: the manifest's lists written to temporary files from the listing and the
    cache; returns the manifest (its lists on those files), their writers, and the names of
    the chunk files it uses."""
    from musegen import __version__

    counts = {s: [0, 0, 0, 0] for s in SPLITS}  # pieces, tokens, notes, failures
    pieces = JsonLinesWriter(out, PIECES_FILE)
    failures = JsonLinesWriter(out, FAILURES_FILE)
    used: set[str] = set()
    sample: CacheEntry | None = None
    for rows in _listing_rows(listing, LIST_BLOCK):
        found = cache.lookup([r["key"] for r in rows])
        for r in rows:
            k, split = r["key"], r["split"]
            c = counts.setdefault(split, [0, 0, 0, 0])
            e = found.get(k)
            if e is not None:
                used.add(e.chunk)
            if e is None or e.error:
                reason = transient.get(k, "") if e is None else e.error
                failures.write({**_named(r), "sha256": k, "reason": reason or "not encoded"})
                c[3] += 1
                continue
            sample = sample or e
            pieces.write(
                {**_named(r), "sha256": k, "offset": c[1], "length": e.length, "notes": e.notes}
            )
            c[0], c[1], c[2] = c[0] + 1, c[1] + e.length, c[2] + e.notes
    pieces.close()
    failures.close()
    root = getattr(source, "root", None)
    manifest = Manifest(
        source={"name": source.name, "root": None if root is None else str(root)},
        tokenizer=tokenizer.to_dict(),
        cache_key=key,
        dtype=dtype.name,
        frame_width=_frame_width(tokenizer, cache, sample),
        splits={s: SplitCounts(*c) for s, c in counts.items()},
        pieces=EntryList(pieces.path, PieceEntry, pieces.count, pieces.sha256),
        failures=EntryList(failures.path, Failure, failures.count, failures.sha256),
        seed=_source_seed(source),
        musegen_version=__version__,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        libraries=library_versions(),
    )
    return manifest, [pieces, failures], used


READERS = ("music21", "symusic", "numpy")


def library_versions() -> dict[str, str]:
    """The installed versions of the libraries that read and encode pieces (:data:`READERS`)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in READERS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _named(row: dict[str, str]) -> dict[str, str]:
    return {"id": row["id"], "split": row["split"], "origin": row["origin"]}


def _source_seed(source: Source) -> int | None:
    """The seed a source used to assign splits, where it has one."""
    seed = getattr(source, "seed", None)
    return seed if isinstance(seed, int) else None


def _frame_width(tokenizer: Tokenizer, cache: ChunkCache, sample: CacheEntry | None) -> int | None:
    """Cells per row for grid tokenizers, None for sequence tokenizers."""
    if sample is not None:
        tokens = cache.entry_tokens(sample)
    else:
        try:
            tokens = np.asarray(tokenizer.encode(Score()))
        except Exception:  # an empty score may be refused; then there is nothing to shape
            return None
    return None if tokens.ndim == 1 else int(tokens.shape[1])


def _existing_manifest(out: Path) -> Manifest | None:
    try:
        return Manifest.load(out)
    except MusegenError:
        return None


def _files_ok(out: Path, manifest: Manifest) -> bool:
    return all(_split_problem(out, manifest, s) is None for s in manifest.splits)


def entries_with_tokens(
    entries: Iterable[PieceEntry], cache: ChunkCache
) -> Iterator[tuple[PieceEntry, np.ndarray]]:
    """Each entry with its tokens from the cache, in order (chunks read about once each)."""
    it = iter(entries)
    while block := list(islice(it, LIST_BLOCK)):
        found = cache.lookup([e.sha256 for e in block])
        for e in block:
            yield e, cache.entry_tokens(found[e.sha256])


def publish_lists(out: Path, manifest: Manifest) -> Manifest:
    """Rename the manifest's list files (temporaries of this run) to their final names."""
    lists: dict[str, Any] = {}
    for key, (name, _kind) in _LISTS.items():
        items = getattr(manifest, key)
        if isinstance(items, EntryList) and items.path != out / name:
            os.chmod(items.path, default_file_mode())
            os.replace(items.path, out / name)
            items = EntryList(out / name, items.kind, items.count, items.sha256)
        lists[key] = items
    return replace(manifest, **lists)


def _write_memmaps(out: Path, manifest: Manifest, cache: ChunkCache) -> Manifest:
    """Pass 3 for memmaps: the split files, unless the folder holds these already; returns
    the manifest in the folder."""
    old = _existing_manifest(out)
    if old is not None and old.same_content(manifest) and _files_ok(out, old):
        return old
    _write_outputs(out, manifest, cache)
    return Manifest.load(out)


def _write_outputs(out: Path, manifest: Manifest, cache: ChunkCache) -> None:
    """All split files to temporary names in one pass over the pieces, then renamed.

    The old manifest goes first and the new one comes last, so a run stopped half-way
    leaves no manifest (and the next run starts again from the cache), never a manifest
    describing other files. The split files are flushed to disk together (in threads), then
    renamed with the manifest's lists; then the manifest is written.
    """
    temps: dict[Path, Path] = {}
    files = {}
    try:
        for s in manifest.splits:
            for name in (f"{s}.bin", f"{s}.idx.npy"):
                fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
                files[name] = os.fdopen(fd, "wb")
                temps[Path(tmp)] = out / name
        for s, counts in manifest.splits.items():  # offsets: a .npy written as it goes
            header = {"descr": "<i8", "fortran_order": False, "shape": (counts.pieces + 1,)}
            np.lib.format.write_array_header_1_0(files[f"{s}.idx.npy"], header)
            files[f"{s}.idx.npy"].write(np.zeros(1, "<i8").tobytes())
        dtype = np.dtype(manifest.dtype)
        for e, tokens in entries_with_tokens(manifest.pieces, cache):  # source order
            files[f"{e.split}.bin"].write(np.ascontiguousarray(tokens, dtype).tobytes())
            files[f"{e.split}.idx.npy"].write((e.offset + e.length).to_bytes(8, "little"))
        with ThreadPoolExecutor(len(files)) as pool:  # fsyncs wait on the disk: together
            list(pool.map(_flush_to_disk, files.values()))
        (out / MANIFEST).unlink(missing_ok=True)
        mode = default_file_mode()
        for tmp, final in temps.items():
            os.chmod(tmp, mode)
            os.replace(tmp, final)
        temps.clear()
        atomic_write_text(out / MANIFEST, publish_lists(out, manifest).to_json())
    finally:
        for f in files.values():
            f.close()
        for tmp in temps:
            tmp.unlink(missing_ok=True)


def _flush_to_disk(f: Any) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()
