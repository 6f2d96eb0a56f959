"""``musegen generate`` and ``musegen models``: new music from a trained model."""

from __future__ import annotations

import argparse
import json
import secrets

from musegen.cli.common import at_least_one
from musegen.sampling.endings import ENDINGS


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
        "--primer-bars",
        type=at_least_one,
        metavar="N",
        help="use only the first N bars of the primer",
    )
    length = p.add_mutually_exclusive_group()
    length.add_argument(
        "--bars", type=at_least_one, metavar="N", help="new bars to generate (default 8)"
    )
    length.add_argument(
        "--seconds", type=float, metavar="S", help="new seconds of music to generate"
    )
    length.add_argument("--tokens", type=at_least_one, metavar="N", help="new tokens to generate")
    p.add_argument(
        "--num",
        "-n",
        type=at_least_one,
        default=1,
        metavar="K",
        help="pieces to generate, 16 at a time, each batch written when done: a run stopped "
        "part-way goes on where it stopped when the same command runs again",
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
        "--pitch-top-p",
        type=float,
        metavar="P",
        help="nucleus among the pitch tokens only, keeping the odds of a new note against a "
        "held one or a rest (default: the model's, else 1: off)",
    )
    p.add_argument(
        "--key-bias",
        type=float,
        metavar="NATS",
        help="make pitches outside the key each piece has set so far less likely by NATS "
        "(a soft prior: 0 off, 2 about 7 times less likely; default: the model's, else 0)",
    )
    p.add_argument(
        "--repetition-penalty", type=float, default=1.0, metavar="R", help=">= 1 (default 1: off)"
    )
    p.add_argument("--seed", type=int, help="random seed (default: a new one, printed and saved)")
    p.add_argument("--tempo", type=float, metavar="QPM", help="tempo in quarter notes per minute")
    p.add_argument("--time-signature", metavar="N/D", help="e.g. 3/4")
    p.add_argument("--key", metavar="KEY", help="e.g. 'G major', 'e minor' (output is transposed)")
    p.add_argument(
        "--mode",
        choices=("major", "minor"),
        help="a major or minor piece: one the key finder reads in the other mode is drawn "
        "again, up to 8 times (--key implies its mode); default: the model's own, or drawn "
        "with its training split's shares where its config has them",
    )
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
    p.add_argument(
        "--ending",
        choices=ENDINGS,
        help="how each piece must close: its last two bars are drawn again (up to 16 times) until "
        "it ends on an authentic or plagal cadence / on its tonic; free: as the model ends it "
        "(default: the model's config: cadence for bach, tonic for folk and latent-diffusion; "
        "models that count bars down, and latent-diffusion, whose last 2 bars are drawn again)",
    )
    p.add_argument(
        "--chords",
        metavar="CHORDS",
        help="the chord of each bar, e.g. 'C G Am F' (repeated over the bars; models with "
        "chord tokens, such as the melody-chords tokenizer's)",
    )
    p.add_argument(
        "--density",
        metavar="BINS",
        help="note density of each bar: low, medium or high, or one per bar (repeated); "
        "models with density tokens (each bar's notes are counted while sampling, so it "
        "lands in its bin), or one for the whole piece with latent-diffusion (its pace: the "
        "slower, middle or busier third of the corpus's tunes)",
    )
    p.add_argument(
        "--instruments",
        metavar="NAMES",
        help="the instruments that play, e.g. 'violin,viola,cello' (GM names, words of them "
        "or program numbers; drums): the model writes for these and no others (models with "
        "instrument tokens, the remi-instruments tokenizer's)",
    )
    p.add_argument(
        "--style",
        metavar="NAME",
        help="a composer or corpus tag the model learned, e.g. bach, haydn, monteverdi: the "
        "piece is written in it (models with style tokens; a name it does not know is an "
        "error that lists the ones it knows)",
    )
    p.add_argument(
        "--chord-tones",
        choices=("off", "beats", "all", "spell"),
        default="off",
        help="with --chords: notes starting on a beat (beats) or every note (all) on a tone "
        "of the bar's chord, or (spell) every note, the root first and lowest and every tone "
        "sounded, so the melody itself spells the chords (default off)",
    )
    p.add_argument(
        "--theme",
        metavar="FILE",
        help="a motif (the top line of the file's first bars, up to 8) the piece opens with and "
        "restates at later phrases (bar-grid models; the piece takes the theme's meter)",
    )
    p.add_argument(
        "--theme-at",
        metavar="BARS",
        help="bars where the theme is stated, e.g. '1,5,9,13' (default: every 4 bars for a "
        "1-2 bar theme, 8 for 3-4, 16 for longer)",
    )
    p.add_argument(
        "--theme-variation",
        choices=("mixed", "exact", "sequence", "varied"),
        default="mixed",
        help="how later statements vary: exact, sequence (transposed, the interval the model's "
        "choice), varied (rhythm kept, pitches near the theme's) or mixed (exact and sequence by "
        "turns; default)",
    )
    p.add_argument(
        "--form",
        metavar="FORM",
        help="sections of equal length, one letter each, e.g. AABA: a returning letter restates "
        "its section's melody bar for bar (its last bar free; latent-diffusion: its latents "
        "tied, its last 2 bars decoded afresh); 'auto': a form drawn from the corpus's "
        "measured forms, one per piece; 'none': no form. Default: the model's (folk, and "
        "latent-diffusion from 8 bars: auto)",
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
        "models",
        help="list the shipped pretrained models and what each can do",
        description="List the shipped models (or the model/run folders given) and what each "
        "can do: generate, continue, infill, accompany, harmonize, chords, density, theme, "
        "structure, instruments …, read from its config.",
    )
    p.add_argument("folders", nargs="*", metavar="FOLDER", help="model or run folders to list")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--join",
        metavar="OUT",
        help="instead of listing: join the FOLDERs (token models of one tokenizer, e.g. two "
        "depths or seeds) into one ensemble model folder OUT whose next-token distribution "
        "is their product (or mixture); it keeps the first model's tokenizer and defaults",
    )
    p.add_argument(
        "--weights", help="with --join: the members' weights, comma-separated (default equal)"
    )
    p.add_argument(
        "--combine",
        choices=("product", "mixture"),
        default="product",
        help="with --join: product of experts (default) or mixture of the distributions",
    )
    p.set_defaults(func=run_models)


