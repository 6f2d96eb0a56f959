"""EventTokenizer: round trips, FIFO canonical form, tolerant decoding, grammar, config JSON."""

from __future__ import annotations

import copy
import heapq
import json

import numpy as np
import pytest
from hypothesis import given, settings

from musegen.errors import MusegenError
from musegen.score import Note, Score, Tempo, TimeSignature, Track, make_notes
from musegen.tokenizers import BOS, EOS, PAD, get_tokenizer, tokenizer_from_dict
from musegen.tokenizers.events import TPQ, EventConfig, EventTokenizer
from strategies import assert_same_notes, note_set, scores

TOK = EventTokenizer()


def round_trip(tok: EventTokenizer, score: Score) -> Score:
    """Encode, check the ids are grammatical, decode; assert the decoded notes are prepared."""
    ids = tok.encode(score)
    assert ids.dtype == np.int64
    assert tok.grammar().feed(ids).done
    out = tok.decode(ids)
    assert_same_notes(out, tok.prepare(score))
    return out


def track(notes: list[Note], **kwargs: object) -> Track:
    return Track.from_notes(notes, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- round trips
@settings(max_examples=100, deadline=None)
@given(scores(max_tracks=4))
def test_round_trip_random_scores(score: Score) -> None:
    round_trip(TOK, score)


@settings(max_examples=40, deadline=None)
@given(scores(grid=37, tpq=96, max_tracks=3))
def test_round_trip_off_grid_and_other_tpq(score: Score) -> None:
    """Times off the 12-per-quarter grid and another resolution still round-trip."""
    out = round_trip(TOK, score)
    for t in out.tracks:
        assert (t.notes["start"] % TOK.step_ticks == 0).all()
        assert (t.notes["duration"] >= TOK.step_ticks).all()


@pytest.mark.parametrize(
    "options",
    [
        {"velocity_bins": 0},
        {"programs": False},
        {"steps_per_quarter": 4, "max_shift_steps": 3},
        {"velocity_bins": 127, "tempo_bins": 16},
    ],
)
@settings(max_examples=25, deadline=None)
@given(score=scores())
def test_round_trip_other_configs(options: dict, score: Score) -> None:
    round_trip(EventTokenizer(**options), score)


def test_prepare_is_idempotent_and_decode_equals_prepare_fully() -> None:
    tok = EventTokenizer(tempo_bins=32)
    s = Score(
        tpq=960,
        tracks=[
            track([Note(60, 0, 1000, 90), Note(60, 500, 200, 20), Note(61, 7, 3)], program=40),
            track([Note(38, 0, 10, 127)], is_drum=True, program=5),
        ],
        tempos=[Tempo(0, 100), Tempo(1900, 72), Tempo(1920, 70), Tempo(3840, 70.5)],
        time_signatures=[TimeSignature(0, 3, 4)],
    )
    p = tok.prepare(s)
    again = tok.prepare(p)
    out = tok.decode(tok.encode(s))
    for other in (again, out):
        assert_same_notes(other, p)
        assert other.tempos == p.tempos
        assert [(t.program, t.is_drum) for t in other.tracks] == [(40, False), (0, True)]
    assert p.tpq == TPQ and p.time_signatures == []
    assert [t.time for t in p.tempos] == [0, 960]  # 1900 snaps to 1920 (last wins), 70.5 ~ 70


def test_overlapping_same_pitch_notes_pair_first_in_first_out() -> None:
    s = Score(tracks=[track([Note(60, 0, 960, 100), Note(60, 480, 240, 50)])])
    p = TOK.prepare(s)
    got = {(int(n.start), int(n.end)) for n in p.tracks[0].note_list()}
    assert got == {(0, 720), (480, 960)}  # onsets and offsets kept, re-paired
    round_trip(TOK, s)


def test_notes_at_identical_times() -> None:
    same = [Note(60, 0, 480, 80), Note(60, 0, 480, 80), Note(60, 0, 960, 20)]
    s = Score(tracks=[track([*same, Note(64, 0, 480), Note(67, 0, 480)])])
    out = round_trip(TOK, s)
    assert len(out.tracks[0]) == 5
    sixty = sorted((n.duration, n.velocity) for n in out.tracks[0].note_list() if n.pitch == 60)
    # three onsets at 0 and offsets at 480, 480, 960: FIFO gives the quiet one an early offset
    assert [d for d, _ in sixty] == [480, 480, 960]
    assert sixty[0][1] < sixty[2][1]


def test_drums_and_multitrack_merge_by_key() -> None:
    s = Score(
        tracks=[
            track([Note(60, 0, 480)], program=0),
            track([Note(36, 0, 120), Note(38, 480, 120)], is_drum=True, program=10),
            track([Note(64, 0, 480)], program=0, name="second piano"),
            track([Note(40, 0, 480)], program=33),
            Track(),
        ]
    )
    out = round_trip(TOK, s)
    assert [(t.program, t.is_drum, len(t)) for t in out.tracks] == [
        (0, False, 2),
        (33, False, 1),
        (0, True, 2),
    ]
    assert "PROGRAM_DRUMS" in TOK.tokens(TOK.encode(s))


def test_tempo_and_meter_changes_do_not_move_notes() -> None:
    notes = make_notes([0, 960, 2000], [480, 480, 480], [60, 62, 64])
    s = Score(
        tracks=[Track(notes)],
        tempos=[Tempo(0, 60), Tempo(960, 180)],
        time_signatures=[TimeSignature(0, 3, 4), TimeSignature(1440, 6, 8)],
    )
    round_trip(TOK, s)
    tok = EventTokenizer(tempo_bins=32)
    out = round_trip(tok, s)
    assert [t.time for t in out.tempos] == [0, 960]
    assert out.tempos[1].qpm == pytest.approx(180, rel=0.04)


def test_empty_score() -> None:
    ids = TOK.encode(Score())
    assert ids.tolist() == [BOS, EOS]
    assert TOK.decode(ids).is_empty()
    assert TOK.encode(Score(tracks=[Track()]), bos=False, eos=False).tolist() == []
    assert TOK.decode([]).is_empty()


def test_long_gaps_chain_time_shifts() -> None:
    s = Score(tracks=[track([Note(60, 0, 480), Note(62, 480 * 41, 480)])])
    tokens = TOK.tokens(TOK.encode(s))
    # 40 quarters of silence = 480 steps = 10 shifts of 48 steps (whole notes)
    assert tokens.count("TIME_SHIFT_48") == 10
    assert "TIME_SHIFT_12" in tokens
    round_trip(TOK, s)


def test_triplets_and_sixteenths_are_exact() -> None:
    starts = [0, 160, 320, 480, 600, 720, 840]
    s = Score(tracks=[Track(make_notes(starts, [160, 160, 160, 120, 120, 120, 120], [60] * 7))])
    assert_same_notes(TOK.prepare(s), s, check_velocity=False)
    round_trip(TOK, s)


def test_encode_without_bos_eos_and_token_order() -> None:
    s = Score(tracks=[track([Note(60, 0, 480, 64), Note(62, 480, 480, 64)])])
    ids = TOK.encode(s, bos=False, eos=False)
    assert TOK.tokens(ids) == [
        "PROGRAM_0",
        "VELOCITY_62",
        "NOTE_ON_60",
        "TIME_SHIFT_12",
        "NOTE_OFF_60",  # offsets before onsets at one time
        "NOTE_ON_62",  # velocity unchanged: no VELOCITY token
        "TIME_SHIFT_12",
        "NOTE_OFF_62",
    ]


def test_bach_chorale() -> None:
    from musegen.io import load

    score = load("corpus:bach/bwv66.6")
    assert score.n_notes > 150
    out = round_trip(TOK, score)
    assert len(out.tracks) == 1  # four program-0 voices merge into one track (with unisons)
    assert out.n_notes == score.n_notes  # on the grid already: nothing lost
    voiced = Score(tracks=[Track(t.notes, program=52 + i) for i, t in enumerate(score.tracks)])
    assert len(round_trip(TOK, voiced).tracks) == 4


def test_encode_leaves_the_score_alone_and_cleans_bad_notes() -> None:
    notes = make_notes([-100, 0, 480], [480, 480, 480], [60, 200, 62], [0, 64, 300])
    s = Score(tracks=[Track(notes.copy())])
    out = round_trip(TOK, s)
    assert np.array_equal(s.tracks[0].notes, notes)
    got = [(n.pitch, n.start, n.duration) for n in out.tracks[0].note_list()]
    assert got == [(60, 0, 400), (62, 480, 480)]  # pitch 200 dropped, onset clamped to 0
    assert out.tracks[0].notes["velocity"].tolist() == [2, 126]  # velocities clipped to 1..127


# ---------------------------------------------------------------------- decoding
def default_velocity(tok: EventTokenizer) -> int:
    """The velocity a note gets before any VELOCITY token: the default, at its bin centre."""
    one = Score(tracks=[track([Note(60, 0, 480, tok.config.default_velocity)])])
    return int(tok.prepare(one).tracks[0].notes["velocity"][0])


def reference_decode(tok: EventTokenizer, ids: list[int]) -> dict:
    """Slow per-token decoder with the documented semantics, for the equivalence test."""
    labels = tok.tokens(ids)
    t, track_code, vel = 0, 0, default_velocity(tok)
    open_notes: dict[tuple[int, int], list[tuple[int, int]]] = {}
    notes: dict[tuple[int, bool], list[tuple[int, int, int, int]]] = {}

    def add(code: int, pitch: int, start: int, end: int, v: int) -> None:
        key = (code % 128, code == 128)
        notes.setdefault(key, []).append((start, end - start, pitch, v))

    for label in labels:
        if label == "EOS":
            break
        name, _, arg = label.rpartition("_")
        if label.startswith("TIME_SHIFT"):
            t += int(arg) * tok.step_ticks
        elif name == "PROGRAM":
            track_code = 128 if arg == "DRUMS" else int(arg)
        elif name == "VELOCITY":
            vel = int(arg)
        elif name == "NOTE_ON":
            heapq.heappush(open_notes.setdefault((track_code, int(arg)), []), (t, vel))
        elif name == "NOTE_OFF":
            heap = open_notes.get((track_code, int(arg)), [])
            if heap and heap[0][0] < t:  # oldest open note began before now
                start, v = heapq.heappop(heap)
                add(track_code, int(arg), start, t, v)
    for (code, pitch), heap in open_notes.items():
        for start, v in heap:
            add(code, pitch, start, max(t, start + tok.step_ticks), v)
    return {k: sorted(v) for k, v in notes.items()}


def vectorised_notes(score: Score) -> dict:
    return {k: sorted(map(tuple, a.tolist())) for k, a in note_set(score).items()}


def test_decode_matches_reference_on_junk() -> None:
    rng = np.random.default_rng(7)
    tok = EventTokenizer(max_shift_steps=4)
    on, off = tok.vocab.offset("NOTE_ON"), tok.vocab.offset("NOTE_OFF")
    for _ in range(300):
        # few pitches and programs, so that overlaps and stray offsets are common
        pool = np.concatenate(
            [
                on + rng.integers(58, 62, 5),
                off + rng.integers(58, 62, 5),
                np.arange(*tok.vocab.span("TIME_SHIFT")),
                tok.vocab.offset("VELOCITY") + rng.integers(0, 32, 2),
                tok.vocab.offset("PROGRAM") + np.array([0, 5, 128]),
                [PAD, BOS],
            ]
        )
        ids = rng.choice(pool, size=int(rng.integers(0, 80))).tolist()
        out = tok.decode(ids)
        assert vectorised_notes(out) == reference_decode(tok, ids)
        assert_same_notes(tok.prepare(out), out)  # decoded scores are already canonical


def test_decode_is_tolerant() -> None:
    v = TOK.vocab
    ids = [
        PAD,
        BOS,
        v.id("NOTE_OFF_60"),  # nothing open: ignored
        v.id("NOTE_ON_60"),
        v.id("NOTE_OFF_60"),  # begun at this very time: ignored
        v.id("TIME_SHIFT_12"),
        BOS,
        v.id("NOTE_OFF_60"),
        v.id("NOTE_ON_62"),  # never closed: lasts to the end
        v.id("TIME_SHIFT_24"),
        EOS,
        v.id("NOTE_ON_70"),  # after EOS: not decoded
    ]
    out = TOK.decode(np.array(ids))
    got = [(n.pitch, n.start, n.duration, n.velocity) for n in out.tracks[0].note_list()]
    vel = default_velocity(TOK)
    assert vel == 62  # 64 falls in the bin centred on 62
    assert got == [(60, 0, 480, vel), (62, 480, 960, vel)]


def test_decode_rejects_out_of_vocabulary_ids() -> None:
    with pytest.raises(MusegenError, match="outside"):
        TOK.decode([BOS, len(TOK)])
    with pytest.raises(MusegenError):
        TOK.decode([-1])


# ---------------------------------------------------------------------- grammar
def walk_weights(tok: EventTokenizer) -> np.ndarray:
    """Sampling weights for random walks: few pitches (so notes overlap), likely endings."""
    w = np.ones(len(tok), np.float64)
    lo, hi = tok.vocab.span("NOTE_ON")
    w[lo:hi] = 0.0
    w[lo + 56 : lo + 64] = 1.0
    w[slice(*tok.vocab.span("NOTE_OFF"))] = 4.0
    w[EOS] = 20.0
    return w


def test_grammar_random_walks_always_decode() -> None:
    rng = np.random.default_rng(0)
    tok = EventTokenizer(max_shift_steps=6, tempo_bins=4)
    weights = walk_weights(tok)
    finished = 0
    for _ in range(1000):
        g, ids = tok.grammar(), []
        for _ in range(int(rng.integers(1, 100))):
            cdf = np.cumsum(g.mask() * weights)  # only allowed tokens
            token = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
            g.step(token)
            ids.append(token)
        out = tok.decode(ids)
        for t in out.tracks:
            assert (t.notes["duration"] >= tok.step_ticks).all()
        if g.done:  # a finished walk closed every note: same notes after re-encoding
            finished += 1
            assert vectorised_notes(out) == reference_decode(tok, ids)
            assert_same_notes(tok.decode(tok.encode(out)), out)
    assert finished > 100


def test_grammar_mask_agrees_with_step() -> None:
    rng = np.random.default_rng(1)
    g = TOK.grammar()
    for _ in range(400):
        mask = g.mask()
        token = (
            int(rng.integers(len(TOK)))
            if rng.random() < 0.5
            else int(rng.choice(np.flatnonzero(mask)))
        )
        probe = copy.deepcopy(g)
        try:
            probe.step(token)
            allowed = True
        except ValueError:
            allowed = False
        assert allowed == mask[token], TOK.vocab.token(token)
        if allowed:
            g = probe


def test_grammar_rules() -> None:
    v = TOK.vocab
    g = TOK.grammar()
    assert np.flatnonzero(g.mask()).tolist() == [BOS]
    with pytest.raises(ValueError):
        g.step(v.id("NOTE_ON_60"))
    g.step(BOS)
    assert not g.mask()[v.span("NOTE_OFF")[0] : v.span("NOTE_OFF")[1]].any()
    assert g.mask()[EOS]
    g.feed([v.id("PROGRAM_DRUMS"), v.id("NOTE_ON_36")])
    assert not g.mask()[v.id("NOTE_OFF_36")]  # begun at the current time
    assert not g.mask()[EOS]  # a note is open
    g.step(v.id("TIME_SHIFT_1"))
    assert g.mask()[v.id("NOTE_OFF_36")]
    g.step(v.id("PROGRAM_0"))
    assert not g.mask()[v.id("NOTE_OFF_36")]  # open in another track
    with pytest.raises(ValueError, match="open"):
        g.step(EOS)
    g.feed([v.id("PROGRAM_DRUMS"), v.id("NOTE_OFF_36"), EOS])
    assert g.done
    assert np.flatnonzero(g.mask()).tolist() == [PAD]
    g.step(PAD)
    with pytest.raises(ValueError):
        g.step(v.id("NOTE_ON_60"))


# ---------------------------------------------------------------------- config
def test_config_json_round_trip() -> None:
    tok = get_tokenizer("events", steps_per_quarter=24, velocity_bins=16, tempo_bins=8)
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert isinstance(again, EventTokenizer)
    assert again.config == tok.config
    assert again.vocab.labels() == tok.vocab.labels()
    assert len(EventTokenizer(programs=False, velocity_bins=0)) == 3 + 128 + 128 + 48


@pytest.mark.parametrize(
    "bad",
    [
        {"steps_per_quarter": 7},
        {"max_shift_steps": 0},
        {"velocity_bins": 200},
        {"tempo_bins": 300},
        {"min_qpm": 200.0, "max_qpm": 100.0},
        {"bogus": 1},
    ],
)
def test_config_errors_say_what_to_fix(bad: dict) -> None:
    with pytest.raises(MusegenError):
        EventTokenizer(**bad)
    assert EventConfig().steps_per_quarter == 12
