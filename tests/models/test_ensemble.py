"""The ensemble: its distribution is the members' product (or mixture), its cache and its
one-step path agree with the full pass, it saves and loads, and bad configs are errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from musegen.errors import MusegenError
from musegen.models import build_model, load_model, save_model
from musegen.models.ensemble import Ensemble, ensemble_of

VOCAB = 23
TRANSFORMER = {"vocab_size": VOCAB, "n_layer": 2, "n_head": 2, "d_model": 16}
LSTM = {"vocab_size": VOCAB, "n_layer": 1, "d_embed": 8, "d_hidden": 16}


def members(seed: int = 0) -> list[torch.nn.Module]:
    torch.manual_seed(seed)
    return [build_model("transformer", **TRANSFORMER).eval(), build_model("lstm", **LSTM).eval()]


def ids(batch: int = 3, length: int = 12) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(4))


@torch.no_grad()
@pytest.mark.parametrize("combine", ["product", "mixture"])
def test_distribution_is_the_members_combined(combine: str) -> None:
    a, b = members()
    model = ensemble_of([a, b], weights=[3, 1], combine=combine)
    x = ids()
    got, cache = model(x)
    assert cache is None and got.shape == (3, 12, VOCAB)
    pa, pb = (torch.softmax(m(x)[0], -1) for m in (a, b))
    if combine == "product":
        want = pa**0.75 * pb**0.25
        want = want / want.sum(-1, keepdim=True)
    else:
        want = 0.75 * pa + 0.25 * pb
    assert torch.allclose(got.exp(), want, atol=1e-5)
    assert torch.allclose(got.exp().sum(-1), torch.ones(3, 12), atol=1e-5)


@torch.no_grad()
def test_cache_and_one_step_path_match_the_full_pass() -> None:
    model, x = ensemble_of(members()), ids()
    full, _ = model(x)
    cache = model.init_cache(3, 12)
    logits, cache = model(x[:, :5], cache)
    assert (logits - full[:, :5]).abs().max() <= 1e-4
    for t in range(5, 12):
        if t == 8:  # drop the middle sequence, as the generator drops finished ones
            cache = model.select_cache(cache, torch.tensor([0, 2]))
            x, full = x[[0, 2]], full[[0, 2]]
        step, cache = model.next_logits(x[:, t].numpy(), cache)
        assert step.dtype == np.float32 and step.shape == (len(x), VOCAB)
        assert np.abs(step - full[:, t].numpy()).max() <= 1e-4


@torch.no_grad()
def test_save_and_load_round_trip(tmp_path: Path) -> None:
    model, x = ensemble_of(members(), weights=[1, 2]), ids()
    save_model(model, tmp_path / "ens", extra={"tokenizer": {"tokenizer": "remi"}})
    loaded, meta = load_model(tmp_path / "ens")
    assert isinstance(loaded, Ensemble) and meta["model"] == "ensemble"
    assert meta["config"]["members"][0]["model"] == "transformer"
    assert torch.equal(loaded(x)[0], model(x)[0])


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"members": [{"model": "lstm", "config": LSTM}]}, "at least two"),
        ({"members": [{"model": "lstm"}, {"model": "lstm", "config": LSTM}]}, "member 0"),
        (
            {
                "members": [
                    {"model": "lstm", "config": LSTM},
                    {"model": "lstm", "config": {**LSTM, "vocab_size": VOCAB + 1}},
                ]
            },
            "vocabulary",
        ),
        (
            {"members": [{"model": "lstm", "config": LSTM}] * 2, "weights": [1, 0]},
            "positive",
        ),
        ({"members": [{"model": "lstm", "config": LSTM}] * 2, "combine": "vote"}, "combine"),
    ],
)
def test_bad_configs_are_errors(options: dict, match: str) -> None:
    with pytest.raises(MusegenError, match=match):
        build_model("ensemble", **options)
