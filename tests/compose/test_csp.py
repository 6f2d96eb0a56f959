"""SATB harmonization: zero parallel fifths/octaves and every voice in range (independent
checker) on ten JSB chorale melodies; clear errors for bad input; limits are kept."""

from __future__ import annotations

import numpy as np
import pytest

from composehelpers import SATB_RANGES, out_of_range, parallel_perfects
from musegen.compose.csp import harmonize, harmonize_csp
from musegen.compose.search import SearchGaveUp
from musegen.errors import MusegenError
from musegen.score import Note, Score, TimeSignature, Track

# "Ode to Joy" (two phrases), quarter notes, D major.
ODE = [66, 66, 67, 69, 69, 67, 66, 64, 62, 62, 64, 66, 66, 64, 64,
       66, 66, 67, 69, 69, 67, 66, 64, 62, 62, 64, 66, 64, 62, 62]  # fmt: skip
ODE_DUR = [1] * 12 + [1.5, 0.5, 2] + [1] * 12 + [1.5, 0.5, 2]


def melody(pitches, beats, tpq=480) -> Score:
    notes, t = [], 0
    for p, b in zip(pitches, beats, strict=True):
        notes.append(Note(p, t, int(b * tpq)))
        t += int(b * tpq)
    return Score(tpq=tpq, tracks=[Track.from_notes(notes)], time_signatures=[TimeSignature(0)])


def jsb_melodies(n: int = 10) -> list[tuple[str, Score]]:
    from musegen.data.sources import get_source

    src = get_source("jsb-satb")
    try:
        src.locate()
    except MusegenError:
        pytest.skip("the JSB SATB data (Jsb16thSeparated.json) is not in the shared data folder")
    out = []
    for p in [p for p in src.pieces() if p.split == "valid"][:n]:
        full = src.load(p)
        out.append((p.id, Score(tpq=full.tpq, tracks=[t for t in full.tracks if t.voice == "S"])))
    return out


def check_harmonization(mel: Score, result: Score) -> None:
    assert [t.voice for t in result.tracks] == ["S", "A", "T", "B"]
    assert parallel_perfects(result) == []
    assert out_of_range(result, {**SATB_RANGES, "S": (0, 127)}) == []
    sop = result.voices()["S"].notes
    given = next(t for t in mel.tracks if len(t)).notes
    assert np.array_equal(sop["pitch"], given["pitch"]) and np.array_equal(
        sop["start"], given["start"]
    )
    # no crossing at the beats: S >= A >= T >= B wherever all four sound
    from composehelpers import sounding_grid

    _, p = sounding_grid(result)
    lower = np.stack([p["A"], p["T"], p["B"]])
    assert (np.diff(lower, axis=0) <= 0).all()


def test_ten_jsb_chorale_melodies():
    for name, mel in jsb_melodies(10):
        h = harmonize(mel)
        check_harmonization(mel, h.score)
        assert len(h.chords) == len(h.beat_starts), name
        try:  # the metrics package's checker, where it exists, agrees
            from musegen.metrics.voice_leading import check_voice_leading
        except ImportError:
            continue
        counts = check_voice_leading(h.score, key=h.key).counts()
        assert counts["parallel_fifths"] == counts["parallel_octaves"] == 0, name


def test_ode_to_joy_always_available():
    mel = melody(ODE, ODE_DUR)
    h = harmonize(mel, key="D major")
    check_harmonization(mel, h.score)
    assert h.chords[0] == "I" and h.chords[-1] == "I"
    before_final = [c for c in h.chords if c != "I"][-1]  # the final note lasts two beats
    assert before_final in ("V", "V7")  # an authentic cadence
    assert harmonize_csp(mel, key="D major").n_notes == h.score.n_notes
    assert h.score.key_signatures[0].key == 2  # D major


def test_deterministic():
    mel = melody(ODE, ODE_DUR)
    a, b = harmonize(mel), harmonize(mel)
    assert a.chords == b.chords and a.cost == b.cost


def test_sixteen_bars_harmonize_cleanly():
    # speed is measured by benchmarks/compose.py, never asserted in a test
    mel = melody(ODE * 2 + ODE[:4], ODE_DUR * 2 + [1] * 4)  # 64 beats
    h = harmonize(mel)
    check_harmonization(mel, h.score)


def test_polyphonic_melody_takes_the_top_voice():
    mel = melody(ODE[:8], [1] * 8)
    mel.tracks.append(Track.from_notes([Note(50, 0, 8 * 480)]))  # a held low note under it
    h = harmonize(mel)
    assert any("top voice" in n for n in h.notes)
    assert h.score.voices()["S"].notes["pitch"].tolist() == ODE[:8]


def test_bad_input_is_a_clear_error():
    with pytest.raises(MusegenError, match="no notes"):
        harmonize(Score())
    with pytest.raises(MusegenError, match="soprano range"):
        harmonize(melody([40, 90], [1, 1]))  # no octave shift fits both
    with pytest.raises(MusegenError, match="bad range"):
        harmonize(melody(ODE[:4], [1] * 4), ranges={"A": (80, 70)})
    with pytest.raises(MusegenError, match=r"no voicing|voice-leading"):
        harmonize(melody(ODE[:4], [1] * 4), ranges={"A": (60, 60), "T": (60, 60), "B": (60, 60)})


def test_melody_moved_by_octaves_into_range():
    low = [p - 24 for p in ODE[:8]]
    h = harmonize(melody(low, [1] * 8))
    assert any("+24" in n for n in h.notes)
    assert h.score.voices()["S"].notes["pitch"].tolist() == ODE[:8]
    with pytest.raises(MusegenError, match="fit_octave"):
        harmonize(melody(low, [1] * 8), fit_octave=False)


def test_time_limit_gives_up():
    with pytest.raises(SearchGaveUp, match="gave up"):
        harmonize(melody(ODE, ODE_DUR), max_seconds=0.0)
