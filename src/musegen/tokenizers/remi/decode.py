"""REMI decoding: token ids to the canonical form, and the canonical form to a score.

Decoding is tolerant, so that any id sequence gives a score: PAD and BOS are skipped, EOS ends
the sequence, and tokens out of grammar are ignored (a note needs a placed POSITION, and a
PROGRAM there when there are program tokens). All of it is vectorised: each token's bar,
time and program come from forward fills over the sequence, not from a state machine.
"""

from __future__ import annotations

import numpy as np

from musegen.score import NOTE_DTYPE, Score, Tempo, TimeSignature, Track
from musegen.tokenizers.base import BOS, EOS, PAD
from musegen.tokenizers.remi.arrays import forward_fill_index, last_of_runs
from musegen.tokenizers.remi.encode import Canonical
from musegen.tokenizers.remi.vocab import (
    DRUMS,
    K_BAR,
    K_DUR,
    K_PITCH,
    K_POS,
    K_PROG,
    K_TEMPO,
    K_TS,
    K_VEL,
    TPQ,
    RemiVocab,
)


def kinds(vocab: RemiVocab, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kind and value of each token up to EOS, without PAD/BOS (``ids``: checked, 1-d)."""
    stop = np.flatnonzero(ids == EOS)
    if len(stop):
        ids = ids[: stop[0]]
    ids = ids[(ids != PAD) & (ids != BOS)]
    return vocab.kind_of[ids], vocab.value_of[ids]


def bars(
    vocab: RemiVocab, kind: np.ndarray, value: np.ndarray, prev: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bar index of each token, the meter each bar sets (-1: none), bar lengths and bar
    starts in steps. A TIME_SIG right after BAR sets that bar's meter, which holds until
    the next one."""
    is_bar = kind == K_BAR
    n_bars = int(is_bar.sum())
    bar_of = np.cumsum(is_bar) - 1  # bar index of each token (-1 before the first BAR)
    ts_tok = np.flatnonzero((kind == K_TS) & (prev == K_BAR))
    set_sig = np.full(n_bars, -1, np.int64)
    set_sig[bar_of[ts_tok]] = value[ts_tok]
    if set_sig[0] < 0:
        set_sig[0] = vocab.default_signature
    bar_sig = set_sig[forward_fill_index(set_sig >= 0)]
    bar_len = vocab.bar_steps[bar_sig]
    return bar_of, set_sig, bar_len, np.cumsum(bar_len) - bar_len


def time_reached(vocab: RemiVocab, ids: np.ndarray) -> int:
    """The start tick of the last bar begun: every later note starts at or after it."""
    kind, value = kinds(vocab, ids)
    if not (kind == K_BAR).any():
        return 0
    prev = np.concatenate([[-1], kind[:-1]])
    bar_start = bars(vocab, kind, value, prev)[3]
    return int(bar_start[-1]) * vocab.step_ticks


def decode(vocab: RemiVocab, ids: np.ndarray) -> Score:
    """A score from checked ids (see the module docstring)."""
    kind, value = kinds(vocab, ids)
    is_bar = kind == K_BAR
    n_bars = int(is_bar.sum())
    if n_bars == 0:
        return Score(tpq=TPQ)
    prev = np.concatenate([[-1], kind[:-1]])
    bar_of, set_sig, bar_len, bar_start = bars(vocab, kind, value, prev)
    ts_bars = np.flatnonzero(set_sig >= 0)

    # time of each token: its bar's start + the last POSITION since that BAR (-1: none/bad)
    bar = np.maximum(bar_of, 0)
    last_bar = forward_fill_index(is_bar)
    last_pos = forward_fill_index(kind == K_POS)
    pos = value[np.maximum(last_pos, 0)]
    placed = (last_pos > last_bar) & (last_bar >= 0) & (pos < bar_len[bar])
    when = np.where(placed, bar_start[bar] + pos, -1)

    # notes: PITCH [VELOCITY] DURATION at a placed position (after a PROGRAM there)
    c = vocab.config
    has_vel = int(bool(c.velocity_bins))
    n_cand = max(len(kind) - 1 - has_vel, 0)
    cand = (kind[:n_cand] == K_PITCH) & (kind[1 + has_vel :] == K_DUR) & (when[:n_cand] >= 0)
    if has_vel:
        cand &= kind[1 : 1 + n_cand] == K_VEL
    if c.programs:
        last_prog = forward_fill_index(kind == K_PROG)
        cand &= last_prog[:n_cand] > last_pos[:n_cand]
    at = np.flatnonzero(cand)
    program = value[last_prog[at]] if c.programs else np.zeros(len(at), np.int64)

    # tempos: TEMPO right after a placed POSITION; the later of two at one time wins
    tempo_tok = np.flatnonzero((kind == K_TEMPO) & (prev == K_POS) & (when >= 0))
    order = np.argsort(when[tempo_tok], kind="stable")
    tempo_steps, tempo_index = when[tempo_tok][order], value[tempo_tok][order]
    last = last_of_runs(tempo_steps)

    return to_score(
        vocab,
        Canonical(
            onset=when[at],
            duration=value[at + 1 + has_vel] + 1,
            pitch=value[at] + vocab.pitch_lo,
            velocity=value[at + 1] if has_vel else np.zeros(len(at), np.int64),
            program=program,
            ts_steps=bar_start[ts_bars],
            ts_index=set_sig[ts_bars],  # = the forward-filled meter there
            tempo_steps=tempo_steps[last],
            tempo_index=tempo_index[last],
        ),
    )


def to_score(vocab: RemiVocab, c: Canonical) -> Score:
    """A 480-tpq score from canonical columns; tracks ordered by program, drums last."""
    order = np.lexsort((c.velocity, c.duration, c.pitch, c.onset, c.program))
    notes = np.empty(len(order), NOTE_DTYPE)
    notes["start"] = c.onset[order] * vocab.step_ticks
    notes["duration"] = c.duration[order] * vocab.step_ticks
    notes["pitch"] = c.pitch[order]
    notes["velocity"] = vocab.velocities[c.velocity[order]]
    program = c.program[order]
    cuts = np.flatnonzero(program[1:] != program[:-1]) + 1
    tracks = []
    for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(order)], strict=True):
        if hi > lo:
            p = int(program[lo])
            drum = p == DRUMS
            name = "Drums" if drum else ""
            tracks.append(Track(notes[lo:hi].copy(), 0 if drum else p, drum, name))
    return Score(
        tpq=TPQ,
        tracks=tracks,
        tempos=[
            Tempo(s * vocab.step_ticks, float(vocab.tempos[i]))
            for s, i in zip(c.tempo_steps.tolist(), c.tempo_index.tolist(), strict=True)
        ],
        time_signatures=[
            TimeSignature(s * vocab.step_ticks, *vocab.signatures[i])
            for s, i in zip(c.ts_steps.tolist(), c.ts_index.tolist(), strict=True)
        ],
    )
