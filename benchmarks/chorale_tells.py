"""Where a chorale model's pieces differ from Bach's, feature by feature, and how it harmonizes
Bach's own sopranos: two diagnostics behind the two-sample classifier of
``benchmarks/musical_quality.py``.

* ``tells FOLDER``: every feature the classifier sees (:func:`musegen.metrics.quality.
  piece_features`, ending features left out, as for excerpts), for the MIDI files in FOLDER
  (e.g. ``musegen generate --model bach --num 120 --bars 8 --seed 7 --out FOLDER``) against
  Bach's valid chorales, and for as many train chorales against the same valid ones, all cut
  to ``--bars``. Each row: the means and the effect sizes (difference of means over the pooled
  SD). A tell the train split shares is a difference between Bach's splits; one it does not
  share is the model's own.
* ``given-soprano``: Bach's own sopranos (``--num`` train chorales, cut to ``--bars``) forced
  token by token while the model writes alto, tenor and bass left to right (the grammar's
  rules as when it composes), measured as ``musical_quality`` measures (against valid), with
  the same real train openings beside it as the ceiling.

    .venv/bin/python benchmarks/chorale_tells.py tells out/bach120
    .venv/bin/python benchmarks/chorale_tells.py given-soprano --num 120 --top-p 0.95

Prints a table, then one JSON line ``{"benchmark", "ours", "peer", "ratio", "unit"}`` for the
given-soprano classifier (peer: the real openings' accuracy).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from musical_quality import load_reference


def _features(scores: list[Any]) -> list[dict[str, float]]:
    from musegen.evaluate.quality import classifier_features
    from musegen.metrics.quality import analyse

    return [classifier_features(analyse(s).features, True) for s in scores]


def _effect(a: np.ndarray, b: np.ndarray) -> float:
    sd = math.sqrt((a.var() + b.var()) / 2)
    return float((a.mean() - b.mean()) / sd) if sd > 0 else 0.0


def tell_rows(candidates: list[Any], valid: list[Any], train: list[Any]) -> list[dict[str, Any]]:
    """Per feature: the three sets' means and the effect sizes candidate − valid and
    train − valid, strongest candidate effect first."""
    c, v, t = _features(candidates), _features(valid), _features(train)
    rows = []
    for k in sorted(set(c[0]) & set(v[0]) & set(t[0])):
        cols = []
        for feats in (c, v, t):
            x = np.array([f.get(k, math.nan) for f in feats], dtype=np.float64)
            cols.append(x[np.isfinite(x)])
        if min(len(x) for x in cols) < 3:
            continue
        rows.append({
            "feature": k, "candidate": float(cols[0].mean()), "valid": float(cols[1].mean()),
            "train": float(cols[2].mean()), "effect": _effect(cols[0], cols[1]),
            "train_effect": _effect(cols[2], cols[1]),
        })  # fmt: skip
    return sorted(rows, key=lambda r: -abs(r["effect"]))


def given_soprano(model_ref: str, reals: list[Any], top_p: float, seed: int) -> list[Any]:
    """``reals`` rewritten by ``model_ref``: every token but the alto, tenor and bass cells
    forced to the real piece's, those three sampled (chorale tokenizer)."""
    import torch

    from musegen.models import load_model
    from musegen.models.pretrained import resolve_model
    from musegen.sampling.generate import SamplingConfig, generate
    from musegen.tokenizers import tokenizer_from_dict

    model, meta = load_model(resolve_model(model_ref))
    tok = tokenizer_from_dict(meta["tokenizer"])
    if getattr(tok, "name", "") != "chorale":
        raise SystemExit(f"{model_ref}: given-soprano needs a chorale-token model")
    voices = len(tok.config.ranges)
    plans = []
    for score in reals:
        ids = tok.encode(score)
        plan = ids.copy()
        cells = np.flatnonzero(ids >= tok.rest_id)
        soprano = tok.config.token_order.index(0)
        plan[cells[np.arange(len(cells)) % voices != soprano]] = -1
        plans.append(plan)

    def force(logits: np.ndarray, ids: np.ndarray) -> np.ndarray:
        at = ids.shape[1]
        out = logits.copy()
        for row, plan in enumerate(plans):
            if at < len(plan) and plan[at] >= 0:
                out[row] = -np.inf
                out[row, plan[at]] = 0.0
        return out

    longest = max(len(p) for p in plans)
    cfg = SamplingConfig(top_p=top_p, max_new_tokens=longest + 2, seed=seed)
    torch.manual_seed(seed)
    seqs = generate(model, tok, num=len(plans), config=cfg, constraints=[force], progress=True)
    for seq, plan in zip(seqs, plans, strict=True):
        given = np.flatnonzero(plan >= 0)
        assert np.array_equal(np.asarray(seq)[given], plan[given]), "a forced token moved"
    return [tok.decode(s) for s in seqs]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("tells", help="feature effect sizes of a folder of MIDI files")
    t.add_argument("folder")
    t.add_argument("--rows", type=int, default=30)
    g = sub.add_parser("given-soprano", help="the model harmonizing Bach's train sopranos")
    g.add_argument("--model", default="bach")
    g.add_argument("--num", type=int, default=120)
    g.add_argument("--top-p", type=float, default=0.95)
    g.add_argument("--seed", type=int, default=7)
    for q in (t, g):
        q.add_argument("--bars", type=int, default=8)
        q.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import torch

    from musegen.evaluate.quality import excerpt, quality_report
    from musegen.io import load

    torch.set_num_threads(args.threads)
    valid = [excerpt(s, args.bars) for s in load_reference("bach", "valid")]
    train = load_reference("bach", "train")
    if args.what == "tells":
        files = sorted(Path(args.folder).glob("*.mid"))
        if not files:
            raise SystemExit(f"{args.folder}: no .mid files")
        candidates = [excerpt(load(f), args.bars) for f in files]
        pick = np.random.default_rng(0).choice(len(train), min(len(candidates), len(train)), False)
        rows = tell_rows(candidates, valid, [excerpt(train[i], args.bars) for i in pick])
        print(f"{len(candidates)} candidates, {len(valid)} valid, {len(pick)} train chorales")
        print("| feature | candidates | valid | train | effect cand. − valid | train − valid |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in rows[: args.rows]:
            print(f"| {r['feature']} | {r['candidate']:.3f} | {r['valid']:.3f} | {r['train']:.3f} "
                  f"| {r['effect']:+.2f} | {r['train_effect']:+.2f} |")  # fmt: skip
        return 0
    pick = np.random.default_rng(0).choice(len(train), min(args.num, len(train)), False)
    reals = [excerpt(train[i], args.bars) for i in pick]
    pieces = given_soprano(args.model, reals, args.top_p, args.seed)
    ours = quality_report(pieces, valid, bars=args.bars)["generated"]
    real = quality_report(reals, valid, bars=args.bars)["generated"]
    print("| figure | model under Bach's sopranos | the same real openings |")
    print("|---|---:|---:|")
    for key in ("oa_mean", "vl_total_per_100_beats", "note_length_tv", "c2st_accuracy"):
        print(f"| {key} | {ours[key]:.3f} | {real[key]:.3f} |")
    tells = ", ".join(f"{k} {v:+.2f}" for k, v in ours["c2st"]["top_features"])
    print(f"tells (model under Bach's sopranos): {tells}")
    print(json.dumps({
        "benchmark": "chorale_tells.given_soprano.c2st", "ours": round(ours["c2st_accuracy"], 4),
        "peer": round(real["c2st_accuracy"], 4),
        "ratio": round(real["c2st_accuracy"] / ours["c2st_accuracy"], 4),
        "unit": "C2ST accuracy (0.5 = indistinguishable; peer: the same real openings)",
        "pieces": len(pieces), "model": args.model, "top_p": args.top_p, "seed": args.seed,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
