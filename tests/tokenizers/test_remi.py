"""REMI tokenizer: round trip, canonical form, tolerant decoding, grammar, config."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.errors import MusegenError
from musegen.score import Note, Score, Tempo, TimeSignature, Track
from musegen.tokenizers import BOS, EOS, PAD, get_tokenizer, tokenizer_from_dict
from musegen.tokenizers.remi import (
    K_BAR,
    K_DUR,
    K_PITCH,
    K_POS,
    K_PROG,
    K_TEMPO,
    K_TS,
    K_VEL,
    RemiConfig,
    RemiTokenizer,
    _first_of_runs,
    _sorted_unique,
)
from strategies import assert_same_notes, scores

TOK = RemiTokenizer()
VARIANTS = [
    TOK,
    RemiTokenizer(velocity_bins=0, tempo_bins=0),
    RemiTokenizer(programs=False, positions_per_quarter=4, max_duration_quarters=2),
    RemiTokenizer(velocity_bins=5, tempo_bins=3, time_signatures=["4/4", "3/4"]),
    RemiTokenizer(unisons=1, tempo_grid="log"),  # what a config saved before them means
    RemiTokenizer(unisons=2, velocity_bins=0, tempo_grid="log", tempo_bins=7),
]
LEGACY = VARIANTS[4]


def round_trip(tok: RemiTokenizer, score: Score) -> np.ndarray:
    """Encode, check decode == prepare (notes and maps), that prepare is a fixed point and
    that the grammar accepts the ids; return the ids."""
    ids = tok.encode(score)
    back, ref = tok.decode(ids), tok.prepare(score)
    assert_same_notes(back, ref)
    assert back.tempos == ref.tempos
    assert back.time_signatures == ref.time_signatures
    assert np.array_equal(tok.encode(ref), ids)
    assert tok.grammar().feed(ids).done
    return ids


def one_track(*notes: Note, **score_kwargs: object) -> Score:
    return Score(tracks=[Track.from_notes(notes)], **score_kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------- round trip
@given(scores(), st.sampled_from(VARIANTS))
@settings(max_examples=100, deadline=None)
def test_round_trip_random_scores(score: Score, tok: RemiTokenizer) -> None:
    round_trip(tok, score)


@given(scores(tpq=384, grid=7, max_tracks=2))
@settings(max_examples=40, deadline=None)
def test_round_trip_off_grid_resolution(score: Score) -> None:
    round_trip(TOK, score)


def test_token_order() -> None:
    s = Score(
        tracks=[
            Track.from_notes([Note(64, 0, 480, 80), Note(60, 0, 480, 80)], program=1),
            Track.from_notes([Note(36, 0, 120, 100)], is_drum=True),
        ],
        tempos=[Tempo(0, 60)],
        time_signatures=[TimeSignature(0, 3, 4)],
    )
    tokens = TOK.tokens(TOK.encode(s))
    assert tokens[:5] == ["BOS", "Bar", "TimeSig_3/4", "Position_0", "Tempo_60"]
    assert tokens[5:13] == [
        "Program_1", "Pitch_60", "Velocity_78", "Duration_1",
        "Pitch_64", "Velocity_78", "Duration_1", "Program_drums",
    ]  # fmt: skip
    assert tokens[13:] == ["Pitch_36", "Velocity_98", "Duration_1/4", "EOS"]
    assert TOK.encode(s, bos=False, eos=False).tolist() == TOK.encode(s)[1:-1].tolist()


def test_overlapping_same_pitch_notes_survive_and_copies_up_to_unisons() -> None:
    s = one_track(Note(60, 0, 960), *[Note(60, 480, 960)] * 6)
    for tok, copies in ((TOK, 4), (VARIANTS[5], 2), (LEGACY, 1)):
        round_trip(tok, s)
        notes = tok.decode(tok.encode(s)).tracks[0].notes
        assert notes["start"].tolist() == [0] + [480] * copies
        assert notes["duration"].tolist() == [960] * (1 + copies)


def test_empty_bars_get_bar_tokens() -> None:
    s = one_track(Note(60, 0, 480), Note(62, 3 * 1920 + 480, 480))
    tokens = TOK.tokens(round_trip(TOK, s))
    assert tokens.count("Bar") == 4
    assert TOK.decode(TOK.encode(s)).tracks[0].notes["start"].tolist() == [0, 3 * 1920 + 480]


def test_three_four_to_six_eight() -> None:
    sigs = [TimeSignature(0, 3, 4), TimeSignature(2 * 1440, 6, 8)]
    s = one_track(
        Note(60, 0, 480), Note(62, 1440, 480), Note(64, 2880 + 720, 240), time_signatures=sigs
    )
    tokens = TOK.tokens(round_trip(TOK, s))
    bars = [i for i, t in enumerate(tokens) if t == "Bar"]
    assert len(bars) == 3
    assert tokens[bars[0] + 1] == "TimeSig_3/4"
    assert tokens[bars[1] + 1] == "Position_0"  # no repeated meter
    assert tokens[bars[2] + 1 : bars[2] + 3] == ["TimeSig_6/8", "Position_18"]
    assert TOK.decode(TOK.encode(s)).time_signatures == sigs


def test_meter_change_moves_to_next_bar_line_and_unsupported_is_mapped() -> None:
    s = one_track(
        Note(60, 0, 480),
        Note(62, 7200, 480),
        time_signatures=[
            TimeSignature(0, 4, 4),
            TimeSignature(480, 3, 4),
            TimeSignature(3840, 11, 8),
        ],
    )
    round_trip(TOK, s)
    # 3/4 waits for the bar line at 1920; 11/8 (5.5 quarters) becomes 12/8 at the next 3/4 line
    assert TOK.prepare(s).time_signatures == [
        TimeSignature(0, 4, 4), TimeSignature(1920, 3, 4), TimeSignature(1920 + 2 * 1440, 12, 8),
    ]  # fmt: skip
    # a change at or after the last note's end has no bar to sit on
    late = one_track(Note(60, 0, 480), time_signatures=[TimeSignature(1920, 3, 4)])
    assert TOK.prepare(late).time_signatures == [TimeSignature(0, 4, 4)]


def test_drums_stay_apart_from_program_zero() -> None:
    s = Score(
        tracks=[
            Track.from_notes([Note(60, 0, 480)]),
            Track.from_notes([Note(36, 0, 120), Note(42, 240, 120)], is_drum=True),
        ]
    )
    round_trip(TOK, s)
    back = TOK.decode(TOK.encode(s))
    assert [(t.program, t.is_drum, len(t)) for t in back.tracks] == [(0, False, 1), (0, True, 2)]


def test_empty_score_keeps_its_maps() -> None:
    s = Score(tempos=[Tempo(0, 90)], time_signatures=[TimeSignature(0, 6, 8)])
    ids = round_trip(TOK, s)
    assert TOK.tokens(ids) == ["BOS", "Bar", "TimeSig_6/8", "Position_0", "Tempo_90", "EOS"]
    assert TOK.decode(ids).n_notes == 0
    round_trip(TOK, Score(tpq=96))


def test_prepare_clips_and_bins() -> None:
    s = one_track(Note(60, 10, 20 * 480, 3), Note(100, 482, 1, 127), Note(61, -480, 480))
    p = TOK.prepare(s)
    notes = p.tracks[0].notes
    assert notes["start"].tolist() == [0, 480]  # 10 -> 0, 482 -> 480; negative onset dropped
    assert notes["duration"].tolist() == [8 * 480, 40]  # clipped to 8 quarters; >= one step
    assert notes["velocity"].tolist() == [2, 126]  # bin centres
    assert p.tempos == [Tempo(0, 120.0)]  # no tempo: 120
    assert LEGACY.prepare(s).tempos == [Tempo(0, 123.0)]  # the log grid's bin of 120
    assert p.tpq == 480 and p.key_signatures == []


def test_tempo_changes_are_binned_and_deduplicated() -> None:
    s = one_track(
        Note(60, 0, 4 * 1920),
        tempos=[Tempo(0, 120), Tempo(480, 121), Tempo(960, 60), Tempo(50 * 1920, 200)],
    )
    p = TOK.prepare(s)
    assert [t.time for t in p.tempos] == [0, 960]  # 121 is in 120's bin; bar 50 is past the end
    tokens = TOK.tokens(round_trip(TOK, s))
    assert tokens.count("Position_24") == 1  # a tempo change makes a position of its own


# ------------------------------------------------------------------------- tolerant decoding
def test_decode_ignores_junk() -> None:
    v = TOK.vocab
    bar, pos0, prog0 = v.id("Bar"), v.id("Position_0"), v.id("Program_0")
    p60, vel, dur = v.id("Pitch_60"), v.id("Velocity_62"), v.id("Duration_1")
    good = [bar, pos0, prog0, p60, vel, dur]
    assert TOK.decode([PAD, BOS, *good]).n_notes == 1
    assert TOK.decode([BOS, *good, EOS, p60, vel, dur]).n_notes == 1  # stops at EOS
    assert TOK.decode([BOS, bar, pos0, prog0, p60, v.id("Position_3"), dur]).n_notes == 0
    assert TOK.decode([BOS, p60, vel, dur, *good]).n_notes == 1  # a note before any bar
    assert TOK.decode([bar, pos0, p60, vel, dur]).n_notes == 0  # no program at this position
    assert TOK.decode([bar, v.id("Position_83"), prog0, p60, vel, dur]).n_notes == 0  # > 4/4
    assert TOK.decode([]).n_notes == 0


def test_decode_rejects_ids_outside_vocabulary() -> None:
    with pytest.raises(MusegenError, match="outside"):
        TOK.decode([BOS, len(TOK)])
    with pytest.raises(MusegenError, match="outside"):
        TOK.decode(np.array([-1]))


def test_decode_survives_random_ids() -> None:
    rng = np.random.default_rng(0)
    for tok in VARIANTS:
        for _ in range(50):
            back = tok.decode(rng.integers(0, len(tok), rng.integers(0, 300)))
            round_trip(tok, back)


# ------------------------------------------------------------------------- grammar
@pytest.mark.parametrize("tok", VARIANTS, ids=lambda t: str(len(t)))
def test_grammar_samples_always_decode(tok: RemiTokenizer) -> None:
    rng = np.random.default_rng(1234)
    dur_lo, dur_hi = tok.vocab.span("duration")
    for i in range(1000 // len(VARIANTS)):
        g, seq = tok.grammar(), []
        while not g.done and len(seq) < 80:
            allowed = np.flatnonzero(g.mask())
            assert len(allowed), f"dead end after {tok.tokens(seq)}"
            seq.append(int(rng.choice(allowed)))
            g.step(seq[-1])
        ids = np.array(seq)
        back = tok.decode(ids)
        assert back.n_notes == int(((ids >= dur_lo) & (ids < dur_hi)).sum())
        if i % 5 == 0:
            round_trip(tok, back)


def test_grammar_rules() -> None:
    v = TOK.vocab
    g = TOK.grammar()
    assert np.flatnonzero(g.mask()).tolist() == [BOS]
    with pytest.raises(ValueError, match="not allowed"):
        TOK.grammar().step(v.id("Pitch_60"))
    g.feed([BOS, v.id("Bar"), v.id("TimeSig_3/4"), v.id("Position_5"), v.id("Program_0")])
    assert np.flatnonzero(g.mask()).tolist() == list(range(*v.span("pitch")))
    g.step(v.id("Pitch_60"))
    assert np.flatnonzero(g.mask()).tolist() == list(range(*v.span("velocity")))  # no EOS
    g.feed([v.id("Velocity_62"), v.id("Duration_1")])
    m = g.mask()
    assert not m[v.id("Position_5")] and m[v.id("Position_6")] and m[v.id("Position_35")]
    assert not m[v.id("Position_36")]  # a 3/4 bar has 36 steps
    assert m[EOS] and m[v.id("Bar")] and m[v.id("Pitch_61")] and not m[v.id("Duration_1")]
    g.step(EOS)
    assert g.done and np.flatnonzero(g.mask()).tolist() == [PAD]


def test_grammar_keeps_the_notes_of_a_position_in_the_encoder_order() -> None:
    """Notes at one position come by program, pitch, duration, velocity, none twice (with
    ``unisons=1``): a sampler cannot pile notes on an onset in a loop. Single and batch
    grammars agree."""
    tok = LEGACY
    v = tok.vocab
    vel, dur = v.span("velocity")[0], v.span("duration")[0]
    last_dur = v.span("duration")[1] - 1
    note = [v.id("Pitch_64"), vel + 5, dur + 3]
    prefix = [BOS, v.id("Bar"), v.id("Position_0"), v.id("Program_0"), *note]

    def masks(ids: list[int]) -> np.ndarray:
        single = tok.grammar().feed(ids).mask()
        assert np.array_equal(tok.batch_grammar(2, np.array(ids)).mask()[1], single)
        return single

    m = masks(prefix)
    assert not m[v.id("Pitch_63")] and m[v.id("Pitch_64")] and m[v.id("Pitch_65")]
    assert not m[v.id("Program_0")] and m[v.id("Program_1")]
    m = masks([*prefix, v.id("Pitch_64"), vel + 5])  # a unison: longer, or louder
    assert not m[dur + 2] and not m[dur + 3] and m[dur + 4]
    assert masks([*prefix, v.id("Pitch_64"), vel + 6])[dur + 3]
    longest = [*prefix, v.id("Pitch_64"), vel + 5, last_dur]
    m = masks([*longest, v.id("Pitch_64")])  # no longer duration left: only louder
    assert not m[vel + 5] and m[vel + 6]
    with pytest.raises(ValueError, match="not allowed"):
        tok.grammar().feed([*prefix, v.id("Pitch_63")])
    with pytest.raises(ValueError, match="not allowed"):
        tok.batch_grammar(1, np.array(prefix)).step(np.array([v.id("Program_0")]))
    m = masks([*prefix, v.id("Position_1"), v.id("Program_0")])  # a new position: anew
    assert m[v.id("Pitch_0")]


def test_grammar_allows_a_note_unisons_times_in_a_row() -> None:
    """Two voices of one program on one note: the same note again, up to ``unisons`` copies
    (4 by default), then only later notes. Single and batch grammars agree."""
    v = TOK.vocab
    vel, dur = v.span("velocity")[0], v.span("duration")[0]
    note = [v.id("Pitch_64"), vel + 5, dur + 3]
    prefix = [BOS, v.id("Bar"), v.id("Position_0"), v.id("Program_0"), *note]

    def masks(ids: list[int]) -> np.ndarray:
        single = TOK.grammar().feed(ids).mask()
        assert np.array_equal(TOK.batch_grammar(3, np.array(ids)).mask()[2], single)
        return single

    for copies in range(1, 5):
        ids = prefix + note * (copies - 1)
        m = masks([*ids, v.id("Pitch_64"), vel + 5])
        assert m[dur + 3] == (copies < 4) and m[dur + 4] and not m[dur + 2]
        assert masks(ids)[v.id("Pitch_64")]  # a longer or louder one is always possible
    with pytest.raises(ValueError, match="not allowed"):
        TOK.grammar().feed(prefix + note * 4)
    after = masks([*prefix, *note, v.id("Pitch_64"), vel + 5, dur + 4])  # a new note: anew
    m = masks([*prefix, *note, v.id("Pitch_64"), vel + 5, dur + 4, v.id("Pitch_64"), vel + 5])
    assert after[v.id("Pitch_64")] and m[dur + 4] and not m[dur + 3]


def test_grammar_accepts_chorale(chorale: Score) -> None:
    ids = TOK.encode(chorale)
    assert TOK.allowed_next(ids[:-1])[EOS]


# ------------------------------------------------------------------------- config
def test_config_json_round_trip() -> None:
    tok = get_tokenizer("remi", velocity_bins=8, time_signatures=["4/4", "3/4"], programs=False)
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert isinstance(again, RemiTokenizer)
    assert again.config == tok.config
    assert again.vocab.labels() == tok.vocab.labels()
    assert RemiConfig.from_dict(RemiConfig().to_dict()) == RemiConfig()


# the description a REMI tokenizer saved before tempo_grid and unisons existed
SAVED_BEFORE = {
    "tokenizer": "remi",
    "config": {
        "positions_per_quarter": 12, "max_duration_quarters": 8, "velocity_bins": 32,
        "programs": True, "tempo_bins": 32, "tempo_range": [40.0, 250.0],
        "time_signatures": ["2/2", "3/2", "2/4", "3/4", "4/4", "5/4", "6/4", "7/4", "3/8",
                            "5/8", "6/8", "7/8", "9/8", "12/8"],
        "pitch_range": [0, 127],
    },
}  # fmt: skip
# what that version's vocabulary and encoding of BWV 66.6 were (sha256 of the labels' JSON
# and of the int64 ids)
SAVED_LABELS = "0e6b9f98f36867cc5dc9d50b8da7fe5d324f641a12a2fe7fae8466642118dc6c"
SAVED_BWV66_6 = "931a0c3c13bc3183c9e886700744203a54e39c7fe137124b4c68a3646e9e0b15"


def test_a_saved_description_keeps_its_ids(chorale: Score) -> None:
    """A model or dataset saved before ``tempo_grid`` and ``unisons`` reads the same ids:
    its description rebuilds the log tempo grid and one copy per note."""
    import hashlib

    old = tokenizer_from_dict(json.loads(json.dumps(SAVED_BEFORE)))
    assert isinstance(old, RemiTokenizer)
    assert old.config.tempo_grid == "log" and old.config.unisons == 1
    labels = json.dumps(old.vocab.labels()).encode()
    assert len(old) == 519 and hashlib.sha256(labels).hexdigest() == SAVED_LABELS
    ids = old.encode(chorale)
    assert hashlib.sha256(ids.tobytes()).hexdigest() == SAVED_BWV66_6
    new = get_tokenizer("remi")  # a new tokenizer takes today's defaults, and saves them
    assert new.config.tempo_grid == "common" and new.config.unisons == 4
    assert tokenizer_from_dict(new.to_dict()).config == new.config


@pytest.mark.parametrize("qpm", [40, 60, 63, 72, 80, 90, 96, 100, 108, 120, 132, 140, 144, 160,
                                 180, 200, 240])  # fmt: skip
def test_common_tempi_come_back_exactly(qpm: float) -> None:
    s = one_track(Note(60, 0, 480), Note(62, 1920, 480), tempos=[Tempo(0, qpm), Tempo(1920, 120.0)])
    ids = round_trip(TOK, s)
    assert [t.qpm for t in TOK.decode(ids).tempos] == [qpm] + ([120.0] if qpm != 120 else [])


@given(st.floats(30.0, 300.0))
@settings(max_examples=60, deadline=None)
def test_any_tempo_lands_within_three_percent(qpm: float) -> None:
    (back,) = TOK.prepare(one_track(Note(60, 0, 480), tempos=[Tempo(0, qpm)])).tempos
    lo, hi = TOK.config.tempo_range
    assert abs(np.log(back.qpm / min(max(qpm, lo), hi))) < 0.03


@pytest.mark.parametrize(
    "options",
    [
        {"positions_per_quarter": 7},
        {"positions_per_quarter": 4, "time_signatures": ["1/32"]},
        {"time_signatures": ["4-4"]},
        {"time_signatures": []},
        {"velocity_bins": 200},
        {"pitch_range": [60, 50]},
        {"colour": "blue"},
        {"tempo_grid": "linear"},
        {"unisons": 0},
        {"tempo_range": [61, 62]},  # no common tempo inside
    ],
)
def test_bad_config_says_why(options: dict) -> None:
    with pytest.raises(MusegenError):
        RemiTokenizer(**options)


# ------------------------------------------------------------------------- a real chorale
@pytest.fixture(scope="module")
def chorale() -> Score:
    """Bach's BWV 66.6 from the music21 corpus, one track per voice."""
    from musegen.io import load

    return load("corpus:bach/bwv66.6")


