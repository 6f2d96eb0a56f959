"""The adversarial models: shapes, modes, seeds, saving and loading (tiny configs)."""

from __future__ import annotations

import numpy as np
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


def test_crnngan_monophonic_scores_are_one_line() -> None:
    # onset gaps 0, 1, 0, 2 quarters; lengths 2, 1.5, 1, 3: notes 2 and 3 share a tick
    f = np.array([[0, 2, 0], [1, 1.5, 1 / 12], [0, 1, 2 / 12], [2, 3, 3 / 12]], np.float32)
    poly = features_to_score(f).tracks[0].notes
    assert len(poly) == 4 and poly["duration"].tolist() == [960, 720, 480, 1440]
    line = features_to_score(f, monophonic=True).tracks[0]
    assert line.name == "Melody" and features_to_score(f).tracks[0].name == "Piano"
    one = line.notes
    # the first note ends at the second onset, of the two struck together the last stays
    assert one["start"].tolist() == [0, 480, 1440] and one["pitch"].tolist() == [64, 66, 67]
    assert one["duration"].tolist() == [480, 480, 1440]
    ends = one["start"][:-1] + one["duration"][:-1]
    assert bool((ends <= one["start"][1:]).all())


def test_minibatch_discrimination_tells_a_collapsed_batch() -> None:
    from musegen.models.gan.common import MinibatchDiscrimination

    torch.manual_seed(0)
    mbd = MinibatchDiscrimination(6, kernels=4, width=3)
    varied = torch.randn(8, 6) * 3
    same = varied[:1].expand(8, -1)
    assert mbd(varied).shape == (8, 4)
    assert torch.allclose(mbd(same), torch.full((8, 4), 7.0))  # 7 others at distance 0
    assert bool((mbd(varied) < mbd(same)).all())


@pytest.mark.parametrize(
    "options",
    [{"full_pitch": True}, {"critic_onsets": True}, {"projection": True}, {"minibatch": 4},
     {"critic_onsets": True, "projection": True, "minibatch": 4}],
)  # fmt: skip
def test_midinet_critic_options(options: dict, tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(3)
    m = build_model("midinet", **TINY["midinet"], **options).eval()
    c = cond_for(m, 5)
    x = m.fake(m.latent(5), c)
    assert m.critic(x, c).shape == (5,)
    assert m.critic_features(x, c).shape == (5, 4 * TINY["midinet"]["d_critic"])
    save_model(m, tmp_path / "m", {})
    loaded, _ = load_model(tmp_path / "m")
    assert torch.allclose(loaded.critic(x, c), m.critic(x, c))


def test_midinet_defaults_keep_the_first_critic() -> None:
    """A model saved before the critic's options existed loads into the same modules."""
    names = set(build_model("midinet", **TINY["midinet"]).discriminator.state_dict())
    assert names == {f"roll.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")} | {
        f"out.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")
    }


def test_crnngan_minibatch_critic_and_features() -> None:
    torch.manual_seed(4)
    m = build_model("crnngan", **TINY["crnngan"], minibatch=3).eval()
    x = m.fake(m.latent(4), {})
    assert m.critic(x, {}).shape == (4,)
    assert m.critic_features(x, {}).shape == (4, 2 * TINY["crnngan"]["d_critic"])
    with pytest.raises(MusegenError, match="minibatch"):
        build_model("crnngan", minibatch=-1)
    chords = build_model("crnngan", **TINY["crnngan"], zero_gaps=True).eval()
    with torch.no_grad():
        chords.generator.out.bias[:2] = -5.0  # timing pre-activations well below 0
    notes = chords.fake(chords.latent(3), {})
    assert bool((notes[..., :2] == 0).any()) and bool((notes[..., :2] >= 0).all())


def test_chord_classes_every_root_and_quality() -> None:
    from musegen.models.gan.midinet import chord_classes

    classes = chord_classes()
    assert classes.shape == (12 * 9, 24) and len({c.tobytes() for c in classes}) == 12 * 9
    assert (classes[0] == chord_vector(0, {0, 4, 7})).all()  # C major first
    assert (classes[9 + 1] == chord_vector(1, {1, 4, 8})).all()  # C# minor


