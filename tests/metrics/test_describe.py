"""Bar descriptions: chords, density, pitch, instruments, meter and key per bar."""

from __future__ import annotations

import json

import numpy as np
import pytest

from controlhelpers import Q, progression
from musegen.io import load
from musegen.metrics.describe import (
    BINS_FILE,
    GM_PROGRAMS,
    Bins,
    bar_chords,
    bin_of,
    describe,
    learn_bins,
    to_text,
)
from musegen.score import Score

BINS = Bins((1.0, 2.0), (60.0, 66.0), "test")


def test_each_bar_reads_back_its_chord_density_and_pitch() -> None:
    score = progression(["C", "G", "Am", "F"], [1, 2, 4, 1], program=40)
    d = describe(score, BINS)
    assert d.chords == ["C", "G", "Am", "F"]
    assert [b.chords for b in d.bars] == [["C"], ["G"], ["Am"], ["F"]]
    assert [b.density for b in d.bars] == [0.75, 1.5, 3.0, 0.75]  # 3, 6, 12, 3 notes / 4 beats
    assert d.density_bins == ["low", "medium", "high", "low"]
    assert [b.pitch_bin for b in d.bars] == ["medium", "low", "medium", "low"]
    assert d.bars[0].instruments == ["Violin"] and d.bars[0].meter == "4/4"
    assert d.key == "C major"
    assert bar_chords(score) == d.chords


def test_known_chorale() -> None:
    d = describe(load("corpus:bach/bwv66.6"))
    assert d.key == "F# minor" and d.meter == "4/4"
    assert d.instruments == ["Soprano", "Alto", "Tenor", "Bass"]
    assert len(d.bars) == 10
    assert d.bars[-1].chords == ["Bm", "F#"]  # iv then the Picardy third
    assert all(b.chord is not None and b.density > 0 for b in d.bars)
    text = to_text(d, "bwv66.6")
    assert text.startswith("# bwv66.6\nkey: F# minor") and text.count("- bar:") == 10


def test_silent_bars_and_bins() -> None:
    score = progression(["C"], [1])
    score.tracks[0].notes["start"] += 4 * Q  # bar 1 is silent
    d = describe(score, BINS)
    assert d.bars[0].chord is None and d.bars[0].mean_pitch is None
    assert d.bars[0].density_bin == "low" and d.bars[0].instruments == []
    assert bin_of(None, (1.0, 2.0)) is None and bin_of(2.0, (1.0, 2.0)) == "high"


def test_learned_bins_are_terciles_and_the_stored_ones_name_their_corpus() -> None:
    scores = [progression(["C"] * 3, [1, 2, 4])]
    bins = learn_bins(scores, "x")
    assert bins.density == (1.5, 1.5) or bins.density[0] <= bins.density[1]
    stored = json.loads(BINS_FILE.read_text())
    assert stored["corpus"] and stored["density"][0] < stored["density"][1]
    assert Bins.load().pitch[0] < Bins.load().pitch[1]
    assert len(GM_PROGRAMS) == 128 and GM_PROGRAMS[40] == "Violin"
    with pytest.raises(ValueError):
        learn_bins([Score(tpq=Q)])
    assert np.isfinite(bins.pitch).all()
