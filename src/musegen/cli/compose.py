"""``musegen compose METHOD``: algorithmic composition (markov, rules, genetic, csp, recombine).

Every method writes ``OUT/NAME.mid`` (plus ``--render`` outputs) and ``OUT/NAME.json`` with
the settings, the seed and what the method found; the seed is printed, so any run can be
repeated exactly.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path
from typing import Any

from musegen.cli.common import at_least_one
from musegen.data.refs import REFS_HELP


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compose",
        help="compose with an algorithm: markov, rules, genetic, csp, recombine",
        description="Algorithmic composition. Each method writes OUT/NAME.mid, OUT/NAME.json "
        "(settings, seed, results) and any --render outputs.",
        epilog="Run 'musegen compose METHOD --help' for a method's options.",
    )
    methods = p.add_subparsers(dest="method", metavar="METHOD", parser_class=type(p))
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--out", "-o", default="out", metavar="DIR", help="output folder (default: out)"
    )
    common.add_argument("--name", help="file name stem (default: the method's name)")
    common.add_argument(
        "--seed", type=int, help="random seed (default: a new one, printed and saved)"
    )
    common.add_argument("--render", default="", metavar="KINDS", help="also write e.g. wav,png")
    common.add_argument(
        "--tempo", type=float, metavar="QPM", help="tempo in quarter notes per minute"
    )
    common.add_argument("--key", metavar="KEY", help="e.g. 'G major', 'e minor'")

    m = methods.add_parser(
        "markov",
        parents=[common],
        help="order-n Markov chains over pitch, length (and chord)",
        description="Train order-n Markov chains on a corpus (or load a saved model) and sample "
        "melodies. Without --train/--model it trains on the vendored Nottingham folk tunes.",
    )
    m.add_argument(
        "--train",
        action="append",
        metavar="SPEC",
        help=f"training corpus, repeatable (the train split where the reference names none): "
        f"{REFS_HELP}",
    )
    m.add_argument("--model", metavar="FILE.json", help="a model saved by an earlier run")
    m.add_argument(
        "--save",
        metavar="FILE.json",
        help="where to save a trained model (default OUT/NAME-model.json)",
    )
    m.add_argument("--order", type=int, default=2, help="Markov order 1..4 (default 2)")
    m.add_argument(
        "--chords",
        action="store_true",
        help="also model chords (one per beat) and condition pitch on them",
    )
    m.add_argument(
        "--mode",
        default="any",
        choices=("any", "major", "minor"),
        help="train on pieces of this mode",
    )
    m.add_argument(
        "--max-pieces", type=at_least_one, metavar="N", help="read at most N pieces per corpus"
    )
    m.add_argument(
        "--num",
        "-n",
        type=at_least_one,
        default=1,
        metavar="K",
        help="melodies to write (default 1)",
    )
    m.add_argument("--bars", type=at_least_one, default=8, help="bars per melody (default 8)")
    m.add_argument(
        "--temperature", "-t", type=float, default=1.0, help="sampling temperature (default 1)"
    )
    m.add_argument("--time-signature", default="4/4", metavar="N/D", help="default 4/4")
    m.set_defaults(func=run_markov)

    r = methods.add_parser(
        "rules",
        parents=[common],
        help="Fux species counterpoint by generate-and-test",
        description="First- or second-species counterpoint above (or below) a given or "
        "generated cantus firmus, by backtracking search under Fux's rules.",
    )
    r.add_argument("--species", type=int, default=1, choices=(1, 2))
    r.add_argument(
        "--below", action="store_true", help="write the counterpoint below the cantus firmus"
    )
    r.add_argument("--cantus", metavar="FILE", help="cantus firmus file (default: generate one)")
    r.add_argument(
        "--length", type=int, default=10, help="notes of a generated cantus firmus (default 10)"
    )
    r.add_argument("--max-steps", type=int, default=200_000, help="search step limit")
    r.add_argument("--max-seconds", type=float, default=20.0, help="search time limit")
    r.set_defaults(func=run_rules)

    g = methods.add_parser(
        "genetic",
        parents=[common],
        help="a genetic algorithm evolving a melody over chords",
        description="Evolve a melody over a chord progression: tournament selection, bar-line "
        "crossover, key-respecting mutations, elitism; fitness from music-theory rules and "
        "a reference corpus's statistics. Shows the best fitness per generation.",
    )
    g.add_argument(
        "--chords", metavar="ROMANS", help="progression, one chord per bar, e.g. 'I vi IV V'"
    )
    g.add_argument(
        "--bars", type=at_least_one, help="bars (default: the progression's length, 8 by default)"
    )
    g.add_argument("--population", type=int, default=120)
    g.add_argument("--generations", type=int, default=150)
    g.add_argument(
        "--reference",
        default="source:nottingham",
        metavar="SPEC",
        help="corpus for the statistics ('none': rules only; the train split where the reference "
        f"names none): {REFS_HELP}",
    )
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=run_genetic)

    c = methods.add_parser(
        "csp",
        parents=[common],
        help="four-part harmonization of a melody (constraint satisfaction)",
        description="Harmonize a melody in four parts (S/A/T/B): chord and voicing per beat by "
        "dynamic programming, exact under the documented cost, with hard voice-leading rules.",
    )
    c.add_argument(
        "--melody",
        required=True,
        metavar="FILE",
        help="MIDI/MusicXML/ABC file or corpus:NAME (top voice is used)",
    )
    c.add_argument(
        "--ranges",
        metavar="V=LO-HI,...",
        help="voice ranges in MIDI numbers, e.g. 'A=55-74,B=38-60'",
    )
    c.add_argument("--max-seconds", type=float, default=30.0, help="time limit")
    c.set_defaults(func=run_csp)

    b = methods.add_parser(
        "recombine",
        parents=[common],
        help="Cope-style recombination of Bach chorale beats",
        description="Cut Bach chorales into beats, label each by its harmony and voice leading, "
        "and chain beats whose joins repeat Bach's own voice leading, ending on a cadence.",
    )
    b.add_argument(
        "--corpus",
        default=None,
        help="jsb-satb (default when its data is there) or bach (music21, slower)",
    )
    b.add_argument(
        "--segments",
        type=int,
        default=16,
        help="segments (beats) including the final chord (default 16)",
    )
    b.add_argument("--unit-beats", type=int, default=1, help="beats per segment (default 1)")
    b.add_argument("--max-pieces", type=at_least_one, metavar="N", help="read at most N chorales")
    b.set_defaults(func=run_recombine)
    p.set_defaults(func=lambda args: _no_method(p))


def _no_method(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


# --------------------------------------------------------------------------- shared
def _seed(args: argparse.Namespace) -> int:
    return args.seed if args.seed is not None else secrets.randbelow(2**31)


def _key(args: argparse.Namespace, default: tuple[int, bool] | None = (0, False)) -> Any:
    from musegen.theory import parse_key

    return parse_key(args.key) if args.key else default


def _write(args: argparse.Namespace, method: str, scores: list[Any], info: dict[str, Any]) -> int:
    """Save each score (+ renders) and the settings JSON (:func:`~musegen.cli.common.write_pieces`)."""
    from musegen.cli.common import write_pieces

    settings = {"method": method, **{k: v for k, v in vars(args).items() if k != "func"}, **info}
    write_pieces(scores, args.out, args.name or method, settings, args.render)
    return 0


# --------------------------------------------------------------------------- methods
def run_markov(args: argparse.Namespace) -> int:
    from musegen.compose.markov import MarkovModel, describe, train_markov
    from musegen.errors import MusegenError

    seed = _seed(args)
    key = _key(args)
    try:
        num, den = (int(x) for x in args.time_signature.split("/"))
    except ValueError as e:
        raise MusegenError(f"bad time signature {args.time_signature!r}; write e.g. 3/4") from e
    if args.model and args.train:
        raise MusegenError("give --train (to train a model) or --model (to load one), not both")
    info: dict[str, Any] = {"seed": seed}
    if args.model:
        model = MarkovModel.load(args.model)
    else:
        specs = args.train or ["source:nottingham"]
        model = train_markov(
            specs, args.order, args.chords, args.mode, args.max_pieces, progress=True
        )
        save_to = (
            Path(args.save) if args.save else Path(args.out) / f"{args.name or 'markov'}-model.json"
        )
        model.save(save_to)
        info["model_file"] = str(save_to)
        print(f"saved {save_to}")
    print(describe(model))
    batch = model.sample(
        args.num, args.bars, seed=seed, temperature=args.temperature, time_signature=(num, den)
    )
    scores = [
        batch.score(i, key, args.tempo or 110.0, time_signature=(num, den))
        for i in range(len(batch))
    ]
    info["model_info"] = {"order": model.order, "chords": model.chords, **model.info}
    return _write(args, "markov", scores, info)


def run_rules(args: argparse.Namespace) -> int:
    from musegen.compose.melody import pitches_text
    from musegen.compose.rules import cantus_from_score, check_cantus, compose_counterpoint
    from musegen.theory import key_name

    seed = _seed(args)
    key = _key(args, None)
    cantus = None
    if args.cantus:
        from musegen.io import load

        cantus, key = cantus_from_score(load(args.cantus), key)
        for problem in check_cantus(cantus, key):
            print(f"note: the cantus firmus {problem}")
    key = key or (0, False)
    cp = compose_counterpoint(
        cantus,
        key=key,
        species=args.species,
        above=not args.below,
        length=args.length,
        seed=seed,
        max_steps=args.max_steps,
        max_seconds=args.max_seconds,
    )
    print(f"{key_name(key)}, species {args.species}, {cp.steps:,} search steps")
    print(f"  cantus firmus: {pitches_text(cp.cantus)}")
    print(f"  counterpoint:  {pitches_text([p for p, _, _ in cp.line])}")
    info = {
        "seed": seed,
        "key_used": key_name(key),
        "cantus_firmus": cp.cantus,
        "counterpoint": [list(x) for x in cp.line],
        "search_steps": cp.steps,
    }
    return _write(args, "rules", [cp.score(args.tempo or 160.0)], info)


def run_genetic(args: argparse.Namespace) -> int:
    from musegen.compose.genetic import evolve, make_problem
    from musegen.theory import key_name

    seed = _seed(args)
    key = _key(args)
    romans = args.chords.replace(",", " ").split() if args.chords else None
    reference = None if args.reference.lower() == "none" else args.reference
    problem = make_problem(key, romans, args.bars, reference=reference)
    ev = evolve(
        problem,
        population=args.population,
        generations=args.generations,
        seed=seed,
        progress=not args.quiet,
    )
    print(
        f"{key_name(key)}, {problem.bars} bars: best fitness {ev.history[0]:.3f} -> "
        f"{ev.history[-1]:.3f} over {len(ev.history) - 1} generations"
    )
    info = {
        "seed": seed,
        "key_used": key_name(key),
        "best_fitness": ev.best_fitness,
        "fitness_terms": ev.terms,
        "best_per_generation": ev.history,
        "reference": problem.stats.source if problem.stats else None,
    }
    return _write(args, "genetic", [ev.score(args.tempo or 110.0)], info)


def parse_ranges(text: str | None) -> dict[str, tuple[int, int]]:
    """'A=55-74,B=38-60' -> {'A': (55, 74), 'B': (38, 60)}."""
    from musegen.errors import MusegenError

    out: dict[str, tuple[int, int]] = {}
    for item in (text or "").replace(" ", "").split(","):
        if not item:
            continue
        try:
            voice, _, span = item.partition("=")
            lo, _, hi = span.partition("-")
            out[voice.upper()] = (int(lo), int(hi))
        except ValueError as e:
            raise MusegenError(f"bad range {item!r}; write e.g. A=55-74") from e
    return out


def run_csp(args: argparse.Namespace) -> int:
    from musegen.compose.csp import harmonize
    from musegen.io import load
    from musegen.theory import key_name

    melody = load(args.melody)
    h = harmonize(
        melody, key=args.key, ranges=parse_ranges(args.ranges), max_seconds=args.max_seconds
    )
    for note in h.notes:
        print(f"note: {note}")
    print(f"{key_name(h.key)}, {len(h.chords)} beats, cost {h.cost:.2f}, {h.seconds:.2f} s")
    print("  " + " ".join(h.chords))
    score = h.score
    if args.tempo:
        from musegen.score import Tempo

        score.tempos = [Tempo(0, args.tempo)]
    info = {
        "seed": "none (deterministic)",
        "key_used": key_name(h.key),
        "chords": h.chords,
        "cost": h.cost,
        "seconds": h.seconds,
        "notes": h.notes,
    }
    return _write(args, "csp", [score], info)


def run_recombine(args: argparse.Namespace) -> int:
    from musegen.compose.recombine import build_lexicon, chorale_steps, recombine
    from musegen.data.sources.base import shared_data_dir
    from musegen.errors import MusegenError
    from musegen.theory import key_name

    seed = _seed(args)
    key = _key(args)
    corpus = args.corpus
    if corpus is None:
        shared = shared_data_dir()
        have = shared is not None and (shared / "jsb_chorales" / "Jsb16thSeparated.json").is_file()
        corpus = "jsb-satb" if have else "bach"
        if not have:
            print("note: jsb-satb data not found; reading music21's Bach chorales (slower)")
    if corpus not in ("jsb-satb", "bach"):
        raise MusegenError(f"recombine reads jsb-satb or bach, not {corpus!r}")
    max_pieces = args.max_pieces or (None if corpus == "jsb-satb" else 80)
    lexicon = build_lexicon(chorale_steps(corpus, "train", max_pieces), key[1], args.unit_beats)
    rec = recombine(lexicon, args.segments, seed=seed)
    print(
        f"{key_name(key)}: {len(rec.segments)} segments from a lexicon of {len(lexicon)} ({corpus})"
    )
    for line in rec.provenance():
        print(f"  {line}")
    info = {
        "seed": seed,
        "key_used": key_name(key),
        "corpus": corpus,
        "provenance": rec.provenance(),
    }
    return _write(args, "recombine", [rec.score(key, args.tempo or 80.0)], info)
