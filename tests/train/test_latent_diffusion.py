"""The latent diffusion prior trains with the one trainer (``musegen train --config``) on a
VAE's latents of a prepared melody dataset; a paced prior learns each window's pace rank,
saves its table, and generates and infills at a pace drawn, asked for or read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from latenthelpers import TINY_PRIOR, tiny_dataset, tiny_vae, tune
from musegen.cli.main import main
from musegen.errors import MusegenError
from musegen.io import save
from musegen.sampling.capabilities import model_capabilities
from musegen.train.latent_diffusion import pace_ranks, pace_table, table_rank

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@given(
    st.lists(
        st.tuples(st.integers(1, 6), st.floats(0, 20, allow_nan=False)), min_size=1, max_size=60
    ),
    st.integers(1, 10),
)
def test_ranks_lie_in_0_1_and_follow_density_within_a_length(
    windows: list[tuple[int, float]], least: int
) -> None:
    lengths = np.array([n for n, _ in windows])
    density = np.array([d for _, d in windows])
    ranks = pace_ranks(density, lengths, least)
    assert ((ranks > 0) & (ranks < 1)).all()
    for n in set(lengths.tolist()):
        mine = lengths == n
        order = np.argsort(density[mine], kind="stable")
        assert (np.diff(ranks[mine][order]) >= 0).all()


def test_ranks_compare_like_lengths_and_the_table_reads_them_back() -> None:
    # short windows are busy, long ones slow (as in the corpus): each ranked among its own
    lengths = np.array([2] * 40 + [8] * 40)
    density = np.concatenate([np.linspace(6, 10, 40), np.linspace(1, 3, 40)])
    ranks = pace_ranks(density, lengths, least=32)
    assert ranks[0] < 0.05 and ranks[39] > 0.95 and ranks[40] < 0.05 and ranks[79] > 0.95
    table = pace_table(density, lengths, least=32)
    assert set(table) == {"2", "8"} and table["8"][0] == 1 and table["8"][-1] == 3
    assert table_rank(table, 8, 2.0) == pytest.approx(0.5, abs=0.03)
    assert table_rank(table, 7, 2.0) == table_rank(table, 8, 2.0)  # the nearest length
    assert table_rank(table, 2, 0.0) == 0 and table_rank(table, 2, 99) == 1
    few = pace_ranks(density[:3], lengths[:3], least=32)  # fewer windows than asked: all
    assert np.allclose(few, [1 / 6, 3 / 6, 5 / 6])


@pytest.mark.slow
def test_train_a_paced_prior_then_generate_and_infill(tmp_path: Path) -> None:
    data = tiny_dataset(tmp_path / "data")
    vae = tiny_vae(tmp_path / "vae")
    run = {
        "model": "latent-diffusion",
        "model_config": {**TINY_PRIOR, "pace": True},
        "train": {"batch_size": 4, "max_steps": 3, "warmup_steps": 1, "eval_every": 3,
                  "eval_batches": 0, "checkpoint_every": 3, "device": "cpu",
                  "progress": False, "threads": 1, "precision": "fp32"},
        "data": {"vae": str(vae), "min_latents": 2},
    }  # fmt: skip
    (tmp_path / "prior.json").write_text(json.dumps(run))
    out = tmp_path / "prior"
    args = ["train", "--config", str(tmp_path / "prior.json"), "--data", str(data)]
    assert main([*args, "--out", str(out)]) == 0
    meta = json.loads((out / "best" / "config.json").read_text())
    assert meta["config"]["pace"] and meta["pace_table"]["2"][0] <= meta["pace_table"]["2"][-1]
    assert model_capabilities(meta) == ("generate", "infill", "density", "structure")
    prior = str(out / "best")

    def generate(name: str, *more: str) -> dict:  # type: ignore[type-arg]
        gen = ["generate", "--model", prior, "--bars", "4", "--num", "3", "--seed", "5"]
        assert main([*gen, *more, "--out", str(tmp_path), "--name", name]) == 0
        return json.loads((tmp_path / f"{name}.json").read_text())["sampling"]

    drawn, again = generate("a"), generate("b")
    assert drawn["pace"] == again["pace"] and len(drawn["pace"]) == 3
    assert drawn["density"] == "drawn"
    high = generate("high", "--density", "high")
    assert high["density"] == "high" and all(2 / 3 <= u <= 1 for u in high["pace"])
    assert all(0 <= u <= 1 / 3 for u in generate("low", "--density", "low")["pace"])
    with pytest.raises(MusegenError, match="one pace for the whole piece"):
        from musegen.sampling.generators import GenerateRequest, load_generator

        load_generator(prior).generate(GenerateRequest(bars=4, density=("low", "high")))
    save(tune(4), tmp_path / "t.mid")
    infill = ["infill", str(tmp_path / "t.mid"), "--model", prior, "--bars", "1-2"]
    assert main([*infill, "--out", str(tmp_path), "--name", "i"]) == 0
    pace = json.loads((tmp_path / "i.json").read_text())["sampling"]["pace"]
    assert 0 <= pace <= 1
