"""Training settings as a plain dataclass, saved beside every checkpoint as JSON."""

from __future__ import annotations

import json
import math
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from musegen.errors import MusegenError

PRECISIONS = ("auto", "fp32", "bf16")  # the values of TrainConfig.precision
MAX_SIZE = 2**24  # longest window, largest batch (2**63 made numpy refuse the array shape)
MAX_THREADS = 256  # more is a mistake: 65,536 torch threads took minutes to start


@dataclass
class TrainConfig:
    # data
    seq_len: int = 256
    batch_size: int = 16
    # optimisation
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 100
    max_steps: int = 2000
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    grad_accum: int = 1
    # evaluation and stopping
    eval_every: int = 200
    eval_batches: int = 20  # 0 = the whole valid split
    patience: int = 0  # evaluations without improvement before stopping; 0 = never stop early
    # bookkeeping
    seed: int = 0
    log_every: int = 20
    checkpoint_every: int = 200
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    compile: bool = False  # torch.compile; on the CPU it does not speed the transformer up
    # under torchrun: shard weights, gradients and optimizer state across the ranks (FSDP2)
    # instead of a full copy on each (DDP), for models that do not fit one device (train/fsdp.py)
    fsdp: bool = False
    threads: int = (
        0  # CPU threads for torch (0: torch's default); 1 avoids oversubscription on busy machines
    )
    # fp32 | bf16 (autocast; weights and optimizer stay fp32) | auto: bf16 on a CUDA GPU that
    # supports it; on the CPU bf16 only where a short probe measures it clearly faster (chips
    # with bf16 matrix units), since elsewhere it is far slower (train/precision.py)
    precision: str = "auto"
    amp: bool = True  # with precision "auto": false means fp32 (older run files' switch)
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise MusegenError(f"unknown training option(s): {', '.join(unknown)}")
        d = dict(d)
        hints = typing.get_type_hints(cls)
        for name, value in d.items():
            if not _is(value, hints[name]):
                kind = getattr(hints[name], "__name__", str(hints[name]))
                raise MusegenError(f"training option {name} must be {kind}, got {value!r}")
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        cfg = cls(**d)
        cfg.validate()
        return cfg

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise MusegenError(f"{path}: cannot read training config ({e})") from e

    def validate(self) -> None:
        checks = {
            "seq_len": 1 < self.seq_len <= MAX_SIZE,
            "batch_size": 0 < self.batch_size <= MAX_SIZE,
            "lr": self.lr > 0,
            "max_steps": self.max_steps > 0,
            "grad_accum": self.grad_accum > 0,
            "eval_every": self.eval_every > 0,
            "checkpoint_every": self.checkpoint_every > 0,
            "warmup_steps": self.warmup_steps >= 0,
            "threads": 0 <= self.threads <= MAX_THREADS,
            "seed": 0 <= self.seed < 2**63,
            "precision": self.precision in PRECISIONS,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise MusegenError(
                f"invalid training option(s): {', '.join(f'{k}={getattr(self, k)}' for k in bad)}"
            )


def _is(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's annotation (``int``, ``float``, ``str``, ``bool``,
    ``tuple[float, float]``): a bool is no number, an int is a float, numbers are finite."""
    if hint is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if hint is int:
        return isinstance(value, int)
    if hint is float:
        return isinstance(value, int | float) and math.isfinite(value)
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        return (
            isinstance(value, list | tuple)
            and len(value) == len(args)
            and all(_is(v, a) for v, a in zip(value, args, strict=True))
        )
    return isinstance(value, hint)
