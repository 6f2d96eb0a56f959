"""Lengths in bars and seconds are honoured in every meter, with and without a primer."""

from __future__ import annotations

import logging

import pytest
import torch

from musegen.models import build_model
from musegen.sampling.generate import SamplingConfig
from musegen.sampling.pieces import PieceRequest, bar_line, compose
from musegen.score import Note, Score, TimeSignature, Track
from musegen.tokenizers import get_tokenizer


def tiny(tok, favour: int | None = None, against: int | None = None):  # type: ignore[no-untyped-def]
    """A tiny random transformer for ``tok``, pushed towards / away from one token."""
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
    bias = torch.zeros(len(tok))
    if favour is not None:
        bias[favour] = 1e3
    if against is not None:
        bias[against] = -1e3
    model.register_forward_hook(lambda _m, _i, out: (out[0] + bias, *out[1:]))
    return model


def has_bars(piece: Score, bars: int) -> bool:
    """``bars`` bars after any pickup (padded to a whole bar): a model that never rests
    writes into every bar it is given (the grammar lets the last bar end early, as a bar
    that completes a pickup does)."""
    first = min(int(t.notes["start"].min()) for t in piece.tracks if len(t))
    return piece.n_bars == bars + int(first > 0)


@pytest.mark.parametrize("name", ["melody", "chorale"])
def test_bars_are_honoured_in_every_meter_of_a_countdown_tokenizer(name: str) -> None:
    tok = get_tokenizer(name)
    model = tiny(tok, against=tok.rest_id)
    for k, meter in enumerate(tok.config.time_signatures):
        (piece,) = compose(
            model, tok, PieceRequest(bars=3, time_signature=meter), SamplingConfig(seed=k)
        )
        assert str(piece.time_signatures[0]) == meter
        assert has_bars(piece, 3), (meter, piece.end, piece.n_bars)


@pytest.mark.parametrize("name", ["melody", "chorale"])
def test_seconds_are_honoured_in_every_meter_of_a_countdown_tokenizer(name: str) -> None:
    """The countdown asks for the bars that reach the time; the piece is cut there (it was a
    fixed bar or two, whatever the seconds)."""
    tok = get_tokenizer(name)
    model = tiny(tok, against=tok.rest_id)
    for k, meter in enumerate(tok.config.time_signatures):
        request = PieceRequest(bars=None, seconds=7.3, tempo=100, time_signature=meter)
        (piece,) = compose(model, tok, request, SamplingConfig(seed=k))
        assert piece.duration_seconds() == pytest.approx(7.3, abs=0.01), meter
    # no meter asked: each piece's is drawn, each piece still lasts the seconds asked
    request = PieceRequest(bars=None, seconds=5.0, meters={"3/4": 1, "6/8": 1, "4/4": 1})
    pieces = compose(model, tok, request, SamplingConfig(seed=2), num=6)
    assert len({str(p.time_signatures[0]) for p in pieces}) > 1
    assert [round(p.duration_seconds(), 2) for p in pieces] == [5.0] * 6


def primer_with_pickup(meter: TimeSignature) -> Score:
    """One beat of pickup, then a bar of quarter notes, in ``meter``."""
    bar = meter.bar_ticks(480)
    beat = 480 * 4 // meter.denominator
    notes = [Note(67, bar - beat, beat, 80)]
    notes += [Note(60 + i, bar + i * beat, beat, 80) for i in range(meter.numerator)]
    return Score(tracks=[Track.from_notes(notes)], time_signatures=[meter])


@pytest.mark.parametrize("meter", ["3/4", "6/8", "4/4", "5/4"])
def test_a_primer_with_a_pickup_gets_exactly_the_bars_asked_after_it(meter: str) -> None:
    """The countdown counts bars after a pickup: the primer's pickup bar is one of its bars,
    not a reason for one more new bar (there was one too many)."""
    tok = get_tokenizer("melody")
    model = tiny(tok, against=tok.rest_id)
    ts = TimeSignature(0, *map(int, meter.split("/")))
    primer = primer_with_pickup(ts)
    assert primer.n_bars == 2
    for bars in (1, 4):
        (piece,) = compose(model, tok, PieceRequest(bars=bars, primer=primer), SamplingConfig())
        assert piece.n_bars == 2 + bars, meter


