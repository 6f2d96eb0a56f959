"""The chorale tokenizer: voices written together, pickups kept, bars counted down to the end."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.errors import MusegenError
from musegen.score import FERMATA, VOICES, Marker, Score, TimeSignature, Track, make_notes
from musegen.tokenizers import EOS, get_tokenizer, tokenizer_from_dict
from musegen.tokenizers.chorale import ChoraleTokenizer, main

TPQ = 480
Q = TPQ  # a quarter note
E = TPQ // 2  # an eighth note


def chorale(
    voices: list[list[tuple[int, int, int]]], ts: tuple[int, int] = (4, 4), tpq: int = TPQ
) -> Score:
    """A score with one labelled track per voice, notes given as (start, duration, pitch)."""
    tracks = []
    for label, notes in zip(VOICES, voices, strict=True):
        start, dur, pitch = zip(*notes, strict=True) if notes else ((), (), ())
        tracks.append(Track(make_notes(start, dur, pitch, 80), name=label, voice=label))
    return Score(tpq=tpq, tracks=tracks, time_signatures=[TimeSignature(0, *ts)])


def cadence_with_pickup() -> Score:
    """A one-beat pickup (padded to a full bar, as notation readers do), then two bars."""
    bar = 4 * Q
    s = [(3 * Q, Q, 67), (bar, 2 * Q, 72), (bar + 2 * Q, E, 71), (bar + 2 * Q + E, E, 69)]
    s += [(bar + 3 * Q, Q, 71), (2 * bar, 3 * Q, 72)]
    a = [(3 * Q, Q, 64), (bar, 3 * Q, 64), (bar + 3 * Q, Q, 62), (2 * bar, 3 * Q, 64)]
    t = [(3 * Q, Q, 60), (bar, 3 * Q, 55), (bar + 3 * Q, Q, 55), (2 * bar, 3 * Q, 55)]
    b = [(3 * Q, Q, 48), (bar, 3 * Q, 48), (bar + 3 * Q, Q, 43), (2 * bar, 3 * Q, 48)]
    return chorale([s, a, t, b])


@pytest.fixture(scope="module")
def tok() -> ChoraleTokenizer:
    return get_tokenizer("chorale")  # type: ignore[return-value]


def test_tokens_read_as_the_docstring_says(tok: ChoraleTokenizer) -> None:
    ids = tok.encode(cadence_with_pickup())
    labels = tok.tokens(ids)
    assert labels[:3] == ["BOS", "TS_4/4", "LEN_2"]
    # the pickup: 4 sixteenth rows of S A T B, the first a new chord, then three of HOLD
    assert labels[3:7] == ["pitch_67", "pitch_64", "pitch_60", "pitch_48"]
    assert labels[7:19] == ["HOLD"] * 12
    assert labels[19] == "BAR_2"
    assert labels.count("BAR_1") == 1 and labels[-1] == "EOS"
    assert (len(ids) - 3 - 2 - 1) % 4 == 0  # header, two BARs and EOS around whole rows


def test_round_trip_keeps_the_pickup_where_it_was(tok: ChoraleTokenizer) -> None:
    score = cadence_with_pickup()
    back = tok.decode(tok.encode(score))
    assert [t.voice for t in back.tracks] == list(VOICES)
    for src, out in zip(score.tracks, back.tracks, strict=True):
        scale = back.tpq // score.tpq
        np.testing.assert_array_equal(out.notes["start"], src.notes["start"] * scale)
        np.testing.assert_array_equal(out.notes["duration"], src.notes["duration"] * scale)
        np.testing.assert_array_equal(out.notes["pitch"], src.notes["pitch"])
    assert back.time_signatures[0].numerator == 4
    np.testing.assert_array_equal(tok.encode(back), tok.encode(score))


def test_unisons_and_repeated_notes_survive(tok: ChoraleTokenizer) -> None:
    # soprano and alto on the same pitch; the tenor strikes its note twice
    s = [(0, 2 * Q, 67), (2 * Q, 2 * Q, 69)]
    a = [(0, 4 * Q, 67)]
    t = [(0, Q, 60), (Q, Q, 60), (2 * Q, 2 * Q, 60)]
    b = [(0, 4 * Q, 48)]
    back = tok.decode(tok.encode(chorale([s, a, t, b])))
    assert [len(tr) for tr in back.tracks] == [2, 1, 3, 1]
    assert back.tracks[1].notes["pitch"][0] == 67


def test_rests_are_kept(tok: ChoraleTokenizer) -> None:
    s = [(0, Q, 72), (2 * Q, 2 * Q, 72)]  # a quarter rest in the soprano
    full = [(0, 4 * Q, 60)]
    back = tok.decode(tok.encode(chorale([s, full, [(0, 4 * Q, 55)], [(0, 4 * Q, 48)]])))
    np.testing.assert_array_equal(back.tracks[0].notes["start"], [0, 2 * Q])


def test_three_four_and_its_bar_length(tok: ChoraleTokenizer) -> None:
    notes = [[(0, 3 * Q, p), (3 * Q, 3 * Q, p)] for p in (72, 67, 64, 48)]
    ids = tok.encode(chorale(notes, ts=(3, 4)))
    labels = tok.tokens(ids)
    assert labels[1:3] == ["TS_3/4", "LEN_2"]
    # no pickup: BAR_2 straight away, then 12 rows of four cells
    assert labels[3] == "BAR_2" and labels[4 + 48] == "BAR_1"


def test_every_encoding_is_grammatical(tok: ChoraleTokenizer) -> None:
    for score in (cadence_with_pickup(), chorale([[(0, 8 * Q, 70)]] * 4)):
        grammar = tok.grammar().feed(tok.encode(score))
        assert grammar.done


def test_length_counts_down_beyond_max_bars() -> None:
    tok = ChoraleTokenizer(max_bars=2)
    notes = [
        [(4 * Q * i, 4 * Q, 60 + 12 * (v == 0) - 12 * (v == 3)) for i in range(4)] for v in range(4)
    ]
    labels = tok.tokens(tok.encode(chorale(notes)))
    bars = [x for x in labels if x.startswith(("LEN", "BAR"))]
    assert bars == ["LEN_far", "BAR_far", "BAR_far", "BAR_2", "BAR_1"]
    assert tok.grammar().feed(tok.encode(chorale(notes))).done


def random_walk(
    tok: ChoraleTokenizer, prefix: np.ndarray, seed: int, limit: int = 5000
) -> list[int]:
    """Tokens drawn uniformly from what the grammar allows, until EOS."""
    rng = np.random.default_rng(seed)
    grammar = tok.grammar().feed(prefix)
    out = [int(x) for x in prefix]
    while not grammar.done and len(out) < limit:
        token = int(rng.choice(np.flatnonzero(grammar.mask())))
        grammar.step(token)
        out.append(token)
    return out


@pytest.mark.parametrize("ts", ["4/4", "3/4", "6/8"])
@pytest.mark.parametrize("bars", [1, 3])
def test_grammar_ends_a_piece_after_the_bars_asked_for(
    tok: ChoraleTokenizer, ts: str, bars: int
) -> None:
    num, den = (int(x) for x in ts.split("/"))
    empty = Score(tpq=TPQ, time_signatures=[TimeSignature(0, num, den)])
    prefix = tok.primer_for_length(empty, bars)
    for seed in range(3):
        ids = random_walk(tok, prefix, seed)
        assert ids[-1] == EOS
        score = tok.decode(ids)
        assert len(score.tracks) == 4
        assert tok.tokens(ids).count("BAR_1") == 1
        # the piece ends within its last bar: pickup bar (padded) + the bars asked for
        bar = tok.config.bar_steps(ts) * (480 // tok.config.steps_per_quarter)
        assert score.end <= (bars + 1) * bar
        for v, track in enumerate(score.tracks):
            low, high = tok.config.ranges[v]
            assert ((track.notes["pitch"] >= low) & (track.notes["pitch"] <= high)).all()
            ends = track.notes["start"] + track.notes["duration"]
            assert (ends[:-1] <= track.notes["start"][1:]).all()  # monophonic


def test_primer_with_notes_is_continued_to_the_length(tok: ChoraleTokenizer) -> None:
    primer = cadence_with_pickup()
    ids = tok.primer_for_length(primer, 5)
    labels = tok.tokens(ids)
    assert labels[2] == "LEN_5" and "EOS" not in labels
    assert [x for x in labels if x.startswith("BAR")] == ["BAR_5", "BAR_4"]
    grammar = tok.grammar().feed(ids)
    assert not grammar.done


def test_grammar_rejects_what_breaks_the_rules(tok: ChoraleTokenizer) -> None:
    grammar = tok.grammar().feed(tok.encode(cadence_with_pickup())[:3])
    with pytest.raises(ValueError, match="not allowed"):
        grammar.step(tok.hold_id)  # nothing sounds yet
    grammar.step(tok.pitch_offset + 72)
    with pytest.raises(ValueError, match="not allowed"):
        grammar.step(tok.pitch_offset + 30)  # below the alto's range


def test_unknown_meter_is_a_clear_error(tok: ChoraleTokenizer) -> None:
    with pytest.raises(MusegenError, match="no time signature 5/4"):
        tok.encode(chorale([[(0, 5 * Q, 60)]] * 4, ts=(5, 4)))
    with pytest.raises(MusegenError, match="does not fit"):
        ChoraleTokenizer(time_signatures=["4/4", "7/32"])


def test_config_round_trips_through_json(tok: ChoraleTokenizer) -> None:
    again = tokenizer_from_dict(tok.to_dict())
    assert again.vocab.labels() == tok.vocab.labels()


def test_describe_prints_blocks_and_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "BAR_1 … BAR_far" in out and "grammar:" in out


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 31), st.integers(1, 8), st.integers(0, 11)),
        min_size=1,
        max_size=30,
    )
)
def test_prepared_scores_round_trip(cells: list[tuple[int, int, int, int]]) -> None:
    """decode(encode(s)) == prepare(s), and encoding it again gives the same ids."""
    tok = get_tokenizer("chorale")
    base = (74, 67, 60, 48)
    voices: list[list[tuple[int, int, int]]] = [[] for _ in VOICES]
    for v, step, length, shift in cells:
        voices[v].append((step * E // 2, length * E // 2, base[v] + shift - 6))
    score = chorale(voices)
    prepared = tok.prepare(score)
    ids = tok.encode(prepared)
    np.testing.assert_array_equal(ids, tok.encode(score))
    assert tok.grammar().feed(ids).done
    for a, b in zip(tok.decode(ids).tracks, prepared.tracks, strict=True):
        np.testing.assert_array_equal(a.notes, b.notes)


# --------------------------------------------------------------------------- phrases
def test_phrases_write_a_fermata_before_the_marked_row() -> None:
    """With ``phrases`` a FERMATA stands before the row where a phrase rests; without it
    the vocabulary and the ids are the old ones."""
    score = cadence_with_pickup()
    score.markers = [Marker(4 * Q + 3 * Q, FERMATA), Marker(2 * 4 * Q, FERMATA)]
    plain, phr = get_tokenizer("chorale"), get_tokenizer("chorale", phrases=True)
    assert len(phr.vocab) == len(plain.vocab) + 1
    labels = phr.tokens(phr.encode(score))
    assert labels.count("FERMATA") == 2
    i = labels.index("FERMATA")
    assert labels[i + 1 : i + 5] == ["pitch_71", "pitch_62", "pitch_55", "pitch_43"]
    j = labels.index("BAR_1")  # the second one marks the first row of the last bar
    assert labels[j + 1] == "FERMATA" and labels[j + 2] == "pitch_72"
    assert [t for t in labels if t != "FERMATA"] == plain.tokens(plain.encode(score))
    decoded = phr.decode(phr.encode(score))
    assert decoded.markers == [
        Marker(m.time * 480 // TPQ, FERMATA) for m in score.markers
    ]  # the pickup's padding is restored, so the marks fall where they were
    assert plain.decode(plain.encode(score)).markers == []


def test_phrase_grammar_allows_one_fermata_at_a_row_start() -> None:
    tok = get_tokenizer("chorale", phrases=True)
    fermata = tok.vocab.offset("fermata")
    ids = tok.encode(cadence_with_pickup())
    g = tok.grammar().feed(ids[:3])  # BOS TS LEN: the pickup's first row comes next
    assert g.mask()[fermata]
    g.step(fermata)
    assert not g.mask()[fermata] and not g.mask()[EOS]  # once, and a row must follow
    g.step(int(ids[3]))
    assert not g.mask()[fermata]  # not inside a row
    for i in ids[4:]:
        g.step(int(i))
    assert g.done


# --------------------------------------------------------------------------- beat chords
def test_beat_chords_name_each_beats_harmony_before_its_first_row() -> None:
    """With ``beat_chords`` an ``H_*`` token stands before the first row of every beat (in
    the pickup from its first row); without it the ids are the old ones, and decoding
    drops the harmony."""
    score = cadence_with_pickup()
    score.markers = [Marker(2 * 4 * Q, FERMATA)]
    plain = get_tokenizer("chorale", phrases=True)
    harm = get_tokenizer("chorale", phrases=True, beat_chords=True)
    assert len(harm.vocab) == len(plain.vocab) + 12 * 9 + 1
    ids = harm.encode(score)
    labels = harm.tokens(ids)
    chords = [t for t in labels if t.startswith("H_")]
    # pickup C (G over C-E), bar 1: C C C(passing B-A) G, bar 2: C C C (three beats)
    assert chords == ["H_C", "H_C", "H_C", "H_C", "H_G", "H_C", "H_C", "H_C"]
    assert labels[3] == "H_C" and labels[4] == "pitch_67"
    j = labels.index("BAR_1")  # the harmony first, then the fermata, then the row
    assert labels[j + 1 : j + 4] == ["H_C", "FERMATA", "pitch_72"]
    assert [t for t in labels if not t.startswith("H_")] == plain.tokens(plain.encode(score))
    back = harm.decode(ids)
    assert np.array_equal(plain.encode(back), plain.encode(score))
    assert back.markers == plain.decode(plain.encode(score)).markers
    g = harm.grammar()
    for i in ids:
        g.step(int(i))
    assert g.done


def test_beat_chord_grammar_asks_for_a_harmony_at_each_beat() -> None:
    tok = get_tokenizer("chorale", beat_chords=True)
    harmony = tok.vocab.mask("harmony", "noharmony")
    prefix = tok.primer_for_length(Score(tpq=TPQ, time_signatures=[TimeSignature(0, 3, 4)]), 2)
    g = tok.grammar().feed(prefix)
    m = g.mask()  # the pickup's first beat, or the first bar line
    assert m[harmony].all() and not m[tok.rest_id] and m[tok.vocab.offset("bar") + 1]
    g.step(int(np.flatnonzero(harmony)[0]))
    m = g.mask()  # a row must follow its harmony
    assert not m[harmony].any() and m[tok.rest_id] and not m[tok.vocab.offset("bar") + 1]
    for seed in range(3):
        ids = random_walk(tok, prefix, seed)
        labels = tok.tokens(ids)
        assert ids[-1] == EOS and labels.count("BAR_1") == 1
        cells, harmony_before = 0, set()  # cells in the bar; rows that open with a harmony
        for t in labels[labels.index("BAR_2") :]:
            if t.startswith("BAR_"):
                cells = 0
            elif t.startswith("H_"):
                assert cells % 16 == 0  # a beat is 4 rows of 4 cells
                harmony_before.add(cells)
            elif t != "EOS":
                if cells % 16 == 0:
                    assert cells in harmony_before
                cells += 1


def test_melody_beat_chords_label_the_line_and_walk_the_grammar() -> None:
    tok = get_tokenizer("melody", beat_chords=True)
    ids = tok.encode(cadence_with_pickup())
    labels = tok.tokens(ids)
    assert labels[3:5] == ["H_G", "pitch_67"] and labels[8:11] == ["BAR_2", "H_C", "pitch_72"]
    prefix = tok.primer_for_length(Score(tpq=TPQ, time_signatures=[TimeSignature(0, 6, 8)]), 2)
    ids = random_walk(tok, prefix, 1)
    assert ids[-1] == EOS and len(tok.decode(ids).tracks) == 1


def test_beat_chords_move_with_token_transposition() -> None:
    from musegen.data.augment import TokenTranspose

    tok = get_tokenizer("chorale", beat_chords=True)
    ids = tok.encode(cadence_with_pickup())
    up = TokenTranspose(tok, max_shift=5).apply(ids, 2)
    chords = [t for t in tok.tokens(up) if t.startswith("H_")]
    assert chords[:5] == ["H_D", "H_D", "H_D", "H_D", "H_A"]
    assert np.array_equal(up, tok.encode(tok.decode(up)))  # what a D major score encodes to


def a_minor_cadence() -> Score:
    """Two bars in A minor: i - V - i, the soprano on C, the alto through G sharp."""
    s = [(0, 2 * Q, 72), (2 * Q, 2 * Q, 71), (4 * Q, 4 * Q, 72)]
    a = [(0, 2 * Q, 69), (2 * Q, 2 * Q, 68), (4 * Q, 4 * Q, 69)]
    t = [(0, 2 * Q, 64), (2 * Q, 2 * Q, 64), (4 * Q, 4 * Q, 64)]
    b = [(0, 2 * Q, 57), (2 * Q, 2 * Q, 52), (4 * Q, 4 * Q, 45)]
    return chorale([s, a, t, b])


def test_modes_write_the_key_finders_mode_after_the_length() -> None:
    """With ``modes`` a MODE token follows LEN; without it the ids are the old ones."""
    plain, moded = get_tokenizer("chorale"), get_tokenizer("chorale", modes=True)
    assert len(moded.vocab) == len(plain.vocab) + 2
    major = moded.tokens(moded.encode(cadence_with_pickup()))
    minor = moded.tokens(moded.encode(a_minor_cadence()))
    assert major[:4] == ["BOS", "TS_4/4", "LEN_2", "MODE_major"]
    assert minor[3] == "MODE_minor"
    assert minor.count("MODE_minor") == 1 + minor.count("BAR_1") + minor.count("BAR_2") == 3
    assert all(major[i + 1] == "MODE_major" for i, t in enumerate(major) if t.startswith("BAR"))
    assert [t for t in major if not t.startswith("MODE")] == plain.tokens(
        plain.encode(cadence_with_pickup())
    )
    for score in (cadence_with_pickup(), a_minor_cadence()):
        ids = moded.encode(score)
        assert moded.grammar().feed(ids).done
        same = plain.decode(plain.encode(score)).tracks
        assert all(
            np.array_equal(x.notes, y.notes)
            for x, y in zip(moded.decode(ids).tracks, same, strict=True)
        )
    assert moded.mode_shares(
        [moded.encode(a_minor_cadence())] * 3 + [moded.encode(cadence_with_pickup())]
    ) == {
        "major": 0.25,
        "minor": 0.75,
    }


def test_mode_grammar_asks_for_one_mode_before_the_rows() -> None:
    tok = get_tokenizer("chorale", modes=True)
    primer = tok.primer_for_length(Score(tpq=TPQ, time_signatures=[TimeSignature(0, 3, 4)]), 2)
    g = tok.grammar().feed(primer)
    allowed = tok.tokens(np.flatnonzero(g.mask()))
    assert allowed == ["MODE_major", "MODE_minor"]
    g.step(tok.mode_id(True))
    assert "MODE_minor" not in tok.tokens(np.flatnonzero(g.mask()))
    ids = tok.encode(a_minor_cadence())
    g = tok.grammar().feed(ids[:5])  # BOS TS LEN MODE BAR: the same mode, nothing else
    assert tok.tokens(np.flatnonzero(g.mask())) == ["MODE_minor"]
    walk = random_walk(tok, np.concatenate([primer, [tok.mode_id(True)]]), seed=3)
    assert tok.grammar().feed(walk).done
    with pytest.raises(MusegenError, match="modes"):
        get_tokenizer("chorale").mode_id(False)


def test_order_writes_each_row_outer_voices_first() -> None:
    """``order="SBAT"``: each row is soprano, bass, alto, tenor; decoding gives the same
    voices back, and the grammar keeps each cell to its voice's range."""
    plain, outer = get_tokenizer("chorale"), get_tokenizer("chorale", order="SBAT")
    score = cadence_with_pickup()
    labels = outer.tokens(outer.encode(score))
    assert labels[3:7] == ["pitch_67", "pitch_48", "pitch_64", "pitch_60"]  # S B A T
    same = plain.decode(plain.encode(score)).tracks
    back = outer.decode(outer.encode(score)).tracks
    assert [t.voice for t in back] == ["S", "A", "T", "B"]
    assert all(np.array_equal(x.notes, y.notes) for x, y in zip(back, same, strict=True))
    primer = outer.primer_for_length(Score(tpq=TPQ, time_signatures=[TimeSignature(0, 4, 4)]), 1)
    g = outer.grammar().feed(primer)
    g.step(outer.vocab.offset("bar"))  # BAR_1
    g.step(outer.pitch_offset + 72)  # the soprano
    allowed = np.flatnonzero(g.mask()) - outer.pitch_offset
    bass = outer.config.bass
    assert allowed[allowed >= 0].min() == bass[0] and allowed.max() == bass[1]
    walk = random_walk(outer, primer, seed=5)
    assert outer.grammar().feed(walk).done
    with pytest.raises(MusegenError, match="order"):
        get_tokenizer("chorale", order="SATS")
    with pytest.raises(MusegenError, match="no_crossing"):
        get_tokenizer("chorale", order="SBAT", no_crossing=True)


