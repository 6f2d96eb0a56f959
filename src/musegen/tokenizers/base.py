"""What every tokenizer shares: a block-structured vocabulary, a JSON config, a grammar.

A tokenizer turns a :class:`~musegen.score.Score` into an integer array and back:

* ``encode(score) -> np.ndarray`` (vectorised numpy, no per-note Python loops where avoidable),
* ``decode(ids) -> Score``,
* ``prepare(score) -> Score``: the score as the tokenizer sees it (quantized to its grid, its
  velocity bins, ...). The round-trip contract, tested for every tokenizer, is
  ``decode(encode(s))`` has the same notes as ``prepare(s)``.
* ``grammar() -> Grammar``: a small state machine that says which ids may come next, so a
  sampler can mask impossible tokens and every generated sequence decodes.

The vocabulary is laid out as named blocks of consecutive ids (``offset + value``), so encoding a
column of pitches is one vectorised addition.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from musegen.errors import MusegenError
from musegen.score import Score

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ("PAD", "BOS", "EOS")


class Vocab:
    """Token ids as named blocks of consecutive ids.

    >>> v = Vocab()
    >>> v.add("pitch", 128)
    3
    >>> v.id("pitch_60"), v.token(63), len(v)
    (63, 'pitch_60', 131)
    """

    def __init__(self, specials: Iterable[str] = SPECIALS) -> None:
        self._labels: list[str] = []
        self._blocks: dict[str, tuple[int, int]] = {}
        for s in specials:
            self.add(s, 1, lambda _v, s=s: s)
        self._index: dict[str, int] | None = None

    def add(self, name: str, size: int, label: Callable[[int], str] | None = None) -> int:
        """Append a block of ``size`` ids; returns its offset."""
        if name in self._blocks:
            raise ValueError(f"block {name!r} already in vocabulary")
        offset = len(self._labels)
        self._blocks[name] = (offset, size)
        label = label or (lambda v: f"{name}_{v}")
        self._labels.extend(label(v) for v in range(size))
        self._index = None
        return offset

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, name: str) -> bool:
        return name in self._blocks

    @property
    def blocks(self) -> dict[str, tuple[int, int]]:
        return dict(self._blocks)

    def offset(self, name: str) -> int:
        return self._blocks[name][0]

    def size(self, name: str) -> int:
        return self._blocks[name][1]

    def span(self, name: str) -> tuple[int, int]:
        """``[lo, hi)`` ids of a block."""
        off, size = self._blocks[name]
        return off, off + size

    def token(self, i: int) -> str:
        return self._labels[i]

    def id(self, label: str) -> int:
        if self._index is None:
            self._index = {s: i for i, s in enumerate(self._labels)}
        return self._index[label]

    def is_in(self, ids: np.ndarray, name: str) -> np.ndarray:
        lo, hi = self.span(name)
        return (ids >= lo) & (ids < hi)

    def mask(self, *names: str) -> np.ndarray:
        """Boolean mask over the vocabulary, True on the named blocks."""
        m = np.zeros(len(self), dtype=bool)
        for n in names:
            lo, hi = self.span(n)
            m[lo:hi] = True
        return m

    def labels(self) -> list[str]:
        return list(self._labels)


MAX_OPTION = 2**16
"""Largest number a tokenizer config read from a file may hold (also no NaN): a remi
``max_duration_quarters`` of 2**31 built a vocabulary for minutes."""


@dataclass
class TokenizerConfig:
    """Base for tokenizer configs: plain fields, JSON in and out."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenizerConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise MusegenError(f"unknown {cls.__name__} option(s): {', '.join(sorted(unknown))}")
        for name, value in d.items():
            numbers = value if isinstance(value, list | tuple) else [value]
            if any(isinstance(v, int | float) and not abs(v) <= MAX_OPTION for v in numbers):
                raise MusegenError(f"{cls.__name__}.{name}={value!r} is beyond {MAX_OPTION:,}")
        return cls(**d)


class Grammar(ABC):
    """Per-sequence state machine over token ids.

    ``mask()`` is the boolean mask of ids allowed next; ``step(id)`` consumes one id (raising
    ``ValueError`` for a disallowed one). A sampler calls ``mask`` and ``step`` in turn.
    """

    @abstractmethod
    def mask(self) -> np.ndarray: ...

    @abstractmethod
    def step(self, token: int) -> None: ...

    @property
    def done(self) -> bool:
        """True once the sequence is complete (e.g. after EOS)."""
        return False

    def feed(self, ids: Iterable[int]) -> Grammar:
        for t in ids:
            self.step(int(t))
        return self


