"""A corpus of small, all-different MIDI files made in code (sharded-data tests, scale bench)."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path


def small_midi(index: int, notes: int = 8) -> bytes:
    """A valid type-0 MIDI file of ``notes`` quarter notes whose pitches come from ``index``
    (different indexes give different files), 480 ticks per quarter."""
    digest = hashlib.sha256(index.to_bytes(8, "little")).digest()
    events = bytearray()
    for k in range(notes):
        pitch = 40 + digest[k % len(digest)] % 48
        length = 240 * (1 + digest[(k + 7) % len(digest)] % 3)  # an 8th, a quarter or a dotted
        events += bytes([0x00, 0x90, pitch, 64])
        events += bytes([0x80 | (length >> 7), length & 0x7F, 0x80, pitch, 0])
    events += bytes([0x00, 0xFF, 0x2F, 0])
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480)
    return header + b"MTrk" + struct.pack(">I", len(events)) + bytes(events)


def write_corpus(folder: Path, n: int, per_folder: int = 1000) -> Path:
    """``n`` files as ``folder/NNN/NNNNNN.mid``, ``per_folder`` to a subfolder; returns it."""
    for i in range(n):
        sub = folder / f"{i // per_folder:03d}"
        if i % per_folder == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i:06d}.mid").write_bytes(small_midi(i))
    return folder


def train_tiny_stream(data: str, out: str, batch: int, steps: int) -> None:
    """Train a tiny GRU for ``steps`` on the sharded dataset ``data``, streamed (``batch`` per
    process; under torchrun, DDP), evaluating and saving at the end; rank 0 writes
    ``out/final.safetensors``. No dropout, fp32: runs on any number of ranks compare."""
    import torch
    from safetensors.torch import save_file

    from musegen.data.dataset import load_prepared
    from musegen.data.shards import StreamWindows
    from musegen.data.training import WindowDataset
    from musegen.train.trainer import Trainer
    from tinymodels import TinyLM, cfg, save_tiny

    prepared = load_prepared(data)
    train = StreamWindows(prepared.split("train"), 12, seed=0)  # type: ignore[arg-type]
    valid = WindowDataset(prepared.split("valid"), 12, mode="tile")
    torch.manual_seed(0)  # the same initial weights on every rank, as DDP requires
    model = TinyLM(vocab=len(prepared.tokenizer))
    model.drop.p = 0.0  # the ranks' random streams differ from one process's
    c = cfg(
        max_steps=steps,
        batch_size=batch,
        eval_every=steps,
        eval_batches=0,
        checkpoint_every=steps,
        log_every=steps,
        precision="fp32",
        threads=1,
        lr=3e-3,
    )
    t = Trainer(model, train, valid, c, out, save_fn=save_tiny)
    t.fit()
    if t.dist.main:
        state = {k: v.contiguous() for k, v in t.raw_model.state_dict().items()}
        save_file(state, f"{out}/final.safetensors")