# --------------------------------------------------------------------------- melody
def tune(notes: list[tuple[int, int, int]], *meters: tuple[int, int, int]) -> Score:
    """One track of (start, duration, pitch); meters as (tick, numerator, denominator)."""
    start, dur, pitch = zip(*notes, strict=True)
    return Score(
        tpq=TPQ,
        tracks=[Track(make_notes(start, dur, pitch, 80), name="tune")],
        time_signatures=[TimeSignature(*m) for m in meters] or [TimeSignature(0, 4, 4)],
    )


def test_melody_pickup_written_as_its_own_meter() -> None:
    """ABC writes a pickup as a short bar of its own meter (M:1/4 then M:2/4)."""
    tok = get_tokenizer("melody")
    score = tune([(0, Q, 67), (Q, Q, 72), (2 * Q, Q, 71), (3 * Q, 2 * Q, 72)], (0, 1, 4), (Q, 2, 4))
    labels = tok.tokens(tok.encode(score))
    assert labels[:4] == ["BOS", "TS_2/4", "LEN_2", "pitch_67"]
    assert labels[4:7] == ["HOLD"] * 3 and labels[7] == "BAR_2"
    back = tok.decode(tok.encode(score))
    # the decoded score pads the pickup to a full 2/4 bar
    np.testing.assert_array_equal(back.tracks[0].notes["start"], np.array([1, 2, 3, 4]) * Q)
    assert tok.grammar().feed(tok.encode(score)).done


