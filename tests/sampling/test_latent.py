"""Latent operations of a MusicVAE: slerp, attributes and their vectors, encode and decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latenthelpers import (
    chorale,
    tiny_chorale_dataset,
    tiny_chorale_vae,
    tiny_dataset,
    tiny_vae,
    tune,
)
from musegen.errors import MusegenError
from musegen.sampling.latent import (
    LatentVAE,
    attribute_table,
    attribute_values,
    attribute_vector,
    fit_prior,
    note_density,
    parse_additions,
    pitch_range,
    prior_record,
    slerp,
    syncopation,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

vectors = st.lists(st.floats(-5, 5), min_size=3, max_size=3).map(np.array)


@settings(max_examples=50, deadline=None)
@given(vectors, vectors, st.integers(2, 9))
def test_slerp_ends_and_norms(a: np.ndarray, b: np.ndarray, steps: int) -> None:
    path = slerp(a, b, steps)
    assert path.shape == (steps, 3)
    assert np.allclose(path[0], a, atol=1e-6) and np.allclose(path[-1], b, atol=1e-6)


def test_slerp_on_a_circle() -> None:
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    path = slerp(a, b, 5)
    assert np.allclose(np.linalg.norm(path, axis=1), 1.0)
    assert np.allclose(path[2], np.array([1, 1]) / np.sqrt(2))
    assert np.allclose(slerp(a, 2 * a, 3)[1], 1.5 * a)  # collinear: a straight line
    with pytest.raises(MusegenError, match="steps"):
        slerp(a, b, 1)


def test_attributes() -> None:
    # C quarter, rest, E held a half note with an off-beat G: 16 steps, one bar
    steps = np.array([62, 1, 1, 1, 0, 0, 0, 0, 66, 1, 1, 69, 1, 1, 1, 1])
    assert note_density(steps) == 3.0
    assert syncopation(steps) == pytest.approx(1 / 3)
    assert pitch_range(steps) == 7.0
    assert pitch_range(np.zeros(16)) == 0.0 and syncopation(np.zeros(16)) == 0.0


def test_attribute_vector_and_additions() -> None:
    latents = np.array([[0.0, 0], [0, 0], [1, 2], [1, 2]])
    values = np.array([1.0, 1, 5, 5])
    assert np.allclose(attribute_vector(latents, values), [1, 2])
    with pytest.raises(MusegenError, match="same value"):
        attribute_vector(latents, np.ones(4))
    assert parse_additions(["density=+1.5,range=-1", "syncopation=2"]) == {
        "density": 1.5,
        "range": -1.0,
        "syncopation": 2.0,
    }
    for bad in ("density", "density=x", "=1", "density=nan"):
        with pytest.raises(MusegenError, match="NAME=AMOUNT"):
            parse_additions([bad])


@pytest.mark.parametrize("decoder,bars", [("flat", 2), ("hierarchical", 4)])
def test_encode_decode(tmp_path: Path, decoder: str, bars: int) -> None:
    vae = LatentVAE.load(str(tiny_vae(tmp_path / "m", decoder=decoder, n_bars=bars)))
    z = vae.encode(tune(3, bars=5))  # 5 bars: the last segment padded with rests
    assert z.shape == (3 if bars == 2 else 2, 4)
    a = vae.decode(z, temperature=1.0, seed=4)
    b = vae.decode(z, temperature=1.0, seed=4)
    assert a.n_notes and a.tracks[0].notes.tolist() == b.tracks[0].notes.tolist()
    assert a.end <= len(z) * bars * 4 * a.tpq
    with pytest.raises(MusegenError, match="meter"):
        vae.encode(tune(3, meter=(3, 4)))


def test_attribute_table(tmp_path: Path) -> None:
    vae = LatentVAE.load(str(tiny_vae(tmp_path / "m")))
    data = str(tiny_dataset(tmp_path / "d"))
    record = attribute_table(vae, data, ["density", "range"])
    assert record["segments"] == 8 * 2  # eight 4/4 tunes of two 2-bar windows (3/4 skipped)
    assert set(record["vectors"]) == {"density", "range"} and len(record["vectors"]["range"]) == 4
    with pytest.raises(MusegenError, match="unknown attribute"):
        attribute_table(vae, data, ["loudness"])
    assert np.allclose(vae.add(np.zeros(4), {"range": 2.0}, {"range": np.ones(4)}), 2.0)
    with pytest.raises(MusegenError, match="no attribute vector"):
        vae.add(np.zeros(4), {"density": 1.0}, {"range": np.ones(4)})


def test_generators(tmp_path: Path) -> None:
    """generate with a VAE and with the prior (seeds reproduce); infill keeps the segments
    outside the bars asked for exactly."""
    from latenthelpers import tiny_prior
    from musegen.sampling.generators import GenerateRequest, load_generator

    vae_dir = tiny_vae(tmp_path / "vae")
    prior_dir = tiny_prior(tmp_path / "prior", vae_dir)
    for ref in (vae_dir, prior_dir):
        gen = load_generator(str(ref))
        a = gen.generate(GenerateRequest(num=2, seed=3, bars=5, temperature=1.0))
        b = gen.generate(GenerateRequest(num=2, seed=3, bars=5, temperature=1.0))
        assert len(a.pieces) == 2 and a.settings["sampling"]["seed"] == 3
        assert [p.tracks[0].notes.tolist() for p in a.pieces] == [
            p.tracks[0].notes.tolist() for p in b.pieces
        ]
        assert max(p.end for p in a.pieces) <= 5 * 4 * a.pieces[0].tpq
    gen = load_generator(str(prior_dir))
    with pytest.raises(MusegenError, match="at most 16 bars"):
        gen.generate(GenerateRequest(bars=17))
    with pytest.raises(MusegenError, match="do not apply"):
        gen.generate(GenerateRequest(top_k=5))
    score = tune(4, bars=8)
    before = gen.vae.steps(score).reshape(-1, 32)
    result = gen.infill(score, (3, 4), seed=1, temperature=1.0)
    after = gen.vae.steps(result.pieces[0]).reshape(-1, 32)
    assert result.settings["rewritten_bars"] == [3, 4]
    assert np.array_equal(np.delete(before, 1, axis=0), np.delete(after, 1, axis=0))
    with pytest.raises(MusegenError, match="has 8 bars"):
        gen.infill(score, (9, 9))


def test_prior_draws_long_pieces_a_window_at_a_time(tmp_path: Path) -> None:
    """With ``sampling.window``, a piece longer than the window (and than the prior's
    ``max_len``) is drawn window by window, each next window's first half fixed to the
    latents before it; seeds reproduce; shorter pieces are drawn whole as before."""
    import itertools
    import json

    import torch

    from latenthelpers import tiny_prior
    from musegen.sampling.generators import GenerateRequest, load_generator
    from musegen.sampling.latent import WINDOW_RESAMPLE

    prior_dir = tiny_prior(tmp_path / "prior", tiny_vae(tmp_path / "vae"))
    plain = load_generator(str(prior_dir))
    config = json.loads((prior_dir / "config.json").read_text())
    config["sampling"]["window"] = 4
    (prior_dir / "config.json").write_text(json.dumps(config))
    gen = load_generator(str(prior_dir))
    short = GenerateRequest(num=2, seed=3, bars=8)
    assert [p.tracks[0].notes.tolist() for p in gen.generate(short).pieces] == [
        p.tracks[0].notes.tolist() for p in plain.generate(short).pieces
    ]
    calls = []
    sample = gen.prior.sample

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        z = sample(*args, **kwargs)
        calls.append((kwargs.get("known"), kwargs.get("known_mask"), z, kwargs.get("resample")))
        return z

    gen.prior.sample = spy
    a = gen.generate(GenerateRequest(num=2, seed=3, bars=40))  # 20 latents > max_len 8
    assert [len(c[2][0]) for c in calls] == [4, 4, 4, 4, 4, 4, 4, 4, 4]
    for (_, _, before, _), (known, mask, _, resample) in itertools.pairwise(calls):
        assert mask[:, :2].all() and not mask[:, 2:].any()
        assert torch.equal(known[:, :2], before[:, -2:])
        assert resample == WINDOW_RESAMPLE == 1  # not infill's RESAMPLE: it slows long pieces
    assert a.settings["sampling"]["window"] == 4
    assert a.settings["sampling"]["window_resample"] == 1
    assert max(p.end for p in a.pieces) <= 40 * 4 * a.pieces[0].tpq
    b = gen.generate(GenerateRequest(num=2, seed=3, bars=40))
    assert [p.tracks[0].notes.tolist() for p in a.pieces] == [
        p.tracks[0].notes.tolist() for p in b.pieces
    ]
    gen.meta["sampling"]["window"] = 1  # no half to carry over
    with pytest.raises(MusegenError, match="window must be 0 or at least 2"):
        gen.generate(GenerateRequest(bars=40))


def test_prior_draws_at_least_the_shortest_sequence_it_learnt(tmp_path: Path) -> None:
    import json

    from latenthelpers import tiny_prior
    from musegen.sampling.generators import GenerateRequest, load_generator

    prior_dir = tiny_prior(tmp_path / "prior", tiny_vae(tmp_path / "vae"))
    config = json.loads((prior_dir / "config.json").read_text())
    config["data"] = {"min_latents": 3}
    (prior_dir / "config.json").write_text(json.dumps(config))
    gen = load_generator(str(prior_dir))
    lengths = []
    sample = gen.prior.sample
    gen.prior.sample = lambda num, n, **kw: lengths.append(n) or sample(num, n, **kw)  # type: ignore[method-assign]
    piece = gen.generate(GenerateRequest(num=1, seed=0, bars=2)).pieces[0]
    assert lengths == [3] and piece.end <= 2 * 4 * piece.tpq


def test_fit_prior_recovers_a_correlated_gaussian() -> None:
    rng = np.random.default_rng(0)
    mix = np.array([[2.0, 0.0, 0.0], [1.5, 0.1, 0.0], [0.0, 0.0, 0.5]])
    x = rng.standard_normal((20000, 3)) @ mix.T + np.array([1.0, -1.0, 0.0])
    mean, factor = fit_prior(x, shrink=0.0)
    assert np.allclose(mean, [1, -1, 0], atol=0.05)
    assert np.allclose(factor @ factor.T, mix @ mix.T, atol=0.1)
    flat = np.tile(rng.standard_normal((50, 1)), (1, 3))  # rank one: shrinking keeps it whole
    _, factor = fit_prior(flat)
    assert np.isfinite(factor).all() and (np.diag(factor) > 0).all()
    with pytest.raises(MusegenError, match="two segments"):
        fit_prior(np.zeros((1, 3)))


def test_a_fitted_prior_is_drawn_from_when_saved_beside_the_model(tmp_path: Path) -> None:
    """Without latent_prior.json new latents are N(0, I); with it they come from the fitted
    Gaussian (the same standard draws, so a seed gives one set); the generator says which."""
    import json

    from musegen.sampling.generators import GenerateRequest, load_generator

    folder = tiny_vae(tmp_path / "m")
    vae = LatentVAE.load(str(folder))
    plain = vae.draw((2, 3), np.random.default_rng(4))
    assert plain.shape == (2, 3, 4) and vae.prior_name == "N(0, I)"
    record = prior_record(vae, str(tiny_dataset(tmp_path / "d")), hop_bars=1)
    assert record["segments"] == 8 * 3  # eight 4/4 tunes of three 2-bar windows a bar apart
    record["mean"], record["cholesky"] = [5.0] * 4, (0.1 * np.eye(4)).tolist()
    vae.prior_path().write_text(json.dumps(record))
    fitted = vae.draw((2, 3), np.random.default_rng(4))
    assert np.allclose(fitted, 5.0 + 0.1 * plain) and vae.prior_name.startswith("fitted")
    generator = load_generator(str(folder))
    fitted = generator.generate(GenerateRequest(seed=1, bars=4))
    assert fitted.settings["sampling"]["prior"].startswith("fitted")
    generator.fitted_prior = False  # the VAE's own prior, as benchmarks/latent.py's peer
    plain = generator.generate(GenerateRequest(seed=1, bars=4))
    assert plain.settings["sampling"]["prior"] == "N(0, I)"
    assert fitted.pieces[0].tracks[0].notes.tolist() != plain.pieces[0].tracks[0].notes.tolist()
    vae.prior_path().write_text(json.dumps({"mean": [0.0] * 3, "cholesky": [[1.0] * 3] * 3}))
    with pytest.raises(MusegenError, match="3 dims, the model has 4"):
        vae.draw((1,), np.random.default_rng(0))


def test_form_ties() -> None:
    from musegen.sampling.latent import form_ties

    tie, copy = form_ties(tuple("AABA"), 8)  # sections of two latents
    assert tie.tolist() == [0, 1, 0, 1, 4, 5, 0, 1]
    assert copy.tolist() == [-1, -1, 0, -1, -1, -1, 0, -1]  # a section's last decoded afresh
    tie, copy = form_ties(tuple("ABAC"), 4)  # one latent a section: tied, decoded afresh
    assert tie.tolist() == [0, 1, 0, 3] and (copy == -1).all()
    tie, copy = form_ties(tuple("AABA"), 9)  # the last section is longer than its source
    assert tie.tolist() == [0, 1, 0, 1, 4, 5, 0, 1, 8] and copy.tolist()[6:] == [0, 1, -1]


def test_prior_plans_forms(tmp_path: Path) -> None:
    """``--form`` (or the model's ``sampling.form``) ties the latents of returning sections
    and copies their decoded notes but for each section's last latent; forms are drawn per
    piece with ``auto``; the default is left out where it does not fit, an asked form is not."""
    import json

    from latenthelpers import tiny_prior
    from musegen.sampling.generators import GenerateRequest, load_generator

    vae_dir = tiny_vae(tmp_path / "vae")
    prior_dir = tiny_prior(tmp_path / "prior", vae_dir)
    gen = load_generator(str(prior_dir))
    assert "structure" in gen.capabilities(gen.meta)
    result = gen.generate(GenerateRequest(num=2, seed=3, bars=16, form="AABA"))
    assert result.settings["sampling"]["form"] == ["AABA", "AABA"]
    for piece in result.pieces:
        steps = gen.vae.steps(piece).reshape(-1, 32)  # 2-bar latents
        assert np.array_equal(steps[2], steps[0]) and np.array_equal(steps[6], steps[0])
    with pytest.raises(MusegenError, match="plans a form over 8 bars at least"):
        gen.generate(GenerateRequest(bars=6, form="AABA"))
    config = json.loads((prior_dir / "config.json").read_text())
    config["sampling"]["form"] = "auto"
    (prior_dir / "config.json").write_text(json.dumps(config))
    gen = load_generator(str(prior_dir))
    drawn = gen.generate(GenerateRequest(num=8, seed=3, bars=16)).settings["sampling"]["form"]
    assert len(drawn) == 8 and all(len(f) == 4 for f in drawn) and len(set(drawn)) > 1
    assert "form" not in gen.generate(GenerateRequest(bars=6)).settings["sampling"]
    assert "form" not in gen.generate(GenerateRequest(bars=16, form="none")).settings["sampling"]
    with pytest.raises(MusegenError, match="--form do not apply"):
        load_generator(str(vae_dir)).generate(GenerateRequest(bars=16, form="AABA"))


def test_prior_redraws_endings_until_the_tonic(tmp_path: Path) -> None:
    """``--ending tonic``: a piece not ending on its tonic gets its last latent drawn again
    (all before it kept) until it does or the tries run out; seeds reproduce; ``cadence`` is
    refused (melodies), and so is an ending for a VAE alone."""
    from latenthelpers import tiny_prior
    from musegen.metrics.quality import ends_on_tonic
    from musegen.sampling.generators import GenerateRequest, load_generator

    vae_dir = tiny_vae(tmp_path / "vae")
    gen = load_generator(str(tiny_prior(tmp_path / "prior", vae_dir)))
    free = gen.generate(GenerateRequest(num=12, seed=2, bars=8, temperature=1.0))
    closed = gen.generate(GenerateRequest(num=12, seed=2, bars=8, temperature=1.0, ending="tonic"))
    again = gen.generate(GenerateRequest(num=12, seed=2, bars=8, temperature=1.0, ending="tonic"))
    assert free.settings["sampling"]["ending"] == "free"
    assert closed.settings["sampling"]["ending"] == "tonic"
    assert closed.settings["request"]["ending"] == "tonic"  # the record says what was done
    tonic = [ends_on_tonic(p) for p in closed.pieces]
    assert sum(tonic) > sum(ends_on_tonic(p) for p in free.pieces)
    for a, b, c in zip(free.pieces, closed.pieces, again.pieces, strict=True):
        assert b.tracks[0].notes.tolist() == c.tracks[0].notes.tolist()
        before, after = gen.vae.steps(a).reshape(-1, 32), gen.vae.steps(b).reshape(-1, 32)
        assert np.array_equal(before[:-1], after[:-1])  # only the last latent's bars change
    with pytest.raises(MusegenError, match="--ending tonic or free"):
        gen.generate(GenerateRequest(bars=8, ending="cadence"))
    with pytest.raises(MusegenError, match="--ending do not apply"):
        load_generator(str(vae_dir)).generate(GenerateRequest(bars=8, ending="tonic"))


def test_forms_span_windows(tmp_path: Path) -> None:
    """A piece drawn a window at a time keeps its form: a section returning after its
    statement's window is fixed to it, its notes copied but for its last latent."""
    import json

    import torch

    from latenthelpers import tiny_prior
    from musegen.sampling.generators import GenerateRequest, load_generator

    prior_dir = tiny_prior(tmp_path / "prior", tiny_vae(tmp_path / "vae"))
    config = json.loads((prior_dir / "config.json").read_text())
    config["sampling"]["window"] = 4
    (prior_dir / "config.json").write_text(json.dumps(config))
    gen = load_generator(str(prior_dir))
    latents = []
    sample = gen.prior.sample
    gen.prior.sample = lambda *a, **kw: latents.append(sample(*a, **kw)) or latents[-1]  # type: ignore[method-assign]
    result = gen.generate(GenerateRequest(num=2, seed=3, bars=32, form="ABCA"))  # 16 latents
    assert result.settings["sampling"]["form"] == ["ABCA", "ABCA"]
    z = torch.cat([latents[0]] + [w[:, 2:] for w in latents[1:]], dim=1)
    assert z.shape[1] == 16 and torch.equal(z[:, 12:16], z[:, 0:4])
    for piece in result.pieces:
        steps = gen.vae.steps(piece).reshape(-1, 32)
        assert all(np.array_equal(steps[12 + j], steps[j]) for j in range(3))


def test_prior_decodes_at_its_own_temperature(tmp_path: Path) -> None:
    """The prior's ``sampling.temperature`` decodes its tunes (``generate`` and ``infill``);
    without one, its VAE's."""
    import json

    from latenthelpers import tiny_prior
    from musegen.sampling.generators import GenerateRequest, load_generator

    prior_dir = tiny_prior(tmp_path / "prior", tiny_vae(tmp_path / "vae"))
    gen = load_generator(str(prior_dir))
    assert gen.infill_temperature() == gen.vae.default_temperature == 0.5
    config = json.loads((prior_dir / "config.json").read_text())
    config["sampling"]["temperature"] = 0.25
    (prior_dir / "config.json").write_text(json.dumps(config))
    gen = load_generator(str(prior_dir))
    assert gen.infill_temperature() == 0.25
    assert gen.generate(GenerateRequest(bars=4)).settings["sampling"]["temperature"] == 0.25
    asked = GenerateRequest(bars=4, temperature=1.0)
    assert gen.generate(asked).settings["sampling"]["temperature"] == 1.0


def test_attributes_of_interleaved_voices() -> None:
    """Two voices over one bar: notes a bar per voice, onsets off the beat in any voice, the
    span of both."""
    upper = np.array([10] + [1] * 3 + [12] + [1] * 11)  # beats 1 and 2
    lower = np.array([0, 0, 4] + [1] * 13)  # the second 16th: off the beat
    row = np.stack([upper, lower], axis=1).reshape(-1)
    assert note_density(row, 16, voices=2) == 1.5
    assert syncopation(row, 16, voices=2) == pytest.approx(1 / 3)
    assert pitch_range(row, 16, voices=2) == 8.0
    assert attribute_values(row[None], "density", 16, 2).tolist() == [1.5]


def test_a_chorale_vae_encodes_and_decodes_four_voices(tmp_path: Path) -> None:
    vae = LatentVAE.load(str(tiny_chorale_vae(tmp_path / "m")))
    z = vae.encode(chorale(3, bars=5))  # 5 bars: three 2-bar segments
    assert z.shape == (3, 4)
    score = vae.decode(z, temperature=1.0, seed=2)
    assert [t.name for t in score.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert score.n_notes and score.end <= 3 * 2 * 4 * score.tpq
    from musegen.sampling.generators import GenerateRequest, load_generator

    made = load_generator(str(vae.folder)).generate(GenerateRequest(num=2, seed=1, bars=3))
    for piece in made.pieces:  # three bars of four voices, cut from two segments
        assert len(piece.tracks) == 4 and 0 < piece.end <= 3 * 4 * piece.tpq
    record = attribute_table(vae, str(tiny_chorale_dataset(tmp_path / "d")), ["density"])
    assert record["segments"] == 6 * 2
    with pytest.raises(MusegenError, match="writes 1 voice"):  # a melody dataset
        attribute_table(vae, str(tiny_dataset(tmp_path / "t")), ["density"])
