"""Does ``generate --style NAME`` write in that style? A style classifier's verdict.

A classifier of styles is fitted on the **train** split of a prepared ``remi-instruments``
dataset with styles (``scripts/multipart_corpora.py``): every piece's ``--bars``-bar segments
(at most ``--segments`` per piece, evenly spaced; each style weighted equally), described by
note features only (the scalar features of :mod:`musegen.metrics.stats`, the note-length
histogram, each instrument's share of notes and mean pitch: no meter, tempo or velocity).
It is one-vs-rest L2 logistic regression (:func:`musegen.evaluate.c2st.logistic_predict`,
standardised features), the prediction the likeliest style.

* **ceiling**: its accuracy on the **valid** split's segments (real music of each style);
* **ours**: for each style with valid segments, ``--num`` pieces of ``--bars`` bars made as
  ``musegen generate --style NAME --instruments "violin,viola,cello"`` makes them (seed = the
  style's index): the share the classifier puts in the style asked for (hit rate);
* **peer**: the share of the pieces asked for *another* style that it puts in that style (what
  the label alone, without the token's effect, would score), averaged over styles.

``family`` merges the quartet composers into one class (quartet, chorale, madrigal, mass), as
those are the corpora's differences a small model can carry. Prints the confusion matrices to
stderr and JSON lines ``{"benchmark","ours","peer","ratio","unit"}``. Run:
``python benchmarks/style.py --model runs/quartet-styles --data data/multipart``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FAMILY = {
    "haydn": "quartet",
    "mozart": "quartet",
    "beethoven": "quartet",
    "schumann": "quartet",
    "bach": "chorale",
    "monteverdi": "madrigal",
    "palestrina": "mass",
}
PROGRAMS = (40, 41, 42)


def features(score: Any) -> np.ndarray:
    """Note features of one segment (module docstring)."""
    from musegen.metrics.stats import note_length_histogram, scalar_features

    scalars = list(scalar_features(score).values())
    lengths = list(note_length_histogram(score))
    total = max(sum(len(t) for t in score.tracks), 1)
    per = []
    for p in PROGRAMS:
        notes = [t.notes["pitch"] for t in score.tracks if t.program == p and len(t)]
        pitches = np.concatenate(notes) if notes else np.zeros(0)
        per += [len(pitches) / total, float(pitches.mean()) if len(pitches) else np.nan]
    return np.array([*scalars, *lengths, *per], dtype=np.float64)


def segments(score: Any, bars: int, most: int) -> list[Any]:
    """Up to ``most`` evenly spaced ``bars``-bar segments with notes."""
    n = score.n_bars // bars
    picks = np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int)) if n else []
    out = [score.slice_bars(int(k) * bars, (int(k) + 1) * bars) for k in picks]
    return [s for s in out if sum(len(t) for t in s.tracks) >= 4]


def real_set(data: Any, split: str, bars: int, most: int) -> tuple[np.ndarray, list[str]]:
    """Feature rows and style labels of a split's segments."""
    tok = data.tokenizer
    rows, labels = [], []
    for ids in data.split(split):
        style = tok.style_of(ids)
        if style is None:
            continue
        for seg in segments(tok.decode(ids), bars, most):
            rows.append(features(seg))
            labels.append(style)
    return np.array(rows), labels


class StyleClassifier:
    """One-vs-rest logistic regression on standardised features, classes weighted equally
    (each class's rows repeated up to the largest class's count)."""

    def __init__(self, x: np.ndarray, labels: list[str]) -> None:
        self.classes = sorted(set(labels))
        self.x, self.y = x, np.array(labels)
        finite = np.isfinite(x)
        self.mean = np.where(finite, x, 0).sum(0) / np.maximum(finite.sum(0), 1)
        filled = np.where(finite, x, self.mean)
        sd = filled.std(0)
        self.sd = np.where(sd > 1e-12, sd, np.inf)
        self.z = (filled - self.mean) / self.sd
        most = max((self.y == c).sum() for c in self.classes)
        self.rows = np.concatenate(
            [np.resize(np.flatnonzero(self.y == c), most) for c in self.classes]
        )

    def predict(self, x: np.ndarray) -> list[str]:
        from musegen.evaluate.c2st import logistic_predict

        z = (np.where(np.isfinite(x), x, self.mean) - self.mean) / self.sd
        xt, yt = self.z[self.rows], self.y[self.rows]
        probs = np.stack(
            [logistic_predict(xt, (yt == c).astype(np.float64), z) for c in self.classes], 1
        )
        return [self.classes[i] for i in probs.argmax(1)]