def test_chorale_round_trip(chorale: Score) -> None:
    ids = round_trip(TOK, chorale)
    back = TOK.decode(ids)
    assert len(back.tracks) == 1  # four program-0 voices share one track key...
    assert back.n_notes == chorale.n_notes == 163  # ...and their unisons stay two notes
    assert back.tempos == [Tempo(0, 96.0)] and back.time_signatures == chorale.time_signatures
    distinct = {(n.start, n.pitch, n.duration) for t in chorale.tracks for n in t.note_list()}
    assert LEGACY.decode(LEGACY.encode(chorale)).n_notes == len(distinct) == 157  # one copy


def test_chorale_with_a_program_per_voice(chorale: Score) -> None:
    s = chorale.copy()
    for k, t in enumerate(s.tracks):
        t.program = 52 + k
    ids = round_trip(TOK, s)
    back = TOK.decode(ids)
    assert [t.program for t in back.tracks] == [52, 53, 54, 55]
    assert back.n_notes == s.n_notes  # on the grid and apart: nothing lost
    assert len(ids) < 5 * s.n_notes  # four voices: mostly a PROGRAM per note


# ------------------------------------------------------------------------- the encoder of before
# The REMI encoder as it was before it learnt to encode many pieces in one pass, kept verbatim
# (one piece at a time) as the reference the batched encoder must match id for id.
# (Its small helpers, unchanged, are the module's own.)


