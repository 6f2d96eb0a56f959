"""Which REMI ids may come next: the grammar a sampler masks its logits with.

One implementation serves both interfaces: :class:`RemiGrammar` (one sequence, an id at a
time) is a batch of one of the state that :class:`RemiBatchGrammar` steps for ``n`` sequences
together, so the two cannot disagree. A sequence's state is

* the kind of its last token and its *phase* (position in the bar and the bar's length),
  which pick one precomputed row of allowed ids (:class:`GrammarTables`), and
* the notes written at the current position (:class:`_NoteOrder`), which take ids out of that
  row so the notes of a position come in the encoder's order, none more than ``unisons``
  times.

A mask is one gather and a comparison or two, a step a few gathers, whatever ``n``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np

from musegen.tokenizers.base import BatchGrammar, Grammar
from musegen.tokenizers.remi.vocab import (
    K_BAR,
    K_BOS,
    K_DUR,
    K_EOS,
    K_PAD,
    K_PITCH,
    K_POS,
    K_PROG,
    K_TEMPO,
    K_TS,
    K_VEL,
    KIND_OF_BLOCK,
    N_KINDS,
    RemiConfig,
    RemiVocab,
)

START = N_KINDS  # the state before the first token
POSITION_AFTER = (K_BAR, K_TS, K_TEMPO, K_DUR)  # kinds a (later) POSITION may follow


def follows(c: RemiConfig) -> dict[int, tuple[str, ...]]:
    """The blocks allowed after each kind of token, POSITION apart (see
    :data:`POSITION_AFTER`). PAD only follows EOS in a valid sequence."""
    note_start = ("program",) if c.programs else ("pitch",)
    after_pitch = ("velocity",) if c.velocity_bins else ("duration",)
    tempo = ("tempo",) if c.tempo_bins else ()
    return {
        START: ("BOS",),
        K_BOS: ("bar", "EOS"),
        K_BAR: ("time_sig", "bar", "EOS"),
        K_TS: ("bar", "EOS"),
        K_POS: (*tempo, *note_start),
        K_TEMPO: (*note_start, "bar", "EOS"),
        K_PROG: ("pitch",),
        K_PITCH: after_pitch,
        K_VEL: ("duration",),
        K_DUR: (*note_start, "pitch", "bar", "EOS") if c.programs else ("pitch", "bar", "EOS"),
        K_EOS: ("PAD",),
        K_PAD: ("PAD",),
    }


# The note order's affine maps of its state (need, gap, prog); row: from, column: to.
_ANY = 1 << 62  # key_reach / program_value of ids the order does not limit
_KEEP = np.eye(3, dtype=np.int64)
_START_NOTE = np.array([[1, 1, 0], [0, 0, 0], [0, 0, 1]], np.int64)  # gap = need (- shift)
_END_NOTE = np.array([[1, 1, 0], [-1, -1, 0], [0, 0, 1]], np.int64)  # need = gap = need - gap


class GrammarTables:
    """The grammar of one vocabulary as lookup tables (made once per tokenizer).

    ``masks[rows[kind, phase]]`` is the set of ids allowed after a token of ``kind`` in
    ``phase`` = ``(position + 1) * n_lengths + index of the bar length``: one row per kind,
    and for the kinds a POSITION may follow, one per phase, with the positions after
    ``position`` and below the bar length added. ``next_phase[phase, id]`` is the phase after
    ``id`` (a BAR resets the position, a POSITION sets it, a time signature sets the length).
    ``key_reach``, ``program_value``, ``order_map`` and ``order_shift`` serve
    :class:`_NoteOrder`.
    """

    def __init__(self, vocab: RemiVocab) -> None:
        self.vocab = vocab
        self.kind_of = vocab.kind_of
        V = len(vocab)
        kind_masks = np.zeros((START + 1, V), bool)
        for k, names in follows(vocab.config).items():
            kind_masks[k] = vocab.mask(*names)

        lo, n_pos = vocab.off[K_POS], vocab.size("position")
        self.bar_lengths = np.unique(vocab.bar_steps)
        n_len = self.n_lengths = len(self.bar_lengths)
        values = np.arange(n_pos)
        after_pos = values >= np.arange(n_pos + 1)[:, None, None]  # [position + 1, 1, value]
        in_bar = values < self.bar_lengths[None, :, None]  # [1, length, value]
        kinds = sorted(POSITION_AFTER)
        n_phase = (n_pos + 1) * n_len
        shape = (len(kinds), n_pos + 1, n_len, V)
        by_phase = np.broadcast_to(kind_masks[kinds][:, None, None, :], shape).copy()
        by_phase[..., lo : lo + n_pos] |= after_pos & in_bar
        self.masks = np.concatenate([kind_masks, by_phase.reshape(-1, V)])
        self.rows = np.repeat(np.arange(START + 1)[:, None], n_phase, axis=1)
        for i, k in enumerate(kinds):
            self.rows[k] = len(kind_masks) + i * n_phase + np.arange(n_phase)

        kind_of, value_of = vocab.kind_of, vocab.value_of
        pos1, length = np.divmod(np.arange(n_phase), n_len)
        sets_pos = (kind_of == K_BAR) | (kind_of == K_POS)
        pos1_of = np.where(kind_of == K_POS, value_of + 1, 0)
        new_pos1 = np.where(sets_pos, pos1_of, pos1[:, None])
        ts_length = np.searchsorted(self.bar_lengths, vocab.bar_steps)
        sets_len = kind_of == K_TS
        new_len = np.where(sets_len, ts_length[np.where(sets_len, value_of, 0)], length[:, None])
        self.next_phase = (new_pos1 * n_len + new_len).astype(np.int32)
        self.start_phase = self.phase(-1, int(vocab.bar_steps[vocab.default_signature]))
        self.finished = np.zeros(START + 1, bool)  # kinds after which only PAD may come
        self.finished[[K_EOS, K_PAD]] = True

        self._note_order_tables(vocab)

    def phase(self, position: int, bar_length: int) -> int:
        return (position + 1) * self.n_lengths + int(np.searchsorted(self.bar_lengths, bar_length))

    def _note_order_tables(self, vocab: RemiVocab) -> None:
        """``key_reach``, ``program_value``, ``order_map``, ``order_shift`` and ``ends_note``
        for :class:`_NoteOrder` (state columns: need, gap, prog). Keys count in units of
        ``unisons``: a note's key times ``unisons`` plus its copy number."""
        V, n_dur = len(vocab), vocab.max_steps
        n_vel = vocab.config.velocity_bins or 1  # without VELOCITY tokens every bin is 0
        u = self.unisons = vocab.config.unisons
        per_pitch = n_dur * n_vel  # keys of one pitch
        self.has_programs = vocab.config.programs
        self.key_reach = np.full(V, _ANY, np.int64)
        self.program_value = np.full(V, _ANY, np.int64)
        self.order_map = np.broadcast_to(_KEEP, (V, 3, 3)).copy()
        self.order_shift = np.zeros((V, 3), np.int64)
        self.ends_note = np.zeros(V, bool)
        for name, (lo, size) in vocab.blocks.items():
            kind, v, ids = KIND_OF_BLOCK[name], np.arange(size), slice(lo, lo + size)
            if kind in (K_BAR, K_POS):  # a new group of notes
                self.order_map[ids] = 0
            elif kind == K_PROG:  # a new group of notes; later programs must be higher
                self.order_map[ids] = 0
                self.program_value[ids] = v
                self.order_shift[ids, 2] = v + 1
            elif kind == K_PITCH:  # gap = need - the pitch's part of the key
                self.key_reach[ids] = u * (v * per_pitch + per_pitch - 1) + u - 1
                self.order_map[ids] = _START_NOTE
                self.order_shift[ids, 1] = -u * v * per_pitch
            elif kind == K_VEL:  # (comes before DURATION, but weighs less)
                self.key_reach[ids] = u * (v + (n_dur - 1) * n_vel) + u - 1
                self.order_shift[ids, 1] = -u * v
            elif kind == K_DUR:  # the note is done: need = its key + 1, and a new note
                self.key_reach[ids] = u * v * n_vel + u - 1
                self.order_map[ids] = _END_NOTE
                self.order_shift[ids, :2] = (u * v * n_vel + 1)[:, None]
                self.ends_note[ids] = True


