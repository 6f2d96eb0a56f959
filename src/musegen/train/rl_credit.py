"""Per-note credit for ``musegen train rl --credit note`` (RL Tuner's per-note rewards).

With ``--credit piece`` every token of a piece shares the piece's one reward. With
``--credit note`` each note is rewarded by the rules evaluated on the partial piece when the
note is written (:func:`musegen.metrics.rewards.note_rewards`), the reward goes to the token
that writes the note, and each token is pushed by its discounted return-to-go
``G_t = sum_{u >= t} gamma^(u-t) (r_u - kl * log(policy(x_u) / anchor(x_u)))``, a short
horizon as RL Tuner's Q-learning (gamma 0.5) has, less a leave-one-out baseline: the mean
return of the batch's other pieces at the same token position.

A reward that has no per-note form (``module:function``) is credited by differences on the
partial pieces: note ``k`` gets ``f(first k+1 notes) - f(first k notes)``, each prefix being
the decoded tokens up to the note's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from musegen.errors import MusegenError
from musegen.metrics.rewards import (
    MAX_REPEATS,
    NOTE_WEIGHTS,
    Line,
    Reward,
    next_note_rewards,
    note_rewards,
    prefix,
    top_line,
)
from musegen.score import Score
from musegen.tokenizers.base import Tokenizer


def note_tokens(tokenizer: Tokenizer, seq: np.ndarray, start: int, n_notes: int) -> np.ndarray:
    """The index in ``seq`` of the token that writes each of the top line's ``n_notes`` notes
    (tokens before ``start`` are the primer): the pitch tokens where they are one a note
    (monophonic tokenizers), else found by decoding prefixes (the first prefix whose top line
    has ``k + 1`` notes)."""
    seq = np.asarray(seq)
    if "pitch" in tokenizer.vocab:
        pos = start + np.flatnonzero(tokenizer.vocab.is_in(seq[start:], "pitch"))
        if len(pos) == n_notes:
            return pos
    counts: dict[int, int] = {}

    def notes_upto(t: int) -> int:
        if t not in counts:
            counts[t] = len(top_line(tokenizer.decode(seq[: t + 1])))
        return counts[t]

    out = np.zeros(n_notes, dtype=np.int64)
    lo = start
    for k in range(n_notes):
        hi = len(seq) - 1
        while lo < hi:  # the first t with notes_upto(t) > k
            mid = (lo + hi) // 2
            if notes_upto(mid) > k:
                hi = mid
            else:
                lo = mid + 1
        out[k] = lo
    return out


def piece_note_rewards(
    rewards: Sequence[tuple[str, Reward]],
    tokenizer: Tokenizer,
    seq: np.ndarray,
    score: Score,
    weights: dict[str, dict[str, float]] | None = None,
    shaping: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(token index of each note, the note's summed reward) for one decoded piece
    (``weights``: the parts' weights of a built-in reward by its name, else
    :data:`NOTE_WEIGHTS`'; ``shaping``: motif shaping, see :func:`note_rewards`)."""
    line: Line = top_line(score)
    n = len(line)
    total = np.zeros(n)
    positions: np.ndarray | None = None
    for name, fn in rewards:
        if name in NOTE_WEIGHTS:
            total += note_rewards(
                line, (weights or NOTE_WEIGHTS).get(name, NOTE_WEIGHTS[name]), shaping
            )
            continue
        if positions is None:
            positions = note_tokens(tokenizer, seq, 0, n)
        values = [0.0] + [float(fn(tokenizer.decode(seq[: p + 1]))) for p in positions]
        total += np.diff(values)
    if positions is None:
        positions = note_tokens(tokenizer, seq, 0, n)
    return positions, total


def returns_to_go(rewards: torch.Tensor, valid: torch.Tensor, gamma: float) -> torch.Tensor:
    """``G_t = r_t + gamma G_{t+1}`` over each row's valid tokens ``[B, T]`` (0 after)."""
    out = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], dtype=rewards.dtype)
    for t in range(rewards.shape[1] - 1, -1, -1):
        running = torch.where(valid[:, t], rewards[:, t] + gamma * running, 0.0)
        out[:, t] = running
    return out


