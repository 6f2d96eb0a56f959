"""``musegen accompany``: the other voices of a four-part piece under a melody."""

from __future__ import annotations

import argparse
import secrets

from musegen.cli.common import write_pieces


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "accompany",
        help="write the other three voices under a melody (Coconet, or a token infill model)",
        description="Keep MELODY (MIDI/MusicXML/ABC or corpus:NAME; all its pitched tracks "
        "read as one line, its top note where notes overlap, or only --track) as one voice of "
        "a four-part piece, the soprano unless --voice says otherwise, and write the other "
        "three. Coconet (the default) harmonizes it by Gibbs sampling (as 'musegen harmonize' "
        "does); a token model trained with the infill objective (chorale-infill tokens) "
        "writes the voices bar by bar, a few bars at a time, seeing the melody ahead. The "
        "melody's notes are kept exactly (on the model's 16th-note grid).",
    )
    p.add_argument("melody", metavar="MELODY", help="MIDI/MusicXML/ABC file or corpus:NAME")
    p.add_argument(
        "--model",
        "-m",
        default="coconet",
        metavar="NAME|PATH",
        help="coconet (default), or a Coconet or four-voice infill token model folder",
    )
    p.add_argument(
        "--voice", default="S", metavar="S|A|T|B", help="the voice the melody is (default S)"
    )
    p.add_argument(
        "--track",
        metavar="N|NAME",
        help="the melody is this track of MELODY (index from 0, or name)",
    )
    p.add_argument("--out", "-o", default="out", metavar="DIR", help="output folder (default: out)")
    p.add_argument("--name", help="file name stem (default: MELODY's name + _accompanied)")
    p.add_argument("--seed", type=int, help="random seed (default: a new one, printed and saved)")
    p.add_argument("--temperature", "-t", type=float, default=1.0, metavar="T", help="default 1.0")
    p.add_argument("--render", default="", metavar="KINDS", help="also write e.g. wav,png")
    p.set_defaults(func=run_accompany)


def pick_track(score, which: str | None):  # type: ignore[no-untyped-def]
    """``score`` with only the track ``which`` (an index or a name; None: all of it)."""
    from dataclasses import replace

    from musegen.errors import MusegenError

    if which is None:
        return score
    tracks = score.tracks
    if which.isdigit() and int(which) < len(tracks):
        chosen = [tracks[int(which)]]
    else:
        chosen = [t for t in tracks if t.name == which]
    if not chosen:
        names = ", ".join(f"{i}: {t.name or '(no name)'}" for i, t in enumerate(tracks))
        raise MusegenError(f"--track {which}: no such track (the file has {names or 'none'})")
    return replace(score, tracks=[replace(chosen[0], voice=None)])


def run_accompany(args: argparse.Namespace) -> int:
    import time

    from musegen.cli.harmonize import _source_name
    from musegen.errors import MusegenError
    from musegen.io import load
    from musegen.sampling.generators import load_generator

    voice = args.voice.strip().upper()
    if voice not in ("S", "A", "T", "B"):
        raise MusegenError(f"--voice takes one of S, A, T, B, got {args.voice!r}")
    melody = pick_track(load(args.melody), args.track)
    generator = load_generator(args.model)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    t0 = time.perf_counter()
    result = generator.accompany(melody, voice, seed=seed, temperature=args.temperature)
    info = {
        "task": "accompany",
        "input": args.melody,
        "track": args.track,
        "model": args.model,
        "model_folder": str(generator.folder) if generator.folder else None,
        "voice_given": voice,
        "seed": seed,
        "temperature": args.temperature,
        "seconds_taken": round(time.perf_counter() - t0, 3),
    }
    info.update(result.settings)
    name = args.name or f"{_source_name(args.melody)}_accompanied"
    write_pieces(result.pieces, args.out, name, info, args.render)
    return 0
