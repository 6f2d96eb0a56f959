"""Neural sequence models: a registry by name, and safetensors checkpoints.

Importing this package is cheap: torch and the model modules load on first use.

Registry::

    available_models() -> list[str]                 # ["coconet", "frame-bernoulli", "gru", ...]
    model_config_class(name) -> type[ModelConfig]    # dataclass; fields are the options
    build_model(name, **options) -> LanguageModel    # MusegenError on unknown/bad options

Frame models (``"frame-bernoulli"``, ``"rnn-nade"``: :mod:`musegen.models.frame`) score binary
piano-roll frames instead of token ids and have their own interface; they share the registry
and the checkpoints below.

Every token model (an ``nn.Module``, subclass of :class:`musegen.models.base.LanguageModel`):

* ``model.config``: its config dataclass (``to_dict()``); ``model.model_name``: registry name.
* ``model(ids, cache=None) -> (logits, cache)``: ``ids`` is a LongTensor ``[B, T]``, logits are
  ``[B, T, vocab]`` (position ``t`` predicts token ``t + 1``). ``cache=None`` is the training
  pass over whole sequences and returns ``cache=None``.
* ``model.init_cache(batch_size, max_len) -> cache``: an empty cache for incremental decoding.
  ``model(new_ids, cache)`` with ``new_ids`` ``[B, T >= 1]`` (a prompt, then one token at a
  time, or any chunks) continues the cached sequences and returns ``(logits for new_ids,
  cache)``. Always use the returned cache: the transformer updates its preallocated KV cache in
  place, the RNNs return a new state. ``cache.length`` is the number of tokens consumed; going
  past ``max_len`` raises MusegenError. Cached logits equal full-pass logits (tested, 1e-4).
* ``model.next_logits(tokens, cache) -> (logits, cache)``: one decoding step for the generator,
  numpy in and out (``tokens`` ``[B]``, logits ``[B, vocab]`` float32); the same numbers as
  ``model(tokens[:, None], cache)``. The transformer runs it straight through its fused CPU
  step (:mod:`musegen.models.cpu`, the fast CPU path; ``MUSEGEN_FAST_CPU=0`` turns it off);
  other models inherit the generic version.
* ``model.select_cache(cache, rows) -> cache``: the cache of some sequences of the batch (the
  generator drops finished ones).
* ``model.num_parameters(exclude_embeddings=False) -> int`` (tied weights counted once).

Token models and their options (``model_config_class(name)`` lists every field and default):

* ``"transformer"`` (:mod:`musegen.models.transformer`): decoder-only, pre-norm, GELU MLP,
  ``position="relative"`` (Music Transformer relative attention, the default) | ``"rope"`` |
  ``"absolute"``; cache :class:`~musegen.models.transformer.KVCache` (preallocated keys and
  values ``[layers, B, heads, max_len, head_dim]`` + ``length``).
* ``"lstm"``, ``"gru"`` (:mod:`musegen.models.lstm`): embedding → stacked RNN → layer norm →
  output layer (optionally tied); cache :class:`~musegen.models.lstm.RNNState`.
* ``"ensemble"`` (:mod:`musegen.models.ensemble`): token models of one vocabulary whose
  next-token distributions are combined (product or mixture); cache: the members' caches.

Checkpoints (a directory)::

    save_model(model, directory, extra=None)   # model.safetensors + config.json, atomically
    load_model(directory, map_location="cpu") -> (model, meta)

``config.json`` is ``{"model": name, "config": {...options}, **extra}`` (``extra`` is yours:
step, tokenizer, metrics ... but not the keys "model"/"config"); ``meta`` is that dict.
Weights are safetensors only (no pickle). Tied weights are stored once and re-tied on load
(the file's metadata lists the aliases). ``load_model`` returns the model in eval mode, in the
saved float dtype, on ``map_location``; a missing directory, missing or corrupt file, or a
config that does not match the weights (naming the tensor and both shapes) is a MusegenError.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from musegen.errors import InputError, MusegenError
from musegen.utils import default_file_mode

if TYPE_CHECKING:
    import torch

    from musegen.models.base import LanguageModel, ModelConfig

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"

# name -> (module, config class, model class)
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "chord-lstm": ("musegen.models.chord_lstm", "ChordLSTMConfig", "ChordLSTM"),
    "coconet": ("musegen.models.coconet", "CoconetConfig", "Coconet"),
    "crnngan": ("musegen.models.gan.crnngan", "CRNNGANConfig", "CRNNGAN"),
    "ensemble": ("musegen.models.ensemble", "EnsembleConfig", "Ensemble"),
    "frame-bernoulli": ("musegen.models.frame", "BernoulliFrameConfig", "BernoulliFrameModel"),
    "gru": ("musegen.models.lstm", "GRUConfig", "RNNModel"),
    "latent-diffusion": (
        "musegen.models.latent_diffusion",
        "LatentDiffusionConfig",
        "LatentDiffusion",
    ),
    "lstm": ("musegen.models.lstm", "LSTMConfig", "RNNModel"),
    "midinet": ("musegen.models.gan.midinet", "MidiNetConfig", "MidiNet"),
    "musegan": ("musegen.models.gan.musegan", "MuseGANConfig", "MuseGAN"),
    "music-vae": ("musegen.models.vae", "MusicVAEConfig", "MusicVAE"),
    "rnn-nade": ("musegen.models.frame", "RNNNadeConfig", "RNNNadeModel"),
    "transformer": ("musegen.models.transformer", "TransformerConfig", "Transformer"),
}


def available_models() -> list[str]:
    return sorted(_REGISTRY)


def _entry(name: str) -> tuple[type[ModelConfig], type[LanguageModel]]:
    if name not in _REGISTRY:
        raise MusegenError(
            f"unknown model {name!r}; choose one of: {', '.join(available_models())}"
        )
    module_name, config_name, model_name = _REGISTRY[name]
    module = importlib.import_module(module_name)
    return getattr(module, config_name), getattr(module, model_name)


def model_config_class(name: str) -> type[ModelConfig]:
    """The config dataclass of model ``name``; its fields are the options of ``build_model``."""
    return _entry(name)[0]


def build_model(name: str, **options: Any) -> LanguageModel:
    """A freshly initialised model; unknown options or bad values raise MusegenError."""
    config_class, model_class = _entry(name)
    return model_class(config_class.from_dict(options))


# ----------------------------------------------------------------------------- checkpoints


def save_model(
    model: LanguageModel, directory: str | Path, extra: dict[str, Any] | None = None
) -> None:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created if needed).

    Both files are written to temporary names first and then renamed, weights before config, so
    a reader never sees a half-written file and an interrupted save leaves the old checkpoint.
    """
    from safetensors.torch import save_file

    model = _unwrap(model)
    name = getattr(model, "model_name", None)
    if name not in _REGISTRY:
        raise MusegenError(f"cannot save {type(model).__name__}: not a registered musegen model")
    extra = dict(extra or {})
    clash = {"model", "config"} & set(extra)
    if clash:
        raise MusegenError(f"save_model: extra must not use the reserved key(s) {sorted(clash)}")
    meta = {"model": name, "config": model.config.to_dict(), **extra}
    try:
        config_text = json.dumps(meta, indent=2, sort_keys=False) + "\n"
    except (TypeError, ValueError) as e:
        raise MusegenError(f"save_model: extra is not JSON-serialisable ({e})") from e

    tensors, tied = _unshare(model.state_dict())
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    metadata = {"format": "pt", "tied": json.dumps(tied)}
    _write_together(
        directory,
        {
            WEIGHTS_FILE: lambda path: save_file(tensors, path, metadata=metadata),
            CONFIG_FILE: lambda path: Path(path).write_text(config_text, encoding="utf-8"),
        },
    )


