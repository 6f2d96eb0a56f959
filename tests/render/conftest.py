"""Fixtures for the renderer tests: small scores and the SoundFont on this machine, if any."""

from __future__ import annotations

from pathlib import Path

import pytest

from musegen.errors import InputError
from musegen.render.audio import check_soundfont, has_tinysoundfont, system_soundfonts
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
    """A real SoundFont on this machine (the Debian package or pretty_midi's), else skip."""
    if not has_tinysoundfont():
        pytest.skip("tinysoundfont is not installed (pip install --no-deps tinysoundfont)")
    for candidate in system_soundfonts():
        try:
            return check_soundfont(candidate)
        except InputError:
            continue
    pytest.skip("no SoundFont on this machine (apt-get install timgm6mb-soundfont)")
