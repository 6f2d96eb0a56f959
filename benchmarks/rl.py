"""RL Tuner's figures for a model tuned by ``musegen train rl``, before vs after, in one run.

Both models write ``--num`` melodies of ``--bars`` bars exactly as ``musegen generate --model
NAME --num N --bars B --seed S --form none`` does (the same generator, request and seed; no
planned form, so the table is what the networks write), and each set is measured by:

* RL Tuner's table (Jaques et al. 2017, table 1; our definitions in
  ``musegen.metrics.rewards``): notes excessively repeated, notes not in key, melodies
  starting / ending on the tonic, leaps resolved, notes in motifs and in repeated motifs,
  intervals in long same-interval runs;
* the held-out NLL per token of the ``--split`` of the prepared dataset (``--data``) under
  each model (``musegen.evaluate.likelihood``: what tuning cost the model as a model of the
  corpus; target: a rise of at most 5%), and the NLL per token of each set's melodies under
  the *original* model (how far the tuned model's melodies moved from what it would write);
* the Yang & Lerch (2018) mean overlapping area of each set with the real held-out melodies
  (``musegen.evaluate.quality``, real pieces cut to the same bars; must not fall), with the
  tonic-ending share and the C2ST accuracy beside it.

With ``--chords BASE,TUNED`` it measures RL-Chord instead: the pretrained ``chord-lstm``
(BASE), the tuned one (TUNED) and the CSP harmonizer (``musegen harmonize --model csp``) on
the Nottingham ``--split`` melodies (``--chord-melodies`` of them), each piece drawn with seed
``--seed`` + its index at ``--temperature``, by Yeh et al. (2021)'s six metrics
(``musegen.metrics.harmonization``) averaged over pieces, beside the same figures of the
human chords of the set.

Beside each rule row's change, a 95% bootstrap interval (``--bootstrap`` resamples of each
set's melodies): in points and relative to the original. A rare row (excessive repetition:
a handful of notes in 100 melodies) needs ``--num 300`` or more to read.

The table also gives RL Tuner's rows of the real melodies themselves (``--split`` tunes cut
to ``--bars`` bars), what the corpus does by the same rules.

Choose on ``valid`` (the default), report ``test`` once. The melodies are drawn with seed 1 on
``valid`` and 0 on ``test`` unless ``--seed`` is given, so that the rule rows, which do not
depend on the split, are not chosen on the very melodies that are then reported; RL-Chord's
draws follow the same rule (seed 1 + index on valid, 0 + index on test). Prints a
markdown table, then JSON
lines ``{"benchmark", "ours", "peer", "ratio", "unit"}``: ``ours`` the tuned model, ``peer``
the original, ``ratio`` > 1 where the tuned model is better by the figure's direction
(RL Tuner's for the rules; lower NLL; higher overlap).

    .venv/bin/python benchmarks/rl.py --base folk --tuned folk-rl --split test
    .venv/bin/python benchmarks/rl.py --tuned runs/a,runs/b   # several: folk measured once
    .venv/bin/python benchmarks/rl.py --chords runs/rl-chord/base,rl-chord --split test
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

# RL Tuner's rows: True where higher is better
DIRECTION = {
    "notes excessively repeated": False,
    "notes not in key": False,
    "melodies starting on the tonic": True,
    "melodies ending on the tonic": True,
    "leaps resolved": True,
    "notes in motifs": True,
    "notes in repeated motifs": True,
    "intervals in long same-interval runs": False,
    "repeated motifs per piece": True,
    "runs of four repeated onsets that go on": False,
}


COUNT = "notes written (the shares' denominator)"
PER_MELODY = "notes per melody"  # a fall: the rules dodged by writing less (thinning)
PIECES = "_pieces"  # each melody's rule counts (rl_tuner_figures), for the intervals
FEATURE_OA = "_feature_overlap"  # the Yang-Lerch overlap of each feature (its mean is the row)
FEATURE_MEAN = "_feature_mean"  # each scalar feature's mean over the set
HIDDEN = (PIECES, FEATURE_OA, FEATURE_MEAN)


UNISON = "successive notes on one pitch"  # how often a note repeats the one before (%)


def unison_share(pieces: list) -> float:
    """The share (%) of successive notes of the top lines that repeat the pitch before: a
    rule against the fifth repeat that spreads into a rule against any repeat moves it."""
    from musegen.metrics.rewards import top_line

    steps = [top_line(p).intervals for p in pieces]
    total = sum(len(s) for s in steps)
    return 100.0 * sum(int((s == 0).sum()) for s in steps) / total if total else float("nan")


def feature_means(pieces: list) -> dict[str, float]:
    """The mean of every scalar Yang-Lerch feature over ``pieces`` (NaNs left out): which way
    a feature whose overlap falls has moved."""
    from musegen.metrics.stats import SCALAR_FEATURES, compute_features

    rows = [compute_features(p, list(SCALAR_FEATURES)) for p in pieces]
    return {
        name: float(np.nanmean([float(r[name]) for r in rows])) if rows else float("nan")
        for name in SCALAR_FEATURES
    }


def pooled_share(rows: np.ndarray, num: int, den: int) -> float:
    """A share in percent pooled over melodies (``rows`` [pieces, 2]: numerator, denominator)."""
    d = rows[:, den].sum()
    return 100.0 * rows[:, num].sum() / d if d else float("nan")


def change_interval(
    before: list[dict[str, float]],
    after: list[dict[str, float]],
    num: str,
    den: str,
    draws: int,
    seed: int,
) -> tuple[float, float, float, float]:
    """95% bootstrap intervals (melodies resampled with replacement, each set on its own) of
    a pooled share's change, in points and relative to ``before``: (low, high) of each."""
    rng = np.random.default_rng(seed)

    def table(rows: list[dict[str, float]]) -> np.ndarray:
        return np.array([[r[num], 1.0 if den == "pieces" else r[den]] for r in rows])

    b, a = table(before), table(after)
    points, relative = [], []
    for _ in range(draws):
        sb = pooled_share(b[rng.integers(0, len(b), len(b))], 0, 1)
        sa = pooled_share(a[rng.integers(0, len(a), len(a))], 0, 1)
        points.append(sa - sb)
        relative.append((sa - sb) / sb if sb else np.nan)
    lo_p, hi_p = np.nanpercentile(points, [2.5, 97.5])
    finite = np.isfinite(relative)  # none where the original has no such note
    lo_r, hi_r = (
        np.percentile(np.array(relative)[finite], [2.5, 97.5]) if finite.any() else (np.nan,) * 2
    )
    return float(lo_p), float(hi_p), float(100 * lo_r), float(100 * hi_r)


