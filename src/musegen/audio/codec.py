"""A small residual-VQ audio codec on 16 kHz renders, in the spectral domain.

A codec that must learn on one CPU thread in minutes: a waveform VQ-VAE (strided
convolutions to 50 latent frames per second, SoundStream in miniature) did not -- its decoder
ignored the codes after 300 steps, and without a quantizer reached only MR-STFT 2.92 after
1,000 (docs/experiments.md, "Audio: neural synthesizer, transcription, codec"). So this codec
works on log-magnitude STFT frames (1,024-point Hann window, hop 256: 62.5 frames per second,
513 bins), which a few convolutions map well:

* encoder: 1-D convolutions over time (residual, dilated) and one strided convolution to one
  ``latent``-dimensional vector per ``stride`` STFT frames (31.25 code frames per second);
* a residual vector quantizer (:mod:`musegen.audio.rvq`) of ``codebooks`` codebooks of
  ``codebook_size`` codes, EMA codebooks with dead-code restart; quantizer dropout (a random
  number of codebooks per batch) so one model decodes at every bitrate,
  ``n x log2(codebook_size) x 31.25`` bits per second with ``n`` codebooks;
* decoder: the mirror image, predicting the log-magnitude frames;
* audio back by a fixed inverse: fast Griffin-Lim (Perraudin et al. 2013) from the predicted
  magnitudes, seeded phases.

Loss: L1 between predicted and true log magnitudes plus spectral convergence of the linear
magnitudes, and the commitment loss. Training data: the run file's corpora rendered by the
SoundFont (each piece with its instrument), random crops; the weights with the lowest
validation loss (valid split, all codebooks) are kept. :mod:`musegen.audio.prior` models
the codes.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from musegen.errors import InputError, MusegenError
from musegen.utils import reject_unknown

if TYPE_CHECKING:
    import torch

KIND = "spectral-codec"
INPUT_PEAK = 0.9  # the level the codec hears its audio at (training renders are normalised to it)


@dataclass
class CodecConfig:
    sample_rate: int = 16_000
    n_fft: int = 1024
    hop: int = 256  # STFT hop (samples)
    stride: int = 2  # STFT frames per code frame
    hidden: int = 256
    latent: int = 64
    codebooks: int = 8
    codebook_size: int = 256
    floor: float = 1e-4  # log(|X| + floor); audio peak-normalised to 0.9
    griffin_lim: int = 64  # iterations of the inverse

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def code_hop(self) -> int:
        """Samples per code frame."""
        return self.hop * self.stride

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.code_hop

    def bitrate(self, codebooks: int | None = None) -> float:
        """Bits per second with ``codebooks`` codebooks (default: all)."""
        n = self.codebooks if codebooks is None else codebooks
        return n * math.log2(self.codebook_size) * self.frame_rate

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CodecConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# --------------------------------------------------------------------------- spectra
def stft(audio: torch.Tensor, cfg: CodecConfig) -> torch.Tensor:
    """Complex STFT ``(N, bins, samples // hop + 1)`` of audio ``(N, samples)``."""
    import torch

    window = torch.hann_window(cfg.n_fft)
    return torch.stft(audio, cfg.n_fft, cfg.hop, window=window, return_complex=True, center=True)


def log_magnitude(audio: torch.Tensor, cfg: CodecConfig) -> torch.Tensor:
    """The codec's frames ``(N, bins, frames)``: ``log(|STFT| + floor)``, ``frames`` the
    largest multiple of ``stride`` not above ``samples // hop``."""
    import torch

    spec = stft(audio, cfg).abs()
    frames = (spec.shape[-1] - 1) // cfg.stride * cfg.stride
    return torch.log(spec[..., :frames] + cfg.floor)


def griffin_lim(
    magnitude: torch.Tensor, cfg: CodecConfig, length: int, seed: int = 0
) -> torch.Tensor:
    """Audio ``(N, length)`` whose STFT magnitudes approach ``magnitude`` ``(N, bins, F)``
    (``F = length // hop + 1``): fast Griffin-Lim, momentum 0.99, seeded random phases."""
    import torch

    window = torch.hann_window(cfg.n_fft)
    gen = torch.Generator().manual_seed(seed)
    angles = torch.exp(2j * math.pi * torch.rand(magnitude.shape, generator=gen))
    previous = torch.zeros_like(angles)
    momentum = 0.99 / 1.99
    for _ in range(cfg.griffin_lim):
        audio = torch.istft(
            magnitude * angles, cfg.n_fft, cfg.hop, window=window, center=True, length=length
        )
        rebuilt = stft(audio, cfg)
        angles = rebuilt - momentum * previous
        angles = angles / angles.abs().clamp(min=1e-12)
        previous = rebuilt
    return torch.istft(
        magnitude * angles, cfg.n_fft, cfg.hop, window=window, center=True, length=length
    )


def frames_to_audio(logmag: torch.Tensor, cfg: CodecConfig, seed: int = 0) -> torch.Tensor:
    """Audio ``(N, frames * hop)`` of predicted log-magnitude frames ``(N, bins, frames)``."""
    import torch

    mag = (torch.exp(logmag) - cfg.floor).clamp(min=0.0)
    mag = torch.cat([mag, mag[..., -1:]], dim=-1)  # the frame centred on the last sample
    return griffin_lim(mag, cfg, logmag.shape[-1] * cfg.hop, seed)


# --------------------------------------------------------------------------- the network
def build_codec(cfg: CodecConfig) -> torch.nn.Module:
    import torch
    from torch import nn

    from musegen.audio import rvq

    class Residual(nn.Module):
        def __init__(self, width: int, dilation: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.ELU(),
                nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation),
                nn.ELU(),
                nn.Conv1d(width, width, 1),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.body(x)

    h, s = cfg.hidden, cfg.stride

    class Codec(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cfg = cfg
            self.encoder = nn.Sequential(
                nn.Conv1d(cfg.bins, h, 3, padding=1),
                Residual(h, 1),
                Residual(h, 2),
                nn.ELU(),
                nn.Conv1d(h, h, 2 * s, stride=s, padding=s // 2),
                Residual(h, 1),
                nn.ELU(),
                nn.Conv1d(h, cfg.latent, 1),
            )
            self.decoder = nn.Sequential(
                nn.Conv1d(cfg.latent, h, 3, padding=1),
                Residual(h, 1),
                nn.ELU(),
                nn.ConvTranspose1d(h, h, 2 * s, stride=s, padding=s // 2),
                Residual(h, 1),
                Residual(h, 2),
                nn.ELU(),
                nn.Conv1d(h, cfg.bins, 3, padding=1),
            )
            books = torch.randn(cfg.codebooks, cfg.codebook_size, cfg.latent) * 0.1
            self.register_buffer("codebooks", books)

        def forward(
            self, frames: torch.Tensor, n_q: int | None = None
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
            """Predicted frames, commitment loss, codes ``(N, n_q, T)`` and latents
            ``(N, latent, T)`` of log-magnitude frames ``(N, bins, 2T)``."""
            z = self.encoder(frames).float()
            with torch.autocast("cpu", enabled=False):  # nearest codes in fp32
                zq, codes, commit = rvq.quantize(z, self.codebooks, n_q or cfg.codebooks)
            return self.decoder(zq).float(), commit, codes, z

        def encode(self, audio: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
            """Codes ``(N, n_q, samples // code_hop)`` of audio ``(N, samples)``."""
            z = self.encoder(log_magnitude(audio, cfg))
            return rvq.quantize(z, self.codebooks, n_q or cfg.codebooks)[1]

        def decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
            """Log-magnitude frames ``(N, bins, frames * stride)`` of codes ``(N, n_q, frames)``."""
            return self.decoder(rvq.lookup(codes, self.codebooks))

        def decode(self, codes: torch.Tensor, seed: int = 0) -> torch.Tensor:
            """Audio ``(N, frames * code_hop)`` of codes ``(N, n_q, frames)``."""
            return frames_to_audio(self.decode_frames(codes), cfg, seed)

    return Codec()


def spectral_loss(pred: torch.Tensor, target: torch.Tensor, floor: float) -> torch.Tensor:
    """L1 of log magnitudes plus spectral convergence of linear magnitudes."""
    import torch

    lin_p = (torch.exp(pred) - floor).clamp(min=0.0)
    lin_t = torch.exp(target) - floor
    convergence = torch.linalg.norm(lin_p - lin_t) / torch.linalg.norm(lin_t).clamp(min=1e-6)
    return (pred - target).abs().mean() + convergence


# --------------------------------------------------------------------------- data
def render_corpus(
    sources: dict[str, str], split: str, pieces: int, seconds: float, rate: int
) -> list[tuple[np.ndarray, int]]:
    """Up to ``pieces`` pieces per GM program of ``sources`` rendered by the SoundFont at
    ``rate``, each its first ``seconds``, peak-normalised to 0.9: (mono audio, program)."""
    from musegen.data.sources import get_source
    from musegen.render.audio import find_soundfont, normalize, render_soundfont

    sf = find_soundfont()
    if sf is None:
        raise MusegenError("the codec is trained on SoundFont renders: pip install pretty_midi")
    out = []
    for program, source in sources.items():
        count = 0
        for _, score in get_source(source).scores(split):
            cut = score.slice_ticks(0, int(score.seconds_to_ticks(seconds)))
            for track in cut.tracks:
                track.program = int(program)
            if cut.n_notes == 0:
                continue
            audio = render_soundfont(cut, sf, rate).mean(axis=1)
            out.append((normalize(audio, INPUT_PEAK), int(program)))
            count += 1
            if count == pieces:
                break
    return out


# --------------------------------------------------------------------------- training
@dataclass
class TrainCodecConfig:
    codec: CodecConfig = field(default_factory=CodecConfig)
    sources: dict[str, str] = field(default_factory=lambda: {"0": "pianomidi", "19": "jsb"})
    pieces: int = 40  # per instrument, train split
    piece_seconds: float = 20.0
    valid_pieces: int = 4  # per instrument, valid split (choosing the best weights)
    steps: int = 2000
    batch: int = 16
    crop: int = 64  # code frames per training crop (64: about 2 s)
    lr: float = 1e-3
    commit: float = 0.1  # weight of the commitment loss
    ema: float = 0.99  # codebook moving-average decay
    restart_every: int = 50  # dead-code restart (the first: every code from a latent)
    valid_every: int = 200
    # "bf16": encoder and decoder under bf16 autocast (quantizer and loss in fp32): about
    # 1.5x faster on CPUs with AMX, far slower on CPUs without bf16 units
    precision: str = "fp32"
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainCodecConfig:
        d = dict(d)
        codec = CodecConfig.from_dict(d.pop("codec", {}))
        reject_unknown(d, cls.__dataclass_fields__, "codec run settings")
        return cls(codec=codec, **d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_codec(
    run: TrainCodecConfig,
    out: str | Path,
    clips: list[tuple[np.ndarray, int]] | None = None,
    valid: list[tuple[np.ndarray, int]] | None = None,
    log: Any = print,
    resume: bool = False,
) -> dict[str, Any]:
    """Train the codec on SoundFont renders (``clips``, ``valid``, or rendered here); the
    best weights by validation loss go to ``out`` (``config.json`` + ``model.safetensors``),
    the validation log to ``out/log.jsonl``. At every validation the whole state goes to
    ``out/checkpoint`` (Ctrl-C saves it too and stops); ``resume`` goes on from there."""
    import torch

    from musegen.audio import rvq
    from musegen.checkpoint import (
        load_training_state,
        resumable_steps,
        run_checkpoint,
        save_training_state,
    )
    from musegen.utils import atomic_write_text

    ckpt = run_checkpoint(out, resume, f"{out} already holds a codec run")

    rng = np.random.default_rng(run.seed)
    torch.manual_seed(run.seed)
    cfg = run.codec
    if run.precision not in ("fp32", "bf16"):
        raise MusegenError(f"codec precision must be fp32 or bf16, got {run.precision!r}")
    if clips is None:
        clips = render_corpus(run.sources, "train", run.pieces, run.piece_seconds, cfg.sample_rate)
    if valid is None:
        valid = render_corpus(
            run.sources, "valid", run.valid_pieces, run.piece_seconds, cfg.sample_rate
        )
    crop = run.crop * cfg.code_hop
    clips = [c for c in clips if len(c[0]) > crop]
    if not clips:
        raise MusegenError("no training audio longer than one crop")
    model = build_codec(cfg)
    ema = rvq.EmaCodebooks(model.codebooks, run.ema)
    opt = torch.optim.Adam(model.parameters(), lr=run.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, run.lr, total_steps=run.steps, pct_start=0.05)
    valid_frames = [log_magnitude(torch.as_tensor(a)[None], cfg) for a, _ in valid]
    used = torch.zeros(cfg.codebooks, cfg.codebook_size)
    t0 = time.perf_counter()
    state: dict[str, Any] = {
        "step": 0,
        "best": math.inf,
        "best_step": 0,
        "lines": [],
        "restarted": 0,
    }
    out = Path(out)

    def crops(count: int) -> torch.Tensor:
        batch = np.zeros((count, crop), np.float32)
        for row in range(count):
            audio = clips[int(rng.integers(len(clips)))][0]
            s = int(rng.integers(0, len(audio) - crop))
            batch[row] = audio[s : s + crop]
        return log_magnitude(torch.as_tensor(batch), cfg)

    if resume:
        state, extra = load_training_state(ckpt, model, opt, sched, rng, run.to_dict(), log)
        used.copy_(extra["used"])
        ema.size.copy_(extra["ema_size"])
        ema.sum.copy_(extra["ema_sum"])
    else:
        with torch.no_grad():  # the decoder starts at the data's mean frame
            model.decoder[-1].bias.copy_(crops(4 * run.batch).mean(dim=(0, 2)))
    lines = state["lines"]

    def save() -> None:
        tensors = {"used": used, "ema_size": ema.size, "ema_sum": ema.sum}
        save_training_state(ckpt, model, opt, sched, rng, state, run.to_dict(), tensors)

    for s in resumable_steps(run.steps, run.valid_every, state, ckpt, save, "train codec"):
        model.train()
        if (s.number - 1) % run.restart_every == 0 and s.number < run.steps * 3 // 4:
            with torch.no_grad():
                z = model.encoder(crops(4 * run.batch))
            moved = rvq.restart_codes(z, model.codebooks, used, rng)
            ema.restarted(model.codebooks, moved)
            state["restarted"] += int(moved.sum())
            used.zero_()
        x = crops(run.batch)
        n_q = int(rng.integers(1, cfg.codebooks + 1))  # quantizer dropout
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=run.precision == "bf16"):
            y, commit, codes, z = model(x, n_q)
        for q in range(n_q):
            used[q] += torch.bincount(codes[:, q].reshape(-1), minlength=cfg.codebook_size)
        loss = spectral_loss(y, x, cfg.floor) + run.commit * commit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        ema.update(model.codebooks, z.detach(), n_q)
        if s.due:
            v = validation_loss(model, valid_frames)
            line = {
                "step": s.number,
                "train_loss": round(float(loss.detach()), 4),
                "valid_loss": {str(k): round(x, 4) for k, x in v.items()},
                "codes_in_use": int((used > 0).sum()),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            lines.append(json.dumps(line))
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "log.jsonl", "\n".join(lines) + "\n")
            s.bar.set_postfix(loss=f"{float(loss.detach()):.3f}", valid=f"{v[cfg.codebooks]:.3f}")
            if v[cfg.codebooks] < state["best"]:
                state["best"], state["best_step"] = v[cfg.codebooks], s.number
                trained = {"trained": {"step": s.number, "valid_loss": line["valid_loss"]}}
                save_codec(model, out, trained)
    best, best_step, restarted = state["best"], state["best_step"], state["restarted"]
    summary = {
        "best_valid_loss": round(best, 4),
        "best_step": best_step,
        "codes_restarted": restarted,
        "seconds": round(time.perf_counter() - t0, 1),
        "out": str(out),
    }
    log(json.dumps(summary))
    return summary


def validation_loss(model: torch.nn.Module, frames: list[torch.Tensor]) -> dict[int, float]:
    """Mean spectral loss of the valid clips' frames through 1, 2, 4, ... and all codebooks."""
    import torch

    cfg: CodecConfig = model.cfg
    levels = sorted({*(2**k for k in range(int(math.log2(cfg.codebooks)) + 1)), cfg.codebooks})
    model.eval()
    out = {}
    with torch.no_grad():
        for n_q in levels:
            losses = [float(spectral_loss(model(f, n_q)[0], f, cfg.floor)) for f in frames]
            out[n_q] = float(np.mean(losses)) if losses else math.nan
    return out


# --------------------------------------------------------------------------- saving/loading
def save_codec(
    model: torch.nn.Module, folder: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    from musegen.audio.synth import save_network

    config = {"model": KIND, "kind": KIND, **asdict(model.cfg), **(extra or {})}
    return save_network(model, folder, config)


def load_codec(folder: str | Path) -> torch.nn.Module:
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        data = json.loads((folder / "config.json").read_text())
        if data.get("kind") != KIND:
            raise InputError(folder, f"not a codec folder (config.json kind is not {KIND})")
        model = build_codec(CodecConfig.from_dict(data))
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
    except (OSError, ValueError, TypeError, RuntimeError) as e:
        raise InputError(folder, f"cannot load the codec ({e})") from e
    return model.eval()


def reconstruct(model: torch.nn.Module, audio: np.ndarray, n_q: int, seed: int = 0) -> np.ndarray:
    """``audio`` (mono, the codec's rate) encoded with ``n_q`` codebooks and decoded, at the
    input's peak level."""
    import torch

    hop = model.cfg.code_hop
    n = len(audio)
    peak = max(1e-6, float(np.abs(audio).max()))
    padded = np.zeros(max(1, -(-n // hop)) * hop, np.float32)
    padded[:n] = audio / peak * INPUT_PEAK
    with torch.no_grad():
        codes = model.encode(torch.as_tensor(padded)[None], n_q)
        out = model.decode(codes, seed)[0, :n].numpy()
    return out * (peak / INPUT_PEAK)
