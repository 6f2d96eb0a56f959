"""Independent rule checkers for the composition tests.

Written from the rules as stated (textbooks, and the claims in the modules' docstrings), not
from the modules' code: pitches in semitones and pitch classes only, no scale-degree helpers
from musegen, so a shared bug cannot hide itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from musegen.score import Score

# Textbook SATB ranges (Kostka & Payne, with the soprano up to A5 as in Bach's chorales).
SATB_RANGES = {"S": (60, 81), "A": (55, 74), "T": (48, 67), "B": (40, 60)}
MAJOR = {0, 2, 4, 5, 7, 9, 11}
NATURAL_MINOR = {0, 2, 3, 5, 7, 8, 10}


# --------------------------------------------------------------------------- four parts
def sounding_grid(score: Score) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Every onset time of any voice, and each labelled voice's pitch there (-1 = silent)."""
    voices = score.voices()
    times = np.unique(np.concatenate([t.notes["start"] for t in voices.values()]))
    out = {}
    for name, track in voices.items():
        p = np.full(len(times), -1)
        for n in track.notes:
            inside = (times >= n["start"]) & (times < n["start"] + n["duration"])
            p[inside] = n["pitch"]
        out[name] = p
    return times, out


def parallel_perfects(score: Score) -> list[str]:
    """Consecutive perfect fifths/octaves/unisons (compound too, either direction) between
    any two voices that both change pitch from one onset time to the next."""
    times, p = sounding_grid(score)
    names = [v for v in "SATB" if v in p]
    bad = []
    for i, hi in enumerate(names):
        for lo in names[i + 1 :]:
            a, b = p[hi], p[lo]
            for k in range(len(times) - 1):
                if min(a[k], b[k], a[k + 1], b[k + 1]) < 0:
                    continue
                if a[k] == a[k + 1] or b[k] == b[k + 1]:
                    continue
                first, second = abs(a[k] - b[k]) % 12, abs(a[k + 1] - b[k + 1]) % 12
                if first == second and first in (0, 7):
                    bad.append(f"{hi}-{lo} at tick {times[k + 1]}: {'P5' if first else 'P8'}")
    return bad


def out_of_range(score: Score, ranges: dict[str, tuple[int, int]] = SATB_RANGES) -> list[str]:
    out = []
    for name, track in score.voices().items():
        lo, hi = ranges[name]
        p = track.notes["pitch"]
        if len(p) and (p.min() < lo or p.max() > hi):
            out.append(f"{name}: {p.min()}..{p.max()} outside {lo}..{hi}")
    return out


def steps_parallels(rows: np.ndarray) -> list[int]:
    """Indices k where rows[k] -> rows[k+1] (S, A, T, B pitches) has consecutive perfects."""
    bad = []
    for k in range(len(rows) - 1):
        a, b = rows[k], rows[k + 1]
        for i in range(4):
            for j in range(i + 1, 4):
                if a[i] == b[i] or a[j] == b[j]:
                    continue
                x, y = abs(a[i] - a[j]) % 12, abs(b[i] - b[j]) % 12
                if x == y and x in (0, 7):
                    bad.append(k)
    return bad


# --------------------------------------------------------------------------- counterpoint
def _scale(tonic: int, minor: bool) -> set[int]:
    return {(tonic + x) % 12 for x in (NATURAL_MINOR if minor else MAJOR)}


def _melodic_problems(seq: Sequence[int], tonic: int, minor: bool) -> list[str]:
    """Repeats, forbidden intervals, leap recovery, three leaps one way, x y x y."""
    out = []
    for k in range(1, len(seq)):
        s = seq[k] - seq[k - 1]
        a, b = (seq[k - 1] - tonic) % 12, (seq[k] - tonic) % 12
        if s == 0:
            out.append(f"repeated note at {k}")
        elif abs(s) not in (1, 2, 3, 4, 5, 7, 12) and s != 8:
            out.append(f"forbidden interval {s} at {k}")
        elif minor and {a, b} == {8, 11} and abs(s) == 3:
            out.append(f"augmented second at {k}")
        elif minor and abs(s) == 4 and {a, b} == {11, 3}:
            out.append(f"diminished fourth at {k}")
        if k >= 2:
            prev = seq[k - 1] - seq[k - 2]
            if abs(prev) >= 5 and prev * s > 0:
                out.append(f"leap of a 4th+ not turned at {k}")
            if abs(prev) >= 7 and abs(s) > 2:
                out.append(f"leap of a 5th+ not followed by a step at {k}")
        if k >= 3:
            ivs = [seq[k - 2] - seq[k - 3], seq[k - 1] - seq[k - 2], s]
            if all(abs(x) >= 3 for x in ivs) and (
                all(x > 0 for x in ivs) or all(x < 0 for x in ivs)
            ):
                out.append(f"three leaps one way at {k}")
            if seq[k] == seq[k - 2] and seq[k - 1] == seq[k - 3]:
                out.append(f"x y x y at {k}")
    if max(seq) - min(seq) > 16:
        out.append("range over a tenth")
    top = max(seq)
    if list(seq).count(top) != 1 or seq[0] == top or seq[-1] == top:
        out.append("no single inner climax")
    return out