def generate(ref: str, num: int, bars: int, seed: int, form: str = "none") -> list:
    """What ``musegen generate --model REF --num NUM --bars BARS --seed SEED --form FORM``
    writes."""
    import torch

    from musegen.sampling.generators import GenerateRequest, load_generator

    torch.manual_seed(seed)
    generator = load_generator(ref, "cpu")
    return generator.generate(GenerateRequest(num=num, seed=seed, bars=bars, form=form)).pieces


def nll_of_pieces(ref: str, pieces: list) -> float:
    """Mean NLL per token of ``pieces`` (encoded by the model's tokenizer) under model ``ref``."""
    import torch
    import torch.nn.functional as F

    from musegen.models import load_model
    from musegen.models.pretrained import resolve_model
    from musegen.tokenizers import tokenizer_from_dict

    model, meta = load_model(resolve_model(ref))
    tok = tokenizer_from_dict(meta["tokenizer"])
    total, count = 0.0, 0
    with torch.no_grad():
        for score in pieces:
            ids = torch.as_tensor(tok.encode(tok.prepare(score)), dtype=torch.long)[None]
            logits, _ = model(ids[:, :-1])
            total += float(F.cross_entropy(logits[0].float(), ids[0, 1:], reduction="sum"))
            count += ids.shape[1] - 1
    return total / max(count, 1)


