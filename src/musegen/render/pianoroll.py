"""Piano-roll pictures (PNG/SVG/PDF) of a Score with matplotlib.

One ``PolyCollection`` per track draws all its notes at once, coloured by track (or by S/A/T/B
voice) and shaded by velocity. Bar lines carry bar numbers, the pitch axis note names, and a
legend names the tracks. Drum tracks get a lane of their own under the pitched notes.
matplotlib is imported inside the functions (it takes a while) and only its object API is
used, so no GUI backend or global pyplot state is involved.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from musegen.errors import MusegenError
from musegen.render.common import check_bars, track_label
from musegen.score import Score, Track, pitch_name
from musegen.utils import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH_IN, HEIGHT_IN, DPI = 10.0, 5.0, 150  # a landscape page's width: 1500 x 750 px
VOICE_COLOURS = {"S": "#d62728", "A": "#ff7f0e", "T": "#2ca02c", "B": "#1f77b4"}
TRACK_COLOURS = (
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
    "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79",
)  # fmt: skip
BLACK_KEYS = {1, 3, 6, 8, 10}
FORMATS = (".png", ".svg", ".pdf")
MAX_BAR_LABELS = 32
MAX_BARS = 5000


def render_pianoroll(
    score: Score,
    path: str | Path,
    *,
    title: str | None = None,
    width: float = WIDTH_IN,
    height: float = HEIGHT_IN,
    dpi: int = DPI,
) -> Path:
    """Draw ``score`` and write the picture to ``path`` (format by suffix: .png, .svg, .pdf)."""
    path = Path(path)
    fmt = path.suffix.lower()
    if fmt not in FORMATS:
        raise MusegenError(f"{path}: piano roll format must be one of {', '.join(FORMATS)}")
    fig = pianoroll_figure(score, title=title, width=width, height=height, dpi=dpi)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt[1:], dpi=dpi, metadata=_metadata(fmt))
    atomic_write_bytes(path, buf.getvalue())
    return path


def pianoroll_figure(
    score: Score,
    *,
    title: str | None = None,
    width: float = WIDTH_IN,
    height: float = HEIGHT_IN,
    dpi: int = DPI,
) -> Figure:
    """A matplotlib Figure of the piano roll; ``fig.axes[0]`` holds the pitched notes."""
    from matplotlib.figure import Figure

    check_bars(score, MAX_BARS, "the piano roll")
    fig = Figure(figsize=(width, height), dpi=dpi)
    pitched = [(i, t) for i, t in enumerate(score.tracks) if not t.is_drum and len(t)]
    drums = [(i, t) for i, t in enumerate(score.tracks) if t.is_drum and len(t)]
    if drums:
        grid = fig.add_gridspec(2, 1, height_ratios=(4, 1), hspace=0.08)
        ax = fig.add_subplot(grid[0])
        drum_ax = fig.add_subplot(grid[1], sharex=ax)
    else:
        ax, drum_ax = fig.add_subplot(), None
    fig.subplots_adjust(left=0.07, right=0.985, bottom=0.09, top=0.9)
    end = max(score.end, score.time_signature_at(0).bar_ticks(score.tpq))
    colours = _colours(score)

    lo, hi = _pitch_span(score)
    _shade_black_keys(ax, lo, hi, end)
    for i, track in pitched:
        ax.add_collection(_note_collection(track, colours[i]))
    ax.set_ylim(lo - 0.5, hi + 0.5)
    _pitch_axis(ax, lo, hi)
    if drum_ax is not None:
        hit = max(score.tpq / 8, end / 800)  # at least ~2 px wide on a page-wide plot
        for i, track in drums:
            drum_ax.add_collection(_note_collection(track, colours[i], hit))
        keys = np.concatenate([t.notes["pitch"] for _, t in drums])
        drum_ax.set_ylim(int(keys.min()) - 1, int(keys.max()) + 1)
        drum_ax.set_ylabel("drums", fontsize=8)
        drum_ax.tick_params(axis="y", labelsize=6)
        ax.tick_params(axis="x", labelbottom=False)
    bottom = drum_ax if drum_ax is not None else ax
    for a in (ax, drum_ax):
        if a is not None:
            _bar_lines(a, score, end)
            a.set_xlim(0, end)
    _bar_axis(bottom, score, end)
    if score.is_empty():
        ax.text(0.5, 0.5, "no notes", transform=ax.transAxes, ha="center", va="center", color="0.4")
    if title:
        ax.set_title(title, loc="left", fontsize=10)
    _legend(ax, score, colours)
    return fig


def _metadata(fmt: str) -> dict[str, Any]:
    """File metadata that keeps output reproducible (no creation dates)."""
    if fmt == ".png":
        return {"Software": "musegen"}
    if fmt == ".svg":
        return {"Date": None, "Creator": "musegen"}
    return {"CreationDate": None, "Creator": "musegen"}


def _colours(score: Score) -> list[str]:
    """Colour of each track: its voice's colour, else the next of a fixed palette that the
    voices present have not taken (e.g. an "Other" track beside S, A, T, B)."""
    taken = {VOICE_COLOURS[t.voice] for t in score.tracks if t.voice}
    palette = [c for c in TRACK_COLOURS if c not in taken] or list(TRACK_COLOURS)
    out, k = [], 0
    for track in score.tracks:
        if track.voice:
            out.append(VOICE_COLOURS[track.voice])
        else:
            out.append(palette[k % len(palette)])
            k += 1
    return out


def _pitch_span(score: Score) -> tuple[int, int]:
    """The pitch range to show: the notes' range, widened to at least an octave."""
    rng = score.pitch_range() or (60, 72)
    lo, hi = rng
    if hi - lo < 12:
        pad = (12 - (hi - lo)) / 2
        lo, hi = math.floor(lo - pad), math.ceil(hi + pad)
    return max(lo - 1, 0), min(hi + 1, 127)


