"""One training loop for every musegen model.

AdamW with linear warm-up and cosine decay, gradient accumulation and clipping, bf16 autocast
where it pays (``precision``: on CUDA when the GPU has bf16; on the CPU when a short probe
measures it clearly faster, see :mod:`musegen.train.precision`; the choice is printed, logged
and saved with every checkpoint), optional ``torch.compile``, evaluation every N steps with
early stopping, a progress bar (loss, tokens/s, ETA), metrics as JSON lines, and checkpoints
that resume exactly: weights, optimizer moments, RNG states and the step are saved atomically,
and batches are drawn from a generator seeded by (seed, step, rank), so a resumed run sees the
same batches as an uninterrupted one (with ``precision: "auto"`` a run resumed on the same
machine keeps the arithmetic it started with, so a noisy probe cannot switch it halfway; on
another machine it decides again; force ``fp32`` or ``bf16`` to rule that out).
Under ``torchrun`` it trains with DDP (NCCL on GPUs, gloo on CPUs), or with the model sharded
across the ranks (``fsdp``, :mod:`musegen.train.fsdp`); only rank 0 writes files.

What is being learned is an *objective*: a function ``(model, batch) -> (loss, n_tokens)``.
:func:`lm_objective` is next-token prediction; other models (orderless, frame-wise) bring
their own.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from musegen.checkpoint import (
    CHECKPOINT,
    flatten_optimizer,
    optimizer_state,
    recover_swap,
    restore_optimizer,
    stop_requests,
    written_whole,
)
from musegen.errors import Interrupted, MusegenError
from musegen.train.config import TrainConfig
from musegen.train.precision import Precision, busy_cpu_note, precision_for
from musegen.utils import atomic_write_text, cpu_model_name

Batch = Any
Objective = Callable[[nn.Module, Batch], tuple[torch.Tensor, int]]


def lm_objective(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
    """Mean next-token cross-entropy over targets that are not -100, computed in fp32 (under
    bf16 autocast the logits arrive in bf16; the log-softmax over the vocabulary should not)."""
    x, y = batch
    logits, _ = model(x)
    logits = logits.float()
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), ignore_index=-100)
    return loss, int((y != -100).sum())


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at ``max_steps``."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(cfg.max_steps - cfg.warmup_steps, 1)
    progress = min(max(step - cfg.warmup_steps, 0) / span, 1.0)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise MusegenError(f"unknown device {name!r}") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MusegenError("--device cuda was asked for, but no CUDA GPU is available")
    return device


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size())


@dataclass
class TrainState:
    step: int = 0
    best_valid: float = float("inf")
    bad_evals: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    """Trains ``model`` on ``train_data`` (an indexable dataset of batches' items).

    ``save_fn(model, directory, extra)`` writes a loadable model (musegen.models.save_model);
    ``meta`` (e.g. the tokenizer description) is stored with every checkpoint.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: Any,
        valid_data: Any | None,
        cfg: TrainConfig,
        out_dir: str | Path,
        objective: Objective = lm_objective,
        collate: Callable[[list[Any]], Batch] | None = None,
        meta: dict[str, Any] | None = None,
        save_fn: Callable[[nn.Module, Path, dict[str, Any]], None] | None = None,
    ) -> None:
        cfg.validate()
        if len(train_data) == 0:
            raise MusegenError("the training split is empty")
        self.cfg = cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.out = Path(out_dir)
        self.device = pick_device(cfg.device)
        self.dist = init_distributed(self.device)
        if self.dist.main:  # a run killed between the two renames of a folder swap
            for name in (CHECKPOINT, "best"):
                recover_swap(self.out / name)
        self.fsdp = cfg.fsdp and self.dist.world > 1  # one process: nothing to shard
        if self.fsdp:
            from musegen.train import fsdp

            fsdp.check(self.device, self.dist.world)
            self.raw_model = fsdp.shard(model, self.device, self.dist.world)
        else:
            self.raw_model = model.to(self.device)
        self.model: nn.Module = self.raw_model
        self.train_data = train_data
        self.valid_data = valid_data
        self.objective = objective
        self.collate = collate or default_collate
        self.meta = meta or {}
        self.save_fn = save_fn or _default_save
        self.state = TrainState()
        self.optimizer = self._make_optimizer()
        self.precision = self._choose_precision()
        if self.dist.main:
            busy = busy_cpu_note(torch.get_num_threads()) if self.device.type == "cpu" else None
            if busy:
                print(busy, file=sys.stderr)
            print(self.precision.describe(), file=sys.stderr)

    # ------------------------------------------------------------------ set-up
    def _make_optimizer(self) -> torch.optim.Optimizer:
        decay, no_decay = [], []
        for p in self.raw_model.parameters():
            if p.requires_grad:
                (decay if p.dim() >= 2 else no_decay).append(p)
        groups = [
            {"params": decay, "weight_decay": self.cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        fused = self.device.type in ("cuda", "cpu")  # one kernel per step, not a loop of ops
        return torch.optim.AdamW(groups, lr=self.cfg.lr, betas=self.cfg.betas, fused=fused)

    def _wrap(self) -> None:
        if self.dist.world > 1 and not self.fsdp:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DDP(self.raw_model, device_ids=ids)
        if self.cfg.compile:
            self.model = torch.compile(self.model)  # type: ignore[assignment]

    def _choose_precision(self) -> Precision:
        """fp32 or bf16 autocast for this run (``cfg.precision``); under torchrun every rank
        takes rank 0's choice, so that a probe's noise cannot split them."""
        tokens = self.cfg.batch_size * self.cfg.seq_len
        choice = self._checkpoint_precision() or precision_for(
            self.raw_model, self.cfg.precision, self.device, tokens, amp=self.cfg.amp
        )
        if self.dist.world > 1:
            import torch.distributed as dist

            flag = torch.tensor([float(choice.dtype == "bf16")], device=self.device)
            dist.broadcast(flag, src=0)
            dtype = "bf16" if bool(flag.item()) else "fp32"
            if dtype != choice.dtype:
                choice = Precision(dtype, choice.asked, choice.device, "rank 0's choice")
        if choice.dtype == "bf16":
            error = self._autocast_error(choice)
            if error is not None and choice.asked == "bf16":
                raise MusegenError(
                    f"precision bf16: this model does not train under bf16 autocast ({error}); "
                    "use precision fp32 or auto"
                )
            if error is not None:
                reason = f"the model does not train under bf16 autocast ({error})"
                choice = Precision("fp32", choice.asked, choice.device, reason, choice.probe)
        return choice

    def _autocast_error(self, choice: Precision) -> str | None:
        """Why the objective fails under ``choice``'s autocast, or None when it runs.

        Not every model does: a custom layer may mix a bf16 activation with an fp32 tensor
        where torch wants one dtype. One forward and backward on one training item shows it
        before the run starts, in eval mode (no dropout, no running statistics updated, no
        objective wrapper's training hooks) and with every RNG state put back, so that the
        run itself is the same as without the check.
        """
        model, was_training = self.raw_model, self.raw_model.training
        py_state, np_state = random.getstate(), np.random.get_state()
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                model.eval()
                batch = self._to_device(self.collate([self.train_data[0]]))
                with choice.autocast():
                    loss, _ = self.objective(model, batch)
                loss.float().backward()
        except Exception as e:  # whatever fails here would fail the first step: fp32 is safe
            first_line = (str(e).strip().splitlines() or [""])[0]
            return f"{type(e).__name__}: {first_line}"
        finally:
            model.train(was_training)
            for p in model.parameters():
                p.grad = None
            random.setstate(py_state)
            np.random.set_state(np_state)
        return None

    def _autocast(self):  # type: ignore[no-untyped-def]
        return self.precision.autocast()

    # ------------------------------------------------------------------ batches
    def _batch(self, step: int, micro: int) -> Batch:
        """The batch of (step, micro-step, rank): the same on every run with this seed."""
        if hasattr(self.train_data, "batch_items"):  # a stream: its items by global position
            k = step * self.cfg.grad_accum + micro
            items = self.train_data.batch_items(
                k, self.cfg.batch_size, self.dist.rank, self.dist.world
            )
            return self._to_device(self.collate(items))
        g = torch.Generator().manual_seed(hash_seed(self.cfg.seed, step, micro, self.dist.rank))
        idx = torch.randint(len(self.train_data), (self.cfg.batch_size,), generator=g).tolist()
        return self._to_device(self.collate([self.train_data[i] for i in idx]))

    def _to_device(self, batch: Batch) -> Batch:
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, (list, tuple)):
            return type(batch)(self._to_device(b) for b in batch)
        if isinstance(batch, dict):
            return {k: self._to_device(v) for k, v in batch.items()}
        return batch

    # ------------------------------------------------------------------ loop
    def fit(self, resume: bool = False) -> TrainState:
        """Train to ``max_steps`` (or early stop); returns the final state."""
        if resume:
            self.load_checkpoint()
            self._trim_log(self.state.step)
        elif (self.out / CHECKPOINT).exists():
            raise MusegenError(
                f"{self.out} already has a checkpoint: pass --resume to continue it, "
                "or choose another --out"
            )
        else:
            self._trim_log(-1)  # the log of a run stopped before its first checkpoint
            torch.manual_seed(hash_seed(self.cfg.seed, -1, self.dist.rank))
        self._wrap()
        st = self.state
        self.log({"step": st.step, "event": "precision", **self.precision.to_dict()})
        bar = self._progress()
        try:
            with stop_requests(self.dist.world == 1) as asked:
                self._loop(bar, asked)
        finally:
            if bar is not None:
                bar.close()
        self._wait_for_all()
        return st

    def _loop(self, bar: Any, asked: list[int]) -> None:
        """Steps to ``max_steps``, an early stop, or a stop the user asked for (``asked``)."""
        cfg, st = self.cfg, self.state
        tokens_seen, t0 = 0, time.perf_counter()
        self.model.train()
        while st.step < cfg.max_steps:
            lr = lr_at(st.step, cfg)
            for g in self.optimizer.param_groups:
                g["lr"] = lr
            loss_sum, ntok = 0.0, 0
            for micro in range(cfg.grad_accum):
                batch = self._batch(st.step, micro)
                sync = micro == cfg.grad_accum - 1 or self.dist.world == 1 or self.fsdp
                ctx = nullcontext() if sync else self.model.no_sync()  # type: ignore[operator]
                with ctx, self._autocast():
                    loss, n = self.objective(self.model, batch)
                (loss / cfg.grad_accum).backward()
                loss_sum += float(loss.detach()) / cfg.grad_accum
                ntok += n
            if not math.isfinite(loss_sum):
                raise MusegenError(
                    f"training diverged at step {st.step} (loss {loss_sum}); lower --lr or resume "
                    "from the last checkpoint"
                )
            grad_norm = float(nn.utils.clip_grad_norm_(self.raw_model.parameters(), cfg.grad_clip))
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            st.step += 1
            tokens_seen += ntok * self.dist.world
            rate = tokens_seen / max(time.perf_counter() - t0, 1e-9)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum:.3f}", tok_s=f"{rate:,.0f}", lr=f"{lr:.2e}")
            if st.step % cfg.log_every == 0 or st.step == cfg.max_steps:
                self.log(
                    {
                        "step": st.step,
                        "loss": self._mean_over_ranks(loss_sum, ntok),
                        "lr": lr,
                        "grad_norm": grad_norm,
                        "tokens_per_s": rate,
                    }
                )
            stop = False
            if self.valid_data is not None and (
                st.step % cfg.eval_every == 0 or st.step == cfg.max_steps
            ):
                stop = self._evaluate_and_track()
            due = st.step % cfg.checkpoint_every == 0 or st.step == cfg.max_steps or stop
            if due or asked:  # asked: the step the user stopped at, kept
                self.save_checkpoint()
            if stop:
                self.log({"step": st.step, "event": "early_stop", "best_valid": st.best_valid})
                break
            if asked and st.step < cfg.max_steps:
                self.log({"step": st.step, "event": "interrupted"})
                raise Interrupted.after_step(st.step, self.out / CHECKPOINT)

    def _wait_for_all(self) -> None:
        """Under torchrun, leave ``fit`` together: rank 0 may still be writing the last
        checkpoint, and a rank that runs ahead and tears down its process group while a peer
        is still connected can make gloo abort."""
        if self.dist.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def _progress(self):  # type: ignore[no-untyped-def]
        if not (self.cfg.progress and self.dist.main):
            return None
        from musegen.utils import progress as show

        return show(total=self.cfg.max_steps, initial=self.state.step, desc="training", unit="step")

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean loss per target token over the valid split (or its first ``eval_batches``)."""
        assert self.valid_data is not None
        self.model.eval()
        n_items = len(self.valid_data)
        bs = self.cfg.batch_size
        batches = range(0, n_items, bs)
        if self.cfg.eval_batches:
            batches = batches[: self.cfg.eval_batches]
        total, count = 0.0, 0
        share = self.dist.world > 1 and not self.fsdp  # FSDP: every rank runs every forward
        for k, start in enumerate(batches):
            if share and k % self.dist.world != self.dist.rank:
                continue
            items = [self.valid_data[i] for i in range(start, min(start + bs, n_items))]
            with self._autocast():
                loss, n = self.objective(self.model, self._to_device(self.collate(items)))
            total += float(loss) * n
            count += n
        if share:
            total, count_sum = self._summed_over_ranks(total, count)
            count = int(count_sum)
        self.model.train()
        return total / max(count, 1)

    def _summed_over_ranks(self, *values: float) -> list[float]:
        """``values`` summed over the ranks under torchrun, in one all-reduce (every rank
        must call it at the same point)."""
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return [float(x) for x in t]

    def _mean_over_ranks(self, loss: float, n: int) -> float:
        """A step's training loss over every rank's batch under torchrun (each rank's weighted
        by its target count; every rank must call it at the same step); the loss as is alone."""
        if self.dist.world == 1:
            return loss
        total, count = self._summed_over_ranks(loss * n, n)
        return total / count if count > 0 else loss

    def _evaluate_and_track(self) -> bool:
        st = self.state
        valid = self.evaluate()
        improved = valid < st.best_valid
        if improved:
            st.best_valid, st.bad_evals = valid, 0
            if self.dist.main or self.fsdp:  # FSDP: every rank gathers, rank 0 writes
                self._save_model(self.out / "best")
        else:
            st.bad_evals += 1
        st.history.append({"step": st.step, "valid_loss": valid})
        self.log({"step": st.step, "valid_loss": valid, "best_valid": st.best_valid})
        return bool(self.cfg.patience and st.bad_evals >= self.cfg.patience)

    def _trim_log(self, step: int) -> None:
        """Keep the log's rows up to ``step`` (a resumed run writes the later ones again, as
        an uninterrupted run would have) and drop a line a kill cut short."""
        path = self.out / "log.jsonl"
        if not self.dist.main or not path.exists():
            return
        keep = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
                keep.append(line + "\n")
        atomic_write_text(path, "".join(keep))

    def log(self, row: dict[str, Any]) -> None:
        if not self.dist.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    # ------------------------------------------------------------------ checkpoints
    def _meta(self) -> dict[str, Any]:
        return {
            **self.meta,
            "train_config": self.cfg.to_dict(),
            "precision": self.precision.to_dict(),
            "step": self.state.step,
        }

    def _save_model(self, directory: Path) -> None:
        weights, _ = self._gather(optimizer=False)
        if not self.dist.main:
            return
        with written_whole(directory) as tmp:
            self._save_weights(tmp, weights)

    def _gather(self, optimizer: bool) -> tuple[Any, Any]:
        """FSDP: the full weights (and optimizer state), gathered on every rank; else None."""
        if not self.fsdp:
            return None, None
        from musegen.train import fsdp

        return fsdp.full_state(self.raw_model, self.optimizer if optimizer else None)

    def _save_weights(self, directory: Path, weights: dict[str, torch.Tensor] | None) -> None:
        if weights is None:
            self.save_fn(self.raw_model, directory, self._meta())
            return
        from musegen.train import fsdp

        with fsdp.full_weights(self.raw_model, weights) as model:
            self.save_fn(model, directory, self._meta())

    def save_checkpoint(self) -> None:
        """Model + optimizer + RNG + step into ``out/checkpoint``, replaced atomically."""
        weights, optimizer_state = self._gather(optimizer=True)
        if not self.dist.main:
            return
        from safetensors.torch import save_file

        tensors, groups = flatten_optimizer(self.optimizer, optimizer_state)
        tensors["rng.torch"] = torch.get_rng_state()
        st = self.state
        info = {
            "step": st.step,
            "best_valid": st.best_valid if math.isfinite(st.best_valid) else None,
            "bad_evals": st.bad_evals,
            "history": st.history,
            "param_groups": groups,
            "rng_python": _jsonable(random.getstate()),
            "rng_numpy": _jsonable(np.random.get_state()),
            "train_config": self.cfg.to_dict(),
            "precision": self.precision.to_dict(),
            "machine": machine_name(self.device),
        }
        with written_whole(self.out / CHECKPOINT) as tmp:
            self._save_weights(tmp, weights)
            save_file(tensors, str(tmp / "trainer.safetensors"))
            (tmp / "trainer.json").write_text(json.dumps(info))

    def load_checkpoint(self) -> None:
        """Restore everything :meth:`save_checkpoint` wrote (``--resume``)."""
        from safetensors.torch import load_file

        ckpt = self.out / CHECKPOINT
        if not (ckpt / "trainer.json").exists():
            raise MusegenError(
                f"{ckpt}: no checkpoint to resume from (a run saves one every "
                f"{self.cfg.checkpoint_every} steps): run the same command without --resume"
            )
        try:
            info = json.loads((ckpt / "trainer.json").read_text())
            tensors = load_file(str(ckpt / "trainer.safetensors"))
            weights = load_file(str(ckpt / "model.safetensors"))
        except (
            OSError,
            ValueError,
            RuntimeError,
            KeyError,
        ) as e:  # safetensors raises several kinds
            raise MusegenError(f"{ckpt}: checkpoint is unreadable ({e})") from e
        if self.fsdp:
            from musegen.train import fsdp

            state = optimizer_state(tensors, info["param_groups"])
            missing, unexpected = fsdp.load_full_state(
                self.raw_model, self.optimizer, weights, state
            )
        else:
            missing, unexpected = self.raw_model.load_state_dict(weights, strict=False)
            tied = {n for n, _ in _tied_names(self.raw_model)}
            missing = [n for n in missing if n not in tied]
        if missing or unexpected:
            raise MusegenError(
                f"{ckpt}: checkpoint does not fit this model (missing {missing}, unexpected {unexpected})"
            )
        if not self.fsdp:
            restore_optimizer(self.optimizer, tensors, info["param_groups"], self.device)
        torch.set_rng_state(tensors["rng.torch"])
        random.setstate(_tupled(info["rng_python"]))
        np.random.set_state(_tupled(info["rng_numpy"]))
        best = info.get("best_valid")
        self.state = TrainState(
            step=info["step"],
            best_valid=float("inf") if best is None else best,
            bad_evals=info.get("bad_evals", 0),
            history=info.get("history", []),
        )

    def _checkpoint_precision(self) -> Precision | None:
        """With ``precision: "auto"`` and a checkpoint in ``out`` written on this machine (the
        run can only go on with ``--resume``): the checkpoint's arithmetic, so that a noisy
        probe cannot switch a run halfway; else None (probe). One process only: under
        torchrun rank 0 probes for all ranks, as in a new run."""
        if self.dist.world > 1 or self.cfg.precision != "auto":
            return None
        try:
            info = json.loads((self.out / CHECKPOINT / "trainer.json").read_text())
        except (OSError, ValueError):
            return None  # none yet, or unreadable: load_checkpoint says so on --resume
        saved = info.get("precision") or {}
        dtype, device = saved.get("precision"), self.device.type
        if (
            dtype not in ("fp32", "bf16")
            or saved.get("device") != device
            or info.get("machine") != machine_name(self.device)
        ):
            return None
        return Precision(dtype, "auto", device, "kept from the checkpoint (same machine)")


# ---------------------------------------------------------------------- helpers
def machine_name(device: torch.device) -> str:
    """What the arithmetic choice depends on: the GPU's name, or the CPU's model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return cpu_model_name() or platform.machine()


