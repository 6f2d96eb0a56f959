"""An evaluation report: a generated set against a reference set, as one HTML file and JSON.

:func:`build_report` analyses every piece of both sets (statistics, key, cadences, and voice
leading where a piece has four voices) and compares the sets feature by feature
(:mod:`musegen.evaluate.compare`). :func:`render_html` makes one self-contained page: the
tables, per-feature plots (overlaid histograms of the values and the densities of intra- and
inter-set distances), the voice-leading errors of each generated piece with their bars and
beats, and piano-roll thumbnails, every picture a base64 PNG inside the page.
:meth:`Report.to_dict` holds the same numbers for machines.
"""

from __future__ import annotations

import base64
import html
import io
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from musegen import __version__
from musegen.errors import MusegenError
from musegen.evaluate.compare import FeatureComparison, compare_sets
from musegen.evaluate.sets import PieceSet
from musegen.metrics.harmony import CADENCE_KINDS, Cadence, detect_cadences
from musegen.metrics.stats import (
    FEATURES,
    LENGTH_NAMES,
    SCALAR_FEATURES,
    NoteView,
    compute_features,
    jsonable,
)
from musegen.metrics.voice_leading import KINDS, VoiceLeadingReport, check_voice_leading, summarize
from musegen.score import PITCH_NAMES, Score
from musegen.theory import estimate_key

if TYPE_CHECKING:
    from matplotlib.figure import Figure

GEN_COLOUR, REF_COLOUR, INTER_COLOUR = "#d62728", "#1f77b4", "#7f7f7f"
PLOT_DPI = 80
MAX_ERRORS_SHOWN = 200
SECTIONS = ("summary", "features", "plots", "harmony", "voice-leading", "thumbnails")


@dataclass
class PieceAnalysis:
    """What the report knows about one piece."""

    name: str
    features: dict[str, Any]
    key: str | None
    cadences: list[Cadence]
    voice_leading: VoiceLeadingReport | None
    voice_leading_problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "features": {k: jsonable(v) for k, v in self.features.items() if k in SCALAR_FEATURES},
            "key": self.key,
            "cadences": [c.to_dict() for c in self.cadences],
            "voice_leading": self.voice_leading.to_dict() if self.voice_leading else None,
            "voice_leading_problem": self.voice_leading_problem,
        }


def analyse_piece(name: str, score: Score) -> PieceAnalysis:
    """Statistics, key, cadences and (for four voices) voice leading of one piece."""
    features = compute_features(NoteView(score))
    key = estimate_key(score)
    cadences = detect_cadences(score, key) if key else []
    vl, problem = None, None
    try:
        vl = check_voice_leading(score, key=key)
    except MusegenError as e:
        problem = str(e).split(";")[0]
    return PieceAnalysis(name, features, str(key) if key else None, cadences, vl, problem)


@dataclass
class Report:
    """Both sets' analyses and their comparison."""

    generated: PieceSet
    reference: PieceSet
    gen: list[PieceAnalysis] = field(default_factory=list)
    ref: list[PieceAnalysis] = field(default_factory=list)
    comparison: dict[str, FeatureComparison] = field(default_factory=dict)

    def voice_leading_summary(self, which: str) -> dict[str, Any]:
        pieces = self.gen if which == "generated" else self.ref
        return summarize([p.voice_leading for p in pieces if p.voice_leading])

    def cadence_summary(self, which: str) -> dict[str, Any]:
        """Cadences per piece, by kind, and the share of pieces ending on an authentic one."""
        pieces = self.gen if which == "generated" else self.ref
        counts = Counter(c.kind for p in pieces for c in p.cadences)
        n = max(len(pieces), 1)
        ends = sum(1 for p in pieces if p.cadences and p.cadences[-1].kind == "authentic")
        return {
            "per_piece": {k: round(counts.get(k, 0) / n, 4) for k in CADENCE_KINDS},
            "ending_authentic": round(ends / n, 4),
            "keys": dict(Counter(p.key or "none" for p in pieces).most_common()),
        }

    def musegan_summary(self, which: str) -> dict[str, float]:
        """MuseGAN's five figures (:mod:`musegen.metrics.musegan`) averaged over one set."""
        from musegen.metrics.musegan import set_metrics

        pieces = self.generated if which == "generated" else self.reference
        return set_metrics([score for _, score in pieces.pieces])

    def to_dict(self) -> dict[str, Any]:
        return {
            "musegen": __version__,
            "generated": _set_dict(self.generated),
            "reference": _set_dict(self.reference),
            "features": [fc.summary() for fc in self.comparison.values()],
            "voice_leading": {
                "generated": _clean(self.voice_leading_summary("generated")),
                "reference": _clean(self.voice_leading_summary("reference")),
            },
            "cadences": {
                "generated": self.cadence_summary("generated"),
                "reference": self.cadence_summary("reference"),
            },
            "musegan": {w: _clean(self.musegan_summary(w)) for w in ("generated", "reference")},
            "pieces": {
                "generated": [p.to_dict() for p in self.gen],
                "reference": [p.to_dict() for p in self.ref],
            },
        }


