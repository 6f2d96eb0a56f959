"""``musegen harmonize`` and ``musegen infill``: writing around given notes."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from musegen.cli.common import at_least_one, write_pieces

MODEL_HELP = "coconet (default: the shipped Coconet), csp (rule-based), or a Coconet model folder"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "harmonize",
        help="write the other voices of a chorale around a melody (Coconet or CSP)",
        description="Harmonize MELODY in four parts. The melody (MIDI/MusicXML/ABC or "
        "corpus:NAME) is read on a 16th-note grid: its track labelled with the voice (e.g. "
        "Soprano) if it has one, else all its notes, a polyphonic line reduced to its top note "
        "per step (bottom note for --voices T or B). It is transposed into its voice's range "
        "if needed and the result moved back. Given notes are kept exactly. Coconet's draws "
        "are steered by the textbook voice-leading rules and a preference for held notes, and "
        "stray 16ths of the alto and tenor are merged; --strict guarantees no parallel fifths "
        "or octaves.",
    )
    p.add_argument("melody", metavar="MELODY", help="MIDI/MusicXML/ABC file or corpus:NAME")
    p.add_argument("--model", "-m", default="coconet", metavar="NAME|PATH", help=MODEL_HELP)
    p.add_argument(
        "--voices",
        default="S",
        metavar="SATB",
        help="the voices MELODY gives (default S); several need that many parts in the file",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="never write a parallel fifth or octave (Coconet: forbidden while sampling, then "
        "any left repaired; the csp harmonizer forbids them anyway)",
    )
    p.add_argument(
        "--samples",
        type=int,
        default=1,
        metavar="N",
        help="Coconet: harmonize N times, keep the one with the fewest voice-leading errors "
        "(N times slower; default 1)",
    )
    _common(p, name_help="file name stem (default: MELODY's name + _harmonized[_csp])")
    p.set_defaults(func=run_harmonize)

    q = sub.add_parser(
        "infill",
        help="rewrite some bars of a score (Coconet, a token infill model, or latent-diffusion)",
        description="Resample the chosen voices in the chosen bars of SCORE, in the context of "
        "everything else, which is kept exactly (on the model's 16th-note grid). Coconet (the "
        "default) takes four-voice scores (tracks labelled S/A/T/B or exactly four parts); a "
        "token model trained with the infill objective (chorale-infill or melody-infill tokens, "
        "e.g. from configs/bach-infill.json) writes the bars left to right, a few at a time, "
        "seeing the bars around them; latent-diffusion redraws the 2-bar segments of a one-line "
        "melody that hold the bars asked for, its prior denoising their latents with the "
        "other segments' latents fixed.",
    )
    q.add_argument(
        "score",
        metavar="SCORE",
        help="four-voice (latent-diffusion: one-line) MIDI/MusicXML file or corpus:NAME",
    )
    q.add_argument(
        "--bars", required=True, metavar="A-B", help="bars to rewrite, e.g. 5-8 (1-based)"
    )
    q.add_argument(
        "--voices",
        "--tracks",
        default="SATB",
        metavar="SATB",
        help="voices to rewrite, e.g. SA or S,A (default all; a one-line model has its line)",
    )
    q.add_argument(
        "--model",
        "-m",
        default="coconet",
        metavar="NAME|PATH",
        help="coconet (default), latent-diffusion, or a Coconet, infill token model or "
        "latent-diffusion folder",
    )
    _common(q, name_help="file name stem (default: SCORE's name + _infilled)")
    q.set_defaults(func=run_infill)


def _common(p: argparse.ArgumentParser, name_help: str) -> None:
    p.add_argument("--out", "-o", default="out", metavar="DIR", help="output folder (default: out)")
    p.add_argument("--name", help=name_help)
    p.add_argument("--seed", type=int, help="random seed (default: a new one, printed and saved)")
    p.add_argument(
        "--temperature",
        "-t",
        type=float,
        metavar="T",
        help="default 1.0 (infill with latent-diffusion: its decoding temperature, 0.5)",
    )
    p.add_argument(
        "--steps",
        type=at_least_one,
        metavar="N",
        help="Gibbs steps (default: grows with the free cells)",
    )
    p.add_argument("--render", default="", metavar="KINDS", help="also write e.g. wav,png")


def _source_name(ref: str) -> str:
    """A file's stem, or a corpus piece's name (``corpus:bach/bwv66.6`` → ``bwv66.6``)."""
    from musegen.io import CORPUS_PREFIX

    if ref.startswith(CORPUS_PREFIX):
        return ref.removeprefix(CORPUS_PREFIX).rstrip("/").rsplit("/", 1)[-1] or "score"
    return Path(ref).stem or "score"


def run_harmonize(args: argparse.Namespace) -> int:
    import time

    from musegen.errors import MusegenError
    from musegen.io import load
    from musegen.sampling.generators import load_generator
    from musegen.sampling.gibbs import parse_voices

    parse_voices(args.voices)  # bad --voices fails before anything is loaded
    if args.samples < 1:
        raise MusegenError(f"--samples must be at least 1, got {args.samples}")
    melody = load(args.melody)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    t0 = time.perf_counter()
    generator = load_generator(args.model)  # a model, or the rule-based csp
    if args.temperature is None:
        args.temperature = 1.0
    result = generator.harmonize(
        melody,
        args.voices,
        seed=seed,
        temperature=args.temperature,
        steps=args.steps,
        samples=args.samples,
        strict=args.strict,
    )
    info = {
        "task": "harmonize",
        "input": args.melody,
        "model": args.model,
        "model_folder": str(generator.folder) if generator.folder else None,
        "voices_given": args.voices.upper(),
        "strict": args.strict,
        "samples": args.samples,
        "seed": seed,
        "temperature": args.temperature,
        "steps": args.steps,
        "seconds_taken": round(time.perf_counter() - t0, 3),
    }
    info.update(result.settings)  # what it used where that differs (csp: no seed, no samples)
    tag = f"_{generator.file_tag}" if generator.file_tag else ""
    name = args.name or f"{_source_name(args.melody)}_harmonized{tag}"
    write_pieces(result.pieces, args.out, name, info, args.render)
    return 0


def run_infill(args: argparse.Namespace) -> int:
    import time

    from musegen.io import load
    from musegen.sampling.generators import load_generator
    from musegen.sampling.gibbs import parse_bars, parse_voices

    bars = parse_bars(args.bars)
    args.voices = args.voices.replace(",", "")
    parse_voices(args.voices)
    score = load(args.score)
    generator = load_generator(args.model)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    t0 = time.perf_counter()
    if args.temperature is None:
        args.temperature = generator.infill_temperature()
    result = generator.infill(
        score, bars, args.voices, seed=seed, temperature=args.temperature, steps=args.steps
    )
    out = result.pieces[0]
    info = {
        "task": "infill",
        "input": args.score,
        "model": args.model,
        "model_folder": str(generator.folder),
        "bars": list(bars),
        "voices_rewritten": args.voices.upper(),
        "seed": seed,
        "temperature": args.temperature,
        "steps": args.steps,
        "seconds_taken": round(time.perf_counter() - t0, 3),
    }
    info.update(result.settings)  # a token model's sampling settings
    name = args.name or f"{_source_name(args.score)}_infilled"
    write_pieces([out], args.out, name, info, args.render)
    return 0
