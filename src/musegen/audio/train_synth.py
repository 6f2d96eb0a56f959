"""Training the neural synthesizer on notes rendered alone by the SoundFont.

The notes come from the corpora the instrument plays in our pieces: pitches and lengths drawn
from the train split of a source (``jsb`` for the organ, ``pianomidi`` for the piano), a
velocity drawn uniformly (the corpora's rolls have none). Each note is rendered alone through
TinySoundFont at the model's rate, held for its length and then released for
``release`` seconds; that waveform is the target. The loss is the multi-resolution STFT loss
(linear + log magnitudes) between the network's note and the target. Validation notes are
drawn from the valid split; the best weights by validation loss are kept.

A run file (JSON, ``configs/synth-ddsp.json``) holds every setting; ``musegen audio
train-synth --config FILE --out DIR`` runs it and writes ``DIR/best/`` and ``DIR/log.jsonl``;
``DIR/checkpoint/`` holds the whole state at every validation, and ``--resume`` (or Ctrl-C,
which saves it) goes on from there.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from musegen.audio.synth import GAIN, SynthConfig
from musegen.errors import MusegenError
from musegen.utils import reject_unknown

if TYPE_CHECKING:
    import torch

LOSS_SIZES = (2048, 1024, 512, 256, 128)


@dataclass
class TrainSynthConfig:
    """A run of :func:`train_synth`: the model, the data drawn and the optimisation."""

    model: SynthConfig = field(default_factory=SynthConfig)
    sources: dict[str, str] = field(default_factory=lambda: {"0": "pianomidi", "19": "jsb"})
    pitch_range: dict[str, list[int]] = field(
        default_factory=lambda: {"0": [21, 108], "19": [36, 84]}
    )
    notes_per_instrument: int = 600
    valid_notes: int = 48
    max_note_seconds: float = 1.6
    velocity: list[int] = field(default_factory=lambda: [30, 120])
    steps: int = 1200
    batch: int = 8
    crop: int = 6400  # samples of each note per training step (a multiple of hop)
    onset_crops: float = 0.3  # share of crops that start at the onset
    lr: float = 2e-3
    valid_every: int = 100
    seed: int = 0
    soundfont: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainSynthConfig:
        d = dict(d)
        model = SynthConfig.from_dict(d.pop("model", {}))
        reject_unknown(d, cls.__dataclass_fields__, "run-file settings")
        return cls(model=model, **d)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["model"] = self.model.to_dict()
        return out


# --------------------------------------------------------------------------- data
def corpus_notes(source: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Pitches and lengths (seconds) of every note in ``split`` of a source."""
    from musegen.data.sources import get_source

    pitches, seconds = [], []
    for _, score in get_source(source).scores(split):
        for track in score.tracks:
            n = track.notes
            on = np.asarray(score.ticks_to_seconds(n["start"]), np.float64)
            off = np.asarray(score.ticks_to_seconds(n["start"] + n["duration"]), np.float64)
            pitches.append(n["pitch"].astype(np.int64))
            seconds.append(off - on)
    if not pitches:
        raise MusegenError(f"source {source!r} has no notes in split {split!r}")
    return np.concatenate(pitches), np.concatenate(seconds)


@dataclass
class NoteSet:
    """Notes and their SoundFont renders (mono, scaled by GAIN, zero-padded to ``span``)."""

    pitch: np.ndarray
    velocity: np.ndarray
    inst: np.ndarray
    seconds: np.ndarray
    audio: list[np.ndarray]


def draw_notes(run: TrainSynthConfig, split: str, count: int, rng: np.random.Generator) -> NoteSet:
    """``count`` notes per instrument from ``split``, rendered alone by the SoundFont."""
    pitch, vel, inst, secs = [], [], [], []
    for i, program in enumerate(run.model.instruments):
        key = str(program)
        p, s = corpus_notes(run.sources[key], split)
        lo, hi = run.pitch_range.get(key, [0, 127])
        keep = (p >= lo) & (p <= hi)
        pick = rng.integers(0, int(keep.sum()), count)
        pitch.append(p[keep][pick])
        secs.append(np.clip(s[keep][pick], 0.05, run.max_note_seconds))
        vel.append(rng.integers(run.velocity[0], run.velocity[1] + 1, count))
        inst.append(np.full(count, i))
    notes = NoteSet(
        np.concatenate(pitch), np.concatenate(vel), np.concatenate(inst), np.concatenate(secs), []
    )
    notes.audio = render_targets(notes, run)
    return notes


