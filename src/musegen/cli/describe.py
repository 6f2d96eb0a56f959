"""``musegen describe``: a piece bar by bar (chords, density, pitch, instruments, meter, key)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "describe",
        help="describe a piece bar by bar: chords, note density, pitch, instruments, meter, key",
        description="Print each bar's meter, local key, chord (one for the bar, and the chords "
        "of its beats), note density (notes per beat) and mean pitch with their bins "
        "(low/medium/high, edges learned from a corpus), and instruments. SCORE is a file or "
        "any reference 'musegen evaluate' reads (corpus:bach/bwv66.6, source:NAME:SPLIT, a "
        "folder); several pieces give one description each. A bar's chord is what "
        "'generate --chords' asks for. Density bins here count all tracks (edges in "
        "metrics/description_bins.json); a melody-chords model's --density counts its melody "
        "against the edges in its tokenizer config (terciles of its training bars).",
    )
    p.add_argument("score", metavar="SCORE", help="a MIDI/MusicXML/ABC file or a reference")
    p.add_argument("--json", action="store_true", help="JSON (default: YAML-like text)")
    p.add_argument("--out", "-o", metavar="FILE", help="write to FILE instead of printing")
    p.set_defaults(func=run_describe)


def run_describe(args: argparse.Namespace) -> int:
    from musegen.data.refs import resolve
    from musegen.errors import MusegenError
    from musegen.metrics.describe import describe, to_text
    from musegen.utils import atomic_write_text

    pieces = resolve(args.score)
    if not pieces:
        raise MusegenError(f"{args.score}: no pieces there")
    described = [(p.name, describe(p.load())) for p in pieces]
    if args.json:
        items = [{"piece": name, **d.to_dict()} for name, d in described]
        text = json.dumps(items[0] if len(items) == 1 else items, indent=2) + "\n"
    else:
        text = "\n".join(to_text(d, title=name) for name, d in described)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out} ({len(described)} piece{'s' * (len(described) != 1)})")
    else:
        print(text, end="")
    return 0
