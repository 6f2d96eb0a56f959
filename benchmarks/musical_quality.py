"""Musical quality of a generator's pieces against real held-out music, with the real corpus
against itself as the ceiling (``musegen.evaluate.quality``).

Generators (``--generator``):

* ``bach`` / ``folk``: the shipped token models, exactly as ``musegen generate --model NAME
  --num N --bars B --seed S`` makes them (``compose`` with the same request and sampling,
  then dealt out to the model config's ``voices`` where it names them: a model writing one
  stream of notes; ``bach`` writes its four voices itself);
* ``coconet``: the shipped Coconet, chorales from scratch by Gibbs sampling (as
  ``musegen generate --model coconet``);
* ``harmonize-coconet`` / ``csp``: four parts under the sopranos of the 77 JSB test chorales
  (Coconet's ``harmonize`` with seed = ``--seed`` + piece index, or the CSP harmonizer), as in
  ``benchmarks/harmonize_voice_leading.py``; ``--num`` takes the first N (default all 77);
* ``--model PATH``: any model or run folder ``musegen generate`` takes (a token model, a
  Coconet, a frame model), generated like ``musegen generate --model PATH``.

Reference: the ``bach`` source (music21's chorales) for chorale generators, ``folk`` (Essen) for
``folk`` and melody token models, ``folk-units`` for a latent model (``--model folk-vae``,
``latent-diffusion``); ``--reference`` overrides. ``--reference jsb-satb`` compares with
Bach's chorales as Coconet sees them (four voices on a 16th-note grid, a repeated note merged
into one long note, no meter): the fair reference for grid models, whose output has the
grid's traits;
``--reference folk-units`` compares with Essen's tunes as the melody VAEs write them (the
tunes of at least ``--bars`` units of 16 16th steps in ``--units-data``, a 2/4 tune two bars a
unit, cut to ``--bars`` and written as 4/4 bars): the fair reference for the latent models,
which write 4/4 units only, where the ``folk`` reference's 2/4, 3/4 and 6/8 tunes and tunes
shorter than ``--bars`` tell them apart by their length alone. The held-out
split is ``--split`` (default ``valid``: never tune on test). Real pieces are cut to their first
``--bars`` bars (the generated length) for every figure but the ending (see the module docstring
of ``musegen.evaluate.quality``); harmonizations are whole chorales and are compared with whole
real ones. For a model whose notes are dealt out to voices, ``--ceiling`` adds a
column "real, dealt out": real training pieces cut, merged to one track and dealt out the same
way, which shows what the dealing alone costs. ``--ceiling`` also measures as many real training
pieces as generated ones against the same held-out set. Loaded corpora are cached under
``.cache/musical_quality/`` (git-ignored).

Prints a table, then JSON lines ``{"benchmark", "ours", "peer", "ratio", "unit"}`` per
headline figure: ``peer`` = the ceiling (real vs real, null without ``--ceiling``), ``ratio``
= ours as a fraction of it (``fraction_of_ceiling``: > 1 means better than real vs real).

    .venv/bin/python benchmarks/musical_quality.py --generator bach --ceiling
    .venv/bin/python benchmarks/musical_quality.py --generator folk --ceiling
    .venv/bin/python benchmarks/musical_quality.py --model runs/bach --num 40 --bars 8
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from musegen.sampling.endings import ENDINGS

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "musical_quality"
GENERATORS = ("bach", "folk", "coconet", "harmonize-coconet", "csp")
UNITS = {
    "oa_mean": "overlapping area (0-1)",
    "vl_total_per_100_beats": "errors/100 beats",
    "parallels_per_100_beats": "parallel 5ths+8ves/100 beats",
    "four_voice_share_beats": "share of beats",
    "ending_share": "share of pieces",
    "note_length_tv": "total variation (0-1)",
    "c2st_accuracy": "accuracy (0.5 = indistinguishable)",
}
LABELS = {
    "oa_mean": "Yang-Lerch mean overlapping area",
    "vl_total_per_100_beats": "voice-leading errors / 100 beats",
    "parallels_per_100_beats": "parallel 5ths + 8ves / 100 beats",
    "four_voice_share_beats": "beats with all four voices",
    "ending_share": "ending",
    "note_length_tv": "note-length histogram distance (TV)",
    "c2st_accuracy": "C2ST accuracy (best of 3)",
}


def cpu_name() -> str:
    """The CPU's model name, and whether it has AMX (bf16 tiles)."""
    from musegen.utils import cpu_model_name

    try:
        flags = next(
            (ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")),
            "",
        )
    except OSError:
        flags = ""
    return f"{cpu_model_name() or 'unknown CPU'}{' (AMX)' if 'amx_tile' in flags else ''}"


# ----------------------------------------------------------------------------- reference sets
def save_scores(path: Path, scores: list) -> None:
    """Write ``scores`` to one ``.npz`` (no pickles): every track's note array and a JSON
    header with each score's tpq, tracks and tempo/meter/key maps. Atomic."""
    from dataclasses import asdict

    header = []
    arrays: dict[str, Any] = {}
    for i, s in enumerate(scores):
        tracks = []
        for j, tr in enumerate(s.tracks):
            arrays[f"n{i}_{j}"] = tr.notes
            tracks.append(
                {"program": tr.program, "is_drum": tr.is_drum, "name": tr.name, "voice": tr.voice}
            )
        header.append(
            {
                "tpq": s.tpq,
                "tracks": tracks,
                "tempos": [asdict(x) for x in s.tempos],
                "time_signatures": [asdict(x) for x in s.time_signatures],
                "key_signatures": [asdict(x) for x in s.key_signatures],
            }
        )
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load_scores(path: Path) -> list:
    """The scores :func:`save_scores` wrote."""
    from musegen.score import KeySignature, Score, Tempo, TimeSignature, Track

    with np.load(path, allow_pickle=False) as z:
        header = json.loads(z["header"].tobytes())
        return [
            Score(
                tpq=h["tpq"],
                tracks=[Track(notes=z[f"n{i}_{j}"], **tr) for j, tr in enumerate(h["tracks"])],
                tempos=[Tempo(**x) for x in h["tempos"]],
                time_signatures=[TimeSignature(**x) for x in h["time_signatures"]],
                key_signatures=[KeySignature(**x) for x in h["key_signatures"]],
            )
            for i, h in enumerate(header)
        ]


def load_reference(source: str, split: str, limit: int | None = None, seed: int = 0) -> list:
    """Scores of ``source:SOURCE:SPLIT`` (a seeded sample of ``limit``), cached (npz + JSON,
    :func:`save_scores`) keyed by the source's split manifest, so a new music21 corpus is read
    again."""
    from musegen.data.sources import get_source
    from musegen.evaluate.sets import load_set

    src = get_source(source)
    manifest = getattr(src, "manifest_path", None)
    digest = (
        hashlib.sha256(manifest().read_bytes()).hexdigest()[:12]
        if manifest and manifest().exists()
        else "nomanifest"
    )
    path = CACHE / f"{source}-{split}-{limit or 'all'}-{seed}-{digest}.npz"
    if path.exists():
        return load_scores(path)
    t = time.perf_counter()
    pieces = load_set(f"source:{source}:{split}", limit=limit, seed=seed, progress=True)
    scores = pieces.scores
    CACHE.mkdir(parents=True, exist_ok=True)
    save_scores(path, scores)
    print(
        f"read {len(scores)} pieces of {source}:{split} in {time.perf_counter() - t:.1f} s "
        f"({len(pieces.failures)} unreadable); cached in {path}",
        file=sys.stderr,
    )
    return scores


def default_reference(kind: str, model: str | None) -> str:
    """``folk`` for the folk generator and a melody token model, ``folk-units`` for a latent
    model of melodies (a MusicVAE or a prior over its latents: 4/4 units of Essen tunes), else
    ``bach`` (a four-voice MusicVAE too)."""
    if model:
        from musegen.models.pretrained import resolve_model
        from musegen.sampling.generators import generator_class
        from musegen.sampling.latent import MusicVAEGenerator

        meta = json.loads((resolve_model(model) / "config.json").read_text())
        cls = generator_class(meta)
        tokenizer = (meta.get("tokenizer") or {}).get("tokenizer", "")
        if cls is not None and issubclass(cls, MusicVAEGenerator):
            return "bach" if tokenizer == "chorale" else "folk-units"  # a four-voice VAE: Bach
        return "folk" if str(tokenizer).startswith("melody") else "bach"
    return "folk" if kind == "folk" else "bach"


def units_reference(
    data: str, split: str, bars: int, limit: int | None = None, seed: int = 0
) -> list:
    """``folk-units``: the tunes of ``split`` of the prepared melody dataset ``data`` with at
    least ``bars`` units of 16 16th steps, cut to ``bars`` units and written as 4/4 bars, as
    ``benchmarks/latent.py``'s self-similarity reads them (a seeded sample of ``limit``)."""
    from musegen.data.dataset import load_prepared
    from musegen.models.vae_steps import cells_to_steps
    from musegen.sampling.latent import LatentVAE
    from musegen.train.vae import piece_units

    vae = LatentVAE.load("folk-vae")  # its config and tokenizer: 16-step bars, its pitches
    prepared = load_prepared(data)
    steps = []
    for ids in prepared.split(split):
        units = piece_units(ids, prepared.tokenizer, vae.config.steps_per_bar)
        if units is not None and len(units) >= bars:
            steps.append(cells_to_steps(units[:bars].reshape(-1), prepared.tokenizer, vae.config))
    if limit is not None and len(steps) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(steps), limit, replace=False))
        steps = [steps[i] for i in keep]
    return [vae.to_score(x, tempo=100.0) for x in steps]


