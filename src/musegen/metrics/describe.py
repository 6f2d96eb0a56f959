"""A description of a piece, bar by bar (FIGARO-style): what a user can read, edit and generate
from (``musegen describe``, ``musegen generate --chords … --density …``).

Per bar: its meter, its local key, its chord (one label for the whole bar) and the chords of
its beats, its note density (notes per beat) and mean pitch, each with a bin
(``low``/``medium``/``high``), and the instruments that play in it.

* Chords come from the project's one labeller (:func:`musegen.theory.label_chords`) over the
  bar's duration-weighted pitch classes; the beat chords are those of
  :func:`musegen.metrics.harmony.chords_per_beat`, merged where a chord goes on.
* The bin edges are learned from a corpus (:func:`learn_bins`: the terciles of every bar's
  value) and stored in ``description_bins.json`` beside this module, with the corpus named;
  ``scripts/description_bins.py`` remakes that file.
* A beat is one unit of the meter's denominator (a quarter in 4/4, an eighth in 6/8).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musegen.metrics.harmony import beat_pitch_classes, chords_per_beat
from musegen.score import Score
from musegen.theory import find_key, label_chords, score_key

BINS = ("low", "medium", "high")
BINS_FILE = Path(__file__).with_name("description_bins.json")
VOICE_NAMES = {"S": "Soprano", "A": "Alto", "T": "Tenor", "B": "Bass"}
# General MIDI program names, 0..127, eight to a family
_GM_NAMES = (
    "Acoustic Grand Piano|Bright Acoustic Piano|Electric Grand Piano|Honky-tonk Piano|"
    "Electric Piano 1|Electric Piano 2|Harpsichord|Clavinet|Celesta|Glockenspiel|Music Box|"
    "Vibraphone|Marimba|Xylophone|Tubular Bells|Dulcimer|Drawbar Organ|Percussive Organ|"
    "Rock Organ|Church Organ|Reed Organ|Accordion|Harmonica|Tango Accordion|"
    "Acoustic Guitar (nylon)|Acoustic Guitar (steel)|Electric Guitar (jazz)|"
    "Electric Guitar (clean)|Electric Guitar (muted)|Overdriven Guitar|Distortion Guitar|"
    "Guitar Harmonics|Acoustic Bass|Electric Bass (finger)|Electric Bass (pick)|"
    "Fretless Bass|Slap Bass 1|Slap Bass 2|Synth Bass 1|Synth Bass 2|Violin|Viola|Cello|"
    "Contrabass|Tremolo Strings|Pizzicato Strings|Orchestral Harp|Timpani|String Ensemble 1|"
    "String Ensemble 2|Synth Strings 1|Synth Strings 2|Choir Aahs|Voice Oohs|Synth Voice|"
    "Orchestra Hit|Trumpet|Trombone|Tuba|Muted Trumpet|French Horn|Brass Section|"
    "Synth Brass 1|Synth Brass 2|Soprano Sax|Alto Sax|Tenor Sax|Baritone Sax|Oboe|"
    "English Horn|Bassoon|Clarinet|Piccolo|Flute|Recorder|Pan Flute|Blown Bottle|Shakuhachi|"
    "Whistle|Ocarina|Lead 1 (square)|Lead 2 (sawtooth)|Lead 3 (calliope)|Lead 4 (chiff)|"
    "Lead 5 (charang)|Lead 6 (voice)|Lead 7 (fifths)|Lead 8 (bass + lead)|Pad 1 (new age)|"
    "Pad 2 (warm)|Pad 3 (polysynth)|Pad 4 (choir)|Pad 5 (bowed)|Pad 6 (metallic)|Pad 7 (halo)|"
    "Pad 8 (sweep)|FX 1 (rain)|FX 2 (soundtrack)|FX 3 (crystal)|FX 4 (atmosphere)|"
    "FX 5 (brightness)|FX 6 (goblins)|FX 7 (echoes)|FX 8 (sci-fi)|Sitar|Banjo|Shamisen|Koto|"
    "Kalimba|Bagpipe|Fiddle|Shanai|Tinkle Bell|Agogo|Steel Drums|Woodblock|Taiko Drum|"
    "Melodic Tom|Synth Drum|Reverse Cymbal|Guitar Fret Noise|Breath Noise|Seashore|Bird Tweet|"
    "Telephone Ring|Helicopter|Applause|Gunshot"
)
GM_PROGRAMS = tuple(_GM_NAMES.split("|"))


@dataclass(frozen=True)
class Bins:
    """Bin edges (two increasing numbers: low below the first, high from the second) of bar
    density (notes per beat) and bar mean pitch (MIDI), and the corpus they were learned on."""

    density: tuple[float, float]
    pitch: tuple[float, float]
    corpus: str = ""

    @classmethod
    def load(cls, path: str | Path = BINS_FILE) -> Bins:
        d = json.loads(Path(path).read_text())
        return cls(tuple(d["density"]), tuple(d["pitch"]), d.get("corpus", ""))  # type: ignore[arg-type]


def bin_of(value: float | None, edges: tuple[float, float]) -> str | None:
    """``low``/``medium``/``high`` of a value (None for None)."""
    if value is None:
        return None
    return BINS[int(np.searchsorted(np.asarray(edges), value, side="right"))]


@dataclass
class BarDescription:
    bar: int  # 1-based, as the score's bar lines fall
    meter: str
    key: str | None  # local key (this bar and its neighbours)
    chord: str | None  # one label for the whole bar (None: silent)
    chords: list[str]  # the beats' chords, a repeated one once
    notes: int
    density: float  # notes starting in the bar per beat
    density_bin: str
    mean_pitch: float | None  # of the notes starting in the bar
    pitch_bin: str | None
    instruments: list[str]


@dataclass
class Description:
    key: str | None
    meter: str
    bars: list[BarDescription]
    instruments: list[str] = field(default_factory=list)
    bins: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def chords(self) -> list[str | None]:
        return [b.chord for b in self.bars]

    @property
    def density_bins(self) -> list[str]:
        return [b.density_bin for b in self.bars]


def track_label(track: Any) -> str:
    """A track's instrument: its voice (``Soprano``) or its GM program name (or ``Drums``)."""
    if track.voice:
        return VOICE_NAMES.get(track.voice, track.voice)
    return "Drums" if track.is_drum else GM_PROGRAMS[track.program]