def run_generate(args: argparse.Namespace) -> int:
    """Load the model's generator, ask it for ``--num`` pieces, write them with their settings."""
    import time

    import torch

    from musegen.cli import batches
    from musegen.cli.common import write_settings
    from musegen.errors import MusegenError
    from musegen.models.pretrained import DEFAULT_MODEL
    from musegen.sampling.generators import GenerateRequest, TokenGenerator, load_generator

    # what the output depends on: every option but those of the process (and the seed)
    command = {
        k: v
        for k, v in vars(args).items()
        if k not in ("func", "debug", "threads", "all_threads", "seed")
    }
    seed = args.seed
    if seed is None:  # an interrupted run of this command goes on with its seed
        record = batches.read_record(args.out, args.name, command)
        seed = record["seed"] if record else secrets.randbelow(2**31)
    chords, density = _controls(args.chords, args.density)
    torch.manual_seed(seed)
    generator = load_generator(args.model, args.device)
    capabilities = generator.capabilities(generator.meta)
    if args.theme and "theme" not in capabilities:
        raise MusegenError(
            "--theme needs a token model with a bar grid (e.g. bach, folk; see 'musegen models')"
        )
    if args.form not in (None, "none") and "structure" not in capabilities:
        raise MusegenError(
            "--form needs a token model with a bar grid (e.g. bach, folk) or latent-diffusion "
            "(see 'musegen models')"
        )
    if args.chord_tones != "off" and not chords:
        raise MusegenError("--chord-tones guides the notes under --chords: give --chords too")
    for name, asked in (("chords", chords), ("density", density)):
        if asked and name not in generator.controls():
            raise MusegenError(
                f"--{name}: this model takes no {name} (it needs a tokenizer with {name.rstrip('s')} "
                "tokens, e.g. melody-chords"
                + (", or a paced prior such as latent-diffusion)" if name == "density" else ")")
            )
    instruments = _instruments(args.instruments)
    if instruments and "instruments" not in generator.controls():
        raise MusegenError(
            "--instruments: this model takes no instruments (it needs a tokenizer with "
            "instrument tokens, e.g. remi-instruments)"
        )
    if args.mode and not isinstance(generator, TokenGenerator):
        raise MusegenError(
            "--mode: this model is not sampled token by token; --mode redraws the pieces of a "
            "token model (e.g. bach, folk)"
        )
    if args.style is not None and "style" not in generator.controls():
        raise MusegenError(
            "--style: this model knows no styles (it needs a tokenizer with style tokens, "
            "e.g. remi-instruments with styles)"
        )
    request = GenerateRequest(
        num=args.num,
        seed=seed,
        bars=args.bars if args.bars is not None or args.seconds or args.tokens else 8,
        seconds=args.seconds,
        tokens=args.tokens,
        primer=args.primer,
        primer_bars=args.primer_bars,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        pitch_top_p=args.pitch_top_p,
        key_bias=args.key_bias,
        repetition_penalty=args.repetition_penalty,
        tempo=args.tempo,
        time_signature=args.time_signature,
        key=args.key,
        mode=args.mode,
        program=args.program,
        voices=args.voices,
        ending=args.ending,
        chords=chords,
        density=density,
        instruments=instruments,
        style=args.style,
        chord_tones=args.chord_tones,
        theme=args.theme,
        theme_at=_bar_list(args.theme_at),
        theme_variation=args.theme_variation,
        form=args.form,
    )
    t0 = time.perf_counter()
    written, used = batches.generate_batches(
        generator, request, args.out, args.name, args.render, command
    )
    settings = {
        "model": args.model or DEFAULT_MODEL,  # as asked: a shipped name or a folder
        "model_folder": str(generator.folder),
        "seed": seed,
        **used,
        "seconds_taken": round(time.perf_counter() - t0, 3),
    }
    write_settings(args.out, args.name, settings, written, args.render)
    batches.finish(args.out, args.name)
    return 0


