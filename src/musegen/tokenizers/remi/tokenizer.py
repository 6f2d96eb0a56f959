""":class:`RemiTokenizer`: the REMI vocabulary, encoder, decoder and grammar behind the
:class:`~musegen.tokenizers.base.Tokenizer` interface. The work is done in the sibling modules;
this class holds the config, the vocabulary and the grammar tables, and hands them over."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from typing import ClassVar

import numpy as np

from musegen.score import Score
from musegen.tokenizers.base import Tokenizer, TokenizerConfig
from musegen.tokenizers.remi import decode as _decode
from musegen.tokenizers.remi.encode import (
    Canonical,
    CanonicalBatch,
    bar_lines,
    canonical_batch,
    encode_batch,
)
from musegen.tokenizers.remi.grammar import (
    GrammarTables,
    RemiBatchGrammar,
    RemiGrammar,
    describe_rules,
)
from musegen.tokenizers.remi.vocab import SAVED_DEFAULTS, RemiConfig, RemiVocab, describe_blocks


class RemiTokenizer(Tokenizer):
    """REMI with program, tempo and time-signature tokens (see :mod:`musegen.tokenizers.remi`
    for the token order and :mod:`.encode` for the canonical form)."""

    name: ClassVar[str] = "remi"
    config_class: ClassVar[type[TokenizerConfig]] = RemiConfig
    saved_defaults: ClassVar[dict[str, object]] = SAVED_DEFAULTS
    config: RemiConfig
    vocab: RemiVocab

    def build_vocab(self) -> RemiVocab:
        return RemiVocab(self.config)

    @cached_property
    def grammar_tables(self) -> GrammarTables:
        """The grammar as lookup tables, shared by every grammar of this tokenizer."""
        return GrammarTables(self.vocab)

    # the vocabulary's tables most used, under the tokenizer's name
    @property
    def off(self) -> dict[int, int]:
        """Block offset by token kind."""
        return self.vocab.off

    @property
    def kind_of(self) -> np.ndarray:
        return self.vocab.kind_of

    @property
    def value_of(self) -> np.ndarray:
        return self.vocab.value_of

    @property
    def bar_steps(self) -> np.ndarray:
        """Grid steps of a bar of each supported time signature."""
        return self.vocab.bar_steps

    @property
    def pitch_lo(self) -> int:
        return self.vocab.pitch_lo

    # ------------------------------------------------------------------ encode
    def encode(self, score: Score, bos: bool = True, eos: bool = True) -> np.ndarray:
        """Token ids of ``prepare(score)``, optionally wrapped in BOS/EOS: a batch of one."""
        return self.encode_many([score], bos, eos)[0]

    def encode_many(
        self, scores: Iterable[Score], bos: bool = True, eos: bool = True
    ) -> list[np.ndarray]:
        """``[encode(s) for s in scores]``, in one vectorised pass over all the scores' notes.

        Many small pieces cost little more than one large one: numpy's per-call overhead is
        paid per batch, not per piece. The arrays returned are views of one array.
        """
        scores = list(scores)
        if not scores:
            return []
        batch = canonical_batch(self.vocab, scores)
        if batch is None:  # the batch's sort keys would not fit 63 bits: one piece at a time
            return [self.encode(s, bos, eos) for s in scores]
        return encode_batch(self.vocab, batch, bos, eos)

    def prepare(self, score: Score) -> Score:
        """The score as the tokens describe it (see :mod:`.encode`)."""
        return _decode.to_score(self.vocab, self._canonical(score))

    def _canonical(self, score: Score) -> Canonical:
        """The canonical form of one score: the encoder's, for a batch of one."""
        batch: CanonicalBatch | None = canonical_batch(self.vocab, [score])
        assert batch is not None  # only several pieces can overflow the sort keys
        return batch.only_piece(self.vocab.pitch_lo)

    def _bar_starts(self, ts_steps: np.ndarray, ts_index: np.ndarray, end: int) -> np.ndarray:
        """Bar-line steps of every bar of one piece starting before ``end`` (at least one)."""
        meter = (ts_steps.tolist(), ts_index.tolist())
        return bar_lines(self.vocab, [meter], [end], 0)[0]

    def _to_steps(self, ticks: np.ndarray | list[int] | int, tpq: int) -> np.ndarray:
        """Ticks at ``tpq`` to the nearest grid step (ties go later), as an int64 array."""
        return self.vocab.to_steps(np.asarray(ticks, np.int64), tpq)

    def _signature_index(self, num: int, den: int) -> int:
        return self.vocab.signature_index(num, den)

    # ------------------------------------------------------------------ decode
    def decode(self, ids: np.ndarray | Iterable[int]) -> Score:
        """A score from ids: skips PAD/BOS, stops at EOS, ignores tokens out of grammar.

        Raises :class:`MusegenError` for ids outside the vocabulary.
        """
        return _decode.decode(self.vocab, self._checked(ids))

    def time_reached(self, ids: np.ndarray) -> int | None:
        """The start tick of the last bar begun: every later note starts at or after it."""
        return _decode.time_reached(self.vocab, self._checked(ids))

    def _checked(self, ids: np.ndarray | Iterable[int]) -> np.ndarray:
        return self.check_ids(ids if isinstance(ids, np.ndarray) else list(ids)).ravel()

    # ------------------------------------------------------------------ grammar
    def grammar(self) -> RemiGrammar:
        return RemiGrammar(self)

    def batch_grammar(self, n: int, prefix: Iterable[int] = ()) -> RemiBatchGrammar:
        return RemiBatchGrammar(self, n, prefix)

    def describe(self) -> str:
        """The vocabulary blocks and the grammar's rules, for a reader."""
        lines = [
            f"{self.name} tokenizer: {len(self.vocab)} ids, {self.config.to_dict()}",
            "",
            "a piece: BOS, bars, EOS; a bar: bar [time_sig], then its onsets; an onset:",
            "  position [tempo], then its notes; a note: [program] pitch [velocity] duration",
            "",
            "vocabulary: ids, count, block, tokens",
            *describe_blocks(self.vocab),
            "",
            *describe_rules(self.vocab),
        ]
        return "\n".join(lines)