def test_melody_takes_the_top_line_and_keeps_rests() -> None:
    tok = get_tokenizer("melody")
    chord = tune([(0, Q, 60), (0, Q, 64), (2 * Q, 2 * Q, 62)])
    back = tok.decode(tok.encode(chord))
    assert len(back.tracks) == 1
    np.testing.assert_array_equal(back.tracks[0].notes["pitch"], [64, 62])
    np.testing.assert_array_equal(back.tracks[0].notes["start"], [0, 2 * Q])


def test_melody_meter_that_lasts_longest_sets_the_bars() -> None:
    tok = get_tokenizer("melody")
    notes = [(i * Q, Q, 60 + i % 5) for i in range(16)]
    labels = tok.tokens(tok.encode(tune(notes, (0, 4, 4), (4 * Q, 3, 4), (7 * Q, 3, 4))))
    assert labels[1] == "TS_3/4"


def test_melody_random_walk_ends_on_the_bar_asked_for() -> None:
    tok = get_tokenizer("melody")
    prefix = tok.primer_for_length(Score(tpq=TPQ, time_signatures=[TimeSignature(0, 6, 8)]), 4)
    for seed in range(3):
        ids = random_walk(tok, prefix, seed)
        assert ids[-1] == EOS and tok.tokens(ids).count("BAR_1") == 1
        assert len(tok.decode(ids).tracks) == 1


