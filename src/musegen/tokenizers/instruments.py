"""The ``remi-instruments`` tokenizer: REMI with the piece's instruments named up front.

MuseNet-style instrument choice. A piece is the REMI sequence (with program tokens) with one
``INST_<program>`` token for each program that plays in it, in increasing order, right after
``BOS``::

    BOS INST_40 INST_41 INST_42 Bar TimeSig_4/4 Position_0 Program_42 Pitch_48 … EOS

The header is what a user chooses (``musegen generate --instruments "violin,viola,cello"``):
:meth:`InstrumentsTokenizer.instrumented` returns a copy whose grammar forces that header and
allows in the body only the program tokens it names, so every note is played by an instrument
asked for (whether every instrument asked for plays is the model's part). Without a plan the
header is free: a model writes its own, and the body keeps to it. An empty header (a primer
without notes) leaves the programs free.

The ids are REMI's, with the 129 ``INST`` ids after all of them (0..127 and 128 for drums, as
REMI's programs), so a plain REMI sequence reads the same under both. Tracks of one program
are one part, as in REMI: ``violin,violin`` is one violin part.

``python -m musegen.tokenizers.instruments`` prints the vocabulary.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import ClassVar

import numpy as np

from musegen.errors import MusegenError
from musegen.score import Score
from musegen.tokenizers.base import BOS, Grammar, Tokenizer, TokenizerConfig, Vocab
from musegen.tokenizers.remi import RemiTokenizer
from musegen.tokenizers.remi.grammar import RemiGrammar
from musegen.tokenizers.remi.vocab import DRUMS, SAVED_DEFAULTS, RemiConfig

N_PROGRAMS = DRUMS + 1  # 0..127 and drums


class InstrumentsTokenizer(Tokenizer):
    """REMI (program tokens on) with an ``INST_*`` header (see the module docstring)."""

    name: ClassVar[str] = "remi-instruments"
    config_class: ClassVar[type[TokenizerConfig]] = RemiConfig
    saved_defaults: ClassVar[dict[str, object]] = SAVED_DEFAULTS
    config: RemiConfig

    def __init__(self, config: TokenizerConfig | None = None, **overrides: object) -> None:
        super().__init__(config, **overrides)
        self.plan: tuple[int, ...] | None = None  # forced header: programs, increasing
        self.controls = ("instruments",)  # what ``instrumented`` can force

    def build_vocab(self) -> Vocab:
        if not self.config.programs:
            raise MusegenError("the remi-instruments tokenizer needs program tokens (programs)")
        self.remi = RemiTokenizer(self.config)
        rv = self.remi.vocab
        vocab = Vocab()
        for name, (lo, size) in rv.blocks.items():
            if name not in ("PAD", "BOS", "EOS"):
                vocab.add(name, size, lambda v, lo=lo: rv.token(lo + v))
        self.inst_lo = vocab.add(
            "instrument", N_PROGRAMS, lambda v: "INST_drums" if v == DRUMS else f"INST_{v}"
        )
        self.prog_lo, _ = rv.span("program")
        return vocab

    # ---------------------------------------------------------------- ids
    def header(self, ids: np.ndarray | Sequence[int]) -> tuple[int, ...]:
        """The programs an id sequence names in its header (its ``INST`` ids)."""
        ids = np.asarray(ids, dtype=np.int64)
        return tuple(int(i) - self.inst_lo for i in ids[ids >= self.inst_lo])

    def body(self, ids: np.ndarray | Iterable[int]) -> np.ndarray:
        """The plain REMI ids of a sequence (its header left out)."""
        arr = self.check_ids(ids if isinstance(ids, np.ndarray) else list(ids)).ravel()
        return arr[arr < self.inst_lo]

    def programs_in(self, remi_ids: np.ndarray) -> tuple[int, ...]:
        """The programs a REMI sequence's notes are played by, increasing."""
        progs = remi_ids[(remi_ids >= self.prog_lo) & (remi_ids < self.prog_lo + N_PROGRAMS)]
        return tuple(int(p) - self.prog_lo for p in np.unique(progs))

    # ---------------------------------------------------------------- encode / decode
    def encode(self, score: Score, bos: bool = True, eos: bool = True) -> np.ndarray:
        """REMI's ids with the header after BOS: the score's programs, or the plan's when a
        plan is set (a primer must then play only programs of the plan)."""
        ids = self.remi.encode(score, bos=bos, eos=eos)
        playing = self.programs_in(ids)
        programs = playing
        if self.plan is not None:
            extra = sorted(set(playing) - set(self.plan))
            if extra:
                raise MusegenError(
                    f"the primer plays program(s) {', '.join(map(str, extra))}, which the "
                    "instruments asked for leave out"
                )
            programs = self.plan
        if not bos:
            return ids
        head = np.array([self.inst_lo + p for p in programs], dtype=np.int64)
        return np.concatenate([ids[:1], head, ids[1:]])

    def decode(self, ids: np.ndarray | Iterable[int]) -> Score:
        return self.remi.decode(self.body(ids))

    def prepare(self, score: Score) -> Score:
        return self.remi.prepare(score)

    def time_reached(self, ids: np.ndarray) -> int | None:
        return self.remi.time_reached(self.body(ids))

    # ---------------------------------------------------------------- control
    def instrumented(self, programs: Sequence[int]) -> InstrumentsTokenizer:
        """A copy whose grammar forces the header to ``programs`` (GM program numbers, 128
        for drums; repeats are one part) and keeps the notes to them."""
        bad = [p for p in programs if not 0 <= int(p) < N_PROGRAMS]
        if bad or not programs:
            raise MusegenError(
                f"instruments must be GM programs 0..127 or 128 (drums), at least one; got "
                f"{list(programs)}"
            )
        out = copy.copy(self)
        out.plan = tuple(sorted({int(p) for p in programs}))
        return out

    def grammar(self) -> InstrumentsGrammar:
        return InstrumentsGrammar(self, self.plan)

    def describe(self) -> str:
        return (
            self.remi.describe().replace(self.remi.name, self.name, 1)
            + f"\n\nafter BOS: INST_* ids ({self.inst_lo}..{self.inst_lo + DRUMS}), increasing, "
            "the programs that play; then the REMI body, whose Program_* ids keep to them"
        )


