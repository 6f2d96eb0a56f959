"""Chord-tone guidance: notes of a bar with an asked chord start on its tones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.errors import MusegenError
from musegen.sampling.chord_tones import chord_toned
from musegen.score import Score, TimeSignature
from musegen.theory import parse_chord
from musegen.tokenizers import get_tokenizer

ASKED = ["C", "G7", "Am", "F", "Bdim"]


def walk(tok, bars: int, seed: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A random sequence the grammar allows (uniform over its mask)."""
    primer = tok.primer_for_length(Score(tpq=480, time_signatures=[TimeSignature(0)]), bars)
    grammar = tok.grammar().feed(primer)
    ids, rng = list(primer), np.random.default_rng(seed)
    while not grammar.done:
        t = int(rng.choice(np.flatnonzero(grammar.mask())))
        grammar.step(t)
        ids.append(t)
    return np.array(ids)


def onsets(tok, ids: np.ndarray) -> list[list[tuple[int, int]]]:  # type: ignore[no-untyped-def]
    """Per bar: (row, MIDI pitch) of each note that starts in it."""
    lo, hi = tok.vocab.span("bar")
    bars: list[list[tuple[int, int]]] = []
    row = 0
    for t in ids.tolist():
        if lo <= t < hi:
            bars.append([])
            row = 0
        elif t >= tok.rest_id and bars:
            if t >= tok.pitch_offset:
                bars[-1].append((row, t - tok.pitch_offset))
            row += 1
    return bars


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from(["beats", "all"]))
def test_notes_start_on_the_chord_tones(seed: int, level: str) -> None:
    tok = get_tokenizer("melody-chords", steps_per_quarter=2)
    guided = chord_toned(tok.controlled(chords=ASKED), level)  # type: ignore[attr-defined]
    ids = walk(guided, 5, seed)
    bars = onsets(tok, ids)
    assert len(bars) == 5
    for b, notes in enumerate(bars):
        tones = parse_chord(ASKED[b]).pitch_classes
        for row, pitch in notes:
            if level == "all" or row % 2 == 0:  # two rows a quarter: a beat every 2 rows
                assert pitch % 12 in tones
    free = onsets(tok, walk(tok.controlled(chords=ASKED), 5, seed))  # type: ignore[attr-defined]
    outside = [
        p % 12 not in parse_chord(ASKED[b]).pitch_classes for b, n in enumerate(free) for _, p in n
    ]
    assert any(outside)  # unguided, the walk strays


def test_levels_and_errors() -> None:
    tok = get_tokenizer("melody-chords")
    assert chord_toned(tok, "off") is tok
    with pytest.raises(MusegenError, match="choose off, beats, all"):
        chord_toned(tok, "most")
    with pytest.raises(MusegenError, match="chord tokens"):
        chord_toned(get_tokenizer("melody"), "all")


def test_generate_cli_chord_tones(tmp_path, capsys, one_torch_thread) -> None:  # type: ignore[no-untyped-def]
    import json

    from musegen.cli.main import main
    from musegen.io import load
    from musegen.models import build_model, save_model

    tok = get_tokenizer("melody-chords", steps_per_quarter=2)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
    save_model(model, tmp_path / "m", {"tokenizer": tok.to_dict()})
    args = ["generate", "--model", str(tmp_path / "m"), "--bars", "2", "--seed", "4"]
    out = tmp_path / "out"
    assert main([*args, "--chords", "C Dm", "--chord-tones", "all", "--out", str(out)]) == 0
    assert json.loads((out / "piece.json").read_text())["controls"]["chord_tones"] == "all"
    bars = onsets(tok, tok.encode(load(out / "piece.mid")))  # a pickup is free: not counted
    for chord, notes in zip(["C", "Dm"], bars, strict=True):
        assert all(p % 12 in parse_chord(chord).pitch_classes for _, p in notes)
    capsys.readouterr()
    assert main([*args, "--chord-tones", "beats", "--out", str(out)]) == 2
    assert "give --chords too" in capsys.readouterr().err


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**16))
def test_spelled_bars_carry_their_chord_by_the_labeller(seed: int) -> None:
    """Under ``spell`` a bar opens on its root, the lowest note, and sounds every tone before
    repeating one; so a bar with enough notes is labelled with the chord asked for by the
    project's labeller (the tokenizer's own, over the melody: chord_source line)."""
    tok = get_tokenizer("melody-chords", steps_per_quarter=2, chord_source="line")
    guided = chord_toned(tok.controlled(chords=ASKED), "spell")  # type: ignore[attr-defined]
    ids = walk(guided, 5, seed)
    bars = onsets(tok, ids)
    marks = np.flatnonzero(tok.vocab.is_in(ids, "bar"))
    labels = [tok.chord_name(t) for t in tok._line_chords(ids, marks)]  # type: ignore[attr-defined]
    for chord, notes, label in zip(ASKED, bars, labels, strict=True):
        c = parse_chord(chord)
        if not notes:
            continue
        pitches = [p for _, p in notes]
        assert pitches[0] % 12 == c.root and pitches[0] == min(pitches)
        size = len(c.pitch_classes)
        assert {p % 12 for p in pitches[:size]} == set(c.pitch_classes) or len(pitches) < size
        if len(pitches) >= size and notes[0][0] == 0 and size == 3:  # a seventh may be
            assert label == parse_chord(chord).name  # too short to outweigh the triad
