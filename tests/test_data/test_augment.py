"""Augmentation: token-level transposition equals Score-level, and output is always valid."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musegen.data.augment import (
    ScoreAugment,
    TokenTranspose,
    pitch_range_of,
    random_transpose,
    stretch,
    transpose_roll,
)
from musegen.errors import MusegenError
from musegen.score import Score, Tempo, TimeSignature, Track, make_notes
from musegen.tokenizers import get_tokenizer
from musegen.tokenizers.base import Vocab
from strategies import scores

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _grammar_accepts(tok, ids: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    g = tok.grammar()
    g.feed(ids)  # raises ValueError on a token the grammar refuses
    tok.decode(ids)


@pytest.mark.parametrize("name", ["remi", "events", "remi-instruments"])
@SETTINGS
@given(score=scores(max_tracks=3, allow_drums=True, pitch_range=(10, 118)), data=st.data())
def test_token_transposition_equals_score_transposition(name: str, score: Score, data) -> None:  # type: ignore[no-untyped-def]
    tok = get_tokenizer(name)
    aug = TokenTranspose(tok, max_shift=12)
    ids = tok.encode(score)
    shifts = aug.valid_shifts(ids)
    if not len(shifts):  # no pitched note: nothing to move
        assert score.pitch_range() is None or tok.prepare(score).pitch_range() is None
        return
    shift = data.draw(st.sampled_from(list(shifts)))
    moved = aug.apply(ids, shift)
    np.testing.assert_array_equal(moved, tok.encode(score.transpose(shift)))  # drums stay
    _grammar_accepts(tok, moved)


@pytest.mark.parametrize("name", ["remi", "events"])
def test_random_token_transposition_is_valid_and_seeded(name: str) -> None:
    tok = get_tokenizer(name, **({"pitch_range": [50, 80]} if name == "remi" else {}))
    rng = np.random.default_rng(0)
    notes = make_notes(np.arange(20) * 240, [240] * 20, rng.integers(55, 76, 20), 90)
    drums = make_notes(np.arange(10) * 480, [120] * 10, [52] * 10, 100)  # in range
    score = Score(tracks=[Track(notes, program=5), Track(drums, is_drum=True)])
    ids = tok.encode(score)
    aug = TokenTranspose(tok, max_shift=6)
    outs = [aug(ids, np.random.default_rng(seed)) for seed in range(20)]
    for out in outs:
        assert out.dtype == ids.dtype and out.shape == ids.shape
        _grammar_accepts(tok, out)
        decoded = tok.decode(out)
        drum = next(t for t in decoded.tracks if t.is_drum)
        assert set(drum.notes["pitch"].tolist()) == {52}
        lo, hi = decoded.pitch_range()
        assert name != "remi" or (lo >= 50 and hi <= 80)  # inside the vocabulary's range
    assert len({o.tobytes() for o in outs}) > 1  # shifts vary
    np.testing.assert_array_equal(aug(ids, np.random.default_rng(7)), outs[7])


def test_window_knows_when_it_starts_among_drum_notes() -> None:
    tok = get_tokenizer("events")
    drums = make_notes(np.arange(8) * 240, [120] * 8, [38] * 8, 100)
    ids = tok.encode(Score(tracks=[Track(drums, is_drum=True)]))
    aug = TokenTranspose(tok, max_shift=4)
    start = len(ids) // 2
    assert aug.program_before(ids, start) == 128
    for seed in range(5):
        np.testing.assert_array_equal(
            aug.window(ids, start, len(ids), np.random.default_rng(seed)), ids[start:]
        )


def test_grid_token_transposition() -> None:
    roll = get_tokenizer("roll")
    notes = make_notes([0, 480, 960], [480, 480, 480], [60, 64, 67], 80)
    score = Score(tracks=[Track(notes)])
    aug = TokenTranspose(roll, max_shift=5)
    grid = roll.encode(score)
    for shift in aug.valid_shifts(grid):
        np.testing.assert_array_equal(aug.apply(grid, shift), roll.encode(score.transpose(shift)))

    satb = get_tokenizer("satb")
    voices = [
        Track(make_notes([0, 480], [480, 480], [p, p + 2], 64), voice=v)
        for p, v in zip((79, 67, 60, 48), "SATB", strict=True)
    ]
    chorale = Score(tracks=voices)
    cells = satb.encode(chorale)
    aug = TokenTranspose(satb, max_shift=6)
    shifts = aug.valid_shifts(cells)
    assert shifts == range(-6, 84 - 81 + 1)  # the soprano's top note limits the shift up
    for shift in shifts:
        moved = aug.apply(cells, shift)
        np.testing.assert_array_equal(moved, satb.encode(chorale.transpose(shift)))
        _grammar_accepts(satb, moved.reshape(-1))


def test_unsupported_tokenizer_says_what_to_do() -> None:
    fake = SimpleNamespace(name="chords", vocab=Vocab(), config=None)
    with pytest.raises(MusegenError, match="ScoreAugment"):
        TokenTranspose(fake)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Score level
def _melody() -> Score:
    notes = make_notes([0, 240, 480, 1000], [240, 240, 480, 200], [60, 62, 64, 100], 80)
    drums = make_notes([0, 480], [120, 120], [42, 42], 90)
    return Score(
        tracks=[Track(notes), Track(drums, is_drum=True)],
        tempos=[Tempo(0, 100.0), Tempo(960, 80.0)],
        time_signatures=[TimeSignature(0, 3, 4)],
    )


def test_random_transpose_keeps_range_and_drums() -> None:
    score = _melody()
    seen = set()
    for seed in range(200):
        out = random_transpose(score, np.random.default_rng(seed), 6, (55, 104))
        lo, hi = out.pitch_range()
        assert lo >= 55 and hi <= 104
        assert out.tracks[1].notes["pitch"].tolist() == [42, 42]
        seen.add(lo - 60)
    assert seen == set(range(-5, 5))  # every shift that fits: [-5, 4]
    a = random_transpose(score, np.random.default_rng(3))
    b = random_transpose(score, np.random.default_rng(3))
    assert a.tracks[0].notes.tobytes() == b.tracks[0].notes.tobytes()


def test_stretch_scales_and_requantizes() -> None:
    score = _melody()
    out = stretch(score, 1.5, step=40)
    assert out.tracks[0].notes["start"].tolist() == [0, 360, 720, 1520]
    assert (out.tracks[0].notes["start"] % 40 == 0).all()
    assert (out.tracks[0].notes["duration"] % 40 == 0).all()
    assert [t.time for t in out.tempos] == [0, 1440] and out.tempos[1].qpm == 80.0
    assert out.duration_seconds() > score.duration_seconds()
    with pytest.raises(MusegenError):
        stretch(score, 0)


def test_score_augment_is_seeded_and_decodable() -> None:
    tok = get_tokenizer("remi", pitch_range=[40, 100])
    aug = ScoreAugment(max_shift=4, pitch_range=pitch_range_of(tok), stretch_range=(0.8, 1.25))
    a = aug(_melody(), np.random.default_rng(1))
    b = aug(_melody(), np.random.default_rng(1))
    assert a.tracks[0].notes.tobytes() == b.tracks[0].notes.tobytes()
    assert a.pitch_range()[1] <= 100
    _grammar_accepts(tok, tok.encode(a))


def test_pitch_ranges_of_tokenizers() -> None:
    assert pitch_range_of(get_tokenizer("remi", pitch_range=[21, 108])) == (21, 108)
    assert pitch_range_of(get_tokenizer("roll")) == (21, 108)
    assert pitch_range_of(get_tokenizer("events")) == (0, 127)
    assert pitch_range_of(get_tokenizer("satb")) == (33, 84)


def test_transpose_roll_keeps_every_key() -> None:
    roll = np.zeros((4, 88), bool)
    roll[:, [2, 80]] = True
    for seed in range(20):
        out = transpose_roll(roll, np.random.default_rng(seed), max_shift=6)
        assert out.sum() == roll.sum()
        cols = np.flatnonzero(out.any(axis=0))
        assert cols[1] - cols[0] == 78 and cols[0] >= 0 and cols[1] <= 87
