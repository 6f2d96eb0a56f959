"""Data augmentation: transposition and tempo stretch, seeded, always producing valid data.

Two levels:

* **Scores**, before tokenization: :func:`random_transpose` picks a shift in ``[-k, k]`` that
  keeps every pitched note inside a range (drum tracks never move), :func:`stretch` scales all
  times by a factor and re-quantizes them; :class:`ScoreAugment` chains both.
* **Tokens**, for speed on prepared data: :class:`TokenTranspose` shifts the pitch-block ids of
  ``events`` and ``remi`` sequences in one vectorised addition (notes under a drum
  ``PROGRAM`` token stay), the key columns of ``roll`` grids and the per-voice pitches of
  ``satb`` grids. The shift is drawn among those that keep every pitch inside its block (or
  voice range), so the result is always a valid sequence. Orders the grammars rely on survive:
  a common shift keeps pitches of one program sorted.

Tempo stretch has no exact token-level form (REMI positions live inside bars, event time
shifts are chained), so stretch at Score level and prepare the data again, or stretch scores
on the fly. Every function takes a ``numpy.random.Generator``: same seed, same result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musegen.errors import MusegenError
from musegen.score import Score
from musegen.tokenizers.base import BOS, Tokenizer

DRUMS = 128  # program value of the drum kit in PROGRAM tokens (events and remi)

# tokenizer name -> (pitch blocks, program block) in its vocabulary
_SEQUENCE_LAYOUT: dict[str, tuple[tuple[str, ...], str]] = {
    "events": (("NOTE_ON", "NOTE_OFF"), "PROGRAM"),
    "remi": (("pitch",), "program"),
    "chorale": (("pitch",), "program"),  # no program block: every voice moves
    "melody": (("pitch",), "program"),
    "melody-chords": (("pitch",), "program"),  # chord roots move with the pitches (apply)
    "remi-instruments": (("pitch",), "program"),  # the INST header names programs: it stays
}


# --------------------------------------------------------------------------- score level
def shift_bounds(low: int, high: int, pitch_range: tuple[int, int], max_shift: int) -> range:
    """Shifts in ``[-max_shift, max_shift]`` that keep pitches ``low..high`` in ``pitch_range``."""
    lo = max(-max_shift, pitch_range[0] - low)
    hi = min(max_shift, pitch_range[1] - high)
    return range(lo, hi + 1)


def _draw(shifts: range, rng: np.random.Generator) -> int:
    """A uniform choice among ``shifts``; 0 when none fits (the range is too wide)."""
    return int(rng.integers(shifts.start, shifts.stop)) if len(shifts) else 0


def random_transpose(
    score: Score,
    rng: np.random.Generator,
    max_shift: int = 6,
    pitch_range: tuple[int, int] = (0, 127),
) -> Score:
    """``score`` moved by a random shift that keeps its pitched notes inside ``pitch_range``."""
    span = score.pitch_range()
    if span is None:
        return score.copy()
    return score.transpose(_draw(shift_bounds(*span, pitch_range, max_shift), rng))


def stretch(score: Score, factor: float, step: int | None = None) -> Score:
    """Every time (notes, tempo/meter/key maps) times ``factor``, snapped to ``step`` ticks.

    Tempo marks keep their qpm, so the music plays ``factor`` times longer. ``step`` defaults
    to a 48th of a quarter; every note keeps at least one step.
    """
    if factor <= 0:
        raise MusegenError(f"stretch factor must be positive, got {factor}")
    step = step or max(score.tpq // 12, 1)
    scaled = score._map_times(lambda t: np.rint(t * factor).astype(np.int64))
    return scaled.quantize(step)


def pitch_range_of(tokenizer: Tokenizer) -> tuple[int, int]:
    """The pitches a tokenizer can represent (inclusive); 0..127 when it does not say."""
    cfg = tokenizer.config
    if hasattr(cfg, "pitch_range"):
        lo, hi = cfg.pitch_range
        return int(lo), int(hi)
    if hasattr(cfg, "low") and hasattr(cfg, "high"):
        return int(cfg.low), int(cfg.high)
    if hasattr(cfg, "ranges"):
        ranges = cfg.ranges
        return min(r[0] for r in ranges), max(r[1] for r in ranges)
    return 0, 127


@dataclass
class ScoreAugment:
    """Random transposition and tempo stretch of a Score, for on-the-fly pipelines.

    ``stretch_range=(0.9, 1.1)`` draws a factor log-uniformly; None turns stretching off.
    Use ``pitch_range=pitch_range_of(tokenizer)`` so no note falls out of the vocabulary.
    """

    max_shift: int = 6
    pitch_range: tuple[int, int] = (0, 127)
    stretch_range: tuple[float, float] | None = None
    step: int | None = None

    def __call__(self, score: Score, rng: np.random.Generator) -> Score:
        out = random_transpose(score, rng, self.max_shift, self.pitch_range)
        if self.stretch_range is not None:
            lo, hi = np.log(self.stretch_range)
            out = stretch(out, float(np.exp(rng.uniform(lo, hi))), self.step)
        return out


# --------------------------------------------------------------------------- token level
class TokenTranspose:
    """Transposition of token ids, for ``events``/``remi`` sequences and ``roll``/``satb`` grids.

    ``aug(ids, rng)`` returns a transposed copy; ``aug.window(tokens, start, stop, rng)`` does
    the same for ``tokens[start:stop]`` of a longer stream, reading back before ``start`` to
    learn whether the window begins among drum notes.
    """

    def __init__(self, tokenizer: Tokenizer, max_shift: int = 6) -> None:
        self.tokenizer = tokenizer
        self.max_shift = max_shift
        self.kind = tokenizer.name
        vocab = tokenizer.vocab
        if self.kind in _SEQUENCE_LAYOUT:
            pitch_blocks, program_block = _SEQUENCE_LAYOUT[self.kind]
            self.pitch_spans = [vocab.span(b) for b in pitch_blocks if b in vocab]
            self.program_span = vocab.span(program_block) if program_block in vocab else None
        elif self.kind == "roll":
            self.n_keys = tokenizer.config.high - tokenizer.config.low + 1  # type: ignore[attr-defined]
        elif self.kind == "satb":
            self.pitch_offset = vocab.offset("pitch")
            self.voice_ranges = np.array(tokenizer.config.ranges)  # type: ignore[attr-defined]
        else:
            raise MusegenError(
                f"no token-level transposition for the {self.kind!r} tokenizer; transpose "
                "scores before tokenizing (musegen.data.augment.ScoreAugment)"
            )

    # ------------------------------------------------------------------ public
    def __call__(
        self, ids: np.ndarray, rng: np.random.Generator, start_program: int | None = None
    ) -> np.ndarray:
        shifts = self.valid_shifts(ids, start_program)
        return self.apply(ids, _draw(shifts, rng), start_program)

    def window(
        self, tokens: np.ndarray, start: int, stop: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Transposed copy of ``tokens[start:stop]``, with program context from before it."""
        program = self.program_before(tokens, start) if self._has_programs else None
        return self(np.asarray(tokens[start:stop]), rng, program)

    def valid_shifts(self, ids: np.ndarray, start_program: int | None = None) -> range:
        """The shifts in ``[-max_shift, max_shift]`` that keep ``ids`` valid (empty: nothing
        to move)."""
        ids = np.asarray(ids)
        spans: list[tuple[np.ndarray, tuple[int, int]]] = []  # values that move, their range
        if self.kind == "roll":
            keys = np.flatnonzero(ids.reshape(-1, self.n_keys).any(axis=0))
            spans.append((keys, (0, self.n_keys - 1)))
        elif self.kind == "satb":
            grid = ids.reshape(-1, 4).astype(np.int64) - self.pitch_offset
            for v, (low, high) in enumerate(self.voice_ranges.tolist()):
                p = grid[:, v]
                spans.append((p[(p >= 0) & (p < 128)], (low, high)))
        else:
            movable = self._movable(ids, start_program)
            for a, b in self.pitch_spans:
                spans.append(
                    (ids[movable & (ids >= a) & (ids < b)].astype(np.int64) - a, (0, b - 1 - a))
                )
        lo, hi, moving = -self.max_shift, self.max_shift, False
        for values, bounds in spans:
            if len(values):
                fits = shift_bounds(int(values.min()), int(values.max()), bounds, self.max_shift)
                lo, hi, moving = max(lo, fits.start), min(hi, fits.stop - 1), True
        return range(lo, hi + 1) if moving else range(0)

    def apply(self, ids: np.ndarray, shift: int, start_program: int | None = None) -> np.ndarray:
        """``ids`` with every movable pitch moved by ``shift`` (which must be valid).

        The result has the dtype of ``ids``.
        """
        ids = np.asarray(ids)
        if shift == 0:
            return ids.copy()
        if self.kind == "roll":
            return _shift_columns(ids.reshape(-1, self.n_keys), shift).reshape(ids.shape)
        out = ids.astype(np.int64)
        if self.kind == "satb":
            move = (out >= self.pitch_offset) & (out < self.pitch_offset + 128)
        else:
            move = self._movable(out, start_program)
        out[move] += shift
        rotate = getattr(self.tokenizer, "transpose_controls", None)
        if rotate is not None:  # chord tokens (melody-chords) name roots that move too
            out = rotate(out, shift)
        return out.astype(ids.dtype)

    def program_before(self, tokens: np.ndarray, start: int, block: int = 4096) -> int | None:
        """The program in force at ``tokens[start]`` (None: no PROGRAM token since BOS)."""
        lo_p, hi_p = self.program_span or (0, 0)
        stop = start
        while stop > 0:
            lo = max(0, stop - block)
            chunk = np.asarray(tokens[lo:stop])
            marks = np.flatnonzero(((chunk >= lo_p) & (chunk < hi_p)) | (chunk == BOS))
            if len(marks):
                tok = int(chunk[marks[-1]])
                return None if tok == BOS else tok - lo_p
            stop = lo
        return None

    # ------------------------------------------------------------------ internals
    @property
    def _has_programs(self) -> bool:
        return getattr(self, "program_span", None) is not None

    def _movable(self, ids: np.ndarray, start_program: int | None) -> np.ndarray:
        """Pitch tokens that are not drum notes."""
        is_pitch = np.zeros(ids.shape, bool)
        for a, b in self.pitch_spans:
            is_pitch |= (ids >= a) & (ids < b)
        if self.program_span is None or not is_pitch.any():
            return is_pitch
        lo_p, hi_p = self.program_span
        is_program = (ids >= lo_p) & (ids < hi_p)
        value = np.where(is_program, ids - lo_p, -1)  # BOS resets to "no program" (-1)
        last = np.maximum.accumulate(np.where(is_program | (ids == BOS), np.arange(len(ids)), -1))
        before = -1 if start_program is None else start_program
        program = np.where(last >= 0, value[last], before)
        return is_pitch & (program != DRUMS)


def _shift_columns(grid: np.ndarray, shift: int) -> np.ndarray:
    """``grid`` moved ``shift`` columns right (left if negative), zeros coming in."""
    n = grid.shape[1]
    out = np.zeros_like(grid)
    out[:, max(0, shift) : n - max(0, -shift)] = grid[:, max(0, -shift) : n - max(0, shift)]
    return out


def transpose_roll(roll: np.ndarray, rng: np.random.Generator, max_shift: int = 6) -> np.ndarray:
    """A binary piano roll ``[frames, keys]`` moved along the keys, no key falling off."""
    keys = np.flatnonzero(np.asarray(roll).any(axis=0))
    if not len(keys):
        return np.array(roll, copy=True)
    bounds = shift_bounds(int(keys[0]), int(keys[-1]), (0, roll.shape[1] - 1), max_shift)
    shift = _draw(bounds, rng)
    return _shift_columns(np.asarray(roll), shift)
