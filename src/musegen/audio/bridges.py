"""Bridges to published audio models whose weights a user has on disk (the ``hf`` extra).

* MusicGen through ``transformers``: text -> audio (``MusicgenForConditionalGeneration``), and
  melody-conditioned (``MusicgenMelodyForConditionalGeneration``, a folder whose config says
  ``musicgen_melody``) from a WAV or from a score rendered to audio first.
* A ``diffusers`` pipeline (AudioLDM, Stable Audio, Dance Diffusion ...) loaded with
  ``DiffusionPipeline.from_pretrained``: a prompt goes in when the pipeline takes one.

Nothing is downloaded: a weights path that does not exist, or that holds no model, is a
one-line :class:`~musegen.errors.InputError` (the CLI exits 2). Both return mono float32 audio
and its sample rate.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np

from musegen.errors import InputError, MusegenError

HF_HINT = "the audio bridges need the hf extra: pip install 'musegen[hf]'"


def check_weights(path: str | Path, wanted: str) -> Path:
    """``path`` as a folder holding ``wanted`` (a file name), else a one-line error."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(
            path,
            "no such folder: give the local folder that holds the weights (nothing is downloaded)",
        )
    if not p.is_dir() or not (p / wanted).is_file():
        raise InputError(path, f"not a model folder: no {wanted} in it")
    return p


def _config_type(folder: Path) -> str:
    try:
        return str(json.loads((folder / "config.json").read_text()).get("model_type", ""))
    except (OSError, ValueError) as e:
        raise InputError(folder / "config.json", f"unreadable model config ({e})") from e


def musicgen_generate(
    weights: str | Path,
    prompt: str,
    *,
    seconds: float = 10.0,
    melody: np.ndarray | None = None,
    melody_rate: int | None = None,
    seed: int = 0,
    guidance: float = 3.0,
    temperature: float = 1.0,
) -> tuple[np.ndarray, int]:
    """MusicGen from a local folder: audio for ``prompt`` (and ``melody``, mono float audio,
    for a melody model), ``seconds`` long, sampled with ``seed``."""
    folder = check_weights(weights, "config.json")
    try:
        import torch
        import transformers
    except ImportError as e:
        raise MusegenError(HF_HINT) from e
    kind = _config_type(folder)
    if kind not in ("musicgen", "musicgen_melody"):
        raise InputError(folder, f"not a MusicGen model (model_type {kind!r})")
    if melody is not None and kind != "musicgen_melody":
        raise InputError(folder, "a melody needs a MusicGen melody model (musicgen_melody)")
    torch.manual_seed(seed)
    if kind == "musicgen_melody":
        model = transformers.MusicgenMelodyForConditionalGeneration.from_pretrained(folder)
    else:
        model = transformers.MusicgenForConditionalGeneration.from_pretrained(folder)
    model.eval()
    rate = int(model.config.audio_encoder.sampling_rate)
    frame_rate = float(model.config.audio_encoder.frame_rate)
    if melody is not None:
        processor = transformers.AutoProcessor.from_pretrained(folder)
        audio_in = _resample(melody, melody_rate or rate, rate)
        inputs = processor(
            text=[prompt], audio=audio_in, sampling_rate=rate, padding=True, return_tensors="pt"
        )
    else:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        inputs = tokenizer([prompt], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(
            **inputs,
            do_sample=True,
            temperature=temperature,
            guidance_scale=guidance if guidance > 1 else None,
            max_new_tokens=max(1, round(seconds * frame_rate)),
        )
    audio = out[0].float().mean(dim=0).numpy() if out.ndim == 3 else out[0].float().numpy()
    return audio.astype(np.float32), rate


def diffusers_generate(
    weights: str | Path,
    prompt: str | None = None,
    *,
    seconds: float = 10.0,
    steps: int = 50,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """A diffusers audio pipeline from a local folder (``model_index.json``): ``seconds`` of
    audio, for ``prompt`` when the pipeline takes a prompt."""
    folder = check_weights(weights, "model_index.json")
    try:
        import diffusers
        import torch
    except ImportError as e:
        raise MusegenError(HF_HINT) from e
    try:
        pipe = diffusers.DiffusionPipeline.from_pretrained(folder)
    except (OSError, ValueError) as e:
        raise InputError(folder, f"cannot load the diffusers pipeline ({e})") from e
    params = inspect.signature(pipe.__call__).parameters
    kwargs: dict[str, Any] = {"num_inference_steps": steps}
    kwargs["generator"] = torch.Generator().manual_seed(seed)
    if "audio_length_in_s" in params:
        kwargs["audio_length_in_s"] = seconds
    elif "audio_end_in_s" in params:  # Stable Audio
        kwargs["audio_end_in_s"] = seconds
    if "prompt" in params:
        if not prompt:
            raise MusegenError(f"{type(pipe).__name__} needs a text prompt (--prompt)")
        kwargs["prompt"] = prompt
    with torch.no_grad():
        result = pipe(**kwargs)
    audio = np.asarray(result.audios[0], np.float32)
    if audio.ndim == 2:  # (channels, samples)
        audio = audio.mean(axis=0)
    rate = _pipeline_rate(pipe)
    return audio, rate


def _pipeline_rate(pipe: Any) -> int:
    """The sample rate a pipeline's audio comes at (vocoder, VAE or UNet config)."""
    for part, key in (
        ("vocoder", "sampling_rate"),
        ("vae", "sampling_rate"),
        ("unet", "sample_rate"),
    ):
        module = getattr(pipe, part, None)
        rate = getattr(getattr(module, "config", None), key, None)
        if rate:
            return int(rate)
    return 16_000


def _resample(audio: np.ndarray, rate: int, to: int) -> np.ndarray:
    if rate == to:
        return np.asarray(audio, np.float32)
    from musegen.audio.synth import resample

    return resample(np.asarray(audio, np.float32), rate, to)
