"""``musegen benchmark``: standard benchmarks, ours next to the published figures.

The published figures live here, with the command that prints them (``benchmarks/polyphonic.py``
prints the same table through :func:`markdown_table` and :func:`json_lines`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_CONFIGS = Path("configs/polyphonic")

# published test NLL, nats per frame (BL-2012 report log-likelihoods; these are -LL), as
# quoted in shared/data/README.md
PUBLISHED: dict[str, dict[str, float | None]] = {
    "RNN (BL-2012)": {"jsb": 8.71, "nottingham": 4.46, "musedata": 8.13, "pianomidi": 8.37},
    "RNN-RBM (BL-2012)": {"jsb": 6.27, "nottingham": 2.39, "musedata": 6.01, "pianomidi": 7.09},
    "RNN-NADE (BL-2012)": {"jsb": 5.56, "nottingham": 2.31, "musedata": 5.60, "pianomidi": 7.05},
    "RNN-NADE HF (BL-2012)": {"jsb": 5.19, "nottingham": None, "musedata": None, "pianomidi": None},
    "DMM (Krishnan 2017)": {"jsb": 6.39, "nottingham": 2.77, "musedata": 6.83, "pianomidi": 7.83},
}
# the figure to beat per set: the best RNN-NADE result (HF-trained on JSB)
PEER: dict[str, tuple[str, float]] = {
    "jsb": ("RNN-NADE HF (BL-2012)", 5.19),
    "nottingham": ("RNN-NADE (BL-2012)", 2.31),
    "musedata": ("RNN-NADE (BL-2012)", 5.60),
    "pianomidi": ("RNN-NADE (BL-2012)", 7.05),
}


def markdown_table(results: list[dict[str, Any]]) -> str:
    """Ours (valid, test) next to the published test figures, one row per set."""
    head = (
        "| set | ours valid | ours test | RNN-NADE | RNN-RBM | RNN | peer / ours "
        "| parameters | budget (min) | trained (min) |"
    )
    rows = [head, "|" + "---|" * 10]
    for r in results:
        d = r["dataset"]
        nade = PUBLISHED["RNN-NADE (BL-2012)"][d]
        hf = PUBLISHED["RNN-NADE HF (BL-2012)"][d]
        nade_txt = f"{nade} / {hf} (HF)" if hf else f"{nade}"
        rows.append(
            f"| {d} | {r['valid_nll']:.3f} | {r['test_nll']:.3f} | {nade_txt} "
            f"| {PUBLISHED['RNN-RBM (BL-2012)'][d]} | {PUBLISHED['RNN (BL-2012)'][d]} "
            f"| {PEER[d][1] / r['test_nll']:.3f} | {r['parameters']:,} "
            f"| {r['budget_min']:g} | {r['train_seconds'] / 60:.1f} |"
        )
    return "\n".join(rows)


def json_lines(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One benchmark record per set (the JSON-lines format of ``benchmarks/``)."""
    return [
        {
            "benchmark": f"polyphonic.test_nll.{r['dataset']}",
            "ours": round(r["test_nll"], 4),
            "peer": PEER[r["dataset"]][1],
            "peer_name": PEER[r["dataset"]][0],
            "ratio": round(PEER[r["dataset"]][1] / r["test_nll"], 4),
            "unit": "nats/frame",
            "valid_nll": round(r["valid_nll"], 4),
            "parameters": r["parameters"],
            "budget_min": r["budget_min"],
            "train_minutes": round(r["train_seconds"] / 60, 2),
            "threads": r["threads"],
            "device": r["device"],
        }
        for r in results
    ]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="run a standard benchmark (polyphonic piano-roll NLL)",
        description="Run a benchmark. 'musegen benchmark polyphonic --help' for its options.",
    )
    bench = p.add_subparsers(dest="benchmark_command", metavar="BENCHMARK", parser_class=type(p))
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    poly = bench.add_parser(
        "polyphonic",
        help="frame NLL on JSB, Nottingham, MuseData, Piano-midi (Boulanger-Lewandowski 2012)",
        description="Train (or load) a frame model per set within --budget minutes, choose "
        "it on valid, score test once, and print a Markdown table of ours next to the "
        "published figures (nats per frame, every frame of every test piece, the first one "
        "from an empty context). Writes DIR/results.json and per set DIR/SET/result.json.",
    )
    poly.add_argument(
        "--datasets",
        default="jsb,nottingham,musedata,pianomidi",
        help="comma-separated sets (default: all four)",
    )
    poly.add_argument(
        "--budget", type=float, default=15.0, metavar="MINUTES", help="training minutes per set"
    )
    poly.add_argument("--out", default="runs/polyphonic", metavar="DIR", help="output folder")
    poly.add_argument(
        "--configs",
        metavar="DIR",
        help=f"folder of SET.json run configs (default: {DEFAULT_CONFIGS} if present, else "
        "the built-in ones it holds)",
    )
    poly.add_argument("--retrain", action="store_true", help="train again even if a result exists")
    poly.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    poly.set_defaults(func=run_polyphonic)


def run_polyphonic(args: argparse.Namespace) -> int:
    import json

    from musegen.errors import MusegenError
    from musegen.metrics.frame_nll import DATASETS
    from musegen.train.polyphonic import cpu_note, default_run, read_run, train_and_evaluate
    from musegen.utils import atomic_write_text

    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(names) - set(DATASETS))
    if unknown or not names:
        raise MusegenError(f"unknown dataset(s) {unknown}; choose from {', '.join(DATASETS)}")
    if args.budget <= 0:
        raise MusegenError("--budget must be a positive number of minutes")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    configs = Path(args.configs) if args.configs else DEFAULT_CONFIGS
    if args.configs and not configs.is_dir():
        raise MusegenError(f"--configs {configs}: no such folder")
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    log(f"polyphonic benchmark: {cpu_note()}; budget {args.budget:g} min per set")
    results = []
    for name in names:
        path = configs / f"{name}.json"
        run = read_run(path) if path.is_file() else default_run(name)
        results.append(
            train_and_evaluate(
                name, args.out, args.budget, run, args.retrain, log=log, peer=PEER[name]
            )
        )
    table = markdown_table(results)
    print(table)
    out = Path(args.out)
    summary = {"cpu": cpu_note(), "results": results, "records": json_lines(results)}
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2))
    print(f"\nwritten: {out / 'results.json'}", file=sys.stderr)
    return 0
