"""Structure: 32-bar pieces planned by sections against the same model unplanned, both read
against the corpus by their repetition and self-similarity.

The corpus: the pieces of a prepared dataset's split (``--data``, default the folk model's
``data/folk-melody``, ``--split`` valid) with at least ``--bars`` bars, cut to their first
``--bars`` (their top line, as the model's tokenizer writes it). Each piece, real or
generated, is measured by :func:`musegen.sampling.structure.repetition_features` (share of
bars restating an earlier one, exact repeats, mean bar similarity, bars in returning runs,
mean similarity at lags 2/4/8/16) and its four-section form
(:func:`~musegen.sampling.structure.section_form`). Sides:

* ``free``: ``musegen generate --model M --bars 32`` (``--num`` pieces, seed ``--seed``);
* ``planned``: the same with ``--form auto`` (each piece's form drawn from the shares the
  corpus's training split shows, ``sampling/forms.json``), the form plan forcing a
  returning section's melody bar for bar;
* and any fixed ``--forms`` (e.g. ``AABA``).

``distance``: the mean over features of |side's mean - corpus mean| / corpus SD (0: as
repetitive as the corpus). ``oa_mean``: Yang-Lerch overlapping area of the pieces against
the corpus pieces (:func:`musegen.evaluate.quality.quality_report`), so structure is not
bought with worse music. JSON lines ``{"benchmark", "ours", "peer", "ratio", "unit"}``:
ours = planned, peer = free, ratio = peer distance / ours (> 1: planned is closer).

``--measure`` instead counts the forms of the training split's pieces of >= 16 bars (four
sections) for ``chorale`` (``data/bach-chorale``) and ``melody`` models (``--data``), and of
their 8-bar openings (four sections of two bars: ``chorale-8``, ``melody-8``, what pieces of
fewer than 16 bars draw from), and writes ``src/musegen/sampling/forms.json`` (what ``--form
auto`` draws from).

    .venv/bin/python benchmarks/structure.py --model folk --num 24
    .venv/bin/python benchmarks/structure.py --measure
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FORMS = ROOT / "src" / "musegen" / "sampling" / "forms.json"
FEATURES = (
    "repeated_bars",
    "exact_repeats",
    "mean_similarity",
    "returning_runs",
    "lag_2",
    "lag_4",
    "lag_8",
    "lag_16",
)


def corpus_bars(data: str, split: str, bars: int) -> tuple[Any, list[list[np.ndarray]]]:
    """The dataset's tokenizer and the top-line bars of its pieces of >= ``bars`` bars."""
    from musegen.data.dataset import load_prepared
    from musegen.sampling.structure import top_line_bars

    d = load_prepared(ROOT / data if not Path(data).is_absolute() else data)
    tok = d.tokenizer
    part = d.split(split)
    out = []
    for i in range(len(part)):
        b = top_line_bars(tok, part.piece(i))
        if len(b) >= bars:
            out.append(b[:bars])
    return tok, out


