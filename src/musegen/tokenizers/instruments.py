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

**Styles** (MuseNet's composer tokens): with ``styles`` (a list of names, e.g. ``["bach",
"haydn"]``) the vocabulary ends with one ``STYLE_<name>`` id per name. A piece's style is read
from a ``style:NAME`` marker of the score (how ``scripts/multipart_corpora.py`` tags its
files); its STYLE token comes right after ``BOS`` (before the instruments, which it
conditions) and again after every ``Bar``, so every training window sees it::

    BOS STYLE_bach INST_40 INST_41 INST_42 Bar STYLE_bach TimeSig_4/4 Position_0 …

:meth:`InstrumentsTokenizer.styled` forces one (``generate --style bach``); without it the
model chooses after ``BOS`` and the grammar repeats its choice. A piece without a style has
no STYLE token. Decoding puts the ``style:NAME`` marker back. Without ``styles`` (the default,
and every model saved before the option) nothing changes: same ids, same grammar.

``python -m musegen.tokenizers.instruments`` prints the vocabulary.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from musegen.errors import MusegenError
from musegen.score import Marker, Score
from musegen.tokenizers.base import BOS, Grammar, Tokenizer, TokenizerConfig, Vocab
from musegen.tokenizers.remi import RemiTokenizer
from musegen.tokenizers.remi.grammar import RemiGrammar
from musegen.tokenizers.remi.vocab import DRUMS, SAVED_DEFAULTS, RemiConfig

N_PROGRAMS = DRUMS + 1  # 0..127 and drums
STYLE_MARKER = "style:"  # a score's style: a marker with this text and the name, at any time
_STYLE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass
class InstrumentsConfig(RemiConfig):
    """REMI's options and ``styles``: the style names the vocabulary has a token for (none by
    default; lowercase letters, digits, ``-`` and ``_``)."""

    styles: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [s for s in self.styles if not isinstance(s, str) or not _STYLE_NAME.fullmatch(s)]
        if bad:
            raise MusegenError(
                f"style names are lowercase letters, digits, '-' and '_' (up to 32); got {bad[0]!r}"
            )
        if len(set(self.styles)) != len(self.styles):
            raise MusegenError("styles must not repeat")

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if not self.styles:  # as models saved before the option have it
            del out["styles"]
        return out

    def remi(self) -> RemiConfig:
        """The REMI options alone."""
        return RemiConfig(**{k: v for k, v in super().to_dict().items() if k != "styles"})