class BatchGrammar(ABC):
    """The grammars of ``n`` sequences stepped together, for a batched sampler.

    ``mask()`` is ``[n, vocab]``; ``step(tokens)`` consumes one id per sequence. A finished
    sequence (after EOS, or ended with :meth:`finish`) allows only PAD from then on and must be
    given PAD. :class:`GrammarList` serves any tokenizer; a tokenizer may supply a vectorised
    one.
    """

    @abstractmethod
    def mask(self) -> np.ndarray: ...

    @abstractmethod
    def step(self, tokens: np.ndarray) -> None: ...

    @property
    @abstractmethod
    def done(self) -> np.ndarray:
        """Bool ``[n]``: sequences that are finished."""

    @abstractmethod
    def finish(self, rows: np.ndarray) -> None:
        """End the sequences ``rows`` (indices or a bool mask): PAD only from now on."""


class GrammarList(BatchGrammar):
    """A :class:`BatchGrammar` over one :class:`Grammar` per sequence."""

    def __init__(self, grammars: list[Grammar], vocab_size: int) -> None:
        self._grammars = grammars
        self._done = np.array([g.done for g in grammars], dtype=bool)
        self._pad_only = np.zeros(vocab_size, dtype=bool)
        self._pad_only[PAD] = True

    def mask(self) -> np.ndarray:
        pairs = zip(self._grammars, self._done, strict=True)
        return np.stack([self._pad_only if d else g.mask() for g, d in pairs])

    def step(self, tokens: np.ndarray) -> None:
        for b in np.flatnonzero(~self._done):
            g = self._grammars[b]
            g.step(int(tokens[b]))
            self._done[b] = g.done

    @property
    def done(self) -> np.ndarray:
        return self._done.copy()

    def finish(self, rows: np.ndarray) -> None:
        self._done[rows] = True


class Tokenizer(ABC):
    """Base class: subclasses set ``name`` and ``config_class`` and fill in the hooks."""

    name: ClassVar[str]
    config_class: ClassVar[type[TokenizerConfig]]
    # options added after models were saved, with the value a saved config that lacks them
    # was made with (see musegen.tokenizers.tokenizer_from_dict)
    saved_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: TokenizerConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = self.config_class.from_dict(overrides)
        elif overrides:
            config = self.config_class.from_dict({**config.to_dict(), **overrides})
        self.config = config
        self.vocab = self.build_vocab()

    # hooks ---------------------------------------------------------------------------
    @abstractmethod
    def build_vocab(self) -> Vocab: ...

    @abstractmethod
    def encode(self, score: Score) -> np.ndarray: ...

    @abstractmethod
    def decode(self, ids: np.ndarray | Iterable[int]) -> Score: ...

    @abstractmethod
    def prepare(self, score: Score) -> Score: ...

    @abstractmethod
    def grammar(self) -> Grammar: ...

    def batch_grammar(self, n: int, prefix: Iterable[int] = ()) -> BatchGrammar:
        """Grammars of ``n`` sequences that all begin with ``prefix``, stepped together."""
        prefix = np.asarray(prefix, dtype=np.int64)
        return GrammarList([self.grammar().feed(prefix) for _ in range(n)], len(self))

    # shared --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"

    def encode_many(self, scores: Iterable[Score]) -> list[np.ndarray]:
        """``[encode(s) for s in scores]``; a tokenizer may do it faster in one pass."""
        return [self.encode(s) for s in scores]

    def time_reached(self, ids: np.ndarray) -> int | None:
        """The tick (of decoded scores) that any later token can no longer go before, or
        ``None`` when the tokenizer cannot say. Generation uses it to stop at a length even
        when the last bars are empty."""
        return None

    def primer_for_length(self, score: Score, bars: int) -> np.ndarray | None:
        """Ids of a primer for ``score`` that make the grammar end the piece after ``bars``
        bars in all, or ``None`` when the tokenizer cannot carry a length (the generator then
        stops at the length itself)."""
        return None

    def allowed_next(self, ids: Iterable[int]) -> np.ndarray:
        """Mask of ids allowed after the sequence ``ids``."""
        return self.grammar().feed(ids).mask()

    def tokens(self, ids: Iterable[int]) -> list[str]:
        """Human-readable labels of ids."""
        return [self.vocab.token(int(i)) for i in ids]

    def check_ids(self, ids: np.ndarray | Iterable[int]) -> np.ndarray:
        """Ids as an int64 array, or a :class:`MusegenError` if any is outside the vocabulary."""
        try:
            arr = np.asarray(ids, dtype=np.int64)
        except (OverflowError, TypeError, ValueError) as e:  # 2**64, "x", None, ragged lists
            raise MusegenError(f"token ids must be whole numbers in the vocabulary ({e})") from e
        if arr.size and (arr.min() < 0 or arr.max() >= len(self.vocab)):
            bad = int(arr[(arr < 0) | (arr >= len(self.vocab))][0])
            raise MusegenError(
                f"token id {bad} is outside the {self.name} vocabulary (size {len(self.vocab)})"
            )
        return arr

    def to_dict(self) -> dict[str, Any]:
        return {"tokenizer": self.name, "config": self.config.to_dict()}

    def save(self, path: str | Path) -> None:
        from musegen.utils import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2))
