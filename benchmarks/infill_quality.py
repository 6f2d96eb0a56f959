"""Infilled bars against real ones: a token model trained to infill (or Coconet) rewrites bars
of held-out chorales, and the rewritten bars are measured like new pieces.

For each chorale of the held-out split (``--split``, default ``valid``) that is in a meter the
model knows and long enough, bars ``--bars`` (default 3-6, 1-based as ``musegen infill``
counts them) of ``--voices`` (default all four) are rewritten, as ``musegen infill --model
REF --bars 3-6 --voices SATB --seed S`` does it (the same generator; seed = ``--seed`` + the
piece's index). Candidates: the rewritten bars cut out of each piece. Reference: the same bars
of the real held-out chorales. Ceiling: the same bars of as many real training chorales
(``musegen.evaluate.quality.quality_report``: overlapping area, voice-leading errors,
four-voice share, note-length distance, C2ST; endings are not meaningful for a cut region).
``kept``: the share of given cells (voices not rewritten, bars outside the region) unchanged,
which must be 1.0.

Prints a table and JSON lines ``{"benchmark", "ours", "peer", "ratio", "unit"}``: ``peer`` =
the ceiling, ``ratio`` = ours as a fraction of it (``fraction_of_ceiling``).

    .venv/bin/python benchmarks/infill_quality.py --model runs/bach-infill
    .venv/bin/python benchmarks/infill_quality.py --model coconet --voices ATB
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

FIGURES = {
    "oa_mean": "overlapping area (0-1)",
    "vl_total_per_100_beats": "errors/100 beats",
    "four_voice_share_beats": "share of beats",
    "note_length_tv": "total variation",
    "c2st_accuracy": "accuracy (0.5 = indistinguishable)",
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a model that infills (run folder, coconet)")
    p.add_argument("--bars", default="3-6", help="bars to rewrite (default 3-6)")
    p.add_argument("--voices", default="SATB", help="voices to rewrite (default SATB)")
    p.add_argument("--split", default="valid", choices=("valid", "test"))
    p.add_argument("--num", type=int, default=None, help="first N usable pieces (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0)
    args = p.parse_args(argv)

    import torch

    from musegen.errors import MusegenError
    from musegen.evaluate.quality import quality_report
    from musegen.sampling.generators import load_generator
    from musegen.sampling.gibbs import parse_bars
    from musegen.tokenizers import get_tokenizer
    from musegen.tokenizers.infill import score_grid, sounding
    from musical_quality import load_reference

    torch.set_num_threads(1)
    first, last = parse_bars(args.bars)
    letters = args.voices.replace(",", "").upper()
    rewritten = ["SATB".index(c) for c in letters]
    generator = load_generator(args.model)
    reader = get_tokenizer("chorale")  # how "kept" is judged: the cells of the 16th grid
    heldout = load_reference("bach", args.split)
    train = load_reference("bach", "train")

    def usable(score) -> bool:  # type: ignore[no-untyped-def]
        try:
            bars = score_grid(reader, score).unit_bars
        except MusegenError:
            return False
        return bool(bars) and bars[0] <= first and bars[-1] >= last + 1

    pieces = [s for s in heldout if usable(s)][: args.num]
    t0 = time.perf_counter()
    candidates, kept, total = [], 0, 0
    for k, score in enumerate(pieces):
        out = generator.infill(
            score, (first, last), letters, seed=args.seed + k, temperature=args.temperature
        ).pieces[0]
        a, b = score_grid(reader, score), score_grid(reader, out)
        u0, u1 = a.units(first, last)
        free = np.zeros(a.grid.cells.shape, dtype=bool)
        free[a.grid.rows(u0, u1), rewritten] = True
        if b.grid.cells.shape == a.grid.cells.shape:
            same = sounding(reader, a.grid.cells) == sounding(reader, b.grid.cells)
            kept += int(same[~free].sum())
        total += int((~free).sum())
        candidates.append(out.slice_bars(first - 1, last))
    seconds = time.perf_counter() - t0
    real = [s.slice_bars(first - 1, last) for s in pieces]
    pool = [s.slice_bars(first - 1, last) for s in train if usable(s)]
    report = quality_report(candidates, real, pool, bars=None, seed=args.seed)
    gen, ceiling, fraction = report["generated"], report["ceiling"], report["fraction"]
    print(
        f"{args.model}: bars {first}-{last}, voices {letters}, {len(pieces)} {args.split} "
        f"chorales, {seconds:.1f} s; given cells kept: {kept / max(total, 1):.4f}"
    )
    print(f"{'figure':28s} {'infilled':>10s} {'ceiling':>10s}")
    for name in FIGURES:
        ours, top = _figure(gen, name), _figure(ceiling, name)
        print(f"{name:28s} {ours:10.3f} {top:10.3f}")
    for name, unit in FIGURES.items():
        line = {
            "benchmark": f"infill_{name}",
            "model": args.model,
            "bars": args.bars,
            "voices": letters,
            "ours": round(_figure(gen, name), 4),
            "peer": round(_figure(ceiling, name), 4),
            "ratio": round(float(fraction.get(name, float("nan"))), 4),
            "unit": unit,
        }
        print(json.dumps(line))
    print(
        json.dumps(
            {
                "benchmark": "infill_kept",
                "ours": kept / max(total, 1),
                "peer": 1.0,
                "ratio": kept / max(total, 1),
                "unit": "share of given cells",
            }
        )
    )
    return 0


def _figure(figures: dict, name: str) -> float:  # type: ignore[type-arg]
    value = figures.get(name)
    if isinstance(value, dict):  # c2st: {"accuracy": …, …}
        value = value.get("accuracy")
    return float("nan") if value is None else float(value)


if __name__ == "__main__":
    raise SystemExit(main())
