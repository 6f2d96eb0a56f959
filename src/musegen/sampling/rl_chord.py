"""RL-Chord harmonization: a chord per beat under a melody, by the ``chord-lstm`` model.

``musegen harmonize MELODY --model rl-chord``: the melody's top line is read on a grid of
:data:`FRAMES_PER_BEAT` frames a beat, moved to C (its key's tonic to C, major or minor:
the key the model learnt in), turned into beat features (:func:`musegen.models.chord_lstm.
beat_features`); the model draws one chord per beat (``--temperature``, ``--seed``;
``--samples N`` keeps the draw whose chords hold the most melody notes); the chords go back
to the melody's key and are written as a second track of block chords in root position
(one per run of equal chords) under the melody, which is kept as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from musegen.errors import MusegenError
from musegen.metrics.harmonization import Harmonization, fit_reward
from musegen.sampling.generators import Generated, Generator
from musegen.score import Score, Track, make_notes

FRAMES_PER_BEAT = 4  # 16th notes
CHORD_LOW = 48  # chord roots between C3 and B3
CHORD_VELOCITY = 60


def melody_frames(score: Score, frames_per_beat: int = FRAMES_PER_BEAT) -> np.ndarray:
    """The top line of ``score`` as a MIDI pitch per frame (-1: rest), from tick 0 to its
    last note's end (whole beats)."""
    table = score.note_table()
    drums = [i for i, t in enumerate(score.tracks) if t.is_drum]
    if drums:
        table = table[~np.isin(table["track"], drums)]
    if not len(table):
        raise MusegenError("the melody has no notes")
    step = score.tpq / frames_per_beat
    end = int(table["start"].max() + table["duration"].max())
    beats = int(np.ceil(end / score.tpq))
    out = np.full(beats * frames_per_beat, -1, dtype=np.int64)
    order = np.argsort(table["pitch"], kind="stable")  # higher pitches written last win
    for n in table[order]:
        a = round(n["start"] / step)
        b = max(round((n["start"] + n["duration"]) / step), a + 1)
        out[a:b] = np.maximum(out[a:b], n["pitch"])
    return out


def frame_features(frames: np.ndarray, frames_per_beat: int, shift: int = 0) -> np.ndarray:
    """Beat features of a frame melody moved by ``shift`` semitones."""
    from musegen.models.chord_lstm import beat_features

    beats = len(frames) // frames_per_beat
    grid = frames[: beats * frames_per_beat].reshape(beats, frames_per_beat)
    weights = np.zeros((beats, 12))
    for k in range(frames_per_beat):
        on = grid[:, k] >= 0
        np.add.at(weights, (np.flatnonzero(on), (grid[on, k] + shift) % 12), 1.0)
    first = np.where(grid[:, 0] >= 0, (grid[:, 0] + shift) % 12, -1)
    return beat_features(weights, first)


def harmonization(
    frames: np.ndarray, chords: np.ndarray, frames_per_beat: int, shift: int = 0
) -> Harmonization:
    """A :class:`Harmonization` of a frame melody and chord ids (in C) moved back by ``shift``."""
    from musegen.models.chord_lstm import chord_pitch_classes

    pcs = tuple(tuple((p - shift) % 12 for p in chord_pitch_classes(int(c))) for c in chords)
    return Harmonization(np.asarray(frames), frames_per_beat, pcs)


def chord_track(chords: tuple[tuple[int, ...], ...], tpq: int) -> Track:
    """Block chords in root position, one per run of equal chords (a beat = ``tpq`` ticks)."""
    starts, durations, pitches = [], [], []
    b = 0
    while b < len(chords):
        e = b + 1
        while e < len(chords) and chords[e] == chords[b]:
            e += 1
        if chords[b]:
            root = CHORD_LOW + chords[b][0]
            for tone in chords[b]:
                starts.append(b * tpq)
                durations.append((e - b) * tpq)
                pitches.append(root + (tone - chords[b][0]) % 12)
        b = e
    notes = make_notes(starts, durations, pitches, CHORD_VELOCITY)
    return Track(notes=notes, program=0, name="chords")


class RlChordGenerator(Generator):
    """A ``chord-lstm`` model (RL-Chord): a chord per beat under a melody."""

    kind = "chord-per-beat harmonizer"
    serves: ClassVar[tuple[str, ...]] = ("harmonize",)
    file_tag = "chords"

    def __init__(self, model: Any, meta: dict[str, Any], folder: Path | None) -> None:
        super().__init__(model, meta, folder)

    def chords(
        self, frames: np.ndarray, shift: int, seed: int, temperature: float, samples: int
    ) -> np.ndarray:
        """Chord ids (in C) for a frame melody moved by ``shift``: the best of ``samples``
        draws by :func:`~musegen.metrics.harmonization.fit_reward`."""
        import torch

        feats = torch.from_numpy(frame_features(frames, FRAMES_PER_BEAT, shift))[None]
        gen = torch.Generator().manual_seed(int(seed))
        self.model.eval()
        best, best_fit = None, -1.0
        for _ in range(samples):
            draw = self.model.sample(feats, gen, temperature)[0].numpy()
            fit = fit_reward(harmonization(frames, draw, FRAMES_PER_BEAT, shift))
            if fit > best_fit:
                best, best_fit = draw, fit
        assert best is not None
        return best

    def harmonize(
        self,
        melody: Score,
        voices: str = "S",
        *,
        seed: int = 0,
        temperature: float = 1.0,
        steps: int | None = None,
        samples: int = 1,
        strict: bool = False,
    ) -> Generated:
        """The melody with a chord track under it (``steps`` and ``strict`` do not apply)."""
        from musegen.theory import score_key

        if voices.upper() != "S":
            raise MusegenError("--model rl-chord harmonizes a melody (--voices S)")
        frames = melody_frames(melody)
        key = score_key(melody)
        shift = -key[0] % 12 if key is not None else 0
        chords = self.chords(frames, shift, seed, temperature, samples)
        h = harmonization(frames, chords, FRAMES_PER_BEAT, shift)
        out = melody.copy()
        out.tracks.append(chord_track(h.chords, out.tpq))
        settings = {"seed": seed, "temperature": temperature, "samples": samples}
        settings["key"] = None if key is None else str(key)
        return Generated([out], settings)
