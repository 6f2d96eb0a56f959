"""The ``melody-chords`` tokenizer: the ``melody`` bar grid with a chord (and a density) per bar.

FIGARO-style control for melodies. Each ``BAR_n`` token is followed by the bar's chord, and,
when the config has density bins, by the bar's density bin::

    BOS TS_4/4 LEN_8 [pickup rows] BAR_8 CHORD_C DENS_medium rows… BAR_7 CHORD_G DENS_low …

* ``CHORD_<name>``: a root and a quality (``chord_qualities``), or ``CHORD_N`` where nothing
  sounds. The label comes from the project's chord labeller (:func:`musegen.theory.best_chords`
  with :data:`~musegen.theory.TEMPLATE_RULE`) over **every** pitched note in the bar, so a
  source with an accompaniment (Nottingham's melody + chords) labels the bar by its chords,
  while the rows keep only the top line; a bare melody is labelled by its own notes.
* ``DENS_low|medium|high``: the top line's note onsets per beat (beat: one unit of the meter's
  denominator) in the bin set by ``density_edges`` (two edges, learned from a corpus and
  stored in the config; empty: no density tokens).

The rows, the countdown and the pickup are those of :class:`~musegen.tokenizers.chorale.
MelodyTokenizer`; the control tokens sit before the cells in the vocabulary, so decoding is the
melody tokenizer's. :meth:`MelodyChordsTokenizer.controlled` returns a copy whose grammar
forces the chord (and density bin) of every bar: a model then writes a melody over the chords
asked for (``musegen generate --chords "C G Am F"``). A forced density bin is also *counted*
(unless ``count=False``): the grammar keeps the bar's onsets so far and the rows still to
come, takes the pitches away once the bin's most notes have started and leaves only pitches
when every row left must start one, so each bar lands in its bin (a small model given the
token alone lands in it in about half of the bars: the bins are the terciles of the training
bars, and ``medium`` is 4 or 5 notes out of 8 eighths in 4/4).

``python -m musegen.tokenizers.controls`` prints the vocabulary.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from musegen.errors import MusegenError
from musegen.score import Score
from musegen.theory import (
    CHORD_QUALITIES,
    TEMPLATE_RULE,
    Chord,
    ChordVocabulary,
    best_chords,
    parse_chord,
)
from musegen.tokenizers.base import EOS, TokenizerConfig, Vocab
from musegen.tokenizers.chorale import BarGridGrammar, MelodyConfig, MelodyTokenizer
from musegen.tokenizers.grid import _note_frames

DEFAULT_QUALITIES = ("maj", "min", "dim", "aug", "dom7", "min7")
DENSITY_BINS = ("low", "medium", "high")


@dataclass
class MelodyChordsConfig(MelodyConfig):
    """``melody`` options plus the chord qualities a bar may carry and the density bin edges
    (notes per beat; two increasing numbers, or none for no density tokens)."""

    chord_qualities: Sequence[str] = field(default_factory=lambda: list(DEFAULT_QUALITIES))
    density_edges: Sequence[float] = field(default_factory=list)
    # what a bar's chord is labelled from: "all" its pitched notes (a melody's accompaniment
    # included), or "line": the top line the rows carry (a chord the melody itself spells)
    chord_source: str = "all"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.chord_qualities = [str(q) for q in self.chord_qualities]
        unknown = [q for q in self.chord_qualities if q not in CHORD_QUALITIES]
        if (
            unknown
            or not self.chord_qualities
            or len(set(self.chord_qualities)) < len(self.chord_qualities)
        ):
            raise MusegenError(
                f"MelodyChordsConfig.chord_qualities must be distinct names from "
                f"{', '.join(CHORD_QUALITIES)}, got {list(self.chord_qualities)}"
            )
        if self.chord_source not in ("all", "line"):
            raise MusegenError(
                f"MelodyChordsConfig.chord_source must be 'all' or 'line', got {self.chord_source!r}"
            )
        self.density_edges = [float(e) for e in self.density_edges]
        e = self.density_edges
        if e and (len(e) != len(DENSITY_BINS) - 1 or not 0 < e[0] < e[1]):
            raise MusegenError(
                f"MelodyChordsConfig.density_edges must be two increasing positive numbers "
                f"(notes per beat) or empty, got {e}"
            )


@dataclass(frozen=True)
class ControlPlan:
    """What a controlled grammar forces: bar ``i``'s chord token is ``chords[i % len]`` and its
    density token ``densities[i % len]`` (empty: free)."""

    chords: tuple[int, ...] = ()
    densities: tuple[int, ...] = ()
    count: bool = True  # keep each bar's onsets within its forced density bin


@dataclass(frozen=True)
class BarControl:
    """One bar's control tokens as read back from a sequence."""

    chord: str | None  # a chord name, None for CHORD_N
    density: str | None  # a bin name, None when the tokenizer has no density tokens
    notes: int  # note onsets of the line in the bar
    beats: int