def _set_dict(s: PieceSet) -> dict[str, Any]:
    return {
        "name": s.name,
        "pieces": len(s),
        "failures": [{"piece": n, "reason": r} for n, r in s.failures],
    }


def _clean(obj: Any) -> Any:
    """NaN -> None, numbers rounded, through dicts and lists."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    if isinstance(obj, float):
        return jsonable(obj)
    return obj


def build_report(
    generated: PieceSet,
    reference: PieceSet,
    progress: bool = False,
    features: list[str] | None = None,
) -> Report:
    """Analyse both sets and compare them on ``features`` (default: all of
    :data:`~musegen.metrics.stats.FEATURES`); a tqdm bar on stderr with ``progress``."""
    if not len(generated):
        raise MusegenError(f"{generated.name}: no pieces could be read to evaluate")
    if not len(reference):
        raise MusegenError(f"{reference.name}: no reference pieces could be read")
    bar = _bar(len(generated) + len(reference) + 1, "analysing", progress)
    report = Report(generated, reference)
    for pieces, out in ((generated.pieces, report.gen), (reference.pieces, report.ref)):
        for name, score in pieces:
            out.append(analyse_piece(name, score))
            bar.update()
    report.comparison = compare_sets(
        [p.features for p in report.gen],
        [p.features for p in report.ref],
        names=features,
        labels=(f"generated {generated.name}", f"reference {reference.name}"),
    )
    bar.update()
    bar.close()
    return report


def _bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, disable=not enabled)


# ----------------------------------------------------------------------------- plots
def figure_png(fig: Figure, dpi: int = PLOT_DPI) -> bytes:
    """A matplotlib figure as PNG bytes (no timestamps: reproducible)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": "musegen"})
    return buf.getvalue()


def _new_figure(width: float, height: float, cols: int) -> tuple[Figure, list[Any]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=PLOT_DPI)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.2, top=0.8, wspace=0.25)
    return fig, [fig.add_subplot(1, cols, i + 1) for i in range(cols)]


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:  # nothing drawn: no legend (and no warning)
        ax.legend(fontsize=7, frameon=False)


def _distance_panel(ax: Any, fc: FeatureComparison) -> None:
    """Densities of the intra-set and inter-set distances."""
    if len(fc.grid) == 0:
        why = "not comparable" if fc.problem else "too few pieces"
        ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes)
        return
    for pdf, colour, style, label in (
        (fc.pdf_intra_gen, GEN_COLOUR, "-", "intra generated"),
        (fc.pdf_intra_ref, REF_COLOUR, "-", "intra reference"),
        (fc.pdf_inter, INTER_COLOUR, "--", "inter"),
    ):
        if len(pdf):
            ax.plot(fc.grid, pdf, color=colour, ls=style, label=label)
    ax.set_xlim(max(fc.grid[0], -0.05 * fc.grid[-1]), fc.grid[-1])
    ax.set_title("distance densities (KDE)", fontsize=9)
    ax.tick_params(labelsize=7)
    _legend(ax)


