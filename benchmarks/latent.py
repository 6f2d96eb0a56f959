"""Latent models (issue 20): MusicVAE reconstruction, interpolation, attribute vectors, and the
latent diffusion prior's self-similarity, on a held-out split of Essen folk melodies.

All figures come from one run on ``--split`` (choose on ``valid``, report ``test`` once) of a
dataset prepared with the ``melody`` tokenizer (``--data``, default ``data/folk-melody``):

* ``latent.reconstruction.2bar`` / ``.16bar``: accuracy per 16th step of decoding the
  posterior mean with sampling at temperature 1 (``.argmax``: the likeliest step), over
  non-overlapping held-out windows, each read alone (a note held into a window starts at its
  first step: :func:`musegen.models.vae_steps.cut_segment`). 2-bar: peer = the issue's target 0.90. 16-bar: ours =
  the hierarchical decoder, peer = a flat decoder of the same size and training.
  ``.2bar.teacher_forced``: the likeliest step given the true previous ones (next-step
  prediction, MusicVAE's other column). ``latent.vae.kl``: the KL per segment against the free
  nats, the active dims and teacher-forced accuracy with z = 0 (posterior-collapse checks).
* ``latent.interpolation.monotone``: held-out 2-bar pairs (A, B), 9 points on the slerp path,
  each decoded (likeliest step): the share of pairs whose distance to A (share of steps that
  differ) never falls along the path (peer: target 0.90). The path's ends are found as
  ``musegen latent interpolate`` finds them: the encoder's means refined (``--refine``
  gradient steps at most) to latents that decode to A and B exactly where such are found
  nearby; ``.monotone_encoder``: the ends at the encoder's means (no refinement);
  ``.ends_exact``: the share of held-out segments the refined latent decodes exactly (the
  encoder's mean: ``.ends_exact_encoder``). ``.spearman``: the mean rank
  correlation of that distance with the position on the path; ``.mean_curve``: 1 if the
  distance averaged over the pairs rises at every point (MusicVAE's figure 5 criterion);
  ``.monotone_decoded_a``: as ``.monotone`` with the distance to the decoded first point (0
  there by construction) instead of the data's A. The likeliest step is decoded, not a sample:
  two samples (T = 1) of the same latent differ in 5-15% of steps, more than the 3-5% by which
  the mean distance rises from one path point to the next, so the noise of sampling would be
  scored, not the path. "Never falls" lets two neighbouring points tie (decode alike, or differ
  from A in as many steps); beside it, ``.monotone_strict``: the share of pairs whose distance
  rises at every point (no ties), and ``.monotone_sampled``: as ``.monotone`` with each point
  sampled at T = 1 (independent draws per point).
* ``latent.interpolation.midpoint.{scale,range}``: midpoints' scale consistency (share of
  notes in the best-fitting major scale) and pitch range, as distance from the held-out
  segments' mean; peer = the midpoint of linear pitch interpolation in the piano roll (each
  step the mean of the two pitches, rounded, where both sound; the one that sounds
  elsewhere); ratio = peer / ours (> 1: ours is nearer the corpus).
* ``latent.attribute.{name}``: held-out segments encoded, decoded with and without +-1 times
  the attribute vector (the shipped ``attributes.json``, made from the train split): the share
  of (segment, sign) cases whose attribute moved the asked way (peer: target 0.80), and the
  mean change of the other attributes under +1 (a vector riding on another attribute shows).
* ``latent.selfsim.{pitch,duration}.{consistency,variance}.vs_{independent,folk}``: Mittal
  et al. (2021) framewise self-similarity: in 4-bar windows with a 2-bar hop, a Gaussian of
  the notes' pitches (durations); the overlapping area of consecutive windows' Gaussians; its
  mean and variance over a set against the held-out pieces' (``1 - |x - x_data| / x_data``).
  Ours: the diffusion prior's pieces; peer: its VAE's (``--prior-vae``) prior N(0, I) with
  independent latents, the same VAE's fitted prior (``latent_prior.json``, what ``generate``
  draws from; ``.vs_fitted``) where it has one, or the ``folk`` transformer (4/4), ``--bars``
  long, ``--pieces`` each, against held-out pieces at least that long, cut to it (``--real
  opening``, the default), or only the tunes of exactly that many units, whole (``--real
  whole``: what a tune of that length is; the openings of longer Essen tunes are slower, so
  they widen the set's spread of pace).

Prints JSON lines ``{"benchmark", "ours", "peer", "ratio", "unit"}`` (ratio > 1: we are better).

    .venv/bin/python benchmarks/latent.py --split valid
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from typing import Any

import numpy as np

from musegen.errors import MusegenError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/folk-melody")
    p.add_argument("--split", default="valid", choices=("valid", "test"))
    p.add_argument("--vae", default="folk-vae-recon", help="the 2-bar VAE of recon, interp, attr")
    p.add_argument("--prior-vae", default="folk-vae", help="the VAE whose latents --prior models")
    p.add_argument("--vae16", default="folk-vae-16bar")
    p.add_argument(
        "--flat16",
        default="runs/folk-vae-16bar-seg2-flat/best",
        help="the flat peer of --vae16 (its recipe: the folk-vae-16bar card)",
    )
    p.add_argument("--prior", default="latent-diffusion")
    p.add_argument("--folk", default="folk")
    p.add_argument("--windows", type=int, default=600, help="held-out windows per figure")
    p.add_argument("--pairs", type=int, default=100)
    p.add_argument("--pieces", type=int, default=32)
    p.add_argument("--bars", type=int, default=16)
    p.add_argument("--only", default="recon,interp,attr,selfsim")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--real", choices=("opening", "whole"), default="opening",
        help="selfsim: held-out tunes at least --bars units long cut to them, or of exactly --bars",
    )  # fmt: skip
    p.add_argument("--refine", type=int, default=100, help="refinement steps of a path's ends")
    args = p.parse_args(argv)

    import torch

    from musegen.data.dataset import load_prepared

    torch.set_num_threads(1)
    data = load_prepared(args.data)
    parts = set(args.only.split(","))
    started = time.perf_counter()
    if "recon" in parts:
        reconstruction(args, data)
    if "interp" in parts:
        interpolation(args, data)
    if "attr" in parts:
        attributes(args, data)
    if "selfsim" in parts:
        self_similarity(args, data)
    print(f"# {time.perf_counter() - started:.0f} s", flush=True)
    return 0


def emit(name: str, ours: float, peer: float, ratio: float, unit: str, **extra: Any) -> None:
    row = {"benchmark": name, "ours": round(ours, 4), "peer": round(peer, 4)}
    row |= {"ratio": round(ratio, 4), "unit": unit, **extra}
    print(json.dumps(row), flush=True)


def windows(vae: Any, data: Any, split: str, most: int) -> np.ndarray:
    """Non-overlapping held-out windows of the VAE's length, every k-th for ``most``."""
    from musegen.train.vae import melody_segments

    rows, _ = melody_segments(data.split(split), data.tokenizer, vae.config, vae.config.n_bars)
    return rows[:: max(1, math.ceil(len(rows) / most))]