def test_midinet_chord_head_names_the_chord_from_the_bar_alone() -> None:
    """The auxiliary loss reads the bar, never the chord given to the critic; bars without a
    chord are left out; a head that names the chord well scores a low loss."""
    torch.manual_seed(5)
    m = build_model("midinet", **TINY["midinet"], chord_head=True).eval()
    c = cond_for(m, 4)
    x = m.fake(m.latent(4), c)
    loss = m.auxiliary_loss(x, c).detach()
    assert loss.shape == () and float(loss) > 0
    assert m.discriminator.chord_logits(x).shape == (4, 12 * 9)
    none = {**c, "chord": torch.zeros(4, 24)}
    assert float(m.auxiliary_loss(x, none)) == 0.0
    with torch.no_grad():  # a head that always says C major (the first class)
        last = m.discriminator.head[-1]
        last.weight.zero_()
        last.bias.fill_(-10.0)
        last.bias[0] = 10.0
    assert float(m.auxiliary_loss(x, c).detach()) < 1e-3
    g_major = {**c, "chord": torch.from_numpy(chord_vector(7, {7, 11, 2})).expand(4, -1)}
    assert float(m.auxiliary_loss(x, g_major).detach()) > 5
    with pytest.raises(ValueError, match="chord head"):
        build_model("midinet", **TINY["midinet"]).discriminator.chord_logits(x)


def test_midinet_auxiliary_margin_spares_bars_named_well_enough() -> None:
    """Per bar ``max(0, CE - margin)``, averaged: margin 0 is the plain loss, a margin over
    every bar's cross-entropy gives 0."""
    import torch.nn.functional as F

    from musegen.models.gan.midinet import chord_classes

    torch.manual_seed(7)
    m = build_model("midinet", **TINY["midinet"], chord_head=True).eval()
    c = cond_for(m, 4)
    x = m.fake(m.latent(4), c)
    with torch.no_grad():
        plain = float(m.auxiliary_loss(x, c))
        assert float(m.auxiliary_loss(x, c, margin=0.0)) == pytest.approx(plain)
        target = (c["chord"][:, None] == torch.from_numpy(chord_classes())[None]).all(-1)
        ce = F.cross_entropy(
            m.discriminator.chord_logits(x), target.float().argmax(-1), reduction="none"
        )
        margin = float(ce.median())
        assert float(m.auxiliary_loss(x, c, margin=margin)) == pytest.approx(
            float((ce - margin).clamp_min(0).mean()), rel=1e-5
        )
        assert float(m.auxiliary_loss(x, c, margin=float(ce.max()) + 1)) == 0.0


def test_crnngan_discrete_pitch_on_semitones_with_a_gradient() -> None:
    """With ``pitches`` every generated pitch is a whole semitone in range, the one-hot rides
    after the three features, draw keeps the three, and the critic's pitch-class flags of the
    one-hot and of the rounded pitch agree."""
    from musegen.models.gan.crnngan import N_FEATURES, pitch_class_flags

    torch.manual_seed(6)
    m = build_model("crnngan", **TINY["crnngan"], pitches=24, low_pitch=48, zero_gaps=True)
    x = m.fake(m.latent(3), {})
    assert x.shape == (3, 6, N_FEATURES + 24)
    semis = x[..., 2].detach() * 12 + 64
    assert torch.allclose(semis, semis.round(), atol=1e-4)
    assert bool((semis >= 48).all() and (semis < 72).all())
    notes = m.draw(x)
    assert notes.shape == (3, 6, N_FEATURES)
    assert torch.equal(pitch_class_flags(x, 48), pitch_class_flags(notes, 48))
    m.critic(x, {}).sum().backward()
    assert float(m.generator.out.weight.grad[2:].abs().sum()) > 0  # the pitch logits learn
    assert m.sample_until(2, 4.0, generator=torch.Generator().manual_seed(0)).shape[-1] == 3
    with pytest.raises(MusegenError, match="low_pitch"):
        build_model("crnngan", pitches=40, low_pitch=100)