def _value_panel(ax: Any, fc: FeatureComparison) -> None:
    """Overlaid histograms of a scalar feature's values, or mean histograms of a vector one."""
    if fc.is_scalar:
        both = np.concatenate([fc.gen_values, fc.ref_values])
        if len(both) == 0:
            return
        lo, hi = float(both.min()), float(both.max())
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 21)
        for values, colour, label in (
            (fc.ref_values, REF_COLOUR, "reference"),
            (fc.gen_values, GEN_COLOUR, "generated"),
        ):
            if len(values):
                ax.hist(values, bins=bins, density=True, alpha=0.45, color=colour, label=label)
        ax.set_title("values", fontsize=9)
    else:
        width = max(fc.gen_values.shape[-1], fc.ref_values.shape[-1])
        labels = PITCH_NAMES if width == 12 else LENGTH_NAMES
        x = np.arange(len(labels))
        for values, colour, label, shift in (
            (fc.ref_values, REF_COLOUR, "reference", -0.2),
            (fc.gen_values, GEN_COLOUR, "generated", 0.2),
        ):
            if len(values):
                ax.bar(x + shift, values.mean(axis=0), 0.4, color=colour, alpha=0.8, label=label)
        ax.set_xticks(x, labels, fontsize=6, rotation=45 if len(labels[0]) > 2 else 0)
        ax.set_title("mean histogram", fontsize=9)
    ax.tick_params(labelsize=7)
    _legend(ax)


def _matrix_panels(axes: list[Any], fc: FeatureComparison) -> None:
    for ax, values, label in (
        (axes[0], fc.ref_values, "reference"),
        (axes[1], fc.gen_values, "generated"),
    ):
        mean = values.mean(axis=0).reshape(12, 12) if len(values) else np.zeros((12, 12))
        ax.imshow(mean, cmap="viridis", origin="upper")
        ax.set_xticks(range(12), PITCH_NAMES, fontsize=5)
        ax.set_yticks(range(12), PITCH_NAMES, fontsize=5)
        ax.set_title(f"{label}: from (row) to (column)", fontsize=8)


def feature_plot(fc: FeatureComparison) -> bytes:
    """One feature's picture: values (or mean histogram / matrix) and distance densities."""
    if fc.name == "pitch_class_transition_matrix":
        fig, axes = _new_figure(9, 2.8, 3)
        _matrix_panels(axes[:2], fc)
        _distance_panel(axes[2], fc)
    else:
        fig, axes = _new_figure(9, 2.6, 2)
        _value_panel(axes[0], fc)
        _distance_panel(axes[1], fc)
    return figure_png(fig)


def thumbnail(score: Score, title: str) -> bytes:
    """A small piano roll of ``score``."""
    from musegen.render.pianoroll import pianoroll_figure

    fig = pianoroll_figure(score, title=title[:60], width=4.5, height=2.2, dpi=PLOT_DPI)
    return figure_png(fig)


