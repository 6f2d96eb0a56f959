"""The latent diffusion prior: shapes, the objective over masked sequences, DDIM sampling
that reproduces by seed, and infilling that keeps the given latents exactly."""

from __future__ import annotations

import pytest
import torch

from latenthelpers import TINY_PRIOR
from musegen.errors import MusegenError
from musegen.models import build_model
from musegen.models.latent_diffusion import alpha_sigma, diffusion_objective

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def prior():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = build_model("latent-diffusion", **TINY_PRIOR).eval()
    with torch.no_grad():
        model.out.weight.normal_(0, 0.1)
    return model


def test_schedule() -> None:
    a, s = alpha_sigma(torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(a**2 + s**2, torch.ones(3))
    assert a[0] == 1 and abs(float(a[2])) < 1e-6


def test_objective_ignores_padding() -> None:
    model = prior()
    z = torch.randn(3, 8, 4)
    mask = torch.zeros(3, 8, dtype=torch.bool)
    mask[:, :5] = True
    loss, n = diffusion_objective(model, (z, mask))
    other = z.clone()
    other[:, 5:] = 100.0  # what padding holds does not matter
    loss2, _ = diffusion_objective(model, (other, mask))
    assert n == 15 and torch.isfinite(loss) and torch.allclose(loss, loss2)


def test_sample_reproduces_and_keeps_known() -> None:
    model = prior()
    draw = lambda **kw: model.sample(  # noqa: E731
        2, 6, steps=3, generator=torch.Generator().manual_seed(7), **kw
    )
    a, b = draw(), draw()
    assert a.shape == (2, 6, 4) and torch.equal(a, b)
    known = torch.randn(2, 6, 4)
    mask = torch.tensor([[True, True, False, False, True, True]] * 2)
    z = draw(known=known, known_mask=mask, resample=2)
    assert torch.equal(z[mask], known[mask]) and not torch.equal(z[~mask], known[~mask])


def test_bad_config() -> None:
    with pytest.raises(MusegenError, match="multiple"):
        build_model("latent-diffusion", d_model=30, n_head=4)


def test_a_paced_prior_is_told_its_pace() -> None:
    """With ``pace`` the network reads each sequence's rank: the objective takes it from the
    batch, sampling draws it when not given (seeded) and follows it when given."""
    torch.manual_seed(0)
    model = build_model("latent-diffusion", **TINY_PRIOR, pace=True).eval()
    with torch.no_grad():
        model.out.weight.normal_(0, 0.1)
        for p in model.pace_mlp.parameters():
            p.normal_(0, 0.5)
    z, mask = torch.randn(3, 8, 4), torch.ones(3, 8, dtype=torch.bool)
    with pytest.raises(MusegenError, match="told a pace"):
        diffusion_objective(model, (z, mask))
    loss, n = diffusion_objective(model, (z, mask, torch.tensor([0.1, 0.5, 0.9])))
    assert n == 24 and torch.isfinite(loss)
    draw = lambda **kw: model.sample(  # noqa: E731
        2, 6, steps=3, generator=torch.Generator().manual_seed(7), **kw
    )
    assert torch.equal(draw(), draw())
    slow, busy = draw(pace=torch.zeros(2)), draw(pace=torch.ones(2))
    assert torch.equal(slow, draw(pace=torch.zeros(2))) and not torch.equal(slow, busy)


def test_tied_latents_come_out_equal() -> None:
    model = prior()
    tie = torch.tensor([[0, 1, 0, 1, 4, 5], [0, 1, 2, 3, 4, 5]])
    z = model.sample(2, 6, steps=3, generator=torch.Generator().manual_seed(7), tie=tie)
    assert torch.equal(z[0, 2:4], z[0, :2]) and not torch.equal(z[0, 4], z[0, 0])
    free = model.sample(2, 6, steps=3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(z[1], free[1])  # an identity tie changes nothing