def measure(name: str, ref: str, args: argparse.Namespace, real: list) -> dict[str, Any]:
    from musegen.evaluate.likelihood import evaluate_nll
    from musegen.evaluate.quality import quality_report
    from musegen.metrics.rewards import rl_tuner_figures, rl_tuner_table, top_line

    t = time.perf_counter()
    pieces = generate(ref, args.num, args.bars, args.seed, args.form)
    seconds = time.perf_counter() - t
    print(f"{name}: {len(pieces)} melodies in {seconds:.0f} s", file=sys.stderr)
    out: dict[str, Any] = dict(rl_tuner_table(pieces))
    out[COUNT] = float(sum(len(top_line(p)) for p in pieces))
    out[PER_MELODY] = out[COUNT] / max(len(pieces), 1)
    out[UNISON] = unison_share(pieces)
    out[PIECES] = [rl_tuner_figures(p) for p in pieces]
    report = quality_report(pieces, real, None, bars=args.bars, seed=args.seed)["generated"]
    out["Yang-Lerch overlap with the corpus"] = report["oa_mean"]
    out[FEATURE_OA] = report["oa"]
    out[FEATURE_MEAN] = feature_means(pieces)
    out["C2ST accuracy (0.5 best)"] = report["c2st_accuracy"]
    out["NLL/token of the melodies under the original"] = nll_of_pieces(args.base, pieces)
    nll = evaluate_nll(ref, args.data, split=args.split)
    out[f"held-out NLL/token ({args.split})"] = nll.nll_per_token
    return out


# ----------------------------------------------------------------------------- RL-Chord
def melody_score(frames: np.ndarray, frames_per_beat: int) -> Any:
    """A one-track score of a frame melody (a note per run of one pitch), in 4/4."""
    from musegen.score import Score, TimeSignature, Track, make_notes

    step = 480 // frames_per_beat
    starts, durations, pitches = [], [], []
    f = 0
    while f < len(frames):
        g = f + 1
        while g < len(frames) and frames[g] == frames[f]:
            g += 1
        if frames[f] >= 0:
            starts.append(f * step), durations.append((g - f) * step), pitches.append(frames[f])
        f = g
    notes = make_notes(starts, durations, pitches, 80)
    return Score(tpq=480, tracks=[Track(notes=notes)], time_signatures=[TimeSignature(0, 4, 4)])


def csp_chords(score: Any, beats: int) -> tuple[tuple[int, ...], ...]:
    """The chord of each beat of a CSP harmonization: its lower three voices labelled."""
    from musegen.theory import ANALYSIS_CHORDS, CHORD_QUALITIES, best_chords

    weights = np.zeros((beats, 12))
    for track in score.tracks[1:]:
        for n in track.notes:
            a, b = int(n["start"]) // 480, -(-int(n["start"] + n["duration"]) // 480)
            weights[a : min(b, beats), n["pitch"] % 12] += 1
    best = best_chords(weights)
    out = []
    for k in best:
        if k < 0:
            out.append(())
            continue
        root, quality = ANALYSIS_CHORDS.labels[k]
        out.append(tuple((root + i) % 12 for i in CHORD_QUALITIES[quality]))
    return tuple(out)


