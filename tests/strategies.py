"""Shared test helpers: hypothesis strategies for random scores and note comparisons."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from musegen.score import (
    NOTE_DTYPE,
    KeySignature,
    Score,
    Tempo,
    TimeSignature,
    Track,
    make_notes,
    sort_notes,
)


@st.composite
def note_arrays(
    draw: st.DrawFn,
    max_notes: int = 40,
    grid: int = 120,
    max_start_steps: int = 200,
    max_dur_steps: int = 32,
    pitch_range: tuple[int, int] = (0, 127),
) -> np.ndarray:
    """A sorted note array on a grid of ``grid`` ticks (durations >= one step)."""
    n = draw(st.integers(0, max_notes))
    starts = draw(st.lists(st.integers(0, max_start_steps), min_size=n, max_size=n))
    durs = draw(st.lists(st.integers(1, max_dur_steps), min_size=n, max_size=n))
    pitches = draw(st.lists(st.integers(*pitch_range), min_size=n, max_size=n))
    vels = draw(st.lists(st.integers(1, 127), min_size=n, max_size=n))
    return make_notes(
        np.array(starts, dtype=np.int64) * grid,
        np.array(durs, dtype=np.int64) * grid,
        pitches,
        vels,
    )


@st.composite
def scores(
    draw: st.DrawFn,
    tpq: int = 480,
    grid: int = 120,
    max_tracks: int = 3,
    allow_drums: bool = True,
    with_maps: bool = True,
    **note_kwargs: int,
) -> Score:
    """A random score: tracks with distinct (program, drum) pairs, optional map changes."""
    n_tracks = draw(st.integers(1, max_tracks))
    keys = draw(
        st.lists(
            st.tuples(st.integers(0, 127), st.booleans() if allow_drums else st.just(False)),
            min_size=n_tracks,
            max_size=n_tracks,
            unique_by=lambda k: (0 if k[1] else k[0], k[1]),
        )
    )
    tracks = [
        Track(
            draw(note_arrays(grid=grid, **note_kwargs)), program=0 if drum else prog, is_drum=drum
        )
        for prog, drum in keys
    ]
    tempos, sigs, key_sigs = [], [], []
    if with_maps:
        bar = tpq * 4
        tempos = [Tempo(0, draw(st.sampled_from([60.0, 90.0, 120.0, 150.0])))]
        if draw(st.booleans()):
            tempos.append(
                Tempo(bar * draw(st.integers(1, 4)), draw(st.sampled_from([80.0, 140.0])))
            )
        sigs = [TimeSignature(0, *draw(st.sampled_from([(4, 4), (3, 4), (6, 8), (2, 4)])))]
        if draw(st.booleans()):
            sigs.append(TimeSignature(bar * draw(st.integers(1, 4)), 3, 4))
        key_sigs = [KeySignature(0, draw(st.integers(-7, 7)), draw(st.booleans()))]
    return Score(
        tpq=tpq, tracks=tracks, tempos=tempos, time_signatures=sigs, key_signatures=key_sigs
    )


def note_set(score: Score) -> dict[tuple[int, bool], np.ndarray]:
    """Non-empty tracks' notes keyed by (program, is_drum), all converted to ticks at 480 tpq."""
    out: dict[tuple[int, bool], list[np.ndarray]] = {}
    s = score if score.tpq == 480 else score.resample(480)
    for t in s.tracks:
        if len(t):
            out.setdefault((t.program, t.is_drum), []).append(t.notes)
    return {k: sort_notes(np.concatenate(v)) for k, v in out.items()}


def assert_same_notes(a: Score, b: Score, check_velocity: bool = True) -> None:
    """Same notes per (program, drum) track key, compared at 480 ticks per quarter."""
    na, nb = note_set(a), note_set(b)
    assert na.keys() == nb.keys(), f"track keys differ: {sorted(na)} vs {sorted(nb)}"
    for k in na:
        x, y = na[k], nb[k]
        cols = list(NOTE_DTYPE.names if check_velocity else ("start", "duration", "pitch"))
        assert len(x) == len(y), f"track {k}: {len(x)} vs {len(y)} notes"
        for c in cols:
            assert np.array_equal(x[c], y[c]), f"track {k}: column {c} differs"