# ----------------------------------------------------------------------------- generators
def generate_with_model(ref: str, args: argparse.Namespace) -> tuple[list, int, dict[str, Any]]:
    """What ``musegen generate --model REF --num N --bars B --seed S`` writes (the same
    generator, request and seed: ``musegen.sampling.generators``), as scores, the number of
    voices its notes were dealt out to (0: none) and the settings used."""
    import torch

    from musegen.sampling.generators import GenerateRequest, load_generator

    torch.manual_seed(args.seed)
    generator = load_generator(ref, "cpu")
    request = GenerateRequest(
        num=args.num or 40,
        seed=args.seed,
        bars=args.bars,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        pitch_top_p=args.pitch_top_p,
        key_bias=args.key_bias,
        ending=args.ending,
        form=args.form,
    )
    result = generator.generate(request)
    used = result.settings.get("sampling", {})
    settings = {"model": str(generator.folder)}
    settings |= {
        k: used[k]
        for k in ("temperature", "top_p", "top_k", "pitch_top_p", "key_bias")
        if k in used
    }
    asked = result.settings.get("request", {})  # a latent model's own ending and form: used
    settings |= {
        k: used.get(k) or asked[k] for k in ("ending", "voice_ranges", "form") if asked.get(k)
    }
    print(", ".join(f"{k} {v}" for k, v in settings.items()), file=sys.stderr)
    return result.pieces, int(result.settings.get("voices", 0)), settings


