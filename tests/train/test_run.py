"""Starting a run from saved weights (``--init``), including into a grown vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from musegen.errors import MusegenError
from musegen.models import build_model, save_model
from musegen.tokenizers import get_tokenizer
from musegen.train.run import load_init

SMALL = {"n_layer": 1, "n_head": 2, "d_model": 16, "d_ff": 32}


def saved(tmp_path: Path, tokenizer_name: str, **options: object) -> tuple[Path, torch.nn.Module]:
    tok = get_tokenizer(tokenizer_name, **options)
    model = build_model("transformer", vocab_size=len(tok), **SMALL)
    save_model(model, tmp_path / "saved", {"tokenizer": tok.to_dict()})
    return tmp_path / "saved", model


def test_grown_vocabulary_keeps_every_old_token_row(tmp_path: Path) -> None:
    """The chorale tokenizer with ``phrases`` adds FERMATA before REST: every other token's
    embedding (and tied output row) moves to its new id, FERMATA keeps its fresh init."""
    path, old = saved(tmp_path, "chorale")
    tok = get_tokenizer("chorale", phrases=True)
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=len(tok), **SMALL)
    fresh = model.tok_emb.weight[tok.vocab.offset("fermata")].detach().clone()
    load_init(model, str(path), tok)
    f = tok.vocab.offset("fermata")
    assert torch.equal(model.tok_emb.weight[:f], old.tok_emb.weight[:f])
    assert torch.equal(model.tok_emb.weight[f + 1 :], old.tok_emb.weight[f:])
    assert torch.equal(model.tok_emb.weight[f], fresh)
    for key, value in old.state_dict().items():  # the rest as saved
        if value.shape[:1] != (len(tok) - 1,):
            assert torch.equal(model.state_dict()[key], value)


def test_other_vocabularies_are_refused(tmp_path: Path) -> None:
    path, _ = saved(tmp_path, "melody")  # not a subset of the chorale vocabulary
    tok = get_tokenizer("chorale", phrases=True)
    model = build_model("transformer", vocab_size=len(tok), **SMALL)
    with pytest.raises(MusegenError, match="differs from the run file"):
        load_init(model, str(path), tok)
