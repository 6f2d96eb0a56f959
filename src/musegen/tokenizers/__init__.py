"""Tokenizers: Score <-> integer arrays, each with a JSON config and a sampling grammar.

``get_tokenizer("remi")`` builds one by name; ``tokenizer_from_dict(d)`` rebuilds a saved one.
Modules are imported on first use so ``import musegen.tokenizers`` stays cheap.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from musegen.errors import MusegenError
from musegen.tokenizers.base import BOS, EOS, PAD, Grammar, Tokenizer, TokenizerConfig, Vocab

_REGISTRY: dict[str, tuple[str, str]] = {
    "events": ("musegen.tokenizers.events", "EventTokenizer"),
    "remi": ("musegen.tokenizers.remi", "RemiTokenizer"),
    "roll": ("musegen.tokenizers.grid", "RollTokenizer"),
    "satb": ("musegen.tokenizers.grid", "SatbTokenizer"),
    "chorale": ("musegen.tokenizers.chorale", "ChoraleTokenizer"),
    "melody": ("musegen.tokenizers.chorale", "MelodyTokenizer"),
    "chorale-infill": ("musegen.tokenizers.infill", "ChoraleInfillTokenizer"),
    "melody-infill": ("musegen.tokenizers.infill", "MelodyInfillTokenizer"),
    "melody-chords": ("musegen.tokenizers.controls", "MelodyChordsTokenizer"),
    "remi-instruments": ("musegen.tokenizers.instruments", "InstrumentsTokenizer"),
}


def available() -> list[str]:
    return list(_REGISTRY)


def tokenizer_class(name: str) -> type[Tokenizer]:
    if name not in _REGISTRY:
        raise MusegenError(f"unknown tokenizer {name!r}; choose one of: {', '.join(_REGISTRY)}")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)


def get_tokenizer(name: str, **config: Any) -> Tokenizer:
    """A tokenizer by registry name, with config overrides as keyword arguments."""
    return tokenizer_class(name)(**config)


def tokenizer_from_dict(d: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from ``Tokenizer.to_dict()`` output (a model's, a dataset's, a
    token file's).

    An option the description lacks takes the value it had before the option existed
    (``Tokenizer.saved_defaults``), not today's default: a model keeps reading the ids it
    was trained on when a later version adds an option that changes them.
    """
    try:
        name, config = d["tokenizer"], d.get("config", {})
    except (KeyError, TypeError) as e:
        raise MusegenError(f"not a tokenizer description: {d!r:.80}") from e
    if not isinstance(config, dict):
        raise MusegenError(f"not a tokenizer description: {d!r:.80}")
    return get_tokenizer(name, **{**tokenizer_class(name).saved_defaults, **config})


def spelled_out(d: dict[str, Any]) -> dict[str, Any]:
    """A tokenizer description with every option spelt out, so two descriptions of the same
    tokens compare equal (a model's config names only the options it changed, a dataset's
    manifest names all of them)."""
    return tokenizer_from_dict(d).to_dict()


def load_tokenizer(path: str | Path) -> Tokenizer:
    try:
        return tokenizer_from_dict(json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError) as e:
        raise MusegenError(f"{path}: cannot read tokenizer config ({e})") from e


__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "Grammar",
    "Tokenizer",
    "TokenizerConfig",
    "Vocab",
    "available",
    "get_tokenizer",
    "load_tokenizer",
    "spelled_out",
    "tokenizer_class",
    "tokenizer_from_dict",
]
