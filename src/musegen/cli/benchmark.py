"""``musegen benchmark``: standard benchmarks, ours next to the published figures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_CONFIGS = Path("configs/polyphonic")


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
    from musegen.train.polyphonic import (
        cpu_note,
        default_run,
        json_lines,
        markdown_table,
        read_run,
        train_and_evaluate,
    )
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
        results.append(train_and_evaluate(name, args.out, args.budget, run, args.retrain, log=log))
    table = markdown_table(results)
    print(table)
    out = Path(args.out)
    summary = {"cpu": cpu_note(), "results": results, "records": json_lines(results)}
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2))
    print(f"\nwritten: {out / 'results.json'}", file=sys.stderr)
    return 0
