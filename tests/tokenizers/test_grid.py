"""Grid tokenizers: piano roll and SATB grids — round trips, grammar, real benchmark data."""

from __future__ import annotations

import json
from fractions import Fraction
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.errors import MusegenError
from musegen.score import VOICES, Score, Track, make_notes
from musegen.tokenizers import get_tokenizer, tokenizer_from_dict
from musegen.tokenizers.grid import (
    ONSET,
    SILENT,
    SUSTAIN,
    RollTokenizer,
    SatbTokenizer,
    from_binary_roll,
    score_to_steps,
    steps_to_score,
    to_binary_roll,
)
from strategies import assert_same_notes, note_arrays, scores

DATA = Path(__file__).parents[2] / ".." / "shared" / "data"
JSB_STEPS = DATA / "jsb_chorales" / "Jsb16thSeparated.json"
JSB_MAT = DATA / "poly_music" / "JSB_Chorales.mat"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"benchmark data {path.resolve()} not found (expected ../shared/data)")
    return path


@cache
def jsb_steps() -> dict[str, list]:
    return json.loads(need(JSB_STEPS).read_text())


def trim_silence(grid: np.ndarray) -> np.ndarray:
    """Drop trailing all-silent rows (a decoded score ends where its last note ends)."""
    sounding = np.flatnonzero(grid.any(axis=1))
    return grid[: sounding[-1] + 1 if len(sounding) else 0]


