"""Names and labels shared by the renderers: General MIDI families, voice names, track labels."""

from __future__ import annotations

from musegen.errors import MusegenError
from musegen.score import Score, Track

GM_FAMILIES = (
    "Piano",
    "Chromatic Percussion",
    "Organ",
    "Guitar",
    "Bass",
    "Strings",
    "Ensemble",
    "Brass",
    "Reed",
    "Pipe",
    "Synth Lead",
    "Synth Pad",
    "Synth Effects",
    "Ethnic",
    "Percussive",
    "Sound Effects",
)
VOICE_NAMES = {"S": "Soprano", "A": "Alto", "T": "Tenor", "B": "Bass"}


def gm_family(program: int) -> str:
    """The General MIDI family of a program number (0..127), e.g. 40 -> ``Strings``."""
    return GM_FAMILIES[max(0, min(127, program)) // 8]


def track_label(track: Track, index: int) -> str:
    """A human name for a track: its name, else its voice, else drums or its GM family."""
    if track.name:
        return track.name
    if track.voice:
        return VOICE_NAMES[track.voice]
    if track.is_drum:
        return "Drums"
    return f"{gm_family(track.program)} {index + 1}"


def check_bars(score: Score, max_bars: int, what: str) -> None:
    """Refuse scores longer than ``max_bars`` bars (cheaply, without listing the bars).

    A stray note hours after the music would otherwise make thousands of empty bars.
    """
    longest = max([ts.bar_ticks(score.tpq) for ts in score.time_signatures] or [4 * score.tpq])
    if score.end > max_bars * max(longest, 1):
        raise MusegenError(
            f"the score's last note ends after bar {max_bars}; {what} is limited to "
            f"{max_bars} bars (cut the score, e.g. with Score.slice_bars)"
        )
