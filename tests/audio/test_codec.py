"""Codec + prior: shapes and bitrates, the Griffin-Lim inverse, residual VQ (EMA means,
dead-code restart), the code layout round trip, the prior's cache against its full forward,
tiny training runs end to end and generation from the run folder (library and CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from musegen.audio import rvq  # noqa: E402
from musegen.audio.codec import (  # noqa: E402
    CodecConfig,
    TrainCodecConfig,
    build_codec,
    griffin_lim,
    load_codec,
    reconstruct,
    stft,
    train_codec,
)
from musegen.audio.metrics import mr_stft_distance  # noqa: E402
from musegen.audio.prior import (  # noqa: E402
    PriorConfig,
    TrainPriorConfig,
    build_prior,
    encode_clips,
    flatten,
    generate_audio,
    resolve_prior,
    sample,
    train_prior,
    unflatten,
)
from musegen.cli.main import main  # noqa: E402
from musegen.errors import InputError, MusegenError  # noqa: E402

TINY = CodecConfig(
    n_fft=256, hop=64, hidden=16, latent=8, codebooks=3, codebook_size=16, griffin_lim=4
)
TINY_PRIOR = PriorConfig(codebooks=2, codebook_size=16, context=16, dim=16, layers=2, heads=2)


def tones(n: int = 4, seconds: float = 1.0) -> list[tuple[np.ndarray, int]]:
    t = np.arange(int(seconds * 16_000)) / 16_000
    return [
        ((0.5 * np.sin(2 * np.pi * (110 * (k + 1)) * t)).astype(np.float32), 0 if k % 2 else 19)
        for k in range(n)
    ]


def test_shapes_and_bitrate() -> None:
    model = build_codec(TINY)
    x = torch.randn(2, 3200)  # 25 code frames of 128 samples
    codes = model.encode(x, 2)
    assert codes.shape == (2, 2, 25) and int(codes.max()) < 16
    assert model.decode(codes).shape == (2, 3200)
    frames = torch.randn(2, TINY.bins, 50)
    y, commit, codes, z = model(frames)
    assert y.shape == frames.shape and codes.shape == (2, 3, 25) and z.shape == (2, 8, 25)
    assert float(commit.detach()) >= 0
    assert CodecConfig().bitrate(1) == 250.0 and CodecConfig().bitrate() == 2000.0


def test_griffin_lim_recovers_a_chord() -> None:
    """The fixed inverse: audio from the true magnitudes alone is close to the original."""
    cfg = CodecConfig()
    t = np.arange(16_000) / 16_000
    audio = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) * np.exp(-2 * t)
    x = torch.as_tensor(audio, dtype=torch.float32)[None]
    back = griffin_lim(stft(x, cfg).abs(), cfg, 16_000)[0].numpy()
    noise = np.random.default_rng(0).standard_normal(16_000)
    assert mr_stft_distance(back, audio) < 0.5 < mr_stft_distance(noise, audio)


def test_ema_codes_are_means_of_their_latents() -> None:
    """Decay 0: after one update each code picked at the first level is the mean of the
    latents it was picked for; a restarted code starts its averages afresh."""
    torch.manual_seed(0)
    books = torch.randn(3, 16, 8)
    z = torch.randn(2, 8, 12)
    flat = z.transpose(1, 2).reshape(-1, 8)
    idx = rvq.nearest(flat, books[0])
    ema = rvq.EmaCodebooks(books, decay=0.0)
    ema.update(books, z, levels=1)
    for code in idx.unique().tolist():
        assert torch.allclose(books[0, code], flat[idx == code].mean(0), atol=1e-4)
    used = torch.ones(3, 16)
    used[1, 3] = 0
    moved = rvq.restart_codes(z, books, used, np.random.default_rng(0))
    assert moved.sum() == 1 and moved[1, 3]
    ema.restarted(books, moved)
    assert float(ema.size[1, 3]) == 1.0 and torch.equal(ema.sum[1, 3], books[1, 3])


def test_quantize_codes_add_up() -> None:
    """The quantized latents are the sum of the chosen codes (lookup), and more codebooks
    leave a smaller residual."""
    torch.manual_seed(1)
    z = torch.randn(2, 8, 10)
    books = torch.randn(3, 16, 8) * 0.5
    errors = []
    for n_q in (1, 2, 3):
        zq, codes, commit = rvq.quantize(z, books, n_q)
        assert torch.allclose(zq, rvq.lookup(codes, books), atol=1e-5)
        errors.append(float(commit))
    assert errors[0] >= errors[1] >= errors[2]


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 20), st.integers(0, 2**31 - 1))
def test_flatten_round_trip(frames: int, seed: int) -> None:
    codes = np.random.default_rng(seed).integers(0, 16, (2, frames))
    ids = flatten(codes, TINY_PRIOR)
    assert ids.max() < 32 and len(ids) == 2 * frames
    np.testing.assert_array_equal(unflatten(ids, TINY_PRIOR), codes)


def test_prior_cache_equals_full_forward() -> None:
    torch.manual_seed(0)
    model = build_prior(TINY_PRIOR).eval()
    ids = torch.randint(0, TINY_PRIOR.vocab, (1, 12))
    with torch.no_grad():
        full = model(ids)[0]
        cache: list = [[] for _ in range(TINY_PRIOR.layers)]
        first = model(ids[:, :5], cache)[0]
        steps = [model(ids[:, i : i + 1], cache)[0, -1] for i in range(5, 12)]
    torch.testing.assert_close(torch.cat([first, torch.stack(steps)]), full, atol=1e-5, rtol=0)


def test_sample_past_the_context() -> None:
    """Sampling longer than the context slides the window; codes stay in their codebook's
    range and a seed gives the same codes again."""
    model = build_prior(TINY_PRIOR).eval()
    codes = sample(model, 30, "organ", seed=4)
    assert codes.shape == (2, 30) and codes.min() >= 0 and codes.max() < 16
    np.testing.assert_array_equal(codes, sample(model, 30, "organ", seed=4))
    with pytest.raises(MusegenError):
        sample(model, 2, "violin")


@pytest.mark.slow
def test_tiny_codec_and_prior_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clips = tones()
    run = TrainCodecConfig(codec=TINY, steps=4, batch=2, crop=8, valid_every=2)
    train_codec(run, tmp_path / "codec", clips, clips[:2], log=lambda _: None)
    assert len((tmp_path / "codec" / "log.jsonl").read_text().splitlines()) == 2
    codec = load_codec(tmp_path / "codec")
    rec = reconstruct(codec, clips[0][0][:5000], 2)
    assert rec.shape == (5000,) and np.isfinite(rec).all()
    seqs = encode_clips(codec, clips, TINY_PRIOR)
    assert {t for _, t in seqs} == {"piano", "organ"}
    prior_run = TrainPriorConfig(prior=TINY_PRIOR, steps=2, batch=2, valid_every=1)
    train_prior(prior_run, seqs, tmp_path / "prior", seqs[:1], {"codec": "../codec"}, print)
    assert resolve_prior(tmp_path) == (tmp_path / "prior", tmp_path / "prior" / "../codec")
    audio, rate = generate_audio(tmp_path, 0.1, "organ", seed=3)
    assert rate == 16_000 and len(audio) == 1600 and np.isfinite(audio).all()
    again, _ = generate_audio(tmp_path / "prior", 0.1, "organ", seed=3)
    np.testing.assert_array_equal(audio, again)
    with pytest.raises(MusegenError):
        generate_audio(tmp_path, 0.1, "violin")
    out = tmp_path / "x.wav"
    args = ["audio", "generate", "--model", "codec", "--weights", str(tmp_path), "--out", str(out)]
    assert main([*args, "--seconds", "0.2", "--tag", "piano"]) == 0
    settings_ = json.loads(out.with_suffix(".json").read_text())
    assert settings_["tag"] == "piano" and settings_["seed"] == 0 and out.stat().st_size > 6000
    assert main([*args, "--temperature", "0"]) == 2
    assert "temperature" in capsys.readouterr().err


def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        generate_audio(tmp_path / "absent", 1.0)
    with pytest.raises(InputError):
        generate_audio(tmp_path, 1.0)
    with pytest.raises(InputError):
        load_codec(tmp_path)


def _ctrl_c_at_step(monkeypatch: pytest.MonkeyPatch, at: int) -> None:
    """The user presses Ctrl-C during training step ``at`` (clipping runs once a step)."""
    import os
    import signal

    clip = torch.nn.utils.clip_grad_norm_
    calls = {"n": 0}

    def clip_then_ctrl_c(*a, **k):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == at:
            os.kill(os.getpid(), signal.SIGINT)
        return clip(*a, **k)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip_then_ctrl_c)


def _same_weights(a: Path, b: Path) -> None:
    from safetensors.torch import load_file

    x, y = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def _log_rows(folder: Path) -> list[dict]:  # type: ignore[type-arg]
    rows = [json.loads(x) for x in (folder / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.mark.slow
def test_codec_and_prior_stopped_by_ctrl_c_resume_to_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C mid-run saves the step and stops with the one-line message; ``resume`` ends
    with the weights (code restarts and EMA codebooks included), best model and log of an
    uninterrupted run, for the codec and for the prior."""
    from musegen.errors import Interrupted

    clips, quiet = tones(), (lambda _: None)
    run = TrainCodecConfig(codec=TINY, steps=6, batch=2, crop=8, valid_every=2, restart_every=2)
    train_codec(run, tmp_path / "a", clips, clips[:2], log=quiet)
    with monkeypatch.context() as m:
        _ctrl_c_at_step(m, 3)
        with pytest.raises(Interrupted, match="after step 3"):
            train_codec(run, tmp_path / "b", clips, clips[:2], log=quiet)
    with pytest.raises(MusegenError, match="already holds a codec run"):
        train_codec(run, tmp_path / "b", clips, clips[:2], log=quiet)
    train_codec(run, tmp_path / "b", clips, clips[:2], log=quiet, resume=True)
    _same_weights(tmp_path / "a", tmp_path / "b")
    _same_weights(tmp_path / "a" / "checkpoint", tmp_path / "b" / "checkpoint")
    assert _log_rows(tmp_path / "a") == _log_rows(tmp_path / "b")

    seqs = encode_clips(load_codec(tmp_path / "a"), clips, TINY_PRIOR)
    prior_run = TrainPriorConfig(prior=TINY_PRIOR, steps=5, batch=2, valid_every=2)
    train_prior(prior_run, seqs, tmp_path / "pa", seqs[:1], log=quiet)
    with monkeypatch.context() as m:
        _ctrl_c_at_step(m, 2)
        with pytest.raises(Interrupted, match="after step 2"):
            train_prior(prior_run, seqs, tmp_path / "pb", seqs[:1], log=quiet)
    longer = TrainPriorConfig(prior=TINY_PRIOR, steps=6, batch=2, valid_every=2)
    with pytest.raises(MusegenError, match=r"other settings than the run's \(steps\)"):
        train_prior(longer, seqs, tmp_path / "pb", seqs[:1], log=quiet, resume=True)
    train_prior(prior_run, seqs, tmp_path / "pb", seqs[:1], log=quiet, resume=True)
    _same_weights(tmp_path / "pa", tmp_path / "pb")
    assert _log_rows(tmp_path / "pa") == _log_rows(tmp_path / "pb")


