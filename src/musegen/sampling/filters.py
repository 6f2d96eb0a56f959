"""Logit filters as small composable functions, and the sampler they feed.

A filter takes the next-token logits ``[B, V]`` (float numpy) and the ids so far ``[B, T]``
and returns new logits; ``-inf`` removes a token. :func:`build_filters` turns sampling options
into a list applied in order by :func:`apply_filters`; :func:`sample` draws one token per row
from ``softmax(logits)``.

Everything is numpy on purpose: the generator runs these once per token on a handful of rows
of a few hundred logits, where a numpy call costs a fraction of a PyTorch one.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial

import numpy as np

Filter = Callable[[np.ndarray, np.ndarray], np.ndarray]


def temperature(logits: np.ndarray, ids: np.ndarray, t: float) -> np.ndarray:
    """Sharpen (t < 1) or flatten (t > 1) the distribution."""
    return logits * np.float32(1.0 / t)


def top_k(logits: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Keep the k most likely tokens (and any tied with the k-th)."""
    k = min(k, logits.shape[-1])
    kth = -np.partition(-logits, k - 1, axis=-1)[:, k - 1 : k]
    return np.where(logits < kth, np.float32(-np.inf), logits)


def top_p(logits: np.ndarray, ids: np.ndarray, p: float) -> np.ndarray:
    """Nucleus sampling: keep the smallest set of tokens whose probability reaches p.

    (Tokens tied with the last one kept are kept too.)
    """
    ranked = np.sort(logits, axis=-1)  # ascending: the best token last
    probs = np.exp(ranked - ranked[:, -1:])  # unnormalised: compared with the total below
    upto = np.cumsum(probs, axis=-1)  # the mass ranked above a token is total - upto
    first_kept = (upto <= (1.0 - p) * upto[:, -1:]).sum(axis=-1)  # the best always stays
    kth = ranked[np.arange(len(ranked)), first_kept]
    return np.where(logits < kth[:, None], np.float32(-np.inf), logits)


def top_p_within(logits: np.ndarray, ids: np.ndarray, p: float, lo: int, hi: int) -> np.ndarray:
    """Nucleus sampling among the ids ``lo:hi`` only (e.g. the pitches), keeping their total
    probability: the unlikely members of the block are dropped and the rest share the block's
    mass, so *which* pitch is thinned while *whether* a pitch comes (against holding, resting,
    a bar line) keeps the model's odds. Rows whose block is all ``-inf`` are left alone."""
    block = logits[:, lo:hi]
    live = np.isfinite(block).any(axis=-1)
    if not live.any():
        return logits
    rows = block[live]
    kept = top_p(rows, ids, p)
    top = rows.max(axis=-1, keepdims=True)
    mass = np.exp(rows - top).sum(axis=-1, keepdims=True)
    kept_mass = np.exp(kept - top).sum(axis=-1, keepdims=True)
    out = logits.copy()
    out[np.flatnonzero(live), lo:hi] = kept + np.log(mass / kept_mass).astype(logits.dtype)
    return out


def repetition_penalty(
    logits: np.ndarray, ids: np.ndarray, penalty: float, window: int = 64
) -> np.ndarray:
    """Make tokens seen in the last ``window`` ids less likely (CTRL-style: divide positive
    logits by ``penalty``, multiply negative ones)."""
    if ids.size == 0:
        return logits
    recent = ids[:, -window:]
    seen = np.take_along_axis(logits, recent, axis=-1)
    seen = np.where(seen > 0, seen / penalty, seen * penalty).astype(logits.dtype)
    out = logits.copy()
    np.put_along_axis(out, recent, seen, axis=-1)
    return out


KEY_MIN_NOTES = 8  # pitch tokens a sequence writes before :func:`key_bias` reads its key


@cache
def _in_key() -> np.ndarray:
    """``[24, 12]`` bool, rows in :data:`musegen.theory.KEYS` order: the pitch classes of
    each key (a minor key: natural minor with the raised 6th and 7th of melodic/harmonic
    minor, nine classes)."""
    from musegen.theory import HARMONIC_MINOR_SCALE, KEYS, MAJOR_SCALE, NATURAL_MINOR_SCALE

    degrees = np.zeros((2, 12), dtype=bool)  # above the tonic: major, minor
    degrees[0, list(MAJOR_SCALE)] = True
    degrees[1, list(set(NATURAL_MINOR_SCALE) | set(HARMONIC_MINOR_SCALE) | {9})] = True
    table = np.stack([np.roll(degrees[int(minor)], tonic) for tonic, minor in KEYS])
    table.flags.writeable = False
    return table