def decode_all(vae: Any, z: np.ndarray, temperature: float, seed: int) -> np.ndarray:
    return np.vstack(
        [vae.decode_steps(z[i : i + 128], temperature, seed + i) for i in range(0, len(z), 128)]
    )


def accuracy(vae: Any, rows: np.ndarray, temperature: float, seed: int) -> float:
    from musegen.sampling.latent import encode_rows

    out = decode_all(vae, encode_rows(vae, rows), temperature, seed)
    return float((out == rows).mean())


# ---------------------------------------------------------------------- reconstruction


def reconstruction(args: argparse.Namespace, data: Any) -> None:
    from musegen.sampling.latent import LatentVAE

    vae = LatentVAE.load(args.vae)
    rows = windows(vae, data, args.split, args.windows)
    unit = f"accuracy per 16th step, {len(rows)} {args.split} windows"
    for label, t in (("", 1.0), (".argmax", 0.0)):
        acc = accuracy(vae, rows, t, args.seed)
        emit(f"latent.reconstruction.2bar{label}", acc, 0.90, acc / 0.90, unit + " (peer: target)")
    forced, kl, active, blind = latent_use(vae, rows)
    emit("latent.reconstruction.2bar.teacher_forced", forced, 0.90, forced / 0.90,
         unit + ", likeliest step given the true previous steps (peer: target)")  # fmt: skip
    emit("latent.vae.kl", kl, vae.config.free_bits, kl / vae.config.free_bits,
         f"nats per segment, {active} of {vae.config.latent} dims active (variance of the mean "
         f"> 0.01); teacher-forced accuracy with z = 0: {blind:.3f} (peer: the free bits)")  # fmt: skip
    try:
        hier, flat = LatentVAE.load(args.vae16), LatentVAE.load(args.flat16)
    except MusegenError as e:  # the flat peer is a run folder of the folk-vae-16bar card
        print(f"latent.py: 16-bar reconstruction skipped: {e}", file=sys.stderr)
        return
    rows16 = windows(hier, data, args.split, args.windows)
    unit = f"accuracy per 16th step, {len(rows16)} {args.split} 16-bar windows"
    for label, t in (("", 1.0), (".argmax", 0.0)):
        a, b = accuracy(hier, rows16, t, args.seed), accuracy(flat, rows16, t, args.seed)
        emit(f"latent.reconstruction.16bar{label}", a, b, a / b, unit + " (peer: flat decoder)")


