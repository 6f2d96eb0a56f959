"""What the musical-quality figures measure in one piece: four-voice share, cadence and tonic
endings, and the feature vector, on tiny scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metricshelpers import CLEAN, TPQ, one_track, satb
from musegen.metrics.quality import (
    ending_cadence,
    ends_on_cadence,
    ends_on_tonic,
    four_voice_counts,
    four_voice_share,
    piece_features,
)
from musegen.score import Note, Score, TimeSignature, Track

C_MAJOR = (0, False)


def test_four_voice_share_counts_beats_and_16ths() -> None:
    score = satb(CLEAN)  # 8 beats, all four voices everywhere
    assert four_voice_share(score) == 1.0
    assert four_voice_share(score, "16th") == 1.0
    # the alto rests on beat 3 (a whole beat) and on the second half of beat 6
    alto = score.tracks[1]
    keep = [n for n in alto.note_list() if n.start != 2 * TPQ]
    keep = [Note(n.pitch, n.start, TPQ // 2) if n.start == 5 * TPQ else n for n in keep]
    score.tracks[1] = Track.from_notes(keep, voice="A")
    assert four_voice_counts(score) == (7, 8)
    assert four_voice_counts(score, "16th") == (32 - 4 - 2, 32)
    assert four_voice_share(score) == pytest.approx(7 / 8)


def test_four_voice_share_starts_at_the_first_note() -> None:
    """A pickup padded to a whole bar with rests (as notation reads it) is no voice dropping
    out: the count starts at the first note-on, here three beats in."""
    score = satb(CLEAN)
    padded = Score(
        tpq=score.tpq,
        tracks=[
            Track.from_notes(
                [Note(n.pitch, n.start + 3 * TPQ, n.duration) for n in t.note_list()],
                voice=t.voice,
            )
            for t in score.tracks
        ],
    )
    assert four_voice_counts(padded) == four_voice_counts(score) == (8, 8)
    assert four_voice_share(padded, "16th") == 1.0


def test_four_voice_share_is_nan_without_four_voices() -> None:
    melody = one_track([(60, 0, TPQ), (62, TPQ, TPQ)])
    assert math.isnan(four_voice_share(melody))
    assert math.isnan(four_voice_share(Score(tpq=TPQ)))
    with pytest.raises(ValueError, match="step"):
        four_voice_share(satb(CLEAN), "8th")


def test_authentic_ending_found_and_ending_on_v_not() -> None:
    ending_v_i = satb(CLEAN)  # ... ii V I
    assert ending_cadence(ending_v_i, C_MAJOR) == "authentic"
    assert ends_on_cadence(ending_v_i, C_MAJOR)
    assert ends_on_cadence(ending_v_i)  # the estimated key is C major too
    ending_on_v = satb(CLEAN[:7])  # ... vi ii V
    assert ending_cadence(ending_on_v, C_MAJOR) is None
    assert not ends_on_cadence(ending_on_v, C_MAJOR)


def test_plagal_and_leading_tone_endings() -> None:
    plagal = satb([*CLEAN[:4], (72, 69, 65, 53), (72, 67, 64, 48)])  # ... IV I
    assert ending_cadence(plagal, C_MAJOR) == "plagal"
    vii_i = satb([*CLEAN[:4], (74, 65, 62, 59), (72, 64, 60, 60)])  # ... vii°6 I
    assert ending_cadence(vii_i, C_MAJOR) == "authentic"
    # a minor key ending on a major tonic (Picardy third): V - I in a minor still counts
    picardy = satb([(69, 64, 60, 45), (68, 64, 59, 52), (69, 64, 61, 45)])
    assert ending_cadence(picardy, (9, True)) == "authentic"


def test_endings_of_empty_scores() -> None:
    assert not ends_on_cadence(Score(tpq=TPQ))
    assert not ends_on_tonic(Score(tpq=TPQ))


def test_ends_on_tonic() -> None:
    tune = one_track([(60, 0, TPQ), (64, TPQ, TPQ), (67, 2 * TPQ, TPQ), (72, 3 * TPQ, TPQ)])
    assert ends_on_tonic(tune, C_MAJOR)
    up = one_track([(60, 0, TPQ), (64, TPQ, TPQ), (67, 2 * TPQ, TPQ), (71, 3 * TPQ, TPQ)])
    assert not ends_on_tonic(up, C_MAJOR)
    # several notes at the last onset: the lowest counts
    assert ends_on_tonic(satb(CLEAN), C_MAJOR)


def test_piece_features_four_voices_and_melody() -> None:
    f = piece_features(satb(CLEAN))
    assert f["four_voice_share.beats"] == 1.0
    assert f["vl.total"] == 0.0
    assert f["end.cadence"] == 1.0
    assert f["voice.B.mean_pitch"] == pytest.approx(np.mean([c[3] for c in CLEAN]))
    tune = piece_features(one_track([(60 + 2 * i, i * TPQ, TPQ) for i in range(8)]))
    assert set(tune) == set(f)  # one vector layout for every piece
    assert math.isnan(tune["vl.total"]) and math.isnan(tune["four_voice_share.beats"])
    assert tune["melody.step_share"] == 1.0
    assert all(math.isfinite(v) for k, v in f.items() if not k.startswith("cadence"))


def test_meter_is_respected_by_beats() -> None:
    score = satb(CLEAN)
    score.time_signatures = [TimeSignature(0, 6, 8)]  # beats are eighths: 16 of them
    assert four_voice_counts(score) == (16, 16)
