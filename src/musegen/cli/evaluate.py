"""``musegen evaluate``: statistics, harmony, voice leading, likelihood and a full report."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from musegen.cli.common import print_json, report_failures
from musegen.data.refs import REFS_HELP

INPUTS_HELP = f"one or more of: {REFS_HELP}"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate music: statistics, harmony, voice leading, likelihood, HTML report",
        description="Measure pieces and compare sets. Run 'musegen evaluate COMMAND --help'.",
    )
    ev = p.add_subparsers(dest="evaluate_command", metavar="COMMAND", parser_class=type(p))
    p.set_defaults(func=lambda args: _help(p))

    s = ev.add_parser("stats", help="statistics of each piece (pitch, rhythm, repetition)")
    _inputs(s)
    s.set_defaults(func=run_stats)

    h = ev.add_parser("harmony", help="key, chord per beat with Roman numerals, cadences")
    _inputs(h)
    h.add_argument("--key", help="analyse in this key (e.g. 'G major', 'e minor') instead")
    h.set_defaults(func=run_harmony)

    v = ev.add_parser(
        "voice-leading",
        help="four-part voice-leading errors with bar and beat",
        description="Check four-voice pieces (tracks labelled S/A/T/B or named Soprano.., or "
        "exactly four tracks high to low): parallel and hidden fifths/octaves, crossing, "
        "overlap, spacing, ranges, leading tones, large and augmented leaps.",
    )
    _inputs(v)
    v.add_argument("--key", help="check in this key (e.g. 'G major') instead of the estimate")
    v.add_argument(
        "--separate",
        action="store_true",
        help="deal the notes out to four voices first (for a chorale on one track)",
    )
    v.set_defaults(func=run_voice_leading)

    n = ev.add_parser(
        "nll",
        help="negative log-likelihood of a prepared split under a model",
        description="Tile the split into windows of the model's context and score every token "
        "after the first: mean NLL per token and per note (total NLL / notes in the split), "
        "bits per note, perplexity.",
    )
    n.add_argument("--model", required=True, help="shipped model name, model or run folder")
    n.add_argument("--data", required=True, metavar="DIR", help="prepared dataset folder")
    n.add_argument("--split", default="test", choices=("train", "valid", "test"))
    n.add_argument("--context", type=int, help="window length (default: the training seq_len)")
    n.add_argument("--batch-size", type=int, default=16)
    n.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    n.add_argument("--json", action="store_true", help="print machine-readable JSON")
    n.set_defaults(func=run_nll)

    r = ev.add_parser(
        "report",
        help="compare generated pieces with a reference set: one HTML page (+ JSON)",
        description="Statistics, Yang & Lerch set comparison (overlapping area, KL divergence), "
        "harmony, voice leading and piano rolls of GENERATED against --reference.",
    )
    r.add_argument("generated", nargs="+", metavar="GENERATED", help=INPUTS_HELP)
    r.add_argument(
        "--reference", "-r", action="append", required=True, metavar="REF", help=INPUTS_HELP
    )
    r.add_argument("--out", "-o", default="report.html", help="HTML file (default: report.html)")
    r.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="also write the numbers as JSON to PATH (stdout without PATH)",
    )
    r.add_argument("--split", help="split of source:/prepared references that name none")
    r.add_argument("--max-pieces", type=int, help="evaluate a seeded random subset per set")
    r.add_argument(
        "--features",
        help="comma-separated features to compare (default: all; see 'evaluate stats')",
    )
    r.add_argument("--thumbnails", type=int, default=8, help="piano rolls to show (default 8)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    r.set_defaults(func=run_report)


def _help(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


def _inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="FILE", help=INPUTS_HELP)
    p.add_argument("--split", help="split of source:/prepared inputs that name none")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _load(args: argparse.Namespace) -> Any:
    from musegen.evaluate.sets import load_set

    return load_set(args.inputs, split=args.split, progress=sys.stderr.isatty())


def _finish(pieces: Any, command: str) -> int:
    return report_failures([f"{n}: {r}" for n, r in pieces.failures], f"evaluate {command}")


def run_stats(args: argparse.Namespace) -> int:
    from musegen.metrics.stats import SCALAR_FEATURES, jsonable, scalar_features

    pieces = _load(args)
    rows = [(name, scalar_features(score)) for name, score in pieces.pieces]
    if args.json:
        print_json([{"piece": n, **{k: jsonable(v) for k, v in f.items()}} for n, f in rows])
    else:
        width = max(len(k) for k in SCALAR_FEATURES)
        for name, feats in rows:
            print(name)
            for k, v in feats.items():
                unit = SCALAR_FEATURES[k].unit
                print(f"  {k:<{width}} {v:10.4f} {unit}")
    return _finish(pieces, "stats")


def run_harmony(args: argparse.Namespace) -> int:
    from musegen.metrics.harmony import chords_per_beat, detect_cadences
    from musegen.theory import estimate_key, parse_key

    pieces = _load(args)
    out = []
    for name, score in pieces.pieces:
        key = parse_key(args.key) if args.key else estimate_key(score)
        chords = chords_per_beat(score, key)
        cadences = detect_cadences(score, key, chords)
        out.append((name, key, chords, cadences))
    if args.json:
        print_json(
            [
                {
                    "piece": n,
                    "key": str(k) if k is not None else None,
                    "chords": [c.to_dict() for c in ch],
                    "cadences": [c.to_dict() for c in ca],
                }
                for n, k, ch, ca in out
            ]
        )
    else:
        for name, key, chords, cadences in out:
            print(f"{name}: {key}")
            line = " ".join(f"{c.bar}.{c.beat:g}:{c.numeral or '-'}" for c in chords)
            print(f"  chords {line}")
            for c in cadences:
                print(f"  {c.kind} cadence {' -> '.join(c.chords)} at bar {c.bar} beat {c.beat:g}")
    return _finish(pieces, "harmony")


def run_voice_leading(args: argparse.Namespace) -> int:
    from musegen.errors import MusegenError
    from musegen.metrics.voice_leading import check_voice_leading
    from musegen.theory import parse_key
    from musegen.voices import separate_voices

    pieces = _load(args)
    key = parse_key(args.key) if args.key else None
    results, bad = [], []
    for name, score in pieces.pieces:
        try:
            if args.separate:
                score = separate_voices(score, 4)
            results.append((name, check_voice_leading(score, key=key)))
        except MusegenError as e:
            bad.append(f"{name}: {e}")
    if args.json:
        print_json([{"piece": n, **r.to_dict()} for n, r in results])
    else:
        for name, rep in results:
            rate = rep.rates_per_100_beats()["total"]
            print(
                f"{name}: {len(rep.errors)} errors in {rep.n_beats} beats ({rate:.2f} per 100 beats), key {rep.key}"
            )
            for e in rep.errors:
                print(f"  bar {e.bar} beat {e.beat:g}: {e.kind} ({'-'.join(e.voices)}) {e.detail}")
    code = _finish(pieces, "voice-leading")
    return report_failures(bad, "evaluate voice-leading") or code


def run_nll(args: argparse.Namespace) -> int:
    from musegen.evaluate.likelihood import evaluate_nll

    res = evaluate_nll(
        args.model,
        args.data,
        split=args.split,
        context=args.context,
        batch_size=args.batch_size,
        device=args.device,
        progress=sys.stderr.isatty(),
    )
    if args.json:
        print_json(res.to_dict())
    else:
        print(
            f"{res.split} split of {res.data}: {res.pieces} pieces, {res.notes} notes, {res.tokens} scored tokens"
        )
        print(f"  model {res.model}, windows of {res.context} tokens")
        print(
            f"  NLL per token {res.nll_per_token:.4f} nats ({res.bits_per_token:.4f} bits), perplexity {res.perplexity:.3f}"
        )
        print(f"  NLL per note  {res.nll_per_note:.4f} nats ({res.bits_per_note:.4f} bits)")
    return 0


def run_report(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from musegen.evaluate.report import build_report, render_html
    from musegen.evaluate.sets import load_set
    from musegen.utils import atomic_write_text

    features = [f.strip() for f in args.features.split(",")] if args.features else None
    if features:
        from musegen.metrics.stats import FEATURES

        unknown = [f for f in features if f not in FEATURES]
        if unknown:
            from musegen.errors import MusegenError

            raise MusegenError(
                f"unknown feature(s) {', '.join(unknown)}; known: {', '.join(FEATURES)}"
            )
    progress = not args.no_progress and sys.stderr.isatty()  # a bar per step: a terminal's
    gen = load_set(args.generated, split=args.split, limit=args.max_pieces, progress=progress)
    ref = load_set(args.reference, split=args.split, limit=args.max_pieces, progress=progress)
    report = build_report(gen, ref, progress=progress, features=features)
    atomic_write_text(args.out, render_html(report, thumbnails=args.thumbnails, progress=progress))
    print(f"wrote {args.out}", file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json:
        text = json.dumps(report.to_dict(), indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            atomic_write_text(Path(args.json), text)
            print(f"wrote {args.json}")
    failed = [f"{n}: {r}" for s in (gen, ref) for n, r in s.failures]
    for line in failed:
        sys.stderr.write(f"musegen evaluate report: skipped {line}\n")
    return 0
