"""Endings that close: resample a piece's last bars until they end as its style ends.

A small model writes convincing bars but rarely plans the close: the shipped chorale model,
given the first bars of a held-out Bach chorale, completes the last two bars with an authentic
or plagal cadence about one time in five (Bach: three in four), although its loss on those bars
is no worse than elsewhere. The ending is one decision at one place, which sampling token by
token seldom hits.

So, for a model whose tokens count the bars down to the end (``BAR_n``, the bar-grid
tokenizers), a piece whose ending fails a check is given new last bars: ``tries`` samples of
the bars from ``BAR_k`` on, continuing the piece as written; the first that passes replaces
them (a draw from the model's own ending distribution given that it closes), else the piece is
kept as it was. Everything before the last ``k`` bars is untouched. A new cadence must close in
the key of the chorale as first written: a chorale's key is set by its harmony from the
start, and checked in the key it ends in, a minor chorale's new bars often passed by closing
in the relative major, which turned the piece major (the shipped chorale model's share of
minor chorales fell from 32% to 20% that way; Bach's, 39%). That is a harder target, so it
gets 32 draws. A tune's new last note is checked in the key the new tune reads in: in a
melody the last note is what names its mode (the finalis), and 16 draws suffice.

Checks (``ending``):

* ``cadence``: the piece ends on an authentic or plagal cadence in its key (chorales);
* ``tonic``: its last note is the tonic of its key (melodies);
* ``free``: no check (the model's own ending).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from musegen.errors import MusegenError
from musegen.tokenizers.base import Tokenizer

if TYPE_CHECKING:  # the sampler (and torch) load when endings are drawn, not for ENDINGS
    from musegen.sampling.generate import SamplingConfig

ENDINGS = ("cadence", "tonic", "free")
TRIES = {"cadence": 32, "tonic": 16}  # draws of new last bars at most (module docstring)
KEEPS_KEY = frozenset({"cadence"})  # endings whose new bars close in the written piece's key
DEFAULT_BARS = 2


def ending_check(name: str) -> Callable[..., bool] | None:
    """The test a piece's ending must pass, ``check(score, key=None)`` (None for ``free``;
    ``key``: the key to close in, ``(tonic, minor)``, default the score's estimated key)."""
    from musegen.metrics.quality import ends_on_cadence, ends_on_tonic

    checks: dict[str, Callable[..., bool] | None] = {
        "cadence": ends_on_cadence,
        "tonic": ends_on_tonic,
        "free": None,
    }
    if name not in checks:
        raise MusegenError(f"unknown ending {name!r}; choose from {', '.join(ENDINGS)}")
    return checks[name]


def last_bars_start(tokenizer: Tokenizer, ids: np.ndarray, bars: int) -> int | None:
    """Index of the ``BAR_bars`` token in ``ids`` (a countdown sequence), None if absent."""
    if "len" not in tokenizer.vocab.blocks or "bar" not in tokenizer.vocab.blocks:  # no countdown
        return None
    lo, _hi = tokenizer.vocab.span("bar")
    hits = np.flatnonzero(ids == lo + bars - 1)  # BAR_n has id lo + n - 1
    return int(hits[-1]) if len(hits) else None


def settle_endings(
    model: object,
    tokenizer: Tokenizer,
    seqs: list[np.ndarray],
    ending: str,
    sampling: SamplingConfig,
    tries: int | None = None,
    bars: int = DEFAULT_BARS,
    keep: int = 0,
) -> tuple[list[np.ndarray], dict[str, int]]:
    """``seqs`` with the last ``bars`` bars of each failing piece resampled (see the module
    docstring); the first ``keep`` ids (a primer) are never resampled; ``tries``: draws at
    most (default the ending's, :data:`TRIES`). Also counts:
    ``passed`` as written, ``settled`` by a new ending, ``kept`` failing after ``tries``
    samples, ``skipped`` (no countdown, or the last bars lie in the primer)."""
    from musegen.sampling.generate import generate
    from musegen.theory import estimate_key

    check = ending_check(ending)
    counts = {"passed": 0, "settled": 0, "kept": 0, "skipped": 0}
    if check is None:
        return seqs, counts
    tries = TRIES[ending] if tries is None else tries
    if tries < 1 or bars < 1:
        raise MusegenError("ending tries and bars must be >= 1")
    out = []
    for i, seq in enumerate(seqs):
        at = last_bars_start(tokenizer, seq, bars)
        if at is None or at < keep:
            counts["skipped"] += 1
            out.append(seq)
            continue
        written = tokenizer.decode(seq)
        if check(written):
            counts["passed"] += 1
            out.append(seq)
            continue
        key = estimate_key(written) if ending in KEEPS_KEY else None
        chosen = None
        for k in range(tries):  # one at a time: most pieces close within a few draws
            seed = int(np.random.SeedSequence([sampling.seed, 2, i, k]).generate_state(1)[0])
            cfg = replace(sampling, seed=seed)
            cfg.max_new_tokens = max(sampling.max_new_tokens, 2 * (len(seq) - at))
            (candidate,) = generate(model, tokenizer, num=1, primer=seq[: at + 1], config=cfg)
            if check(tokenizer.decode(candidate), key):
                chosen = candidate
                break
        counts["settled" if chosen is not None else "kept"] += 1
        out.append(chosen if chosen is not None else seq)
    return out, counts
