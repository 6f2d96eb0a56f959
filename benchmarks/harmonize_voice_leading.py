"""Voice-leading errors and inner-voice rhythm of harmonizations of the JSB soprano lines:
Coconet as ``musegen harmonize`` runs it, bare Coconet, Coconet ``--strict``, the CSP
harmonizer and Bach's own chorales, counted by ``musegen.metrics.voice_leading``.

For every piece of a Jsb16thSeparated split (``--split``, default **test**; choices were made
on ``valid``): Bach = the chorale itself; the melody = its soprano (16th-note grid, 4/4
assumed as the data has no meter); Coconet = ``harmonize`` with its default options
(rule and articulation energies in the Gibbs conditionals, 16th fragments of the inner voices
merged), temperature ``--temperature``, seed = the piece index; Coconet plain =
``HarmonizeOptions.plain()`` (the sampler alone, as before the energies); Coconet strict =
the default plus ``strict=True`` (no parallel fifths or octaves, guaranteed); CSP =
``compose.csp.harmonize_csp(melody)``. Each result is checked with ``check_voice_leading``
(key estimated per piece); the table gives pooled errors per 100 beats (all errors of a kind /
all beats × 100) by kind and in total, and per 100 transitions. A harmonizer that fails on a
piece is counted in ``failed`` and that piece is left out of its column.

Rhythm rows: the share of alto and tenor notes shorter than an 8th (Coconet's grid makes a
new note wherever a cell changes, so bare sampling breaks inner voices into 16th fragments),
and alto/tenor notes per beat. Timing row: harmonizing the first 16 bars (256 16ths) of the
first piece that long, best of 3 wall-clock runs on one torch thread (CPU seconds of the
process in brackets, which a busy machine inflates less).

Prints the table (markdown) and JSON lines: Coconet's total per 100 beats against each other
column (``ours`` = Coconet, ``peer`` = the other; lower is better; ratio = peer / ours), the
inner-voice 16th share against Bach's, and the 16-bar time against bare Coconet's.

Run: ``python benchmarks/harmonize_voice_leading.py`` (``--split valid``, ``--max-pieces N``
for a quick look, ``--columns Bach,Coconet`` for some columns only).
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

COLUMNS = ("Bach", "Coconet", "Coconet plain", "Coconet strict", "CSP")
SIXTEEN_BARS = 16 * 16  # 16ths


def inner_rhythm(scores: list[Score]) -> tuple[float, float]:
    """Share of alto and tenor notes shorter than an 8th, and their notes per beat."""
    notes = short = 0
    beats = 0.0
    for s in scores:
        beats += s.end / s.tpq
        for t in s.tracks:
            if t.voice in ("A", "T"):
                notes += len(t)
                short += int((t.notes["duration"] < s.tpq // 2).sum())
    return short / max(notes, 1), notes / max(beats, 1e-9) / 2


def run_column(
    name: str, make: Callable[[int, Score, Score], Score], pieces: list[Score]
) -> dict[str, Any]:
    """Harmonize/check every piece; the pooled summary plus rhythm, failures and time."""
    from musegen.metrics.voice_leading import check_voice_leading, summarize

    reports, failed, outs = [], [], []
    t0 = time.perf_counter()
    for i, bach in enumerate(pieces):
        melody = Score(tpq=bach.tpq, tracks=[bach.tracks[0]], time_signatures=bach.time_signatures)
        try:
            out = make(i, bach, melody)
            reports.append(check_voice_leading(out))
            outs.append(out)
        except MusegenError as e:
            failed.append(f"piece {i}: {e}")
        print(f"  {name}: {i + 1}/{len(pieces)}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    summary = summarize(reports)
    summary["failed"] = failed
    summary["seconds"] = time.perf_counter() - t0
    summary["short_share"], summary["notes_per_beat"] = inner_rhythm(outs)
    return summary


def time_16_bars(
    harmonize_one: Callable[[Score], Score], piece: Score, repeats: int = 3
) -> tuple[float, float]:
    """Best wall and CPU seconds of harmonizing ``piece``'s soprano."""
    melody = Score(tpq=piece.tpq, tracks=[piece.tracks[0]], time_signatures=piece.time_signatures)
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        harmonize_one(melody)
        wall = min(wall, time.perf_counter() - w)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu


