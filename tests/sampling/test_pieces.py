"""compose(): pieces cut to the asked length, stopping once the length is reached."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musegen.errors import MusegenError
from musegen.models import build_model
from musegen.sampling.generate import SamplingConfig
from musegen.sampling.pieces import PieceRequest, compose
from musegen.score import Note, Score, Track
from musegen.tokenizers import BOS, EOS, get_tokenizer
from musegen.tokenizers.remi import K_BAR, TPQ


def bar_id(tok) -> int:  # type: ignore[no-untyped-def]
    return int(np.flatnonzero(tok.kind_of == K_BAR)[0])


def test_remi_time_reached_counts_empty_bars() -> None:
    tok = get_tokenizer("remi")
    score = Score(tracks=[Track.from_notes([Note(60, 0, 480, 80)])])
    ids = tok.encode(tok.prepare(score), eos=False)
    assert tok.time_reached(np.array([BOS])) == 0
    assert tok.time_reached(ids) == 0  # one bar begun, at tick 0
    # two more (empty) bars of 4/4: the third begins 8 quarters in
    more = np.concatenate([ids, [bar_id(tok)] * 2])
    assert tok.time_reached(more) == 8 * TPQ
    assert len(tok.decode(more).tracks[0]) == 1  # empty bars add no notes


def test_compose_stops_when_only_empty_bars_come() -> None:
    """A model that only ever wants BAR must stop at the asked bars, not run to the cap."""
    tok = get_tokenizer("remi")
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
    model.eval()
    bar, calls = bar_id(tok), []

    def prefer_bar(_module, _inputs, output):  # type: ignore[no-untyped-def]
        logits = output[0] if isinstance(output, tuple) else output
        logits[..., bar] += 1e3
        calls.append(1)
        return output

    model.register_forward_hook(prefer_bar)
    sampling = SamplingConfig(seed=0)
    (piece,) = compose(model, tok, PieceRequest(bars=4), sampling)
    assert piece.n_notes == 0
    # 4 bars are asked: the stop check (every 32 steps) must end it long before the cap
    assert len(calls) <= 65 < sampling.max_new_tokens


def test_compose_reaches_the_asked_bars_even_if_the_model_would_end() -> None:
    tok = get_tokenizer("remi")
    torch.manual_seed(0)
    model = build_model("lstm", vocab_size=len(tok), n_layer=1, d_hidden=32, d_embed=32)
    eos = torch.zeros(len(tok))
    eos[EOS] = 1e3
    model.register_forward_hook(lambda _m, _i, out: (out[0] + eos, *out[1:]))
    (piece,) = compose(model, tok, PieceRequest(bars=3), SamplingConfig(seed=1))
    bar_starts = piece.bar_starts(piece.end)
    assert piece.n_notes > 0 and piece.end > bar_starts[2]  # notes into the third bar


def test_compose_with_a_length_carrying_tokenizer_ends_on_the_bar_line() -> None:
    """The chorale tokenizer's grammar counts bars down to the end: every piece has exactly
    the bars asked for (after any pickup) and four voice tracks, with no stop check."""
    tok = get_tokenizer("chorale")
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
    pieces = compose(
        model, tok, PieceRequest(bars=2, time_signature="3/4"), SamplingConfig(seed=1), num=3
    )
    bar = 3 * 480
    for piece in pieces:
        assert [t.voice for t in piece.tracks] == ["S", "A", "T", "B"]
        assert piece.time_signatures[0].numerator == 3
        # a pickup is padded to a whole bar: 2 or 3 bars in all, never more
        assert 0 < piece.end <= 3 * bar


def test_compose_draws_each_pieces_meter_from_the_model_when_none_is_asked() -> None:
    tok = get_tokenizer("melody")
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
    lo, _ = tok.vocab.span("ts")
    favour = torch.zeros(len(tok))
    favour[lo + tok.config.time_signatures.index("3/4")] = 3.0  # about half of the draws
    favour[lo + tok.config.time_signatures.index("6/8")] = 3.0
    model.register_forward_hook(lambda _m, _i, out: (out[0] + favour, *out[1:]))
    request, sampling = PieceRequest(bars=1), SamplingConfig(seed=3)
    first = compose(model, tok, request, sampling, num=8)
    meters = [f"{p.time_signatures[0].numerator}/{p.time_signatures[0].denominator}" for p in first]
    assert len(set(meters)) > 1 and set(meters) <= set(tok.config.time_signatures)
    again = compose(model, tok, request, SamplingConfig(seed=3), num=8)
    assert [p.time_signatures[0] for p in again] == [p.time_signatures[0] for p in first]
    asked = compose(model, tok, PieceRequest(bars=1, time_signature="6/8"), sampling, num=3)
    assert all(p.time_signatures[0].numerator == 6 for p in asked)


def test_compose_draws_meters_with_the_shares_given() -> None:
    tok = get_tokenizer("melody")
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
    request = PieceRequest(bars=1, meters={"3/4": 0.5, "6/8": 0.5})
    pieces = compose(model, tok, request, SamplingConfig(seed=5), num=8)
    meters = {str(p.time_signatures[0]) for p in pieces}
    assert meters == {"3/4", "6/8"}  # both drawn (1 chance in 128 of one only), nothing else
    again = compose(model, tok, request, SamplingConfig(seed=5), num=8)
    assert [p.time_signatures for p in again] == [p.time_signatures for p in pieces]
    asked = compose(
        model,
        tok,
        PieceRequest(bars=1, time_signature="2/4", meters={"3/4": 1.0}),
        SamplingConfig(seed=5),
        num=2,
    )
    assert all(str(p.time_signatures[0]) == "2/4" for p in asked)  # asked for beats the shares
    with pytest.raises(MusegenError, match="not in the melody tokenizer"):
        compose(model, tok, PieceRequest(bars=1, meters={"7/16": 1.0}), SamplingConfig(), num=1)


def test_compose_writes_the_mode_asked_for_or_drawn() -> None:
    """A tokenizer with ``modes``: the asked mode (or the key's) follows LEN in every primer;
    with shares and nothing asked each piece's mode is drawn; else the model writes it."""
    tok = get_tokenizer("chorale", modes=True, max_bars=4)
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
    primers: list[list[int]] = []

    def record(_m, inputs, _out):  # type: ignore[no-untyped-def]
        ids = inputs[0]
        if ids.shape[1] >= 3 and int(ids[0, 0]) == BOS:  # a primer, not a cached step
            primers.extend(ids[:, :4].tolist())

    model.register_forward_hook(record)
    minor, major = tok.mode_id(True), tok.mode_id(False)

    def modes_written(request: PieceRequest, num: int = 2, seed: int = 1) -> set[int]:
        primers.clear()
        compose(model, tok, request, SamplingConfig(seed=seed), num=num)
        return {p[3] if len(p) > 3 else None for p in primers}

    assert modes_written(PieceRequest(bars=1, time_signature="4/4", mode="minor")) == {minor}
    assert modes_written(PieceRequest(bars=1, time_signature="4/4", key="e minor")) == {minor}
    assert modes_written(PieceRequest(bars=1, time_signature="4/4", key="G")) == {major}
    shares = PieceRequest(bars=1, time_signature="4/4", modes={"major": 0.5, "minor": 0.5})
    assert modes_written(shares, num=8) == {major, minor}  # 1 chance in 128 of one only
    assert modes_written(PieceRequest(bars=1, time_signature="4/4")) == {None}  # its own
    with pytest.raises(MusegenError, match="major or minor"):
        compose(model, tok, PieceRequest(bars=1, mode="dorian"), SamplingConfig(), num=1)


def test_pieces_not_in_the_asked_mode_are_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_settle_modes`` keeps what the key finder reads in the asked mode, replaces the rest
    with new draws that are, and keeps a piece it never matched."""
    import musegen.theory
    from musegen.sampling.pieces import _settle_modes
    from musegen.theory import Key

    def one(pitch: int) -> Score:  # pitch 57 stands for "a minor piece"
        return Score(tracks=[Track.from_notes([Note(pitch, 0, 480, 80)])])

    monkeypatch.setattr(
        musegen.theory, "estimate_key", lambda s: Key(0, int(s.tracks[0].notes["pitch"][0]) == 57)
    )
    draws: list[tuple[int, int]] = []

    def draw(n: int, k: int) -> list[Score]:
        draws.append((n, k))
        return [one(57 if (k + i) % 2 else 60) for i in range(n)]

    out = _settle_modes([one(57), one(60), one(60)], True, draw, tries=4)
    assert [int(p.tracks[0].notes["pitch"][0]) for p in out] == [57, 57, 57]
    assert draws == [(2, 1), (1, 2), (1, 3)]  # one of two fits, then none, then the last
    draws.clear()
    kept = _settle_modes([one(60)], True, lambda n, k: [one(60)] * n, tries=3)
    assert int(kept[0].tracks[0].notes["pitch"][0]) == 60
