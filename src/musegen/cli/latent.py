"""``musegen latent``: a MusicVAE's latent space: encode, interpolate, attribute vectors, sample.

The work is :mod:`musegen.sampling.latent`; this module parses, calls and writes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from musegen.cli.common import at_least_one
from musegen.models.pretrained import model_label

MODEL_HELP = (
    "a music-vae: shipped name (folk-vae; folk-vae-recon, which reconstructs better and samples "
    "worse; folk-vae-16bar) or folder (default folk-vae)"
)
INTERPOLATE_MODEL = "folk-vae-recon"  # its paths rise smoothly from A to B (benchmarks/latent.py)
REFINE_STEPS = 100


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "latent",
        help="a MusicVAE's latent space: encode, interpolate, attribute vectors, sample",
        description="Work in the latent space of a music-vae model (MusicVAE, Roberts et al. "
        "2018): a melody's segments (2 or 16 bars of 16 16th steps, from its first bar line) "
        "become latent vectors and latent vectors become melodies. A four-voice model (one "
        "trained with model_config.voices 4 on a chorale dataset) reads and writes Soprano, "
        "Alto, Tenor and Bass instead.",
    )
    cmds = p.add_subparsers(dest="latent_command", metavar="ACTION")

    enc = cmds.add_parser(
        "encode",
        help="print the latent vector (posterior mean) of each segment of a melody",
        description="Encode a melody (its top line, on the 16th grid) segment by segment and "
        "print each segment's posterior mean and standard deviation as JSON.",
    )
    enc.add_argument("file", metavar="FILE", help="a MIDI/MusicXML/ABC melody")
    enc.add_argument("--model", "-m", help=MODEL_HELP)
    enc.add_argument("--out", "-o", metavar="FILE", help="write the JSON here instead")
    _refine(enc, "each segment's latent", 0)
    enc.set_defaults(func=run_encode)

    inter = cmds.add_parser(
        "interpolate",
        help="slerp from melody A to melody B; one MIDI of the path and its piano roll",
        description="Encode the first segment of A and of B, take STEPS points on the "
        "spherical path between their latents (A and B included), decode each, and write "
        "them one after another as OUT/NAME.mid with a piano-roll picture OUT/NAME.png and "
        "the settings OUT/NAME.json. The ends are the encoder's latents moved (--refine) to "
        "ones that decode to A and B exactly, where such lie near.",
    )
    inter.add_argument("a", metavar="A", help="the melody to start from")
    inter.add_argument("b", metavar="B", help="the melody to end at")
    inter.add_argument("--steps", type=int, default=8, help="points on the path (default 8)")
    _refine(inter, "each end's latent", REFINE_STEPS)
    _decoding(inter, "interpolation", INTERPOLATE_MODEL)
    inter.set_defaults(func=run_interpolate)

    attr = cmds.add_parser(
        "attribute",
        help="compute attribute vectors (density, syncopation, range) from data",
        description="For each attribute, the mean latent of the data's segments in its top "
        "quarter minus that of its bottom quarter (MusicVAE's attribute vectors). DATA is a "
        "dataset prepared with the melody tokenizer (its train split), or any reference "
        "'musegen evaluate' reads (a folder, source:folk:train, a file). Saved as JSON, by "
        "default beside the model (MODEL/attributes.json), where 'latent sample --add' looks.",
    )
    attr.add_argument(
        "--compute",
        default="density,syncopation,range",
        help="attributes, comma-separated (density: notes per bar; syncopation: share of "
        "onsets off the beat; range: highest minus lowest pitch)",
    )
    attr.add_argument("--data", required=True, help="a prepared melody dataset or a reference")
    attr.add_argument("--split", default="train", help="the split of a dataset (default train)")
    attr.add_argument("--model", "-m", help=MODEL_HELP)
    attr.add_argument(
        "--out", "-o", metavar="FILE", help="where to write (default beside the model)"
    )
    attr.set_defaults(func=run_attribute)

    prior = cmds.add_parser(
        "prior",
        help="fit the prior new melodies are drawn from to the data's latents",
        description="Encode the data's segments (windows --hop bars apart) and fit a "
        "Gaussian (mean and full covariance) to their latents. Saved as JSON, by default "
        "beside the model (MODEL/latent_prior.json), where 'generate' and 'latent sample' "
        "look: new latents are then drawn from it instead of N(0, I), which for a latent "
        "space whose real points lie in a few correlated directions keeps new melodies "
        "nearer the data (delete the file to go back). DATA as for 'latent attribute'.",
    )
    prior.add_argument("--data", required=True, help="a prepared melody dataset or a reference")
    prior.add_argument("--split", default="train", help="the split of a dataset (default train)")
    prior.add_argument(
        "--hop", type=at_least_one, default=1, help="bars between a dataset's windows (default 1)"
    )
    prior.add_argument("--model", "-m", help=MODEL_HELP)
    prior.add_argument(
        "--out", "-o", metavar="FILE", help="where to write (default beside the model)"
    )
    prior.set_defaults(func=run_prior)

    samp = cmds.add_parser(
        "sample",
        help="new melodies from the prior (or from FILE), attribute vectors added",
        description="Draw latents from the prior (the model's fitted latent_prior.json, "
        "else N(0, I); or encode --from FILE), add "
        "AMOUNT times each named attribute vector (--add density=+1.5), decode, and write "
        "OUT/NAME.mid (NAME_i.mid for several) and the settings OUT/NAME.json.",
    )
    samp.add_argument("--from", dest="source", metavar="FILE", help="a melody to start from")
    _refine(samp, "the --from melody's latents", 0)
    samp.add_argument(
        "--add",
        action="append",
        metavar="NAME=AMOUNT",
        help="add AMOUNT times an attribute vector (repeat or comma-separate)",
    )
    samp.add_argument("--num", "-n", type=int, default=1, help="pieces (default 1)")
    samp.add_argument("--segments", type=int, default=1, help="prior segments a piece (default 1)")
    samp.add_argument("--attributes", metavar="FILE", help="attribute vectors (default MODEL's)")
    _decoding(samp, "sample", sampled=True)
    samp.set_defaults(func=run_sample)


def _refine(p: argparse.ArgumentParser, what: str, default: int) -> None:
    p.add_argument(
        "--refine",
        type=int,
        default=default,
        metavar="N",
        help=f"gradient steps (at most) moving {what} to one whose likeliest decoding is the "
        f"melody itself; 0: the encoder's mean (default {default})",
    )


def _decoding(
    p: argparse.ArgumentParser, name: str, model: str = "folk-vae", sampled: bool = False
) -> None:
    p.add_argument(
        "--model", "-m", default=model, help=MODEL_HELP.replace("folk-vae)", f"{model})")
    )
    default = "the model's, 0.5 for the shipped VAEs" if sampled else "0"
    p.add_argument(
        "--temperature",
        type=float,
        default=None if sampled else 0.0,
        help=f"decoder sampling temperature; 0 takes the likeliest step (default {default})",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--tempo", type=float, default=100.0, help="quarter notes a minute (default 100)"
    )
    p.add_argument("--out", "-o", default="out", help="output folder (default out)")
    p.add_argument("--name", default=name, help=f"file name stem (default {name})")


def _load_melody(path: str) -> Any:
    from musegen.errors import InputError
    from musegen.io import load

    if not Path(path).is_file():
        raise InputError(path, "no such file")
    return load(path)


def run_encode(args: argparse.Namespace) -> int:
    from musegen.sampling.latent import LatentVAE
    from musegen.utils import atomic_write_text

    vae = LatentVAE.load(args.model)
    steps = vae.segments(_load_melody(args.file))
    mu, sigma = vae.encode_steps(steps, args.refine)
    record = {
        "file": args.file,
        "model": model_label(vae.folder),
        "refine": args.refine,
        "bars_per_segment": vae.config.n_bars,
        "segments": [
            {"bars": [i * vae.config.n_bars + 1, (i + 1) * vae.config.n_bars], "mu": m, "sigma": s}
            for i, (m, s) in enumerate(zip(_rounded(mu), _rounded(sigma), strict=True))
        ],
    }
    text = json.dumps(record, indent=2) + "\n"
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out} ({len(mu)} segments of {vae.config.latent} dims)")
    else:
        print(text, end="")
    return 0


def _rounded(a: Any) -> list[list[float]]:
    return [[round(float(x), 5) for x in row] for row in a]


def run_interpolate(args: argparse.Namespace) -> int:
    from musegen.cli.common import write_pieces
    from musegen.errors import MusegenError
    from musegen.sampling.latent import LatentVAE, slerp

    started = time.perf_counter()
    if args.steps < 2 or args.refine < 0:
        raise MusegenError(
            f"--steps must be at least 2 and --refine >= 0, not {args.steps}, {args.refine}"
        )
    vae = LatentVAE.load(args.model)
    a = vae.encode(_load_melody(args.a), args.refine)[0]
    b = vae.encode(_load_melody(args.b), args.refine)[0]
    path = slerp(a, b, args.steps)
    steps = vae.decode_steps(path, args.temperature, args.seed)
    score = vae.to_score(steps, tempo=args.tempo)
    settings = {
        "command": "latent interpolate",
        "model": model_label(vae.folder),
        "a": args.a,
        "b": args.b,
        "steps": args.steps,
        "refine": args.refine,
        "bars_per_step": vae.config.n_bars,
        "temperature": args.temperature,
        "seed": args.seed,
        "tempo": args.tempo,
        "seconds_taken": round(time.perf_counter() - started, 2),
    }
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_pieces([score], args.out, args.name, settings, render="png")
    return 0


def run_attribute(args: argparse.Namespace) -> int:
    from musegen.sampling.latent import LatentVAE, attribute_table
    from musegen.utils import atomic_write_text

    vae = LatentVAE.load(args.model)
    names = [n.strip() for n in args.compute.split(",") if n.strip()]
    record = attribute_table(vae, args.data, names, args.split)
    out = Path(args.out) if args.out else vae.attributes_path()
    atomic_write_text(out, json.dumps(record, indent=1) + "\n")
    for name, info in record["attributes"].items():
        print(
            f"{name}: low quarter <= {info['low_edge']:.3g}, high quarter >= "
            f"{info['high_edge']:.3g}, vector norm {info['norm']:.3f}"
        )
    print(f"wrote {out} ({record['segments']} segments of {args.data})")
    _report_skipped(record["skipped"])
    return 0


def run_prior(args: argparse.Namespace) -> int:
    from musegen.sampling.latent import LatentVAE, prior_record
    from musegen.utils import atomic_write_text

    vae = LatentVAE.load(args.model)
    record = prior_record(vae, args.data, args.split, args.hop)
    out = Path(args.out) if args.out else vae.prior_path()
    atomic_write_text(out, json.dumps(record) + "\n")
    print(f"wrote {out} (a Gaussian over {record['segments']} segments of {args.data})")
    _report_skipped(record["skipped"])
    return 0


def _report_skipped(names: list[str]) -> None:
    if names:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        print(
            f"skipped {len(names)} piece(s) unreadable or in a meter the model does not read: {shown}"
        )


def run_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from musegen.cli.common import write_pieces
    from musegen.errors import MusegenError
    from musegen.sampling.latent import LatentVAE, parse_additions

    started = time.perf_counter()
    if args.num < 1 or args.segments < 1:
        raise MusegenError("--num and --segments must be >= 1")
    additions = parse_additions(args.add)
    vae = LatentVAE.load(args.model)
    if args.temperature is None:
        args.temperature = vae.default_temperature
    rng = np.random.default_rng(args.seed)
    if args.source:
        base = vae.encode(_load_melody(args.source), args.refine)
        latents = [base for _ in range(args.num)]
    else:
        latents = [vae.draw((args.segments,), rng) for _ in range(args.num)]
    if additions:
        vectors = vae.load_attributes(args.attributes)
        latents = [vae.add(z, additions, vectors) for z in latents]
    pieces = [
        vae.to_score(vae.decode_steps(z, args.temperature, args.seed + i), tempo=args.tempo)
        for i, z in enumerate(latents)
    ]
    settings = {
        "command": "latent sample",
        "model": model_label(vae.folder),
        "from": args.source,
        "refine": args.refine if args.source else None,
        "add": additions,
        "attributes": args.attributes or (str(vae.attributes_path()) if additions else None),
        "num": args.num,
        "segments": None if args.source else args.segments,
        "prior": None if args.source else vae.prior_name,
        "temperature": args.temperature,
        "seed": args.seed,
        "tempo": args.tempo,
        "seconds_taken": round(time.perf_counter() - started, 2),
    }
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_pieces(pieces, args.out, args.name, settings)
    return 0
