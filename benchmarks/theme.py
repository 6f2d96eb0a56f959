"""Themes: how often a piece's bars restate its theme, with ``--theme`` against the same model
without it, at the overlap of each with real music.

For the first ``--num`` pieces of a prepared dataset's split (``--data``, default the folk
model's ``data/folk-melody``; ``--split`` valid) with at least ``--bars`` bars, the theme is the
piece's first ``--theme-bars`` bars after any pickup (its top line; pieces whose first bar
does not open with a note, or with a silent bar among those, are passed over). Sides, seed =
the piece's index:

* ``theme``: ``musegen generate --model M --bars B --theme THEME`` (default placement and
  ``--theme-variation``, mixed: statements every 4 bars for a 1-2 bar theme, exact and
  in-key sequence by turns);
* ``free``: the same without ``--theme``, in the theme's meter.

**Recurrence**: the share of a piece's bars after the theme's first statement whose top line
restates a bar of the theme: :func:`~musegen.sampling.structure.bar_similarity` >= 0.75 (the
share of rows of the same kind, onset / hold / rest, times the share of common onsets moved by
one interval: a transposed bar counts; 0.75 e.g. a bar with the rhythm of 12 of 16 rows and
every pitch). ``exact``: the share equal to a theme bar. Baselines: the free pieces against
the same theme (``free``, chance) and against their own first bars (``free_own``: how much a
model restates its own opening unasked), and the real pieces against their own opening
(``data``). **Overlap**: Yang-Lerch overlapping area of each side against the split's pieces
cut to ``--bars`` (``musegen.evaluate.quality.quality_report``; ceiling: training pieces).

JSON lines ``{"benchmark", "ours", "peer", "ratio", "unit"}``: theme_recurrence (peer: the
larger of free and free_own) and theme_overlap.

    .venv/bin/python benchmarks/theme.py --model folk --num 32
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MATCH = 0.75


def recurrence(bars: list[np.ndarray], theme: list[np.ndarray], start: int) -> tuple[float, float]:
    """Shares of ``bars[start:]`` that restate a theme bar (similarity >= MATCH) / equal one."""
    from musegen.sampling.structure import bar_similarity

    rest = bars[start:]
    if not rest:
        return float("nan"), float("nan")
    near = [max(bar_similarity(t, b) for t in theme) >= MATCH for b in rest]
    same = [any(np.array_equal(t, b) for t in theme) for b in rest]
    return float(np.mean(near)), float(np.mean(same))


def themes(data: str, split: str, bars: int, theme_bars: int, num: int) -> list[dict[str, Any]]:
    """The split's first ``num`` pieces of >= ``bars`` bars: the piece (decoded), its theme
    score (pickup + ``theme_bars`` bars) and its top-line bars."""
    from musegen.data.dataset import load_prepared
    from musegen.sampling.structure import top_line_bars
    from musegen.tokenizers.base import EOS

    d = load_prepared(ROOT / data)
    tok, part = d.tokenizer, d.split(split)
    lo, hi = tok.vocab.span("bar")
    out = []
    for i in range(len(part)):
        ids = part.piece(i)
        line = top_line_bars(tok, ids)
        if len(line) < bars or line[0][0] < 0 or not all((b >= 0).any() for b in line[:theme_bars]):
            continue  # a theme opens on its first downbeat and has a note in every bar
        marks = np.flatnonzero((ids >= lo) & (ids < hi))
        head = np.append(ids[: marks[theme_bars]], EOS)
        out.append({"piece": tok.decode(ids), "theme": tok.decode(head), "bars": line[:bars]})
        if len(out) == num:
            break
    return out


def top_bars(tok: Any, score: Any, bars: int) -> list[np.ndarray]:
    from musegen.sampling.structure import top_line_bars

    return top_line_bars(tok, tok.encode(score))[:bars]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="folk")
    p.add_argument("--data", default="data/folk-melody", help="the model's prepared dataset")
    p.add_argument("--split", default="valid", choices=("valid", "test"))
    p.add_argument("--bars", type=int, default=16)
    p.add_argument("--theme-bars", type=int, default=2)
    p.add_argument("--num", type=int, default=32)
    p.add_argument("--variation", default="mixed")
    args = p.parse_args(argv)

    import torch

    from musegen.evaluate.quality import quality_report
    from musegen.io import save
    from musegen.sampling.generators import GenerateRequest, load_generator
    from musegen.sampling.themes import theme_bars

    torch.set_num_threads(1)
    gen = load_generator(args.model)
    tok = gen.tokenizer  # type: ignore[attr-defined]
    items = themes(args.data, args.split, args.bars, args.theme_bars, args.num)
    t0 = time.perf_counter()
    sides: dict[str, list[Any]] = {"theme": [], "free": []}
    rec: dict[str, list[tuple[float, float]]] = {
        "theme": [],
        "free": [],
        "free_own": [],
        "data": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for k, item in enumerate(items):
            path = Path(tmp) / f"theme{k}.mid"
            save(item["theme"], path)
            meter, cells = theme_bars(item["theme"], tok)
            bar = tok.vocab.offset("bar")
            theme = top_bars_of_cells(tok, cells, bar)
            n = len(theme)
            asked = GenerateRequest(
                num=1, seed=k, bars=args.bars, theme=str(path), theme_variation=args.variation
            )
            free = GenerateRequest(num=1, seed=k, bars=args.bars, time_signature=meter)
            for side, req in (("theme", asked), ("free", free)):
                piece = gen.generate(req).pieces[0]
                sides[side].append(piece)
                got = top_bars(tok, piece, args.bars)
                rec[side].append(recurrence(got, theme, n))
                if side == "free":
                    rec["free_own"].append(recurrence(got, got[:n], n))
            rec["data"].append(recurrence(item["bars"], item["bars"][:n], n))
            print(f"\r{k + 1}/{len(items)} pieces", end="", file=sys.stderr)
    print(file=sys.stderr)
    seconds = time.perf_counter() - t0
    ref = [it["piece"] for it in items]
    train = [it["piece"] for it in themes(args.data, "train", args.bars, 1, 4 * args.num)]
    overlap = {
        side: quality_report(pieces, ref, train, bars=args.bars) for side, pieces in sides.items()
    }
    means = {
        s: (float(np.nanmean([r[0] for r in v])), float(np.nanmean([r[1] for r in v])))
        for s, v in rec.items()
    }
    print(
        f"{args.model}, {len(items)} themes of {args.theme_bars} bars from {args.data}:{args.split}, "
        f"{args.bars} bars: recurrence (>= {MATCH} / exact) theme {means['theme'][0]:.3f} / "
        f"{means['theme'][1]:.3f}, free {means['free'][0]:.3f} / {means['free'][1]:.3f}, free vs its "
        f"own opening {means['free_own'][0]:.3f} / {means['free_own'][1]:.3f}, real pieces vs "
        f"their opening {means['data'][0]:.3f} / {means['data'][1]:.3f}; overlap theme "
        f"{overlap['theme']['generated']['oa_mean']:.3f}, free "
        f"{overlap['free']['generated']['oa_mean']:.3f} (ceiling "
        f"{overlap['free']['ceiling']['oa_mean']:.3f}); {seconds:.0f} s",
        file=sys.stderr,
    )
    peer = max(means["free"][0], means["free_own"][0])
    common = {"model": args.model, "split": f"{args.data}:{args.split}", "pieces": len(items)}
    rows = [
        {
            "benchmark": "theme_recurrence",
            "ours": round(means["theme"][0], 3),
            "peer": round(peer, 3),
            "ratio": round(means["theme"][0] / peer, 3) if peer else None,
            "unit": f"share of bars restating a theme bar (similarity >= {MATCH})",
            "exact": round(means["theme"][1], 3),
            "free_same_theme": round(means["free"][0], 3),
            "free_own_opening": round(means["free_own"][0], 3),
            "data_own_opening": round(means["data"][0], 3),
            "variation": args.variation,
            **common,
        },
        {
            "benchmark": "theme_overlap",
            "ours": round(overlap["theme"]["generated"]["oa_mean"], 3),
            "peer": round(overlap["free"]["generated"]["oa_mean"], 3),
            "ratio": round(
                overlap["theme"]["generated"]["oa_mean"] / overlap["free"]["generated"]["oa_mean"],
                3,
            ),
            "unit": "Yang-Lerch overlapping area (0-1)",
            "ceiling": round(overlap["free"]["ceiling"]["oa_mean"], 3),
            "c2st_theme": round(overlap["theme"]["generated"]["c2st_accuracy"], 3),
            "c2st_free": round(overlap["free"]["generated"]["c2st_accuracy"], 3),
            **common,
        },
    ]
    for row in rows:
        print(json.dumps(row), flush=True)
    return 0


def top_bars_of_cells(tok: Any, cells: list[np.ndarray], bar: int) -> list[np.ndarray]:
    """The theme's bars (:func:`~musegen.sampling.themes.theme_bars` cells) as top lines."""
    from musegen.sampling.structure import top_line_bars

    ids = np.concatenate([np.concatenate([[bar], c.reshape(-1)]) for c in cells])
    return top_line_bars(tok, np.where(ids < 0, tok.rest_id, ids))


if __name__ == "__main__":
    raise SystemExit(main())
