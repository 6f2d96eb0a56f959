"""Algorithmic composition speed: the issue's two targets, plus a naive baseline for Markov.

* ``csp_harmonize_16_bars``: four-part harmonization of a 16-bar (64-beat) melody with
  ``musegen.compose.csp`` — the soprano of JSB valid chorale 008 cut to 16 bars when the
  shared data is there, else "Ode to Joy" repeated to 64 beats. Target: < 1 s.
* ``markov_1000_melodies``: 1,000 eight-bar melodies (events drawn and turned into Score
  objects) from an order-2 pitch/length model trained on the vendored Nottingham tunes.
  Target: < 5 s. The note gives, for scale, a plain-Python sampler of the same chains (dicts
  of counts, one melody at a time, ``random.choices``) run on the same machine.
* ``markov_train_nottingham``: training that order-4 model on 694 tunes (no target).

No other library offers these algorithms on this data, so the issue's targets stand in as
"peer" (a "note" says so). Best of three runs; ``ours_cpu`` is CPU time, which a busy machine
disturbs less than wall time. JSON lines on stdout.

    .venv/bin/python benchmarks/compose.py
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict


def best(fn, repeats: int = 3) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    """Best wall and CPU seconds of ``repeats`` runs, and the last result."""
    wall, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall = min(wall, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu, out


def row(name: str, ours: float, cpu: float, peer: float | None, note: str) -> None:
    ratio = round(ours / peer, 4) if peer else None
    out = {"benchmark": name, "ours": round(ours, 4), "ours_cpu": round(cpu, 4), "peer": peer}
    print(json.dumps({**out, "ratio": ratio, "unit": "s", "note": note}), flush=True)


def sixteen_bar_melody():  # type: ignore[no-untyped-def]
    from musegen.data.sources import get_source
    from musegen.errors import MusegenError
    from musegen.score import Note, Score, Track

    try:
        src = get_source("jsb-satb")
        piece = [p for p in src.pieces() if p.split == "valid"][8]
        full = src.load(piece).slice_bars(0, 16)
        return Score(tpq=full.tpq, tracks=[t for t in full.tracks if t.voice == "S"]), (
            f"JSB {piece.id} soprano, bars 1-16"
        )
    except MusegenError:
        ode = [66, 66, 67, 69, 69, 67, 66, 64, 62, 62, 64, 66, 66, 64, 64, 66]
        notes = [Note(p, i * 480, 480) for i, p in enumerate(ode * 4)]
        return Score(tracks=[Track.from_notes(notes)]), "Ode to Joy x4 (no JSB data here)"


def bench_csp() -> None:
    from musegen.compose.csp import harmonize

    melody, what = sixteen_bar_melody()
    harmonize(melody)  # warm-up (imports)
    wall, cpu, h = best(lambda: harmonize(melody))
    note = (
        f"target 1 s (issue #8) as peer; {what}: {len(h.beat_starts)} beats, "  # type: ignore[attr-defined]
        f"{h.states} states, cost {h.cost:.2f}"  # type: ignore[attr-defined]
    )
    row("csp_harmonize_16_bars", wall, cpu, 1.0, note)


def naive_sampler(model, num: int, bars: int, seed: int) -> list[list[tuple[int, int]]]:  # type: ignore[no-untyped-def]
    """The same chains as dicts of Counters, sampled one melody and one note at a time."""
    tables = []
    for chain in (model.length, model.pitch):
        by_ctx: dict[tuple[int, int], Counter] = defaultdict(Counter)
        for li, lv in enumerate(chain.levels):
            for r, key in enumerate(lv.keys.tolist()):
                for j in range(lv.ptr[r], lv.ptr[r + 1]):
                    by_ctx[(li, key)][int(lv.targets[j])] = int(lv.counts[j])
        tables.append((chain, by_ctx))
    rng = random.Random(seed)
    out = []
    for _ in range(num):
        hist = {0: [tables[0][0].bos] * model.order, 1: [tables[1][0].bos] * model.order}
        t, mel = 0, []
        while t < bars * 16:
            pick = []
            for which, (chain, by_ctx) in enumerate(tables):
                h = hist[which]
                for li, lv in enumerate(chain.levels):
                    code = sum(h[-j] * chain.radix ** (j - 1) for j in range(1, lv.history + 1))
                    if lv.conditioned:
                        code += (t % 16) * chain.radix**lv.history
                    if (li, code) in by_ctx:
                        c = by_ctx[(li, code)]
                        pick.append(rng.choices(list(c), weights=list(c.values()))[0])
                        break
                hist[which] = [*hist[which][1:], pick[-1]]
            length = min(pick[0], bars * 16 - t)
            mel.append((pick[1], length))
            t += length
        out.append(mel)
    return out


def bench_markov() -> None:
    from musegen.compose.markov import MarkovModel
    from musegen.data.refs import iter_scores

    scores = list(iter_scores("source:nottingham", "train"))
    wall, cpu, _ = best(lambda: MarkovModel.train(scores, order=4))
    row(
        "markov_train_nottingham",
        wall,
        cpu,
        None,
        f"order 4, {len(scores)} tunes (events, key normalisation, counts at 5 levels); no target",
    )
    model = MarkovModel.train(scores, order=2)

    def sample():  # type: ignore[no-untyped-def]
        batch = model.sample(1000, 8, seed=0)
        return [batch.score(i) for i in range(len(batch))]

    wall, cpu, melodies = best(sample)
    t = time.perf_counter()
    naive_sampler(model, 100, 8, 0)
    naive = (time.perf_counter() - t) * 10
    notes = sum(m.n_notes for m in melodies)  # type: ignore[union-attr]
    row(
        "markov_1000_melodies",
        wall,
        cpu,
        5.0,
        f"target 5 s (issue #8) as peer; order 2, 8 bars each, {notes} notes, Score objects "
        f"included; a plain-Python sampler of the same chains: {naive:.1f} s per 1,000 "
        "(timed on 100)",
    )


if __name__ == "__main__":
    bench_csp()
    bench_markov()