def latent_use(vae: Any, rows: np.ndarray) -> tuple[float, float, int, float]:
    """Posterior-collapse checks: teacher-forced accuracy (likeliest step given the true
    previous ones) with ``z`` = the posterior mean, the mean KL per segment, the active dims
    (variance of the mean over the rows > 0.01), and teacher-forced accuracy with ``z`` = 0."""
    import torch

    from musegen.models.vae import kl_divergence

    x = torch.as_tensor(rows)
    with torch.no_grad():
        mu, sigma = vae.model.encode(x)
        forced = (vae.model.logits(x, mu).argmax(-1) == x).float().mean().item()
        blind = (vae.model.logits(x, torch.zeros_like(mu)).argmax(-1) == x).float().mean().item()
        kl = kl_divergence(mu, sigma).mean().item()
        active = int((mu.var(0) > 0.01).sum())
    return forced, kl, active, blind


# ---------------------------------------------------------------------- interpolation


def scale_consistency(steps: np.ndarray) -> float:
    """Share of notes in the best-fitting major scale (Mogren 2016); NaN without notes."""
    pitches = steps[steps >= 2] - 2
    if not len(pitches):
        return math.nan
    major = np.array([0, 2, 4, 5, 7, 9, 11])
    pcs = pitches % 12
    return max(float(np.isin(pcs, (major + k) % 12).mean()) for k in range(12))


def sounding_pitch(steps: np.ndarray) -> np.ndarray:
    """The class of the pitch sounding at each step (-1: silence)."""
    out = np.full(len(steps), -1)
    current = -1
    for i, s in enumerate(steps):
        current = s if s >= 2 else (current if s == 1 else -1)
        out[i] = current
    return out


def roll_midpoint(a: np.ndarray, b: np.ndarray, voices: int = 1) -> np.ndarray:
    """Linear pitch interpolation at 1/2 in the piano roll (see the module docstring); of
    several interleaved voices, each voice's line with the same voice's."""
    if voices > 1:
        ga, gb = a.reshape(-1, voices), b.reshape(-1, voices)
        lines = [roll_midpoint(ga[:, v], gb[:, v]) for v in range(voices)]
        return np.stack(lines, axis=1).reshape(-1)
    pa, pb = sounding_pitch(a), sounding_pitch(b)
    onset = (a >= 2) | (b >= 2)
    both = (pa >= 0) & (pb >= 0)
    pitch = np.where(both, np.rint((pa + pb) / 2), np.maximum(pa, pb)).astype(int)
    out = np.where(pitch >= 0, 1, 0)
    prev = np.concatenate([[-1], pitch[:-1]])
    starts = (pitch >= 0) & (onset | (pitch != prev))
    out[starts] = pitch[starts]
    return out