def chord_benchmark(args: argparse.Namespace) -> int:
    from musegen.compose.csp import harmonize_csp
    from musegen.errors import MusegenError
    from musegen.metrics.harmonization import YEH_METRICS, Harmonization, yeh_metrics
    from musegen.models.chord_lstm import chord_pitch_classes
    from musegen.sampling.generators import load_generator
    from musegen.sampling.rl_chord import FRAMES_PER_BEAT, harmonization
    from musegen.train.rl_chord import FRAMES_PER_BEAT as DATA_FPB
    from musegen.train.rl_chord import nottingham

    base_ref, tuned_ref = args.chords.split(",")
    pieces = nottingham(args.split)[: args.chord_melodies]
    up = FRAMES_PER_BEAT // DATA_FPB
    models = {"base": load_generator(base_ref), "rl-chord": load_generator(tuned_ref)}
    rows: dict[str, list[dict[str, float]]] = {"human": [], "base": [], "rl-chord": [], "csp": []}
    failed, seconds = 0, {"base": 0.0, "rl-chord": 0.0, "csp": 0.0}
    for i, (melody, chords) in enumerate(pieces):
        frames = np.repeat(melody, up)
        human = tuple(chord_pitch_classes(int(c)) for c in chords)
        rows["human"].append(yeh_metrics(Harmonization(frames, FRAMES_PER_BEAT, human)))
        for name, gen in models.items():
            t = time.perf_counter()
            drawn = gen.chords(frames, 0, args.seed + i, args.temperature, 1)
            seconds[name] += time.perf_counter() - t
            rows[name].append(yeh_metrics(harmonization(frames, drawn, FRAMES_PER_BEAT)))
        t = time.perf_counter()
        try:
            satb = harmonize_csp(melody_score(frames, FRAMES_PER_BEAT))
            rows["csp"].append(
                yeh_metrics(Harmonization(frames, FRAMES_PER_BEAT, csp_chords(satb, len(chords))))
            )
        except MusegenError:
            failed += 1
        seconds["csp"] += time.perf_counter() - t
        print(f"  {i + 1}/{len(pieces)}", file=sys.stderr, end="\r")
    means = {
        who: {m: float(np.nanmean([r[m] for r in rs])) for m in YEH_METRICS}
        for who, rs in rows.items()
    }
    print(f"\n## RL-Chord on {len(pieces)} Nottingham {args.split} melodies (seed {args.seed}, "
          f"temperature {args.temperature}; CSP failed on {failed})\n")  # fmt: skip
    print("| metric | better | human | CSP | pretrained | RL-Chord | RL-Chord beats pretrained |")
    print("|---|---|---:|---:|---:|---:|---|")
    wins = 0
    for m, (_, higher) in YEH_METRICS.items():
        b, a = means["base"][m], means["rl-chord"][m]
        win = a > b if higher else a < b
        wins += win
        cells = [f"{means[w][m]:.3f}" for w in ("human", "csp", "base", "rl-chord")]
        print(
            f"| {m} | {'higher' if higher else 'lower'} | "
            + " | ".join(cells)
            + f" | {'yes' if win else 'no'} |"
        )
    print(f"\nRL-Chord beats its pretrained base on {wins} of 6; seconds: "
          f"{', '.join(f'{k} {v:.1f}' for k, v in seconds.items())}\n")  # fmt: skip
    for m, (_, higher) in YEH_METRICS.items():
        b, a = means["base"][m], means["rl-chord"][m]
        ratio = (a / b if higher else b / a) if a and b else None
        print(json.dumps({"benchmark": f"rl-chord vs pretrained: {m}", "ours": a, "peer": b,
                          "ratio": ratio, "unit": "value"}))  # fmt: skip
    return 0


def real_rows(real: list, bars: int) -> dict[str, Any]:
    """RL Tuner's rows of the real melodies, cut to ``bars`` bars as the overlap cuts them."""
    from musegen.evaluate.quality import excerpt
    from musegen.metrics.rewards import rl_tuner_table

    cut = [excerpt(s, bars) for s in real]
    return {**rl_tuner_table(cut), UNISON: unison_share(cut), FEATURE_MEAN: feature_means(cut)}