class InstrumentsGrammar(Grammar):
    """The header (``INST`` ids, increasing; forced by a plan), then REMI's grammar with the
    program ids narrowed to the header's."""

    def __init__(self, tok: InstrumentsTokenizer, plan: tuple[int, ...] | None = None) -> None:
        self._tok = tok
        self._plan = plan
        self._inner: RemiGrammar = tok.remi.grammar()
        self.stage = "bos"  # bos -> head -> body
        self.named: list[int] = []  # programs of the header so far
        self._allowed = np.zeros(len(tok.vocab), dtype=bool)  # the header's program ids

    @property
    def done(self) -> bool:
        return self._inner.done

    def mask(self) -> np.ndarray:
        tok = self._tok
        out = np.zeros(len(tok.vocab), dtype=bool)
        if self.stage == "bos":
            out[BOS] = True
            return out
        inner = self._inner.mask()
        if self.stage == "head":
            if self._plan is not None:
                if len(self.named) < len(self._plan):
                    out[tok.inst_lo + self._plan[len(self.named)]] = True
                    return out
            else:
                first = self.named[-1] + 1 if self.named else 0
                out[tok.inst_lo + first : tok.inst_lo + N_PROGRAMS] = True
        out[: len(inner)] |= inner
        if self.named:
            out[tok.prog_lo : tok.prog_lo + N_PROGRAMS] &= self._allowed[
                tok.prog_lo : tok.prog_lo + N_PROGRAMS
            ]
        return out

    def step(self, token: int) -> None:
        tok = self._tok
        if not 0 <= token < len(tok.vocab) or not self.mask()[token]:
            label = tok.vocab.token(token) if 0 <= token < len(tok.vocab) else "?"
            raise ValueError(f"{tok.name} token {token} ({label}) not allowed here")
        if self.stage == "bos":
            self._inner.step(token)
            self.stage = "head"
            return
        if token >= tok.inst_lo:
            self.named.append(token - tok.inst_lo)
            self._allowed[tok.prog_lo + self.named[-1]] = True
            return
        self.stage = "body"
        self._inner.step(token)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(description="Print the remi-instruments vocabulary and grammar.")
    p.add_argument("--config", default="{}", help="tokenizer options as JSON")
    args = p.parse_args(argv)
    print(InstrumentsTokenizer(**json.loads(args.config)).describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