class _NoteOrder:
    """The order of the notes at one position, as the encoder writes them: by program (each
    named once, rising), then pitch, duration and velocity bin, no note more than ``unisons``
    times; for ``n`` sequences at once.

    Without it a sampler can pile notes on one onset without end (a model in a loop wrote
    hundreds at one onset). Unisons are real (two voices of one instrument on one pitch), so a
    pitch may repeat: with a longer duration, or at the same duration a higher velocity bin,
    or as the same note again, up to ``unisons`` copies in all.

    Within a program, a note's *key* ``(pitch * n_dur + duration) * n_vel + velocity``, times
    ``unisons``, plus the note's copy number (0 for the first), must rise. A sequence's state
    is three ints: ``need``, the least key the next note may have (the last key + 1; 0 in a
    new group), ``gap``, what the tokens of the note being written have yet to add to reach
    ``need``, and ``prog``, the least program a PROGRAM may name. A token is allowed when its
    part of the key plus the most the note's later tokens (and the copy number) can add
    (``GrammarTables.key_reach``) makes up the gap, so no state is a dead end; each token
    moves the state by its affine map ``state @ order_map[id] + order_shift[id]``, and a
    DURATION, which ends a note, takes the copy number it needs: ``need`` becomes the
    larger of the note's key + 1 and the old ``need`` + 1.
    """

    def __init__(self, tables: GrammarTables, n: int) -> None:
        self.t = tables
        self.state = np.zeros((n, 3), np.int64)  # need, gap, prog

    def restrict(self, masks: np.ndarray) -> None:
        """Take out of ``masks`` ``[n, V]`` (in place) the ids that would break the order."""
        masks &= self.t.key_reach >= self.state[:, 1:2]
        if self.t.has_programs:
            masks &= self.t.program_value >= self.state[:, 2:]

    def allows(self, tokens: np.ndarray) -> np.ndarray:
        """Whether each sequence's token keeps the order (tokens of other kinds: yes)."""
        ok = self.t.key_reach[tokens] >= self.state[:, 1]
        if self.t.has_programs:
            ok &= self.t.program_value[tokens] >= self.state[:, 2]
        return ok

    def advance(self, tokens: np.ndarray) -> None:
        """Take one token per sequence."""
        moved = self.state[:, None, :] @ self.t.order_map[tokens]
        state = moved[:, 0] + self.t.order_shift[tokens]
        if self.t.unisons > 1:  # a copy of the last note: its copy number is the old need's
            ends = self.t.ends_note[tokens]
            need = np.maximum(state[ends, 0], self.state[ends, 0] + 1)
            state[ends, 0] = state[ends, 1] = need
        self.state = state

    def repeat(self, n: int) -> _NoteOrder:
        """The state of a batch of one for a batch of ``n``."""
        out = _NoteOrder(self.t, n)
        out.state[:] = self.state
        return out


