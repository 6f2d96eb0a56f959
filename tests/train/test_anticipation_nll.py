"""benchmarks/anticipation_nll.py scores a plain and an infill model on the same tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchhelpers import load_benchmark
from infillhelpers import melody
from musegen.data.dataset import prepare_dataset
from musegen.data.sources import Piece, Source
from musegen.models import build_model, save_model
from musegen.score import Score
from musegen.tokenizers import get_tokenizer


class Tunes(Source):
    name = "tunes"

    def pieces(self) -> list[Piece]:
        splits = ("train", "train", "valid", "valid", "test")
        return [Piece(f"t{i}", s, "code", f"{i:064x}") for i, s in enumerate(splits)]

    def load(self, piece: Piece) -> Score:
        return melody(int(piece.id[1:]), bars=3)


@pytest.mark.slow
def test_both_models_score_the_same_tokens(tmp_path: Path, one_torch_thread: None) -> None:
    bench = load_benchmark("anticipation_nll")
    plain = get_tokenizer("melody", steps_per_quarter=2)
    data = tmp_path / "data"
    prepare_dataset(Tunes(), plain, data, workers=1, progress=False)
    infill = get_tokenizer("melody-infill", **plain.config.to_dict())
    assert len(infill) == len(plain) + 2
    scores = {}
    for name, tok in (("ar", plain), ("infill", infill)):
        torch.manual_seed(0)
        model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=16, n_head=2)
        folder = tmp_path / name
        save_model(model, folder, {"tokenizer": tok.to_dict(), "train_config": {"seq_len": 32}})
        scores[name] = bench.score(str(folder), str(data), "valid")
    ar, inf = scores["ar"], scores["infill"]
    assert ar["tokens"] == inf["tokens"] > 0 and ar["context"] == 32
    assert ar["nll"] == pytest.approx(ar["nll_plain_ids"])  # its softmax is the plain ids
    assert inf["nll_plain_ids"] < inf["nll"]  # the two infill ids take some probability