def test_crnngan_onset_flag_and_sampled_draws_come_from_the_latent() -> None:
    """``onset_flag`` writes gaps of exactly 0 where the flag is up; ``sampled`` takes its
    draws' noise from the latent (one normal per draw per note), so a latent fixes the notes
    and another latent with the same LSTM noise can give other pitches."""
    torch.manual_seed(7)
    kw = {**TINY["crnngan"], "pitches": 24, "low_pitch": 48, "onset_flag": True, "sampled": True}
    m = build_model("crnngan", **kw).eval()
    assert m.latent_size == 6 * (4 + 1 + 24)
    with torch.no_grad():
        m.generator.out.bias[2] = 8.0  # the flag's logit: almost always up
        z = m.latent(5, generator=torch.Generator().manual_seed(1))
        x = m.fake(z, {})
        assert torch.equal(x, m.fake(z, {}))
        assert float((x[..., 0] == 0).float().mean()) > 0.9
        z2 = z.view(5, 6, -1).clone()
        z2[..., 5:] = torch.randn(5, 6, 24, generator=torch.Generator().manual_seed(2))
        assert not torch.equal(x[..., 2], m.fake(z2.view(5, -1), {})[..., 2])
        m.generator.out.bias[2] = -8.0
        assert bool((m.fake(z, {})[..., 0] > 0).all())


def test_midinet_critic_presence_reads_the_pitch_classes_used() -> None:
    """``critic_presence``: per pitch class the largest probability over steps (octaves
    summed), 0/1 for drawn bars, so a short passing tone counts as fully as a held one; the
    critic's features grow by 12 and its score still has a gradient."""
    torch.manual_seed(8)
    m = build_model("midinet", **TINY["midinet"], critic_presence=True)
    c = m.config
    x = torch.zeros(2, 1, c.steps, c.n_pitches)
    x[0, 0, :-1, 0] = 1.0  # C held for all but one step
    x[0, 0, -1, 12 + 2] = 1.0  # one step of D an octave up
    x[1, 0, :, 7] = 0.25  # G at a quarter everywhere
    got = m.discriminator.presence(x)
    assert got.shape == (2, 12)
    assert got[0].tolist() == [1.0, 0, 1.0] + [0.0] * 9
    assert got[1, 7] == 0.25 and float(got[1].sum()) == 0.25
    plain = build_model("midinet", **TINY["midinet"])
    cond = cond_for(m, 2)
    assert m.discriminator.features(x, cond["chord"]).shape == (2, 4 * c.d_critic)
    assert m.discriminator.out[0].in_features == plain.discriminator.out[0].in_features + 12
    y = m.fake(m.latent(2), cond)
    m.critic(y, cond).sum().backward()
    assert all(p.grad is not None for p in m.generator.parameters() if p.requires_grad)


