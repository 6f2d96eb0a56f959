"""FSDP: a model sharded across the ranks of a ``torchrun`` run, for models that do not fit
one device (``"train": {"fsdp": true}`` in a run file).

DDP keeps a whole copy of the weights, their gradients and the optimizer's two moments on
every device; FSDP keeps 1/N of each on each of N ranks and gathers a block's full weights
only while that block runs. musegen uses PyTorch's own (FSDP2, ``fully_shard``): every child
of an ``nn.ModuleList`` (a transformer's layers) is sharded as a unit, then the whole model
(embeddings, head and anything else). It runs wherever torch's process groups run: NCCL on
GPUs, and gloo on CPUs (how the tests run it, two processes on one machine).

What stays as with DDP: the global batch (``batch_size`` per rank × ranks × ``grad_accum``),
the batches (a stream's global positions, :mod:`musegen.data.shards`), the loss: a run with
FSDP on N ranks trains like one process with N times the batch, to rounding. Checkpoints are
*full* state dicts: every rank takes part in gathering the weights and the optimizer state,
rank 0 writes them as usual (``model.safetensors``, ``trainer.safetensors``), so a checkpoint
loads without FSDP (``generate``, a one-process ``--resume``) and an FSDP run resumes from
a checkpoint of any run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain
from typing import Any

import torch
from torch import nn

from musegen.errors import MusegenError


def fully_shard_api() -> Any:
    """torch's ``fully_shard`` (FSDP2), or a one-line error naming what is missing."""
    try:
        from torch.distributed.fsdp import fully_shard
    except ImportError as e:  # torch < 2.6, or a build without distributed
        raise MusegenError(
            f"fsdp needs torch >= 2.6 built with torch.distributed (this is {torch.__version__}): "
            "upgrade torch, or train without fsdp"
        ) from e
    return fully_shard


def check(device: torch.device, world: int) -> None:
    """Refuse what FSDP cannot do here, before a model is touched."""
    import torch.distributed as dist

    fully_shard_api()
    if world > 1 and not dist.is_available():
        raise MusegenError("fsdp needs torch.distributed, which this torch build lacks")
    if device.type not in ("cpu", "cuda"):
        raise MusegenError(f"fsdp runs on CPUs (gloo) or CUDA GPUs (NCCL), not {device.type}")


def blocks(model: nn.Module) -> list[nn.Module]:
    """The modules sharded as units before the whole model: each child of every
    ``nn.ModuleList`` that holds parameters (a transformer's layers)."""
    out = []
    for module in model.modules():
        if isinstance(module, nn.ModuleList):
            out += [m for m in module if any(True for _ in m.parameters())]
    return out


def shard(model: nn.Module, device: torch.device, world: int) -> nn.Module:
    """``model`` (still whole, on the CPU or ``device``) sharded in place across the
    ``world`` ranks of the process group; its shards end on ``device``. Rank 0's weights are
    given to every rank first, as DDP does, so ranks that built the model differently still
    start alike."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    fully_shard = fully_shard_api()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    for t in chain(model.parameters(), model.buffers()):  # one tensor on the device at a time
        on_device = t.detach().to(device)
        dist.broadcast(on_device, src=0)
        t.data.copy_(on_device)
    mesh = init_device_mesh(device.type, (world,))
    for block in blocks(model):
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def _options() -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def full_state(model: nn.Module, optimizer: torch.optim.Optimizer | None) -> tuple[Any, Any]:
    """The whole model's state dict and, if given, the optimizer's, in the form
    ``Optimizer.state_dict()`` has (parameters numbered in the groups' order): gathered from
    every rank (call it on all of them), complete on rank 0, empty elsewhere."""
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    weights = get_model_state_dict(model, options=_options())
    if optimizer is None:
        return weights, None
    named = get_optimizer_state_dict(model, optimizer, options=_options())
    if "param_groups" not in named:  # not rank 0: nothing was gathered here
        return weights, None
    number: dict[str, int] = {}
    groups = []
    for g in named["param_groups"]:
        ids = [number.setdefault(name, len(number)) for name in g["params"]]
        groups.append({**g, "params": ids})
    state = {number[name]: s for name, s in named.get("state", {}).items() if name in number}
    return weights, {"state": state, "param_groups": groups}


def load_full_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    weights: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any] | None,
) -> tuple[list[str], list[str]]:
    """Give a sharded model (and its optimizer) full state dicts read from a checkpoint, on
    every rank; returns (missing, unexpected) weight names, tied copies not counted."""
    from torch.distributed.checkpoint.state_dict import (
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    options = _options()
    options.strict = False
    result = set_model_state_dict(model, weights, options=options)
    tied = tied_names(model)
    missing = [n for n in result.missing_keys if n not in tied]
    if optimizer_state is not None:
        names = _parameter_names(model, optimizer, optimizer_state["param_groups"])
        named = {
            "state": {names[i]: s for i, s in optimizer_state["state"].items()},
            "param_groups": [
                {**g, "params": [names[i] for i in g["params"]]}
                for g in optimizer_state["param_groups"]
            ],
        }
        set_optimizer_state_dict(model, optimizer, named, options=_options())
    return missing, list(result.unexpected_keys)


def _parameter_names(
    model: nn.Module, optimizer: torch.optim.Optimizer, groups: list[dict[str, Any]]
) -> dict[int, str]:
    """Parameter number (as in ``Optimizer.state_dict()``) -> name: the groups list
    ``optimizer``'s parameters in order, numbered from 0."""
    by_id = {id(p): name for name, p in model.named_parameters()}
    flat = [p for g in optimizer.param_groups for p in g["params"]]
    numbers = [i for g in groups for i in g["params"]]
    if len(flat) != len(numbers):
        raise MusegenError("the checkpoint's optimizer does not fit this model's parameters")
    return {i: by_id[id(p)] for i, p in zip(numbers, flat, strict=True)}


def tied_names(model: nn.Module) -> set[str]:
    """Names under which a parameter appears a second time (tied weights)."""
    seen: set[int] = set()
    out = set()
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            out.add(name)
        seen.add(id(p))
    return out


@contextmanager
def full_weights(model: nn.Module, weights: dict[str, torch.Tensor]) -> Iterator[nn.Module]:
    """``model`` answering ``state_dict()`` with the gathered ``weights``, so that a save
    function written for a whole model (``musegen.models.save_model``) saves them."""
    model.state_dict = lambda *args, **kwargs: dict(weights)  # type: ignore[method-assign]
    try:
        yield model
    finally:
        del model.state_dict
