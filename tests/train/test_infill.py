"""Training items of the infill objective."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from infillhelpers import chorale
from musegen.data.dataset import TokenSplit
from musegen.data.training import IGNORE_INDEX
from musegen.errors import MusegenError
from musegen.tokenizers import get_tokenizer
from musegen.train.infill import InfillDataset, InfillObjective, infill_datasets


def split_of(n: int = 6) -> TokenSplit:
    tok = get_tokenizer("chorale")
    pieces = [tok.encode(chorale(k, bars=4 + k % 3, pickup=k % 2 == 0)) for k in range(n)]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces])])
    return TokenSplit("train", np.concatenate(pieces), offsets, [])


def test_items_are_infill_sequences_with_targets_in_the_answer_only() -> None:
    tok = get_tokenizer("chorale")
    objective = InfillObjective(context_bars=1, max_region_bars=2, plain=0.0)
    data = InfillDataset(split_of(), tok, 400, objective, seed=3, transpose=2, samples=40)
    twin = data.tok
    assert twin.name == "chorale-infill"
    for i in range(len(data)):
        x, y = data.arrays(i)
        assert x.shape == y.shape == (400,)
        fill = np.flatnonzero(x == twin.fill_id)
        assert len(fill) == 1 and (x == twin.mask_id).any()
        targets = np.flatnonzero(y != IGNORE_INDEX)
        assert targets.min() >= fill[0]  # nothing before FILL is a target
        assert not np.isin(y[targets], [twin.mask_id, twin.fill_id]).any()
        again = data.arrays(i)
        assert np.array_equal(again[0], x) and np.array_equal(again[1], y)


def test_objective_options_are_checked() -> None:
    with pytest.raises(MusegenError, match="unknown objective option"):
        InfillObjective.from_dict({"name": "infill", "bars": 3})
    with pytest.raises(MusegenError, match="plain < 1"):
        InfillObjective.from_dict({"plain": 1.5})
    with pytest.raises(MusegenError, match="needs a bar-grid tokenizer"):
        InfillDataset(split_of(1), get_tokenizer("remi"), 64, InfillObjective())


def test_plain_items_are_fresh_windows_as_the_autoregressive_trainer_draws() -> None:
    """Plain items come from one window per item index, as train.run's windows do, not from
    the n_tokens // seq_len windows of a default WindowDataset drawn again and again."""
    split = split_of()
    data = SimpleNamespace(
        tokenizer=get_tokenizer("chorale"), split=lambda _name: split, split_names=["train"]
    )
    _, train, _, _ = infill_datasets(data, 64, seed=0, options={"plain": 0.99}, transpose=0)
    pool = split.n_tokens // 64
    seen = {train.arrays(i)[0].tobytes() for i in range(8 * pool)}
    assert len(seen) > 4 * pool
