"""What ``musegen models`` lists: the shipped models, or the folders given, with their
capability words (:mod:`musegen.sampling.capabilities`). Not a command module itself: the
``models`` command is registered by :mod:`musegen.cli.generate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from musegen.errors import InputError

# models no generator loads (they write no pieces): the command that uses them
USED_BY = {
    "ddsp-synth": "render --synth neural",
    "spectral-codec": "audio generate --model codec",
    "code-prior": "audio generate --model codec",
}


def listed_models(folders: list[str] | None = None) -> list[dict[str, Any]]:
    """:func:`~musegen.models.pretrained.list_pretrained`'s entries (or the same entries for
    ``folders``: model or run folders), each with ``can``: what the model can do."""
    from musegen.models.pretrained import list_pretrained, resolve_model
    from musegen.sampling.capabilities import model_capabilities

    models = [_entry(resolve_model(f)) for f in folders] if folders else list_pretrained()
    for m in models:
        meta = _config(Path(m["path"]))
        m["can"] = list(model_capabilities(meta))
        if not m["can"] and meta.get("model") in USED_BY:
            m["can"] = [USED_BY[meta["model"]]]
        tokenizer = meta.get("tokenizer")
        config = tokenizer.get("config") if isinstance(tokenizer, dict) else None
        if isinstance(config, dict) and config.get("styles"):  # generate --style NAME
            m["styles"] = list(config["styles"])
    return models


def _config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(path, f"unreadable model config ({e})") from e
    if not isinstance(meta, dict):
        raise InputError(path, 'expected {"model": name, "config": {...}}')
    return meta


def _entry(folder: Path) -> dict[str, Any]:
    """A folder's entry, shaped like a shipped model's."""
    meta = _config(folder)
    weights = folder / "model.safetensors"
    tokenizer = meta.get("tokenizer")
    return {
        "name": str(folder),
        "default": False,
        "description": meta.get("description", ""),
        "model": meta.get("model"),
        "tokenizer": tokenizer.get("tokenizer") if isinstance(tokenizer, dict) else None,
        "parameters": meta.get("parameters"),
        "valid_loss": meta.get("valid_loss"),
        "test_loss": meta.get("test_loss"),
        "megabytes": round(weights.stat().st_size / 1e6, 2) if weights.exists() else None,
        "path": str(folder),
    }
