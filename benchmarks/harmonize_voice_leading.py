"""Voice-leading errors of harmonizations of the 77 test soprano lines: Coconet vs the CSP
harmonizer vs Bach's own chorales, counted by ``musegen.metrics.voice_leading``.

For every piece of the Jsb16thSeparated **test** split: Bach = the chorale itself; the melody
= its soprano (16th-note grid, 4/4 assumed as the data has no meter); Coconet = ``harmonize``
with the default schedule, temperature ``--temperature``, seed = the piece index; CSP =
``compose.csp.harmonize_csp(melody)``. Each result is checked with ``check_voice_leading``
(key estimated per piece); the table gives pooled errors per 100 beats (all errors of a kind /
all beats × 100) by kind and in total, and per 100 transitions. A harmonizer that fails on a
piece is counted in ``failed`` and that piece is left out of its column.

Prints the table (markdown) and one JSON line per harmonizer, ``ours`` = Coconet's total per
100 beats, ``peer`` = the other's (lower is better; ratio = peer / ours).

Run: ``python benchmarks/harmonize_voice_leading.py`` (``--max-pieces N`` for a quick look).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from _corpus import emit
from musegen.errors import MusegenError
from musegen.score import Score, TimeSignature


def run_column(
    name: str, make: Callable[[int, Score, Score], Score], pieces: list[Score]
) -> dict[str, Any]:
    """Harmonize/check every piece; the pooled summary plus failures and time."""
    from musegen.metrics.voice_leading import check_voice_leading, summarize

    reports, failed = [], []
    t0 = time.perf_counter()
    for i, bach in enumerate(pieces):
        melody = Score(tpq=bach.tpq, tracks=[bach.tracks[0]], time_signatures=bach.time_signatures)
        try:
            reports.append(check_voice_leading(make(i, bach, melody)))
        except MusegenError as e:
            failed.append(f"piece {i}: {e}")
        print(f"  {name}: {i + 1}/{len(pieces)}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    summary = summarize(reports)
    summary["failed"] = failed
    summary["seconds"] = time.perf_counter() - t0
    return summary


def main() -> int:
    from musegen.data.sources import get_source
    from musegen.models import load_model
    from musegen.models.pretrained import resolve_model
    from musegen.sampling.gibbs import harmonize
    from musegen.tokenizers.grid import steps_to_score

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="coconet", help="shipped name or Coconet model folder")
    p.add_argument("--max-pieces", type=int, help="only the first N test pieces")
    p.add_argument("--temperature", type=float, default=1.0)
    args = p.parse_args()

    steps = get_source("jsb-satb").all_steps()["test"]
    steps = steps[: args.max_pieces] if args.max_pieces else steps
    pieces = []
    for s in steps:
        score = steps_to_score(s)
        score.time_signatures = [TimeSignature(0, 4, 4)]
        pieces.append(score)
    folder = resolve_model(args.model)
    model, _ = load_model(folder)

    def coconet(i: int, _bach: Score, melody: Score) -> Score:
        return harmonize(model, melody, seed=i, temperature=args.temperature)

    def csp(_i: int, _bach: Score, melody: Score) -> Score:
        from musegen.compose.csp import harmonize_csp

        return harmonize_csp(melody)

    columns = {"Bach": run_column("Bach", lambda _i, bach, _m: bach, pieces)}
    columns["Coconet"] = run_column("Coconet", coconet, pieces)
    try:
        columns["CSP"] = run_column("CSP", csp, pieces)
    except ImportError as e:  # the CSP harmonizer is another module; say so if absent
        print(f"CSP harmonizer unavailable: {e}", file=sys.stderr)

    kinds = list(columns["Bach"]["counts"])
    names = list(columns)
    print(f"\nVoice-leading errors per 100 beats, {len(pieces)} test chorales (soprano given)\n")
    print("| kind | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for kind in [*kinds, "total"]:
        cells = [f"{columns[n]['per_100_beats'][kind]:.2f}" for n in names]
        label = f"**{kind}**" if kind == "total" else kind
        print(f"| {label} | " + " | ".join(cells) + " |")
    rows = {
        "per 100 transitions (total)": lambda c: f"{c['per_100_transitions']['total']:.2f}",
        "pieces checked": lambda c: str(c["pieces"]),
        "failed": lambda c: str(len(c["failed"])),
        "seconds": lambda c: f"{c['seconds']:.0f}",
    }
    for label, fmt in rows.items():
        print(f"| {label} | " + " | ".join(fmt(columns[n]) for n in names) + " |")
    print()
    ours = columns["Coconet"]["per_100_beats"]["total"]
    for peer in (n for n in names if n != "Coconet"):
        emit(
            f"voice_leading_errors_per_100_beats_coconet_vs_{peer.lower()}",
            ours,
            columns[peer]["per_100_beats"]["total"],
            "errors/100 beats",
            False,
            pieces=len(pieces),
            failed_ours=len(columns["Coconet"]["failed"]),
            failed_peer=len(columns[peer]["failed"]),
            model=str(folder),
        )
    for name in names:
        for line in columns[name]["failed"][:5]:
            print(f"{name} failed on {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