class InstrumentsTokenizer(Tokenizer):
    """REMI (program tokens on) with an ``INST_*`` header (see the module docstring)."""

    name: ClassVar[str] = "remi-instruments"
    config_class: ClassVar[type[TokenizerConfig]] = InstrumentsConfig
    saved_defaults: ClassVar[dict[str, object]] = SAVED_DEFAULTS
    config: InstrumentsConfig

    def __init__(self, config: TokenizerConfig | None = None, **overrides: object) -> None:
        if isinstance(config, RemiConfig) and not isinstance(config, InstrumentsConfig):
            config = InstrumentsConfig(**config.to_dict())
        super().__init__(config, **overrides)
        self.plan: tuple[int, ...] | None = None  # forced header: programs, increasing
        self.style: int | None = None  # forced style: its index in ``config.styles``
        # what ``instrumented`` and ``styled`` can force
        self.controls = ("instruments", "style") if self.config.styles else ("instruments",)

    @property
    def styles(self) -> tuple[str, ...]:
        return tuple(self.config.styles)

    def build_vocab(self) -> Vocab:
        if not self.config.programs:
            raise MusegenError("the remi-instruments tokenizer needs program tokens (programs)")
        self.remi = RemiTokenizer(self.config.remi())
        rv = self.remi.vocab
        vocab = Vocab()
        for name, (lo, size) in rv.blocks.items():
            if name not in ("PAD", "BOS", "EOS"):
                vocab.add(name, size, lambda v, lo=lo: rv.token(lo + v))
        self.inst_lo = vocab.add(
            "instrument", N_PROGRAMS, lambda v: "INST_drums" if v == DRUMS else f"INST_{v}"
        )
        self.prog_lo, _ = rv.span("program")
        self.bar_id = rv.offset("bar")
        styles = self.config.styles
        self.style_lo = vocab.add("style", len(styles), lambda v: f"STYLE_{styles[v]}")
        return vocab

    # ---------------------------------------------------------------- ids
    def header(self, ids: np.ndarray | Sequence[int]) -> tuple[int, ...]:
        """The programs an id sequence names in its header (its ``INST`` ids)."""
        ids = np.asarray(ids, dtype=np.int64)
        head = ids[(ids >= self.inst_lo) & (ids < self.inst_lo + N_PROGRAMS)]
        return tuple(int(i) - self.inst_lo for i in head)

    def style_of(self, ids: np.ndarray | Sequence[int]) -> str | None:
        """The style an id sequence names (its first STYLE id), or None."""
        ids = np.asarray(ids, dtype=np.int64)
        found = ids[ids >= self.style_lo]
        return self.styles[int(found[0]) - self.style_lo] if len(found) else None

    def score_style(self, score: Score) -> int | None:
        """The index of a score's style (its ``style:NAME`` marker), or None when it has none;
        a name this tokenizer has no token for is a one-line error."""
        names = [
            m.text[len(STYLE_MARKER) :] for m in score.markers if m.text.startswith(STYLE_MARKER)
        ]
        if not names or not self.styles:
            return None
        if names[0] not in self.styles:
            raise MusegenError(
                f"style {names[0]!r} is not one of this tokenizer's: {', '.join(self.styles)}"
            )
        return self.styles.index(names[0])

    def body(self, ids: np.ndarray | Iterable[int]) -> np.ndarray:
        """The plain REMI ids of a sequence (its header and STYLE ids left out)."""
        arr = self.check_ids(ids if isinstance(ids, np.ndarray) else list(ids)).ravel()
        return arr[arr < self.inst_lo]

    def programs_in(self, remi_ids: np.ndarray) -> tuple[int, ...]:
        """The programs a REMI sequence's notes are played by, increasing."""
        progs = remi_ids[(remi_ids >= self.prog_lo) & (remi_ids < self.prog_lo + N_PROGRAMS)]
        return tuple(int(p) - self.prog_lo for p in np.unique(progs))

    # ---------------------------------------------------------------- encode / decode
    def encode(self, score: Score, bos: bool = True, eos: bool = True) -> np.ndarray:
        """REMI's ids with the header after BOS: the score's programs, or the plan's when a
        plan is set (a primer must then play only programs of the plan); with a style (the
        forced one, else the score's marker) its STYLE id after BOS and after every Bar."""
        ids = self.remi.encode(score, bos=bos, eos=eos)
        style = self.style if self.style is not None else self.score_style(score)
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
        if style is not None:  # after every Bar
            bars = np.flatnonzero(ids == self.bar_id) + 1
            ids = np.insert(ids, bars, self.style_lo + style)
        if not bos:
            return ids
        head = np.array([self.inst_lo + p for p in programs], dtype=np.int64)
        if style is not None:
            head = np.concatenate([[self.style_lo + style], head])
        return np.concatenate([ids[:1], head, ids[1:]])

    def decode(self, ids: np.ndarray | Iterable[int]) -> Score:
        arr = self.check_ids(ids if isinstance(ids, np.ndarray) else list(ids)).ravel()
        score = self.remi.decode(self.body(arr))
        style = self.style_of(arr)
        if style is not None:
            score.markers = [Marker(0, STYLE_MARKER + style), *score.markers]
        return score

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

    def styled(self, style: str) -> InstrumentsTokenizer:
        """A copy whose grammar forces ``style`` (one of :attr:`styles`) after BOS and every
        Bar; a one-line error naming the styles it knows otherwise."""
        if style not in self.styles:
            known = ", ".join(self.styles) if self.styles else "none (it has no style tokens)"
            raise MusegenError(f"style {style!r}: this model knows {known}")
        out = copy.copy(self)
        out.style = self.styles.index(style)
        return out

    def grammar(self) -> InstrumentsGrammar:
        return InstrumentsGrammar(self, self.plan, self.style)

    def describe(self) -> str:
        return (
            self.remi.describe().replace(self.remi.name, self.name, 1)
            + f"\n\nafter BOS: INST_* ids ({self.inst_lo}..{self.inst_lo + DRUMS}), increasing, "
            "the programs that play; then the REMI body, whose Program_* ids keep to them"
            + (
                f"\nstyles: STYLE_* ids ({self.style_lo}..{len(self.vocab) - 1}: "
                f"{', '.join(self.styles)}), after BOS (before the INST_* ids) and after every "
                "Bar, the same one throughout"
                if self.styles
                else ""
            )
        )


class InstrumentsGrammar(Grammar):
    """The header (a STYLE id when the tokenizer has styles, optional unless forced; ``INST``
    ids, increasing, forced by a plan), then REMI's grammar with the program ids narrowed to
    the header's and, once a style is chosen, that STYLE id after every Bar."""

    def __init__(
        self,
        tok: InstrumentsTokenizer,
        plan: tuple[int, ...] | None = None,
        style: int | None = None,
    ) -> None:
        self._tok = tok
        self._plan = plan
        self._forced_style = style
        self._inner: RemiGrammar = tok.remi.grammar()
        self.stage = "bos"  # bos -> head -> body
        self.named: list[int] = []  # programs of the header so far
        self.style: int | None = None  # the style chosen (index in tok.styles)
        self._bar_style = False  # a Bar was just stepped: the style comes next
        self._allowed = np.zeros(len(tok.vocab), dtype=bool)  # the header's program ids

    @property
    def done(self) -> bool:
        return self._inner.done

    def _style_slot(self) -> bool:
        """Right after BOS, when the tokenizer has styles and none is chosen yet."""
        return bool(self._tok.styles) and self.style is None and not self.named

    def mask(self) -> np.ndarray:
        tok = self._tok
        out = np.zeros(len(tok.vocab), dtype=bool)
        if self.stage == "bos":
            out[BOS] = True
            return out
        if self._bar_style:
            out[tok.style_lo + self.style] = True  # type: ignore[operator]
            return out
        if self.stage == "head" and self._style_slot():
            if self._forced_style is not None:
                out[tok.style_lo + self._forced_style] = True
                return out
            out[tok.style_lo : tok.style_lo + len(tok.styles)] = True
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
        if token >= tok.style_lo:
            self.style = token - tok.style_lo
            self._bar_style = False
            return
        if token >= tok.inst_lo:
            self.named.append(token - tok.inst_lo)
            self._allowed[tok.prog_lo + self.named[-1]] = True
            return
        self.stage = "body"
        self._inner.step(token)
        self._bar_style = token == tok.bar_id and self.style is not None


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