def interpolation(args: argparse.Namespace, data: Any) -> None:
    from scipy.stats import spearmanr

    from musegen.sampling.latent import LatentVAE, encode_rows, pitch_range, slerp

    vae = LatentVAE.load(args.vae)
    rows = windows(vae, data, args.split, args.windows)
    rows = rows[[scale_consistency(r) == scale_consistency(r) for r in rows]]  # with notes
    rng = np.random.default_rng(args.seed)
    pairs = [rng.choice(len(rows), 2, replace=False) for _ in range(args.pairs)]
    means = encode_rows(vae, rows)
    mu = encode_rows(vae, rows, refine=args.refine) if args.refine else means
    exact = [float((decode_all(vae, z, 0.0, args.seed) == rows).all(1).mean()) for z in (mu, means)]
    monotone, encoder, strict, sampled, decoded_a = 0, 0, 0, 0, 0
    rhos, mids, base, curves = [], [], [], []
    for k, (i, j) in enumerate(pairs):
        path = slerp(mu[i], mu[j], 9)
        out = vae.decode_steps(path, 0.0, args.seed + k)
        dist = (out != rows[i]).mean(axis=1)
        monotone += bool(np.all(np.diff(dist) >= 0))
        plain = vae.decode_steps(slerp(means[i], means[j], 9), 0.0, args.seed + k)
        encoder += bool(np.all(np.diff((plain != rows[i]).mean(axis=1)) >= 0))
        strict += bool(np.all(np.diff(dist) > 0))
        drawn = vae.decode_steps(path, 1.0, args.seed + k)
        sampled += bool(np.all(np.diff((drawn != rows[i]).mean(axis=1)) >= 0))
        decoded_a += bool(np.all(np.diff((out != out[0]).mean(axis=1)) >= 0))
        curves.append(dist)
        rho = spearmanr(np.arange(9), dist).statistic
        rhos.append(0.0 if rho != rho else float(rho))
        mids.append(out[4])
        base.append(roll_midpoint(rows[i], rows[j], vae.config.voices))
    n = len(pairs)
    emit("latent.interpolation.monotone", monotone / n, 0.90, monotone / n / 0.90,
         f"share of {n} {args.split} pairs, ends "
         f"{f'refined by up to {args.refine} steps' if args.refine else 'at the means'} "
         "(peer: target)")  # fmt: skip
    emit("latent.interpolation.monotone_encoder", encoder / n, 0.90, encoder / n / 0.90,
         f"share of {n} {args.split} pairs, ends at the encoder's means (peer: target)")  # fmt: skip
    for label, share in zip(("", "_encoder"), exact, strict=True):
        emit(f"latent.interpolation.ends_exact{label}", share, 1.0, share,
             f"share of {len(rows)} {args.split} segments whose path end decodes exactly"
             f"{' (encoder mean)' if label else ''}")  # fmt: skip
    emit("latent.interpolation.monotone_strict", strict / n, 0.90, strict / n / 0.90,
         f"share of {n} {args.split} pairs whose distance to A rises at every point, no ties "
         "(peer: target)")  # fmt: skip
    emit("latent.interpolation.monotone_sampled", sampled / n, 0.90, sampled / n / 0.90,
         f"share of {n} {args.split} pairs whose distance to A never falls, each point sampled "
         "at T = 1 (peer: target)")  # fmt: skip
    emit("latent.interpolation.monotone_decoded_a", decoded_a / n, 0.90, decoded_a / n / 0.90,
         f"share of {n} {args.split} pairs whose distance to the decoded A (the path's first "
         "point) never falls (peer: target)")  # fmt: skip
    curve = np.mean(curves, axis=0)
    rising = float(np.all(np.diff(curve) >= 0))
    emit("latent.interpolation.mean_curve", rising, 1.0, rising,
         "1 if the mean distance to A over the pairs rises at every point "
         f"({' '.join(f'{d:.3f}' for d in curve)})")  # fmt: skip
    emit("latent.interpolation.spearman", float(np.mean(rhos)), 1.0, float(np.mean(rhos)),
         "mean rank correlation of distance to A with path position")  # fmt: skip
    for name, f in (("scale", scale_consistency), ("range", pitch_range)):  # all voices' pitches
        corpus = np.nanmean([f(r) for r in rows])
        ours = abs(np.nanmean([f(m) for m in mids]) - corpus)
        peer = abs(np.nanmean([f(m) for m in base]) - corpus)
        emit(f"latent.interpolation.midpoint.{name}", float(ours), float(peer),
             float(peer / max(ours, 1e-9)),
             f"|midpoints' mean - held-out mean {corpus:.3f}| (peer: piano-roll linear)")  # fmt: skip


