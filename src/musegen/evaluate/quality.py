"""Musical quality of a generator's pieces, measured against real music and read against the
real corpus measured against itself.

One set of figures for any generator (a token model, Coconet, a compose method): a set of
*candidate* pieces is compared with a *reference* set of real held-out pieces.

=============================  ===============================================================
``oa_mean``                    mean Yang & Lerch (2018) overlapping area over every feature of
                               :data:`musegen.metrics.stats.FEATURES`
                               (:func:`~musegen.evaluate.compare.compare_sets`): 1 when a
                               candidate is as far from the real pieces as they are from each
                               other
``vl_per_100_beats``           four-part voice-leading errors per 100 beats, by kind and in
                               total, pooled over the four-voice pieces
                               (:mod:`~musegen.metrics.voice_leading`)
``parallels_per_100_beats``    parallel fifths + parallel octaves per 100 beats
``four_voice_share_beats``     share of beats on whose first tick all four voice tracks
                               (S, A, T, B) sound, pooled over pieces
                               (``four_voice_share_16ths``: the same over 16th-note steps)
``cadence_ending_share``       share of pieces ending on an authentic or plagal cadence
                               (:func:`~musegen.metrics.quality.ends_on_cadence`)
``tonic_ending_share``         share of pieces whose last note is the tonic (for melodies;
                               :func:`~musegen.metrics.quality.ends_on_tonic`)
``note_length_tv``             total-variation distance between the pooled note-length
                               histograms (:func:`note_length_histogram_distance`)
``c2st_accuracy``              classifier two-sample test: cross-validated accuracy of
                               classifiers telling candidate from real pieces by
                               :func:`~musegen.metrics.quality.piece_features` (0.5:
                               indistinguishable; :mod:`~musegen.evaluate.c2st`; details
                               in ``c2st``)
=============================  ===============================================================

Why a ceiling: small real sets differ from each other too (sampling noise, the classifier's
optimism when the best of several is taken), so every figure is also computed for real
training pieces (the same number as the candidates) against the same reference
(:func:`quality_report`), and a generator's figure reads as a fraction of that.

Why excerpts: generated pieces are as long as asked (8 bars), real pieces are whole, and
almost every statistic grows with length, so a classifier would tell them apart by length
alone. With ``bars`` set, real pieces are cut to their first ``bars`` bars for every figure
except the ending, which is judged on whole real pieces (how real pieces end) and also
reported for the cut ones (what cutting alone gives). For the same reason the two-sample
classifier does not see the ending features then: a cut piece's last bar is no ending, and a
generator whose pieces close would be told apart for closing.

Endings are judged in the Krumhansl-Schmuckler key of the whole piece (never in a key read
from the ending itself, which would make every piece end "on the tonic"). That estimate
sometimes takes a piece for its dominant or relative key, so even real pieces fall short of
a full share; the ceiling row carries the same misreadings.

Everything here is numpy (scipy only through :func:`compare_sets`); no figure is tuned on any
split: the classifiers' settings are fixed constants. What is measured in each piece is
:mod:`musegen.metrics.quality`'s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from musegen.evaluate.c2st import classifier_two_sample_test
from musegen.metrics.quality import (
    PieceAnalysis,
    analyse,
    ends_on_cadence,
    ends_on_tonic,
    note_length_counts,
)
from musegen.metrics.voice_leading import KINDS, summarize
from musegen.score import Score
from musegen.theory import estimate_key

ENDING_PREFIX = "end."  # the ending features of :func:`musegen.metrics.quality.piece_features`

NAN = float("nan")


def note_length_histogram_distance(a_scores: Sequence[Score], b_scores: Sequence[Score]) -> float:
    """Total-variation distance (half the L1 distance, 0..1: the share of notes that would
    have to change length to make the histograms equal) between the note-length histograms of
    two sets, every note of a set pooled (:func:`note_length_counts`). NaN when a set has no
    notes."""
    a, b = note_length_counts(a_scores), note_length_counts(b_scores)
    if a.sum() == 0 or b.sum() == 0:
        return NAN
    return float(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())


HIGHER_IS_BETTER = {
    "oa_mean": True,
    "vl_total_per_100_beats": False,
    "parallels_per_100_beats": False,
    "four_voice_share_beats": True,
    "four_voice_share_16ths": True,
    "ending_share": True,
    "cadence_ending_share": True,
    "tonic_ending_share": True,
    "note_length_tv": False,
    "c2st_accuracy": False,
}


def fraction_of_ceiling(figure: str, ours: float, ceiling: float) -> float:
    """A figure as a fraction of what real music scores (1: as real music; above 1: better
    than the real-vs-real row). Higher-is-better figures: ``ours / ceiling``; lower-is-better
    (error rates, distances): ``ceiling / ours``; the C2ST accuracy as the classifier's
    error rate, ``(1 - ours) / (1 - ceiling)``."""
    if not (math.isfinite(ours) and math.isfinite(ceiling)):
        return NAN
    if figure == "c2st_accuracy":
        num, den = 1 - ours, 1 - ceiling
    elif HIGHER_IS_BETTER.get(figure, True):
        num, den = ours, ceiling
    else:
        num, den = ceiling, ours
    if den == 0:
        return NAN if num == 0 else math.inf
    return num / den


def _share(flags: Sequence[bool]) -> float:
    return float(np.mean(flags)) if len(flags) else NAN


def _pooled(pairs: Sequence[tuple[int, int]]) -> float:
    total = sum(t for _, t in pairs)
    return sum(h for h, _ in pairs) / total if total else NAN


def set_figures(
    candidates: Sequence[PieceAnalysis],
    reference: Sequence[PieceAnalysis],
    chorale: bool,
    candidate_scores: Sequence[Score],
    reference_scores: Sequence[Score],
    folds: int = 5,
    seed: int = 0,
    repeats: int = 1,
    excerpts: bool = False,
) -> dict[str, Any]:
    """Every figure of one candidate set against the reference (see the module docstring).
    ``chorale``: the ending figure is the cadence share (else the tonic share).
    ``excerpts``: the reference pieces were cut short, so their ends are no endings: the
    classifier leaves out the ending features (the ending is judged against whole pieces)."""
    from musegen.evaluate.compare import compare_sets

    out: dict[str, Any] = {"pieces": len(candidates)}
    if not candidates or not reference:
        oa: dict[str, float] = {}
    else:
        cmp = compare_sets([a.stats for a in candidates], [a.stats for a in reference], seed=seed)
        oa = {name: fc.oa for name, fc in cmp.items()}
    values = [x for x in oa.values() if math.isfinite(x)]
    out["oa_mean"] = float(np.mean(values)) if values else NAN
    out["oa"] = oa
    reports = [a.voice_leading for a in candidates if a.voice_leading is not None]
    out["four_voice_pieces"] = len(reports)
    if reports:
        s = summarize(reports)
        rates = s["per_100_beats"]
        out["vl_per_100_beats"] = rates
        out["vl_total_per_100_beats"] = rates["total"]
        parallels = s["counts"]["parallel_fifths"] + s["counts"]["parallel_octaves"]
        out["parallels_per_100_beats"] = 100.0 * parallels / s["beats"] if s["beats"] else NAN
    else:
        out["vl_per_100_beats"] = {k: NAN for k in (*KINDS, "total")}
        out["vl_total_per_100_beats"] = NAN
        out["parallels_per_100_beats"] = NAN
    out["four_voice_share_beats"] = _pooled([a.four_beats for a in candidates])
    out["four_voice_share_16ths"] = _pooled([a.four_16ths for a in candidates])
    out["cadence_ending_share"] = _share([a.cadence_ending for a in candidates])
    out["tonic_ending_share"] = _share([a.tonic_ending for a in candidates])
    out["ending_kind"] = "cadence" if chorale else "tonic"
    out["ending_share"] = out["cadence_ending_share" if chorale else "tonic_ending_share"]
    out["note_length_tv"] = note_length_histogram_distance(candidate_scores, reference_scores)
    c2st = classifier_two_sample_test(
        [classifier_features(a.features, excerpts) for a in candidates],
        [classifier_features(a.features, excerpts) for a in reference],
        folds=folds,
        seed=seed,
        repeats=repeats,
    )
    out["c2st"] = c2st
    out["c2st_accuracy"] = c2st["accuracy"]
    return out


def classifier_features(features: dict[str, float], excerpts: bool) -> dict[str, float]:
    """The features the two-sample classifier sees: all, or all but the ending's for excerpts."""
    if not excerpts:
        return features
    return {k: v for k, v in features.items() if not k.startswith(ENDING_PREFIX)}