def test_voice_leading_rules_leave_no_parallels_or_crossings() -> None:
    """Random walks through the grammar with the rules on break neither rule; without them
    the same walks do (so the test can fail)."""
    from musegen.metrics.voice_leading import check_voice_leading

    counts = {}
    for rules in (False, True):
        tok = ChoraleTokenizer(
            voice_leading=rules,
            no_crossing=rules,
            soprano=(60, 67),
            alto=(55, 64),
            tenor=(50, 60),
            bass=(45, 55),
        )
        prefix = tok.primer_for_length(Score(tpq=TPQ), 4)
        found = {"parallel_fifths": 0, "parallel_octaves": 0, "voice_crossing": 0}
        for seed in range(6):
            report = check_voice_leading(tok.decode(random_walk(tok, prefix, seed)))
            for kind in found:
                found[kind] += report.counts().get(kind, 0)
        counts[rules] = found
    assert all(n > 0 for n in counts[False].values())
    assert all(n == 0 for n in counts[True].values())


def _leaps(score: Score) -> list[int]:
    """Every melodic interval (semitones) of every voice."""
    return [int(x) for t in score.tracks for x in np.abs(np.diff(t.notes["pitch"].astype(int)))]


def test_max_leap_keeps_every_voice_within_its_leap() -> None:
    """Random walks with ``max_leap`` never leap wider in any voice, across rests too; the
    same walks without it do (so the test can fail)."""
    widest = {}
    for limit in (0, 7):
        tok = ChoraleTokenizer(max_leap=limit)
        prefix = tok.primer_for_length(Score(tpq=TPQ), 3)
        widest[limit] = max(
            max(_leaps(tok.decode(random_walk(tok, prefix, s))), default=0) for s in range(4)
        )
    assert widest[0] > 7 >= widest[7]
    with pytest.raises(MusegenError, match="max_leap"):
        ChoraleTokenizer(max_leap=-1)


