"""The adversarial models: shapes, modes, seeds, saving and loading (tiny configs)."""

from __future__ import annotations

import pytest
import torch

from musegen.errors import MusegenError
from musegen.models import build_model, load_model, save_model
from musegen.models.gan.common import draw_cells
from musegen.models.gan.crnngan import features_to_score, note_features
from musegen.models.gan.midinet import chord_vector

TINY = {
    "musegan": {"n_bars": 2, "steps": 8, "n_pitches": 24, "low_pitch": 48, "d_z": 8,
                "d_hidden": 16, "d_critic": 8},
    "midinet": {"steps": 8, "n_pitches": 24, "d_z": 8, "d_hidden": 16, "d_critic": 8},
    "crnngan": {"length": 6, "d_noise": 4, "d_hidden": 8, "n_layer": 1, "d_critic": 4},
}  # fmt: skip


def cond_for(model, n: int) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    if model.model_name != "midinet":
        return {}
    c = model.config
    chord = torch.from_numpy(chord_vector(0, {0, 4, 7})).expand(n, -1)
    return {"chord": chord, "prev": torch.zeros(n, 1, c.steps, c.n_pitches)}


@pytest.mark.parametrize("mode", ["jamming", "composer", "hybrid"])
def test_musegan_modes_shapes_and_cells(mode: str) -> None:
    torch.manual_seed(0)
    m = build_model("musegan", **TINY["musegan"], mode=mode).eval()
    x = m.fake(m.latent(3), {})
    assert x.shape == (3, 4, 16, 24)
    assert bool((x >= 0).all()) and bool((x.sum(-1) <= 1 + 1e-5).all())  # relaxed one-hot
    assert m.critic(x, {}).shape == (3,)
    cells = m.draw(x)
    assert set(cells.unique().tolist()) <= {0.0, 1.0} and bool((cells.sum(-1) <= 1).all())


def test_musegan_latent_parts_by_mode() -> None:
    sizes = {
        mode: build_model("musegan", **TINY["musegan"], mode=mode).latent_size
        for mode in ("jamming", "composer", "hybrid")
    }
    assert sizes == {"composer": 16, "jamming": 64, "hybrid": 80}  # d_z 8: 2 shared, 2 per track


def test_bad_options_are_one_line_errors() -> None:
    with pytest.raises(MusegenError, match="mode"):
        build_model("musegan", mode="band")
    with pytest.raises(MusegenError, match="multiple of 4"):
        build_model("midinet", steps=6)


@pytest.mark.parametrize("name", ["musegan", "midinet", "crnngan"])
def test_same_seed_same_output_and_save_load(name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(1)
    m = build_model(name, **TINY[name]).eval()
    z = m.latent(2, generator=torch.Generator().manual_seed(5))
    z2 = m.latent(2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(z, z2)
    x = m.fake(z, cond_for(m, 2))
    save_model(m, tmp_path / name, {"note": 1})
    loaded, meta = load_model(tmp_path / name)
    assert meta["model"] == name and meta["note"] == 1
    assert torch.allclose(loaded.fake(z, cond_for(loaded, 2)), x)
    assert torch.allclose(loaded.critic(x, cond_for(loaded, 2)), m.critic(x, cond_for(m, 2)))


def test_midinet_conditions_change_the_bar() -> None:
    torch.manual_seed(2)
    m = build_model("midinet", **TINY["midinet"]).eval()
    z = m.latent(1)
    c = cond_for(m, 1)
    other = {**c, "chord": torch.from_numpy(chord_vector(7, {7, 11, 2}))[None]}
    assert not torch.allclose(m.fake(z, c), m.fake(z, other))
    prev = {**c, "prev": torch.ones_like(c["prev"])}
    assert not torch.allclose(m.fake(z, c), m.fake(z, prev))


def test_draw_cells_polyphonic_threshold_and_sampling() -> None:
    p = torch.tensor([[0.2, 0.7, 0.9]])
    assert draw_cells(p, monophonic=False).tolist() == [[0.0, 1.0, 1.0]]
    assert draw_cells(p * 0.5, monophonic=True).tolist() == [[0.0, 0.0, 1.0]]
    assert draw_cells(torch.tensor([[0.1, 0.1, 0.1]]), monophonic=True).tolist() == [[0, 0, 0]]
    g = torch.Generator().manual_seed(0)
    s = draw_cells(p.expand(1000, 3), monophonic=False, sample=True, generator=g)
    assert abs(float(s[:, 1].mean()) - 0.7) < 0.06


def test_crnngan_features_round_trip_and_sampling() -> None:
    from musegen.score import Score, Track, make_notes

    score = Score(
        480, [Track(make_notes([0, 480, 480, 1440], [480, 960, 240, 480], [60, 64, 67, 72]))]
    )
    f = note_features(score)
    assert f[:, 0].tolist() == [0.0, 1.0, 0.0, 2.0] and f[0, 2] == pytest.approx(-4 / 12)
    back = features_to_score(f)
    assert back.tracks[0].notes.tolist() == score.tracks[0].notes.tolist()
    m = build_model("crnngan", **TINY["crnngan"]).eval()
    seqs = m.sample_until(2, 8.0, generator=torch.Generator().manual_seed(0))
    assert seqs.shape[0] == 2 and bool((seqs[..., :2] >= 0).all())
    assert bool((seqs[..., 0].sum(1) >= 8.0).all()) or seqs.shape[1] == 4096
