"""MusicVAE's melody rows without torch: the step classes and their conversions.

A melody is a row of 16th-note *steps*, each one class: :data:`REST` (0), :data:`HOLD` (1, the
note before goes on) or a pitch ``low_pitch + (c - FIRST_PITCH)`` starting (``low_pitch`` and
``n_pitches`` from the model's config, :class:`musegen.models.vae.MusicVAEConfig`). These are
the ``melody`` tokenizer's cells with the pitches cut to the model's range, and what the
latent operations (:mod:`musegen.sampling.latent`) read and write; numpy only, so that reading
a row needs no network.

A model of several voices (``voices`` > 1: the ``chorale`` tokenizer's Soprano, Alto, Tenor and
Bass) reads the cells row by row as the tokenizer writes them: one class per voice at every
16th step, the voices interleaved (``S A T B S A T B ...``), so that a ``HOLD`` continues the
note of the same voice one row before, ``voices`` classes back in the row.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from musegen.errors import MusegenError

REST, HOLD, FIRST_PITCH = 0, 1, 2


class PitchRange(Protocol):
    """What the conversions read of a model's config."""

    low_pitch: int
    n_pitches: int
    voices: int


def cells_to_steps(cells: np.ndarray, tokenizer: object, config: PitchRange) -> np.ndarray:
    """The VAE's classes of ``melody`` tokenizer cells (ids REST / HOLD / pitch). Pitches
    outside the model's range move by octaves into it."""
    hold_id = tokenizer.hold_id  # type: ignore[attr-defined]
    pitch_offset = tokenizer.pitch_offset  # type: ignore[attr-defined]
    out = np.full(cells.shape, REST, dtype=np.int64)
    out[cells == hold_id] = HOLD
    pitched = cells >= pitch_offset
    pitch = cells[pitched].astype(np.int64) - pitch_offset
    out[pitched] = (
        fold_pitches(pitch, config.low_pitch, config.n_pitches) - config.low_pitch + FIRST_PITCH
    )
    return out


def cut_segment(steps: np.ndarray, start: int, length: int, voices: int = 1) -> np.ndarray:
    """``steps[start : start + length]`` of a class row as a segment of its own: a note held
    across ``start`` starts at the segment's first step (its pitch is the last onset before
    ``start``; with none, the held steps are rests), since a decoder writes no HOLD where
    nothing sounds and a segment read alone has nothing before it. ``voices`` > 1: the row
    interleaves that many voices (``start`` and ``length`` whole rows of them), each cut alone."""
    steps = np.asarray(steps, dtype=np.int64)
    if voices > 1:
        grid = steps.reshape(-1, voices)
        cols = [_cut_line(grid[:, v], start // voices, length // voices) for v in range(voices)]
        return np.stack(cols, axis=1).reshape(-1)
    return _cut_line(steps, start, length)


def _cut_line(steps: np.ndarray, start: int, length: int) -> np.ndarray:
    """:func:`cut_segment` of one voice."""
    window = steps[start : start + length].copy()
    if not len(window) or window[0] != HOLD:
        return window
    onsets = np.flatnonzero(steps[:start] >= FIRST_PITCH)
    if len(onsets) and not (steps[onsets[-1] + 1 : start] == REST).any():
        window[0] = steps[onsets[-1]]
        return window
    held = np.cumprod(window == HOLD).astype(bool)
    window[held] = REST
    return window


def fold_pitches(pitch: np.ndarray, low: int, n: int) -> np.ndarray:
    """Pitches moved by whole octaves into ``low .. low + n - 1`` (``n`` >= 12)."""
    pitch = np.asarray(pitch, dtype=np.int64).copy()
    while (pitch < low).any():
        pitch[pitch < low] += 12
    while (pitch >= low + n).any():
        pitch[pitch >= low + n] -= 12
    return np.clip(pitch, low, low + n - 1)


def steps_to_cells(steps: np.ndarray, tokenizer: object, config: PitchRange) -> np.ndarray:
    """Tokenizer cell ids of VAE classes (a HOLD after a rest of its voice is a rest)."""
    steps = np.asarray(steps, dtype=np.int64)
    out = np.full(steps.shape, tokenizer.rest_id, dtype=np.int64)  # type: ignore[attr-defined]
    pitched = steps >= FIRST_PITCH
    out[pitched] = steps[pitched] - FIRST_PITCH + config.low_pitch + tokenizer.pitch_offset  # type: ignore[attr-defined]
    voices = config.voices
    flat = steps.ravel()
    sounding = np.zeros(flat.shape, dtype=bool)
    on = np.zeros(voices, dtype=bool)
    for i, s in enumerate(flat):
        v = i % voices
        on[v] = bool(s >= FIRST_PITCH or (s == HOLD and on[v]))
        sounding[i] = on[v]
    out[(steps == HOLD) & sounding.reshape(steps.shape)] = tokenizer.hold_id  # type: ignore[attr-defined]
    return out


def check_voices(tokenizer: Any, config: PitchRange, where: str) -> None:
    """A model of ``config.voices`` voices reads a tokenizer of that many: ``melody`` for one,
    ``chorale`` for four; anything else is an error naming ``where``."""
    if tokenizer.name not in ("melody", "chorale"):
        raise MusegenError(
            f"{where}: music-vae reads melodies or chorales: prepare the data with --tokenizer "
            f"melody (or chorale, for a model of four voices); this one is {tokenizer.name}"
        )
    if tokenizer.n_voices != config.voices:
        raise MusegenError(
            f"{where}: the {tokenizer.name} tokenizer writes {tokenizer.n_voices} voice(s), but "
            f"the model reads {config.voices} (model_config.voices)"
        )
