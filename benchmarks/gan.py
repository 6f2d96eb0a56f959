"""The GAN models against their data and a per-cell Bernoulli baseline, in one run.

For MuseGAN (JSB chorales as four tracks S/A/T/B) and MidiNet (Nottingham melodies over
their chords), on ``--samples`` pieces each:

* **paper metrics** (:mod:`musegen.metrics.musegan`): empty-bar rate, used pitch classes per
  bar, qualified-note rate, drum-pattern rate (n/a: no drums in either set) and tonal distance
  between tracks (MidiNet: melody vs the chord track), on the model's samples, on as many
  training items (the data's own values) and on a baseline drawn cell by cell, independently,
  with each cell's on-rate in the training data. Our grids have 8 steps a bar (eighth notes),
  so the paper's qualified-note threshold (a 32nd note) passes every note; QN here counts
  notes of at least a quarter (two steps), the same idea (no fragments) at our grid.
* **mode collapse**: the mean intra-set Yang–Lerch distance (every pair of pieces, per feature
  of :mod:`musegen.metrics.stats`, averaged over features) of the samples over the data's.
* **MidiNet chord agreement**: each bar's melody alone labelled by the project's chord
  labeller (:func:`musegen.metrics.describe.bar_chords`: root + quality) equals the chord it
  was conditioned on; also the share of the melody's sounding time on chord tones, and the
  share of bars whose melody spends at least half its sounding time on the chord's tones (a
  test a single line can pass: the labeller asks a melody to spell its chord, which the data's
  own melodies do in about half their bars). The data's melodies, measured the same way
  against their own bars' chords, are the ceiling.

Prints JSON lines ``{"benchmark", "ours", "peer", "ratio", "unit", ...}``: ``peer`` is the
Bernoulli baseline, ``data`` the training set's value; for the metrics ``ratio`` = baseline's
distance to the data / ours (> 1: ours is closer).

Run: ``python benchmarks/gan.py`` (shipped models) or ``--musegan runs/X --midinet runs/Y``;
``--repeats 20`` reads each figure over 20 draws (mean, spread and how many draws pass), since
one draw of 100 samples moves e.g. MidiNet's variety figure by about 0.05;
``--split valid`` takes the data (and MidiNet's conditioning chords) from the valid split, to
choose between runs without looking at the test split.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

QN_QUARTERS = 1.0


_collecting: list[dict[str, Any]] | None = None  # rows of the draw being repeated


def emit(row: dict[str, Any]) -> None:
    if _collecting is not None and "benchmark" in row:
        _collecting.append(row)
        return
    print(json.dumps(row), flush=True)


def repeated(run: Callable[[int], None], seed: int, repeats: int) -> None:
    """``run(seed)``, or with ``repeats`` > 1 ``run`` for the seeds ``seed .. seed + repeats
    - 1`` (each another draw of samples, excerpts and chords) and each benchmark's figures
    as their mean over the draws: ``ours`` (with ``sd``, ``min``, ``max``, ``per_seed``),
    ``peer``, ``data`` and ``ratio`` (the mean of the draws' ratios), and for each yes/no
    field the number of draws that said yes."""
    global _collecting
    if repeats <= 1:
        run(seed)
        return
    rows: dict[str, list[dict[str, Any]]] = {}
    for s in range(seed, seed + repeats):
        _collecting = []
        try:
            run(s)
        finally:
            got, _collecting = _collecting, None
        for row in got:
            rows.setdefault(row["benchmark"], []).append(row)
    for name, draws in rows.items():
        emit(summary_row(name, draws, seed))


def summary_row(name: str, draws: list[dict[str, Any]], seed: int) -> dict[str, Any]:
    """One benchmark's rows from several draws as one row (see :func:`repeated`)."""

    def numbers(key: str) -> list[float]:
        return [float(d[key]) for d in draws if isinstance(d.get(key), int | float)]

    out: dict[str, Any] = {"benchmark": name}
    ours = numbers("ours")
    for key in ("ours", "peer", "data", "ratio"):
        values = numbers(key)
        out[key] = _r(float(np.mean(values))) if values else None
    if len(ours) > 1:
        out["sd"] = _r(float(np.std(ours, ddof=1)))
        out.update(min=_r(min(ours)), max=_r(max(ours)), per_seed=[_r(x) for x in ours])
    for key in sorted({k for d in draws for k, v in d.items() if isinstance(v, bool)}):
        out[key] = f"{sum(d.get(key) is True for d in draws)}/{len(draws)}"
    out["unit"] = f"{draws[0].get('unit', '')}; mean of {len(draws)} draws, seeds {seed}.."
    out["unit"] += f"{seed + len(draws) - 1}"
    return out


def metric_rows(
    model: str, sets: dict[str, list[Any]], n_bars: int, pairs: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    from musegen.metrics.musegan import set_metrics

    values = {k: set_metrics(v, n_bars=n_bars, min_quarters=QN_QUARTERS) for k, v in sets.items()}
    unit = "value (peer: per-cell Bernoulli baseline)"
    return [
        compare_row(
            f"gan/{model}/{name}", *(values[k][name] for k in ("data", "ours", "baseline")), unit
        )
        for name in values["data"]
    ]


def compare_row(benchmark: str, data: float, ours: float, base: float, unit: str) -> dict[str, Any]:
    """A metric of the model's samples against the data's value and the baseline's: ratio =
    the baseline's distance to the data over ours (> 1: ours is closer)."""
    d_ours, d_base = abs(ours - data), abs(base - data)
    ratio = d_base / d_ours if d_ours > 0 else (math.inf if d_base > 0 else 1.0)
    return {
        "benchmark": benchmark,
        "ours": _r(ours),
        "peer": _r(base),
        "data": _r(data),
        "ratio": _r(ratio),
        "within_20pct": None if math.isnan(data) else bool(d_ours <= 0.2 * abs(data)),
        "closer_than_baseline": None if math.isnan(data) else bool(d_ours < d_base),
        "unit": unit,
    }


def _r(x: float) -> float | None:
    return (
        None
        if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x)))
        else round(float(x), 4)
    )