def leave_one_out(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Each entry's baseline ``[B, T]``: the mean of the other rows' valid entries at the same
    position; where no other row has one, the entry itself (advantage 0)."""
    v = torch.where(valid, values, 0.0)
    others = valid.sum(0, keepdim=True) - valid.long()
    mean = (v.sum(0, keepdim=True) - v) / others.clamp(min=1)
    return torch.where(others > 0, mean, values)


PITCHES = 128  # a tokenizer's "pitch" block: token offset + MIDI pitch


def _note_tokens(
    tokenizer: Tokenizer, seq: np.ndarray, notes: int, option: str, start: int | None = None
) -> np.ndarray:
    """Where ``seq`` writes its ``notes`` notes: one token of the 128-token ``pitch`` block
    each (after the primer's ``start`` tokens, when given), else a one-line error naming
    ``option``."""
    if "pitch" not in tokenizer.vocab or tokenizer.vocab.size("pitch") != PITCHES:
        raise MusegenError(f"{option} needs a tokenizer with pitch tokens, not {tokenizer.name}")
    pos = np.flatnonzero(tokenizer.vocab.is_in(seq, "pitch"))
    late = start is not None and len(pos) > 0 and pos[0] < start
    if len(pos) != notes or late:
        after = " after the primer" if start is not None else ""
        raise MusegenError(
            f"{option} needs one pitch token a note{after} ({tokenizer.name} wrote {len(pos)} "
            f"pitch tokens for {notes} notes)"
        )
    return pos


def candidate_rewards(
    tokenizer: Tokenizer,
    seq: np.ndarray,
    start: int,
    score: Score,
    weights: dict[str, float],
    shares: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``--candidates``: for each state after the primer (the token ``seq[t]`` being chosen,
    ``t >= start``), the immediate reward every pitch token would earn there
    ``[len(seq) - start, 128]`` (:func:`~musegen.metrics.rewards.next_note_rewards` of the
    note it would write after the notes already written), and the part of that reward the
    token drawn earned ``[len(seq) - start]``. Needs a tokenizer that writes each note of
    the top line as one token of its ``pitch`` block (the melody tokenizers). ``shares``:
    as :func:`~musegen.metrics.rewards.next_note_rewards`'."""
    line = top_line(score)
    seq = np.asarray(seq)
    pos = _note_tokens(tokenizer, seq, len(line), "--candidates", start)
    lo = tokenizer.vocab.offset("pitch")
    pitches = np.arange(PITCHES)
    per_note = np.stack(
        [
            next_note_rewards(prefix(line, k), pitches, weights, line, shares)
            for k in range(len(line) + 1)
        ]
    )
    states = np.arange(start, len(seq))
    table = per_note[np.searchsorted(pos, states, side="left")]
    drawn = np.zeros(len(states))
    is_note = np.isin(states, pos)
    drawn[is_note] = table[is_note, seq[states[is_note]] - lo]
    return table, drawn


# ----------------------------------------------------------------------------- note or not
def note_chance(logp: torch.Tensor, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
    """log P(a note) and log P(no note) ``[..., ]`` of distributions ``logp [..., vocab]``
    (log-probabilities, ``-inf`` where the grammar forbids): a note is a token of
    ``[lo, hi)`` (the pitch block); holding, resting and the rest are not. ``-inf`` where
    the grammar allows no such token."""
    inside = _logsumexp(logp[..., lo:hi])
    outside = _logsumexp(torch.cat([logp[..., :lo], logp[..., hi:]], dim=-1))
    return inside, outside


def _logsumexp(x: torch.Tensor) -> torch.Tensor:
    """``logsumexp`` over the last axis, ``-inf`` for a row of ``-inf`` with a zero (not NaN)
    gradient there."""
    empty = torch.isneginf(x).all(-1)
    out = torch.logsumexp(torch.where(empty[..., None], torch.zeros_like(x), x), dim=-1)
    return torch.where(empty, torch.full_like(out, float("-inf")), out)


def note_choice_kl(
    own: tuple[torch.Tensor, torch.Tensor], anchor: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """KL of the policy's choice between writing a note or not from the anchor's, per state
    (both as :func:`note_chance`'s pair of log-probabilities): ``p log(p/q) + (1-p)
    log((1-p)/(1-q))``, 0 where the grammar leaves no choice. ``--note-kl`` holds the note
    density of the original model with it, state by state."""
    total = torch.zeros_like(own[0])
    for lp, lq in zip(own, anchor, strict=True):
        allowed = torch.isfinite(lp) & torch.isfinite(lq)
        lp_safe = torch.where(allowed, lp, torch.zeros_like(lp))
        lq_safe = torch.where(allowed, lq, torch.zeros_like(lq))
        total = total + torch.where(allowed, lp_safe.exp() * (lp_safe - lq_safe), 0.0)
    return total


def expected_given_note(probs: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``--per-note-candidates``: each state's expected candidate reward ``[..., ]`` over the
    pitch *given that a note is written*, times the chance of a note held constant:
    ``P(note) * sum_a P(a | note) r(a)`` with ``P(note)`` detached. Its value is the plain
    ``sum_a P(a) r(a)``, but its gradient moves only which pitch is written, never whether
    a note is: holding or resting cannot dodge a rule (``probs [..., 128]``: the policy's
    probability of each pitch token, 0 where forbidden; ``table``: the rewards)."""
    onset = probs.sum(-1, keepdim=True)
    safe = torch.where(onset > 0, onset, torch.ones_like(onset))
    given = probs / safe
    return onset.detach().squeeze(-1) * (given * table).sum(-1)


# ----------------------------------------------------------------------------- rule targets
def tilted_target(anchor_logp: torch.Tensor, lo: int, table: torch.Tensor) -> torch.Tensor:
    """``--rule-tilt``: each state's target distribution ``[..., vocab]`` (log-probabilities):
    the anchor's, with its pitch tokens ``[lo, lo + 128)`` reweighted by ``exp(table)``
    (``table [..., 128]``: minus the tilt of each rule a pitch would break there, 0 for one
    that breaks none) and renormalised within the pitch block, so the chance of writing a
    note stays the anchor's and only which pitch moves. Where no pitch breaks a rule it is
    the anchor itself. This is the closed-form optimum of the KL-regularised objective for
    a reward paid at that state alone, ``argmax_p E_p[table] - KL(p || anchor)`` with the
    note's chance held: the target ``--rule-tilt`` fits with ``--target-kl``."""
    hi = lo + table.shape[-1]
    pitch = anchor_logp[..., lo:hi]
    tilted = pitch + table
    mass = _logsumexp(pitch)
    norm = _logsumexp(tilted)
    ok = torch.isfinite(mass) & torch.isfinite(norm)
    shift = torch.where(ok, mass - torch.where(ok, norm, torch.zeros_like(norm)), 0.0)
    return torch.cat([anchor_logp[..., :lo], tilted + shift[..., None], anchor_logp[..., hi:]], -1)


def forward_kl(
    target_logp: torch.Tensor, logp: torch.Tensor, allowed: torch.Tensor
) -> torch.Tensor:
    """``KL(target || policy)`` per state ``[..., ]`` over the ``allowed`` tokens (both as
    log-probabilities, ``-inf`` where forbidden; the target is a constant): its gradient on
    the policy's logits is ``policy - target``, bounded, however strongly the target is
    tilted (a large reward weight instead gives gradients as large as the weight)."""
    ok = allowed & torch.isfinite(target_logp)
    t = torch.where(ok, target_logp, 0.0).detach()
    own = torch.where(ok, logp, 0.0)
    return torch.where(ok, t.exp() * (t - own), 0.0).sum(-1)


# ----------------------------------------------------------------------------- repeat or not
def previous_pitches(
    tokenizer: Tokenizer, seq: np.ndarray, start: int, score: Score
) -> tuple[np.ndarray, np.ndarray]:
    """For each state after the primer ``[len(seq) - start]``: the MIDI pitch of the last note
    written before it (-1 before the first), and whether the repetition rule is at stake
    there (that note ends a run of :data:`~musegen.metrics.rewards.MAX_REPEATS` or more
    onsets on its pitch, so repeating it again is excessive). Needs one pitch token a note,
    as :func:`candidate_rewards`."""
    line = top_line(score)
    seq = np.asarray(seq)
    pos = _note_tokens(tokenizer, seq, len(line), "--repeat-kl")
    runs = np.ones(len(line), dtype=np.int64)  # onsets in the run that ends at each note
    for i in range(1, len(line)):
        if line.pitch[i] == line.pitch[i - 1]:
            runs[i] = runs[i - 1] + 1
    before = np.searchsorted(pos, np.arange(start, len(seq)), side="left")  # notes written
    has = before > 0
    last = np.maximum(before - 1, 0)
    previous = np.where(has, line.pitch[last] if len(line) else -1, -1)
    at_stake = has & ((runs[last] if len(line) else 0) >= MAX_REPEATS)
    return previous.astype(np.int64), at_stake


def repeat_choice(
    logp: torch.Tensor, lo: int, previous: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """log P(the note repeats the previous pitch | a note) and log P(another pitch | a note)
    per state ``[..., ]`` (``logp [..., vocab]`` with the pitch block at ``[lo, lo + 128)``;
    ``previous [..., ]``: the previous note's MIDI pitch, -1 for none: both ``-inf``
    there, as where the grammar allows no note)."""
    pitch = logp[..., lo : lo + PITCHES]
    note = _logsumexp(pitch)
    has = previous >= 0
    same = pitch.gather(-1, previous.clamp(min=0)[..., None]).squeeze(-1)
    ok = has & torch.isfinite(note)
    same = torch.where(ok, same - torch.where(ok, note, torch.zeros_like(note)), float("-inf"))
    # log(1 - P(same | note)), -inf where only the repeat is allowed
    rest = torch.where(
        ok & (same < 0), torch.log1p(-torch.where(same < 0, same, -1.0).exp()), float("-inf")
    )
    return same, rest