def excerpt(score: Score, bars: int | None) -> Score:
    """The first ``bars`` whole bars of ``score`` after its pickup (:meth:`Score.opening`);
    ``None``: the whole score."""
    return score if bars is None else score.opening(bars)


def quality_report(
    generated: Sequence[Score],
    real_heldout: Sequence[Score],
    real_train: Sequence[Score] | None = None,
    *,
    bars: int | None = None,
    folds: int = 5,
    seed: int = 0,
    repeats: int = 1,
) -> dict[str, Any]:
    """All the quality figures of ``generated`` against ``real_heldout``, and with
    ``real_train`` the ``ceiling``: the same figures for a seeded sample of as many real
    training pieces as there are generated ones, against the same held-out pieces (the
    corpus against itself), and ``fraction``: each headline figure as a fraction of the
    ceiling (:func:`fraction_of_ceiling`).

    ``bars``: cut real pieces to their first ``bars`` bars (the length the generated pieces
    were asked for) for every figure but the ending; the ceiling's ending is judged on whole
    training pieces, and ``ending_share_cut`` gives it for the cut ones. The ending figure is
    the cadence share when most held-out pieces are four voices, else the tonic share.
    """
    gen = [analyse(s) for s in generated]
    ref_scores = [excerpt(s, bars) for s in real_heldout]
    ref = [analyse(s) for s in ref_scores]
    four = [a.voice_leading is not None for a in ref]
    chorale = bool(four) and float(np.mean(four)) >= 0.5
    report: dict[str, Any] = {
        "bars": bars,
        "reference_pieces": len(ref),
        "generated": set_figures(
            gen, ref, chorale, generated, ref_scores, folds, seed, repeats, bars is not None
        ),
        "ceiling": None,
        "fraction": {},
    }
    if real_train is None:
        return report
    rng = np.random.default_rng(seed)
    pool = list(real_train)
    if len(generated) and len(pool) > len(generated):
        keep = np.sort(rng.choice(len(pool), len(generated), replace=False))
        pool = [pool[i] for i in keep]
    train_scores = [excerpt(s, bars) for s in pool]
    train = [analyse(s) for s in train_scores]
    ceiling = set_figures(
        train, ref, chorale, train_scores, ref_scores, folds, seed, repeats, bars is not None
    )
    cut_cadence, cut_tonic = ceiling["cadence_ending_share"], ceiling["tonic_ending_share"]
    if bars is not None:  # how whole real pieces end
        whole_key = [estimate_key(s) for s in pool]
        ceiling["cadence_ending_share"] = _share(
            [k is not None and ends_on_cadence(s, k) for s, k in zip(pool, whole_key, strict=True)]
        )
        ceiling["tonic_ending_share"] = _share(
            [k is not None and ends_on_tonic(s, k) for s, k in zip(pool, whole_key, strict=True)]
        )
    ceiling["ending_share"] = ceiling["cadence_ending_share" if chorale else "tonic_ending_share"]
    ceiling["ending_share_cut"] = cut_cadence if chorale else cut_tonic
    report["ceiling"] = ceiling
    report["fraction"] = {
        name: fraction_of_ceiling(name, report["generated"][name], ceiling[name])
        for name in HEADLINE
    }
    return report


HEADLINE = (
    "oa_mean",
    "vl_total_per_100_beats",
    "parallels_per_100_beats",
    "four_voice_share_beats",
    "ending_share",
    "note_length_tv",
    "c2st_accuracy",
)
