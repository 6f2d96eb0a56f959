"""Audio -> MIDI with the ONNX model that ships inside basic-pitch's wheel (Bittner et al. 2022,
"A lightweight instrument-agnostic model for polyphonic note transcription").

basic-pitch's own package wants TensorFlow on Linux; the ``transcribe`` extra runs its ONNX
file through onnxruntime instead. Install with ``pip install onnxruntime`` and
``pip install --no-deps basic-pitch`` (the wheel is only read for its model file: nothing of
basic-pitch is imported). The windowing, the note extraction from the model's onset and note
activations, and the note F-measure are this module's own.

The model takes 2 s windows of 22,050 Hz mono audio (43,844 samples) and gives, per frame
(256 samples, about 86 per second) and piano key (MIDI 21..108), an onset and a note
activation in [0, 1].
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from musegen.errors import MusegenError

RATE = 22_050
WINDOW = 43_844
HOP = 256
FRAMES = 172  # per window
OVERLAP_FRAMES = 30  # frames shared by neighbouring windows (half dropped on each side)
LOWEST = 21
MODEL_FILE = ("saved_models", "icassp_2022", "nmp.onnx")
HINT = (
    "transcription needs onnxruntime and basic-pitch's model file: pip install onnxruntime "
    "and pip install --no-deps basic-pitch (its TensorFlow dependency is not needed)"
)


@dataclass(frozen=True)
class TranscribeSettings:
    onset_threshold: float = 0.5
    frame_threshold: float = 0.3
    min_note_seconds: float = 0.058
    gap_frames: int = 2  # a note survives this many frames below the threshold


def model_path() -> Path:
    """basic-pitch's ONNX file, found without importing the package."""
    spec = importlib.util.find_spec("basic_pitch")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder).joinpath(*MODEL_FILE)
            if path.is_file():
                return path
    raise MusegenError(HINT)


_SESSION: list[Any] = []


def _session() -> Any:
    if not _SESSION:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise MusegenError(HINT) from e
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        _SESSION.append(
            ort.InferenceSession(str(model_path()), options, providers=["CPUExecutionProvider"])
        )
    return _SESSION[0]


def activations(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Onset and note activations ``(frames, 88)`` of mono (or stereo) float audio."""
    x = np.asarray(audio, np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if sample_rate != RATE:
        from musegen.audio.synth import resample

        x = resample(x[:, None], sample_rate, RATE)[:, 0]
    n_frames = int(np.ceil(len(x) / HOP))
    overlap = OVERLAP_FRAMES * HOP
    step = WINDOW - overlap
    x = np.concatenate([np.zeros(overlap // 2, np.float32), x])
    starts = range(0, max(1, len(x) - overlap // 2), step)
    windows = np.zeros((len(starts), WINDOW, 1), np.float32)
    for i, s in enumerate(starts):
        piece = x[s : s + WINDOW]
        windows[i, : len(piece), 0] = piece
    session = _session()
    outs = session.run(None, {session.get_inputs()[0].name: windows})
    # Outputs by name: :0 the pitch contour (264 bins), :1 the note and :2 the onset
    # activations (88 keys each; the onsets are the sparse one).
    names = [o.name for o in session.get_outputs()]
    try:
        note = outs[names.index("StatefulPartitionedCall:1")]
        onset = outs[names.index("StatefulPartitionedCall:2")]
    except ValueError as e:
        raise MusegenError(f"unexpected outputs from the transcription model: {names}") from e
    cut = OVERLAP_FRAMES // 2

    def unwrap(a: np.ndarray) -> np.ndarray:
        return a[:, cut : FRAMES - cut].reshape(-1, 88)[:n_frames]

    return unwrap(onset), unwrap(note)


def extract_notes(
    onset: np.ndarray, note: np.ndarray, settings: TranscribeSettings = TranscribeSettings()
) -> list[tuple[float, float, int, int]]:
    """Notes ``(start s, end s, pitch, velocity)`` from activations: an onset peak above its
    threshold starts a note, which lasts while the note activation stays above its threshold
    (``gap_frames`` of dips allowed)."""
    fps = RATE / HOP
    n_frames = len(note)
    prev = np.vstack([np.zeros((1, 88)), onset[:-1]])
    nxt = np.vstack([onset[1:], np.zeros((1, 88))])
    peaks = (onset >= settings.onset_threshold) & (onset >= prev) & (onset > nxt)
    out = []
    busy_until = np.full(88, -1)
    for t, k in zip(*np.nonzero(peaks), strict=True):
        if t <= busy_until[k]:
            continue
        end, below = t + 1, 0
        while end < n_frames and below <= settings.gap_frames:
            below = below + 1 if note[end, k] < settings.frame_threshold else 0
            end += 1
        end -= below
        if (end - t) / fps < settings.min_note_seconds:
            continue
        busy_until[k] = end
        level = float(note[t:end, k].mean())
        velocity = int(np.clip(round(40 + 87 * level), 1, 127))
        out.append((t / fps, end / fps, LOWEST + int(k), velocity))
    out.sort()
    return out


def transcribe(
    audio: np.ndarray, sample_rate: int, settings: TranscribeSettings = TranscribeSettings()
) -> Any:
    """A :class:`~musegen.score.Score` (one piano track, 120 q/min, 480 ticks per quarter)."""
    from musegen.score import Score, Tempo, Track, make_notes

    notes = extract_notes(*activations(audio, sample_rate), settings)
    tpq, per_second = 480, 480 * 2  # 120 quarters per minute
    if notes:
        start = np.array([round(n[0] * per_second) for n in notes])
        end = np.array([round(n[1] * per_second) for n in notes])
        track = Track(
            make_notes(
                start, np.maximum(end - start, 1), [n[2] for n in notes], [n[3] for n in notes]
            ),
            program=0,
            name="transcribed",
        )
    else:
        track = Track(program=0, name="transcribed")
    return Score(tpq=tpq, tracks=[track], tempos=[Tempo(0, 120.0)])


def note_f1(
    estimated: list[tuple[float, int]], reference: list[tuple[float, int]], tolerance: float = 0.05
) -> float:
    """Onset note F-measure: notes ``(onset s, pitch)`` match when the pitch is equal and the
    onsets are within ``tolerance``; each reference note matches at most one (greedy by
    distance, per pitch)."""
    if not estimated and not reference:
        return 1.0
    matched = 0
    for pitch in {p for _, p in reference}:
        ref = sorted(t for t, p in reference if p == pitch)
        est = sorted(t for t, p in estimated if p == pitch)
        pairs = sorted(
            (abs(a - b), i, j)
            for i, a in enumerate(ref)
            for j, b in enumerate(est)
            if abs(a - b) <= tolerance
        )
        used_r, used_e = set(), set()
        for _, i, j in pairs:
            if i not in used_r and j not in used_e:
                used_r.add(i)
                used_e.add(j)
        matched += len(used_r)
    precision = matched / len(estimated) if estimated else 0.0
    recall = matched / len(reference) if reference else 0.0
    return 0.0 if matched == 0 else 2 * precision * recall / (precision + recall)


def score_onsets(score: Any) -> list[tuple[float, int]]:
    """``(onset s, pitch)`` of every pitched note of a score."""
    out = []
    for track in score.tracks:
        if track.is_drum:
            continue
        on = np.atleast_1d(score.ticks_to_seconds(track.notes["start"]))
        out += [(float(t), int(p)) for t, p in zip(on, track.notes["pitch"], strict=True)]
    return out
