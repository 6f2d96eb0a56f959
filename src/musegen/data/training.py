"""Training access to prepared data: fixed-length token windows and padded piano-roll batches.

Both classes are plain map-style datasets (``__len__`` + ``__getitem__``) that a
``torch.utils.data.DataLoader`` takes as they are; torch is imported only when an item is made,
so importing :mod:`musegen.data` stays free of torch.

Randomness is a pure function of ``(seed, epoch, index)``: the same item is the same window
on every run and in every DataLoader worker; call ``set_epoch`` to draw new windows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from musegen.data.dataset import TokenSplit
from musegen.errors import MusegenError
from musegen.tokenizers.base import PAD

IGNORE_INDEX = -100  # target value of padding: torch's cross_entropy skips it by default


class WindowDataset:
    """Windows of ``seq_len + 1`` tokens over a split; item ``i`` is ``(x, y)`` LongTensors.

    ``y`` is ``x`` moved one token on (next-token targets). ``mode="random"``: each item starts
    at an offset drawn from ``(seed, epoch, i)``; an epoch has ``n_tokens // seq_len`` items
    unless ``samples`` says otherwise. ``mode="tile"``: windows start at ``0, seq_len,
    2 * seq_len, ...`` so every token after the first is a target exactly once; the last
    window is padded (``x`` with PAD, ``y`` with :data:`IGNORE_INDEX`). Windows may span
    piece boundaries (pieces are framed by BOS ... EOS). Grid splits give ``[seq_len, width]``.

    ``augment`` is applied to each window before it is cut into ``x`` and ``y``: an object
    with ``window(tokens, start, stop, rng)`` (such as
    :class:`~musegen.data.augment.TokenTranspose`) or a function ``(ids, rng) -> ids``.
    """

    def __init__(
        self,
        split: TokenSplit,
        seq_len: int,
        mode: str = "random",
        seed: int = 0,
        augment: Any = None,
        samples: int | None = None,
    ) -> None:
        if seq_len < 1:
            raise MusegenError(f"seq_len must be >= 1, got {seq_len}")
        if mode not in ("random", "tile"):
            raise MusegenError(f"mode must be 'random' or 'tile', got {mode!r}")
        if split.n_tokens < 2:
            raise MusegenError(f"split {split.name!r} has {split.n_tokens} tokens; need >= 2")
        self.tokens = split.tokens
        self.n_tokens = split.n_tokens
        self.seq_len = seq_len
        self.mode = mode
        self.seed = seed
        self.epoch = 0
        self.augment = augment
        targets = self.n_tokens - 1
        if mode == "tile":
            self._len = -(-targets // seq_len)
        else:
            self._len = samples if samples is not None else max(1, targets // seq_len)

    def __len__(self) -> int:
        return self._len

    def set_epoch(self, epoch: int) -> None:
        """Random mode draws new windows for each epoch."""
        self.epoch = epoch

    def start(self, index: int) -> int:
        """First token of window ``index``."""
        if self.mode == "tile":
            return index * self.seq_len
        top = self.n_tokens - self.seq_len - 1
        return int(self._rng(index).integers(0, top + 1)) if top > 0 else 0

    def window(self, index: int) -> np.ndarray:
        """The ``seq_len + 1`` tokens of an item (shorter at the end of the data), augmented."""
        if not 0 <= index < self._len:
            raise IndexError(f"window {index} out of range 0..{self._len - 1}")
        start = self.start(index)
        stop = min(start + self.seq_len + 1, self.n_tokens)
        if self.augment is None:
            return np.asarray(self.tokens[start:stop], dtype=np.int64)
        rng = self._rng(index, salt=1)
        if hasattr(self.augment, "window"):
            ids = self.augment.window(self.tokens, start, stop, rng)
        else:
            ids = self.augment(np.asarray(self.tokens[start:stop]), rng)
        return np.asarray(ids, dtype=np.int64)

    def arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` as int64 numpy arrays of length ``seq_len``, padded where data ends."""
        w = self.window(index)
        n = len(w) - 1
        x = np.full((self.seq_len, *w.shape[1:]), PAD, np.int64)
        y = np.full((self.seq_len, *w.shape[1:]), IGNORE_INDEX, np.int64)
        x[:n], y[:n] = w[:-1], w[1:]
        return x, y

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        import torch

        x, y = self.arrays(index)
        return torch.from_numpy(x), torch.from_numpy(y)

    def _rng(self, index: int, salt: int = 0) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch, index, salt))

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (DataLoader workers under spawn) as the file's name, not its contents."""
        state = self.__dict__.copy()
        t = self.tokens
        if isinstance(t, np.memmap) and t.filename:
            state["tokens"] = ("memmap", t.filename, t.dtype.str, t.shape)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state["tokens"], tuple):
            _, filename, dtype, shape = state["tokens"]
            state["tokens"] = np.memmap(filename, dtype=np.dtype(dtype), mode="r", shape=shape)
        self.__dict__.update(state)


