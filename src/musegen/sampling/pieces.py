"""From a model to finished pieces: primers, length in bars/seconds/tokens, musical controls.

What ``musegen generate`` does, as a function: build the primer (a user's file, or an empty
score carrying the requested tempo and time signature), sample continuations with the
grammar-masked generator, decode, cut to the requested length, then apply what the
tokenizer cannot express (key by transposition, instrument by program).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from musegen.errors import MusegenError
from musegen.sampling.filters import Filter, hold_meter
from musegen.sampling.generate import SamplingConfig, generate
from musegen.score import Score, Tempo, TimeSignature
from musegen.tokenizers.base import BOS, Tokenizer

DEFAULT_MODE_TRIES = 8


@dataclass
class PieceRequest:
    bars: int | None = 8
    seconds: float | None = None
    primer: Score | None = None
    primer_bars: int | None = None  # keep only this many bars of the primer
    tempo: float | None = None
    time_signature: str | None = None  # "3/4"
    # when no time signature is asked for: each piece's meter is drawn with these weights
    # (a shipped model's training-split shares), else from the model's first token
    meters: dict[str, float] | None = None
    key: str | None = None  # "G major", "e minor"
    # "major" / "minor": a piece the key finder reads in the other mode is drawn again (a
    # tokenizer with modes also writes it); default: the key's mode, else drawn with
    # ``modes`` (a shipped model's training-split shares), else the model's own
    mode: str | None = None
    modes: dict[str, float] | None = None
    mode_tries: int = DEFAULT_MODE_TRIES  # pieces not in the asked mode are drawn again
    program: int | None = None
    max_tokens: int | None = None  # hard cap on new tokens (default: from the length)
    # "cadence" / "tonic": the last bars are drawn again until the piece closes so
    # (musegen.sampling.endings; bar-countdown tokenizers only); "free": as the model ends
    ending: str = "free"
    ending_tries: int | None = None  # None: the ending's own (musegen.sampling.endings)
    # voice label -> MIDI range: each new piece moves to the key whose ranges fit it best
    voice_ranges: dict[str, tuple[int, int]] | None = None
    voice_centres: dict[str, float] | None = None  # among keys that fit: nearest these means


def parse_time_signature(text: str) -> TimeSignature:
    try:
        num, den = (int(x) for x in text.split("/"))
    except ValueError as e:
        raise MusegenError(f"cannot read time signature {text!r}; write e.g. 3/4 or 6/8") from e
    if num < 1 or den not in (1, 2, 4, 8, 16, 32):
        raise MusegenError(f"time signature {text!r} is not valid")
    return TimeSignature(0, num, den)


def primer_score(req: PieceRequest) -> Score:
    """The score generation continues: the user's primer, or an empty one with the maps asked for."""
    if req.primer is not None:
        score = req.primer
        if req.primer_bars:
            score = score.slice_bars(0, req.primer_bars)
        if score.is_empty():
            raise MusegenError("the primer has no notes (in the bars asked for)")
    else:
        score = Score(tpq=480)
    if req.tempo is not None:
        if not 10 <= req.tempo <= 400:
            raise MusegenError(f"--tempo must be 10..400 quarter notes per minute, got {req.tempo}")
        score.tempos = [Tempo(0, float(req.tempo))]
    if req.time_signature:
        score.time_signatures = [parse_time_signature(req.time_signature)]
    return score


def _target_tick(score: Score, start_bars: int, req: PieceRequest) -> int | None:
    """The tick a piece ends at: ``req.seconds`` after the primer, else the bar line
    ``req.bars`` bars after it (bars in the score's meters; the last one goes on past its end)."""
    if req.seconds is not None:
        if req.seconds <= 0:
            raise MusegenError("--seconds must be positive")
        return int(score.seconds_to_ticks(score.duration_seconds() + req.seconds))
    if req.bars is not None:
        if req.bars < 1:
            raise MusegenError("--bars must be >= 1")
        return bar_line(score, start_bars + req.bars)
    return None


def bar_line(score: Score, bar: int) -> int:
    """The tick bar ``bar`` starts at (0: the first), counted in the score's meters, its last
    meter going on past its end (an empty score's: 4/4)."""
    meters = score.time_signatures or [TimeSignature(0)]
    longest = max(ts.bar_ticks(score.tpq) for ts in meters)
    return int(score.bar_starts(score.end + (bar + 1) * longest)[bar])


def _token_cap(score: Score, bars: int) -> int:
    """New tokens allowed for ``bars`` bars: 160 a bar of four quarters or less, more for
    longer bars (a 4/1 bar holds four of 4/4)."""
    meters = score.time_signatures or [TimeSignature(0)]
    quarters = max(ts.bar_ticks(score.tpq) for ts in meters) / score.tpq
    return max(256, math.ceil(bars * 160 * max(1.0, quarters / 4)))


