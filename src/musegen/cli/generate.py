"""``musegen generate`` and ``musegen models``: new music from a trained model."""

from __future__ import annotations

import argparse
import json
import secrets
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate new pieces with a model (default: the shipped Bach chorale model)",
        description="Sample new pieces, optionally continuing a primer file. Every sequence is "
        "grammar-masked, so output always decodes. Settings (seed included) are saved beside "
        "the MIDI files as JSON.",
    )
    p.add_argument(
        "--model",
        "-m",
        metavar="NAME|PATH",
        help="shipped model name or model/run folder (see 'musegen models')",
    )
    p.add_argument(
        "--primer", metavar="FILE", help="continue this MIDI/MusicXML/ABC file or corpus:NAME"
    )
    p.add_argument(
        "--primer-bars", type=int, metavar="N", help="use only the first N bars of the primer"
    )
    length = p.add_mutually_exclusive_group()
    length.add_argument("--bars", type=int, metavar="N", help="new bars to generate (default 8)")
    length.add_argument(
        "--seconds", type=float, metavar="S", help="new seconds of music to generate"
    )
    length.add_argument("--tokens", type=int, metavar="N", help="new tokens to generate")
    p.add_argument(
        "--num", "-n", type=int, default=1, metavar="K", help="pieces to generate (batched)"
    )
    p.add_argument(
        "--temperature",
        "-t",
        type=float,
        metavar="T",
        help="softmax temperature (default: the model's, else 1.0)",
    )
    p.add_argument(
        "--top-k", type=int, default=0, metavar="K", help="keep the K likeliest tokens (0: off)"
    )
    p.add_argument(
        "--top-p",
        type=float,
        metavar="P",
        help="nucleus sampling (default: the model's, else 0.95; 1: off)",
    )
    p.add_argument(
        "--repetition-penalty", type=float, default=1.0, metavar="R", help=">= 1 (default 1: off)"
    )
    p.add_argument("--seed", type=int, help="random seed (default: a new one, printed and saved)")
    p.add_argument("--tempo", type=float, metavar="QPM", help="tempo in quarter notes per minute")
    p.add_argument("--time-signature", metavar="N/D", help="e.g. 3/4")
    p.add_argument("--key", metavar="KEY", help="e.g. 'G major', 'e minor' (output is transposed)")
    p.add_argument(
        "--program", type=int, metavar="P", help="General MIDI program of pitched tracks"
    )
    p.add_argument(
        "--voices",
        type=int,
        metavar="N",
        help="deal each piece's notes out to N voice tracks (0: as generated; default: what the "
        "model's config says, 4 for the bach model's chorales)",
    )
    p.add_argument("--out", "-o", default="out", metavar="DIR", help="output folder (default: out)")
    p.add_argument("--name", default="piece", help="file name stem (default: piece)")
    p.add_argument(
        "--render",
        metavar="KINDS",
        default="",
        help="also write e.g. wav,png (see 'musegen render')",
    )
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps")
    p.set_defaults(func=run_generate)

    p = sub.add_parser(
        "models", help="list the shipped pretrained models", description="List the shipped models."
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_models)


def sampling_defaults(meta: dict) -> dict[str, Any]:  # type: ignore[type-arg]
    """Temperature, top-p and meter a model's config asks for (chosen on its valid split),
    else 1.0, 0.95 and none; ``meters``: the shares each piece's meter is drawn with when none
    is asked for (a model that starts with a meter token and has none draws from that token)."""
    given = meta.get("sampling") or {}
    return {
        "temperature": float(given.get("temperature", 1.0)),
        "top_p": float(given.get("top_p", 0.95)),
        "time_signature": given.get("time_signature"),  # None: each piece's meter is drawn
        "meters": given.get("meters"),
    }