def intra_distance(scores: list[Any]) -> dict[str, float]:
    """Mean pairwise distance per Yang–Lerch feature within one set."""
    from musegen.evaluate.compare import pairwise_distances
    from musegen.metrics.stats import FEATURES, compute_features

    feats = [compute_features(s) for s in scores]
    out = {}
    for name in FEATURES:
        if name in ("bar_similarity_matrix", "pitch_class_transition_matrix"):
            continue  # sizes differ between pieces
        rows = [np.ravel(np.asarray(f[name], float)) for f in feats]
        rows = [r for r in rows if np.all(np.isfinite(r))]
        if len(rows) > 2 and len({len(r) for r in rows}) == 1:
            out[name] = float(pairwise_distances(np.stack(rows)).mean())
    return out


def collapse_row(model: str, ours: list[Any], data: list[Any]) -> dict[str, Any]:
    a, b = intra_distance(ours), intra_distance(data)
    ratios = {k: a[k] / b[k] for k in a if k in b and b[k] > 0}
    mean = float(np.mean(list(ratios.values())))
    return {
        "benchmark": f"gan/{model}/intra_set_distance",
        "ours": round(mean, 4),
        "peer": 0.8,
        "ratio": round(mean / 0.8, 4),
        "unit": "samples' mean intra-set distance / data's, averaged over features (target >= 0.8)",
        "median": round(float(np.median(list(ratios.values()))), 4),
        "features_at_least_0.8": f"{sum(v >= 0.8 for v in ratios.values())}/{len(ratios)}",
        "per_feature": {k: round(v, 3) for k, v in sorted(ratios.items())},
    }


