"""Unisons through every tokenizer: two tracks or voices on one pitch at one time.

Tokenizers that write several tracks or voices keep both notes (``events`` and ``remi``
between tracks, ``chorale`` and ``satb`` between voices); the single-stream ones merge them by
design and say so (``roll``: one piano roll; ``melody``: the top line only).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.score import VOICES, Score, TimeSignature, Track, make_notes
from musegen.tokenizers import get_tokenizer
from strategies import assert_same_notes, note_arrays

STEP = 120  # a 16th at 480 ticks per quarter


def multiset(notes: np.ndarray) -> list[tuple[int, ...]]:
    """(start, duration, pitch) of each note, sorted."""
    return sorted(zip(*(notes[c].tolist() for c in ("start", "duration", "pitch")), strict=True))


@st.composite
def tracks_in_unison(draw: st.DrawFn) -> Score:
    """Two tracks, the second doubling some notes of the first exactly (same program or
    not); the first holds no note twice."""
    base = draw(note_arrays(max_notes=30, max_dur_steps=32, pitch_range=(21, 108)))
    _, first = np.unique(base[["start", "duration", "pitch"]], return_index=True)
    base = base[np.sort(first)]
    picks = draw(st.lists(st.integers(0, max(len(base) - 1, 0)), unique=True, max_size=10))
    doubled = base[picks] if len(base) else base
    programs = draw(st.sampled_from([(0, 0), (52, 52), (0, 40)]))
    return Score(
        tracks=[
            Track(base, program=programs[0], name="one"),
            Track(doubled, program=programs[1], name="two"),
        ]
    )


@settings(max_examples=60, deadline=None)
@given(tracks_in_unison())
def test_remi_and_events_keep_unisons_between_tracks(score: Score) -> None:
    """Every note comes back: tracks of one program merge into one track that holds both
    notes of a unison; tracks of different programs stay apart, each with its notes.
    (``events`` pairs the offsets of overlapping notes of one pitch first-in-first-out, so
    there only onsets and pitches are compared.)"""
    for name in ("remi", "events"):
        tok = get_tokenizer(name)
        back = tok.decode(tok.encode(score))
        assert_same_notes(back, tok.prepare(score), check_velocity=False)
        assert back.n_notes == score.n_notes, name

        def kept(notes: np.ndarray, name: str = name) -> list[tuple[int, ...]]:
            return [n if name == "remi" else (n[0], n[2]) for n in multiset(notes)]

        by_program: dict[int, list[tuple[int, ...]]] = {}
        for t in score.tracks:
            by_program.setdefault(t.program, []).extend(kept(t.notes))
        got = {t.program: sorted(kept(t.notes)) for t in back.tracks}
        assert got == {p: sorted(n) for p, n in by_program.items() if n}, name


@st.composite
def voices_in_unison(draw: st.DrawFn) -> Score:
    """Four monophonic voices (S, A, T, B tracks) on a 16th grid in 4/4, whose chords often
    put a voice on the pitch of the voice above."""
    n = draw(st.integers(1, 12))
    lengths = draw(st.lists(st.integers(1, 8), min_size=n, max_size=n))
    onsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) * STEP
    cols: list[list[int]] = [[], [], [], []]
    for _ in range(n):
        chord = [draw(st.integers(60, 69))]
        for _v in range(3):
            unison = draw(st.booleans())
            chord.append(chord[-1] if unison else draw(st.integers(57, 69)))
        for v in range(4):
            cols[v].append(chord[v])
    tracks = [
        Track(make_notes(onsets, np.array(lengths) * STEP, cols[v], 80), name=label, voice=label)
        for v, label in enumerate(VOICES)
    ]
    return Score(tracks=tracks, time_signatures=[TimeSignature(0, 4, 4)])


@settings(max_examples=60, deadline=None)
@given(voices_in_unison())
def test_chorale_and_satb_keep_unisons_between_voices(score: Score) -> None:
    """Each voice comes back note for note, whichever voices share a pitch."""
    for tok in (get_tokenizer("chorale"), get_tokenizer("satb", hold=True)):
        back = tok.decode(tok.encode(score))
        assert [t.voice for t in back.tracks] == list(VOICES)
        for a, b in zip(back.tracks, score.tracks, strict=True):
            assert multiset(a.notes) == multiset(b.notes), tok.name


def test_bach_chorales_keep_every_note() -> None:
    """BWV 269 and BWV 66.6 (voices in unison here and there) through the tokenizers that
    write tracks or voices, and through a MIDI file after the decode."""
    from musegen.io import load, read_midi
    from musegen.io.midi import midi_bytes

    for ref, n in (("corpus:bach/bwv269", 225), ("corpus:bach/bwv66.6", 163)):
        score = load(ref)
        assert score.n_notes == n
        for name in ("remi", "events", "chorale"):
            tok = get_tokenizer(name)
            back = tok.decode(tok.encode(score))
            assert back.n_notes == n, (ref, name)
            assert read_midi(midi_bytes(back)).n_notes == n, (ref, name)


def test_single_stream_tokenizers_merge_unisons_by_design() -> None:
    """``roll`` is one piano roll (a key sounds or not) and ``melody`` keeps the top line:
    a unison of two tracks is one note there, as their docstrings say."""
    unison = Score(
        tracks=[
            Track(make_notes([0, 480], [480, 480], [67, 69]), name="Soprano", voice="S"),
            Track(make_notes([0, 480], [480, 480], [67, 64]), name="Alto", voice="A"),
        ],
        time_signatures=[TimeSignature(0, 4, 4)],
    )
    for name in ("roll", "melody"):
        tok = get_tokenizer(name)
        assert "unison" in (type(tok).__doc__ or "")
        back = tok.decode(tok.encode(unison))
        assert len(back.tracks) == 1
        notes = multiset(back.tracks[0].notes)
        assert notes[0] == (0, 480, 67) and (480, 480, 69) in notes, name
        assert sum(1 for n in notes if n[0] == 0) == 1, name  # the unison: one note