def confusion(
    asked: list[str], said: list[str], rows: list[str], cols: list[str]
) -> dict[str, dict[str, int]]:
    """Counts of (asked, said) pairs: a row per style asked for, a column per class."""
    pairs = list(zip(asked, said, strict=True))
    return {a: {s: pairs.count((a, s)) for s in cols} for a in rows}


def rates(asked: list[str], said: list[str], names: list[str]) -> tuple[float, float]:
    """Mean over styles of P(said = s | asked = s) and of P(said = s | asked != s)."""
    hit, false = [], []
    for s in names:
        mine = [y for x, y in zip(asked, said, strict=True) if x == s]
        other = [y for x, y in zip(asked, said, strict=True) if x != s]
        if mine:
            hit.append(np.mean([y == s for y in mine]))
        if other:
            false.append(np.mean([y == s for y in other]))
    return float(np.mean(hit)), float(np.mean(false))


def run(args: argparse.Namespace) -> dict[str, Any]:
    from musegen.data.dataset import load_prepared
    from musegen.sampling.generators import GenerateRequest, load_generator
    from musegen.sampling.instruments import parse_instruments

    data = load_prepared(ROOT / args.data)
    xtr, ytr = real_set(data, "train", args.bars, args.segments)
    xva, yva = real_set(data, "valid", args.bars, args.segments)
    clf = StyleClassifier(xtr, ytr)
    gen = load_generator(args.model)
    styles = [s for s in data.tokenizer.styles if s in set(yva)]
    instruments = tuple(sorted(set(parse_instruments(args.instruments))))
    asked, rows = [], []
    for k, style in enumerate(styles):
        req = GenerateRequest(
            num=args.num, seed=k, bars=args.bars, style=style, instruments=instruments
        )
        for piece in gen.generate(req).pieces:
            asked.append(style)
            rows.append(features(piece))
        print(f"generated {style}", file=sys.stderr, flush=True)
    said = clf.predict(np.array(rows))
    said_real = clf.predict(xva)
    out: dict[str, Any] = {"styles": styles, "train_segments": len(ytr)}
    for level, key in (("style", lambda s: s), ("family", FAMILY.get)):
        names = sorted({key(s) for s in styles})
        a, s, ya, ys = (
            [key(x) for x in asked],
            [key(x) for x in said],
            [key(x) for x in yva],
            [key(x) for x in said_real],
        )
        keep = [i for i, y in enumerate(ya) if y in names]
        ceiling, _ = rates([ya[i] for i in keep], [ys[i] for i in keep], names)
        hit, false = rates(a, s, names)
        cols = sorted({key(c) for c in clf.classes})
        out[level] = {
            "hit": hit,
            "false": false,
            "ceiling": ceiling,
            "generated": confusion(a, s, names, cols),
            "valid": confusion([ya[i] for i in keep], [ys[i] for i in keep], names, cols),
        }
    out["valid_segments"] = len(yva)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a remi-instruments model with styles")
    p.add_argument("--data", default="data/multipart", help="its prepared dataset")
    p.add_argument("--num", type=int, default=12, help="pieces per style")
    p.add_argument("--bars", type=int, default=8)
    p.add_argument("--segments", type=int, default=6, help="segments per real piece, at most")
    p.add_argument("--instruments", default="violin,viola,cello")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    r = run(args)
    print(json.dumps(r, indent=1), file=sys.stderr)
    for level in ("style", "family"):
        f = r[level]
        row = {
            "benchmark": f"style_hit_{level}",
            "ours": round(f["hit"], 3),
            "peer": round(f["false"], 3),
            "ratio": round(f["hit"] / f["false"], 3) if f["false"] else None,
            "unit": f"share of pieces a {level} classifier puts in the {level} asked for "
            f"(peer: in that {level} when another was asked); real valid: "
            f"{f['ceiling']:.3f}",
            "model": args.model,
            "pieces": args.num * len(r["styles"]),
            "bars": args.bars,
        }
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
