"""``musegen models`` says what each model can do, derived from its config (no table)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from musegen.cli.main import main
from musegen.sampling import generators
from musegen.sampling.capabilities import model_capabilities, ordered
from musegen.tokenizers import get_tokenizer


def meta(tokenizer: str | None, model: str = "transformer", **config: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "config": {}}
    if tokenizer:
        out["tokenizer"] = get_tokenizer(tokenizer, **config).to_dict()
    return out


def test_words_follow_the_tokenizer() -> None:
    assert model_capabilities(meta("chorale")) == ("generate", "continue", "theme", "structure")
    assert model_capabilities(meta("melody-infill")) == (
        "generate",
        "continue",
        "infill",
        "accompany",
        "theme",
        "structure",
    )
    chords = model_capabilities(meta("melody-chords", density_edges=[1.0, 2.0]))
    assert {"chords", "density", "theme"} <= set(chords)
    assert "density" not in model_capabilities(meta("melody-chords"))
    assert model_capabilities(meta("remi")) == ("generate", "continue")  # no bar grid


def test_words_follow_the_generator_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    assert model_capabilities(meta("satb", model="coconet")) == (
        "generate",
        "infill",
        "accompany",
        "harmonize",
    )
    assert model_capabilities({"model": "rnn-nade", "config": {}}) == ("generate",)
    assert model_capabilities({"model": "transformer", "config": {}}) == ()  # no tokenizer

    class Sketcher(generators.Generator):  # a new kind gets its words from what it serves
        serves: ClassVar[tuple[str, ...]] = ("generate", "interpolate")

    monkeypatch.setitem(generators.GENERATORS, "sketcher", Sketcher)
    assert model_capabilities({"model": "sketcher", "config": {}}) == ("generate", "interpolate")


def test_order_is_fixed_and_words_unique() -> None:
    assert ordered(["theme", "generate", "zzz", "generate", "chords"]) == (
        "generate",
        "chords",
        "theme",
        "zzz",
    )


def test_cli_lists_words(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "can: generate, continue, theme, structure" in out  # bach, folk
    assert "can: generate, infill, accompany, harmonize" in out  # coconet
    assert "can: render --synth neural" in out  # synth-ddsp: no generator, named by its command
    folder = tmp_path / "run" / "best"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(meta("melody-infill")))
    assert main(["models", str(tmp_path / "run"), "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["can"][:4] == ["generate", "continue", "infill", "accompany"]
    assert entry["tokenizer"] == "melody-infill"
    assert main(["models", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
