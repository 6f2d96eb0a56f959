"""``musegen listen-test``: a blind A/B listening test in the browser, and its statistics."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "listen-test",
        help="a blind A/B listening test (serve it, or report its answers' statistics)",
        description="With --a and --b: render the pieces of both folders to audio and serve a "
        "page that plays pairs (one of A, one of B, order drawn per pair, no labels) and asks "
        "which is more musical (or which is human-made); every answer is saved at once, "
        "atomically, to --out (JSON) and beside it as CSV. With --results FILE: how often B "
        "was chosen per question, an exact binomial test against 50% and confidence "
        "intervals (Wilson, Clopper-Pearson).",
    )
    p.add_argument("--a", metavar="DIR", help="set A: MIDI/MusicXML/ABC or WAV files")
    p.add_argument("--b", metavar="DIR", help="set B: MIDI/MusicXML/ABC or WAV files")
    p.add_argument("--pairs", type=int, default=20, help="pairs to play (default 20)")
    p.add_argument(
        "--question",
        default="musical",
        metavar="KEYS",
        help="what to ask, comma-separated: musical (which is more musical), human (which "
        "was made by a person); default musical",
    )
    p.add_argument("--seed", type=int, help="seed of the pairs' draw (default: a new one, saved)")
    p.add_argument(
        "--out",
        default="listening.json",
        metavar="FILE",
        help="answers file (default listening.json; the CSV goes beside it)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    p.add_argument("--results", metavar="FILE", help="report the statistics of an answers file")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level (default 0.95)")
    p.add_argument("--json", action="store_true", help="--results as JSON")
    p.set_defaults(func=run_listen_test)


def run_listen_test(args: argparse.Namespace) -> int:
    from musegen.errors import MusegenError

    if args.results:
        return _results(args)
    if not (args.a and args.b):
        raise MusegenError("give --a DIR and --b DIR to run a test, or --results FILE")
    return _serve(args)


def _results(args: argparse.Namespace) -> int:
    from musegen.cli.common import print_json
    from musegen.evaluate.listening import read_answers, report, summarize

    prefs = summarize(read_answers(args.results), args.confidence)
    if args.json:
        print_json(report(prefs))
    else:
        for pref in prefs:
            print(pref.line())
        if not prefs:
            print("no answers")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import secrets
    import tempfile

    from musegen.errors import MusegenError

    try:
        import uvicorn

        from musegen.web.listen import create_listen_app, prepare
    except ImportError as e:
        raise MusegenError(
            f"the listening test needs the web extra ({e.name} is missing): "
            "pip install 'musegen[web]'"
        ) from e
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    questions = tuple(q.strip() for q in args.question.split(",") if q.strip())
    with tempfile.TemporaryDirectory(prefix="musegen-listen-") as stimuli:
        test = prepare(args.a, args.b, args.pairs, seed, args.out, stimuli, questions)
        print(
            f"listening test: {args.pairs} pairs, seed {seed}, answers to {args.out}; "
            f"open http://{args.host}:{args.port}/",
            flush=True,
        )
        hosts = ("*",) if args.host in ("0.0.0.0", "::") else ("127.0.0.1", "localhost", args.host)
        app = create_listen_app(test, hosts)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    print(f"{len(test.answers)} answers in {args.out}")
    return 0
