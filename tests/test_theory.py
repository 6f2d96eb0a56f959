"""Music theory: keys and their signatures, key finding, chord templates, Roman numerals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from metricshelpers import CLEAN, satb
from musegen.errors import MusegenError
from musegen.score import KeySignature, Note, Score, Track
from musegen.theory import (
    ANALYSIS_CHORDS,
    CHORD_QUALITIES,
    KEY_PROFILES,
    KEYS,
    Chord,
    ChordRule,
    ChordVocabulary,
    Key,
    KeyProfile,
    best_chords,
    estimate_key,
    find_key,
    key_confidence,
    key_correlations,
    key_name,
    key_of_signature,
    key_signature,
    label_chords,
    leading_tone,
    nearest_shift,
    parse_key,
    parse_roman,
    pitch_class_weights,
    roman_numeral,
    scale_pcs,
    scale_pitches,
    score_key,
)

C_MAJOR_SCALE = [60, 62, 64, 65, 67, 69, 71, 72]


def melody(pitches: list[int], beat: int = 480) -> Score:
    return Score(
        tracks=[Track.from_notes([Note(p, i * beat, beat) for i, p in enumerate(pitches)])]
    )


# ----------------------------------------------------------------------------- keys
def test_a_key_is_a_tonic_mode_pair() -> None:
    key = Key(9, True)
    assert key == (9, True) and Key(0) == (0, False)
    tonic, minor = key
    assert (tonic, minor) == (9, True) and key.mode == "minor"
    assert str(key) == "A minor" and str(Key(1)) == "C# major"
    assert Key(1).spelled == "Db major" == key_name((1, False))
    assert Key(8, True).spelled == "G# minor"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("G", (7, False)),
        ("g minor", (7, True)),
        ("e", (4, True)),
        ("Bb major", (10, False)),
        ("B♭ maj", (10, False)),
        ("F#m", (6, True)),
        ("c# min", (1, True)),
        ("Cb", (11, False)),
    ],
)
def test_parse_key(text: str, key: tuple[int, bool]) -> None:
    assert parse_key(text) == key and isinstance(parse_key(text), Key)


@pytest.mark.parametrize("text", ["", "H", "G dorian", "C#x"])
def test_unreadable_keys_say_how_to_write_one(text: str) -> None:
    with pytest.raises(MusegenError, match="cannot read key"):
        parse_key(text)


def test_key_signatures_of_all_24_keys() -> None:
    for key in KEYS:
        sig = key_signature(key, time=96)
        assert -5 <= sig.key <= 6 and sig.time == 96 and sig.minor == key.minor
        assert key_of_signature(sig) == key
        five = key_signature(key, max_sharps=5)
        assert -6 <= five.key <= 5 and key_of_signature(five) == key
    assert key_signature((7, False)).key == 1 and key_signature((4, True)).key == 1  # G, e
    assert key_signature((5, False)).key == -1 and key_signature((2, True)).key == -1  # F, d
    assert key_signature((6, False)).key == 6 and key_signature((6, False), max_sharps=5).key == -6
    assert str(key_signature((3, True))) == "D# minor"
    assert str(key_signature((3, True), max_sharps=5)) == "Eb minor"


def test_scales_and_steps() -> None:
    assert scale_pcs((0, False)).tolist() == [0, 2, 4, 5, 7, 9, 11]
    assert scale_pcs((9, True)).tolist() == [9, 11, 0, 2, 4, 5, 7]  # natural minor
    assert scale_pitches((7, False), 60, 67).tolist() == [60, 62, 64, 66, 67]
    assert leading_tone((9, True)) == 8 and leading_tone((0, False)) == 11
    assert nearest_shift(0, 7) == -5 and nearest_shift(0, 6) == 6 and nearest_shift(11, 1) == 2


# ----------------------------------------------------------------------------- key finding
def test_key_of_scales_and_a_cadence() -> None:
    assert estimate_key(melody(C_MAJOR_SCALE)) == (0, False)
    assert estimate_key(melody([57, 59, 60, 62, 64, 65, 68, 69, 64, 57])) == (9, True)
    assert estimate_key(satb(CLEAN)) == (0, False)
    assert estimate_key(Score()) is None


@pytest.mark.parametrize(
    "ref", ["corpus:bach/bwv66.6", "corpus:bach/bwv1.6", "corpus:bach/bwv10.7"]
)
def test_key_of_bach_chorales_agrees_with_their_signature(ref: str) -> None:
    """F# minor, F major and G minor: the estimate from the notes alone names the key the
    edition writes."""
    from musegen.io import load

    score = load(ref)
    assert estimate_key(score) == key_of_signature(score.key_signatures[0])
    assert score_key(score) == key_of_signature(score.key_signatures[0])


def test_score_key_prefers_the_written_signature() -> None:
    score = melody(C_MAJOR_SCALE)
    score.key_signatures = [KeySignature(0, 1, True)]  # E minor written over C major notes
    assert score_key(score) == (4, True) and estimate_key(score) == (0, False)


def test_equal_weights_and_exact_ties_go_to_the_first_key() -> None:
    assert find_key(np.ones(12)) == (0, False)
    assert find_key(np.zeros(12)) is None
    tritone = np.zeros(12)
    tritone[[1, 7]] = 480  # C# and G for equal time: C# major and G major fit exactly as well
    r = key_correlations(tritone)
    assert r[1] == pytest.approx(r[7], abs=1e-12)
    assert find_key(tritone) == (1, False)


def test_confidence_is_the_correlation_of_the_chosen_key() -> None:
    w = pitch_class_weights(satb(CLEAN))
    key = find_key(w)
    assert key is not None
    r = key_correlations(w)
    assert key_confidence(w, key) == pytest.approx(r.max(), abs=1e-12)
    assert key_confidence(w, key) == pytest.approx(r[KEYS.index(key)], abs=1e-12)
    assert key_confidence(np.ones(12), key) == 0.0


weights = st.lists(st.integers(0, 8), min_size=12, max_size=12).map(
    lambda xs: np.array(xs, dtype=np.float64) * 120
)


@settings(max_examples=200, deadline=None)
@given(w=weights, shift=st.integers(0, 11))
def test_key_estimate_is_transposition_equivariant(w: np.ndarray, shift: int) -> None:
    """Moving every note up ``shift`` semitones moves the key up as much (where one key fits
    best: on an exact tie the first key in order wins, which transposition need not keep)."""
    r = key_correlations(w)
    moved = key_correlations(np.roll(w, shift))
    for minor in (0, 12):
        assert np.allclose(moved[minor : minor + 12], np.roll(r[minor : minor + 12], shift))
    assume(w.any() and np.sort(r)[-1] - np.sort(r)[-2] > 1e-9)
    key = find_key(w)
    assert key is not None
    assert find_key(np.roll(w, shift)) == ((key.tonic + shift) % 12, key.minor)


def test_transposed_scores_change_key_with_them() -> None:
    score = satb(CLEAN)
    for shift in range(-5, 7):
        assert estimate_key(score.transpose(shift)) == (shift % 12, False)


def test_the_profile_is_a_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile is one entry of KEY_PROFILES, and every key finder takes it by name."""
    spike = KeyProfile("test-spike", (1.0,) + (0.0,) * 11, (1.0,) + (0.0,) * 11, "a test")
    monkeypatch.setitem(KEY_PROFILES, spike.name, spike)
    score = melody([60, 62, 64, 65, 67, 67, 67, 69, 71, 72])  # C major, G held longest
    assert estimate_key(score) == (0, False)
    # a spike on the tonic: the pitch class held longest is the tonic, major first on a tie
    assert estimate_key(score, profile=spike.name) == (7, False)
    with pytest.raises(MusegenError, match="unknown key profile"):
        estimate_key(score, profile="nope")