def _has_pickup(score: Score) -> bool:
    """Whether the score opens with a pickup: its first note after the first bar's start (a
    tokenizer's view of a primer keeps no empty bar before the first note)."""
    starts = [int(t.notes["start"].min()) for t in score.tracks if len(t)]
    return bool(starts) and min(starts) > 0


def _new_bars(score: Score, start_bars: int, req: PieceRequest, target: int | None) -> int | None:
    """Bars to add after the primer's ``start_bars``: ``req.bars``, or for ``req.seconds``
    the bars that reach the ``target`` tick (the last one may be cut)."""
    if req.seconds is not None and target is not None:
        return max(len(score.bar_starts(target)) - start_bars, 1)
    return req.bars


def compose(
    model: object,
    tokenizer: Tokenizer,
    request: PieceRequest,
    sampling: SamplingConfig,
    num: int = 1,
    progress: bool = False,
) -> list[Score]:
    """``num`` pieces continuing ``request``'s primer, cut to its length, keyed and voiced.

    A tokenizer that carries the length (the bar-grid ones) starts each piece with its meter:
    when none is asked for, each piece's meter is drawn from what the model writes after BOS,
    as training pieces begin.
    """
    meters = _draw_meters(model, tokenizer, request, sampling, num)
    modes = _draw_modes(tokenizer, request, sampling, num)
    if meters is not None or modes is not None:
        heads = list(
            zip(
                meters or [request.time_signature] * num, modes or [request.mode] * num, strict=True
            )
        )
        pieces: list[Score | None] = [None] * num
        for k, (meter, mode) in enumerate(dict.fromkeys(heads)):  # in order of first appearance
            rows = [i for i, h in enumerate(heads) if h == (meter, mode)]
            out = compose(
                model,
                tokenizer,
                replace(request, time_signature=meter, mode=mode),
                replace(sampling, seed=sampling.seed + k),
                num=len(rows),
                progress=progress,
            )
            for i, piece in zip(rows, out, strict=True):
                pieces[i] = piece
        return [p for p in pieces if p is not None]
    minor = _asked_minor(request)
    pieces = _compose_once(model, tokenizer, request, sampling, num, progress, minor)
    if minor is None or request.primer is not None or not pieces:
        return pieces
    return _settle_modes(
        pieces,
        minor,
        lambda n, k: _compose_once(
            model,
            tokenizer,
            request,
            replace(sampling, seed=sampling.seed + 7919 * k),
            n,
            False,
            minor,
        ),
        request.mode_tries,
    )


def _settle_modes(
    pieces: list[Score],
    minor: bool,
    draw: Callable[[int, int], list[Score]],
    tries: int,
) -> list[Score]:
    """``pieces`` with each one the key finder does not read in the asked mode replaced by a
    new draw that it does (``draw(n, k)``: n new pieces, try ``k``), up to ``tries`` draws;
    a piece never matched is kept as it was."""
    from musegen.theory import estimate_key

    def fits(piece: Score) -> bool:
        key = estimate_key(piece)
        return key is not None and key.minor == minor

    out = list(pieces)
    wrong = [i for i, p in enumerate(out) if not fits(p)]
    for k in range(1, tries + 1):
        if not wrong:
            break
        fresh = [p for p in draw(len(wrong), k) if fits(p)]
        for i, piece in zip(wrong, fresh, strict=False):
            out[i] = piece
        wrong = wrong[len(fresh) :]
    if wrong:
        import logging

        logging.getLogger(__name__).warning(
            "warning: %d piece(s) are not in %s after %d draws; kept as drawn",
            len(wrong),
            "minor" if minor else "major",
            tries,
        )
    return out


