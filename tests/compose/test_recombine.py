"""Recombination: every join repeats one of Bach's own voice-leading moves, nothing has
consecutive perfects, and the piece ends with an authentic cadence."""

from __future__ import annotations

import numpy as np
import pytest

from composehelpers import parallel_perfects, steps_parallels
from musegen.compose.recombine import build_lexicon, chorale_steps, recombine
from musegen.errors import MusegenError


@pytest.fixture(scope="module")
def chorales():
    from musegen.data.sources import get_source

    try:
        get_source("jsb-satb").locate()
    except MusegenError:
        pytest.skip("the JSB SATB data (Jsb16thSeparated.json) is not in the shared data folder")
    return chorale_steps("jsb-satb", "train", max_pieces=120)


@pytest.mark.parametrize("minor", [False, True])
def test_joins_and_cadence(chorales, minor):
    lexicon = build_lexicon(chorales, minor=minor)
    raw = dict(chorales)
    tonic = 9 if minor else 0
    for seed in range(3):
        rec = recombine(lexicon, 12, seed=seed)
        rows = rec.steps
        assert steps_parallels(rows) == []
        assert (rows >= 0).all() and (np.diff(rows, axis=1) <= 0).all()
        # each join is a move Bach made: the next segment begins where the source continued
        for s, t in zip(rec.segments, rec.segments[1:], strict=False):
            src = raw[lexicon.piece_ids[lexicon.piece[s]]]
            i = int(lexicon.index[s]) * lexicon.unit
            shift = lexicon.rows[s][0] - src[i]
            assert (shift == shift[0]).all()
            assert np.array_equal(src[i + lexicon.unit] + shift, lexicon.rows[t][0])
        # authentic cadence: root-position dominant, then a root-position tonic triad
        final = rows[-1]
        assert final[3] % 12 == tonic
        triads = ({0, 4, 7},) if not minor else ({9, 0, 4}, {9, 1, 4})
        assert any(set((final % 12).tolist()) <= t for t in triads)
        dom = lexicon.rows[rec.segments[-2]][0]
        assert dom[3] % 12 == (tonic + 7) % 12
        assert (tonic + 11) % 12 in set((dom % 12).tolist())  # the leading tone sounds
        score = rec.score(key=(5, minor))
        assert [t.voice for t in score.tracks] == ["S", "A", "T", "B"]
        assert parallel_perfects(score) == []
        try:  # the metrics package's checker, where it exists, agrees
            from musegen.metrics.voice_leading import check_voice_leading
        except ImportError:
            continue
        counts = check_voice_leading(score, key=(5, minor)).counts()
        assert counts["parallel_fifths"] == counts["parallel_octaves"] == 0


def test_seed_reproduces(chorales):
    lexicon = build_lexicon(chorales)
    a, b = recombine(lexicon, 10, seed=4), recombine(lexicon, 10, seed=4)
    assert a.segments == b.segments
    assert len(a.provenance()) == 10


def test_bad_requests(chorales):
    lexicon = build_lexicon(chorales)
    with pytest.raises(MusegenError, match="segments must be"):
        recombine(lexicon, 1)
    with pytest.raises(MusegenError, match="mode"):
        recombine(lexicon, 4, seed=0).score(key=(9, True))
    with pytest.raises(MusegenError, match="no usable segments"):
        build_lexicon([("x", np.full((40, 4), -1))])