class ReferenceRemi(RemiTokenizer):
    """RemiTokenizer with the one-piece-at-a-time encoder of before (the note canonicalisation
    it builds on, ``_canonical``, is still the tokenizer's own: ``prepare`` uses it)."""

    def _time_signatures(self, score: Score, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Meter changes moved to bar lines, redundant ones and those after ``end`` dropped."""
        sigs = [
            (
                int(self._to_steps(ts.time, score.tpq)),
                self._signature_index(ts.numerator, ts.denominator),
            )
            for ts in score.time_signatures
        ]
        if not sigs or sigs[0][0] > 0:
            sigs.insert(0, (0, self._signature_index(4, 4)))
        steps, index = [0], [sigs[0][1]]
        for t, sig in sigs[1:]:
            start, length = steps[-1], int(self.bar_steps[index[-1]])
            at = start + max(0, -(-(t - start) // length)) * length  # first bar line at or after t
            if at == start:
                index[-1] = sig  # a later change at the same bar line wins
            else:
                steps.append(at)
                index.append(sig)
            if len(index) > 1 and index[-1] == index[-2]:
                steps.pop()
                index.pop()
        limit = max(end, 1)
        n = sum(1 for s in steps if s < limit)
        return np.array(steps[:n], np.int64), np.array(index[:n], np.int64)

    def encode(self, score: Score, bos: bool = True, eos: bool = True) -> np.ndarray:
        """Token ids of ``prepare(score)``, optionally wrapped in BOS/EOS (vectorised)."""
        c = self._canonical(score)
        bars = self._bar_starts(c.ts_steps, c.ts_index, c.end)
        off = self.off
        n_notes = len(c.onset)

        # units: bar headers, position headers, notes; each unit emits 1..4 tokens
        bar_has_ts = np.zeros(len(bars), bool)
        bar_has_ts[np.searchsorted(bars, c.ts_steps)] = True
        first = _first_of_runs(c.onset)
        positions = _sorted_unique(np.concatenate([c.onset[first], c.tempo_steps]))
        pos_tempo = np.full(len(positions), -1, np.int64)
        pos_tempo[np.searchsorted(positions, c.tempo_steps)] = c.tempo_index
        if self.config.programs:
            new_prog = first | _first_of_runs(c.program)
        else:
            new_prog = np.zeros(n_notes, bool)
        has_vel = int(bool(self.config.velocity_bins))

        # merge the three time-sorted unit lists (stable sort of sorted runs: a linear merge)
        when = np.concatenate([bars * 3, positions * 3 + 1, c.onset * 3 + 2])
        sizes = np.concatenate([1 + bar_has_ts, 1 + (pos_tempo >= 0), 2 + has_vel + new_prog])
        order = np.argsort(when, kind="stable")
        starts = np.empty(len(order), np.int64)
        starts[order] = np.cumsum(sizes[order]) - sizes[order]
        head = int(bos)
        starts += head
        n_tok = int(sizes.sum())
        out = np.empty(n_tok + head + int(eos), np.int64)
        if bos:
            out[0] = BOS
        if eos:
            out[-1] = EOS

        nb, npos = len(bars), len(positions)
        s_bar, s_pos, s_note = starts[:nb], starts[nb : nb + npos], starts[nb + npos :]
        out[s_bar] = off[K_BAR]
        out[s_bar[bar_has_ts] + 1] = off[K_TS] + c.ts_index
        bar_of_pos = np.searchsorted(bars, positions, side="right") - 1
        out[s_pos] = off[K_POS] + positions - bars[bar_of_pos]
        if len(c.tempo_steps):
            out[s_pos[pos_tempo >= 0] + 1] = off[K_TEMPO] + c.tempo_index
        if self.config.programs:
            out[s_note[new_prog]] = off[K_PROG] + c.program[new_prog]
        s_note = s_note + new_prog
        out[s_note] = off[K_PITCH] + c.pitch - self.pitch_lo
        if has_vel:
            out[s_note + 1] = off[K_VEL] + c.velocity
        out[s_note + 1 + has_vel] = off[K_DUR] + c.duration - 1
        return out


# ------------------------------------------------------------------------- many pieces at once
REFERENCES = [
    ReferenceRemi(tok.config)
    for tok in VARIANTS  # the one-piece encoder of before
]


@st.composite
def odd_scores(draw: st.DrawFn) -> Score:
    """Random scores plus what a file may hold: notes before 0 or out of the pitch range,
    several tempos or meters at one tick, unsupported meters, odd resolutions."""
    tpq = draw(st.sampled_from([480, 96, 384, 25, 1000]))
    score = draw(scores(tpq=tpq, grid=draw(st.sampled_from([1, 7, tpq // 4])), max_tracks=3))
    if draw(st.booleans()) and score.tracks and len(score.tracks[0].notes):
        notes = score.tracks[0].notes.copy()
        notes["start"][0] = -draw(st.integers(1, 3 * tpq))
        notes["pitch"][-1] = draw(st.sampled_from([-3, 128, 300]))
        score.tracks[0] = score.tracks[0].copy(notes)
    ticks = st.integers(0, 12 * tpq)
    if draw(st.booleans()):
        score.tempos = sorted(
            [Tempo(draw(ticks), draw(st.sampled_from([0.0, 30.0, 97.0, 97.4, 300.0])))
             for _ in range(draw(st.integers(0, 4)))],
            key=lambda t: t.time,
        )  # fmt: skip
    if draw(st.booleans()):
        sigs = st.sampled_from([(4, 4), (3, 4), (5, 16), (7, 8), (0, 4), (13, 4)])
        score.time_signatures = sorted(
            [TimeSignature(draw(ticks), *draw(sigs)) for _ in range(draw(st.integers(0, 3)))],
            key=lambda t: t.time,
        )
    return score


@given(st.lists(odd_scores(), max_size=6), st.integers(0, len(VARIANTS) - 1), st.booleans())
@settings(max_examples=150, deadline=None)
def test_encode_many_gives_the_ids_of_the_one_piece_encoder(
    batch: list[Score], variant: int, framed: bool
) -> None:
    tok, ref = VARIANTS[variant], REFERENCES[variant]
    expected = [ref.encode(s, bos=framed, eos=framed) for s in batch]
    got = tok.encode_many(batch, bos=framed, eos=framed)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    for s, b in zip(batch, expected, strict=True):
        assert np.array_equal(tok.encode(s, bos=framed, eos=framed), b)


def test_encode_many_falls_back_to_one_piece_at_a_time_for_huge_spans() -> None:
    """Keys of many long pieces would overflow 63 bits together: encoded one by one."""
    far = one_track(Note(60, 0, 480), Note(62, 2**31 - 2000, 480))
    batch = [far, one_track(Note(64, 0, 480)), far]
    ids = TOK.encode_many(batch)
    assert [len(x) for x in ids] == [len(TOK.encode(s)) for s in batch]
    for a, s in zip(ids, batch, strict=True):
        assert np.array_equal(a, REFERENCES[0].encode(s))


def test_chorales_encode_as_one_batch_like_one_by_one(chorale: Score) -> None:
    s = chorale.copy()
    for k, t in enumerate(s.tracks):
        t.program = 52 + k
    batch = [chorale, s, Score(), chorale.slice_bars(2, 5), s]
    for a, b in zip(TOK.encode_many(batch), batch, strict=True):
        assert np.array_equal(a, REFERENCES[0].encode(b))


# ------------------------------------------------------------------------- one encoder, one grammar
@given(st.lists(odd_scores(), min_size=1, max_size=4), st.integers(0, len(VARIANTS) - 1))
@settings(max_examples=40, deadline=None)
def test_a_piece_encodes_alike_alone_and_in_a_batch(batch: list[Score], variant: int) -> None:
    """encode and prepare are batches of one of encode_many."""
    tok = VARIANTS[variant]
    together = tok.encode_many(batch)
    for s, ids in zip(batch, together, strict=True):
        assert np.array_equal(tok.encode_many([s])[0], ids)
        assert np.array_equal(tok.encode(s), ids)
        assert_same_notes(tok.decode(ids), tok.prepare(s))


def reference_allowed(tok: RemiTokenizer, seq: list[int]) -> np.ndarray:
    """The grammar by its definition, id by id in plain Python: the cross-check of the table
    grammar. The notes at a position come by program (each named once, rising), then by
    (pitch, duration, velocity), a note at most ``unisons`` times in a row: a note token is
    allowed when the largest note it can still lead to comes after the last note of its
    program there, or is that note and it has fewer than ``unisons`` copies so far."""
    from musegen.tokenizers.remi.grammar import POSITION_AFTER, START, follows

    kinds = [int(tok.kind_of[t]) for t in seq]
    values = [int(tok.value_of[t]) for t in seq]
    last = kinds[-1] if seq else START
    allowed = tok.vocab.mask(*follows(tok.config)[last])
    bar_len = int(tok.bar_steps[tok.vocab.default_signature])
    pos, prog, last_note, note = -1, -1, None, [0, 0]  # note: pitch and velocity written
    copies = 0  # of last_note, written one after another
    for k, v in zip(kinds, values, strict=True):
        if k == K_TS:
            bar_len = int(tok.bar_steps[v])
        elif k in (K_BAR, K_POS, K_PROG):  # a new group of notes
            pos = -1 if k == K_BAR else v if k == K_POS else pos
            prog, last_note, copies = (v if k == K_PROG else -1), None, 0
        elif k == K_PITCH:
            note = [v, 0]
        elif k == K_VEL:
            note[1] = v
        elif k == K_DUR:
            done = (note[0], v, note[1])
            copies = copies + 1 if done == last_note else 1
            last_note = done
    longest, loudest = tok.vocab.max_steps - 1, max(tok.config.velocity_bins - 1, 0)
    for i in np.flatnonzero(allowed):
        k, v = int(tok.kind_of[i]), int(tok.value_of[i])
        largest = {
            K_PITCH: (v, longest, loudest),
            K_VEL: (note[0], longest, v),
            K_DUR: (note[0], v, note[1]),
        }
        if k == K_PROG:
            allowed[i] = v > prog
        elif k in largest and last_note is not None:
            allowed[i] = largest[k] > last_note or (
                largest[k] == last_note and copies < tok.config.unisons
            )
    if last in POSITION_AFTER:
        lo = tok.vocab.offset("position")
        allowed[lo + pos + 1 : lo + bar_len] = True
    return allowed


@pytest.mark.parametrize("tok", VARIANTS, ids=lambda t: str(len(t)))
def test_grammar_is_the_rule_it_states(tok: RemiTokenizer) -> None:
    """Random walks that favour unisons and the longest durations (where the note order is
    subtle): at every step the mask is the plain definition's."""
    rng = np.random.default_rng(5)
    for _ in range(8):
        g, seq = tok.grammar(), []
        while not g.done and len(seq) < 70:
            m = g.mask()
            assert np.array_equal(m, reference_allowed(tok, seq)), tok.tokens(seq)
            choices = np.flatnonzero(m)
            r = rng.random()
            pick = choices[0] if r < 0.4 else choices[-1] if r < 0.55 else rng.choice(choices)
            if pick == EOS and len(choices) > 1 and len(seq) < 60:
                pick = choices[choices != EOS][-1]
            seq.append(int(pick))
            g.step(seq[-1])


def test_batch_grammar_of_diverging_sequences_is_many_single_grammars() -> None:
    """n sequences stepped together, each its own way (and some finished early), have the
    masks of n single grammars."""
    rng = np.random.default_rng(3)
    for tok in VARIANTS:
        prefix = [BOS, tok.vocab.id("Bar")]
        n = 5
        batch = tok.batch_grammar(n, np.array(prefix))
        singles = [tok.grammar().feed(prefix) for _ in range(n)]
        for step in range(120):
            masks = batch.mask()
            for b, g in enumerate(singles):
                expected = g.mask() if not g.done else np.eye(len(tok), dtype=bool)[PAD]
                assert np.array_equal(masks[b], expected)
            tokens = np.array([rng.choice(np.flatnonzero(row)) for row in masks])
            if step == 40:
                batch.finish(np.array([1]))
                tokens[1] = PAD
            batch.step(tokens)
            for b, g in enumerate(singles):
                if not g.done and not (b == 1 and step >= 40):
                    g.step(int(tokens[b]))
            singles[1] = singles[1] if step < 40 else _finished(tok)
        assert np.array_equal(batch.done, [g.done for g in singles])


def _finished(tok: RemiTokenizer):  # type: ignore[no-untyped-def]
    """A single grammar after EOS."""
    return tok.grammar().feed([BOS, tok.vocab.id("Bar"), EOS])


# ------------------------------------------------------------------------- --describe
def test_describe_prints_the_vocabulary_and_the_grammar() -> None:
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "musegen.tokenizers.remi", "--describe"],
        capture_output=True,
        text=True,
        check=True,
    )
    text = run.stdout
    assert text.startswith(f"remi tokenizer: {len(TOK)} ids")
    for name, (lo, size) in TOK.vocab.blocks.items():
        span = f"{lo}" if size == 1 else f"{lo}-{lo + size - 1}"
        assert f" {span} " in text and f" {name} " in text
    assert "Pitch_0, Pitch_1, Pitch_2, …, Pitch_127" in text
    assert "duration  -> program | pitch | bar | EOS | position>" in text


def test_describe_follows_the_config() -> None:
    from musegen.tokenizers.remi.__main__ import main

    tok = RemiTokenizer(programs=False, tempo_bins=0, velocity_bins=0)
    text = tok.describe()
    assert "Program_" not in text and "Tempo_" not in text and "Velocity_" not in text
    assert "position  -> pitch\n" in text and "pitch     -> duration\n" in text
    assert main(["--config", '{"programs": false}']) == 0  # without --describe: the usage