class MelodyChordsTokenizer(MelodyTokenizer):
    """The melody bar grid with chord and density tokens after each bar line (see the module
    docstring)."""

    name: ClassVar[str] = "melody-chords"
    config_class: ClassVar[type[TokenizerConfig]] = MelodyChordsConfig
    config: MelodyChordsConfig

    def __init__(self, config: TokenizerConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.chord_lo = self.vocab.offset("chord")
        self.no_chord = self.vocab.offset("nochord")
        self.has_density = bool(self.config.density_edges)
        self.plan: ControlPlan | None = None
        # what ``controlled`` can force (musegen.sampling.generators reads it)
        self.controls = ("chords", "density") if self.has_density else ("chords",)

    def build_vocab(self) -> Vocab:
        self.chords = ChordVocabulary(tuple(self.config.chord_qualities))
        base = super().build_vocab()
        vocab = Vocab()
        for name, (lo, size) in base.blocks.items():
            if name in ("PAD", "BOS", "EOS"):
                continue
            if name == "rest":  # control tokens go before the cells (decode reads ids >= REST)
                names = [Chord(r, q, r).name for r, q in self.chords.labels]
                vocab.add("chord", len(names), lambda v, names=names: f"CHORD_{names[v]}")
                vocab.add("nochord", 1, lambda _v: "CHORD_N")
                if self.config.density_edges:
                    vocab.add("dens", len(DENSITY_BINS), lambda v: f"DENS_{DENSITY_BINS[v]}")
            vocab.add(name, size, lambda v, lo=lo: base.token(lo + v))
        return vocab

    # ---------------------------------------------------------------- encoding
    def encode(
        self, score: Score, bos: bool = True, eos: bool = True, bars: int | None = None
    ) -> np.ndarray:
        ids = super().encode(score, bos=bos, eos=eos, bars=bars)
        marks = np.flatnonzero(self.vocab.is_in(ids, "bar"))
        if not len(marks):
            return ids
        ts_index, bar, pickup_meter = self._meter(score)
        cells = self._score_cells(score)
        sounding = np.flatnonzero((cells != self.rest_id).any(axis=1))
        drop = int(sounding[0]) if len(sounding) and pickup_meter is None else 0
        is_cell = ids >= self.rest_id
        rows_before = np.cumsum(is_cell)[marks]  # one voice: a cell is a row
        starts = drop + rows_before
        if self.config.chord_source == "line":
            chord_ids = self._line_chords(ids, marks)
        else:
            chord_ids = self._bar_chords(score, starts, bar)
        values = [chord_ids]
        if self.has_density:
            num = int(self.config.time_signatures[ts_index].split("/")[0])
            onsets = np.cumsum(ids >= self.pitch_offset)
            ends = np.append(marks[1:], len(ids))
            counts = onsets[ends - 1] - onsets[marks]
            values.append(self.vocab.offset("dens") + self.density_bin(counts / num))
        per_bar = np.stack(values, axis=1).ravel()
        return np.insert(ids, np.repeat(marks + 1, len(values)), per_bar)

    def _bar_chords(self, score: Score, starts: np.ndarray, bar: int) -> np.ndarray:
        """The chord token of each bar starting at step ``starts[i]`` (``bar`` steps long),
        labelled over every pitched note of ``score``."""
        notes = [t.notes for t in score.tracks if not t.is_drum and len(t)]
        out = np.full(len(starts), self.no_chord, dtype=np.int64)
        if not notes:
            return out
        merged = np.concatenate(notes)
        on, off = _note_frames(merged, score.tpq, self.config.steps_per_quarter)
        lo, hi = starts[:, None], starts[:, None] + bar
        overlap = np.maximum(np.minimum(off[None, :], hi) - np.maximum(on[None, :], lo), 0)
        pitch = merged["pitch"].astype(np.int64)
        weights = overlap @ np.eye(12)[pitch % 12]
        bass = np.where(overlap > 0, pitch[None, :], 999).min(axis=1)
        best = best_chords(
            weights, np.where(bass == 999, -1, bass), vocabulary=self.chords, rule=TEMPLATE_RULE
        )
        return np.where(best >= 0, self.chord_lo + best, self.no_chord)

    def _line_chords(self, ids: np.ndarray, marks: np.ndarray) -> np.ndarray:
        """The chord token of each bar (``BAR`` tokens at ``marks``) labelled over the line's
        own cells: each sounding row counts once for its pitch class."""
        pos = np.flatnonzero(ids >= self.rest_id)
        cells = ids[pos]
        src = np.maximum.accumulate(np.where(cells == self.hold_id, -1, np.arange(len(cells))))
        last = cells[np.maximum(src, 0)]
        pitch = np.where((src >= 0) & (last >= self.pitch_offset), last - self.pitch_offset, -1)
        bar_of = np.searchsorted(marks, pos) - 1  # the last BAR before each cell
        keep = (pitch >= 0) & (bar_of >= 0)
        weights = np.zeros((len(marks), 12))
        np.add.at(weights, (bar_of[keep], pitch[keep] % 12), 1.0)
        low = np.full(len(marks), 999)
        np.minimum.at(low, bar_of[keep], pitch[keep])
        best = best_chords(
            weights, np.where(low == 999, -1, low), vocabulary=self.chords, rule=TEMPLATE_RULE
        )
        return np.where(best >= 0, self.chord_lo + best, self.no_chord)

    def density_bin(self, density: np.ndarray | float) -> np.ndarray:
        """Bin index (0 low, 1 medium, 2 high) of notes-per-beat values."""
        return np.searchsorted(np.asarray(self.config.density_edges), density, side="right")

    def onset_range(self, bin_index: int, beats: int, rows: int) -> tuple[int, int]:
        """The fewest and most note onsets a bar of ``rows`` rows and ``beats`` beats may have
        to fall in density bin ``bin_index`` (as :meth:`encode` bins it); where no count
        fits (``high`` in a meter too short for it), the count nearest to the bin."""
        counts = np.arange(rows + 1)
        bins = self.density_bin(counts / beats)
        fit = np.flatnonzero(bins == bin_index)
        if len(fit):
            return int(fit[0]), int(fit[-1])
        nearest = 0 if bin_index < bins[0] else rows
        return nearest, nearest

    # ---------------------------------------------------------------- reading back
    def chord_token(self, chord: Chord | str) -> int:
        """The token of a chord (its root and quality; a slash bass is not carried)."""
        c = parse_chord(chord) if isinstance(chord, str) else chord
        if c.quality not in self.chords.qualities:
            raise MusegenError(
                f"chord {c.name}: this {self.name} tokenizer knows the qualities "
                f"{', '.join(self.chords.qualities)}"
            )
        return self.chord_lo + self.chords.labels.index((c.root, c.quality))

    def chord_name(self, token: int) -> str | None:
        """The chord name of a chord token (None for ``CHORD_N``)."""
        if token == self.no_chord:
            return None
        root, quality = self.chords.labels[token - self.chord_lo]
        return Chord(root, quality, root).name

    def bar_controls(self, ids: np.ndarray | Sequence[int]) -> list[BarControl]:
        """Each bar's chord and density tokens, and the onsets and beats of its line."""
        ids = np.asarray(ids, dtype=np.int64)
        marks = np.flatnonzero(self.vocab.is_in(ids, "bar"))
        if not len(marks):
            return []
        ts = ids[self.vocab.is_in(ids, "ts")]
        ts_index = int(ts[0] - self.vocab.offset("ts")) if len(ts) else 0
        beats = int(self.config.time_signatures[ts_index].split("/")[0])
        ends = np.append(marks[1:], len(ids))
        out = []
        for a, b in zip(marks.tolist(), ends.tolist(), strict=True):
            seg = ids[a + 1 : b]
            chord = seg[self.vocab.is_in(seg, "chord") | (seg == self.no_chord)]
            dens = seg[self.vocab.is_in(seg, "dens")] if self.has_density else seg[:0]
            out.append(
                BarControl(
                    self.chord_name(int(chord[0])) if len(chord) else None,
                    DENSITY_BINS[int(dens[0]) - self.vocab.offset("dens")] if len(dens) else None,
                    int((seg >= self.pitch_offset).sum()),
                    beats,
                )
            )
        return out

    def transpose_controls(self, ids: np.ndarray, shift: int) -> np.ndarray:
        """``ids`` with every chord token's root moved ``shift`` semitones (the pitch tokens
        are moved by :class:`~musegen.data.augment.TokenTranspose`)."""
        out = np.array(ids, dtype=np.int64)
        is_chord = self.vocab.is_in(out, "chord")
        out[is_chord] = self.chord_lo + self.chords.transpose(out[is_chord] - self.chord_lo, shift)
        return out

    # ---------------------------------------------------------------- control
    def controlled(
        self,
        chords: Sequence[Chord | str] = (),
        density: Sequence[str] = (),
        count: bool = True,
    ) -> MelodyChordsTokenizer:
        """A copy whose grammar forces bar ``i``'s chord to ``chords[i % len(chords)]`` and its
        density bin to ``density[i % len(density)]`` (either may be empty: free); with
        ``count`` the bar's note onsets are kept within the bin too (else only the token is
        forced, and the model decides how many notes follow it)."""
        bins = []
        for d in density:
            if d not in DENSITY_BINS:
                raise MusegenError(f"density {d!r}: choose {', '.join(DENSITY_BINS)}")
            if not self.has_density:
                raise MusegenError(
                    f"this {self.name} tokenizer has no density tokens (its config has no "
                    "density_edges)"
                )
            bins.append(self.vocab.offset("dens") + DENSITY_BINS.index(d))
        out = copy.copy(self)
        out.plan = ControlPlan(tuple(self.chord_token(c) for c in chords), tuple(bins), count)
        return out

    def grammar(self) -> ControlGrammar:
        return ControlGrammar(self, self.plan)

    def describe(self) -> str:
        text = super().describe()
        return (
            text
            + "\n  after each BAR_n: one CHORD_* (CHORD_N: silence)"
            + (", then one DENS_*" if self.has_density else "")
        )


class ControlGrammar(BarGridGrammar):
    """The bar-grid grammar with the control tokens after each bar line, forced by a plan;
    with ``plan.count``, each bar's note onsets are kept in its forced density bin."""

    def __init__(self, tok: MelodyChordsTokenizer, plan: ControlPlan | None = None) -> None:
        super().__init__(tok)
        self._ctok = tok
        self._plan = plan or ControlPlan()
        self.pending: list[str] = []  # control blocks still due after the last BAR
        self.bars_seen = 0
        n = len(tok.vocab)
        self._chord_mask = tok.vocab.mask("chord", "nochord")
        self._dens_mask = tok.vocab.mask("dens") if tok.has_density else np.zeros(n, bool)
        self._counting = self._plan.count and bool(self._plan.densities)
        self.beats = 1  # beats per bar (the meter's numerator, as the encoder counts)
        self.onsets = 0  # notes started in the current bar
        self.onset_range: tuple[int, int] | None = None  # counted bar: fewest, most onsets

    def mask(self) -> np.ndarray:
        if not self.pending:
            out = super().mask()
            if self.onset_range is not None:
                self._count_onsets(out)
            return out
        i = self.bars_seen - 1
        forced = self._plan.chords if self.pending[0] == "chord" else self._plan.densities
        if forced:
            out = np.zeros(len(self._chord_mask), dtype=bool)
            out[forced[i % len(forced)]] = True
            return out
        return (self._chord_mask if self.pending[0] == "chord" else self._dens_mask).copy()

    def _count_onsets(self, out: np.ndarray) -> None:
        """Narrow a body mask so the bar's onsets stay within ``onset_range``: no new note
        once the most have started, only new notes when each row left must start one, and no
        early end of the piece before the fewest have started."""
        tok = self._ctok
        fewest, most = self.onset_range  # type: ignore[misc]
        left = self.bar_steps - self.rows  # rows still to write, this one included
        if left > 0 and out[tok.pitch_offset :].any():
            if self.onsets >= most:
                out[tok.pitch_offset :] = False
            elif fewest - self.onsets >= left:
                out[[tok.rest_id, tok.hold_id]] = False
        if self.onsets < fewest and left > 0:
            out[EOS] = False

    def step(self, token: int) -> None:
        if self.pending:
            if not 0 <= token < len(self._chord_mask) or not self.mask()[token]:
                raise ValueError(
                    f"{self._ctok.name} token {token} not allowed here (a {self.pending[0]} "
                    f"token is due after bar {self.bars_seen})"
                )
            kind = self.pending.pop(0)
            if kind == "dens" and self._counting:
                bin_index = token - self._ctok.vocab.offset("dens")
                self.onset_range = self._ctok.onset_range(bin_index, self.beats, self.bar_steps)
            return
        if self.stage == "ts":
            ts = self._ctok.config.time_signatures[token - self._m.ts_lo]
            self.beats = int(ts.split("/")[0])
        super().step(token)
        if self._m.bar_lo <= token < self._m.bar_hi:
            self.bars_seen += 1
            self.pending = ["chord", "dens"] if self._ctok.has_density else ["chord"]
            self.onsets, self.onset_range = 0, None
        elif token >= self._ctok.pitch_offset and self.stage == "body":
            self.onsets += 1


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(description="Print the melody-chords vocabulary and grammar.")
    p.add_argument("--config", default="{}", help="tokenizer options as JSON")
    args = p.parse_args(argv)
    print(MelodyChordsTokenizer(**json.loads(args.config)).describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