def feature_table(
    args: argparse.Namespace,
    tuned: str,
    before: dict[str, Any],
    after: dict[str, Any],
    real: dict[str, Any],
) -> None:
    """Each Yang-Lerch feature's overlap with the corpus (the overlap row is their mean), and
    each scalar feature's mean in both sets and in the real melodies: which feature a fall of
    the overlap comes from, and which way it moved."""
    print(f"\n| Yang-Lerch feature | overlap {args.base} | overlap {tuned} | change | "
          f"mean {args.base} | mean {tuned} | mean real |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    means_real = real.get(FEATURE_MEAN, {})
    for name, b in before[FEATURE_OA].items():
        a = after[FEATURE_OA].get(name, float("nan"))
        mb, ma = before[FEATURE_MEAN].get(name), after[FEATURE_MEAN].get(name)
        mr = means_real.get(name)
        cells = ["" if m is None else f"{m:.3f}" for m in (mb, ma, mr)]
        print(f"| {name} | {b:.3f} | {a:.3f} | {a - b:+.3f} | " + " | ".join(cells) + " |")


def report(
    args: argparse.Namespace,
    tuned: str,
    before: dict[str, Any],
    after: dict[str, Any],
    real: dict[str, Any],
) -> None:
    """The markdown table and the JSON lines of one tuned model against the base."""
    print(f"\n## {tuned} vs {args.base}: {args.num} melodies of {args.bars} bars, seed "
          f"{args.seed}, real melodies: {args.reference} {args.split}\n")  # fmt: skip
    from musegen.metrics.rewards import TABLE_ROWS

    rows = {name: (num, den) for name, num, den in TABLE_ROWS}
    print(f"| figure | {args.base} | {tuned} | change | 95% interval: points; relative | real melodies |")  # fmt: skip
    print("|---|---:|---:|---:|---|---:|")
    for fig in before:
        if fig in HIDDEN:
            continue
        b, a = before[fig], after[fig]
        change = (
            f"{100 * (a - b) / b:+.1f}%" if "NLL" in fig and b else f"{a - b:+.2f}"
        )  # NLL: relative
        r = f"{real[fig]:.3f}" if fig in real else ""
        if fig == COUNT:
            change = f"{a - b:+.0f}"
        if fig == PER_MELODY:
            change = f"{100 * (a - b) / b:+.1f}%" if b else ""
        interval = ""
        if fig in rows and args.bootstrap:
            lo, hi, rlo, rhi = change_interval(
                before[PIECES], after[PIECES], *rows[fig], args.bootstrap, args.seed
            )
            interval = f"{lo:+.2f} .. {hi:+.2f}; {rlo:+.0f}% .. {rhi:+.0f}%"
        print(f"| {fig} | {b:.3f} | {a:.3f} | {change} | {interval} | {r} |")
    feature_table(args, tuned, before, after, real)
    print()
    for fig in before:
        if fig in (COUNT, PER_MELODY, UNISON, *HIDDEN):  # context, not a figure to compare
            continue
        b, a = before[fig], after[fig]
        row = {"benchmark": f"rl {tuned} vs {args.base}: {fig}", "ours": a, "peer": b}
        higher = DIRECTION.get(fig, "overlap" in fig)
        if "C2ST" in fig:  # distance from 0.5, lower is better
            b, a = abs(b - 0.5), abs(a - 0.5)
        ratio = (a / b if higher else b / a) if a and b else None
        row |= {"ratio": None if ratio is None or not math.isfinite(ratio) else round(ratio, 3)}
        row["unit"] = "%" if fig in DIRECTION and "per piece" not in fig else "value"
        print(json.dumps(row), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default="folk", help="the original model (default: folk)")
    p.add_argument(
        "--tuned",
        default="folk-rl",
        help="the tuned model, or several comma-separated (the base measured once; default: folk-rl)",
    )
    p.add_argument("--num", type=int, default=100)
    p.add_argument("--bars", type=int, default=8)
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of every model's melodies (default: 1 on valid, 0 on test)",
    )
    p.add_argument(
        "--form",
        default="none",
        help="--form of every model's pieces (default none: what the networks write, with no "
        "planned sections; a model's default form would restate bars for both)",
    )
    p.add_argument("--split", default="valid", choices=("valid", "test"))
    p.add_argument("--data", default=str(ROOT / "data" / "folk-melody"))
    p.add_argument("--reference", default="folk", help="source of the real melodies")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--chords", metavar="BASE,TUNED", help="measure RL-Chord (see above)")
    p.add_argument("--chord-melodies", type=int, default=None, help="first N melodies")
    p.add_argument("--temperature", type=float, default=1.0, help="RL-Chord's sampling")
    p.add_argument(
        "--bootstrap",
        type=int,
        default=2000,
        help="resamples of the melodies for the 95%% intervals of the rule rows' changes "
        "(0: none; default 2000)",
    )
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = 0 if args.split == "test" else 1
    if args.chords:
        import torch

        torch.set_num_threads(args.threads)
        return chord_benchmark(args)

    import torch

    from musical_quality import cpu_name, load_reference

    torch.set_num_threads(args.threads)
    real = load_reference(args.reference, args.split)
    print(f"settings: {json.dumps(vars(args))}; CPU {cpu_name()}", file=sys.stderr)
    before = measure(args.base, args.base, args, real)
    corpus = real_rows(real, args.bars)
    for tuned in args.tuned.split(","):
        report(args, tuned, before, measure(tuned, tuned, args, real), corpus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