def _controls(chords: str | None, density: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``--chords`` and ``--density`` as lists (commas or spaces between items), chord names
    checked (one-line errors)."""
    from musegen.errors import MusegenError
    from musegen.theory import parse_chord

    def items(text: str | None, flag: str) -> tuple[str, ...]:
        out = tuple((text or "").replace(",", " ").split())
        if text is not None and not out:
            raise MusegenError(f"{flag} is empty")
        return out

    asked = items(chords, "--chords")
    for c in asked:
        parse_chord(c)
    bins = items(density, "--density")
    bad = [d for d in bins if d not in ("low", "medium", "high")]
    if bad:
        raise MusegenError(f"--density {bad[0]!r}: choose low, medium or high")
    return asked, bins


def _instruments(text: str | None) -> tuple[int, ...]:
    """``--instruments`` as GM programs (one-line error on an unknown name)."""
    if text is None:
        return ()
    from musegen.sampling.instruments import parse_instruments

    return parse_instruments(text)


def _bar_list(text: str | None) -> tuple[int, ...]:
    """``--theme-at '1,5,9'`` as bar numbers (one-line error on anything else)."""
    from musegen.errors import MusegenError

    if not text:
        return ()
    try:
        return tuple(int(x) for x in text.replace(",", " ").split())
    except ValueError as e:
        raise MusegenError(f"--theme-at {text!r}: give bar numbers, e.g. 1,5,9") from e


def run_models(args: argparse.Namespace) -> int:
    from musegen.cli.models import listed_models
    from musegen.errors import MusegenError

    if args.join:
        return _join(args)
    if args.weights:
        raise MusegenError("--weights goes with --join")

    models = listed_models(args.folders)
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
        print(f"    can: {', '.join(m['can']) or 'nothing through musegen commands'}")
        if m.get("styles"):
            print(f"    styles (--style): {', '.join(m['styles'])}")
    return 0


def _join(args: argparse.Namespace) -> int:
    from musegen.errors import MusegenError
    from musegen.models.ensemble import join_saved

    try:
        weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    except ValueError as e:
        raise MusegenError(f"--weights {args.weights!r}: give numbers, e.g. 1,1") from e
    meta = join_saved(args.folders, args.join, weights, args.combine)
    print(
        f"wrote {args.join}: an ensemble ({args.combine}) of {len(args.folders)} models, "
        f"{meta['parameters']:,} parameters, weights {meta['config']['weights'] or 'equal'}"
    )
    return 0
