"""Chord-tone guidance: melodies that spell the chord each bar was asked for.

``generate --chords`` forces each bar's chord token (:meth:`~musegen.tokenizers.controls.
MelodyChordsTokenizer.controlled`); a small model then writes a melody *over* that chord, but
the melody alone often does not spell it (the project's labeller reads the asked chord from it
in a minority of bars). :func:`chord_toned` narrows, at sampling time, which pitches a note
may start on in a bar whose chord is known:

* ``beats``: notes that start on a beat are chord tones (off-beat notes are free: passing
  and neighbour tones);
* ``all``: every note is a chord tone;
* ``spell``: every note is a chord tone, the bar's downbeat is no held note, its first note
  is the root and the lowest, and its next notes sound the chord's other tones before any
  comes again, a note starting on each beat until they all have: what the labeller needs to
  read the chord from the melody alone (the root as the bass, every tone present), at the
  cost of arpeggio-like bars and of the rhythm (the density asked for);
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

LEVELS = ("off", "beats", "all", "spell")


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
        self._all = level in ("all", "spell")
        self._spell = level == "spell"
        self.root = -1  # MIDI pitch of the bar's first note (spell)
        self.unused: set[int] = set()  # chord tones (pitch classes) not yet sounded (spell)
        self._bar_lo, self._bar_hi = tok.vocab.span("bar")
        self._chord_lo = tok.chord_lo
        self._chord_hi = tok.chord_lo + len(tok.chords.labels)
        self._ts_lo, self._ts_hi = tok.vocab.span("ts")
        self.rows_per_beat = tok.config.steps_per_quarter
        self.row = 0  # rows written in this bar
        self.tones: np.ndarray | None = None  # allowed pitch ids of this bar's chord
        self.chord_root = -1

    @property
    def done(self) -> bool:
        return self._inner.done

    def mask(self) -> np.ndarray:
        m = self._inner.mask()
        if self.tones is None or (not self._all and self.row % self.rows_per_beat):
            return m
        lo = self._tok.pitch_offset
        if not m[lo:].any():
            return m  # a rest, a hold or a control token is due
        narrowed = m.copy()
        for allowed in self._spelled(m[lo:]) if self._spell else [self.tones]:
            if (m[lo:] & allowed).any():  # the first choice the range and grammar allow
                narrowed[lo:] &= allowed
                break
        else:
            return m
        if self._spell and self.row == 0:
            narrowed[self._tok.hold_id] = False  # the downbeat sounds this bar's chord
        if self._spell and (self.unused or self.root < 0) and self.row % self.rows_per_beat == 0:
            # a tone not yet sounded starts on this beat: a model that finds the tones
            # unlikely would otherwise hold or rest (masking leaves those their mass)
            narrowed[[self._tok.hold_id, self._tok.rest_id]] = False
        return narrowed

    def _spelled(self, pitches: np.ndarray) -> list[np.ndarray]:
        """Pitches a note may start on under ``spell`` (``pitches``: those the grammar
        allows), best first: the root first (where the chord's other tones fit above it),
        then the tones not yet sounded, then any tone, never below the first note; any tone
        when none of those fits."""
        assert self.tones is not None
        pcs = np.arange(128) % 12
        if self.root < 0:
            roots = self.tones & (pcs == self.chord_root)
            above = np.flatnonzero(self.tones[:12]) - self.chord_root
            offsets = [int(k) % 12 for k in above if int(k) % 12]
            room = roots.copy()
            for r in np.flatnonzero(roots):
                room[r] = all(r + k < 128 and pitches[r + k] for k in offsets)
            return [room, roots, self.tones]
        above = self.tones & (np.arange(128) >= self.root)
        return [above & np.isin(pcs, list(self.unused)), above, self.tones]

    def step(self, token: int) -> None:
        self._inner.step(token)
        tok = self._tok
        if self._ts_lo <= token < self._ts_hi:
            den = int(tok.config.time_signatures[token - self._ts_lo].split("/")[1])
            self.rows_per_beat = max(1, tok.config.steps_per_quarter * 4 // den)
        elif self._bar_lo <= token < self._bar_hi:
            self.row, self.tones, self.root = 0, None, -1
        elif self._chord_lo <= token < self._chord_hi:
            k = token - self._chord_lo
            pcs = tok.chords.matrix[k] > 0
            self.tones = pcs[np.arange(128) % 12]
            self.chord_root = int(tok.chords.roots[k])
            self.unused = {int(pc) for pc in np.flatnonzero(pcs)}
        elif token == tok.no_chord:
            self.tones = None
        elif token >= tok.rest_id:
            if token >= tok.pitch_offset and self.tones is not None:
                pitch = token - tok.pitch_offset
                self.root = pitch if self.root < 0 else self.root
                self.unused.discard(pitch % 12)
            self.row += 1  # one voice: a cell is a row