# ----------------------------------------------------------------------------- chords
def test_every_template_labels_itself_with_its_root_in_the_bass() -> None:
    for root in range(12):
        for quality in CHORD_QUALITIES:
            chord = Chord(root, quality, root)
            w = np.zeros((1, 12))
            w[0, list(chord.tones)] = 480
            assert label_chords(w, np.array([48 + root])) == [chord]


def test_chord_names_and_tones() -> None:
    assert Chord(7, "dom7", 11).name == "G7/B" and str(Chord(9, "min", 9)) == "Am"
    assert Chord(11, "hdim7", 11).tones == (11, 2, 5, 9)
    assert Chord(6, "dim7", 6).name == "F#°7"


def test_shared_notes_go_to_the_bass_root_else_the_earlier_template() -> None:
    w = np.zeros((3, 12))
    w[:, [0, 4]] = 1  # C and E: C major, A minor, C and E augmented score alike but for the bass
    w[2, 9] = 0.2  # a short A in the bass
    labels = label_chords(w, np.array([-1, 52, 45]))
    assert [c.name if c else None for c in labels] == ["C", "Eaug", "Am"]


def test_label_chords_scores_whole_rows() -> None:
    w = np.zeros((2, 12))
    w[0, [0, 4, 7]] = 1
    out = label_chords(w, np.array([48, -1]))
    assert out[0] == Chord(0, "maj", 0) and out[1] is None


