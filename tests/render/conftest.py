"""Fixtures for the renderer tests: small scores, and the SoundFont the default install plays."""

from __future__ import annotations

from pathlib import Path

import pytest

from musegen.render.audio import find_soundfont, has_tinysoundfont
from musegen.score import Note, Score, Tempo, TimeSignature, Track

QPM = 120.0  # one beat = 0.5 s, 480 ticks
TPQ = 480


@pytest.fixture(autouse=True)
def _no_soundfont_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their SoundFont explicitly; a developer's $MUSEGEN_SOUNDFONT must not leak in."""
    monkeypatch.delenv("MUSEGEN_SOUNDFONT", raising=False)


@pytest.fixture
def gap_score() -> Score:
    """Piano notes sounding 0-1 s and 3-4 s, silence between (120 qpm, 480 tpq)."""
    notes = [Note(60, 0, 960, 90), Note(64, 0, 960, 80), Note(67, 2880, 960, 90)]
    return Score(
        tpq=TPQ,
        tracks=[Track.from_notes(notes, program=0, name="Piano")],
        tempos=[Tempo(0, QPM)],
        time_signatures=[TimeSignature(0, 4, 4)],
    )


@pytest.fixture
def band_score() -> Score:
    """Four short tracks (piano, bass, strings, drums) over two bars."""
    beat = TPQ
    return Score(
        tpq=TPQ,
        tracks=[
            Track.from_notes([Note(60 + i % 5, i * beat, beat, 80) for i in range(8)], program=0),
            Track.from_notes(
                [Note(36, 0, 4 * beat, 90), Note(43, 4 * beat, 4 * beat, 90)], program=33
            ),
            Track.from_notes([Note(p, 0, 8 * beat, 60) for p in (55, 59, 62)], program=48),
            Track.from_notes(
                [Note(36 + 6 * (i % 2), i * beat, 60, 100) for i in range(8)], is_drum=True
            ),
        ],
        tempos=[Tempo(0, QPM)],
    )


@pytest.fixture(scope="session")
def soundfont() -> Path:
    """The SoundFont ``auto`` finds: pretty_midi's TimGM6mb.sf2 (``make venv`` installs it)."""
    if not has_tinysoundfont():
        pytest.skip(
            "tinysoundfont is not installed (make venv, or pip install --no-deps tinysoundfont)"
        )
    found = find_soundfont()
    if found is None:
        pytest.skip("no SoundFont installed (make venv, or pip install pretty_midi)")
    return found


@pytest.fixture
def no_system_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with nothing but wheels: no system SoundFont, no MuseScore or LilyPond."""
    import shutil

    from musegen.render import audio, notation

    monkeypatch.setattr(audio, "SYSTEM_SOUNDFONT_GLOBS", ())
    real_which = shutil.which
    engravers = {*notation.MUSESCORE_NAMES, "lilypond", "musicxml2ly"}
    monkeypatch.setattr(
        notation.shutil,
        "which",
        lambda name, *a, **k: None if name in engravers else real_which(name, *a, **k),
    )