# ---------------------------------------------------------------------- attributes


def attributes(args: argparse.Namespace, data: Any) -> None:
    from musegen.sampling.latent import LatentVAE, attribute_values, encode_rows

    vae = LatentVAE.load(args.vae)
    vectors = vae.load_attributes()
    rows = windows(vae, data, args.split, args.windows)
    mu = encode_rows(vae, rows)
    base = decode_all(vae, mu, 0.0, args.seed)
    shape = (vae.config.steps_per_bar, vae.config.voices)
    base_values = {name: attribute_values(base, name, *shape) for name in vectors}
    for name, v in vectors.items():
        before = base_values[name]
        raised = decode_all(vae, mu + v, 0.0, args.seed)
        up = attribute_values(raised, name, *shape)
        down = attribute_values(decode_all(vae, mu - v, 0.0, args.seed), name, *shape)
        share = float(((up > before).mean() + (down < before).mean()) / 2)
        # what else the vector moves: a vector that only rides on another attribute shows here
        others = ", ".join(
            f"{o} {float((attribute_values(raised, o, *shape) - base_values[o]).mean()):+.2f}"
            for o in vectors
            if o != name
        )
        emit(f"latent.attribute.{name}", share, 0.80, share / 0.80,
             f"share of {len(rows)} {args.split} segments x (+1, -1) moved the asked way "
             f"(up {float((up > before).mean()):.3f}, down {float((down < before).mean()):.3f}; "
             f"mean change of the others under +1: {others}; peer: target)")  # fmt: skip


# ---------------------------------------------------------------------- self-similarity


def overlap(m1: float, v1: float, m2: float, v2: float) -> float:
    """Overlapping area of two normal densities (numerically)."""
    s1, s2 = math.sqrt(max(v1, 1e-6)), math.sqrt(max(v2, 1e-6))
    lo, hi = min(m1 - 6 * s1, m2 - 6 * s2), max(m1 + 6 * s1, m2 + 6 * s2)
    x = np.linspace(lo, hi, 2001)
    f = np.exp(-0.5 * ((x - m1) / s1) ** 2) / (s1 * math.sqrt(2 * math.pi))
    g = np.exp(-0.5 * ((x - m2) / s2) ** 2) / (s2 * math.sqrt(2 * math.pi))
    return float(np.trapezoid(np.minimum(f, g), x))


