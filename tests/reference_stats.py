"""A plain-Python reference of :mod:`musegen.metrics.stats`: loops over notes, no numpy.

Written from the definitions in the stats module's docstring, independently of its vectorised
code, so the two can check each other (tests/metrics/test_stats.py) and so benchmarks/stats.py
has a straightforward peer to time. Input is library-neutral: notes as ``(start, duration,
pitch, track)`` ticks, ``tpq`` and time signatures as ``(tick, numerator, denominator)``.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

NAN = float("nan")
Note = tuple[int, int, int, int]  # start, duration, pitch, track
LENGTHS = [4, 2, 1, 1 / 2, 1 / 4, 3, 3 / 2, 3 / 4, 3 / 8, 4 / 3, 2 / 3, 1 / 3]
MAJOR = (0, 2, 4, 5, 7, 9, 11)
HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)


def _grid(end: int, tpq: int, sigs: list[tuple[int, int, int]]) -> tuple[list, list]:
    """Bars as (start, length) and beats as (start, length) in [0, end)."""
    sigs = sorted(s for s in sigs if s[0] < max(end, 1))
    if not sigs or sigs[0][0] > 0:
        sigs = [(0, 4, 4), *sigs]
    bars, beats = [], []
    for k, (t0, num, den) in enumerate(sigs):
        t1 = sigs[k + 1][0] if k + 1 < len(sigs) else max(end, t0 + 1)
        bar_len, beat_len = tpq * 4 * num // den, tpq * 4 // den
        t = t0
        while t < t1:
            bars.append((t, bar_len))
            t += bar_len
        t = t0
        while t < t1:
            beats.append((t, beat_len))
            t += beat_len
    return bars, beats


def _index(starts: list[tuple[int, int]], tick: int) -> int:
    i = 0
    for k, (s, _) in enumerate(starts):
        if s <= tick:
            i = k
    return i


def features(notes: list[Note], tpq: int, sigs: list[tuple[int, int, int]]) -> dict[str, float]:
    """Every scalar feature of the stats module, by its definition."""
    if not notes:
        return {}
    n = len(notes)
    pcs = [p % 12 for _, _, p, _ in notes]
    last = max(max(s + d for s, d, _, _ in notes), max(s for s, _, _, _ in notes) + 1)
    bars, beats = _grid(last, tpq, sigs)
    out: dict[str, float] = {}
    out["pitch_count"] = len({p for _, _, p, _ in notes})
    out["pitch_class_count"] = len(set(pcs))
    out["pitch_range"] = max(p for _, _, p, _ in notes) - min(p for _, _, p, _ in notes)
    counts = Counter(pcs)
    out["pitch_class_entropy"] = -sum(c / n * math.log2(c / n) for c in counts.values())
    best = 0
    for steps in (MAJOR, HARMONIC_MINOR):
        for tonic in range(12):
            scale = {(tonic + s) % 12 for s in steps}
            best = max(best, sum(1 for pc in pcs if pc in scale))
    out["scale_consistency"] = best / n
    out.update(_texture(notes))
    out["note_density"] = n * tpq / last
    empty = 0
    for b0, blen in beats:
        if not any(s < b0 + blen and max(s + d, s + 1) > b0 for s, d, _, _ in notes):
            empty += 1
    out["empty_beat_rate"] = empty / len(beats)
    out["mean_note_length"] = sum(d for _, d, _, _ in notes) / n / tpq
    onsets = sorted({s for s, _, _, _ in notes})
    gaps = [(b - a) / tpq for a, b in itertools.pairwise(onsets)]
    out["mean_ioi"] = sum(gaps) / len(gaps) if gaps else NAN
    out["groove_consistency"] = _groove(notes, tpq, bars)
    out["self_similarity"] = _self_similarity(notes, tpq, bars)
    out["repetition_rate"] = _repetition(notes, bars)
    return out


def _texture(notes: list[Note]) -> dict[str, float]:
    times = sorted({t for s, d, _, _ in notes for t in (s, s + d)})
    sounding = weighted = several = 0.0
    for a, b in itertools.pairwise(times):
        k = sum(1 for s, d, _, _ in notes if s <= a and s + d >= b)
        if k:
            sounding += b - a
            weighted += k * (b - a)
            if k > 1:
                several += b - a
    if not sounding:
        return {"polyphony": NAN, "polyphony_rate": NAN}
    return {"polyphony": weighted / sounding, "polyphony_rate": several / sounding}


def _position(start: int, bars: list, tpq: int, per_quarter: int) -> tuple[int, int]:
    i = _index(bars, start)
    b0, blen = bars[i]
    size = -(-blen * per_quarter // tpq)
    return i, min((start - b0) * per_quarter // tpq, size - 1)


def _groove(notes: list[Note], tpq: int, bars: list) -> float:
    if len(bars) < 2:
        return NAN
    patterns = [set() for _ in bars]
    for s, _, _, _ in notes:
        i, pos = _position(s, bars, tpq, 12)
        patterns[i].add(pos)
    sizes = [-(-blen * 12 // tpq) for _, blen in bars]
    dist = [
        len(patterns[i] ^ patterns[i + 1]) / max(sizes[i], sizes[i + 1])
        for i in range(len(bars) - 1)
    ]
    return 1 - sum(dist) / len(dist)


def _self_similarity(notes: list[Note], tpq: int, bars: list) -> float:
    vectors: list[Counter] = [Counter() for _ in bars]
    for s, _, p, _ in notes:
        i, pos = _position(s, bars, tpq, 4)
        vectors[i][(pos, p % 12)] += 1
    full = [v for v in vectors if v]
    if len(full) < 2:
        return NAN

    def cosine(a: Counter, b: Counter) -> float:
        dot = sum(a[k] * b[k] for k in a)
        return dot / math.sqrt(sum(x * x for x in a.values()) * sum(x * x for x in b.values()))

    best = [max(cosine(full[k], full[j]) for j in range(k)) for k in range(1, len(full))]
    return sum(best) / len(best)


def _repetition(notes: list[Note], bars: list) -> float:
    contents: dict[int, list] = {}
    for s, d, p, _ in notes:
        i = _index(bars, s)
        contents.setdefault(i, []).append((s - bars[i][0], p, d))
    keys = [tuple(sorted(contents[i])) for i in sorted(contents)]
    if len(keys) < 2:
        return NAN
    return sum(1 for k in range(1, len(keys)) if keys[k] in keys[:k]) / (len(keys) - 1)


def histograms(notes: list[Note], tpq: int) -> dict[str, list]:
    """The histogram features (pitch classes, transitions, note lengths) by their definitions."""
    n = len(notes)
    pch = [sum(1 for _, _, p, _ in notes if p % 12 == c) / n for c in range(12)]
    matrix = [[0.0] * 12 for _ in range(12)]
    by_track: dict[int, list] = {}
    for _s, _, p, t in sorted(notes, key=lambda x: (x[3], x[0], x[2])):
        by_track.setdefault(t, []).append(p % 12)
    for seq in by_track.values():
        for a, b in itertools.pairwise(seq):
            matrix[a][b] += 1
    total = sum(map(sum, matrix))
    matrix = [[x / total for x in row] for row in matrix] if total else matrix
    nlh = [0.0] * len(LENGTHS)
    for _, d, _, _ in notes:
        q = max(d / tpq, 1e-6)
        k = min(range(len(LENGTHS)), key=lambda i: abs(math.log2(q) - math.log2(LENGTHS[i])))
        nlh[k] += 1 / n
    return {
        "pitch_class_histogram": pch,
        "pitch_class_transition_matrix": matrix,
        "note_length_histogram": nlh,
    }
