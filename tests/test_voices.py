"""Voice separation: merged notes dealt out to monophonic voices, nothing lost."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.score import VOICES, Note, Score, Track, make_notes
from musegen.voices import separate_voices
from strategies import note_arrays


def one_track(*notes: tuple[int, int, int]) -> Score:
    """A score of one track from (pitch, start, duration) in quarters of 480 ticks."""
    return Score(tracks=[Track.from_notes([Note(p, s * 480, d * 480) for p, s, d in notes])])


def pitches(track: Track) -> list[int]:
    return track.notes["pitch"].tolist()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(60, 79), st.integers(2, 7), st.integers(3, 7), st.integers(3, 9)
        ),  # soprano, then the gaps down to alto, tenor, bass
        min_size=1,
        max_size=12,
    ),
    st.lists(st.integers(1, 4), min_size=12, max_size=12),
)
def test_four_part_chords_come_back_voice_by_voice(chords: list, lengths: list[int]) -> None:
    """Chords of four distinct pitches in one rhythm: each voice gets back exactly its notes."""
    voices: list[list[Note]] = [[], [], [], []]
    t = 0
    for (s, g1, g2, g3), length in zip(chords, lengths, strict=False):
        for v, p in enumerate((s, s - g1, s - g1 - g2, s - g1 - g2 - g3)):
            voices[v].append(Note(p, t, length * 240))
        t += length * 240
    original = Score(tracks=[Track.from_notes(v) for v in voices])
    out = separate_voices(original.merge_tracks())
    assert [t.voice for t in out.tracks] == list(VOICES)
    assert [t.name for t in out.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    for got, want in zip(out.tracks, original.tracks, strict=True):
        assert np.array_equal(got.notes, want.notes)


@settings(max_examples=80, deadline=None)
@given(note_arrays(max_notes=30), st.integers(1, 5))
def test_no_note_is_lost_and_every_voice_sings_one_note_at_a_time(
    notes: np.ndarray, n: int
) -> None:
    out = separate_voices(Score(tracks=[Track(notes)]), n)
    dealt = np.concatenate([t.notes for t in out.tracks])
    assert len(dealt) == len(notes)
    key = ["start", "pitch"]
    assert np.array_equal(np.sort(dealt[key]), np.sort(notes[key]))  # same onsets and pitches
    assert (dealt["duration"] > 0).all()
    for track in out.tracks[:n]:  # the voices (an "Other" track may follow)
        ends = track.notes["start"] + track.notes["duration"]
        assert (track.notes["start"][1:] >= ends[:-1]).all()
    assert len(out.tracks) in (n, n + 1)
    if len(out.tracks) == n + 1:
        assert out.tracks[-1].name == "Other"


def test_a_passing_note_goes_to_the_voice_that_is_free() -> None:
    # a half-note chord; the alto moves in quarters (a passing note) while the others hold
    score = one_track((72, 0, 2), (67, 0, 1), (65, 1, 1), (60, 0, 2), (48, 0, 2))
    s, a, t, b = separate_voices(score).tracks
    assert (pitches(s), pitches(a), pitches(t), pitches(b)) == ([72], [67, 65], [60], [48])
    assert s.notes["duration"].tolist() == [960]  # held notes are not cut


def test_a_lone_note_keeps_to_its_voice_after_a_rest() -> None:
    """The plain rule (rank among the sounding notes) would give a lone bass note to the
    soprano; the voice that sang nearest takes it."""
    score = one_track((72, 0, 1), (64, 0, 1), (57, 0, 1), (45, 0, 1), (47, 1, 1))
    assert pitches(separate_voices(score).tracks[3]) == [45, 47]


def test_more_notes_than_voices_keep_the_outer_ones_and_lose_none() -> None:
    score = one_track((76, 0, 1), (72, 0, 1), (67, 0, 1), (64, 0, 1), (60, 0, 1), (48, 0, 1))
    out = separate_voices(score)
    assert [t.name for t in out.tracks][-1] == "Other" and len(out.tracks) == 5
    assert pitches(out.tracks[0]) == [76] and pitches(out.tracks[3]) == [48]
    assert sum(len(t) for t in out.tracks) == 6


def test_other_voice_counts_drums_and_empty_scores() -> None:
    drums = Track(make_notes([0], [240], [36]), is_drum=True, name="kit")
    score = one_track((60, 0, 1), (55, 0, 1))
    score.tracks.append(drums)
    out = separate_voices(score, 2)
    assert [t.name for t in out.tracks] == ["Voice 1", "Voice 2", "kit"]
    assert out.tracks[0].voice is None and out.tracks[2].is_drum
    empty = separate_voices(Score())
    assert len(empty.tracks) == 4 and empty.n_notes == 0
    with pytest.raises(ValueError, match="voices"):
        separate_voices(score, 0)
