"""RL Tuner's rules on hand-made melodies whose answers are counted by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.errors import MusegenError
from musegen.metrics import rewards as R
from musegen.score import KeySignature, Score, TimeSignature, Track, make_notes

TPQ = 480


def melody(pitches: list[int], key: tuple[int, int] = (0, 0), quarters: float = 1.0) -> Score:
    """Quarter notes (or ``quarters`` long) in 4/4 with a key signature (sharps, minor)."""
    step = int(quarters * TPQ)
    n = len(pitches)
    notes = make_notes(
        start=[i * step for i in range(n)], duration=[step] * n, pitch=pitches, velocity=[80] * n
    )
    return Score(
        tpq=TPQ,
        tracks=[Track(notes=notes)],
        time_signatures=[TimeSignature(0, 4, 4)],
        key_signatures=[KeySignature(0, key[0], bool(key[1]))],
    )


def test_top_line_takes_the_highest_note_of_an_onset_and_bars() -> None:
    s = melody([60, 62, 64, 65, 67])
    s.tracks.append(Track(notes=make_notes(start=[0], duration=[480], pitch=[48], velocity=[80])))
    line = R.top_line(s)
    assert line.pitch.tolist() == [60, 62, 64, 65, 67]
    assert line.bar.tolist() == [0, 0, 0, 0, 1]
    assert line.offset.tolist() == [0, 480, 960, 1440, 0]
    assert line.key == (0, False)


def test_key_counts_notes_outside_the_scale() -> None:
    assert R.out_of_key(melody([60, 61, 62, 66])) == 2  # C# and F# in C major
    assert R.key_reward(melody([60, 61, 62, 66])) == -0.5
    # A minor (0 sharps, minor): G and G# (both sevenths) are in, F# is out
    assert R.out_of_key(melody([69, 67, 68, 66], key=(0, 1))) == 1
    assert R.out_of_key(Score(tpq=TPQ)) == 0


def test_tonic_start_and_end() -> None:
    assert R.starts_on_tonic(melody([60, 64, 67]))
    assert not R.ends_on_tonic(melody([60, 64, 67]))
    assert R.ends_on_tonic(melody([64, 62, 72]))  # an octave up is still the tonic
    assert R.tonic_reward(melody([60, 62, 60])) == 1.0
    assert R.tonic_reward(melody([67, 62, 64], key=(1, 0))) == 0.5  # G major: starts on G
    assert R.tonic_reward(Score(tpq=TPQ)) == 0.0


def test_excessive_repetition_counts_past_the_fourth() -> None:
    assert R.excess_repeats(melody([60] * 4 + [62])) == 0
    assert R.excess_repeats(melody([60] * 6 + [62] * 5)) == 3
    assert R.repetition_reward(melody([60] * 6 + [62] * 4)) == -0.2


def test_leaps_resolve_by_turning_back() -> None:
    # up a sixth then a step down: resolved; up a fifth then on up: not; a 4th is no leap
    assert R.leaps(melody([60, 69, 67])) == (1, 1)
    assert R.leaps(melody([60, 67, 69])) == (0, 1)
    assert R.leaps(melody([60, 67, 67])) == (0, 1)  # a repeat does not resolve
    assert R.leaps(melody([60, 65, 64])) == (0, 0)
    assert R.leaps(melody([72, 60, 74])) == (0, 1)  # turns back, but further than the leap
    assert R.leaps(melody([60, 72])) == (0, 0)  # nothing after it yet: not judged
    assert R.leap_reward(melody([60, 69, 67, 74, 76])) == -0.5
    assert R.leap_reward(melody([60, 62])) == 0.0


def test_same_interval_runs() -> None:
    assert R.interval_run_excess(melody([60, 62, 64, 66])) == 0  # three whole tones
    assert R.interval_run_excess(melody([60, 62, 64, 66, 68, 70])) == 2
    assert R.interval_run_excess(melody([60] * 8)) == 0  # repeats are the repetition rule's
    assert R.interval_reward(melody([60, 62, 64, 66, 68, 70])) == pytest.approx(-2 / 5)


def test_motifs_and_their_repeats() -> None:
    # bar 1: C D E F (a motif); bar 2: the same shape a tone up (repeats it);
    # bar 3: G G G A (two pitches, no motif); bar 4: E D C D (a new motif)
    s = melody([60, 62, 64, 65, 62, 64, 66, 67, 67, 67, 67, 69, 64, 62, 60, 62])
    assert R.motifs(s) == (12, 3, 4, 1)
    assert R.motif_reward(s) == pytest.approx(0.5 * 16 / 16)
    # the same pitches with another rhythm do not repeat
    t = melody([60, 62, 64, 65], quarters=1.0)
    half = make_notes(start=[1920, 2400, 2880, 3120], duration=[480, 480, 240, 240],
                      pitch=[60, 62, 64, 65], velocity=[80] * 4)  # fmt: skip
    t.tracks[0].notes = make_notes(
        start=[*t.tracks[0].notes["start"], *half["start"]],
        duration=[*t.tracks[0].notes["duration"], *half["duration"]],
        pitch=[*t.tracks[0].notes["pitch"], *half["pitch"]],
        velocity=[80] * 8,
    )
    assert R.motifs(t) == (8, 2, 0, 0)


def test_theory_reward_prefers_the_textbook_melody() -> None:
    good = melody([60, 62, 64, 65, 67, 65, 64, 62, 60, 62, 64, 65, 64, 62, 60, 60])
    bad = melody([61, 61, 61, 61, 61, 61, 70, 80, 66, 68, 70, 72, 74, 76, 78, 61])
    assert R.theory_reward(good) > R.theory_reward(bad)
    assert R.theory_reward(good) == pytest.approx(
        sum(w * R.PARTS[n](good) for n, w in R.THEORY_WEIGHTS.items())
    )
    assert R.theory_reward(Score(tpq=TPQ)) == 0.0


def test_rl_tuner_table_pools_over_pieces() -> None:
    table = R.rl_tuner_table([melody([60, 60, 60, 60, 60, 60]), melody([60, 69, 67, 61])])
    assert table["notes excessively repeated"] == pytest.approx(100 * 2 / 10)
    assert table["notes not in key"] == pytest.approx(100 * 1 / 10)
    assert table["melodies starting on the tonic"] == 100.0
    assert table["melodies ending on the tonic"] == 50.0
    assert table["leaps resolved"] == 100.0
    assert math.isnan(R.rl_tuner_table([melody([60, 62])])["leaps resolved"])


def test_runs_of_four_that_go_on_to_a_fifth() -> None:
    # runs of 4 (stops), 6 (goes on) and 5 (goes on); a run of 3 is not counted
    pieces = [melody([62, 62, 62, 62, 64, 64, 64, 64, 64, 64]), melody([60] * 5 + [62] * 3)]
    assert R.rl_tuner_figures(pieces[0])["runs_of_four"] == 2
    assert R.rl_tuner_figures(pieces[0])["runs_past_four"] == 1
    table = R.rl_tuner_table(pieces)
    assert table["runs of four repeated onsets that go on"] == pytest.approx(100 * 2 / 3)


def user_reward(score: Score) -> float:
    return float(score.n_notes)


def test_load_rewards_names_modules_and_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    loaded = R.load_rewards("theory, key,tests.metrics.test_rewards:user_reward")
    assert [n for n, _ in loaded] == ["theory", "key", "tests.metrics.test_rewards:user_reward"]
    f = tmp_path / "mine.py"
    f.write_text("def notes(score):\n    return score.n_notes * 2\n")
    ((_, fn),) = R.load_rewards(f"{f}:notes")
    s = melody([60, 62])
    assert fn(s) == 4
    values = R.total_reward([("a", fn), ("b", R.key_reward)], s)
    assert values == {"a": 4.0, "b": 0.0, "total": 4.0}


@pytest.mark.parametrize(
    "spec",
    ["nonsense", "", "no_such_module_xyz:f", "musegen.metrics.rewards:nothing", "/no/file.py:f"],
)
def test_bad_reward_specs_are_one_line_errors(spec: str) -> None:
    with pytest.raises(MusegenError) as e:
        R.load_rewards(spec)
    assert "\n" not in str(e.value)


def test_a_reward_that_returns_no_number_is_an_error() -> None:
    with pytest.raises(MusegenError, match="not a finite number"):
        R.total_reward([("nan", lambda s: float("nan"))], melody([60]))
    with pytest.raises(MusegenError, match="did not return a number"):
        R.total_reward([("text", lambda s: "x")], melody([60]))


# ----------------------------------------------------------------------------- per-note rewards
@pytest.mark.parametrize(
    ("pitches", "part", "expected"),
    [
        # the 5th and 6th onsets on one pitch are excessive: 1/7 of the notes each
        ([60, 60, 60, 60, 60, 60, 62], "repetition", [0, 0, 0, 0, -1 / 7, -1 / 7, 0]),
        ([60, 61, 62], "key", [0, -1 / 3, 0]),  # C sharp, out of C major
        # +7 then -2: resolved; +7 then +2: unresolved, judged when the 5th note is written
        ([60, 67, 65, 72, 74], "leaps", [0, 0, 0, 0, -1 / 2]),
        ([60, 62, 60], "tonic", [0.5, 0, 0.5]),
        ([62, 60, 62], "tonic", [0, 0, 0]),
        ([60, 62, 64, 66, 68, 70], "intervals", [0, 0, 0, 0, -1 / 5, -1 / 5]),
        # bar 1 becomes a motif at its 3rd pitch (3 notes), then a 4th note; bar 2 the same
        # shape a step up: a motif at its 3rd note, a repeated one when its 4th completes it
        (
            [60, 62, 64, 65, 62, 64, 66, 67],
            "motifs",
            [0, 0, 1.5 / 8, 0.5 / 8, 0, 0, 1.5 / 8, 2.5 / 8],
        ),
    ],
)
def test_note_rewards_of_hand_made_melodies(
    pitches: list[int], part: str, expected: list[float]
) -> None:
    got = R.note_rewards(melody(pitches), {part: 1.0})
    assert got.tolist() == pytest.approx(expected)


def test_note_rewards_judge_the_partial_piece_in_the_whole_pieces_key() -> None:
    line = R.top_line(melody([60, 62, 64, 65, 67]))
    part = R.prefix(line, 2)
    assert part.pitch.tolist() == [60, 62] and part.key == line.key
    assert R.out_of_key(R.prefix(R.top_line(melody([60, 61])), 1)) == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(55, 79), min_size=0, max_size=24), st.sampled_from(list(R.PARTS)))
def test_note_rewards_add_up_to_the_piece_reward(pitches: list[int], part: str) -> None:
    piece = melody(pitches, quarters=0.5)
    assert R.note_rewards(piece).sum() == pytest.approx(R.theory_reward(piece), abs=1e-9)
    assert R.note_rewards(piece, {part: 1.0}).sum() == pytest.approx(R.PARTS[part](piece), abs=1e-9)


# ----------------------------------------------------------------------------- shaping and candidates
def test_motif_shaping_credits_each_note_on_the_way_to_a_repeat() -> None:
    # bar 1 a motif of four quarters; bar 2 restates its rhythm and intervals a tone up
    line = R.top_line(melody([60, 62, 64, 65, 62, 64, 66, 67]))
    assert [R.motif_match(R.prefix(line, k)) for k in range(9)] == [0, 0, 0, 0, 0, 1, 2, 3, 0]
    plain = R.note_rewards(line, {"motifs": 1.0})
    shaped = R.note_rewards(line, {"motifs": 1.0}, shaping=True)
    assert (shaped - plain).tolist() == pytest.approx(
        [0, 0, 0, 0, 0.5 / 8, 0.5 / 8, 0.5 / 8, -1.5 / 8]
    )
    # a bar that leaves the way gives its credit back; so does a piece that ends on it
    left = R.note_rewards(melody([60, 62, 64, 65, 62, 64, 64]), {"motifs": 1.0}, shaping=True)
    assert left[-1] < 0
    assert R.motif_match(R.top_line(melody([60, 62, 64, 65, 60]))) == 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(55, 79), min_size=0, max_size=24), st.booleans())
def test_shaped_note_rewards_still_add_up_to_the_piece_reward(
    pitches: list[int], half: bool
) -> None:
    piece = melody(pitches, quarters=0.5 if half else 1.0)
    shaped = R.note_rewards(piece, shaping=True)
    assert shaped.sum() == pytest.approx(R.theory_reward(piece), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([55, 60, 60, 60, 62, 64, 67, 69, 72, 73]), min_size=1, max_size=24))
def test_next_note_rewards_are_what_the_note_would_earn(pitches: list[int]) -> None:
    line = R.top_line(melody(pitches, quarters=0.5))
    local = {name: R.THEORY_WEIGHTS[name] for name in R.LOCAL_PARTS}
    per_note = R.note_rewards(line, local)
    for k in range(len(line)):
        got = R.next_note_rewards(R.prefix(line, k), np.array([line.pitch[k]]), local, line)
        assert got[0] == pytest.approx(per_note[k], abs=1e-12)


def test_next_note_rewards_of_hand_made_states() -> None:
    line = R.top_line(melody([60, 60, 60, 60, 67]))
    cands = np.array([60, 61, 62, 65, 67, 68])
    weights = {"repetition": 1.0, "key": 1.0, "leaps": 1.0}
    # after four Cs a fifth C is excessive (1/5); C# and G# are out of C major
    four = R.prefix(line, 4)
    assert R.next_note_rewards(four, cands, {"repetition": 1.0}, line).tolist() == pytest.approx(
        [-0.2, 0, 0, 0, 0, 0]
    )
    # after the leap C -> G only a step or third back down resolves it (one judged leap)
    got = R.next_note_rewards(line, cands, {"leaps": 1.0}, line)
    assert got.tolist() == [0, 0, 0, 0, -1, -1]
    assert R.next_note_rewards(line, cands, weights, line)[1] == pytest.approx(-0.2 + 0)


def test_theory_weights_change_parts_and_reject_unknown_ones() -> None:
    assert R.theory_weights({"repetition": 30})["repetition"] == 30.0
    assert R.theory_weights(None) == R.THEORY_WEIGHTS
    with pytest.raises(MusegenError, match="unknown part"):
        R.theory_weights({"rhythm": 1.0})
    piece = melody([60, 60, 60, 60, 60, 62])
    assert R.theory_reward(piece, {"repetition": 1.0}) == pytest.approx(-1 / 6)