class RollDataset:
    """Binary piano rolls ``[frames, 88]`` (MIDI 21..108), one item per piece, for frame models.

    Items are float32 tensors; batch them with :func:`collate_rolls`. ``augment`` is a
    function ``(roll, rng) -> roll`` such as :func:`~musegen.data.augment.transpose_roll`;
    ``max_frames`` cuts a random window from longer pieces (reproducible like
    :class:`WindowDataset`).
    """

    def __init__(
        self,
        rolls: Sequence[np.ndarray],
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        max_frames: int | None = None,
        seed: int = 0,
    ) -> None:
        self.rolls = [np.asarray(r, dtype=bool) for r in rolls]
        if any(r.ndim != 2 for r in self.rolls):
            raise MusegenError("piano rolls must be [frames, keys] arrays")
        self.augment = augment
        self.max_frames = max_frames
        self.seed = seed
        self.epoch = 0

    @classmethod
    def from_source(cls, source: Any, split: str, **kwargs: Any) -> RollDataset:
        """The rolls of one split of a roll source (``source.roll(piece)``)."""
        if not getattr(source, "has_rolls", False):
            raise MusegenError(f"source {source.name!r} has no piano rolls")
        pieces = [p for p in source.pieces() if p.split == split]
        if not pieces:
            raise MusegenError(f"source {source.name!r} has no pieces in split {split!r}")
        return cls([source.roll(p) for p in pieces], **kwargs)

    def __len__(self) -> int:
        return len(self.rolls)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def array(self, index: int) -> np.ndarray:
        roll = self.rolls[index]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if self.max_frames is not None and len(roll) > self.max_frames:
            start = int(rng.integers(0, len(roll) - self.max_frames + 1))
            roll = roll[start : start + self.max_frames]
        if self.augment is not None:
            roll = self.augment(roll, rng)
        return np.asarray(roll, dtype=np.float32)

    def __getitem__(self, index: int) -> Any:
        import torch

        return torch.from_numpy(self.array(index))


def collate_rolls(batch: Sequence[Any]) -> dict[str, Any]:
    """Pad rolls to the longest: ``rolls`` [B, T, K], ``lengths`` [B], ``mask`` [B, T] (bool)."""
    import torch

    lengths = torch.tensor([len(r) for r in batch], dtype=torch.long)
    t_max = int(lengths.max()) if len(batch) else 0
    keys = batch[0].shape[1] if len(batch) else 88
    rolls = torch.zeros(len(batch), t_max, keys, dtype=torch.float32)
    for i, r in enumerate(batch):
        rolls[i, : len(r)] = torch.as_tensor(r, dtype=torch.float32)
    mask = torch.arange(t_max)[None, :] < lengths[:, None]
    return {"rolls": rolls, "lengths": lengths, "mask": mask}