def bernoulli(marginals: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return (rng.random((n, *marginals.shape)) < marginals).astype(np.uint8)


def musegan(ref: str, n: int, seed: int, sample: bool = False, split: str = "train") -> None:
    import torch

    from musegen.models import load_model
    from musegen.models.pretrained import resolve_model
    from musegen.sampling.gan import cells_to_score
    from musegen.train.gan import gan_items

    model, meta = load_model(resolve_model(ref))
    c = model.config
    items = gan_items(model, meta["data"], split).arrays["real"]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(items), size=min(n, len(items)), replace=False)
    with torch.no_grad():
        z = model.latent(n, generator=torch.Generator().manual_seed(seed))
        g = torch.Generator().manual_seed(seed + 1)
        fake = model.draw(model.fake(z, {}), sample=sample, generator=g).numpy()
    base = bernoulli(items.mean(0), n, rng)
    spq = c.steps // 4

    def scores(cells: np.ndarray) -> list[Any]:
        return [cells_to_score(x, spq, c.low_pitch) for x in cells]

    sets = {"data": scores(items[pick]), "ours": scores(fake), "baseline": scores(base)}
    for row in metric_rows("musegan", sets, c.n_bars):
        emit(row)
    emit(collapse_row("musegan", sets["ours"], sets["data"]))


def midinet(
    ref: str, n: int, seed: int, sample: bool = False, bars: int = 8, split: str = "train",
    noise: str | None = None, tries: int | None = None, register: str | None = None,
) -> None:  # fmt: skip
    """MidiNet's melodies over the chords of ``n`` 8-bar excerpts of ``split`` (``noise``:
    "bar" or "piece", default the model's ``piece_noise``; ``tries``: draws per bar until the
    labeller names its chord, default the model's ``sampling.chord_tries``, else 1;
    ``register``: "LOW,HIGH" (MIDI) or "off", default the model's ``sampling.register``)."""
    import torch

    from musegen.data.sources import get_source
    from musegen.models import load_model
    from musegen.models.pretrained import resolve_model
    from musegen.sampling.gan import cells_to_score, chord_track, midinet_bars
    from musegen.train.gan import piece_bars

    model, meta = load_model(resolve_model(ref))
    c = model.config
    noise = noise or ("piece" if c.piece_noise else "bar")
    rolls = get_source(meta["data"]["source"], root=meta["data"]["root"]).rolls()[split]
    excerpts = []  # (melody bars [bars, steps, P], chords)
    for roll in rolls:
        cells, labels = piece_bars(roll, c.steps, c.low_pitch, c.n_pitches)
        if len(cells) >= bars and all(labels[:bars]) and cells[:bars].any(axis=(1, 2)).all():
            excerpts.append((cells[:bars], labels[:bars]))
    rng = np.random.default_rng(seed)
    excerpts = [excerpts[i] for i in rng.choice(len(excerpts), min(n, len(excerpts)), False)]
    n = len(excerpts)
    chords = [ch for _, ch in excerpts]
    if tries is None:
        tries = int((meta.get("sampling") or {}).get("chord_tries", 1))
    span = (meta.get("sampling") or {}).get("register")
    if register is not None:
        span = None if register == "off" else [int(x) for x in register.split(",")]
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        fake = midinet_bars(model, chords, g, sample=sample, piece_noise=noise == "piece",
                            tries=tries, register=span)  # [n, bars, steps, P]  # fmt: skip
    data = np.stack([m for m, _ in excerpts])
    marg = np.concatenate([m for m, _ in excerpts]).mean(0)  # per-cell on-rate of a bar
    base = bernoulli(np.broadcast_to(marg, data.shape[1:]), n, rng)

    def score(cells: np.ndarray, ch: list[Any]) -> Any:
        s = cells_to_score(cells.reshape(1, -1, c.n_pitches), c.steps_per_quarter, c.low_pitch,
                           names=("Melody",))  # fmt: skip
        s.tracks.append(chord_track(ch, 4 * s.tpq))
        return s

    sets = {
        k: [score(x, ch) for x, ch in zip(v, chords, strict=True)]
        for k, v in (("data", data), ("ours", fake), ("baseline", base))
    }
    emit({"settings": {"midinet_noise": noise, "split": split, "chord_tries": tries,
                       "register": span}})  # fmt: skip
    for row in metric_rows("midinet", sets, bars):
        emit(row)
    melodies = {k: [_melody_only(s) for s in v] for k, v in sets.items()}
    emit(collapse_row("midinet", melodies["ours"], melodies["data"]))
    agree, tones, fitting = {}, {}, {}
    for k, scores in melodies.items():
        agree[k], tones[k], fitting[k] = chord_fit(scores, chords)
    units = {
        "chord_agreement": "share of bars whose melody alone is labelled as the conditioning "
        "chord (target 0.8; data: the melodies' own ceiling)",
        "chord_tone_share": "share of the melody's sounding time on tones of the bar's chord",
        "chord_tone_bars": "share of bars whose melody sounds on the chord's tones at least half "
        "its sounding time (a melody's test of fitting the chord; data: the melodies' own)",
    }
    shape = {k: melody_shape(v) for k, v in melodies.items()}
    for name, unit in SHAPE_UNITS.items():
        emit(
            compare_row(
                f"gan/midinet/{name}", *(shape[k][name] for k in ("data", "ours", "baseline")),
                unit,
            )
        )  # fmt: skip
    for (name, unit), values in zip(units.items(), (agree, tones, fitting), strict=True):
        emit(
            {
                "benchmark": f"gan/midinet/{name}",
                "ours": round(values["ours"], 4),
                "peer": round(values["baseline"], 4),
                "data": round(values["data"], 4),
                "ratio": _r(values["ours"] / values["baseline"]) if values["baseline"] else None,
                "unit": unit,
                "split": split,
            }
        )


