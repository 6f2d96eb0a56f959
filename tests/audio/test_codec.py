"""Codec + prior: shapes and bitrates, code layout round trip, tiny training runs end to end
(codec on synthetic tones, prior on its codes), generation from the run folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from musegen.audio.codec import (  # noqa: E402
    CodecConfig,
    EmaCodebooks,
    TrainCodecConfig,
    build_codec,
    load_codec,
    reconstruct,
    train_codec,
)
from musegen.audio.prior import (  # noqa: E402
    PriorConfig,
    TrainPriorConfig,
    flatten,
    generate_audio,
    train_prior,
    unflatten,
)
from musegen.errors import InputError, MusegenError  # noqa: E402

TINY = CodecConfig(channels=[4, 4, 8, 8], latent=8, codebooks=3, codebook_size=16)
TINY_PRIOR = PriorConfig(codebooks=2, codebook_size=16, context=32, dim=16, layers=1, heads=2)


def tones(n: int = 4, seconds: float = 1.0) -> list[tuple[np.ndarray, int]]:
    t = np.arange(int(seconds * 16_000)) / 16_000
    return [
        ((0.5 * np.sin(2 * np.pi * (110 * (k + 1)) * t)).astype(np.float32), 0 if k % 2 else 19)
        for k in range(n)
    ]


def test_shapes_and_bitrate() -> None:
    model = build_codec(TINY)
    x = torch.randn(2, 3200)
    codes = model.encode(x, 2)
    assert codes.shape == (2, 2, 10) and int(codes.max()) < 16
    assert model.decode(codes).shape == (2, 3200)
    y, vq, codes, z = model(x)
    assert (
        y.shape == x.shape
        and float(vq.detach()) >= 0
        and codes.shape == (2, 3, 10)
        and z.shape == (2, 8, 10)
    )
    assert CodecConfig().bitrate(1) == 400.0 and CodecConfig().bitrate() == 1600.0


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 20), st.integers(0, 2**31 - 1))
def test_flatten_round_trip(frames: int, seed: int) -> None:
    codes = np.random.default_rng(seed).integers(0, 16, (2, frames))
    ids = flatten(codes, TINY_PRIOR)
    assert ids.max() < 32 and len(ids) == 2 * frames
    np.testing.assert_array_equal(unflatten(ids, TINY_PRIOR), codes)


@pytest.mark.slow
def test_tiny_codec_and_prior_run(tmp_path: Path) -> None:
    clips = tones()
    run = TrainCodecConfig(codec=TINY, steps=3, batch=2, crop=3200)
    train_codec(run, tmp_path / "codec", clips)
    codec = load_codec(tmp_path / "codec")
    rec = reconstruct(codec, clips[0][0][:5000], 2)
    assert rec.shape == (5000,) and np.isfinite(rec).all()
    seqs = []
    for audio, program in clips:
        codes = codec.encode(torch.as_tensor(audio)[None], 2)[0].numpy()
        seqs.append((flatten(codes, TINY_PRIOR), "piano" if program == 0 else "organ"))
    train_prior(TrainPriorConfig(prior=TINY_PRIOR, steps=2, batch=2), seqs, tmp_path / "prior")
    (tmp_path / "run.json").write_text(json.dumps({}))
    audio, rate = generate_audio(tmp_path, 0.1, "organ", seed=3)
    assert rate == 16_000 and len(audio) == 1600 and np.isfinite(audio).all()
    again, _ = generate_audio(tmp_path, 0.1, "organ", seed=3)
    np.testing.assert_array_equal(audio, again)
    with pytest.raises(MusegenError):
        generate_audio(tmp_path, 0.1, "violin")


def test_ema_codes_are_means_of_their_latents() -> None:
    """Decay 0: after one update each code picked at the first level is the mean of the
    latents it was picked for; codes nobody picked and the other levels' books stay put
    where no latent reached them."""
    torch.manual_seed(0)
    model = build_codec(TINY)
    z = torch.randn(2, TINY.latent, 12)
    flat = z.transpose(1, 2).reshape(-1, TINY.latent)
    idx = torch.cdist(flat, model.codebooks[0]).argmin(-1)
    ema = EmaCodebooks(model.codebooks, decay=0.0)
    ema.update(model, z, levels=1)
    for code in idx.unique().tolist():
        mean = flat[idx == code].mean(0)
        assert torch.allclose(model.codebooks[0, code], mean, atol=1e-4)
    before = model.codebooks.detach().clone()
    model.codebooks.data[1, 3] += 1.0  # as a dead-code restart would
    ema.restarted(model, before)
    assert float(ema.size[1, 3]) == 1.0 and torch.equal(ema.sum[1, 3], model.codebooks[1, 3])


def test_tiny_ema_run(tmp_path: Path) -> None:
    run = TrainCodecConfig(codec=TINY, steps=3, batch=2, crop=3200, ema=0.9)
    train_codec(run, tmp_path / "codec", tones())
    rec = reconstruct(load_codec(tmp_path / "codec"), tones()[0][0][:4000], 3)
    assert rec.shape == (4000,) and np.isfinite(rec).all()


def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        generate_audio(tmp_path, 1.0)
    with pytest.raises(InputError):
        load_codec(tmp_path)
