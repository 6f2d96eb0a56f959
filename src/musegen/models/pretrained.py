"""Models shipped inside the package (``musegen/pretrained/NAME/``) and model references.

A reference is a shipped model's name, a model folder (``model.safetensors`` +
``config.json``), or a training run folder (its ``best/``, else its ``checkpoint/``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from musegen.errors import MusegenError

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
DEFAULT_MODEL = "bach"


def list_pretrained() -> list[dict[str, Any]]:
    """Name, description, size and metrics of every shipped model."""
    out = []
    if not PRETRAINED_DIR.is_dir():
        return out
    for d in sorted(PRETRAINED_DIR.iterdir()):
        cfg = d / "config.json"
        if not cfg.exists():
            continue
        meta = json.loads(cfg.read_text())
        weights = d / "model.safetensors"
        out.append(
            {
                "name": d.name,
                "default": d.name == DEFAULT_MODEL,
                "description": meta.get("description", ""),
                "model": meta.get("model"),
                "tokenizer": meta.get("tokenizer", {}).get("tokenizer"),
                "parameters": meta.get("parameters"),
                "valid_loss": meta.get("valid_loss"),
                "test_loss": meta.get("test_loss"),
                "megabytes": round(weights.stat().st_size / 1e6, 2) if weights.exists() else None,
                "path": str(d),
            }
        )
    return out


def model_label(folder: Path) -> str:
    """How a file that records which model it came from names ``folder``: a shipped model by
    its name (the package's path differs between installs), any other folder by its path."""
    folder = Path(folder).resolve()
    return folder.name if folder.parent == PRETRAINED_DIR else str(folder)


def resolve_model(ref: str | None) -> Path:
    """The model folder a reference points to (see the module docstring)."""
    ref = ref or DEFAULT_MODEL
    shipped = PRETRAINED_DIR / ref
    if "/" not in ref and (shipped / "config.json").exists():
        return shipped
    path = Path(ref)
    for candidate in (path, path / "best", path / "checkpoint"):
        if (candidate / "config.json").exists():
            return candidate
    names = ", ".join(m["name"] for m in list_pretrained()) or "none shipped"
    if path.exists():
        raise MusegenError(
            f"{ref}: not a model folder (no config.json; looked in best/ and checkpoint/ too)"
        )
    raise MusegenError(f"no model {ref!r}: give a shipped model ({names}) or a model/run folder")
