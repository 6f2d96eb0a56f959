"""The infill objective: a token model learns to rewrite bars given the music around them.

A run file asks for it with ``"objective": {"name": "infill", ...}`` over a dataset prepared
with the ``chorale`` or ``melody`` tokenizer; the model gets the tokenizer's infill twin
(``chorale-infill``, ``melody-infill``: the same ids and two more, see
:mod:`musegen.tokenizers.infill`). Each training item is, with probability ``plain``, an
ordinary next-token window (so the model still continues pieces), else one infill example
drawn from a random piece (transposed like the plain windows):

* a region of 1 to ``max_region_bars`` bars (the pickup counts as a bar);
* the voices rewritten there: all (35%), all but the soprano (25%: accompaniment), or a
  random non-empty set (40%); a one-voice tokenizer has its line;
* half the time the hidden span goes on past the region, as it does while a long region is
  written in steps;
* a context of up to ``context_bars`` bars each side, cut to the sequence length.

The loss is on the answer's ids the model chooses (the hidden cells, the BAR ids and EOS);
the context and the given cells copied into the answer are not targets. The valid split gives
a fixed set of infill examples (two per piece, no transposition, no plain windows): the valid
loss is the answer's loss per target id.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from musegen.data.dataset import TokenSplit
from musegen.data.training import IGNORE_INDEX, WindowDataset
from musegen.errors import MusegenError
from musegen.tokenizers.base import PAD
from musegen.tokenizers.chorale import BarGridTokenizer
from musegen.tokenizers.infill import (
    Region,
    answer_plan,
    fit_context,
    infill_answer,
    infill_prompt,
    infill_twin,
    parse_grid,
    plain_twin,
    restart_after,
)


@dataclass(frozen=True)
class InfillObjective:
    """The run file's ``"objective"`` entry for bar infilling (module docstring)."""

    name: str = "infill"
    context_bars: int = 3
    max_region_bars: int = 4
    plain: float = 0.25

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InfillObjective:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise MusegenError(f"unknown objective option(s): {', '.join(sorted(unknown))}")
        if d.get("name", "infill") != "infill":
            raise MusegenError(f"unknown objective {d.get('name')!r}; the one there is: infill")
        obj = cls(**d)
        if obj.context_bars < 0 or obj.max_region_bars < 1 or not 0.0 <= obj.plain < 1.0:
            raise MusegenError(
                "objective: context_bars >= 0, max_region_bars >= 1 and 0 <= plain < 1, got "
                f"{obj.context_bars}, {obj.max_region_bars}, {obj.plain}"
            )
        return obj

    def meta(self, seq_len: int) -> dict[str, int]:
        """What generation needs to know (a saved model's ``"infill"`` entry)."""
        keep = ("context_bars", "max_region_bars")
        return {k: v for k, v in asdict(self).items() if k in keep} | {"seq_len": seq_len}


def draw_voices(rng: np.random.Generator, n_voices: int) -> tuple[int, ...]:
    """The voices to rewrite: all, all but the top one, or a random non-empty set."""
    if n_voices == 1:
        return (0,)
    r = rng.random()
    if r < 0.35:
        return tuple(range(n_voices))
    if r < 0.6:
        return tuple(range(1, n_voices))
    while True:
        pick = np.flatnonzero(rng.random(n_voices) < 0.5)
        if len(pick):
            return tuple(int(v) for v in pick)