def test_resume_skips_a_finished_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``audio train-codec --resume``: a stage whose checkpoint is at its last step is not
    trained again; one stopped halfway resumes; one not begun begins."""
    from musegen.audio import codec as codec_module
    from musegen.audio import prior as prior_module

    calls: list[tuple[str, bool]] = []
    steps = {"codec": 4, "prior": 3}

    def fake_codec(run, out, log=print, resume=False):  # type: ignore[no-untyped-def]
        calls.append(("codec", resume))
        return {}

    def fake_prior(run, seqs, out, valid=None, extra=None, log=print, resume=False):  # type: ignore[no-untyped-def]
        calls.append(("prior", resume))
        return {}

    monkeypatch.setattr(codec_module, "train_codec", fake_codec)
    monkeypatch.setattr(codec_module, "load_codec", lambda *_: None)
    monkeypatch.setattr(codec_module, "render_corpus", lambda *a, **k: [])
    monkeypatch.setattr(prior_module, "train_prior", fake_prior)
    monkeypatch.setattr(prior_module, "encode_clips", lambda *a, **k: [])
    done = {"codec": None, "prior": None}
    import musegen.checkpoint as ck

    monkeypatch.setattr(ck, "saved_step", lambda f: done[f.parent.name])
    monkeypatch.setattr(ck, "has_training_state", lambda f: done[f.parent.name] is not None)
    run = {
        "codec": {"codec": {"codebooks": 2, "codebook_size": 16}, "steps": steps["codec"]},
        "prior": {"model": {"codebooks": 2, "codebook_size": 16}, "steps": steps["prior"]},
    }
    prior_module.train_codec_and_prior(run, tmp_path, log=lambda _: None, resume=True)
    assert calls == [("codec", False), ("prior", False)]  # nothing saved: both begin
    calls.clear()
    done.update(codec=2)
    prior_module.train_codec_and_prior(run, tmp_path, log=lambda _: None, resume=True)
    assert calls == [("codec", True), ("prior", False)]
    calls.clear()
    done.update(codec=4, prior=1)
    prior_module.train_codec_and_prior(run, tmp_path, log=lambda _: None, resume=True)
    assert calls == [("prior", True)]
    calls.clear()
    done.update(prior=3)
    prior_module.train_codec_and_prior(run, tmp_path, log=lambda _: None, resume=True)
    assert calls == []


def test_saved_step_reads_the_checkpoint(tmp_path: Path) -> None:
    from musegen.checkpoint import save_training_state, saved_step

    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    assert saved_step(tmp_path / "ckpt") is None
    save_training_state(
        tmp_path / "ckpt", model, opt, None, np.random.default_rng(0), {"step": 7}, {}
    )
    assert saved_step(tmp_path / "ckpt") == 7