def test_musegan_critic_tonal_reads_the_metric_per_bar_and_pair() -> None:
    """``critic_tonal``: per bar and pair of tracks the distance between their tonal centroids,
    the number :func:`~musegen.metrics.musegan.tonal_distance` averages (0 where a track is
    silent); the critic's input grows by pairs x bars and its score keeps a gradient."""

    from musegen.metrics.musegan import tonal_centroids

    torch.manual_seed(9)
    m = build_model("musegan", **TINY["musegan"], critic_tonal=True)
    x = torch.zeros(1, 4, 16, 24)
    x[0, 0, 0:3, 0], x[0, 0, 3:6, 4], x[0, 0, 6:8, 7] = 1.0, 1.0, 1.0  # C E G, bar 1
    x[0, 1, :8, 12] = 1.0  # C an octave up, bar 1
    x[0, 3, :, 7] = 1.0  # G in both bars; track 2 silent
    chroma = x.view(1, 4, 2, 8, 2, 12).mean((3, 4))
    got = m.discriminator.tonal_distances(chroma).view(6, 2)  # pairs (0,1) (0,2) (0,3) (1,2)...
    want = np.linalg.norm(tonal_centroids([[3, 0, 0, 0, 3, 0, 0, 2, 0, 0, 0, 0]])
                          - tonal_centroids([[1] + [0] * 11]))  # fmt: skip
    assert float(got[0, 0]) == pytest.approx(want, abs=1e-5)
    assert float(got[0, 1]) == 0.0 and float(got[1].abs().sum()) == 0.0  # silent bar / track
    assert float(got[5, 1]) == 0.0  # track 2 silent: pair (2, 3) left out
    assert float(got[2, 1]) == 0.0  # track 0 silent in bar 2
    assert float(got[4, 0]) == pytest.approx(
        float(
            np.linalg.norm(  # (1, 3): C against G
                tonal_centroids([[1] + [0] * 11]) - tonal_centroids([[0] * 7 + [1] + [0] * 4])
            )
        ),
        abs=1e-5,
    )
    plain = build_model("musegan", **TINY["musegan"])
    assert m.discriminator.out[0].in_features == plain.discriminator.out[0].in_features + 12
    y = m.fake(m.latent(2), {})
    m.critic(y, {}).sum().backward()
    assert all(p.grad is not None for p in m.generator.parameters() if p.requires_grad)
    assert all(torch.isfinite(p.grad).all() for p in m.generator.parameters() if p.grad is not None)


@pytest.mark.parametrize("tonal", [False, True])
def test_musegan_critic_features_are_what_the_score_reads(tonal: bool, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Feature matching reads the critic's last hidden layer; the score is its last linear
    layer over those features; saved and loaded, with the same module names as before
    (the shipped weights load)."""
    torch.manual_seed(6)
    m = build_model("musegan", **TINY["musegan"], critic_tonal=tonal).eval()
    x = m.fake(m.latent(3), {})
    h = m.critic_features(x, {})
    assert h.shape == (3, 4 * TINY["musegan"]["d_critic"])
    assert torch.allclose(m.critic(x, {}), m.discriminator.out[-1](h).squeeze(-1))
    save_model(m, tmp_path / "m", {})
    loaded, _ = load_model(tmp_path / "m")
    assert torch.allclose(loaded.critic(x, {}), m.critic(x, {}))
    names = set(m.discriminator.state_dict())
    assert "phi" not in names and "pairs" not in names and "out.2.weight" in names


def test_crnngan_critic_texture_reads_chords_and_overlaps() -> None:
    """``critic_texture``: per sequence the share of notes struck with the note before (gap
    0) and struck while it sounds (gap < its length), soft but near 0/1 away from the edge;
    the critic's score reads them and their gradient reaches the generator."""
    from musegen.models.gan.crnngan import texture

    notes = torch.tensor(
        [[[0.0, 1.0, 0.0], [0.0, 1.0, 0.3], [1.5, 0.5, 0.1], [1.0, 2.0, 0.0], [0.5, 1.0, 0.0]],
         [[0.0, 0.5, 0.0], [1.0, 0.5, 0.1], [1.0, 0.5, 0.2], [1.0, 0.5, 0.3], [1.0, 0.5, 0.4]]]
    )  # fmt: skip
    got = texture(notes)
    # first: gaps after the first note 0, 1.5, 1, 0.5 -> one chord in 4; starts while the
    # note before sounds: 0 < 1, 1.5 < 1 no, 1 < 0.5 no, 0.5 < 2 -> 2 in 4
    assert got[0, 0] == pytest.approx(0.25, abs=1e-3) and got[0, 1] == pytest.approx(0.5, abs=1e-3)
    assert got[1].tolist() == pytest.approx([0.0, 0.0], abs=1e-3)  # a line of separate notes
    torch.manual_seed(10)
    m = build_model("crnngan", **TINY["crnngan"], minibatch=3, critic_texture=True)
    plain = build_model("crnngan", **TINY["crnngan"], minibatch=3)
    assert m.discriminator.mbd.proj.in_features == plain.discriminator.mbd.proj.in_features + 2
    x = m.fake(m.latent(4), {})
    m.critic(x, {}).sum().backward()
    assert all(p.grad is not None for p in m.generator.parameters() if p.requires_grad)