def measure_forms(data: str, min_bars: int = 16, opening: int = 0) -> dict[str, Any]:
    """Form shares of the training split's pieces with >= ``min_bars`` bars (with
    ``opening``: of the first ``opening`` bars of every piece that long)."""
    from musegen.data.dataset import load_prepared
    from musegen.sampling.structure import section_form, top_line_bars

    d = load_prepared(ROOT / data)
    part = d.split("train")
    forms: Counter[str] = Counter()
    for i in range(len(part)):
        b = top_line_bars(d.tokenizer, part.piece(i))
        if opening and len(b) >= opening:
            forms[section_form(b[:opening])] += 1
        elif not opening and len(b) >= min_bars:
            forms[section_form(b[: len(b) // 4 * 4])] += 1
    n = sum(forms.values())
    return {
        "data": data,
        "pieces": n,
        **({"opening": opening} if opening else {"min_bars": min_bars}),
        "shares": {f: round(c / n, 4) for f, c in sorted(forms.items()) if c / n >= 0.005},
    }


def features(pieces: list[list[np.ndarray]]) -> dict[str, np.ndarray]:
    from musegen.sampling.structure import repetition_features

    rows = [repetition_features(b) for b in pieces]
    return {f: np.array([r[f] for r in rows]) for f in FEATURES}


def distance(side: dict[str, np.ndarray], corpus: dict[str, np.ndarray]) -> float:
    """Mean over the features of |side's mean - corpus mean| / corpus SD (features the
    pieces are too short for are left out)."""
    out = []
    for f in FEATURES:
        if np.isnan(corpus[f]).all() or np.isnan(side[f]).all():
            continue
        sd = float(np.nanstd(corpus[f])) or 1.0
        out.append(abs(float(np.nanmean(side[f])) - float(np.nanmean(corpus[f]))) / sd)
    return float(np.mean(out))


def generate(model: str, bars: int, num: int, seed: int, form: str | None) -> list[Any]:
    """``num`` pieces of ``bars`` bars; ``form="auto"``: each piece's form drawn as
    ``--form auto`` draws it (the pieces of one form are sampled as one batch)."""
    from musegen.sampling.generators import GenerateRequest, load_generator
    from musegen.sampling.themes import auto_form

    gen = load_generator(model)
    tok = gen.tokenizer  # type: ignore[attr-defined]
    forms = [auto_form(tok, seed + k) if form == "auto" else form for k in range(num)]
    pieces = []
    for k, f in enumerate(dict.fromkeys(forms)):
        count = forms.count(f)
        req = GenerateRequest(num=count, seed=seed + k, bars=bars, form=f)
        pieces += gen.generate(req).pieces
    return pieces


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="folk")
    p.add_argument("--data", default="data/folk-melody", help="the model's prepared dataset")
    p.add_argument("--split", default="valid", choices=("valid", "test"))
    p.add_argument("--bars", type=int, default=32)
    p.add_argument("--num", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--forms", default="", help="fixed forms to add, e.g. AABA,AABB")
    p.add_argument("--measure", action="store_true", help="write sampling/forms.json")
    args = p.parse_args(argv)
    if args.measure:
        from musegen.utils import atomic_write_text

        table = {
            "chorale": measure_forms("data/bach-chorale"),
            "melody": measure_forms(args.data),
            "chorale-8": measure_forms("data/bach-chorale", opening=8),
            "melody-8": measure_forms(args.data, opening=8),
        }
        atomic_write_text(FORMS, json.dumps(table, indent=1) + "\n")
        print(json.dumps(table))
        return 0
    import torch

    from musegen.evaluate.quality import quality_report
    from musegen.sampling.structure import section_form, top_line_bars

    torch.set_num_threads(1)
    tok, corpus = corpus_bars(args.data, args.split, args.bars)
    ref = features(corpus)
    ref_scores = corpus_scores(args.data, args.split, args.bars)
    train_scores = corpus_scores(args.data, "train", args.bars)
    corpus_forms = Counter(section_form(b) for b in corpus)
    print(
        f"corpus {args.data}:{args.split}: {len(corpus)} pieces of >= {args.bars} bars; forms "
        f"{corpus_forms.most_common(5)}",
        file=sys.stderr,
    )
    sides = {"free": None, "planned": "auto", **{f: f for f in args.forms.split(",") if f}}
    results: dict[str, dict[str, Any]] = {}
    for side, form in sides.items():
        t0 = time.perf_counter()
        pieces = generate(args.model, args.bars, args.num, args.seed, form)
        bars = [top_line_bars(tok, tok.encode(s))[: args.bars] for s in pieces]
        f = features(bars)
        quality = quality_report(pieces, ref_scores, train_scores, bars=args.bars)
        results[side] = {
            "distance": distance(f, ref),
            "oa_mean": quality["generated"]["oa_mean"],
            "oa_ceiling": quality["ceiling"]["oa_mean"],
            "means": {k: round(float(np.nanmean(v)), 3) for k, v in f.items()},
            "forms": Counter(section_form(b) for b in bars).most_common(5),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(side, json.dumps(results[side]), file=sys.stderr)
    corpus_means = {k: round(float(np.nanmean(v)), 3) for k, v in ref.items()}
    print("corpus", json.dumps(corpus_means), file=sys.stderr)
    ours, peer = results["planned"], results["free"]
    common = {"model": args.model, "split": f"{args.data}:{args.split}", "num": args.num}
    rows = [
        {
            "benchmark": "structure_distance_to_corpus",
            "ours": round(ours["distance"], 3),
            "peer": round(peer["distance"], 3),
            "ratio": round(peer["distance"] / ours["distance"], 3) if ours["distance"] else None,
            "unit": "mean |mean - corpus mean| / corpus SD over repetition features",
            **common,
        },
        {
            "benchmark": "structure_overlap",
            "ours": round(ours["oa_mean"], 3),
            "peer": round(peer["oa_mean"], 3),
            "ratio": round(ours["oa_mean"] / peer["oa_mean"], 3),
            "unit": "Yang-Lerch overlapping area (0-1)",
            "ceiling": round(ours["oa_ceiling"], 3),
            **common,
        },
    ]
    for f in ("repeated_bars", "returning_runs", "lag_8"):
        rows.append(
            {
                "benchmark": f"structure_{f}",
                "ours": ours["means"][f],
                "peer": peer["means"][f],
                "ratio": None,
                "unit": "mean per piece",
                "corpus": corpus_means[f],
                **common,
            }
        )
    for extra in sides:
        if extra not in ("free", "planned"):
            r = results[extra]
            rows.append(
                {
                    "benchmark": f"structure_distance_{extra}",
                    "ours": round(r["distance"], 3),
                    "peer": round(peer["distance"], 3),
                    "ratio": round(peer["distance"] / r["distance"], 3) if r["distance"] else None,
                    "unit": "as structure_distance_to_corpus",
                    "oa_mean": round(r["oa_mean"], 3),
                    **common,
                }
            )
    for row in rows:
        print(json.dumps(row), flush=True)
    return 0


def corpus_scores(data: str, split: str, bars: int) -> list[Any]:
    """The split's pieces of >= ``bars`` bars as scores (decoded tokens, the model's view)."""
    from musegen.data.dataset import load_prepared
    from musegen.sampling.structure import top_line_bars

    d = load_prepared(ROOT / data)
    tok, part = d.tokenizer, d.split(split)
    out = []
    for i in range(len(part)):
        ids = part.piece(i)
        if len(top_line_bars(tok, ids)) >= bars:
            out.append(tok.decode(ids))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