def _note_collection(track: Track, colour: str, hit_width: float | None = None) -> Any:
    """All notes of a track as one PolyCollection of rectangles, alpha from velocity.

    With ``hit_width`` every note gets that width (drum hits have no meaningful length).
    """
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_rgb

    n = track.notes
    x0 = n["start"].astype(np.float64)
    width = n["duration"].astype(np.float64)
    if hit_width is not None:
        width = np.full(len(n), hit_width)
    y = n["pitch"].astype(np.float64)
    verts = np.empty((len(n), 4, 2))
    verts[:, :, 0] = np.stack([x0, x0 + width, x0 + width, x0], axis=1)
    verts[:, :, 1] = np.stack([y - 0.4, y - 0.4, y + 0.4, y + 0.4], axis=1)
    rgba = np.empty((len(n), 4))
    rgba[:, :3] = to_rgb(colour)
    rgba[:, 3] = 0.35 + 0.65 * np.clip(n["velocity"], 0, 127) / 127.0
    return PolyCollection(verts, facecolors=rgba, edgecolors="none", zorder=3, gid="notes")


def _shade_black_keys(ax: Axes, lo: int, hi: int, end: int) -> None:
    """Light grey rows behind the black keys, as on a keyboard."""
    from matplotlib.collections import PolyCollection

    rows = [p for p in range(lo, hi + 1) if p % 12 in BLACK_KEYS]
    verts = [[(0, p - 0.5), (end, p - 0.5), (end, p + 0.5), (0, p + 0.5)] for p in rows]
    ax.add_collection(PolyCollection(verts, facecolors="0.93", edgecolors="none", zorder=0))


def _pitch_axis(ax: Axes, lo: int, hi: int) -> None:
    """Note names: every pitch for a narrow range, else every C (and E, G when roomy)."""
    span = hi - lo
    if span <= 24:
        ticks = list(range(lo, hi + 1))
    else:
        classes = {0} if span > 48 else {0, 4, 7}
        ticks = [p for p in range(lo, hi + 1) if p % 12 in classes]
    ax.set_yticks(ticks, [pitch_name(p) for p in ticks], fontsize=6 if span <= 24 else 7)
    ax.set_ylabel("pitch", fontsize=8)


def _bar_lines(ax: Axes, score: Score, end: int) -> None:
    starts = score.bar_starts(end)
    ymin, ymax = ax.get_ylim()
    width = 0.6 if len(starts) <= 48 else 0.3
    ax.vlines(starts, ymin, ymax, colors="0.6", linewidths=width, zorder=1)
    ax.set_ylim(ymin, ymax)


def _bar_axis(ax: Axes, score: Score, end: int) -> None:
    """Bar numbers (1-based) under the bar lines, thinned out for long pieces."""
    starts = score.bar_starts(end)
    step = max(1, math.ceil(len(starts) / MAX_BAR_LABELS))
    idx = np.arange(0, len(starts), step)
    ax.set_xticks(starts[idx], [str(i + 1) for i in idx], fontsize=7)
    ax.set_xlabel("bar", fontsize=8)


def _legend(ax: Axes, score: Score, colours: list[str]) -> None:
    """Track names above the plot, right-aligned, so no note is hidden."""
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=colours[i], label=track_label(t, i))
        for i, t in enumerate(score.tracks)
        if len(t)
    ]
    if handles:
        ax.legend(
            handles=handles,
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            ncol=min(len(handles), 6),
            fontsize=7,
            frameon=False,
            borderaxespad=0.2,
        )
