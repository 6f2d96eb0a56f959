"""Bridges: a tiny random MusicGen and a tiny Dance Diffusion pipeline, built here and saved to
a folder, run end to end; a missing weights folder is one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from musegen.audio.bridges import check_weights, diffusers_generate, musicgen_generate
from musegen.cli.main import main
from musegen.errors import InputError


def tiny_musicgen(folder: Path) -> Path:
    """A random MusicGen (2 codebooks of 32 codes, 16 kHz) with a word-level tokenizer."""
    import torch
    from transformers import (
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        PreTrainedTokenizerFast,
        T5Config,
    )

    from tokenizers import Tokenizer, models, pre_tokenizers

    torch.manual_seed(0)
    text = T5Config(vocab_size=16, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2)
    audio = EncodecConfig(
        sampling_rate=16_000,
        target_bandwidths=[5.0],
        num_filters=4,
        codebook_size=32,
        codebook_dim=8,
        hidden_size=8,
        upsampling_ratios=[8, 4],
        num_residual_layers=1,
        num_lstm_layers=1,
    )
    decoder = MusicgenDecoderConfig(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        ffn_dim=32,
        num_codebooks=audio.num_quantizers,
        max_position_embeddings=512,
        pad_token_id=32,
        decoder_start_token_id=32,
        bos_token_id=32,
    )
    config = MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=decoder)
    config.decoder_start_token_id = config.pad_token_id = 32
    MusicgenForConditionalGeneration(config).save_pretrained(folder)
    vocab = {w: i for i, w in enumerate(["<pad>", "</s>", "<unk>", "calm", "organ", "chorale"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(folder)
    return folder


def tiny_dance_diffusion(folder: Path) -> Path:
    import torch
    from diffusers import DanceDiffusionPipeline, IPNDMScheduler, UNet1DModel

    torch.manual_seed(0)
    unet = UNet1DModel(
        block_out_channels=(32, 32, 64),
        extra_in_channels=64,
        sample_size=512,
        sample_rate=16_000,
        in_channels=2,
        out_channels=2,
        flip_sin_to_cos=True,
        use_timestep_embedding=False,
        time_embedding_type="fourier",
        mid_block_type="UNetMidBlock1D",
        down_block_types=("DownBlock1DNoSkip", "DownBlock1D", "AttnDownBlock1D"),
        up_block_types=("AttnUpBlock1D", "UpBlock1D", "UpBlock1DNoSkip"),
    )
    DanceDiffusionPipeline(unet=unet, scheduler=IPNDMScheduler()).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_tiny_musicgen_text_to_audio(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    folder = tiny_musicgen(tmp_path / "mg")
    audio, rate = musicgen_generate(folder, "calm organ chorale", seconds=0.05, seed=1)
    assert rate == 16_000 and audio.ndim == 1 and len(audio) > 0
    assert np.isfinite(audio).all()
    again, _ = musicgen_generate(folder, "calm organ chorale", seconds=0.05, seed=1)
    np.testing.assert_array_equal(audio, again)  # seeded


@pytest.mark.slow
def test_tiny_dance_diffusion_pipeline(tmp_path: Path) -> None:
    pytest.importorskip("diffusers")
    folder = tiny_dance_diffusion(tmp_path / "dd")
    audio, rate = diffusers_generate(folder, None, seconds=0.1, steps=2, seed=0)
    assert rate == 16_000 and audio.ndim == 1 and len(audio) >= 512
    assert np.isfinite(audio).all()


def test_missing_weights_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        check_weights(tmp_path / "nowhere", "config.json")
    with pytest.raises(InputError, match=r"no config\.json"):
        check_weights(tmp_path, "config.json")


@pytest.mark.parametrize("model", ["musicgen", "diffusers", "codec"])
def test_cli_missing_weights_exit_2(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "audio",
            "generate",
            "--model",
            model,
            "--weights",
            str(tmp_path / "absent"),
            "--prompt",
            "calm",
            "--out",
            str(tmp_path / "x.wav"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "no such folder" in err
    assert not (tmp_path / "x.wav").exists()