SHAPE_UNITS = {
    "top_octave_share": "share of the melody's sounding time at or above MIDI 84 (C6)",
    "mean_pitch": "duration-weighted mean MIDI pitch of the melody",
    "mean_leap": "mean absolute interval between consecutive melody notes (semitones)",
}


def melody_shape(scores: list[Any]) -> dict[str, float]:
    """Register and motion of melody-only ``scores``, pooled over every note: the share of
    sounding time at or above C6, the duration-weighted mean pitch, the mean absolute leap
    between consecutive notes of a piece."""
    high, mean, total, leaps = 0.0, 0.0, 0.0, []
    for s in scores:
        notes = s.tracks[0].notes
        pitch = notes["pitch"].astype(np.float64)
        d = notes["duration"].astype(np.float64)
        total += d.sum()
        high += d[pitch >= 84].sum()
        mean += (d * pitch).sum()
        leaps.extend(np.abs(np.diff(pitch[np.argsort(notes["start"], kind="stable")])))
    return {
        "top_octave_share": high / total if total else math.nan,
        "mean_pitch": mean / total if total else math.nan,
        "mean_leap": float(np.mean(leaps)) if leaps else math.nan,
    }


def chord_fit(scores: list[Any], chords: list[list[Any]]) -> tuple[float, float, float]:
    """Over every bar of melody-only ``scores`` against the bars' conditioning ``chords``:
    the share labelled as the chord (:func:`~musegen.metrics.describe.bar_chords`, root and
    quality), the share of sounding time on chord tones, and the share of bars with at least
    half their sounding time on chord tones (a silent bar fits no chord)."""
    from musegen.metrics.describe import bar_chords

    hits, total, fits, on, sounding = 0, 0, 0, 0.0, 0.0
    for s, ch in zip(scores, chords, strict=True):
        labels = bar_chords(s)
        notes = s.tracks[0].notes
        bar_of = notes["start"] // (4 * s.tpq)
        for b, want in enumerate(ch):
            total += 1
            got = labels[b] if b < len(labels) else None
            hits += got == type(want)(want.root, want.quality, want.root).name
            here = bar_of == b
            d = notes["duration"][here].astype(np.float64)
            tone = np.isin(notes["pitch"][here] % 12, list(want.pitch_classes))
            fits += bool(d.sum() > 0 and d[tone].sum() >= 0.5 * d.sum())
            sounding += d.sum()
            on += d[tone].sum()
    share = on / sounding if sounding else math.nan
    return hits / max(total, 1), share, fits / max(total, 1)


CRNN_METRICS = {  # Mogren 2016's measures, by the project's statistics (musegen.metrics.stats)
    "polyphony": "polyphony_rate",  # share of time with two or more notes sounding
    "scale_consistency": "scale_consistency",
    "repetitions": "repetition_rate",  # share of bars repeating an earlier one
    "tone_span": "pitch_range",  # semitones, lowest to highest
}


