"""Model references: shipped names, folders, run folders; how a record names a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from musegen.errors import MusegenError
from musegen.models.pretrained import PRETRAINED_DIR, model_label, resolve_model


def test_a_shipped_model_is_named_by_its_name_other_folders_by_their_path(tmp_path: Path) -> None:
    assert model_label(resolve_model("folk-vae")) == "folk-vae"
    assert model_label(PRETRAINED_DIR / "bach") == "bach"
    assert model_label(tmp_path / "runs" / "x") == str((tmp_path / "runs" / "x").resolve())


def test_resolve_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(MusegenError, match="no model 'nothing-here'"):
        resolve_model("nothing-here")
    with pytest.raises(MusegenError, match="not a model folder"):
        resolve_model(str(tmp_path))