class InfillDataset:
    """Infill examples (and, with probability ``plain``, next-token windows) of one split;
    item ``i`` is ``(x, y)`` LongTensors of ``seq_len``, a pure function of ``(seed, i)``."""

    def __init__(
        self,
        split: TokenSplit,
        tokenizer: BarGridTokenizer,
        seq_len: int,
        objective: InfillObjective,
        seed: int = 0,
        transpose: int = 0,
        samples: int | None = None,
        plain_windows: WindowDataset | None = None,
    ) -> None:
        self.split = split
        self.tok = infill_twin(tokenizer)
        self.seq_len = seq_len
        self.objective = objective
        self.seed = seed
        self.pieces = [i for i in range(len(split)) if len(split.piece(i)) > 4]
        if not self.pieces:
            raise MusegenError(f"split {split.name!r} has no piece to draw infill examples from")
        self.transpose = None
        if transpose:
            from musegen.data.augment import TokenTranspose

            self.transpose = TokenTranspose(plain_twin(self.tok), max_shift=transpose)
        self.plain_windows = plain_windows
        self._len = samples if samples is not None else max(1, split.n_tokens // seq_len)

    def __len__(self) -> int:
        return self._len

    def arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` int64 arrays of ``seq_len``: padded with PAD and ``IGNORE_INDEX``."""
        if not 0 <= index < self._len:
            raise IndexError(f"item {index} out of range 0..{self._len - 1}")
        rng = np.random.default_rng((self.seed, index, 0x1F))
        if self.plain_windows is not None and rng.random() < self.objective.plain:
            return self.plain_windows.arrays(index % len(self.plain_windows))
        seq, targets = self.example(rng)
        n = min(len(seq) - 1, self.seq_len)
        x = np.full(self.seq_len, PAD, np.int64)
        y = np.full(self.seq_len, IGNORE_INDEX, np.int64)
        x[:n], y[:n] = seq[:n], np.where(targets[1 : n + 1], seq[1 : n + 1], IGNORE_INDEX)
        return x, y

    def example(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One infill sequence (prompt and answer) and which of its ids are targets."""
        tok, obj = self.tok, self.objective
        piece = np.asarray(self.split.piece(self.pieces[rng.integers(len(self.pieces))]))
        if self.transpose is not None:
            piece = self.transpose(piece.astype(np.int64), rng)
        grid = parse_grid(tok, piece)
        n = grid.n_units
        length = int(rng.integers(1, min(obj.max_region_bars, n) + 1))
        first = int(rng.integers(0, n - length + 1))
        voices = draw_voices(rng, tok.n_voices)
        c0, c1, last = fit_context(
            grid, first, first + length - 1, obj.context_bars, self.seq_len + 1
        )
        hidden_to = last if rng.random() < 0.5 else int(rng.integers(last, c1 + 1))
        grid = restart_after(tok, grid, int(grid.starts[hidden_to + 1]), voices)
        region = Region(first, last, voices, (c0, c1), hidden_to)
        prompt = infill_prompt(tok, grid, region)
        answer = infill_answer(tok, grid, region)
        chosen = np.array([forced < 0 or voice < 0 for forced, voice in answer_plan(grid, region)])
        targets = np.concatenate([np.zeros(len(prompt), dtype=bool), chosen])
        return np.concatenate([prompt, answer]), targets

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        import torch

        x, y = self.arrays(index)
        return torch.from_numpy(x), torch.from_numpy(y)


def infill_datasets(
    data: Any, seq_len: int, seed: int, options: dict[str, Any], transpose: int
) -> tuple[BarGridTokenizer, InfillDataset, InfillDataset | None, dict[str, Any]]:
    """The infill tokenizer, train and valid items of a prepared dataset, and what the saved
    model's config records (``{"infill": …}``)."""
    objective = InfillObjective.from_dict(options)
    tok = infill_twin(data.tokenizer)
    train_split = data.split("train")
    # as many windows as the autoregressive trainer draws from (train.run): item i of the
    # infill set takes plain window i, so plain items are fresh windows, not a few hundred
    # (n_tokens // seq_len) drawn again and again with the same transposition
    plain = WindowDataset(
        train_split, seq_len, mode="random", seed=seed, samples=max(train_split.n_tokens, 1)
    )
    if transpose:
        from musegen.data.augment import TokenTranspose

        plain.augment = TokenTranspose(plain_twin(tok), max_shift=transpose)
    train = InfillDataset(
        train_split,
        tok,
        seq_len,
        objective,
        seed=seed,
        transpose=transpose,
        samples=max(train_split.n_tokens, 1),
        plain_windows=plain if objective.plain > 0 else None,
    )
    valid = None
    if "valid" in data.split_names and data.split("valid").n_tokens > 1:
        split = data.split("valid")
        valid = InfillDataset(split, tok, seq_len, objective, seed=12345, samples=2 * len(split))
    return tok, train, valid, {"infill": objective.meta(seq_len)}