def _chord_name(chord: Any) -> str | None:
    """Root and quality (no slash bass): what a bar is described and conditioned by."""
    return None if chord is None else type(chord)(chord.root, chord.quality, chord.root).name


def _bar_weights(score: Score) -> tuple[np.ndarray, np.ndarray, Any, np.ndarray]:
    """Per bar: duration-weighted pitch classes ``[bars, 12]`` and the lowest pitch (-1:
    silent), with the beat grid and each beat's bar."""
    weights, bass, grid = beat_pitch_classes(score)
    bar_of_beat = grid.bar_index(grid.beat_starts)
    w = np.zeros((grid.n_bars, 12))
    np.add.at(w, bar_of_beat, weights)
    low = np.full(grid.n_bars, 999)
    np.minimum.at(low, bar_of_beat, np.where(bass >= 0, bass, 999))
    return w, np.where(low == 999, -1, low), grid, bar_of_beat


def bar_chords(score: Score) -> list[str | None]:
    """One chord per bar of ``score`` (root + quality; None where nothing sounds), labelled by
    :func:`musegen.theory.label_chords` over the bar's duration-weighted pitch classes."""
    w, low, _, _ = _bar_weights(score)
    return [_chord_name(c) for c in label_chords(w, low)]


def describe(score: Score, bins: Bins | None = None) -> Description:
    """The piece's description, bar by bar (see the module docstring)."""
    bins = bins or Bins.load()
    w, low, grid, bar_of_beat = _bar_weights(score)
    n = grid.n_bars
    whole = label_chords(w, low)
    beats = np.bincount(bar_of_beat, minlength=n)
    runs: list[list[str]] = [[] for _ in range(n)]
    for bc in chords_per_beat(score):
        name = _chord_name(bc.chord)
        if name is not None and (not runs[bc.bar - 1] or runs[bc.bar - 1][-1] != name):
            runs[bc.bar - 1].append(name)
    counts, pitch_sums = np.zeros(n, np.int64), np.zeros(n)
    plays: list[set[int]] = [set() for _ in range(n)]
    for i, t in enumerate(score.tracks):
        if not len(t):
            continue
        first = grid.bar_index(t.notes["start"])
        last = grid.bar_index(np.maximum(t.notes["start"] + t.notes["duration"] - 1, 0))
        for a, b in zip(first.tolist(), last.tolist(), strict=True):
            for k in range(a, min(b, n - 1) + 1):
                plays[k].add(i)
        if t.is_drum:
            continue
        np.add.at(counts, first, 1)
        np.add.at(pitch_sums, first, t.notes["pitch"].astype(np.float64))
    labels = [track_label(t) for t in score.tracks]
    bars = []
    for k in range(n):
        local = find_key(w[max(k - 1, 0) : k + 2].sum(axis=0))
        density = round(float(counts[k] / max(beats[k], 1)), 4)
        mean = round(float(pitch_sums[k] / counts[k]), 2) if counts[k] else None
        bars.append(
            BarDescription(
                bar=k + 1,
                meter=_meter_at(score, int(grid.bar_starts[k])),
                key=str(local) if local is not None else None,
                chord=_chord_name(whole[k]),
                chords=runs[k],
                notes=int(counts[k]),
                density=density,
                density_bin=bin_of(density, bins.density) or BINS[0],
                mean_pitch=mean,
                pitch_bin=bin_of(mean, bins.pitch),
                instruments=[labels[i] for i in sorted(plays[k])],
            )
        )
    key = score_key(score)
    return Description(
        key=str(key) if key is not None else None,
        meter=_meter_at(score, 0),
        bars=bars,
        instruments=[labels[i] for i, t in enumerate(score.tracks) if len(t)],
        bins={"density": list(bins.density), "pitch": list(bins.pitch), "corpus": bins.corpus},
    )