def test_a_rule_and_a_vocabulary_are_parameters() -> None:
    vocab = ChordVocabulary(("maj", "dom7"), by_root=True)
    assert len(vocab) == 24 and vocab.labels[:3] == [(0, "maj"), (0, "dom7"), (1, "maj")]
    w = np.zeros((2, 12))
    w[0, [7, 11, 2, 5]] = 1  # G7
    w[1, [7, 11, 2]] = [3, 3, 3]
    w[1, 5] = 1  # G with a passing F
    plain = ChordRule(normalise=False, outside=0.5, simpler=1e-6)
    assert best_chords(w, vocabulary=vocab, rule=plain).tolist() == [15, 15]
    assert best_chords(w, vocabulary=vocab).tolist() == [15, 14]  # a passing seventh is no 7th
    assert ANALYSIS_CHORDS.labels[best_chords(w[:1])[0]] == (7, "dom7")
    with pytest.raises(MusegenError, match="unknown chord qualities"):
        ChordVocabulary(("sus4",))


# ----------------------------------------------------------------------------- Roman numerals
@pytest.mark.parametrize(
    ("chord", "key", "numeral"),
    [
        (Chord(7, "dom7", 7), (0, False), "V7"),
        (Chord(2, "min7", 5), (0, False), "ii65"),
        (Chord(11, "dim", 11), (0, False), "vii°"),
        (Chord(0, "aug", 0), (0, False), "I+"),
        (Chord(11, "hdim7", 11), (0, False), "viiø7"),
        (Chord(0, "maj", 4), (0, False), "I6"),
        (Chord(0, "maj", 7), (0, False), "I64"),
        (Chord(7, "dom7", 2), (0, False), "V43"),
        (Chord(7, "dom7", 5), (0, False), "V42"),
        (Chord(10, "maj", 10), (0, False), "bVII"),
        (Chord(4, "maj", 4), (9, True), "V"),
        (Chord(8, "dim", 8), (9, True), "vii°"),
        (Chord(5, "maj", 5), (9, True), "VI"),
        (Chord(0, "maj", 0), (9, True), "III"),
        (Chord(2, "min", 2), (9, True), "iv"),
        (Chord(10, "maj", 10), (9, True), "bII"),
        (Chord(7, "maj", 7), (9, True), "VII"),
        (Chord(8, "dim7", 11), (9, True), "vii°65"),
        (Chord(0, "maj7", 4), (0, False), "Imaj65"),
    ],
)
def test_roman_numerals_both_ways(chord: Chord, key: tuple[int, bool], numeral: str) -> None:
    assert roman_numeral(chord, key) == numeral
    assert roman_numeral(chord, Key(*key)) == numeral
    assert parse_roman(numeral, key) == chord


def test_every_numeral_reads_back_as_its_chord() -> None:
    """roman_numeral then parse_roman gives the chord back, inversions included, in all 24
    keys; the one numeral that names two chords is vii° in minor: the leading-tone chord (on
    the raised 7th), not the rare diminished chord on the lowered 7th."""
    for key in KEYS:
        for root in range(12):
            for quality in CHORD_QUALITIES:
                ambiguous = key.minor and (root - key.tonic) % 12 == 10
                if ambiguous and quality in ("dim", "hdim7", "dim7"):
                    continue
                for bass in Chord(root, quality, root).tones:
                    chord = Chord(root, quality, bass)
                    assert parse_roman(roman_numeral(chord, key), key) == chord, (chord, key)


def test_parse_roman_spellings() -> None:
    assert parse_roman("viio", (0, False)) == Chord(11, "dim", 11)
    assert parse_roman("♭VI", (0, False)) == Chord(8, "maj", 8)
    assert parse_roman("#iv°", (0, False)) == Chord(6, "dim", 6)
    assert parse_roman("vii°7", (9, True)) == Chord(8, "dim7", 8)
    assert parse_roman("VII7", (9, True)) == Chord(7, "dom7", 7)
    for bad in ("Q", "", "iV", "vmaj7", "ii+", "VIII"):
        with pytest.raises(MusegenError, match="Roman numerals"):
            parse_roman(bad, (0, False))


def test_theory_stands_on_the_ground_floor() -> None:
    """theory.py imports numpy and musegen's score and errors, nothing else of musegen, so
    that every layer may use it."""
    import ast
    from pathlib import Path

    import musegen.theory

    tree = ast.parse(Path(musegen.theory.__file__).read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    ours = {n for n in names if n.split(".")[0] == "musegen"}
    assert ours <= {"musegen.score", "musegen.errors"}
    assert {n.split(".")[0] for n in names} - {"musegen"} <= {
        "__future__",
        "collections",
        "dataclasses",
        "functools",
        "typing",
        "numpy",
    }


@pytest.mark.parametrize("by_root", [False, True])
def test_chord_vocabulary_transpose_moves_roots_and_keeps_qualities(by_root: bool) -> None:
    from musegen.theory import ChordVocabulary

    vocab = ChordVocabulary(("maj", "min", "dom7"), by_root=by_root)
    rows = np.arange(len(vocab))
    for shift in (-13, -5, 0, 1, 7, 12):
        moved = vocab.transpose(rows, shift)
        for r, m in zip(rows, moved, strict=True):
            root, quality = vocab.labels[r]
            assert vocab.labels[m] == ((root + shift) % 12, quality)
