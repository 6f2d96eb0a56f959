"""The CPU dropout of the transformer: nn.Dropout's meaning with a cheaper mask."""

from __future__ import annotations

import pytest
import torch

from musegen.models.base import Dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_mask_drops_p_and_keeps_the_mean(p: float) -> None:
    torch.manual_seed(0)
    mask = keep_mask(torch.ones(400, 1000), p)
    dropped = (mask == 0).float().mean().item()
    assert abs(dropped - p) < 0.005  # 400,000 draws: the standard error is < 0.001
    assert torch.allclose(mask[mask != 0], torch.tensor(1 / (1 - p)), rtol=1e-4)
    assert abs(mask.mean().item() - 1.0) < 0.01


def test_dropout_trains_evaluates_and_reproduces() -> None:
    d = Dropout(0.2)
    x = torch.randn(4, 7, 9, requires_grad=True)
    d.eval()
    assert d(x) is x
    d.train()
    torch.manual_seed(3)
    y = d(x)
    torch.manual_seed(3)
    assert torch.equal(d(x), y)  # the global generator's seed fixes the mask
    y.sum().backward()
    assert x.grad is not None
    kept = y != 0
    assert torch.allclose(x.grad[kept], torch.tensor(1 / 0.8), rtol=1e-4)
    assert torch.all(x.grad[~kept] == 0)
    assert Dropout(0.0).train()(x) is x
    with pytest.raises(ValueError):
        Dropout(1.0)


def test_mask_under_bf16_keeps_the_dtype() -> None:
    x = torch.randn(3, 5, dtype=torch.bfloat16)
    assert Dropout(0.1).train()(x).dtype == torch.bfloat16