def run_generate(args: argparse.Namespace) -> int:
    import time

    import torch

    from musegen.io import load, save
    from musegen.models.pretrained import load_for_generation
    from musegen.sampling.generate import SamplingConfig
    from musegen.sampling.pieces import PieceRequest, compose
    from musegen.utils import atomic_write_text

    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    torch.manual_seed(seed)
    model, tok, _meta, folder = load_for_generation(args.model, args.device)
    bars = args.bars if args.bars is not None or args.seconds or args.tokens else 8
    defaults = sampling_defaults(_meta)
    request = PieceRequest(
        bars=bars,
        seconds=args.seconds,
        primer=load(args.primer) if args.primer else None,
        primer_bars=args.primer_bars,
        tempo=args.tempo,
        time_signature=args.time_signature or defaults["time_signature"],
        meters=defaults["meters"],
        key=args.key,
        program=args.program,
        max_tokens=args.tokens,
    )
    temperature = defaults["temperature"] if args.temperature is None else args.temperature
    sampling = SamplingConfig(
        temperature=temperature,
        top_k=args.top_k,
        top_p=defaults["top_p"] if args.top_p is None else args.top_p,
        repetition_penalty=args.repetition_penalty,
        seed=seed,
    )
    voices = _meta.get("voices", 0) if args.voices is None else args.voices
    if voices < 0:
        from musegen.errors import MusegenError

        raise MusegenError(f"--voices must be >= 0, got {voices}")
    t0 = time.perf_counter()
    if _meta.get("model") == "coconet":  # an orderless grid model: Gibbs sampling from scratch
        from musegen.errors import MusegenError
        from musegen.sampling.gibbs import generate_chorales

        if args.primer or args.seconds or args.tokens:
            raise MusegenError("--model coconet writes chorales from scratch: use --bars and --num")
        pieces = generate_chorales(
            model,
            bars=bars,
            num=args.num,
            seed=seed,
            temperature=temperature,
            qpm=args.tempo or 80.0,
        )
    else:
        pieces = compose(model, tok, request, sampling, num=args.num, progress=True)
    if voices and _meta.get("model") != "coconet":  # coconet writes its four voices itself
        from musegen.voices import separate_voices

        pieces = [separate_voices(score, voices) for score in pieces]
    elapsed = time.perf_counter() - t0
    out = Path(args.out)
    kinds = [k for k in args.render.split(",") if k.strip()]
    settings = {
        "model": str(folder),
        "seed": seed,
        "sampling": sampling.to_dict(),
        "request": {k: v for k, v in vars(request).items() if k != "primer"}
        | {"primer": args.primer},
        "voices": voices,
        "seconds_taken": round(elapsed, 3),
        "files": [],
    }
    for i, score in enumerate(pieces, 1):
        stem = out / (f"{args.name}_{i}" if args.num > 1 else args.name)
        save(score, stem.with_suffix(".mid"))
        written = [stem.with_suffix(".mid")]
        if kinds:
            from musegen.render import render_outputs

            written += render_outputs(score, stem, kinds)
        settings["files"] += [str(w) for w in written]
        music = score.duration_seconds()
        print(f"wrote {', '.join(map(str, written))} ({score.n_notes} notes, {music:.1f} s)")
    atomic_write_text(out / f"{args.name}.json", json.dumps(settings, indent=2))
    print(
        f"seed {seed}; model {folder}; {elapsed:.1f} s; settings in {out / (args.name + '.json')}"
    )
    return 0


def run_models(args: argparse.Namespace) -> int:
    from musegen.models.pretrained import list_pretrained

    models = list_pretrained()
    if args.json:
        print(json.dumps(models, indent=2))
        return 0
    if not models:
        print("no models shipped with this installation")
    for m in models:
        star = " (default)" if m["default"] else ""
        params = f"{m['parameters']:,} parameters, " if m["parameters"] else ""
        losses = (
            f", valid loss {m['valid_loss']:.3f}, test loss {m['test_loss']:.3f}"
            if m["valid_loss"] is not None and m["test_loss"] is not None
            else ""
        )
        print(f"{m['name']}{star}: {m['description']}")
        tokens = f" + {m['tokenizer']} tokens" if m["tokenizer"] else ""
        print(f"    {m['model']}{tokens}, {params}{m['megabytes']} MB{losses}")
    return 0
