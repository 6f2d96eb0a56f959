from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from musegen.errors import MusegenError
from musegen.render.pianoroll import (
    DPI,
    HEIGHT_IN,
    VOICE_COLOURS,
    WIDTH_IN,
    pianoroll_figure,
    render_pianoroll,
)
from musegen.score import Note, Score, Tempo, TimeSignature, Track

pytest.importorskip("matplotlib")


def read_png(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    return imread(str(path))  # float RGBA in [0, 1], rows top to bottom


def note_collections(ax: object) -> list:
    return [c for c in ax.collections if c.get_gid() == "notes"]  # type: ignore[attr-defined]


def coloured(img: np.ndarray) -> np.ndarray:
    """Pixels with a clear hue (greys, black and white are not)."""
    rgb = img[..., :3]
    return (rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.15


def test_png_has_page_size(gap_score: Score, tmp_path: Path) -> None:
    img = read_png(render_pianoroll(gap_score, tmp_path / "roll.png"))
    assert img.shape[:2] == (round(HEIGHT_IN * DPI), round(WIDTH_IN * DPI))
    small = read_png(render_pianoroll(gap_score, tmp_path / "s.png", width=4, height=2, dpi=50))
    assert small.shape[:2] == (100, 200)


def test_one_note_is_drawn_where_it_is(tmp_path: Path) -> None:
    """Coloured pixels inside the plot fill the note's rectangle and appear nowhere else."""
    note = Note(64, 960, 960, 127)  # beats 2-4 of the first bar
    score = Score(
        tracks=[Track.from_notes([note], name="Lead")],
        tempos=[Tempo(0, 120.0)],
        time_signatures=[TimeSignature(0, 4, 4)],
    )
    fig = pianoroll_figure(score)
    ax = fig.axes[0]
    path = tmp_path / "one.png"
    fig.savefig(path, dpi=fig.dpi)
    img = read_png(path)
    height = img.shape[0]

    def rows_cols(box: np.ndarray) -> tuple[slice, slice]:
        (x0, y0), (x1, y1) = box
        return slice(round(height - y1), round(height - y0)), slice(round(x0), round(x1))

    (x0, x1), (y0, y1) = (note.start, note.end), (note.pitch - 0.4, note.pitch + 0.4)
    box = ax.transData.transform([(x0, y0), (x1, y1)])
    plot = ax.get_window_extent().get_points()
    mask = coloured(img)
    r, c = rows_cols(box)
    assert mask[r, c].mean() > 0.9  # the note is filled in

    inside = np.zeros_like(mask)
    pr, pc = rows_cols(plot)
    inside[pr, pc] = True  # the plot area only: the legend sits above it
    grown = np.zeros_like(mask)
    grown[r.start - 2 : r.stop + 2, c.start - 2 : c.stop + 2] = True
    assert not (mask & inside & ~grown).any()  # nothing coloured elsewhere in the plot


def test_satb_voices_get_voice_colours(tmp_path: Path) -> None:
    from matplotlib.colors import to_rgb

    pitches = {"S": 72, "A": 67, "T": 60, "B": 48}
    tracks = [Track.from_notes([Note(p, 0, 480, 127)], voice=v) for v, p in pitches.items()]
    tracks.append(Track.from_notes([Note(84, 0, 480, 127)], name="Other"))
    fig = pianoroll_figure(Score(tracks=tracks))
    colours = [tuple(c.get_facecolors()[0][:3]) for c in note_collections(fig.axes[0])]
    assert colours[:4] == [to_rgb(VOICE_COLOURS[v]) for v in "SATB"]
    assert colours[4] not in colours[:4]  # an unlabelled track takes a colour no voice has
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["Soprano", "Alto", "Tenor", "Bass", "Other"]


def test_velocity_shades_notes() -> None:
    track = Track.from_notes([Note(60, 0, 480, 20), Note(62, 480, 480, 127)])
    alpha = note_collections(pianoroll_figure(Score(tracks=[track])).axes[0])[0].get_facecolors()[
        :, 3
    ]
    assert alpha[0] < alpha[1] == pytest.approx(1.0)


def test_svg_legend_and_drum_lane(band_score: Score, tmp_path: Path) -> None:
    path = render_pianoroll(band_score, tmp_path / "band.svg", title="band")
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    fig = pianoroll_figure(band_score)
    assert len(fig.axes) == 2  # pitched notes, then a drum lane
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["Piano 1", "Bass 2", "Ensemble 3", "Drums"]


def test_bar_numbers_and_pitch_names(gap_score: Score) -> None:
    ax = pianoroll_figure(gap_score).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2"]
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert "C4" in names and "E4" in names


def test_empty_score_and_bad_suffix(tmp_path: Path) -> None:
    img = read_png(render_pianoroll(Score(), tmp_path / "empty.png", width=3, height=2, dpi=40))
    assert img.shape[:2] == (80, 120)
    with pytest.raises(MusegenError, match="format"):
        render_pianoroll(Score(), tmp_path / "roll.gif")
