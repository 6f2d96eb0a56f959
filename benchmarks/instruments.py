"""Instrument choice (``generate --instruments``) of a ``remi-instruments`` model.

For each instrument set (default: the string quartet's violin, viola, cello; violin and cello;
viola and cello; violin alone; cello alone), ``--num`` pieces of ``--bars`` bars are generated
as ``musegen generate --instruments …`` makes them (seed = the set's index), and the same
number with nothing asked (``peer``: the model writes its own header). Figures:

* **on asked**: the share of notes played by an instrument asked for (the grammar makes it 1
  for ``ours``; ``peer``: how often a free piece's notes happen to be on those instruments);
* **asked playing**: the share of the instruments asked for that play at least one note
  (the model's part: the grammar allows, it does not make them play);
* **register**: per instrument, the mean pitch of its notes against the data's (the valid
  split's pieces) — whether the model writes a cello line where cellos play; reported as the
  mean absolute difference in semitones over the instruments, ours (asked) vs the data's
  spread between instruments (what a model that ignored the instrument would be off by).

Prints JSON lines ``{"benchmark","ours","peer","ratio","unit"}``. Run:
``python benchmarks/instruments.py --model runs/quartets-instruments --data data/quartets``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SETS = ("violin,viola,cello", "violin,cello", "viola,cello", "violin", "cello")


def notes_by_program(scores: list[Any]) -> dict[int, np.ndarray]:
    """Every note's pitch, by the program of its track."""
    out: dict[int, list[np.ndarray]] = defaultdict(list)
    for s in scores:
        for t in s.tracks:
            if len(t):
                out[128 if t.is_drum else int(t.program)].append(t.notes["pitch"])
    return {p: np.concatenate(v).astype(np.float64) for p, v in out.items()}


def run(model: str, data: str, num: int, bars: int, style: str | None = None) -> dict[str, Any]:
    from musegen.data.dataset import load_prepared
    from musegen.sampling.generators import GenerateRequest, load_generator
    from musegen.sampling.instruments import parse_instruments

    gen = load_generator(model)
    d = load_prepared(ROOT / data)
    real = notes_by_program([d.tokenizer.decode(ids) for ids in d.split("valid")])
    real_mean = {p: float(v.mean()) for p, v in real.items()}
    on, playing, register = [], [], []
    peer_on = []
    free = gen.generate(GenerateRequest(num=num, seed=99, bars=bars, style=style)).pieces
    free_notes = notes_by_program(free)
    for k, text in enumerate(SETS):
        asked = set(parse_instruments(text))
        pieces = gen.generate(
            GenerateRequest(
                num=num, seed=k, bars=bars, instruments=tuple(sorted(asked)), style=style
            )
        ).pieces
        by = notes_by_program(pieces)
        total = sum(len(v) for v in by.values())
        on.append(sum(len(v) for p, v in by.items() if p in asked) / max(total, 1))
        free_total = sum(len(v) for v in free_notes.values())
        peer_on.append(
            sum(len(v) for p, v in free_notes.items() if p in asked) / max(free_total, 1)
        )
        for s in pieces:
            present = {int(t.program) for t in s.tracks if len(t)}
            playing.append(len(present & asked) / len(asked))
        register += [abs(float(v.mean()) - real_mean[p]) for p, v in by.items() if p in real_mean]
    spread = [abs(a - b) for p, a in real_mean.items() for q, b in real_mean.items() if p < q]
    return {
        "on_asked": float(np.mean(on)),
        "peer_on_asked": float(np.mean(peer_on)),
        "asked_playing": float(np.mean(playing)),
        "register_error": float(np.mean(register)) if register else float("nan"),
        "register_spread": float(np.mean(spread)) if spread else float("nan"),
        "data_means": {str(p): round(m, 2) for p, m in sorted(real_mean.items())},
        "pieces": num * len(SETS),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a remi-instruments model (folder or run)")
    p.add_argument("--data", default="data/quartets", help="its prepared dataset (valid split)")
    p.add_argument("--num", type=int, default=8, help="pieces per instrument set")
    p.add_argument("--bars", type=int, default=4)
    p.add_argument("--style", help="ask every piece for this style (a model with styles)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    r = run(args.model, args.data, args.num, args.bars, args.style)
    print(json.dumps(r), file=sys.stderr)
    common = {"model": args.model, "pieces": r["pieces"], "bars": args.bars}
    if args.style:
        common["style"] = args.style
    rows = [
        ("instruments_on_asked", r["on_asked"], r["peer_on_asked"], "share of notes"),
        ("instruments_asked_playing", r["asked_playing"], None, "share of asked instruments"),
        (
            "instruments_register_error",
            r["register_error"],
            r["register_spread"],
            "semitones |mean pitch - data's| per instrument (peer: the data's spread)",
        ),
    ]
    for name, ours, peer, unit in rows:
        ratio = None
        if peer:
            ratio = round(peer / ours if "register" in name else ours / peer, 3)
        row = {
            "benchmark": name,
            "ours": round(ours, 3),
            "peer": None if peer is None else round(peer, 3),
            "ratio": ratio,
            "unit": unit,
            **common,
        }
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