def random_walk(tokenizer, n_cells: int, seed: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Cells sampled uniformly from what the grammar allows at each step."""
    rng = np.random.default_rng(seed)
    grammar = tokenizer.grammar()
    out = []
    for _ in range(n_cells):
        token = int(rng.choice(np.flatnonzero(grammar.mask())))
        grammar.step(token)
        out.append(token)
    return np.array(out, dtype=np.int64)


def voice_notes(score: Score) -> dict[str, np.ndarray]:
    return {t.voice: t.notes for t in score.tracks if t.voice}


def assert_same_voices(a: Score, b: Score) -> None:
    va, vb = voice_notes(a), voice_notes(b)
    assert va.keys() == vb.keys()
    for v in va:
        assert np.array_equal(va[v], vb[v]), f"voice {v} differs"


# =========================================================================== piano roll
# note grids at several resolutions (one off the roll's frames), sparse or crowded on few keys
# so that same-pitch overlaps, chords and out-of-range notes all occur
GRIDS = [(480, 120), (96, 24), (220, 55), (480, 37)]
CROWDED = {"max_notes": 30, "max_start_steps": 24, "max_dur_steps": 8, "pitch_range": (104, 110)}
any_grid_scores = st.tuples(st.sampled_from(GRIDS), st.sampled_from([{}, CROWDED])).flatmap(
    lambda c: scores(tpq=c[0][0], grid=c[0][1], allow_drums=False, **c[1])
)


@given(any_grid_scores, st.booleans())
@settings(max_examples=80, deadline=None)
def test_roll_round_trip_matches_prepare(score: Score, onsets: bool) -> None:
    tok = RollTokenizer(onsets=onsets)
    grid = tok.encode(score)
    assert grid.dtype == np.uint8 and grid.ndim == 2 and grid.shape[1] == 88
    assert_same_notes(tok.decode(grid), tok.prepare(score), check_velocity=False)
    tok.grammar().feed(grid.ravel())  # every encoded grid is grammatical


@given(scores(grid=120, allow_drums=False), st.booleans())
@settings(max_examples=50, deadline=None)
def test_roll_prepare_is_canonical(score: Score, onsets: bool) -> None:
    tok = RollTokenizer(onsets=onsets)
    prepared = tok.prepare(score)
    assert_same_notes(tok.prepare(prepared), prepared)
    assert np.array_equal(tok.encode(prepared), tok.encode(score))


def test_roll_cells_and_repeated_notes() -> None:
    # two C4 quarters back to back, a D4 over the second, a sustained E4
    s = Score(tracks=[Track(make_notes([0, 480, 480, 0], [480, 480, 240, 960], [60, 60, 62, 64]))])
    tok = RollTokenizer(steps_per_quarter=2, low=60, high=64)
    expected = [
        [ONSET, SILENT, SILENT, SILENT, ONSET],
        [SUSTAIN, SILENT, SILENT, SILENT, SUSTAIN],
        [ONSET, SILENT, ONSET, SILENT, SUSTAIN],
        [SUSTAIN, SILENT, SILENT, SILENT, SUSTAIN],
    ]
    assert tok.encode(s).tolist() == expected
    assert_same_notes(tok.decode(tok.encode(s)), s)
    binary = RollTokenizer(steps_per_quarter=2, low=60, high=64, onsets=False)
    merged = binary.decode(binary.encode(s)).tracks[0].notes
    assert merged[merged["pitch"] == 60][["start", "duration"]].tolist() == [(0, 960)]


def test_roll_overlapping_notes_are_cut_by_new_onsets() -> None:
    # C4 for 4 frames, a second C4 struck in frame 1 for 1 frame: the roll keeps two notes,
    # the second lasting to the end of what sounded
    s = Score(tracks=[Track(make_notes([0, 120], [480, 120], [60, 60]))])
    tok = RollTokenizer(low=60, high=60)
    notes = tok.prepare(s).tracks[0].notes
    assert notes[["start", "duration"]].tolist() == [(0, 120), (120, 360)]
    assert_same_notes(tok.decode(tok.encode(s)), tok.prepare(s))


def test_roll_merges_tracks_drops_drums_and_out_of_range() -> None:
    s = Score(
        tracks=[
            Track(make_notes([0, 0], [480, 480], [60, 120]), program=0),
            Track(make_notes([480], [480], [64]), program=40),
            Track(make_notes([0], [480], [36]), is_drum=True),
        ]
    )
    tok = RollTokenizer()
    prepared = tok.prepare(s)
    assert len(prepared.tracks) == 1
    assert prepared.tracks[0].notes["pitch"].tolist() == [60, 64]
    assert_same_notes(tok.decode(tok.encode(s)), prepared)


def test_roll_decode_accepts_flat_cells_and_rejects_bad_ones() -> None:
    tok = RollTokenizer(low=60, high=63)
    grid = np.array([[2, 0, 0, 2], [1, 2, 0, 1]], dtype=np.uint8)
    assert_same_notes(tok.decode(grid.ravel()), tok.decode(grid))
    with pytest.raises(MusegenError, match="whole number"):
        tok.decode(grid.ravel()[:-1])
    with pytest.raises(MusegenError, match="shape"):
        tok.decode(np.zeros((2, 5), dtype=np.uint8))
    with pytest.raises(MusegenError, match="outside"):
        RollTokenizer(low=60, high=63, onsets=False).decode(grid)


def test_roll_empty_score() -> None:
    tok = RollTokenizer()
    grid = tok.encode(Score())
    assert grid.shape == (0, 88)
    assert tok.decode(grid).is_empty()


@pytest.mark.parametrize("onsets", [True, False])
def test_roll_grammar_random_walks_decode(onsets: bool) -> None:
    tok = RollTokenizer(low=48, high=59, onsets=onsets)
    for seed in range(20):
        walk = random_walk(tok, 12 * 16, seed).reshape(-1, 12)
        back = tok.encode(tok.decode(walk))
        assert np.array_equal(back, trim_silence(walk))


def test_roll_grammar_rules() -> None:
    g = RollTokenizer(low=60, high=61).grammar()
    assert g.mask().tolist() == [True, False, True]  # no sustain in the first frame
    g.feed([ONSET, SILENT])
    assert g.mask().tolist() == [True, True, True]  # key 60 sounded in the frame before
    g.step(SUSTAIN)
    with pytest.raises(ValueError, match="not allowed"):
        g.step(SUSTAIN)  # key 61 was silent
    assert RollTokenizer(onsets=False).grammar().mask().tolist() == [True, True]


def test_binary_roll_jsb_round_trip() -> None:
    from scipy.io import loadmat

    mat = loadmat(need(JSB_MAT))
    first = mat["traindata"][0, 0]
    assert first.shape[1] == 88
    assert np.array_equal(to_binary_roll(from_binary_roll(first, 1), 1), first)
    for split in ("traindata", "validdata", "testdata"):
        for roll in mat[split][0]:
            back = to_binary_roll(from_binary_roll(roll, 1), 1, n_frames=len(roll))
            assert np.array_equal(back, roll)


def test_binary_roll_keeps_trailing_silence_on_request() -> None:
    roll = np.zeros((6, 88), dtype=np.uint8)
    roll[1:3, 39] = 1
    score = from_binary_roll(roll, 2)
    assert score.tracks[0].notes[["start", "duration", "pitch"]].tolist() == [(240, 480, 60)]
    assert to_binary_roll(score, 2).shape == (3, 88)
    assert np.array_equal(to_binary_roll(score, 2, n_frames=6), roll)


# =========================================================================== SATB
SATB = SatbTokenizer()
RANGES = SATB.config.ranges


@st.composite
def satb_grids(draw: st.DrawFn, hold: bool) -> np.ndarray:
    """A grammatical [steps, 4] id grid with default voice ranges."""
    n = draw(st.integers(0, 40))
    tok = SatbTokenizer(hold=hold)
    cols = []
    for low, high in RANGES:
        cells = st.one_of(
            st.just(0), st.integers(low + 1, high + 1), *([st.just(tok.hold_id)] if hold else [])
        )
        col = np.array(draw(st.lists(cells, min_size=n, max_size=n)), dtype=np.int64)
        if hold:  # HOLD only after a sounding cell: turn orphans into silence
            sounding = np.zeros(n, dtype=bool)
            for i in range(n):
                if col[i] == tok.hold_id and not (i and sounding[i - 1]):
                    col[i] = 0
                sounding[i] = col[i] != 0
        cols.append(col)
    return np.stack(cols, axis=1) if n else np.zeros((0, 4), np.int64)


@given(st.booleans().flatmap(lambda h: st.tuples(st.just(h), satb_grids(h))))
@settings(max_examples=60, deadline=None)
def test_satb_grid_round_trip(case: tuple[bool, np.ndarray]) -> None:
    hold, grid = case
    tok = SatbTokenizer(hold=hold)
    tok.grammar().feed(grid.ravel())
    score = tok.decode(grid)
    assert [t.voice for t in score.tracks] == list(VOICES)
    assert [t.name for t in score.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    encoded = tok.encode(score)
    assert encoded.dtype == np.int16
    assert np.array_equal(encoded, trim_silence(grid))
    assert_same_voices(tok.decode(encoded), score)  # Score -> grid -> Score
    assert_same_voices(tok.prepare(score), score)


@st.composite
def choir_scores(draw: st.DrawFn, tpq: int = 480, grid: int = 120) -> Score:
    """Four voice-labelled tracks with chords, overlaps and notes outside the voice ranges."""
    tracks = [
        Track(
            draw(
                note_arrays(
                    max_notes=12, grid=grid, max_start_steps=40, pitch_range=(lo - 4, hi + 4)
                )
            ),
            voice=v,
        )
        for v, (lo, hi) in zip(VOICES, RANGES, strict=True)
    ]
    order = draw(st.permutations(range(4)))
    return Score(tpq=tpq, tracks=[tracks[i] for i in order])


def frame_of(tick: int, tpq: int, spq: int) -> int:
    return int(Fraction(tick * spq, tpq) + Fraction(1, 2))  # round half up, exactly


def reference_satb(tok: SatbTokenizer, score: Score) -> np.ndarray:
    """Slow per-step SATB encoding of a voice-labelled score, written independently."""
    spq, hold = tok.config.steps_per_quarter, tok.config.hold
    voices = []
    for v, (lo, hi) in zip(VOICES, tok.config.ranges, strict=True):
        notes = []
        for t in score.tracks:
            if t.voice != v:
                continue
            for n in t.note_list():
                if lo <= n.pitch <= hi:
                    on = frame_of(n.start, score.tpq, spq)
                    off = max(frame_of(n.end, score.tpq, spq), on + 1)
                    notes.append((n.pitch, on, off))
        voices.append(notes)
    n_steps = max((off for notes in voices for _, _, off in notes), default=0)
    grid = np.zeros((n_steps, 4), dtype=np.int64)
    for v, notes in enumerate(voices):
        prev = None
        for t in range(n_steps):
            here = [(p, on == t) for p, on, off in notes if on <= t < off]
            if not here:
                prev = None
                continue
            if v < 2:
                pitch, onset = max(here)
            else:
                pitch, onset = min(here, key=lambda x: (x[0], not x[1]))
            grid[t, v] = tok.hold_id if hold and pitch == prev and not onset else pitch + 1
            prev = pitch
    return grid


@given(choir_scores(), st.booleans())
@settings(max_examples=80, deadline=None)
def test_satb_encode_matches_reference(score: Score, hold: bool) -> None:
    tok = SatbTokenizer(hold=hold)
    grid = tok.encode(score)
    assert np.array_equal(grid, reference_satb(tok, score))
    tok.grammar().feed(grid.ravel())  # every encoded grid is grammatical
    prepared = tok.prepare(score)
    assert_same_voices(tok.prepare(prepared), prepared)
    assert_same_voices(tok.decode(grid), prepared)


@given(st.sampled_from([(96, 24), (220, 55), (480, 37)]).flatmap(lambda g: choir_scores(*g)))
@settings(max_examples=30, deadline=None)
def test_satb_quantizes_other_resolutions(score: Score) -> None:
    assert np.array_equal(SATB.encode(score), reference_satb(SATB, score))


def test_satb_hold_distinguishes_repeated_notes() -> None:
    notes = make_notes([0, 480], [480, 480], [72, 72])
    score = Score(tracks=[Track(notes, voice="S")])
    coconet = SatbTokenizer()
    assert coconet.encode(score)[:, 0].tolist() == [73] * 8
    assert coconet.prepare(score).voices()["S"].notes[["start", "duration"]].tolist() == [(0, 960)]
    held = SatbTokenizer(hold=True)
    h = held.hold_id
    assert held.encode(score)[:, 0].tolist() == [73, h, h, h, 73, h, h, h]
    assert_same_voices(held.decode(held.encode(score)), held.prepare(score))
    assert len(held.prepare(score).voices()["S"]) == 2


def test_satb_voice_assignment() -> None:
    def track(pitch: int, **kw: object) -> Track:
        return Track(make_notes([0], [480], [pitch]), **kw)  # type: ignore[arg-type]

    unlabelled = Score(tracks=[track(55), track(72), track(43), track(64)])
    assert SATB.encode(unlabelled)[0].tolist() == [73, 65, 56, 44]
    labelled = Score(
        tracks=[track(55, voice="T"), track(72, voice="S"), track(64, voice="A"), track(43)]
    )
    assert SATB.encode(labelled)[0].tolist() == [73, 65, 56, 0]  # unlabelled track ignored
    with pytest.raises(MusegenError, match="exactly 4 pitched tracks"):
        SATB.encode(Score(tracks=[track(72), track(64), track(55)]))
    # a chord: soprano keeps its top note, bass its bottom one
    chord = Score(
        tracks=[
            Track(make_notes([0, 0], [480, 480], [72, 76]), voice="S"),
            Track(make_notes([0, 0], [480, 480], [40, 48]), voice="B"),
        ]
    )
    assert SATB.encode(chord)[0].tolist() == [77, 0, 0, 41]


def test_satb_grammar_rules() -> None:
    tok = SatbTokenizer(hold=True)
    g = tok.grammar()
    mask = g.mask()
    lo, hi = RANGES[0]
    assert mask[0] and not mask[tok.hold_id]
    assert mask[lo + 1 : hi + 2].all() and not mask[lo] and not mask[hi + 2]
    g.feed([lo + 1, 0, 0, 0])
    assert g.mask()[tok.hold_id]
    g.step(tok.hold_id)
    with pytest.raises(ValueError, match="not allowed"):
        g.step(tok.hold_id)  # alto was silent
    with pytest.raises(ValueError, match="not allowed"):
        SatbTokenizer().grammar().step(1 + 30)  # far below the soprano range


@pytest.mark.parametrize("hold", [False, True])
def test_satb_grammar_random_walks_decode(hold: bool) -> None:
    tok = SatbTokenizer(hold=hold)
    for seed in range(20):
        walk = random_walk(tok, 4 * 32, seed)
        back = tok.encode(tok.decode(walk))
        assert np.array_equal(back, trim_silence(walk.reshape(-1, 4)))


def test_satb_decode_rejects_bad_input() -> None:
    with pytest.raises(MusegenError, match="whole number"):
        SATB.decode([1, 2, 3])
    with pytest.raises(MusegenError, match="outside"):
        SATB.decode([[1, 2, 3, 129]])  # HOLD is not in the Coconet vocabulary


def test_steps_helpers_validate() -> None:
    assert score_to_steps(steps_to_score([])) == []
    with pytest.raises(MusegenError, match=r"\[S, A, T, B\]"):
        steps_to_score([[60, 55, 50]])
    with pytest.raises(MusegenError, match="-1"):
        steps_to_score([[60, 55, 50, -2]])


def test_jsb_steps_round_trip() -> None:
    pieces = jsb_steps()["valid"][:5]
    for hold in (False, True):
        tok = SatbTokenizer(hold=hold)
        for piece in pieces:
            score = steps_to_score(piece)
            grid = tok.encode(score)
            assert grid.shape == (len(piece), 4)
            tok.grammar().feed(grid.ravel())
            assert score_to_steps(tok.decode(grid)) == piece


def test_default_ranges_cover_jsb() -> None:
    steps = np.array([s for split in jsb_steps().values() for p in split for s in p])
    for v, (lo, hi) in enumerate(RANGES):
        col = steps[:, v][steps[:, v] >= 0]
        assert lo < col.min() and col.max() < hi


# =========================================================================== config
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("roll", {"steps_per_quarter": 2, "low": 36, "high": 96, "onsets": False}),
        ("satb", {"hold": True, "soprano": (55, 86), "velocity": 90}),
    ],
)
def test_config_json_round_trip(name: str, options: dict) -> None:
    tok = get_tokenizer(name, **options)
    back = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert type(back) is type(tok) and back.config == tok.config
    assert back.vocab.labels() == tok.vocab.labels()
    score = Score(
        tracks=[Track(make_notes([0], [480], [60 + i]), voice=v) for i, v in enumerate("BTAS")]
    )
    assert np.array_equal(back.encode(score), tok.encode(score))


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("roll", {"tracks": "separate"}, "merge"),
        ("roll", {"low": 90, "high": 80}, "low <= high"),
        ("roll", {"steps_per_quarter": 7}, "divide 480"),
        ("satb", {"tenor": (70, 50)}, "tenor"),
        ("satb", {"velocity": 0}, "velocity"),
        ("satb", {"colour": "red"}, "unknown"),
    ],
)
def test_config_errors(name: str, options: dict, match: str) -> None:
    with pytest.raises(MusegenError, match=match):
        get_tokenizer(name, **options)


def test_vocab_labels() -> None:
    assert RollTokenizer().tokens([0, 1, 2]) == ["SILENT", "SUSTAIN", "ONSET"]
    assert RollTokenizer(onsets=False).tokens([0, 1]) == ["SILENT", "ON"]
    tok = SatbTokenizer(hold=True)
    assert len(tok) == 130 and tok.tokens([0, 61, 129]) == ["SILENT", "pitch_60", "HOLD"]
