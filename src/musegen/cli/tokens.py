"""``musegen tokenize`` and ``musegen detokenize``: scores to token ids and back.

A token file is JSON: ``{"tokenizer": {...}, "pieces": [{"source": ..., "ids": [...]}]}``;
it carries the tokenizer's config, so ``detokenize`` needs nothing else.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from musegen.cli.common import load_batch, report_failures, require
from musegen.errors import MusegenError


def register(sub: argparse._SubParsersAction) -> None:
    from musegen.tokenizers import available

    p = sub.add_parser(
        "tokenize",
        help="encode files into token ids (JSON)",
        description="Encode each input with a tokenizer; write ids and the tokenizer config as JSON.",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="files or corpus:NAME references")
    p.add_argument("--tokenizer", "-t", default="remi", choices=available(), help="default: remi")
    p.add_argument(
        "--config", metavar="JSON", help="tokenizer options as JSON, e.g. '{\"velocity_bins\": 0}'"
    )
    p.add_argument("--out", "-o", metavar="FILE", help="token file to write (default: stdout)")
    p.add_argument("--labels", action="store_true", help="also store readable token labels")
    p.set_defaults(func=run_tokenize)

    p = sub.add_parser(
        "detokenize",
        help="decode a token file back to MIDI/MusicXML",
        description="Decode the pieces of a token file written by 'musegen tokenize'.",
    )
    p.add_argument("tokens", metavar="TOKENS.json")
    p.add_argument(
        "--out",
        "-o",
        required=True,
        metavar="OUT",
        help="output file (.mid/.musicxml); with several pieces, NAME_1.mid, NAME_2.mid, ...",
    )
    p.set_defaults(func=run_detokenize)


MAX_QUARTERS = 2**16
"""Longest piece tokenized (9 hours at 120 qpm): a far-off stray note would otherwise make
gigabytes of grid (a roll of 2**30 quarters asked for 352 GiB) or of bar tokens."""


def run_tokenize(args: argparse.Namespace) -> int:
    from musegen.tokenizers import get_tokenizer
    from musegen.utils import atomic_write_text

    try:
        options = json.loads(args.config) if args.config else {}
    except json.JSONDecodeError as e:
        raise MusegenError(f"--config is not valid JSON: {e}") from e
    require(isinstance(options, dict), "--config must be a JSON object")
    tok = get_tokenizer(args.tokenizer, **options)
    good, bad = load_batch(args.inputs, desc="tokenizing")
    pieces: list[dict[str, Any]] = []
    for src, score in good:
        if score.end > MAX_QUARTERS * score.tpq:
            quarters = score.end // score.tpq
            bad.append(f"{src}: music runs {quarters:,} quarter notes, over {MAX_QUARTERS:,}")
            continue
        try:
            ids = tok.encode(score)
        except MusegenError as e:
            bad.append(f"{src}: {e}")
            continue
        piece: dict[str, Any] = {"source": src, "notes": score.n_notes, "ids": ids.tolist()}
        if args.labels:
            piece["labels"] = tok.tokens(ids.reshape(-1))
        pieces.append(piece)
    text = json.dumps({"tokenizer": tok.to_dict(), "pieces": pieces})
    if args.out:
        atomic_write_text(args.out, text)
        total = sum(len(p["ids"]) for p in pieces)
        print(f"wrote {args.out}: {len(pieces)} piece(s), {total} tokens ({tok.name})")
    else:
        print(text)
    return report_failures(bad, "tokenize")


def run_detokenize(args: argparse.Namespace) -> int:
    from musegen.io import save
    from musegen.tokenizers import tokenizer_from_dict

    path = Path(args.tokens)
    try:
        data = json.loads(path.read_text())
        pieces = data["pieces"]
        tok = tokenizer_from_dict(data["tokenizer"])
    except FileNotFoundError as e:
        raise MusegenError(f"{path}: no such file") from e
    except (OSError, ValueError, KeyError, TypeError, OverflowError) as e:  # bad JSON, config
        raise MusegenError(f"{path}: not a musegen token file ({type(e).__name__}: {e})") from e
    require(isinstance(pieces, list), f"{path}: 'pieces' must be a list of pieces")
    require(bool(pieces), f"{path}: the token file has no pieces")
    out = Path(args.out)
    for i, piece in enumerate(pieces, 1):
        target = out if len(pieces) == 1 else out.with_name(f"{out.stem}_{i}{out.suffix}")
        try:
            score = tok.decode(piece["ids"])
        except (KeyError, TypeError, ValueError) as e:
            raise MusegenError(f"{path}: piece {i} has no valid ids ({e})") from e
        save(score, target)
        print(f"wrote {target} ({score.n_notes} notes, {len(score.tracks)} tracks)")
    return 0
