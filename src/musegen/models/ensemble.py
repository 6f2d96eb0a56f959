"""Several token models read as one: their next-token distributions combined.

Models trained apart on the same tokens (another depth, another seed) make different errors,
so their combination predicts held-out music better than any one of them: on the Bach
chorales the four- and six-layer transformers score 0.482 and 0.491 nats a token alone and
0.466 together. :class:`Ensemble` is a token model like the others (``forward``, a cache,
``next_logits``), so the generator, the grammar masks, the logit filters and the NLL
evaluation take it unchanged.

``combine``:

* ``"product"`` (default): a product of experts, ``log p(x) = Σ wᵢ log pᵢ(x) - log Z``
  (a weighted geometric mean of the members' distributions, normalised);
* ``"mixture"``: ``p(x) = Σ wᵢ pᵢ(x)``.

Both return normalised log-probabilities as the logits, so a temperature or a top-p acts on
the combined distribution exactly as on one model's. ``weights`` (default equal) sum to 1.

The members are stored as ``members.<i>.<name>`` in one safetensors file; ``config.json``
lists each member's ``{"model": ..., "config": {...}}``. :func:`ensemble_of` joins loaded
models (they must share one vocabulary), :func:`join_saved` saved ones (they must share one
tokenizer; ``musegen models A B --join OUT``). The trainer does not train an ensemble: it
trains each member.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from musegen.errors import MusegenError
from musegen.models.base import LanguageModel, ModelConfig

COMBINES = ("product", "mixture")


@dataclass
class EnsembleConfig(ModelConfig):
    """The members (``{"model": name, "config": {...}}`` each), their weights and the rule."""

    members: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    combine: str = "product"

    def validate(self) -> None:
        self.check(len(self.members) >= 2, "an ensemble needs at least two members")
        for i, m in enumerate(self.members):
            self.check(
                isinstance(m, dict) and isinstance(m.get("config"), dict) and "model" in m,
                f'member {i} must be {{"model": name, "config": {{...}}}}',
            )
            self.check(m["model"] != "ensemble", f"member {i} is itself an ensemble")
        if self.weights:
            self.check(
                len(self.weights) == len(self.members)
                and all(isinstance(w, int | float) and w > 0 for w in self.weights),
                f"weights must be {len(self.members)} positive numbers, got {self.weights}",
            )
        self.check(self.combine in COMBINES, f"combine must be one of {COMBINES}")

    def normalised_weights(self) -> list[float]:
        raw = [float(w) for w in self.weights] or [1.0] * len(self.members)
        return [w / sum(raw) for w in raw]


class Ensemble(LanguageModel):
    """Token models of one vocabulary whose distributions are combined (module docstring)."""

    def __init__(self, config: EnsembleConfig) -> None:
        from musegen.models import build_model

        super().__init__()
        self.config = config
        self.members = nn.ModuleList(build_model(m["model"], **m["config"]) for m in config.members)
        sizes = {self._vocab(m) for m in self.members}
        if len(sizes) != 1:
            raise MusegenError(f"ensemble members differ in vocabulary size: {sorted(sizes)}")
        self.weights = config.normalised_weights()

    @property
    def model_name(self) -> str:
        return "ensemble"

    @staticmethod
    def _vocab(model: nn.Module) -> int:
        size = getattr(getattr(model, "config", None), "vocab_size", None)
        if not isinstance(size, int):
            raise MusegenError(f"{type(model).__name__} is not a token model with a vocab_size")
        return size

    # ------------------------------------------------------------------ combining
    def _combine(self, logits: list[torch.Tensor]) -> torch.Tensor:
        logps = torch.stack([torch.log_softmax(x.float(), -1) for x in logits])
        w = torch.tensor(self.weights, dtype=logps.dtype).view(-1, *[1] * (logps.dim() - 1))
        if self.config.combine == "product":
            return torch.log_softmax((w * logps).sum(0), -1)
        return torch.logsumexp(logps + w.log(), 0)

    # ------------------------------------------------------------------ interface
    def forward(self, ids: torch.Tensor, cache: Any = None) -> tuple[torch.Tensor, Any]:
        caches = cache if cache is not None else [None] * len(self.members)
        outs = [m(ids, c) for m, c in zip(self.members, caches, strict=True)]
        new = None if cache is None else [c for _, c in outs]
        return self._combine([x for x, _ in outs]), new

    def init_cache(self, batch_size: int, max_len: int) -> list[Any]:
        return [m.init_cache(batch_size, max_len) for m in self.members]

    def select_cache(self, cache: list[Any], rows: Any) -> list[Any]:
        return [m.select_cache(c, rows) for m, c in zip(self.members, cache, strict=True)]

    def next_logits(self, tokens: np.ndarray, cache: list[Any]) -> tuple[np.ndarray, list[Any]]:
        outs = [m.next_logits(tokens, c) for m, c in zip(self.members, cache, strict=True)]
        joined = self._combine([torch.from_numpy(x) for x, _ in outs])
        return joined.numpy(), [c for _, c in outs]


def ensemble_of(
    models: list[LanguageModel], weights: list[float] | None = None, combine: str = "product"
) -> Ensemble:
    """An ensemble holding (copies of the weights of) the given models."""
    config = EnsembleConfig(
        members=[{"model": m.model_name, "config": m.config.to_dict()} for m in models],
        weights=list(weights or []),
        combine=combine,
    )
    ensemble = Ensemble(config)
    for target, source in zip(ensemble.members, models, strict=True):
        target.load_state_dict(source.state_dict())
    return ensemble.eval()


# the member's own figures: they do not describe the ensemble
MEMBER_KEYS = ("step", "valid_loss", "test_loss", "run_config", "precision", "parameters")


def _tokens(meta: dict[str, Any]) -> dict[str, Any] | None:
    """A model's tokenizer with every option spelt out (None: it names none)."""
    from musegen.tokenizers import spelled_out

    described = meta.get("tokenizer")
    return None if described is None else spelled_out(described)


def join_saved(
    refs: list[str],
    out: str | Path,
    weights: list[float] | None = None,
    combine: str = "product",
) -> dict[str, Any]:
    """Join saved token models (shipped names, model or run folders) into one ensemble model
    folder ``out``; returns its ``config.json``. The models must share one tokenizer; the
    ensemble keeps the first one's settings (tokenizer, sampling defaults, data) and lists
    where each member came from."""
    from musegen.models import load_model, save_model
    from musegen.models.pretrained import resolve_model

    if len(refs) < 2:
        raise MusegenError("give at least two models to join")
    folders = [resolve_model(r) for r in refs]
    loaded = [load_model(f) for f in folders]
    first = loaded[0][1]
    for folder, (_, meta) in zip(folders, loaded, strict=True):
        if meta.get("model") == "ensemble":
            raise MusegenError(f"{folder}: already an ensemble; join its members instead")
        if _tokens(meta) != _tokens(first):
            raise MusegenError(
                f"{folder}: its tokenizer differs from {folders[0]}'s; an ensemble's members "
                "must read the same tokens"
            )
    model = ensemble_of([m.float() for m, _ in loaded], weights, combine)
    extra = {k: v for k, v in first.items() if k not in ("model", "config", *MEMBER_KEYS)}
    extra["parameters"] = model.num_parameters()
    extra["joined"] = [
        {"from": str(f), **{k: meta[k] for k in MEMBER_KEYS if k in meta}}
        for f, (_, meta) in zip(folders, loaded, strict=True)
    ]
    save_model(model, out, extra=extra)
    return {"model": "ensemble", "config": model.config.to_dict(), **extra}
