"""The Boulanger-Lewandowski (2012) piano-roll benchmarks, shared by jsb/nottingham/musedata/pianomidi.

Each set is a MATLAB file (``traindata``/``validdata``/``testdata``: 1×N cells of uint8 rolls
``[T, 88]``, column 0 = MIDI 21). Rolls come from, in order: the ``root`` you pass (the .mat
file or a folder holding it), the shared benchmark folder (``shared_data_dir()/poly_music``),
else the NPZ copy vendored with musegen (``data/vendor/``, see its ``PROVENANCE.md``), so the
benchmarks work offline with nothing but musegen installed.

A vendored NPZ holds per split ``{split}_frames`` (all pieces' frames concatenated, uint8 0/1)
and ``{split}_offsets`` (int64, piece ``i`` is ``frames[offsets[i]:offsets[i+1]]``): no object
arrays, so it loads with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

import numpy as np

from musegen.data.sources.base import SPLITS, Piece, Source, check_md5, find_file
from musegen.errors import MusegenError
from musegen.score import Score

VENDOR_DIR = Path(__file__).resolve().parent.parent / "vendor"
MAT_KEYS = {"train": "traindata", "valid": "validdata", "test": "testdata"}
N_KEYS = 88
LOW_PITCH = 21

Rolls = dict[str, list[np.ndarray]]  # split -> pieces' rolls
Packed = dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (offsets [N + 1], frames [sum T, 88])


def pack(pieces: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Offsets ``[N + 1]`` and concatenated uint8 frames ``[sum T, 88]`` of a list of rolls."""
    offsets = np.zeros(len(pieces) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p) for p in pieces])
    frames = np.concatenate(pieces) if pieces else np.zeros((0, N_KEYS), np.uint8)
    return offsets, np.ascontiguousarray(frames, dtype=np.uint8)


def unpack(offsets: np.ndarray, frames: np.ndarray) -> list[np.ndarray]:
    """The pieces' rolls (views into ``frames``)."""
    return [frames[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]


def content_sha256(packed: Packed) -> str:
    """A hash of the rolls themselves (not of a file's bytes): equal for the .mat and the NPZ."""
    h = hashlib.sha256()
    for split in SPLITS:
        offsets, frames = packed[split]
        h.update(offsets.astype("<i8").tobytes())
        h.update(np.ascontiguousarray(frames, dtype=np.uint8).data)
    return h.hexdigest()


def read_mat(path: Path) -> Packed:
    """The three splits of a Boulanger-Lewandowski .mat file, packed."""
    try:
        from scipy.io import loadmat
    except ImportError as e:
        raise MusegenError(
            f"reading {path} needs scipy (pip install scipy); without a root, musegen uses "
            "its vendored copy of the benchmark rolls instead"
        ) from e
    try:
        mat = loadmat(str(path))
        rolls = {s: [np.asarray(r) for r in mat[k].ravel()] for s, k in MAT_KEYS.items()}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MusegenError(f"{path}: not a Boulanger-Lewandowski piano-roll file ({e})") from e
    return pack_checked(path, rolls)


def pack_checked(path: Path, rolls: Rolls) -> Packed:
    """Packed rolls after checking every piece is a 0/1 ``[T, 88]`` array."""
    for split, pieces in rolls.items():
        for i, roll in enumerate(pieces):
            if roll.ndim != 2 or roll.shape[1] != N_KEYS or (roll.size and roll.max() > 1):
                raise MusegenError(f"{path}: {split} piece {i} is not a 0/1 [T, 88] roll")
    return {split: pack(rolls[split]) for split in SPLITS}


def write_npz(path: Path, packed: Packed, source_md5: str) -> None:
    """Store packed rolls as the vendored NPZ layout (compressed, no object arrays).

    Frames are stored column-major: each key's on/off runs then lie together, which deflate
    compresses about a third smaller than frame after frame.
    """
    arrays: dict[str, np.ndarray] = {"source_md5": np.array(source_md5)}
    for split in SPLITS:
        offsets, frames = packed[split]
        arrays[f"{split}_offsets"], arrays[f"{split}_frames"] = offsets, np.asfortranarray(frames)
    np.savez_compressed(path, **arrays)


def read_npz(path: Path) -> Packed:
    """Packed rolls from the vendored NPZ layout."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {s: (z[f"{s}_offsets"], np.ascontiguousarray(z[f"{s}_frames"])) for s in SPLITS}
    except (OSError, ValueError, KeyError) as e:
        raise MusegenError(f"{path}: cannot read vendored rolls ({e}); reinstall musegen") from e


class PolyMusicSource(Source):
    """Base of the four piano-roll benchmarks; subclasses state the facts of their set."""

    has_rolls = True
    mat_file: ClassVar[str]
    md5: ClassVar[str]
    vendored: ClassVar[str]  # NPZ file name in data/vendor/
    content_hash: ClassVar[str]  # content_sha256() of the published rolls
    split_sizes: ClassVar[dict[str, int]]
    steps_per_quarter: int  # frames per quarter note: 1 (JSB) or 2 (the others)

    def __init__(self, root: str | Path | None = None) -> None:
        super().__init__(root)
        self._rolls: Rolls | None = None
        self._origin = ""

    # ------------------------------------------------------------------ reading
    def locate(self) -> Path:
        """The file the rolls come from (see the module docstring for the order)."""
        path = find_file(self.root, self.mat_file, "poly_music")
        return path if path is not None else VENDOR_DIR / self.vendored

    def rolls(self) -> Rolls:
        """All rolls by split (read and verified once per instance)."""
        if self._rolls is None:
            path = self.locate()
            if path.suffix == ".npz":
                packed = read_npz(path)
                if content_sha256(packed) != self.content_hash:
                    raise MusegenError(f"{path}: vendored rolls are corrupt; reinstall musegen")
            else:
                packed = self.read(path)
            rolls = {split: unpack(*packed[split]) for split in SPLITS}
            sizes = {s: len(rolls[s]) for s in SPLITS}
            if sizes != self.split_sizes:
                raise MusegenError(f"{path}: split sizes {sizes}, published {self.split_sizes}")
            self._rolls, self._origin = rolls, str(path)
        return self._rolls

    def read(self, path: Path) -> Packed:
        """Rolls from a published data file, after checking it is that file."""
        check_md5(path, self.md5)
        return read_mat(path)

    # ------------------------------------------------------------------ Source API
    def pieces(self) -> list[Piece]:
        rolls = self.rolls()
        return [
            Piece(
                id=f"{split}/{i:03d}",
                split=split,
                origin=self._origin,
                sha256=hashlib.sha256(r.data).hexdigest(),
            )
            for split in SPLITS
            for i, r in enumerate(rolls[split])
        ]

    def roll(self, piece: Piece) -> np.ndarray:
        split, _, index = piece.id.partition("/")
        try:
            return self.rolls()[split][int(index)]
        except (KeyError, ValueError, IndexError) as e:
            raise MusegenError(f"{self.name}: no piece {piece.id!r}") from e

    def load(self, piece: Piece) -> Score:
        """The roll as a one-track piano score (480 ticks per quarter, program 0)."""
        from musegen.tokenizers.grid import from_binary_roll

        return from_binary_roll(self.roll(piece), self.steps_per_quarter, low=LOW_PITCH)
