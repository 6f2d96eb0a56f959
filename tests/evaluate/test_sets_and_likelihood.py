"""Reading sets of pieces by reference, and the likelihood of a prepared split."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from metricshelpers import CLEAN, satb
from musegen.cli.main import main
from musegen.data.dataset import load_prepared, prepare_dataset
from musegen.data.sources import Piece, Source
from musegen.errors import MusegenError
from musegen.evaluate.likelihood import evaluate_nll
from musegen.evaluate.sets import load_set
from musegen.io import save
from musegen.models import build_model, save_model
from musegen.score import Score
from musegen.tokenizers import get_tokenizer


class Chorales(Source):
    """Transpositions of the clean progression, two per split."""

    name = "chorales"

    def pieces(self) -> list[Piece]:
        splits = ("train", "train", "valid", "valid", "test", "test")
        return [Piece(f"p{i}", s, "code", f"{i:064x}") for i, s in enumerate(splits)]

    def load(self, piece: Piece) -> Score:
        return satb(CLEAN).transpose(int(piece.id[1:]) - 2)


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return get_tokenizer("remi", positions_per_quarter=4, velocity_bins=0, tempo_bins=0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("data") / "ds"
    prepare_dataset(Chorales(), tokenizer, out, workers=1, progress=False)
    return out


def tiny_model(tokenizer, folder: Path, uniform: bool = False) -> Path:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=len(tokenizer), n_layer=1, d_model=32, n_head=2)
    if uniform:  # tied embeddings: zero output weights give equal logits for every token
        with torch.no_grad():
            model.lm_head.weight.zero_()
    save_model(model, folder, {"tokenizer": tokenizer.to_dict()})
    return folder


# ----------------------------------------------------------------------------- sets
def test_sets_from_files_folders_and_prepared_data(tmp_path: Path, dataset: Path) -> None:
    for i in range(3):
        save(satb(CLEAN).transpose(i), tmp_path / "gen" / f"{i}.mid")
    (tmp_path / "gen" / "bad.mid").write_bytes(b"not midi")
    folder = load_set(str(tmp_path / "gen"))
    assert folder.names == ["0.mid", "1.mid", "2.mid"] and folder.failures[0][0] == "bad.mid"
    assert "bad.mid" in folder.failures[0][1]
    assert (
        load_set([str(tmp_path / "gen" / "0.mid"), str(tmp_path / "gen" / "1.mid")])
        .names[1]
        .endswith("1.mid")
    )
    prepared = load_set(str(dataset), split="test")
    assert prepared.names == ["p4", "p5"]
    assert prepared.scores[0].n_notes == 32
    assert len(load_set(str(dataset))) == 6
    some = load_set(str(tmp_path / "gen"), limit=2)  # a seeded choice of two of the four files
    assert len(some) + len(some.failures) == 2
    assert some.names == load_set(str(tmp_path / "gen"), limit=2).names
    with pytest.raises(MusegenError, match="no such file"):
        load_set(str(tmp_path / "missing"))


def test_sets_from_a_source_reference() -> None:
    from musegen.data.sources import get_source

    try:
        get_source("jsb-satb").locate()
    except MusegenError:
        pytest.skip("the JSB data is not in the shared data folder")
    pieces = load_set("source:jsb-satb:test", limit=3)
    assert len(pieces) == 3 and all(n.startswith("test/") for n in pieces.names)
    with pytest.raises(MusegenError, match="no split"):
        load_set("source:jsb-satb:nope")


# ----------------------------------------------------------------------------- likelihood
def test_uniform_model_costs_log_vocab_per_token(tmp_path: Path, dataset: Path, tokenizer) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model(tokenizer, tmp_path / "uniform", uniform=True)
    res = evaluate_nll(str(model), dataset, split="test", context=16, batch_size=3)
    split = load_prepared(dataset).split("test")
    assert res.tokens == split.n_tokens - 1  # every token after the first, once
    assert res.notes == 64 and res.pieces == 2
    assert res.nll_per_token == pytest.approx(math.log(len(tokenizer)), rel=1e-5)
    assert res.nll_per_note == pytest.approx(res.total_nll / 64)
    assert res.bits_per_note == pytest.approx(res.nll_per_note / math.log(2))
    assert res.perplexity == pytest.approx(len(tokenizer), rel=1e-4)


def test_one_window_equals_a_full_forward_pass(tmp_path: Path, dataset: Path, tokenizer) -> None:  # type: ignore[no-untyped-def]
    from musegen.models import load_model

    folder = tiny_model(tokenizer, tmp_path / "m")
    tokens = torch.from_numpy(
        np.asarray(load_prepared(dataset).split("valid").tokens, dtype=np.int64)
    )
    model, _ = load_model(folder)
    with torch.no_grad():
        logits, _ = model(tokens[None, :-1])
        want = torch.nn.functional.cross_entropy(logits[0], tokens[1:], reduction="sum").item()
    one = evaluate_nll(str(folder), dataset, split="valid", context=len(tokens))
    assert one.total_nll == pytest.approx(want, rel=1e-4)
    tiled = [
        evaluate_nll(str(folder), dataset, split="valid", context=8, batch_size=b) for b in (1, 5)
    ]
    assert tiled[0].total_nll == pytest.approx(tiled[1].total_nll, rel=1e-5)  # batching is neutral
    assert tiled[0].tokens == one.tokens


def test_a_model_naming_fewer_options_reads_the_same_tokens(
    tmp_path: Path, dataset: Path, tokenizer
) -> None:  # type: ignore[no-untyped-def]
    """A model's config may leave out options at their defaults (written by an older version),
    a dataset's manifest spells them all out: the same tokens, so the NLL is measured."""
    from musegen.tokenizers import spelled_out

    folder = tiny_model(tokenizer, tmp_path / "m")
    meta = json.loads((folder / "config.json").read_text())
    full = meta["tokenizer"]
    shorter = [
        k
        for k in full["config"]
        if spelled_out({**full, "config": {q: v for q, v in full["config"].items() if q != k}})
        == spelled_out(full)
    ]
    assert shorter  # an option at its default
    meta["tokenizer"] = {
        **full,
        "config": {q: v for q, v in full["config"].items() if q != shorter[0]},
    }
    (folder / "config.json").write_text(json.dumps(meta))
    assert evaluate_nll(str(folder), dataset, split="valid", context=16).tokens > 0


def test_nll_cli_and_tokenizer_mismatch(
    tmp_path: Path,
    dataset: Path,
    tokenizer,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    folder = tiny_model(tokenizer, tmp_path / "m")
    args = ["evaluate", "nll", "--model", str(folder), "--data", str(dataset), "--split", "valid"]
    assert main([*args, "--context", "16", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "valid" and out["bits_per_note"] > 0 and out["context"] == 16
    assert main(args) == 0
    assert "bits" in capsys.readouterr().out
    other = get_tokenizer("remi", positions_per_quarter=8, velocity_bins=0, tempo_bins=0)
    wrong = tiny_model(other, tmp_path / "wrong")
    assert main(["evaluate", "nll", "--model", str(wrong), "--data", str(dataset)]) == 2
    assert "prepare the data with the model's tokenizer" in capsys.readouterr().err