def _compose_once(
    model: object,
    tokenizer: Tokenizer,
    request: PieceRequest,
    sampling: SamplingConfig,
    num: int,
    progress: bool,
    minor: bool | None,
) -> list[Score]:
    """:func:`compose`'s pieces of one meter, one draw each; ``minor``: the asked mode (a
    tokenizer with modes writes it after LEN)."""
    prime = primer_score(request)
    prime_q = tokenizer.prepare(prime)
    for attr in ("tempos", "time_signatures"):  # keep the maps even if the tokens cannot carry them
        if not getattr(prime_q, attr):
            setattr(prime_q, attr, list(getattr(prime, attr)))
    constraints = _meter_constraints(tokenizer, request)
    if (prime.is_empty() and not prime.tempos and not prime.time_signatures) or (
        constraints and prime.is_empty() and not (prime.tempos and "tempo" in tokenizer.vocab)
    ):
        # nothing asked for, or only a meter the constraint holds: start as the training data
        # does (a header the model writes, such as its instruments, comes before the meter)
        ids = np.array([BOS], dtype=np.int64)
    else:
        ids = tokenizer.encode(prime_q, eos=False)
    if ids.ndim != 1:
        raise MusegenError(
            f"the {tokenizer.name} tokenizer is a grid; generate with a sequence model"
        )
    _warn_unseen_meter(tokenizer, request)
    start_bars = prime_q.n_bars
    target = _target_tick(prime_q, start_bars, request)
    cut = target  # where the pieces end, if the grammar does not end them there
    new_bars = _new_bars(prime_q, start_bars, request, target)
    asked = None
    if new_bars is not None:  # a countdown counts the bars after a pickup, not the pickup's
        counted = start_bars - _has_pickup(prime_q) + new_bars
        asked = tokenizer.primer_for_length(prime_q, counted)
    if asked is not None and minor is not None and _has_modes(tokenizer) and prime.is_empty():
        # BOS TS LEN, then the asked MODE
        asked = np.append(asked, tokenizer.mode_id(minor))  # type: ignore[attr-defined]
    if asked is not None:  # the grammar ends the piece on the bar line asked for
        ids, target = asked, None
        if request.seconds is None:
            cut = None
    if request.max_tokens:
        sampling.max_new_tokens = request.max_tokens
    elif asked is not None and new_bars is not None:
        sampling.max_new_tokens = _token_cap(prime_q, new_bars)
    elif request.bars is not None:
        sampling.max_new_tokens = _token_cap(prime_q, request.bars)
    elif request.seconds is not None:
        sampling.max_new_tokens = max(256, int(request.seconds * 80))

    def reached(seq: np.ndarray) -> bool:
        if target is None:
            return False
        began = tokenizer.time_reached(seq)  # e.g. a bar begun past the end, even an empty one
        if began is not None and began >= target:
            return True
        s = tokenizer.decode(seq)
        return max((int(t.notes["start"].max()) for t in s.tracks if len(t)), default=-1) >= target

    seqs = generate(  # a length to cut at is reached: the model may not end early
        model,
        tokenizer,
        num=num,
        primer=ids,
        config=sampling,
        stop=reached,
        progress=progress,
        hold_eos=cut is not None,
        constraints=constraints,
    )
    if request.ending != "free" and cut is None:
        from musegen.sampling.endings import settle_endings

        seqs, _ = settle_endings(
            model, tokenizer, seqs, request.ending, sampling, request.ending_tries, keep=len(ids)
        )
    pieces = []
    for seq in seqs:
        score = tokenizer.decode(seq)
        if cut is not None:
            score = score.slice_ticks(0, cut)
        if request.voice_ranges and prime.is_empty():
            from musegen.sampling.register import fit_ranges

            score = fit_ranges(score, request.voice_ranges, centres=request.voice_centres)
        pieces.append(finish_piece(score, request, prime_q))
    return pieces


def _meter_constraints(tokenizer: Tokenizer, request: PieceRequest) -> list[Filter]:
    """For a tokenizer that writes a time signature after bar lines (REMI) and a request that
    names one: a filter that keeps the new bars in it (:func:`~musegen.sampling.filters.hold_meter`);
    else none (a bar-grid tokenizer's meter is its first token, fixed by the primer)."""
    if not request.time_signature or "time_sig" not in tokenizer.vocab:
        return []
    ts = parse_time_signature(request.time_signature)
    known = list(getattr(tokenizer.config, "time_signatures", ()))
    label = f"{ts.numerator}/{ts.denominator}"
    if label not in known:
        return []  # the encoder says it cannot write it
    lo, hi = tokenizer.vocab.span("time_sig")
    return [partial(hold_meter, meter=lo + known.index(label), lo=lo, hi=hi)]


def _draw_meters(
    model: object, tokenizer: Tokenizer, request: PieceRequest, sampling: SamplingConfig, num: int
) -> list[str] | None:
    """Each piece's time signature, for a tokenizer that carries a length and a request that
    names no meter (else None): drawn with ``request.meters`` when given, else from the
    model's first token (``TS_*`` after BOS). A small model learns that first token poorly (it
    comes without context), so shipped models carry their training split's meter shares."""
    if (
        (request.bars is None and request.seconds is None)
        or request.primer is not None
        or request.time_signature
        or "ts" not in tokenizer.vocab
        or tokenizer.primer_for_length(Score(tpq=480), 1) is None
    ):
        return None

    labels = list(tokenizer.config.time_signatures)  # type: ignore[attr-defined]
    rng = np.random.default_rng([sampling.seed, 1])
    if request.meters:
        unknown = sorted(set(request.meters) - set(labels))
        if unknown:
            raise MusegenError(f"meters {unknown} are not in the {tokenizer.name} tokenizer")
        return _draw_shares(request.meters, labels, num, rng, "meter")
    probs = _first_meter_probs(model, tokenizer, sampling)
    return [labels[i] for i in rng.choice(len(labels), size=num, p=probs)]


