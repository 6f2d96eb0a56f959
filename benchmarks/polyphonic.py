"""Frame NLL on the four Boulanger-Lewandowski (2012) piano-roll sets, ours vs RNN-NADE.

For each set (JSB Chorales, Nottingham, MuseData, Piano-midi) a frame model is trained with
the shared Trainer within ``--budget`` minutes of this machine's CPU (settings in
``configs/polyphonic/SET.json``), the checkpoint with the lowest valid NLL is kept, and the
test split is scored once: NLL in nats per time step, summed over the 88 keys of each frame,
averaged over every frame of every test piece, the first frame of each piece predicted from
an empty context (``musegen.metrics.frame_nll``). The peer is BL-2012's RNN-NADE (5.19 on JSB:
its HF-trained variant; 2.31 / 5.60 / 7.05 on the others). A set already run in ``--out`` is
loaded, not retrained (``--retrain`` to train again).

Prints one JSON line per set: ``{"benchmark": "polyphonic.test_nll.jsb", "ours": ..., "peer":
5.19, "ratio": peer/ours, "unit": "nats/frame", "valid_nll": ..., ...}`` (ratio > 1: ours
better), then the Markdown table on stderr. Run: ``python benchmarks/polyphonic.py --budget 15``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from musegen.cli.benchmark import PEER, json_lines, markdown_table
from musegen.metrics.frame_nll import DATASETS
from musegen.train.polyphonic import cpu_note, default_run, read_run, train_and_evaluate

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated sets")
    ap.add_argument("--budget", type=float, default=15.0, help="training minutes per set")
    ap.add_argument("--out", default=str(ROOT / "runs" / "polyphonic"), help="output folder")
    ap.add_argument("--configs", default=str(ROOT / "configs" / "polyphonic"))
    ap.add_argument("--retrain", action="store_true", help="train again even if a result exists")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: busy shared CPU)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    note = f"CPU budget {args.budget:g} min of training per set; {cpu_note()}; no GPU"
    print(f"# {note}", file=sys.stderr, flush=True)
    results = []
    for name in args.datasets.split(","):
        path = Path(args.configs) / f"{name}.json"
        run = read_run(path) if path.is_file() else default_run(name)
        log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
        result = train_and_evaluate(
            name, args.out, args.budget, run, args.retrain, log=log, peer=PEER[name]
        )
        results.append(result)
        (record,) = json_lines([result])
        print(json.dumps({**record, "cpu": note}), flush=True)
    print(markdown_table(results), file=sys.stderr)


if __name__ == "__main__":
    main()