# ----------------------------------------------------------------------------- HTML
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0;font-size:12px}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.plots img,.thumbs img{max-width:100%;border:1px solid #eee;margin:4px 0}
.thumbs{display:flex;flex-wrap:wrap;gap:8px}.thumbs figure{margin:0;width:360px}
.thumbs img{width:360px}figcaption{font-size:11px;color:#555;word-break:break-all}
.gen{color:#d62728}.ref{color:#1f77b4}.note{color:#666;font-size:12px}
details{margin:4px 0}summary{cursor:pointer}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return "nan" if np.isnan(x) else f"{x:.{digits}g}" if abs(x) >= 1e4 else f"{x:.{digits}f}"
    return _esc(x)


@dataclass(frozen=True)
class _Span:
    """A table cell of text over ``cols`` columns."""

    text: str
    cols: int


def _cell(c: Any) -> str:
    if isinstance(c, _Span):
        return f'<td colspan="{c.cols}" class="note">{_esc(c.text)}</td>'
    return f"<td>{_fmt(c)}</td>"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _summary_html(r: Report) -> str:
    rows = [
        ["generated", r.generated.name, len(r.generated), len(r.generated.failures)],
        ["reference", r.reference.name, len(r.reference), len(r.reference.failures)],
    ]
    out = _table(["set", "from", "pieces", "unreadable"], rows)
    for s in (r.generated, r.reference):
        if s.failures:
            items = "".join(f"<li>{_esc(n)}: {_esc(w)}</li>" for n, w in s.failures[:50])
            out += f"<details><summary>unreadable pieces of {_esc(s.name)}</summary><ul>{items}</ul></details>"
    return out


def _features_html(r: Report) -> str:
    header = [
        "feature", "generated mean", "± std", "reference mean", "± std",
        "intra gen", "intra ref", "inter", "OA", "KLD", "OA gen", "OA intra",
    ]  # fmt: skip
    rows = []
    for fc in r.comparison.values():
        s = fc.summary()
        if fc.problem is not None:
            values = [s.get("gen_mean"), s.get("gen_std"), s.get("ref_mean"), s.get("ref_std")]
            rows.append([fc.name, *values, _Span(fc.problem, len(header) - 5)])
            continue
        rows.append(
            [
                fc.name, s.get("gen_mean"), s.get("gen_std"), s.get("ref_mean"), s.get("ref_std"),
                s["intra_gen_mean"], s["intra_ref_mean"], s["inter_mean"],
                s["oa"], s["kld"], s["oa_gen"], s["oa_intra"],
            ]
        )  # fmt: skip
    note = (
        '<p class="note">Intra/inter: mean distance between pieces of one set / of the two '
        "sets. OA and KLD (nats): the reference set's intra-set distance density against the "
        "inter-set density (Yang &amp; Lerch 2018): OA near 1 and KLD near 0 mean generated "
        "pieces sit among the reference pieces. OA gen: generated intra vs inter; OA intra: "
        "generated vs reference intra-set densities (similar variety).</p>"
    )
    return _table(header, rows) + note


def _harmony_html(r: Report) -> str:
    gen, ref = r.cadence_summary("generated"), r.cadence_summary("reference")
    rows = [
        [f"{k} cadences per piece", gen["per_piece"][k], ref["per_piece"][k]] for k in CADENCE_KINDS
    ]
    rows.append(
        ["share ending on an authentic cadence", gen["ending_authentic"], ref["ending_authentic"]]
    )
    out = _table(["", "generated", "reference"], rows)
    mg, mr = r.musegan_summary("generated"), r.musegan_summary("reference")
    out += "<h3>MuseGAN metrics (Dong et al. 2018)</h3>"
    out += _table(["", "generated", "reference"], [[k, mg[k], mr[k]] for k in mg])
    keys = [[k, v] for k, v in list(gen["keys"].items())[:12]]
    out += "<h3>Estimated keys of generated pieces</h3>" + _table(["key", "pieces"], keys)
    items = []
    for p in r.gen:
        cads = ", ".join(
            f"{c.kind} ({' → '.join(c.chords)}) at bar {c.bar} beat {c.beat:g}" for c in p.cadences
        )
        items.append(
            f"<li><b>{_esc(p.name)}</b> — {_esc(p.key or 'no key')}: {_esc(cads or 'no cadences found')}</li>"
        )
    return (
        out
        + f"<details><summary>cadences of each generated piece</summary><ul>{''.join(items)}</ul></details>"
    )


def _voice_leading_html(r: Report) -> str:
    gen, ref = r.voice_leading_summary("generated"), r.voice_leading_summary("reference")
    rows = [
        [k, gen["counts"][k], gen["per_100_beats"][k], ref["counts"][k], ref["per_100_beats"][k]]
        for k in KINDS
    ]
    rows.append(
        [
            "total",
            gen["errors_total"],
            gen["per_100_beats"]["total"],
            ref["errors_total"],
            ref["per_100_beats"]["total"],
        ]
    )
    out = (
        f'<p class="note">Four-voice pieces checked: generated {gen["pieces"]} '
        f"({gen['beats']} beats), reference {ref['pieces']} ({ref['beats']} beats). "
        "Rates are errors per 100 beats, pooled over the pieces.</p>"
    )
    out += _table(
        ["rule", "generated errors", "per 100 beats", "reference errors", "per 100 beats"], rows
    )
    out += "<h3>Errors of each generated piece</h3>"
    for p in r.gen:
        out += _piece_errors_html(p)
    return out


def _piece_errors_html(p: PieceAnalysis) -> str:
    if p.voice_leading is None:
        return f"<details><summary>{_esc(p.name)}: not checked ({_esc(p.voice_leading_problem)})</summary></details>"
    vl = p.voice_leading
    rate = vl.rates_per_100_beats()["total"]
    head = (
        f"{_esc(p.name)}: {len(vl.errors)} errors, {_fmt(rate)} per 100 beats (key {_esc(vl.key)})"
    )
    rows = [
        [e.bar, e.beat, e.kind, "-".join(e.voices), e.detail] for e in vl.errors[:MAX_ERRORS_SHOWN]
    ]
    more = len(vl.errors) - MAX_ERRORS_SHOWN
    tail = f'<p class="note">… and {more} more (see the JSON)</p>' if more > 0 else ""
    table = (
        _table(["bar", "beat", "rule", "voices", "detail"], rows) if rows else "<p>no errors</p>"
    )
    return f"<details><summary>{head}</summary>{table}{tail}</details>"


def render_html(
    report: Report,
    thumbnails: int = 8,
    progress: bool = False,
) -> str:
    """The report as one self-contained HTML page (plots and thumbnails as base64 PNG)."""
    plots = list(report.comparison.values())
    gen_thumbs = report.generated.pieces[:thumbnails]
    ref_thumbs = report.reference.pieces[: max(thumbnails // 2, 0)]
    bar = _bar(len(plots) + len(gen_thumbs) + len(ref_thumbs), "plotting", progress)
    plot_html = []
    for fc in plots:
        desc = FEATURES[fc.name].description if fc.name in FEATURES else ""
        plot_html.append(
            f"<h3>{_esc(fc.name)}</h3><p class='note'>{_esc(desc)}</p>{_img(feature_plot(fc), fc.name)}"
        )
        bar.update()
    thumbs = []
    for label, pieces in (("generated", gen_thumbs), ("reference", ref_thumbs)):
        figs = []
        for name, score in pieces:
            figs.append(
                f"<figure>{_img(thumbnail(score, name), name)}<figcaption>{_esc(name)}</figcaption></figure>"
            )
            bar.update()
        thumbs.append(f"<h3>{label}</h3><div class='thumbs'>{''.join(figs)}</div>")
    bar.close()
    body = {
        "summary": _summary_html(report),
        "features": _features_html(report),
        "plots": f"<div class='plots'>{''.join(plot_html)}</div>",
        "harmony": _harmony_html(report),
        "voice-leading": _voice_leading_html(report),
        "thumbnails": "".join(thumbs),
    }
    titles = {
        "summary": "Sets",
        "features": "Statistics",
        "plots": "Distributions",
        "harmony": "Harmony",
        "voice-leading": "Voice leading",
        "thumbnails": "Piano rolls",
    }
    sections = "".join(
        f'<section id="{k}"><h2>{titles[k]}</h2>{body[k]}</section>' for k in SECTIONS
    )
    title = f"musegen evaluation: {_esc(report.generated.name)} vs {_esc(report.reference.name)}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{CSS}</style></head><body><h1>{title}</h1>"
        f'<p class="note">musegen {__version__}: <span class="gen">generated</span> vs '
        f'<span class="ref">reference</span>.</p>{sections}</body></html>\n'
    )