def note_table(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start step, pitch class, duration in steps) of every note of a class row."""
    starts = np.flatnonzero(steps >= 2)
    durs = []
    for s in starts:
        e = s + 1
        while e < len(steps) and steps[e] == 1:
            e += 1
        durs.append(e - s)
    return starts, steps[starts] - 2, np.array(durs)


def window_overlaps(steps: np.ndarray, bar: int = 16) -> dict[str, list[float]]:
    """OA of consecutive 4-bar windows (2-bar hop) for pitch and duration."""
    starts, pitch, dur = note_table(steps)
    stats: dict[str, list[tuple[float, float]]] = {"pitch": [], "duration": []}
    for lo in range(0, len(steps) - 4 * bar + 1, 2 * bar):
        sel = (starts >= lo) & (starts < lo + 4 * bar)
        if sel.sum() < 2:
            stats["pitch"].append((math.nan, math.nan))
            stats["duration"].append((math.nan, math.nan))
            continue
        stats["pitch"].append((float(pitch[sel].mean()), float(pitch[sel].var())))
        stats["duration"].append((float(dur[sel].mean()), float(dur[sel].var())))
    out: dict[str, list[float]] = {}
    for key, seq in stats.items():
        out[key] = [
            overlap(*a, *b)
            for a, b in itertools.pairwise(seq)
            if not (math.isnan(a[0]) or math.isnan(b[0]))
        ]
    return out


def set_overlaps(pieces: list[np.ndarray]) -> dict[str, tuple[float, float]]:
    pooled: dict[str, list[float]] = {"pitch": [], "duration": []}
    for steps in pieces:
        for key, values in window_overlaps(steps).items():
            pooled[key] += values
    return {k: (float(np.mean(v)), float(np.var(v))) for k, v in pooled.items()}


def score_steps(vae: Any, score: Any) -> np.ndarray:
    return vae.steps(score)


def self_similarity(args: argparse.Namespace, data: Any) -> None:
    from musegen.models.vae_steps import cells_to_steps
    from musegen.sampling.generators import GenerateRequest, load_generator
    from musegen.sampling.latent import LatentVAE
    from musegen.train.vae import piece_units

    vae = LatentVAE.load(args.prior_vae)
    need = args.bars * vae.config.steps_per_bar
    real = []
    for ids in data.split(args.split):
        units = piece_units(ids, data.tokenizer, vae.config.steps_per_bar)
        if units is None or len(units) < args.bars:
            continue
        if args.real == "opening" or len(units) == args.bars:
            real.append(cells_to_steps(units[: args.bars].reshape(-1), data.tokenizer, vae.config))
    truth = set_overlaps(real)
    request = GenerateRequest(num=args.pieces, seed=args.seed, bars=args.bars)
    sets: dict[str, list[np.ndarray]] = {}
    runs = [("diffusion", args.prior, True), ("independent", args.prior_vae, False)]
    if vae.prior_path().is_file():  # as the generator decides
        runs.append(("fitted", args.prior_vae, True))
    for label, ref, fitted in runs:
        generator = load_generator(ref)
        generator.fitted_prior = fitted  # "independent": the VAE's own prior N(0, I)
        sets[label] = [score_steps(vae, s)[:need] for s in generator.generate(request).pieces]
    folk = load_generator(args.folk)
    folk_request = GenerateRequest(
        num=args.pieces, seed=args.seed, bars=args.bars, time_signature="4/4", ending="free"
    )
    sets["folk"] = []
    for s in folk.generate(folk_request).pieces:
        try:
            sets["folk"].append(score_steps(vae, s)[:need])
        except MusegenError:
            continue
    found = {k: set_overlaps(v) for k, v in sets.items()}
    unit = (
        f"1 - |x - x_data| / x_data, {args.pieces} pieces of {args.bars} bars, {len(real)} real"
        f" ({'openings' if args.real == 'opening' else 'whole tunes'})"
    )
    for feature in ("pitch", "duration"):
        for i, stat in enumerate(("consistency", "variance")):
            x_data = truth[feature][i]
            score = {
                k: max(0.0, 1 - abs(v[feature][i] - x_data) / x_data) for k, v in found.items()
            }
            for peer in [k for k in found if k != "diffusion"]:
                emit(f"latent.selfsim.{feature}.{stat}.vs_{peer}", score["diffusion"], score[peer],
                     score["diffusion"] / max(score[peer], 1e-9), unit,
                     raw={k: round(v[feature][i], 4) for k, v in found.items()} | {"data": round(x_data, 4)})  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
