"""Bach's own voice-leading "error" rates: the checker on the 77 JSB test chorales.

There is no peer to run: the figure is a baseline for generated chorales (a model whose rates
are near Bach's writes chorales as strictly as Bach did, by these textbook rules). Each JSON
line puts Bach's rate as ``ours`` with ``peer`` and ``ratio`` null. Rates are pooled: all
errors of a kind over all 77 pieces / all beats (quarter notes; the JSB data carries no time
signature, so bars are counted in 4/4) x 100. The last lines give the pooled rate per 100
voice-leading transitions and the checker's speed.

    .venv/bin/python benchmarks/voice_leading_bach.py   # needs the shared JSB data
"""

from __future__ import annotations

import json
import sys
import time


def line(benchmark: str, value: float, unit: str, **extra: object) -> None:
    row = {"benchmark": benchmark, "ours": round(value, 3), "peer": None, "ratio": None}
    row |= {"unit": unit, **extra}
    print(json.dumps(row), flush=True)


def main() -> int:
    from musegen.data.sources import get_source
    from musegen.errors import MusegenError
    from musegen.metrics.voice_leading import KINDS, check_voice_leading, summarize

    source = get_source("jsb-satb")
    try:
        pieces = [p for p in source.pieces() if p.split == "test"]
    except MusegenError as e:
        print(f"benchmarks/voice_leading_bach.py: {e}", file=sys.stderr)
        return 2
    steps = [source.steps(p) for p in pieces]
    t = time.perf_counter()
    reports = [check_voice_leading(s) for s in steps]
    seconds = time.perf_counter() - t
    s = summarize(reports)
    print(
        f"# {s['pieces']} chorales, {s['beats']} beats, {s['transitions']} transitions, "
        f"{s['errors_total']} errors",
        file=sys.stderr,
    )
    note = "Bach's own rate (JSB test split); no peer"
    for kind in (*KINDS, "total"):
        count = s["counts"].get(kind, s["errors_total"])
        line(
            f"voice_leading.bach_jsb_test.{kind}",
            s["per_100_beats"][kind],
            "errors/100 beats",
            count=count,
            note=note,
        )
    line(
        "voice_leading.bach_jsb_test.total_per_transition",
        s["per_100_transitions"]["total"],
        "errors/100 transitions",
        note=note,
    )
    line(
        "voice_leading.check_speed",
        len(steps) / seconds,
        "chorales/s",
        note="checker speed, 77 chorales",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