def test_a_primer_may_break_the_sampling_rules_new_notes_may_not() -> None:
    """The rules bind what is sampled: a given primer with parallel octaves and a two-octave
    leap is taken, and the next bass note still keeps the leap rule."""
    tok = ChoraleTokenizer(voice_leading=True, full_start=True, max_leap=12)
    voices = {"S": [72, 74], "A": [67, 67], "T": [60, 62], "B": [36, 62]}  # S-B octaves move up
    score = Score(tpq=TPQ, time_signatures=[TimeSignature(0, 2, 4)])
    score.tracks = [
        Track(name=v, voice=v, notes=make_notes([0, Q], [Q, Q], p)) for v, p in voices.items()
    ]
    ids = tok.encode(score, eos=False)[:-1]  # all but the bass's last cell (holding its D)
    grammar = tok.grammar().feed(ids)  # taken: the rules do not judge what is given
    allowed = np.flatnonzero(grammar.mask()[tok.pitch_offset : tok.pitch_offset + 128])
    assert allowed.min() >= 62 - 12 and allowed.max() <= 62 + 12  # but bind the next bass note


def test_full_start_makes_every_voice_sound_in_the_first_row() -> None:
    tok = ChoraleTokenizer(full_start=True)
    prefix = tok.primer_for_length(Score(tpq=TPQ), 2)
    for seed in range(5):
        score = tok.decode(random_walk(tok, prefix, seed))
        firsts = [int(t.notes["start"][0]) for t in score.tracks]
        assert len(set(firsts)) == 1


def test_melody_note_revealed_under_an_ending_one_starts_anew() -> None:
    """A held lower note that comes to the top when a higher one ends is a new note of its
    own pitch, not a continuation of the higher one (as in the satb grid)."""
    tok = get_tokenizer("melody")
    back = tok.decode(tok.encode(tune([(0, 4 * Q, 60), (0, Q, 67)])))
    np.testing.assert_array_equal(back.tracks[0].notes["pitch"], [67, 60])
    np.testing.assert_array_equal(back.tracks[0].notes["start"], [0, Q])
    np.testing.assert_array_equal(back.tracks[0].notes["duration"], [Q, 3 * Q])


def test_meter_shares_count_the_opening_meters(tok: ChoraleTokenizer) -> None:
    four = tok.encode(cadence_with_pickup())
    three = tok.encode(
        chorale([[(0, 3 * Q, 72)], [(0, 3 * Q, 64)], [(0, 3 * Q, 55)], [(0, 3 * Q, 48)]], ts=(3, 4))
    )
    assert tok.meter_shares([four, four, three, four]) == {"4/4": 0.75, "3/4": 0.25}
    with pytest.raises(MusegenError, match="starts with a meter"):
        tok.meter_shares([four[1:]])