def _soundfont_synth(run: TrainSynthConfig) -> tuple[Any, int]:
    import tinysoundfont

    from musegen.render.audio import find_soundfont

    path = find_soundfont(run.soundfont)
    if path is None:
        raise MusegenError("training the neural synth needs a SoundFont (pip install pretty_midi)")
    synth = tinysoundfont.Synth(samplerate=run.model.sample_rate)
    return synth, synth.sfload(str(path))


def measure_stretch(run: TrainSynthConfig) -> np.ndarray:
    """``(instruments, 128, 2)`` partial law ``(t, B)`` per key (``musegen.audio.partials``),
    each key of an instrument's pitch range rendered alone (velocity 100, 1 s)."""
    from musegen.audio.partials import stretch_table

    cfg = run.model
    synth, sfid = _soundfont_synth(run)
    tables = []
    for program in cfg.instruments:
        synth.program_select(0, sfid, 0, program, False)

        def render(pitch: int) -> np.ndarray:
            synth.noteon(0, pitch, 100)
            a = np.frombuffer(synth.generate_simple(cfg.sample_rate), np.float32)
            synth.sounds_off(0)
            synth.generate_simple(cfg.sample_rate // 2)  # let the voice die away
            return a.reshape(-1, 2).mean(axis=1)

        lo, hi = run.pitch_range.get(str(program), [0, 127])
        tables.append(stretch_table(render, range(lo, hi + 1), cfg.sample_rate, cfg.harmonics))
    return np.stack(tables)


def render_targets(notes: NoteSet, run: TrainSynthConfig) -> list[np.ndarray]:
    """Each note alone through TinySoundFont: held ``seconds``, then ``release`` seconds."""
    cfg = run.model
    synth, sfid = _soundfont_synth(run)
    tail = round(cfg.release * cfg.sample_rate)
    out = []
    for p, v, i, s in zip(notes.pitch, notes.velocity, notes.inst, notes.seconds, strict=True):
        synth.program_select(0, sfid, 0, cfg.instruments[int(i)], False)
        held = round(float(s) * cfg.sample_rate)
        synth.noteon(0, int(p), int(v))
        a = np.frombuffer(synth.generate_simple(held), np.float32).reshape(-1, 2)
        synth.noteoff(0, int(p))
        b = np.frombuffer(synth.generate_simple(tail), np.float32).reshape(-1, 2)
        synth.sounds_off(0)
        out.append((np.concatenate([a, b]).mean(axis=1) * GAIN).astype(np.float32))
    return out


def batch_of(notes: NoteSet, idx: np.ndarray, start: int = 0, n: int = 0) -> tuple[Any, ...]:
    """Conditioning tensors and targets ``(len(idx), n)`` from ``start`` samples after the
    onsets (``n = 0``: to the end of the longest note)."""
    import torch

    n = n or max(len(notes.audio[i]) for i in idx) - start
    target = np.zeros((len(idx), n), np.float32)
    for row, i in enumerate(idx):
        piece = notes.audio[i][start : start + n]
        target[row, : len(piece)] = piece
    return (
        torch.as_tensor(notes.pitch[idx], dtype=torch.long),
        torch.as_tensor(notes.velocity[idx], dtype=torch.float32),
        torch.as_tensor(notes.inst[idx], dtype=torch.long),
        torch.as_tensor(notes.seconds[idx], dtype=torch.float32),
        torch.as_tensor(target),
    )


# --------------------------------------------------------------------------- loss
def mr_stft_loss(
    x: torch.Tensor, y: torch.Tensor, sizes: tuple[int, ...] = LOSS_SIZES
) -> torch.Tensor:
    """Mean over sizes of L1 on linear and on log STFT magnitudes (DDSP's spectral loss);
    sizes longer than the signal are left out."""
    import torch

    sizes = tuple(s for s in sizes if s <= x.shape[-1]) or (min(sizes),)
    total = x.new_zeros(())
    for size in sizes:
        window = torch.hann_window(size)
        sx = torch.stft(x, size, size // 4, window=window, return_complex=True).abs()
        sy = torch.stft(y, size, size // 4, window=window, return_complex=True).abs()
        total = (
            total
            + (sx - sy).abs().mean()
            + (torch.log(sx + 1e-5) - torch.log(sy + 1e-5)).abs().mean()
        )
    return total / len(sizes)


# --------------------------------------------------------------------------- the run
def train_synth(
    run: TrainSynthConfig, out: str | Path, *, log: Any = print, resume: bool = False
) -> dict[str, Any]:
    """Train, keep the best weights by validation loss in ``out/best``; returns a summary.

    At every validation and at the end the whole state (weights, optimizer, schedule, the data
    draw's random state, the log) goes to ``out/checkpoint``; ``resume`` goes on from there
    and ends with the weights an uninterrupted run ends with. Ctrl-C or SIGTERM finishes the
    step, saves the checkpoint and stops (:class:`~musegen.errors.Interrupted`)."""
    import torch

    from musegen.audio.synth import build_network, save_synth
    from musegen.checkpoint import (
        load_training_state,
        resumable_steps,
        run_checkpoint,
        save_training_state,
    )
    from musegen.utils import atomic_write_text

    out = Path(out)
    ckpt = run_checkpoint(out, resume, f"{out} already holds a synth run")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "run.json", json.dumps(run.to_dict(), indent=2) + "\n")
    rng = np.random.default_rng(run.seed)
    torch.manual_seed(run.seed)
    t0 = time.perf_counter()
    train = draw_notes(run, "train", run.notes_per_instrument, rng)
    valid = draw_notes(run, "valid", run.valid_notes // max(1, len(run.model.instruments)), rng)
    log(
        f"rendered {len(train.pitch)} train and {len(valid.pitch)} valid notes "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    model = build_network(run.model)
    opt = torch.optim.AdamW(model.parameters(), lr=run.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, run.lr, total_steps=run.steps, pct_start=0.05)
    state: dict[str, Any] = {"step": 0, "best": math.inf, "best_step": 0, "lines": []}
    if resume:
        state, _ = load_training_state(ckpt, model, opt, sched, rng, run.to_dict(), log)
    elif run.model.stretch:
        model.partials.copy_(torch.as_tensor(measure_stretch(run)))
        log(f"partial stretch measured for programs {run.model.instruments}")
    lines = state["lines"]

    def save() -> None:
        save_training_state(ckpt, model, opt, sched, rng, state, run.to_dict())

    for s in resumable_steps(run.steps, run.valid_every, state, ckpt, save, "train synth"):
        model.train()
        idx = rng.integers(0, len(train.pitch), run.batch)
        start = crop_start(train, idx, run, rng)
        *cond, target = batch_of(train, idx, start, run.crop)
        loss = mr_stft_loss(model(*cond, run.crop, noise_seed=s.number, start=start), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if s.due:
            v = evaluate(model, valid, run.batch)
            line = {
                "step": s.number,
                "train_loss": float(loss.detach()),
                "valid_loss": v,
                "seconds": round(time.perf_counter() - t0, 1),
            }
            lines.append(json.dumps(line))
            atomic_write_text(out / "log.jsonl", "\n".join(lines) + "\n")
            s.bar.set_postfix(loss=f"{float(loss.detach()):.3f}", valid=f"{v:.3f}")
            if v < state["best"]:
                state["best"], state["best_step"] = v, s.number
                trained = {"trained": {"step": s.number, "valid_loss": v}}
                save_synth(model, out / "best", trained)
    summary = {
        "best_valid_loss": state["best"],
        "best_step": state["best_step"],
        "seconds": round(time.perf_counter() - t0, 1),
        "out": str(out / "best"),
    }
    log(json.dumps(summary))
    return summary


def crop_start(
    notes: NoteSet, idx: np.ndarray, run: TrainSynthConfig, rng: np.random.Generator
) -> int:
    """One crop offset for the batch (whole hops): at the onset, or anywhere in the shortest."""
    if rng.random() < run.onset_crops:
        return 0
    shortest = min(len(notes.audio[i]) for i in idx)
    hops = max(0, shortest - run.crop // 2) // run.model.hop
    return int(rng.integers(0, hops + 1)) * run.model.hop


def evaluate(model: torch.nn.Module, notes: NoteSet, batch: int) -> float:
    import torch

    model.eval()
    losses = []
    with torch.no_grad():
        for start in range(0, len(notes.pitch), batch):
            idx = np.arange(start, min(start + batch, len(notes.pitch)))
            *cond, target = batch_of(notes, idx)
            losses.append(float(mr_stft_loss(model(*cond, target.shape[1]), target)) * len(idx))
    return sum(losses) / len(notes.pitch)