def _meter_at(score: Score, tick: int) -> str:
    sigs = [ts for ts in score.time_signatures if ts.time <= tick]
    ts = sigs[-1] if sigs else None
    return f"{ts.numerator}/{ts.denominator}" if ts else "4/4"


def bar_values(score: Score) -> tuple[np.ndarray, np.ndarray]:
    """Every bar's density (notes per beat) and mean pitch (NaN for bars without notes): what
    :func:`learn_bins` reads."""
    d = describe(score, Bins((1.0, 2.0), (60.0, 70.0)))
    density = np.array([b.density for b in d.bars], dtype=np.float64)
    pitch = np.array([np.nan if b.mean_pitch is None else b.mean_pitch for b in d.bars])
    return density, pitch


def learn_bins(scores: list[Score], corpus: str = "") -> Bins:
    """Bin edges from a corpus: the terciles of its bars' densities (bars with notes) and
    mean pitches, rounded to 2 places."""
    values = [bar_values(s) for s in scores]
    density = np.concatenate([d for d, _ in values]) if values else np.zeros(0)
    pitch = np.concatenate([p for _, p in values]) if values else np.zeros(0)
    density, pitch = density[density > 0], pitch[~np.isnan(pitch)]
    if not len(density):
        raise ValueError("no bar with notes to learn bins from")
    d = np.round(np.quantile(density, [1 / 3, 2 / 3]), 2)
    p = np.round(np.quantile(pitch, [1 / 3, 2 / 3]), 2)
    return Bins((float(d[0]), float(d[1])), (float(p[0]), float(p[1])), corpus)


def to_text(description: Description, title: str = "") -> str:
    """The description as YAML-like text, one block per bar."""
    d = description
    lines = [f"# {title}"] if title else []
    lines += [f"key: {d.key}", f"meter: {d.meter}", f"instruments: {', '.join(d.instruments)}"]
    lines.append("bars:")
    for b in d.bars:
        lines += [
            f"- bar: {b.bar}",
            f"  meter: {b.meter}",
            f"  key: {b.key}",
            f"  chord: {b.chord}",
            f"  chords: [{', '.join(b.chords)}]",
            f"  density: {b.density} ({b.density_bin})",
            f"  mean_pitch: {b.mean_pitch} ({b.pitch_bin})",
            f"  instruments: [{', '.join(b.instruments)}]",
        ]
    return "\n".join(lines) + "\n"