def hash_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across runs and platforms)."""
    import hashlib

    h = hashlib.sha256(",".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def default_collate(items: list[Any]) -> Batch:
    first = items[0]
    if isinstance(first, (tuple, list)):
        return type(first)(default_collate([it[k] for it in items]) for k in range(len(first)))
    if isinstance(first, torch.Tensor):
        return torch.stack(items)
    return torch.as_tensor(np.stack(items))


def _default_save(model: nn.Module, directory: Path, extra: dict[str, Any]) -> None:
    from musegen.models import save_model

    save_model(model, directory, extra)


def _tied_names(model: nn.Module) -> list[tuple[str, str]]:
    """(name, first name) pairs of parameters that share storage with an earlier one."""
    seen: dict[int, str] = {}
    out = []
    for name, p in model.named_parameters(remove_duplicate=False):
        key = p.data_ptr()
        if key in seen:
            out.append((name, seen[key]))
        else:
            seen[key] = name
    return out


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return {"__ndarray__": x.tolist(), "dtype": str(x.dtype)}
    if isinstance(x, (tuple, list)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    return x


def _tupled(x: Any) -> Any:
    if isinstance(x, dict) and "__ndarray__" in x:
        return np.array(x["__ndarray__"], dtype=x["dtype"])
    if isinstance(x, list):
        return tuple(_tupled(v) for v in x)
    return x
