"""Frame-level negative log-likelihood of piano rolls: the Boulanger-Lewandowski (2012) protocol.

What is measured (the figure the RNN-RBM / RNN-NADE papers report, sign flipped):

* every piece is a binary roll ``[T, 88]`` (MIDI 21..108), one frame per quarter note for JSB
  and per eighth note for Nottingham, MuseData and Piano-midi (the published rolls already
  are at that resolution);
* the model gives ``log p(x_t | x_1 .. x_{t-1})`` for **every** frame of a piece, the first
  one included (predicted from an empty context), as the joint probability of all 88 keys
  of the frame (not a sum of independent per-key scores unless the model is one);
* ``nll_per_frame = -(sum of those log-probabilities over all frames of all pieces) / (total
  number of frames)``: in nats per time step, a frame-weighted mean over the split (long
  pieces count more than short ones), not a mean of per-piece means.

The TCN paper (Bai et al. 2018) sums 88 independent sigmoid cross-entropies and never scores
the first frame of a piece: a different quantity, not comparable to the numbers here.

The published figures this protocol is compared with are kept by the benchmark that prints
them (``benchmarks/polyphonic.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from musegen.errors import MusegenError

DATASETS = ("jsb", "nottingham", "musedata", "pianomidi")


@dataclass(frozen=True)
class FrameNll:
    """Protocol figures of one split (see the module docstring)."""

    pieces: int
    frames: int  # every frame of every piece is scored
    total_nll: float  # nats
    nll_per_frame: float  # total_nll / frames

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def frame_nll(
    model: Any,
    rolls: Sequence[np.ndarray],
    max_batch_frames: int = 16384,
    device: str = "cpu",
) -> FrameNll:
    """Score whole pieces with a frame model (``model.frame_log_prob(rolls, mask)``).

    Pieces are never cut: each is scored from its first frame with an empty context. They are
    batched by length (about ``max_batch_frames`` padded frames per batch) only for speed;
    padding is masked out, so batching does not change the result.
    """
    import torch

    if not len(rolls):
        raise MusegenError("frame_nll: no pieces to score")
    lengths = [len(r) for r in rolls]
    if min(lengths) == 0:
        raise MusegenError("frame_nll: a piece has no frames")
    order = np.argsort(lengths, kind="stable")[::-1]
    was_training = bool(getattr(model, "training", False))
    if hasattr(model, "eval"):
        model.eval()
    total, frames = 0.0, 0
    try:
        with torch.no_grad():
            i = 0
            while i < len(order):
                longest = lengths[order[i]]
                n = max(1, max_batch_frames // longest)
                group = order[i : i + n]
                i += n
                batch = torch.zeros(len(group), longest, rolls[group[0]].shape[1])
                mask = torch.zeros(len(group), longest, dtype=torch.bool)
                for row, k in enumerate(group):
                    batch[row, : lengths[k]] = torch.as_tensor(np.asarray(rolls[k], np.float32))
                    mask[row, : lengths[k]] = True
                lp = model.frame_log_prob(batch.to(device), mask.to(device))
                total -= float(lp[mask.to(device)].double().sum())
                frames += int(mask.sum())
    finally:
        if was_training:
            model.train()
    if not math.isfinite(total):
        raise MusegenError("frame_nll: the model gave a non-finite log-probability")
    return FrameNll(pieces=len(rolls), frames=frames, total_nll=total, nll_per_frame=total / frames)


def marginal_nll(rolls: Sequence[np.ndarray]) -> float:
    """NLL per frame of ``rolls`` under their own per-key on-rates (independent keys, no context).

    The best any context-free independent-key model can do on that data: a reference for the
    Bernoulli baseline.
    """
    frames = np.concatenate([np.asarray(r, np.float64) for r in rolls])
    p = frames.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(p > 0, p * np.log(p), 0.0) + np.where(p < 1, (1 - p) * np.log1p(-p), 0.0))
    return float(h.sum())