def load_model(
    directory: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[LanguageModel, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_model`; returns ``(model in eval mode, meta)``."""
    import torch
    from safetensors import safe_open

    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(directory, "no such model directory")
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputError(config_path, "missing: not a saved musegen model directory") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(config_path, f"unreadable model config ({e})") from e
    if not (isinstance(meta, dict) and isinstance(meta.get("config"), dict) and "model" in meta):
        raise InputError(config_path, 'expected {"model": name, "config": {...}}')
    try:
        model = build_model(meta["model"], **meta["config"])
    except MusegenError as e:
        raise InputError(config_path, str(e)) from e

    if not weights_path.is_file():
        raise InputError(weights_path, "missing weights file (the checkpoint is incomplete)")
    try:
        with safe_open(str(weights_path), framework="pt", device="cpu") as f:
            file_meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open API)
        tied = json.loads(file_meta.get("tied", "{}"))
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise InputError(weights_path, f"corrupt or unreadable safetensors file ({e})") from e

    for alias, target in tied.items():
        if target in state:
            state[alias] = state[target]
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise InputError(
            weights_path,
            f"weights do not match {CONFIG_FILE}: missing {missing or 'none'}, "
            f"unexpected {unexpected or 'none'}",
        )
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise InputError(
                weights_path,
                f"tensor {key!r} has shape {tuple(tensor.shape)} but {CONFIG_FILE} implies "
                f"{tuple(expected[key].shape)}",
            )
    model.load_state_dict(state)
    float_dtypes = {t.dtype for t in state.values() if t.is_floating_point()}
    if len(float_dtypes) == 1 and (dtype := float_dtypes.pop()) != torch.float32:
        model.to(dtype)
    return model.to(map_location).eval(), meta


def _unwrap(model: Any) -> Any:
    """The model inside ``torch.compile`` (``_orig_mod``) and DDP/FSDP (``module``) wrappers."""
    while True:
        if getattr(model, "_orig_mod", None) is not None:
            model = model._orig_mod
        elif not hasattr(type(model), "model_name") and getattr(model, "module", None) is not None:
            model = model.module
        else:
            return model


def _unshare(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors safetensors accepts (no shared memory) and ``{alias: kept name}`` for tied ones."""
    tensors: dict[str, torch.Tensor] = {}
    tied: dict[str, str] = {}
    views: dict[tuple, str] = {}
    storages: set[int] = set()
    for key, t in state.items():
        t = t.detach()
        view = (t.untyped_storage().data_ptr(), t.storage_offset(), t.shape, t.stride(), t.dtype)
        if view in views:  # the very same tensor under another name: a tied weight
            tied[key] = views[view]
            continue
        views[view] = key
        ptr = t.untyped_storage().data_ptr()
        t = t.to("cpu")
        if ptr in storages or not t.is_contiguous():
            t = t.contiguous().clone()  # overlaps another tensor without being it: store a copy
        storages.add(ptr)
        tensors[key] = t
    return tensors, tied


def _write_together(directory: Path, writers: dict[str, Callable[[str], object]]) -> None:
    """Write each file to a temp name in ``directory``, fsync, then rename all in order."""
    temps: dict[str, str] = {}
    try:
        for name, write in writers.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
            os.close(fd)
            temps[name] = tmp
            write(tmp)
            os.chmod(tmp, default_file_mode())  # mkstemp (and safetensors) make 0600 files
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        for name, tmp in temps.items():
            os.replace(tmp, directory / name)
    finally:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)


__all__ = [
    "available_models",
    "build_model",
    "load_model",
    "model_config_class",
    "save_model",
]