def cantus_problems(cf: Sequence[int], tonic: int, minor: bool) -> list[str]:
    out = _melodic_problems(cf, tonic, minor)
    if cf[0] % 12 != tonic or cf[-1] % 12 != tonic:
        out.append("not tonic at the ends")
    if not 1 <= cf[-2] - cf[-1] <= 2:
        out.append("does not fall to the final by step")
    if any(p % 12 not in _scale(tonic, minor) for p in cf):
        out.append("chromatic note")
    if any(list(cf).count(p) > 3 for p in cf):
        out.append("a pitch more than three times")
    return out


def counterpoint_problems(
    cf: Sequence[int],
    line: Sequence[tuple[int, int, int]],
    tonic: int,
    minor: bool,
    species: int,
    above: bool,
) -> list[str]:
    """Every broken rule that musegen.compose.rules claims to obey."""
    n = len(cf)
    slots = [(i, b) for i in range(n - 1) for b in range(species)] + [(n - 1, 0)]
    if [(b, beat) for _, b, beat in line] != slots:
        return ["wrong rhythm for the species"]
    cp = [p for p, _, _ in line]
    last = len(cp) - 1
    d = [(p - cf[b]) if above else (cf[b] - p) for p, b, _ in line]
    out = _melodic_problems(cp, tonic, minor)
    scale = _scale(tonic, minor)
    for k, (p, bar, beat) in enumerate(line):
        if not 0 <= d[k] <= 16:
            out.append(f"crossing or wider than a tenth at {k}")
        if d[k] == 0 and 0 < k < last:
            out.append(f"inner unison at {k}")
        consonant = d[k] % 12 in (0, 3, 4, 7, 8, 9)
        if beat == 0 and not consonant:
            out.append(f"downbeat dissonance at {k}")
        if beat == 1 and not consonant:
            before, after = cp[k] - cp[k - 1], cp[k + 1] - cp[k]
            if not (1 <= abs(before) <= 2 and 1 <= abs(after) <= 2 and before * after > 0):
                out.append(f"dissonant upbeat not passing at {k}")
        rel = (p - tonic) % 12
        if p % 12 not in scale:
            ok = minor and ((rel == 11 and k == last - 1) or (rel == 9 and k == last - 2))
            if not ok:
                out.append(f"chromatic note at {k}")
        if minor and rel == 9 and p % 12 not in scale and cp[k + 1] - p != 2:
            out.append(f"raised 6th does not rise to the leading tone at {k}")
        if k == 0 and d[0] % 12 not in ((0, 7) if above else (0,)):
            out.append("bad first interval")
        if k > 0 and bar != line[k - 1][1]:
            pd = d[k - 1]
            if d[k] % 12 in (0, 7) and pd % 12 == d[k] % 12:
                out.append(f"consecutive perfects at {k}")
            cf_move, cp_move = cf[bar] - cf[line[k - 1][1]], p - cp[k - 1]
            if d[k] % 12 in (0, 7) and cf_move * cp_move > 0:
                out.append(f"hidden perfect at {k}")
    downs = [k for k, (_, _, beat) in enumerate(line) if beat == 0]
    for a, b in itertools.pairwise(downs):
        if species == 2 and d[a] % 12 == d[b] % 12 and d[b] % 12 in (0, 7):
            out.append(f"perfects on successive downbeats at {b}")
    for j in range(3, len(downs)):
        run = [d[downs[i]] % 12 for i in range(j - 3, j + 1)]
        if all(x in (3, 4) for x in run) or all(x in (8, 9) for x in run):
            out.append(f"four thirds or sixths in a row ending at {downs[j]}")
    if d[last] % 12 != 0 or cp[last] % 12 != tonic:
        out.append("does not end on the tonic in unison/octave")
    step = cp[last] - cp[last - 1]
    if not 1 <= abs(step) <= 2 or step * (cf[-1] - cf[-2]) > 0:
        out.append("final not reached by step in contrary motion")
    if minor and (cp[last - 1] - tonic) % 12 == 10:
        out.append("lowered 7th before the final")
    return out