def key_bias(
    logits: np.ndarray,
    ids: np.ndarray,
    strength: float,
    lo: int,
    hi: int,
    base: int = 0,
    min_notes: int = KEY_MIN_NOTES,
) -> np.ndarray:
    """Take ``strength`` nats from the pitches outside the key each sequence has set so far.

    The pitch tokens are the ids ``lo:hi`` (id ``lo`` is MIDI pitch ``base``). A row's key is
    the Krumhansl-Schmuckler key of the pitch classes its pitch tokens have struck so far
    (:func:`musegen.theory.key_correlations`; pitch classes counted by onsets), read once it has
    struck ``min_notes``; before that the row is left alone. Out of key means outside the major
    scale, or for a minor key outside natural minor with the raised 6th and 7th. A soft prior,
    not a rule: a chromatic note the model is sure of still comes, and a modulation is only
    slowed (the key follows the notes written)."""
    from musegen.theory import key_correlations

    b = len(ids)
    pitched = (ids >= lo) & (ids < hi)
    row, col = np.nonzero(pitched)
    pcs = (ids[row, col] - lo + base) % 12
    counts = np.bincount(row * 12 + pcs, minlength=b * 12).reshape(b, 12).astype(np.float64)
    ready = np.flatnonzero(counts.sum(axis=1) >= min_notes)
    if not len(ready):
        return logits
    best = np.argmax(key_correlations(counts[ready]), axis=1)
    block_pcs = (np.arange(lo, hi) - lo + base) % 12  # pitch class of each pitch id
    outside = ~_in_key()[best][:, block_pcs]
    out = logits.copy()
    out[ready, lo:hi] -= np.float32(strength) * outside
    return out


def hold_meter(logits: np.ndarray, ids: np.ndarray, meter: int, lo: int, hi: int) -> np.ndarray:
    """Keep every sequence in one meter, for tokenizers that write a time signature after a
    bar line (REMI): the time-signature ids are ``lo:hi``, the one to keep ``meter``. A row
    that has written no time signature yet must write ``meter`` where it may come (the other
    tokens are taken out there); after it no time signature comes again."""
    out = logits.copy()
    written = ((ids >= lo) & (ids < hi)).any(axis=1)
    keep = np.where(written, np.float32(-np.inf), out[:, meter])
    out[:, lo:hi] = -np.inf
    due = np.isfinite(keep)
    out[due] = -np.inf
    out[:, meter] = keep
    return out


def build_filters(
    temperature_: float = 1.0,
    top_k_: int = 0,
    top_p_: float = 1.0,
    repetition_penalty_: float = 1.0,
    pitch_top_p_: float = 1.0,
    pitch_ids: tuple[int, int] | None = None,
    key_bias_: float = 0.0,
    pitch_base: int = 0,
) -> list[Filter]:
    """Filters for the usual options; values that change nothing add no filter.

    ``pitch_top_p_`` is a nucleus among the ids ``pitch_ids`` (the tokenizer's pitch block)
    that keeps their total mass (:func:`top_p_within`); without ``pitch_ids`` it does nothing.
    ``key_bias_`` takes that many nats from the pitches out of each sequence's key so far
    (:func:`key_bias`; id ``pitch_ids[0]`` is MIDI pitch ``pitch_base``); it comes first, so
    the temperature scales it with the model's own logits."""
    from musegen.errors import MusegenError

    if temperature_ <= 0:
        raise MusegenError(f"temperature must be > 0, got {temperature_}")
    if not 0 < top_p_ <= 1:
        raise MusegenError(f"top-p must be in (0, 1], got {top_p_}")
    if top_k_ < 0:
        raise MusegenError(f"top-k must be >= 0, got {top_k_}")
    if not 0 < pitch_top_p_ <= 1:
        raise MusegenError(f"pitch top-p must be in (0, 1], got {pitch_top_p_}")
    if repetition_penalty_ < 1:
        raise MusegenError(f"repetition penalty must be >= 1, got {repetition_penalty_}")
    if not 0 <= key_bias_ <= 100:
        raise MusegenError(f"key bias must be 0..100 nats, got {key_bias_}")
    out: list[Filter] = []
    if key_bias_:
        if pitch_ids is None:
            raise MusegenError("--key-bias needs a model whose tokens carry pitches")
        lo, hi = pitch_ids
        out.append(partial(key_bias, strength=key_bias_, lo=lo, hi=hi, base=pitch_base))
    if repetition_penalty_ != 1.0:
        out.append(partial(repetition_penalty, penalty=repetition_penalty_))
    if temperature_ != 1.0:
        out.append(partial(temperature, t=temperature_))
    if top_k_:
        out.append(partial(top_k, k=top_k_))
    if top_p_ < 1.0:
        out.append(partial(top_p, p=top_p_))
    if pitch_top_p_ < 1.0 and pitch_ids is not None:
        out.append(partial(top_p_within, p=pitch_top_p_, lo=pitch_ids[0], hi=pitch_ids[1]))
    return out


def apply_filters(logits: np.ndarray, ids: np.ndarray, filters: list[Filter]) -> np.ndarray:
    for f in filters:
        logits = f(logits, ids)
    return logits


def sample(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One token per row from ``softmax(logits)`` (``-inf`` never drawn; each row needs a
    finite logit).

    The exponential race: ``argmax(logits - log E)`` with ``E ~ Exp(1)`` i.i.d. picks token
    ``i`` with probability ``softmax(logits)_i`` (the Gumbel-max trick), with no softmax,
    normalisation or search.
    """
    race = rng.standard_exponential(logits.shape, dtype=np.float32)
    race += np.float32(1e-30)  # E == 0 would make -inf - log E a NaN
    np.log(race, out=race)
    np.subtract(logits, race, out=race)
    return np.argmax(race, axis=-1)