class _Sequences:
    """The grammar state of ``n`` sequences: what both grammar classes step."""

    def __init__(self, tables: GrammarTables, n: int) -> None:
        self.t = tables
        self.kind = np.full(n, START, np.int64)
        self.phase = np.full(n, tables.start_phase, np.int64)
        self.rows = tables.rows[self.kind, self.phase]
        self.order = _NoteOrder(tables, n)

    def mask(self) -> np.ndarray:
        masks = self.t.masks[self.rows]  # a gather: a new array
        self.order.restrict(masks)
        return masks

    def refused(self, tokens: np.ndarray) -> int:
        """The first sequence whose token (an id in the vocabulary) is not allowed, or -1."""
        ok = self.t.masks[self.rows, tokens] & self.order.allows(tokens)
        if np.logical_and.reduce(ok):
            return -1
        return int(np.flatnonzero(~ok)[0])

    def advance(self, tokens: np.ndarray) -> None:
        """Take one allowed token per sequence."""
        t = self.t
        self.kind = t.kind_of[tokens]
        self.order.advance(tokens)
        self.phase = t.next_phase[self.phase, tokens]
        self.rows = t.rows[self.kind, self.phase]

    @property
    def done(self) -> np.ndarray:
        return self.t.finished[self.kind]

    def finish(self, rows: np.ndarray) -> None:
        self.kind[rows] = K_PAD
        self.rows = self.t.rows[self.kind, self.phase]

    def repeat(self, n: int) -> _Sequences:
        """The state of a batch of one for a batch of ``n``."""
        out = _Sequences(self.t, n)
        out.kind[:] = self.kind
        out.phase[:] = self.phase
        out.rows = self.t.rows[out.kind, out.phase]
        out.order = self.order.repeat(n)
        return out