def main() -> int:
    import numpy as np
    import torch

    from musegen.data.sources import get_source
    from musegen.models import load_model
    from musegen.models.pretrained import resolve_model
    from musegen.sampling.gibbs import HarmonizeOptions, harmonize
    from musegen.tokenizers.grid import steps_to_score

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="coconet", help="shipped name or Coconet model folder")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--max-pieces", type=int, help="only the first N pieces")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument(
        "--columns", default=",".join(COLUMNS), help=f"some of {', '.join(COLUMNS)} (commas)"
    )
    args = p.parse_args()
    wanted = [c.strip() for c in args.columns.split(",") if c.strip()]
    unknown = sorted(set(wanted) - set(COLUMNS))
    if unknown or "Coconet" not in wanted:
        p.error(f"--columns: unknown {unknown}" if unknown else "--columns needs Coconet")
    torch.set_num_threads(1)

    all_steps = get_source("jsb-satb").all_steps()[args.split]
    steps = all_steps[: args.max_pieces] if args.max_pieces else all_steps
    pieces = []
    for s in steps:
        score = steps_to_score(s)
        score.time_signatures = [TimeSignature(0, 4, 4)]
        pieces.append(score)
    folder = resolve_model(args.model)
    model, _ = load_model(folder)
    options = {
        "Coconet": HarmonizeOptions(),
        "Coconet plain": HarmonizeOptions.plain(),
        "Coconet strict": HarmonizeOptions(strict=True),
    }

    def coconet(opts: HarmonizeOptions) -> Callable[[int, Score, Score], Score]:
        def make(i: int, _bach: Score, melody: Score) -> Score:
            return harmonize(model, melody, seed=i, temperature=args.temperature, options=opts)

        return make

    def csp(_i: int, _bach: Score, melody: Score) -> Score:
        from musegen.compose.csp import harmonize_csp

        return harmonize_csp(melody)

    makers: dict[str, Callable[[int, Score, Score], Score]] = {
        "Bach": lambda _i, bach, _m: bach,
        "CSP": csp,
        **{name: coconet(opts) for name, opts in options.items()},
    }
    columns: dict[str, dict[str, Any]] = {}
    for name in (c for c in COLUMNS if c in wanted):
        try:
            columns[name] = run_column(name, makers[name], pieces)
        except ImportError as e:  # the CSP harmonizer is another module; say so if absent
            print(f"{name} unavailable: {e}", file=sys.stderr)

    long = next((s for s in all_steps if len(s) >= SIXTEEN_BARS), None)
    timing: dict[str, tuple[float, float]] = {}
    if long is not None:
        piece = steps_to_score(np.asarray(long)[:SIXTEEN_BARS])
        piece.time_signatures = [TimeSignature(0, 4, 4)]
        for name in (c for c in columns if c in options):
            opts = options[name]
            timing[name] = time_16_bars(
                lambda m, o=opts: harmonize(model, m, seed=0, options=o), piece
            )

    kinds = list(columns["Coconet"]["counts"])
    names = list(columns)
    print(
        f"\nVoice-leading errors per 100 beats, {len(pieces)} {args.split} chorales "
        "(soprano given)\n"
    )
    print("| kind | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for kind in [*kinds, "total"]:
        cells = [f"{columns[n]['per_100_beats'][kind]:.2f}" for n in names]
        label = f"**{kind}**" if kind == "total" else kind
        print(f"| {label} | " + " | ".join(cells) + " |")

    def timed(name: str) -> str:
        if name not in timing:
            return "–"
        wall, cpu = timing[name]
        return f"{wall:.2f} ({cpu:.2f})"

    rows: dict[str, Callable[[str], str]] = {
        "per 100 transitions (total)": lambda n: (
            f"{columns[n]['per_100_transitions']['total']:.2f}"
        ),
        "A+T notes shorter than an 8th": lambda n: f"{100 * columns[n]['short_share']:.2f}%",
        "A+T notes per beat": lambda n: f"{columns[n]['notes_per_beat']:.3f}",
        "pieces checked": lambda n: str(columns[n]["pieces"]),
        "failed": lambda n: str(len(columns[n]["failed"])),
        "seconds (all pieces)": lambda n: f"{columns[n]['seconds']:.0f}",
        "16 bars, s (CPU s)": timed,
    }
    for label, fmt in rows.items():
        print(f"| {label} | " + " | ".join(fmt(n) for n in names) + " |")
    print()
    ours = columns["Coconet"]
    extra = {"pieces": len(pieces), "split": args.split, "model": str(folder)}
    for peer in (n for n in names if n != "Coconet"):
        emit(
            f"voice_leading_errors_per_100_beats_coconet_vs_{peer.lower().replace(' ', '_')}",
            ours["per_100_beats"]["total"],
            columns[peer]["per_100_beats"]["total"],
            "errors/100 beats",
            False,
            failed_ours=len(ours["failed"]),
            failed_peer=len(columns[peer]["failed"]),
            parallels_peer=columns[peer]["counts"]["parallel_fifths"]
            + columns[peer]["counts"]["parallel_octaves"],
            **extra,
        )
    if "Bach" in columns:
        emit(
            "inner_voice_16th_share_coconet_vs_bach",
            ours["short_share"],
            columns["Bach"]["short_share"],
            "share of A+T notes shorter than an 8th",
            False,
            **extra,
        )
    if "Coconet" in timing and "Coconet plain" in timing:
        emit(
            "harmonize_16_bars_seconds_coconet_vs_plain",
            timing["Coconet"][0],
            timing["Coconet plain"][0],
            "s (wall, best of 3, 1 thread)",
            False,
            cpu_seconds_ours=round(timing["Coconet"][1], 3),
            cpu_seconds_peer=round(timing["Coconet plain"][1], 3),
            **extra,
        )
    for name in names:
        for line in columns[name]["failed"][:5]:
            print(f"{name} failed on {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