def jsb_test_melodies(limit: int | None) -> list:
    """The 77 JSB test chorales as four-voice scores in 4/4 (the data has no meter)."""
    from musegen.data.sources import get_source
    from musegen.score import TimeSignature
    from musegen.tokenizers.grid import steps_to_score

    steps = get_source("jsb-satb").all_steps()["test"]
    out = []
    for s in steps[:limit] if limit else steps:
        score = steps_to_score(s)
        score.time_signatures = [TimeSignature(0, 4, 4)]
        out.append(score)
    return out


def harmonize_sopranos(kind: str, args: argparse.Namespace) -> tuple[list, list[str]]:
    """Four parts under each JSB test soprano by Coconet or CSP, as ``musegen harmonize
    --model coconet|csp`` writes them (the same generators); failures listed."""
    import torch

    from musegen.errors import MusegenError
    from musegen.sampling.generators import load_generator
    from musegen.score import Score

    torch.manual_seed(args.seed)
    generator = load_generator("csp" if kind == "csp" else args.model or "coconet")
    temperature = 1.0 if args.temperature is None else args.temperature  # as harmonize
    out, failed = [], []
    chorales = jsb_test_melodies(args.num)
    for i, bach in enumerate(chorales):
        melody = Score(tpq=bach.tpq, tracks=[bach.tracks[0]], time_signatures=bach.time_signatures)
        try:
            harmonized = generator.harmonize(melody, seed=args.seed + i, temperature=temperature)
            out.append(harmonized.pieces[0])
        except MusegenError as e:
            failed.append(f"piece {i}: {e}")
        print(f"  {kind}: {i + 1}/{len(chorales)}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return out, failed


# ----------------------------------------------------------------------------- output
def fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def dealt_out(pieces: list, bars: int, voices: int) -> list:
    """Real pieces cut to ``bars`` bars, merged to one track and dealt out to ``voices``
    voices, as a generator's notes are: what the dealing alone does to the figures."""
    from musegen.voices import separate_voices

    cut = [s.slice_bars(0, bars) if s.n_bars > bars else s for s in pieces]
    return [separate_voices(s.merge_tracks(), voices) for s in cut]


def print_table(name: str, report: dict[str, Any], dealt: dict[str, Any] | None) -> None:
    """The headline figures as a markdown table, then details."""
    from musegen.evaluate.quality import HEADLINE

    gen, ceil = report["generated"], report["ceiling"]
    print(f"\n## Musical quality: {name}\n")
    cut = f" (cut to {report['bars']} bars)" if report["bars"] else ""
    print(
        f"{gen['pieces']} generated pieces vs {report['reference_pieces']} real held-out pieces{cut}"
    )
    cols = ["figure", "generated"]
    if ceil:
        cols += ["real vs real (ceiling)", "fraction"]
    if dealt:
        cols += ["real, dealt out"]
    print("\n| " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * (len(cols) - 1))

    def c2st(row: dict[str, Any]) -> str:
        return f"{fmt(row['c2st_accuracy'])} ± {fmt(row['c2st']['se'])}"

    for fig in HEADLINE:
        if fig == "ending_share":
            label = f"ending on a {'cadence' if gen['ending_kind'] == 'cadence' else 'tonic'}"
            label += " (real: whole pieces)" if ceil else ""
        else:
            label = LABELS[fig]
        value = c2st if fig == "c2st_accuracy" else (lambda row, f=fig: fmt(row[f]))
        cells = [value(gen)]
        if ceil:
            cells += [value(ceil), fmt(report["fraction"].get(fig), 2)]
        if dealt:
            cells += [value(dealt)]
        print(f"| {label} | " + " | ".join(cells) + " |")
    if ceil and report["bars"]:
        cells = ["", fmt(ceil["ending_share_cut"]), ""] + (
            [fmt(dealt["ending_share"])] if dealt else []
        )
        print(f"| ending, real pieces cut to {report['bars']} bars | " + " | ".join(cells) + " |")
    details: list[tuple[str, Any]] = [
        ("beats with all four voices, 16th steps", lambda r: r["four_voice_share_16ths"])
    ]
    for c, label in (("logistic", "logistic"), ("knn", "kNN"), ("stumps", "boosted stumps")):
        details.append((f"C2ST {label}", lambda r, c=c: r["c2st"][c]))
    for label, get in details:
        cells = [fmt(get(gen))]
        if ceil:
            cells += [fmt(get(ceil)), ""]
        if dealt:
            cells += [fmt(get(dealt))]
        print(f"| {label} | " + " | ".join(cells) + " |")
    if gen["four_voice_pieces"]:
        print("\nVoice-leading errors per 100 beats by kind:\n")
        print(
            "| kind | generated |"
            + (" real |" if ceil else "")
            + (" real, dealt out |" if dealt else "")
        )
        print("|---|---:|" + ("---:|" if ceil else "") + ("---:|" if dealt else ""))
        for kind, rate in gen["vl_per_100_beats"].items():
            real = f" {fmt(ceil['vl_per_100_beats'][kind], 2)} |" if ceil else ""
            real += f" {fmt(dealt['vl_per_100_beats'][kind], 2)} |" if dealt else ""
            print(f"| {kind} | {fmt(rate, 2)} |{real}")
    print("\nFeatures that most tell generated from real (effect size, generated - real):")
    print("  " + ", ".join(f"{n} {e:+.2f}" for n, e in gen["c2st"]["top_features"]))
    print()


def emit_lines(
    name: str, report: dict[str, Any], dealt: dict[str, Any] | None, extra: dict[str, Any]
) -> None:
    """One JSON line per headline figure (NaN figures, e.g. voice leading of melodies, left out)."""
    from musegen.evaluate.quality import HEADLINE

    gen, ceil = report["generated"], report["ceiling"]
    for fig in HEADLINE:
        ours = gen[fig]
        if not math.isfinite(ours):
            continue
        peer = ceil[fig] if ceil else None
        ratio = report["fraction"].get(fig) if ceil else None
        row: dict[str, Any] = {
            "benchmark": f"musical_quality.{name}.{fig}",
            "ours": round(ours, 4),
            "peer": round(peer, 4) if peer is not None and math.isfinite(peer) else None,
            "ratio": round(ratio, 4) if ratio is not None and math.isfinite(ratio) else None,
            "unit": UNITS[fig],
        }
        if dealt and math.isfinite(dealt[fig]):
            row["peer_dealt_out"] = round(dealt[fig], 4)
        if fig == "ending_share":
            row["kind"] = gen["ending_kind"]
        if fig == "c2st_accuracy":
            row["se"] = round(gen["c2st"]["se"], 4)
            row["best"] = gen["c2st"]["best"]
            row |= {c: round(gen["c2st"][c], 4) for c in ("logistic", "knn", "stumps")}
        print(json.dumps(row | extra), flush=True)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--generator", choices=GENERATORS, default="bach")
    p.add_argument(
        "--model", metavar="PATH", help="a model/run folder (or shipped name) to measure"
    )
    p.add_argument("--num", type=int, help="pieces (default 40; harmonizers: all 77 sopranos)")
    p.add_argument("--bars", type=int, default=8)
    p.add_argument(
        "--openings",
        type=int,
        metavar="B",
        help="cut the generated pieces to their first B bars too (generate --bars > B): "
        "openings against openings, so no set holds endings the other lacks; the ending "
        "figure then reads the cut pieces",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--temperature", type=float, help="default: as musegen generate (the model's, else 1.0)"
    )
    p.add_argument(
        "--top-p", type=float, help="default: as musegen generate (the model's, else 0.95)"
    )
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument(
        "--pitch-top-p",
        type=float,
        help="a nucleus among the pitch tokens only (default: the model's, else 1.0)",
    )
    p.add_argument(
        "--key-bias",
        type=float,
        metavar="NATS",
        help="nats off pitches out of the key so far (default: the model's, else 0)",
    )
    p.add_argument(
        "--ending",
        choices=ENDINGS,
        help="how pieces must close (default: the model's config)",
    )
    p.add_argument(
        "--form",
        help="sections that return, as 'musegen generate --form' (AABA, or auto: drawn from "
        "the corpus's measured forms); default none",
    )
    p.add_argument("--split", choices=("valid", "test"), default="valid")
    p.add_argument(
        "--reference",
        choices=("bach", "folk", "jsb-satb", "folk-units"),
        help="real corpus (default: folk for folk, folk-units for latent models, else bach; "
        "jsb-satb: Bach on the 16th grid; folk-units: Essen in the latent models' 4/4 units, "
        "from --units-data)",
    )
    p.add_argument(
        "--max-reference", type=int, metavar="N", help="a seeded sample of N held-out pieces"
    )
    p.add_argument(
        "--units-data",
        default="data/folk-melody",
        metavar="DIR",
        help="the prepared melody dataset --reference folk-units reads (default: %(default)s)",
    )
    p.add_argument("--ceiling", action="store_true", help="also real train vs real held-out")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5, help="C2ST subsamples averaged (default 5)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--json-out", metavar="FILE", help="write the whole report as JSON")
    args = p.parse_args()

    import torch

    from musegen.evaluate.quality import quality_report

    torch.set_num_threads(args.threads)
    kind = args.generator
    name = (
        Path(args.model).name if args.model and kind not in ("harmonize-coconet", "csp") else kind
    )
    reference = args.reference or default_reference(kind, args.model)
    if args.split == "test":
        print("measuring against the test split: report, never tune on it", file=sys.stderr)

    t = time.perf_counter()
    failed: list[str] = []
    voices = 0
    settings: dict[str, Any] = {}
    harmonizer = kind in ("harmonize-coconet", "csp")
    # harmonizations are whole chorales, compared with whole real ones; generated pieces
    # are --bars long, compared with real pieces cut to as many bars
    cut = None if harmonizer else args.bars
    if harmonizer:
        generated, failed = harmonize_sopranos(kind, args)
    else:
        generated, voices, settings = generate_with_model(args.model or kind, args)
        if args.openings:  # compare openings with openings: neither set ends
            from musegen.evaluate.quality import excerpt

            generated = [excerpt(s, args.openings) for s in generated]
            cut = args.openings
    gen_seconds = time.perf_counter() - t
    if reference == "folk-units":
        held = units_reference(args.units_data, args.split, cut or args.bars, args.max_reference)
        train = (
            units_reference(args.units_data, "train", cut or args.bars, len(generated), args.seed)
            if args.ceiling
            else None
        )
    else:
        held = load_reference(reference, args.split, args.max_reference, seed=0)
        train = (
            load_reference(reference, "train", len(generated), seed=args.seed)
            if args.ceiling
            else None
        )
    t = time.perf_counter()
    report = quality_report(
        generated, held, train, bars=cut, repeats=args.repeats, folds=args.folds, seed=0
    )
    measure_seconds = time.perf_counter() - t
    dealt = None
    if train is not None and voices:
        dealt_pieces = dealt_out(train, args.bars, voices)
        dealt = quality_report(
            dealt_pieces, held, None, bars=args.bars, repeats=args.repeats, folds=args.folds
        )["generated"]
        report["ceiling_dealt_out"] = dealt
    print_table(name, report, dealt)
    cpu = cpu_name()
    print(
        f"generation {gen_seconds:.0f} s, measurement {measure_seconds:.0f} s, {cpu}, "
        f"{args.threads} torch thread(s)" + (f"; {len(failed)} failed" if failed else ""),
        file=sys.stderr,
    )
    extra = {
        "pieces": len(generated),
        "failed": len(failed),
        "reference": f"{reference}:{args.split}",
        "reference_pieces": report["reference_pieces"],
        "bars": cut,
        "seed": args.seed,
        "cpu": cpu,
        **settings,
    }
    emit_lines(name, report, dealt, extra)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(_jsonable(report | {"run": extra}), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
