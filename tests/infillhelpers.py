"""Small four-voice pieces and the checks that infilling keeps what it was given."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from musegen.score import VOICES, Score, Tempo, TimeSignature, Track, make_notes
from musegen.tokenizers.chorale import BarGridTokenizer
from musegen.tokenizers.infill import score_grid, sounding

# I - IV - V - I - vi - ii - V - I in C, voiced S A T B
CHORDS = [
    (72, 67, 64, 48),
    (72, 69, 65, 53),
    (71, 67, 62, 55),
    (72, 67, 64, 48),
    (72, 69, 64, 57),
    (74, 69, 65, 50),
    (74, 67, 62, 55),
    (72, 67, 64, 48),
]


def chorale(seed: int, bars: int = 4, pickup: bool = False, tpq: int = 480) -> Score:
    """A four-voice piece in 4/4: a chord a beat (quarters, some halves, a rest now and
    then), drawn from :data:`CHORDS` by ``seed``; ``pickup``: it starts on the last beat."""
    rng = np.random.default_rng(seed)
    beats = bars * 4 + (1 if pickup else 0)
    offset = 3 * tpq if pickup else 0  # a pickup padded to a whole bar with rests
    tracks = []
    chords = [CHORDS[int(rng.integers(len(CHORDS)))] for _ in range(beats)]
    for v, label in enumerate(VOICES):
        starts, durs, pitches = [], [], []
        b = 0
        while b < beats:
            length = 2 if rng.random() < 0.2 and b + 2 <= beats else 1
            if b == 0 or rng.random() > 0.1:
                starts.append(offset + b * tpq)
                durs.append(length * tpq)
                pitches.append(chords[b][v] + (12 if v == 3 and rng.random() < 0.2 else 0))
            b += length
        notes = make_notes(np.array(starts), np.array(durs), np.array(pitches), 80)
        tracks.append(Track(notes, name=f"voice {label}", voice=label, program=52 + v))
    return Score(
        tpq=tpq,
        tracks=tracks,
        tempos=[Tempo(0, 90.0)],
        time_signatures=[TimeSignature(0, 4, 4)],
    )


def melody(seed: int, bars: int = 4, tpq: int = 480) -> Score:
    """The top line of :func:`chorale` as one unlabelled track."""
    top = chorale(seed, bars, tpq=tpq).tracks[0]
    return Score(
        tpq=tpq,
        tracks=[Track(top.notes.copy(), name="tune")],
        tempos=[Tempo(0, 90.0)],
        time_signatures=[TimeSignature(0, 4, 4)],
    )


def check_kept(
    tok: BarGridTokenizer,
    before: Score,
    after: Score,
    bars: tuple[int, int],
    voices: Sequence[int],
) -> None:
    """Everything given is unchanged in ``after``: every cell outside the rewritten voices
    of the region, bars outside it, and the notes of voices not rewritten; where a rewritten
    voice held a given note across the region's end, the note is struck again there (same
    pitch)."""
    a, b = score_grid(tok, before), score_grid(tok, after)
    assert a.unit_bars == b.unit_bars and a.shift == b.shift
    assert a.grid.cells.shape == b.grid.cells.shape
    first, last = a.units(*bars)
    rows = a.grid.rows(first, last)
    free = np.zeros(a.grid.cells.shape, dtype=bool)
    free[rows, list(voices)] = True
    ca, cb = a.grid.cells, b.grid.cells
    pa, pb = sounding(tok, ca), sounding(tok, cb)
    assert (pa[~free] == pb[~free]).all(), "a given cell sounds differently"
    changed = ~free & (ca != cb)
    after_region = rows.stop
    assert not changed[:after_region].any()
    assert not changed[after_region + 1 :].any()
    restarted = changed[after_region : after_region + 1]
    if restarted.any():
        assert (ca[after_region][restarted[0]] == tok.hold_id).all()
        assert (cb[after_region][restarted[0]] >= tok.pitch_offset).all()
    # the notes themselves: voices not rewritten are the input's notes exactly
    prepared = tok.prepare(before)
    kept = [v for v in range(tok.n_voices) if v not in voices]
    for v in kept:
        want, got = prepared.tracks[v].notes, after.tracks[v].notes
        shift = a.shift * (prepared.tpq // tok.config.steps_per_quarter)
        assert np.array_equal(want["start"] + shift, got["start"])
        assert np.array_equal(want["duration"], got["duration"])
        assert np.array_equal(want["pitch"], got["pitch"])