def _step_one(seq: _Sequences, token: int) -> None:
    """Step a batch of one by ``token``, or raise ``ValueError`` if it is not allowed."""
    vocab, tokens = seq.t.vocab, np.array([token])
    inside = 0 <= token < len(vocab)
    if not inside or seq.refused(tokens) >= 0:
        label = vocab.token(token) if inside else str(token)
        raise ValueError(f"token {label} ({token}) is not allowed here")
    seq.advance(tokens)


class HasTables(Protocol):
    """What a grammar needs of its tokenizer (a :class:`RemiTokenizer`): the tables."""

    @property
    def grammar_tables(self) -> GrammarTables: ...


class RemiGrammar(Grammar):
    """Which ids may come next in one REMI sequence: a batch of one of the batch grammar."""

    def __init__(self, tokenizer: HasTables) -> None:
        self._seq = _Sequences(tokenizer.grammar_tables, 1)

    @property
    def done(self) -> bool:
        return bool(self._seq.done[0])

    def mask(self) -> np.ndarray:
        return self._seq.mask()[0]

    def step(self, token: int) -> None:
        _step_one(self._seq, token)


class RemiBatchGrammar(BatchGrammar):
    """:class:`RemiGrammar` for ``n`` sequences that all begin with ``prefix``.

    A finished sequence must be given PAD, the one id its mask allows.
    """

    def __init__(self, tokenizer: HasTables, n: int, prefix: Iterable[int] = ()) -> None:
        seq = _Sequences(tokenizer.grammar_tables, 1)
        for token in prefix:  # checked as one sequence
            _step_one(seq, int(token))
        self._seq = seq.repeat(n)

    def mask(self) -> np.ndarray:
        return self._seq.mask()

    def step(self, tokens: np.ndarray) -> None:
        vocab = self._seq.t.vocab
        if tokens.min() < 0 or tokens.max() >= len(vocab):
            raise ValueError(f"token ids must be in 0..{len(vocab) - 1}, got {tokens}")
        b = self._seq.refused(tokens)
        if b >= 0:
            token = int(tokens[b])
            label = vocab.token(token)
            raise ValueError(f"token {label} ({token}) is not allowed here (sequence {b})")
        self._seq.advance(tokens)

    @property
    def done(self) -> np.ndarray:
        return self._seq.done

    def finish(self, rows: np.ndarray) -> None:
        self._seq.finish(rows)


def describe_rules(vocab: RemiVocab) -> list[str]:
    """The grammar in words: what may follow each kind of token, and the two rules the
    table of kinds cannot hold (positions, and the order of a position's notes)."""
    name_of = {k: name for name, k in KIND_OF_BLOCK.items()} | {START: "(start)"}
    later = "position>"
    lines = [
        "grammar: what may follow each kind of token",
        "  (position> = a later position in the bar, below the bar's length)",
    ]
    for kind, names in follows(vocab.config).items():
        if kind != START and name_of[kind] not in vocab:
            continue
        after = [*names, later] if kind in POSITION_AFTER else list(names)
        lines.append(f"  {name_of[kind]:9s} -> {' | '.join(after)}")
    c = vocab.config
    order = "by (pitch, duration, velocity)" if c.velocity_bins else "by (pitch, duration)"
    unison = "a longer duration" + (
        ", or the same and a higher velocity" if c.velocity_bins else ""
    )
    copies = "no note twice" if c.unisons == 1 else f"a note at most {c.unisons} times"
    default = "/".join(map(str, vocab.signatures[vocab.default_signature]))
    lines += [
        "  a bar's length is its meter's: the time_sig after its bar token, else the last",
        f"    one before ({default} before the first); empty bars still get their bar token",
        *(
            ["  notes at one position: programs rising, each named once; within a program,"]
            if c.programs
            else ["  notes at one position:"]
        ),
        f"    {order}, {copies}",
        f"    (any other unison needs {unison})",
    ]
    return lines