def _has_modes(tokenizer: Tokenizer) -> bool:
    return "mode" in tokenizer.vocab.blocks


def _asked_minor(request: PieceRequest) -> bool | None:
    """Whether the piece is asked for in minor (None: no mode asked): ``request.mode``,
    else the mode of ``request.key``."""
    if request.mode:
        if request.mode not in ("major", "minor"):
            raise MusegenError(f"--mode is major or minor, got {request.mode!r}")
        return request.mode == "minor"
    if request.key:
        from musegen.theory import parse_key

        return bool(parse_key(request.key)[1])
    return None


def _draw_modes(
    tokenizer: Tokenizer, request: PieceRequest, sampling: SamplingConfig, num: int
) -> list[str] | None:
    """Each new piece's mode, drawn with ``request.modes`` (a shipped model's training-split
    shares) when no mode or key is asked for and nothing is continued (else None: the asked
    mode, the primer's, or the model's own choice)."""
    if (
        not request.modes
        or request.primer is not None
        or request.mode
        or request.key
        or (request.bars is None and request.seconds is None)
    ):
        return None
    rng = np.random.default_rng([sampling.seed, 2])
    return _draw_shares(request.modes, ["major", "minor"], num, rng, "mode")


def _draw_shares(
    shares: dict[str, float], labels: list[str], num: int, rng: np.random.Generator, what: str
) -> list[str]:
    """``num`` labels drawn with ``shares`` (label -> weight; a label left out weighs 0)."""
    weights = np.array([float(shares.get(m, 0.0)) for m in labels])
    if (weights < 0).any() or weights.sum() <= 0:
        raise MusegenError(f"{what} shares must be >= 0 and not all 0")
    return [labels[i] for i in rng.choice(len(labels), size=num, p=weights / weights.sum())]


def _warn_unseen_meter(tokenizer: Tokenizer, request: PieceRequest) -> None:
    """Say so when a model is asked for a meter none of its training pieces had (its meter
    shares lack it): the countdown still gives the bars asked for, but such a model tends to
    fill them with rests or long holds, so the music may end early."""
    meter = request.time_signature
    if not (meter and request.meters) or meter in request.meters:
        return
    if meter not in getattr(tokenizer.config, "time_signatures", ()):
        return  # the tokenizer cannot write it: the encoder says so
    import logging

    known = ", ".join(m for m, share in request.meters.items() if share > 0)
    logging.getLogger(__name__).warning(
        "warning: this model's training pieces had no %s (they had %s): expect weak music, or bars of "
        "rests at the end",
        meter,
        known,
    )


def _first_meter_probs(model: object, tokenizer: Tokenizer, sampling: SamplingConfig) -> np.ndarray:
    """The model's distribution over ``TS_*`` right after BOS (at the sampling temperature)."""
    import torch

    from musegen.models.base import last_logits

    lo, hi = tokenizer.vocab.span("ts")
    device = next(model.parameters()).device  # type: ignore[attr-defined]
    model.eval()  # type: ignore[attr-defined]
    with torch.no_grad():
        logits, _ = model(torch.tensor([[BOS]], device=device))  # type: ignore[operator]
    z = last_logits(logits)[0, lo:hi].astype(np.float64) / max(sampling.temperature, 1e-6)
    p = np.exp(z - z.max())
    return p / p.sum()


def finish_piece(score: Score, req: PieceRequest, prime: Score) -> Score:
    """Apply the controls the tokenizer cannot express: the primer's tempo and meter where
    the piece has none, key and instrument (for every generator that writes new pieces)."""
    for attr in ("tempos", "time_signatures"):
        if not getattr(score, attr) and getattr(prime, attr):
            setattr(score, attr, list(getattr(prime, attr)))
    if req.key:
        from musegen.theory import estimate_key, key_signature, parse_key

        tonic, minor = parse_key(req.key)
        found = estimate_key(score)
        if found is not None:
            # compare within the same mode: move the relative tonic if the mode differs
            here = found.tonic if found.minor == minor else (found.tonic + (9 if minor else 3)) % 12
            shift = (tonic - here + 6) % 12 - 6
            score = score.transpose(shift, drop_out_of_range=True)
        score.key_signatures = [key_signature((tonic, minor), max_sharps=5)]
    if req.program is not None:
        if not 0 <= req.program <= 127:
            raise MusegenError(f"--program must be 0..127, got {req.program}")
        for t in score.tracks:
            if not t.is_drum:
                t.program = req.program
    return score