def crnngan(ref: str, n: int, seed: int, split: str = "train") -> None:
    """C-RNN-GAN's note sequences (``length`` notes of onset gap, duration, pitch) against as
    many training sequences and a baseline that draws every (position, feature) value on its
    own from the data's values there: the per-cell independent baseline of note features."""
    import torch

    from musegen.metrics import stats
    from musegen.models import load_model
    from musegen.models.gan.crnngan import features_to_score
    from musegen.models.pretrained import resolve_model
    from musegen.train.gan import gan_items

    model, meta = load_model(resolve_model(ref))
    items = gan_items(model, meta["data"], split).arrays["real"]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(items), size=min(n, len(items)), replace=False)
    with torch.no_grad():
        z = model.latent(n, generator=torch.Generator().manual_seed(seed))
        fake = model.draw(model.fake(z, {})).numpy()  # the three note features
    length, features = items.shape[1:]
    rows = rng.integers(0, len(items), size=(n, length, features))
    base = items[rows, np.arange(length)[None, :, None], np.arange(features)[None, None, :]]
    mono = model.config.monophonic  # all three written as the model writes: one line
    sets = {
        "data": [features_to_score(x, monophonic=mono) for x in items[pick]],
        "ours": [features_to_score(x, monophonic=mono) for x in fake],
        "baseline": [features_to_score(x, monophonic=mono) for x in base],
    }
    unit = "mean over pieces where defined (peer: independent per-cell baseline)"
    for name, fn in CRNN_METRICS.items():
        data, ours, peer = (
            float(np.nanmean([getattr(stats, fn)(x) for x in sets[k]]))
            for k in ("data", "ours", "baseline")
        )
        emit(compare_row(f"gan/crnngan/{name}", data, ours, peer, unit))
    emit(collapse_row("crnngan", sets["ours"], sets["data"]))


def _melody_only(score: Any) -> Any:
    from musegen.score import Score

    return Score(score.tpq, score.tracks[:1], time_signatures=score.time_signatures)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--musegan", default="musegan", help="model (shipped name or run folder)")
    p.add_argument("--midinet", default="midinet", help="model (shipped name or run folder)")
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        metavar="N",
        help="measure N draws (seeds --seed, --seed + 1, ...) and give each figure's mean and "
        "spread: one draw of 100 samples moves the variety figure by about 0.05",
    )
    p.add_argument("--crnngan", default="crnngan", help="model (shipped name or run folder)")
    p.add_argument("--only", choices=("musegan", "midinet", "crnngan"))
    p.add_argument(
        "--noise", choices=("bar", "piece"),
        help="MidiNet: fresh noise for every bar, or one draw per piece (default: the model's)",
    )  # fmt: skip
    p.add_argument(
        "--chord-tries",
        type=int,
        metavar="K",
        help="MidiNet: draw a bar up to K times until the chord labeller names its chord "
        "(default: the model's sampling.chord_tries, else 1)",
    )
    p.add_argument(
        "--register",
        metavar="LOW,HIGH",
        help="MidiNet: notes moved by octaves into MIDI LOW..HIGH, each near the note before; "
        "'off': as drawn (default: the model's sampling.register)",
    )
    p.add_argument(
        "--split", choices=("train", "valid", "test"), default="train",
        help="the data compared with (and MidiNet's conditioning chords): choose on valid",
    )  # fmt: skip
    p.add_argument(
        "--draw", choices=("argmax", "sample"), default="argmax",
        help="cells: the most likely pitch or rest per step, or one drawn from the probabilities",
    )  # fmt: skip
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    emit({"settings": vars(args)})
    sample = args.draw == "sample"
    if args.only in (None, "musegan"):
        repeated(
            lambda s: musegan(args.musegan, args.samples, s, sample, args.split),
            args.seed, args.repeats,
        )  # fmt: skip
    if args.only in (None, "midinet"):
        repeated(
            lambda s: midinet(
                args.midinet, args.samples, s, sample, split=args.split, noise=args.noise,
                tries=args.chord_tries, register=args.register,
            ),
            args.seed, args.repeats,
        )  # fmt: skip
    if args.only in (None, "crnngan"):
        repeated(
            lambda s: crnngan(args.crnngan, args.samples, s, args.split), args.seed, args.repeats
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
