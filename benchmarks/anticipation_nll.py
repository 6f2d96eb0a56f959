"""What infilling costs plain continuation: a model trained with the infill objective against an
autoregressive model of the same size and steps, by NLL of the valid split's plain sequences.

The two run files differ only in ``"objective"`` (``configs/anticipation-infill.json`` adds
the infill objective of :mod:`musegen.train.infill`, 25% plain windows;
``configs/anticipation-ar.json`` has none): same network, data, seed, steps, batch and
schedule. Train both, then score both here::

    musegen train --config configs/anticipation-ar.json --data data/bach-chorale \\
        --out runs/anticipation-ar --threads 1
    musegen train --config configs/anticipation-infill.json --data data/bach-chorale \\
        --out runs/anticipation-infill --threads 1
    .venv/bin/python benchmarks/anticipation_nll.py

Scoring (as :func:`musegen.evaluate.likelihood.evaluate_nll`): the split's token stream is
tiled into windows of the training ``seq_len``; every token after each window's first is
scored once, in nats per token. The infill model's vocabulary is the plain one plus its two
infill ids. Both are read at their last step (``checkpoint/``, equal steps; ``best/`` is
chosen by each run's own valid loss, which for the infill run is the infill loss). The infill
model's figure is over its whole softmax (``nll``), and also renormalised over the
plain ids (``nll_plain_ids``: what it would score if it knew no infill was asked).

Fairness: both read the same windows of the same split, every token after a window's first
counted once, at the same context (the training ``seq_len``). Train both with the same code
(the same seed of two runs made hours apart on changed code differed by 4.5%), and give
``--seed`` to both for a second pair. ``configs/anticipation-infill-plain75.json`` is the
infill run with 75% plain windows (``--infill runs/anticipation-infill-plain75/checkpoint``).

JSON line ``{"benchmark": "anticipation_nll", "ours": infill model, "peer": autoregressive,
"ratio": peer / ours, "unit": "nats per token"}`` with ``loss_percent`` = (ours - peer) / peer
(target: <= 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def score(model_ref: str, data: str, split: str, batch: int = 8) -> dict[str, Any]:
    """NLL per token of ``split``'s plain sequences: over the whole softmax and over the
    dataset tokenizer's ids only."""
    import torch
    import torch.nn.functional as F

    from musegen.data.dataset import load_prepared
    from musegen.data.training import IGNORE_INDEX, WindowDataset
    from musegen.evaluate.likelihood import context_length
    from musegen.models import load_model
    from musegen.models.pretrained import resolve_model

    folder = resolve_model(model_ref)
    model, meta = load_model(folder)
    d = load_prepared(ROOT / data)
    plain = len(d.tokenizer)
    part = d.split(split)
    seq_len = context_length(meta, model, None)
    windows = WindowDataset(part, seq_len, mode="tile")
    total = total_plain = 0.0
    count = 0
    with torch.no_grad():
        for b in range(0, len(windows), batch):
            items = [windows.arrays(i) for i in range(b, min(b + batch, len(windows)))]
            x = torch.stack([torch.from_numpy(i[0]) for i in items])
            y = torch.stack([torch.from_numpy(i[1]) for i in items]).reshape(-1)
            logits = model(x)[0].float()
            logits = logits.reshape(-1, logits.size(-1))
            total += float(F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX, reduction="sum"))
            total_plain += float(
                F.cross_entropy(logits[:, :plain], y, ignore_index=IGNORE_INDEX, reduction="sum")
            )
            count += int((y != IGNORE_INDEX).sum())
    return {
        "model": str(folder),
        "tokenizer": meta["tokenizer"]["tokenizer"],
        "vocab": int(logits.size(-1)),
        "step": meta.get("step"),
        "parameters": meta.get("parameters"),
        "context": seq_len,
        "tokens": count,
        "nll": total / count,
        "nll_plain_ids": total_plain / count,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--infill", default="runs/anticipation-infill/checkpoint")
    p.add_argument("--ar", default="runs/anticipation-ar/checkpoint")
    p.add_argument("--data", default="data/bach-chorale")
    p.add_argument("--split", default="valid", choices=("valid", "test"))
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    ours = score(args.infill, args.data, args.split)
    peer = score(args.ar, args.data, args.split)
    if ours["step"] != peer["step"]:  # parameters differ by the infill ids' embeddings
        print(f"warning: unequal steps ({ours['step']} vs {peer['step']})", file=sys.stderr)
    for side, r in (("infill", ours), ("autoregressive", peer)):
        print(
            f"{side}: {r['model']} ({r['tokenizer']}, step {r['step']}, {r['parameters']} "
            f"parameters): {r['nll']:.4f} nats/token ({r['nll_plain_ids']:.4f} over plain ids), "
            f"{r['tokens']} tokens",
            file=sys.stderr,
        )
    row = {
        "benchmark": "anticipation_nll",
        "ours": round(ours["nll"], 4),
        "peer": round(peer["nll"], 4),
        "ratio": round(peer["nll"] / ours["nll"], 4),
        "unit": "nats per token",
        "loss_percent": round(100 * (ours["nll"] - peer["nll"]) / peer["nll"], 2),
        "ours_plain_ids": round(ours["nll_plain_ids"], 4),
        "loss_percent_plain_ids": round(
            100 * (ours["nll_plain_ids"] - peer["nll"]) / peer["nll"], 2
        ),
        "split": f"{args.data}:{args.split}",
        "steps": ours["step"],
        "parameters": ours["parameters"],
    }
    print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
