"""Chord-tone guidance: melodies that spell the chord each bar was asked for.

``generate --chords`` forces each bar's chord token (:meth:`~musegen.tokenizers.controls.
MelodyChordsTokenizer.controlled`); a small model then writes a melody *over* that chord, but
the melody alone often does not spell it (the project's labeller reads the asked chord from it
in a minority of bars). :func:`chord_toned` narrows, at sampling time, which pitches a note
may start on in a bar whose chord is known:

* ``beats``: notes that start on a beat are chord tones (off-beat notes are free: passing
  and neighbour tones);
* ``all``: every note is a chord tone;
* ``off``: no guidance.

Only pitch choices at onsets are narrowed (rests, holds and the rhythm are the model's), and
a cell where no chord tone is allowed stays free, so it never makes a dead end.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from musegen.errors import MusegenError
from musegen.tokenizers.base import Grammar

LEVELS = ("off", "beats", "all")


def chord_toned(tokenizer: Any, level: str) -> Any:
    """A copy of a ``melody-chords`` tokenizer whose grammar guides pitches by ``level``."""
    if level not in LEVELS:
        raise MusegenError(f"--chord-tones {level!r}: choose {', '.join(LEVELS)}")
    if level == "off":
        return tokenizer
    if not hasattr(tokenizer, "chord_lo"):
        raise MusegenError("--chord-tones needs a model with chord tokens (melody-chords)")
    out = copy.copy(tokenizer)
    inner = tokenizer.grammar
    out.grammar = lambda: ChordToneGrammar(inner(), tokenizer, level)  # type: ignore[method-assign]
    return out


class ChordToneGrammar(Grammar):
    """The controlled grammar with each bar's onsets narrowed to its chord's tones."""

    def __init__(self, inner: Grammar, tok: Any, level: str) -> None:
        self._inner = inner
        self._tok = tok
        self._all = level == "all"
        self._bar_lo, self._bar_hi = tok.vocab.span("bar")
        self._chord_lo = tok.chord_lo
        self._chord_hi = tok.chord_lo + len(tok.chords.labels)
        self._ts_lo, self._ts_hi = tok.vocab.span("ts")
        self.rows_per_beat = tok.config.steps_per_quarter
        self.row = 0  # rows written in this bar
        self.tones: np.ndarray | None = None  # allowed pitch ids of this bar's chord

    @property
    def done(self) -> bool:
        return self._inner.done

    def mask(self) -> np.ndarray:
        m = self._inner.mask()
        if self.tones is None or (not self._all and self.row % self.rows_per_beat):
            return m
        pitches = m[self._tok.pitch_offset :]
        if not pitches.any():
            return m  # a rest, a hold or a control token is due
        narrowed = m.copy()
        narrowed[self._tok.pitch_offset :] &= self.tones
        return narrowed if narrowed[self._tok.pitch_offset :].any() else m

    def step(self, token: int) -> None:
        self._inner.step(token)
        tok = self._tok
        if self._ts_lo <= token < self._ts_hi:
            den = int(tok.config.time_signatures[token - self._ts_lo].split("/")[1])
            self.rows_per_beat = max(1, tok.config.steps_per_quarter * 4 // den)
        elif self._bar_lo <= token < self._bar_hi:
            self.row, self.tones = 0, None
        elif self._chord_lo <= token < self._chord_hi:
            pcs = tok.chords.matrix[token - self._chord_lo] > 0
            self.tones = pcs[np.arange(128) % 12]
        elif token == tok.no_chord:
            self.tones = None
        elif token >= tok.rest_id:
            self.row += 1  # one voice: a cell is a row
