"""The melody-chords tokenizer: chord and density tokens per bar, forced by the grammar."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.data.augment import TokenTranspose
from musegen.errors import MusegenError
from musegen.score import Score, TimeSignature, Track, make_notes
from musegen.theory import parse_chord
from musegen.tokenizers import get_tokenizer, tokenizer_from_dict
from musegen.tokenizers.controls import MelodyChordsTokenizer, main

TPQ = 480
Q = TPQ
TRIADS = {"C": (48, 52, 55), "G": (43, 47, 50), "Am": (45, 48, 52), "F": (41, 45, 48)}


def song(chords: list[str], notes_per_bar: list[int], pickup: bool = False) -> Score:
    """A 4/4 tune: per bar a whole-note triad below and ``notes_per_bar`` even melody notes
    on chord tones (optionally after a one-quarter pickup)."""
    mel, acc = [], []
    shift = Q if pickup else 0
    if pickup:
        mel.append((0, Q, 67))
    for b, (name, n) in enumerate(zip(chords, notes_per_bar, strict=True)):
        bar0 = shift + b * 4 * Q
        acc += [(bar0, 4 * Q, p) for p in TRIADS[name]]
        top = [p + 24 for p in TRIADS[name]]
        mel += [(bar0 + k * 4 * Q // n, 4 * Q // n, top[k % 3]) for k in range(n)]
    tracks = [
        Track(make_notes(*zip(*mel, strict=True), 80), name="melody"),
        Track(make_notes(*zip(*acc, strict=True), 70), name="chords"),
    ]
    tss = [TimeSignature(0, 4, 4)]
    if pickup:
        tss = [TimeSignature(0, 1, 4), TimeSignature(Q, 4, 4)]
    return Score(tpq=TPQ, tracks=tracks, time_signatures=tss)


@pytest.fixture
def tok() -> MelodyChordsTokenizer:
    return get_tokenizer("melody-chords", density_edges=[1.0, 2.0])  # type: ignore[return-value]


def test_each_bar_carries_its_chord_and_density(tok: MelodyChordsTokenizer) -> None:
    score = song(["C", "G", "Am", "F"], [2, 4, 8, 1])
    ids = tok.encode(score)
    labels = tok.tokens(ids)
    assert labels[:6] == ["BOS", "TS_4/4", "LEN_4", "BAR_4", "CHORD_C", "DENS_low"]
    bars = tok.bar_controls(ids)
    assert [b.chord for b in bars] == ["C", "G", "Am", "F"]
    # 2, 4, 8, 1 notes over 4 beats: 0.5 low, 1.0 medium (edges are [1, 2)), 2.0 high, low
    assert [b.density for b in bars] == ["low", "medium", "high", "low"]
    assert [b.notes for b in bars] == [2, 4, 8, 1]
    assert tok.grammar().feed(ids).done


def test_pickup_gets_no_chord_and_bars_stay_aligned(tok: MelodyChordsTokenizer) -> None:
    score = song(["F", "C"], [4, 4], pickup=True)
    ids = tok.encode(score)
    assert [b.chord for b in tok.bar_controls(ids)] == ["F", "C"]
    assert tok.tokens(ids)[3] == "pitch_67"  # the pickup's rows come before the first BAR


def test_decoding_is_the_melody_tokenizers(tok: MelodyChordsTokenizer) -> None:
    score = song(["C", "G", "Am", "F"], [2, 4, 8, 1], pickup=True)
    melody = get_tokenizer("melody")
    ours, theirs = tok.decode(tok.encode(score)), melody.decode(melody.encode(score))
    np.testing.assert_array_equal(ours.tracks[0].notes, theirs.tracks[0].notes)


def test_a_bare_melody_is_labelled_by_its_own_notes() -> None:
    tok = get_tokenizer("melody-chords")
    score = song(["G", "Am"], [3, 3])
    score.tracks = score.tracks[:1]  # the melody alone: its three notes are the triad
    assert [b.chord for b in tok.bar_controls(tok.encode(score))] == ["G", "Am"]  # type: ignore[attr-defined]


def test_without_density_edges_there_are_no_density_tokens() -> None:
    tok = get_tokenizer("melody-chords")
    assert "dens" not in tok.vocab
    bars = tok.bar_controls(tok.encode(song(["C"], [4])))  # type: ignore[attr-defined]
    assert bars[0].density is None
    assert tok.bar_controls(tok.encode(Score(tpq=TPQ))) == []  # type: ignore[attr-defined]
    with pytest.raises(MusegenError, match="no density tokens"):
        tok.controlled(density=["low"])  # type: ignore[attr-defined]


def test_config_round_trips_and_melody_ids_are_untouched(tok: MelodyChordsTokenizer) -> None:
    again = tokenizer_from_dict(tok.to_dict())
    assert again.vocab.labels() == tok.vocab.labels()
    melody = get_tokenizer("melody")
    assert len(melody) == 3 + 21 + 33 + 33 + 2 + 128  # the shipped folk model's ids


def test_bad_controls_are_one_line_errors(tok: MelodyChordsTokenizer) -> None:
    for bad, match in (("H", "cannot read chord"), ("Cmaj9", "cannot read chord")):
        with pytest.raises(MusegenError, match=match):
            tok.controlled(chords=[bad])
    with pytest.raises(MusegenError, match="qualities"):
        tok.controlled(chords=["Cmaj7"])
    with pytest.raises(MusegenError, match="choose low"):
        tok.controlled(density=["loud"])
    with pytest.raises(MusegenError, match="density_edges"):
        get_tokenizer("melody-chords", density_edges=[2.0, 1.0])
    with pytest.raises(MusegenError, match="chord_qualities"):
        get_tokenizer("melody-chords", chord_qualities=["maj", "sus4"])


def random_walk(tok: MelodyChordsTokenizer, prefix: list[int], seed: int) -> np.ndarray:
    """A sequence drawn uniformly among what the grammar allows after ``prefix``."""
    rng = np.random.default_rng(seed)
    g = tok.grammar().feed(prefix)
    ids = list(prefix)
    while not g.done and len(ids) < 2000:
        t = int(rng.choice(np.flatnonzero(g.mask())))
        g.step(t)
        ids.append(t)
    return np.array(ids)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), bars=st.integers(1, 9))
def test_the_grammar_forces_every_bars_chord_and_density(seed: int, bars: int) -> None:
    tok = get_tokenizer("melody-chords", density_edges=[1.0, 2.0])
    asked = ["C", "G7", "Am", "F"]
    forced = tok.controlled(chords=asked, density=["high", "low"])  # type: ignore[attr-defined]
    prefix = [1, tok.vocab.id("TS_3/4"), tok.vocab.id(f"LEN_{bars}")]
    ids = random_walk(forced, prefix, seed)
    got = forced.bar_controls(ids)
    assert [b.chord for b in got] == [asked[i % 4] for i in range(bars)]
    assert [b.density for b in got] == [("high", "low")[i % 2] for i in range(bars)]
    assert tok.grammar().feed(ids).done  # the plain grammar accepts what the forced one wrote


def test_transposition_moves_chord_roots_with_the_pitches(tok: MelodyChordsTokenizer) -> None:
    score = song(["C", "G", "Am", "F"], [2, 4, 8, 1])
    aug = TokenTranspose(tok, max_shift=6)
    ids = tok.encode(score)
    for shift in (-5, 2, 6):
        np.testing.assert_array_equal(aug.apply(ids, shift), tok.encode(score.transpose(shift)))


def test_chord_names_read_back_exactly() -> None:
    tok = get_tokenizer("melody-chords", chord_qualities=["maj", "min", "dom7", "hdim7"])
    for label in tok.vocab.labels():
        if label.startswith("CHORD_") and label != "CHORD_N":
            assert tok.chord_token(parse_chord(label[6:])) == tok.vocab.id(label)  # type: ignore[attr-defined]


def test_vocabulary_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", '{"density_edges": [1, 2]}']) == 0
    out = capsys.readouterr().out
    assert "CHORD_C … CHORD_Bm7" in out and "DENS_low … DENS_high" in out


def test_line_chords_are_what_the_melody_spells() -> None:
    score = song(["C", "G", "Am", "F"], [3, 6, 3, 2])
    line = get_tokenizer("melody-chords", chord_source="line")
    both = get_tokenizer("melody-chords")
    assert [b.chord for b in line.bar_controls(line.encode(score))] == ["C", "G", "Am", "F"]  # type: ignore[attr-defined]
    score.tracks[0].notes["pitch"][:3] = [74, 77, 81]  # bar 1's tune now spells Dm over C
    assert line.bar_controls(line.encode(score))[0].chord == "Dm"  # type: ignore[attr-defined]
    assert both.bar_controls(both.encode(score))[0].chord != "Dm"  # type: ignore[attr-defined]
    with pytest.raises(MusegenError, match="chord_source"):
        get_tokenizer("melody-chords", chord_source="bass")


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    meter=st.sampled_from(["4/4", "3/4", "6/8", "2/4"]),
    steps=st.sampled_from([2, 4]),
    bins=st.lists(st.sampled_from(["low", "medium", "high"]), min_size=1, max_size=4),
)
def test_counted_density_lands_every_bar_in_its_bin(
    seed: int, meter: str, steps: int, bins: list[str]
) -> None:
    tok = get_tokenizer("melody-chords", density_edges=[1.0, 1.5], steps_per_quarter=steps)
    forced = tok.controlled(density=bins)  # type: ignore[attr-defined]
    prefix = [1, tok.vocab.id(f"TS_{meter}"), tok.vocab.id("LEN_6")]
    ids = random_walk(forced, prefix, seed)
    rows = forced.grammar().feed(prefix).bar_steps
    for i, bar in enumerate(forced.bar_controls(ids)):
        asked = bins[i % len(bins)]
        assert bar.density == asked
        fewest, most = forced.onset_range(("low", "medium", "high").index(asked), bar.beats, rows)
        assert fewest <= bar.notes <= most  # the encoder's count: notes per beat in the bin
    assert tok.grammar().feed(ids).done  # the plain grammar accepts what the forced one wrote


def test_onset_ranges_follow_the_encoders_bins() -> None:
    tok = get_tokenizer("melody-chords", density_edges=[1.0, 1.5], steps_per_quarter=2)
    # 4/4 in eighths: low 0-3 notes, medium 4-5, high 6-8 (notes per beat < 1, < 1.5, more)
    assert [tok.onset_range(b, 4, 8) for b in range(3)] == [(0, 3), (4, 5), (6, 8)]  # type: ignore[attr-defined]
    # 6/8 in eighths: 6 rows, 6 beats: high (>= 9 notes) cannot be met; the most notes instead
    assert [tok.onset_range(b, 6, 6) for b in range(3)] == [(0, 5), (6, 6), (6, 6)]  # type: ignore[attr-defined]


def test_without_counting_only_the_token_is_forced() -> None:
    tok = get_tokenizer("melody-chords", density_edges=[1.0, 1.5], steps_per_quarter=2)
    prefix = [1, tok.vocab.id("TS_4/4"), tok.vocab.id("LEN_8")]
    loose = tok.controlled(density=["medium"], count=False)  # type: ignore[attr-defined]
    counts = [b.notes for s in range(6) for b in loose.bar_controls(random_walk(loose, prefix, s))]
    assert any(not 4 <= n <= 5 for n in counts)  # a uniform walk leaves the bin often
    assert all(b.density == "medium" for b in loose.bar_controls(random_walk(loose, prefix, 0)))
