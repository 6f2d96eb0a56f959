"""Endings resampled until they close: the bars before stay, a passing ending is kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musegen.errors import MusegenError
from musegen.models import build_model
from musegen.sampling.endings import ending_check, last_bars_start, settle_endings
from musegen.sampling.generate import SamplingConfig
from musegen.sampling.pieces import PieceRequest, compose, primer_score
from musegen.score import Score
from musegen.theory import estimate_key
from musegen.tokenizers import get_tokenizer


@pytest.fixture(scope="module")
def tiny():  # type: ignore[no-untyped-def]
    tok = get_tokenizer("chorale")
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
    return model, tok


def _pieces(model, tok, num=3):  # type: ignore[no-untyped-def]
    prime = tok.primer_for_length(primer_score(PieceRequest(time_signature="3/4")), 4)
    from musegen.sampling.generate import generate

    return generate(model, tok, num=num, primer=prime, config=SamplingConfig(seed=3))


def test_unknown_ending_is_a_clear_error() -> None:
    with pytest.raises(MusegenError, match="unknown ending 'perfect'"):
        ending_check("perfect")
    assert ending_check("free") is None


def test_last_bars_start_finds_the_countdown(tiny) -> None:  # type: ignore[no-untyped-def]
    model, tok = tiny
    (seq,) = _pieces(model, tok, num=1)
    at = last_bars_start(tok, seq, 2)
    assert at is not None and tok.vocab.token(int(seq[at])) == "BAR_2"
    assert last_bars_start(tok, seq, 9) is None  # a 4-bar piece has no BAR_9
    assert last_bars_start(get_tokenizer("remi"), seq, 2) is None  # no countdown block


def test_free_changes_nothing(tiny) -> None:  # type: ignore[no-untyped-def]
    model, tok = tiny
    seqs = _pieces(model, tok)
    out, counts = settle_endings(model, tok, seqs, "free", SamplingConfig(seed=3))
    assert out is seqs and counts["settled"] == 0


def test_failing_endings_get_new_last_bars_and_keep_the_rest(tiny, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    model, tok = tiny
    seqs = _pieces(model, tok)
    calls: list[tuple[Score, object]] = []

    def passes_second_time(score: Score, key: object = None) -> bool:  # a redraw passes
        calls.append((score, key))
        return len(calls) % 2 == 0

    monkeypatch.setattr("musegen.sampling.endings.ending_check", lambda _name: passes_second_time)
    out, counts = settle_endings(model, tok, seqs, "cadence", SamplingConfig(seed=3), tries=4)
    assert counts == {"passed": 0, "settled": 3, "kept": 0, "skipped": 0}
    for before, after in zip(seqs, out, strict=True):
        at = last_bars_start(tok, before, 2)
        assert at is not None
        np.testing.assert_array_equal(after[: at + 1], before[: at + 1])  # untouched
        assert tok.decode(after).n_bars == tok.decode(before).n_bars
    # the written piece is checked in its own key, each redraw in the written piece's key
    for (written, none), (_redrawn, key) in zip(calls[::2], calls[1::2], strict=True):
        assert none is None and key == estimate_key(written) and key is not None


def test_endings_that_never_pass_keep_the_piece(tiny, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    model, tok = tiny
    seqs = _pieces(model, tok, num=2)
    keys: list[object] = []

    def never(_score: Score, key: object = None) -> bool:
        keys.append(key)
        return False

    monkeypatch.setattr("musegen.sampling.endings.ending_check", lambda _name: never)
    out, counts = settle_endings(model, tok, seqs, "tonic", SamplingConfig(seed=3), tries=2)
    assert counts["kept"] == 2
    assert keys == [None] * 6  # a tune's new last note is read in the new tune's own key
    for a, b in zip(seqs, out, strict=True):
        np.testing.assert_array_equal(a, b)


def test_compose_with_an_ending_is_reproducible(tiny) -> None:  # type: ignore[no-untyped-def]
    model, tok = tiny
    req = PieceRequest(bars=3, time_signature="4/4", ending="cadence", ending_tries=2)
    a = compose(model, tok, req, SamplingConfig(seed=5), num=2)
    b = compose(model, tok, req, SamplingConfig(seed=5), num=2)
    for x, y in zip(a, b, strict=True):
        for s, t in zip(x.tracks, y.tracks, strict=True):
            np.testing.assert_array_equal(s.notes, t.notes)