@pytest.mark.parametrize("meter", ["3/4", "6/8", "3/2", "12/8"])
def test_remi_stops_at_the_bar_line_of_any_meter(meter: str) -> None:
    """A tokenizer with no countdown is cut at the asked bar line, counted in its meter."""
    tok = get_tokenizer("remi")
    model = tiny(tok, favour=2)  # EOS: held back until the length is reached
    (piece,) = compose(
        model, tok, PieceRequest(bars=3, time_signature=meter), SamplingConfig(seed=1)
    )
    bar = TimeSignature(0, *map(int, meter.split("/"))).bar_ticks(piece.tpq)
    assert piece.n_notes > 0
    assert 2 * bar <= max(int(t.notes["start"].max()) for t in piece.tracks if len(t)) < 3 * bar
    assert piece.end <= 3 * bar


def test_bar_line_counts_in_the_scores_meters_past_its_end() -> None:
    empty = Score(tpq=480)
    assert bar_line(empty, 0) == 0 and bar_line(empty, 22) == 22 * 1920  # 4/4 by default
    waltz = Score(tpq=480, time_signatures=[TimeSignature(0, 3, 4)])
    assert bar_line(waltz, 16) == 16 * 1440  # not 16 bars of 4/4
    changing = Score(
        tpq=480,
        tracks=[Track.from_notes([Note(60, 0, 480, 80)])],
        time_signatures=[TimeSignature(0, 4, 4), TimeSignature(1920, 12, 8)],
    )
    assert bar_line(changing, 1) == 1920
    assert bar_line(changing, 3) == 1920 + 2 * 2880  # 12/8 goes on past the end


def test_a_meter_the_model_never_saw_is_said(caplog: pytest.LogCaptureFixture) -> None:
    tok = get_tokenizer("melody")
    model = tiny(tok)
    shares = {"4/4": 0.9, "3/4": 0.1}
    with caplog.at_level(logging.WARNING):
        compose(
            model, tok, PieceRequest(bars=1, time_signature="3/4", meters=shares), SamplingConfig()
        )
        assert not caplog.records
        compose(
            model, tok, PieceRequest(bars=1, time_signature="7/8", meters=shares), SamplingConfig()
        )
    assert "had no 7/8 (they had 4/4, 3/4)" in caplog.text


def test_coconet_writes_the_bars_asked_in_4_4_and_refuses_other_meters() -> None:
    from musegen.errors import MusegenError
    from musegen.sampling.generators import GenerateRequest, load_generator

    generator = load_generator("coconet")
    got = generator.generate(GenerateRequest(bars=2, seed=1, key="D major", program=19))
    (piece,) = got.pieces
    assert piece.n_bars == 2 and str(piece.time_signatures[0]) == "4/4"
    assert {t.program for t in piece.tracks} == {19}  # --program and --key were recorded only
    assert piece.key_signatures[0].key == 2 and not piece.key_signatures[0].minor  # D major
    with pytest.raises(MusegenError, match="4/4 chorales only"):
        generator.generate(GenerateRequest(bars=2, time_signature="3/4"))


def test_the_frame_model_writes_the_bars_asked_in_any_meter() -> None:
    from musegen.sampling.generators import GenerateRequest, load_generator

    generator = load_generator("jsb-frame")
    for meter in ("3/4", "6/8", "4/4"):
        pieces = generator.generate(GenerateRequest(num=2, bars=3, time_signature=meter)).pieces
        for piece in pieces:
            assert str(piece.time_signatures[0]) == meter
            assert 0 < piece.end <= bar_line(piece, 3)
