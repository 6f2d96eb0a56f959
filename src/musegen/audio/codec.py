"""A small residual-VQ audio codec (SoundStream / EnCodec in miniature) on 16 kHz renders.

Encoder: strided 1-D convolutions (strides 4, 4, 4, 5: one latent frame per 320 samples, 50
per second) to a ``latent``-dimensional vector; a residual vector quantizer of ``codebooks``
codebooks of ``codebook_size`` entries (each codebook quantizes what the ones before it left);
a mirrored decoder of transposed convolutions. Trained with the multi-resolution STFT loss,
the VQ-VAE codebook and commitment losses (straight-through gradients), and quantizer dropout
(a random number of codebooks per batch), so one model decodes at every bitrate; codebooks
start from encoder latents and unused codes are restarted from them every few steps:
``codebooks used x log2(codebook_size) x 50`` bits per second.

Training data: the train split of the run file's sources rendered by the SoundFont (each
piece with its instrument), random crops. ``train_codec`` writes ``config.json`` and
``model.safetensors``; :mod:`musegen.audio.prior` models its codes.
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

if TYPE_CHECKING:
    import torch

# Weak pulls between latents and codes: with the VQ-VAE's 0.25 commitment and full VQ loss the
# encoder's latents collapsed to one point within 300 steps (2-4 codes in use).
COMMIT = 0.02
VQ_WEIGHT = 0.1


@dataclass
class CodecConfig:
    sample_rate: int = 16_000
    channels: list[int] = field(default_factory=lambda: [16, 32, 48, 64])
    strides: list[int] = field(default_factory=lambda: [4, 4, 4, 5])
    latent: int = 64
    codebooks: int = 4
    codebook_size: int = 256

    @property
    def hop(self) -> int:
        return math.prod(self.strides)

    def bitrate(self, codebooks: int | None = None) -> float:
        """Bits per second with ``codebooks`` codebooks (default: all)."""
        n = self.codebooks if codebooks is None else codebooks
        return n * math.log2(self.codebook_size) * self.sample_rate / self.hop


def build_codec(cfg: CodecConfig) -> torch.nn.Module:
    import torch
    from torch import nn

    def block(c_in: int, c_out: int, stride: int, up: bool) -> nn.Module:
        conv = nn.ConvTranspose1d if up else nn.Conv1d
        return nn.Sequential(
            nn.Conv1d(c_in, c_in, 7, padding=3),
            nn.ELU(),
            conv(
                c_in,
                c_out,
                2 * stride,
                stride=stride,
                padding=stride // 2 + stride % 2,
                **({"output_padding": stride % 2} if up else {}),
            ),
            nn.ELU(),
        )

    class Codec(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cfg = cfg
            ch = cfg.channels
            enc: list[nn.Module] = [nn.Conv1d(1, ch[0], 7, padding=3), nn.ELU()]
            for i, s in enumerate(cfg.strides):
                enc.append(block(ch[max(i - 1, 0)] if i else ch[0], ch[i], s, up=False))
            enc.append(nn.Conv1d(ch[-1], cfg.latent, 3, padding=1))
            self.encoder = nn.Sequential(*enc)
            dec: list[nn.Module] = [nn.Conv1d(cfg.latent, ch[-1], 7, padding=3), nn.ELU()]
            for i, s in reversed(list(enumerate(cfg.strides))):
                dec.append(block(ch[i], ch[max(i - 1, 0)], s, up=True))
            dec.append(nn.Conv1d(ch[0], 1, 7, padding=3))
            self.decoder = nn.Sequential(*dec)
            self.codebooks = nn.Parameter(
                torch.randn(cfg.codebooks, cfg.codebook_size, cfg.latent) * 0.1
            )

        def encode(self, audio: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
            """Codes ``(N, n_q, frames)`` of audio ``(N, samples)``."""
            return self.quantize(self.encoder(audio[:, None]), n_q)[1]

        def quantize(
            self, z: torch.Tensor, n_q: int | None = None
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            """Quantized latents (straight-through), codes and the VQ loss of ``z`` (N, D, T)."""
            n_q = n_q or cfg.codebooks
            residual = z.transpose(1, 2)  # (N, T, D)
            quantized = torch.zeros_like(residual)
            codes, loss = [], z.new_zeros(())
            for q in range(n_q):
                book = self.codebooks[q]
                dist = (
                    residual.pow(2).sum(-1, keepdim=True)
                    - 2 * residual @ book.T
                    + book.pow(2).sum(-1)
                )
                idx = dist.argmin(-1)
                chosen = book[idx]
                loss = loss + (chosen - residual.detach()).pow(2).mean()
                loss = loss + COMMIT * (residual - chosen.detach()).pow(2).mean()
                quantized = quantized + chosen
                residual = residual - chosen.detach()
                codes.append(idx)
            z_t = z.transpose(1, 2)
            straight = z_t + (quantized - z_t).detach()
            return straight.transpose(1, 2), torch.stack(codes, 1), loss

        def level_residuals(self, z: torch.Tensor) -> list[torch.Tensor]:
            """What each codebook is asked to quantize, ``(N * T, D)`` per level (no grad)."""
            with torch.no_grad():
                residual = z.transpose(1, 2).reshape(-1, cfg.latent)
                out = []
                for q in range(cfg.codebooks):
                    out.append(residual)
                    book = self.codebooks[q]
                    dist = torch.cdist(residual, book)
                    residual = residual - book[dist.argmin(-1)]
                return out

        def restart_codes(
            self, z: torch.Tensor, used: torch.Tensor, rng: np.random.Generator
        ) -> int:
            """Codes unused since the last call (``used``: codebooks x size counts) get random
            residuals of ``z`` at their level (dead-code restart; all codes at the first call).
            Returns how many were restarted."""
            n = 0
            with torch.no_grad():
                for q, residual in enumerate(self.level_residuals(z)):
                    dead = torch.nonzero(used[q] == 0).reshape(-1)
                    if len(dead) and len(residual):
                        pick = torch.as_tensor(rng.integers(0, len(residual), len(dead)))
                        self.codebooks[q, dead] = residual[pick]
                        n += len(dead)
            return n

        def decode(self, codes: torch.Tensor) -> torch.Tensor:
            """Audio ``(N, frames * hop)`` from codes ``(N, n_q, frames)``."""
            z = sum(self.codebooks[q][codes[:, q]] for q in range(codes.shape[1]))
            return self.decoder(z.transpose(1, 2))[:, 0]

        def forward(
            self, audio: torch.Tensor, n_q: int | None = None
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
            """Reconstruction, VQ loss, codes ``(N, n_q, T)`` and the latents ``(N, D, T)``."""
            z = self.encoder(audio[:, None])
            zq, codes, vq_loss = self.quantize(z, n_q)
            return self.decoder(zq)[:, 0], vq_loss, codes, z

    return Codec()


# --------------------------------------------------------------------------- data
def render_corpus(
    sources: dict[str, str], split: str, pieces: int, seconds: float, rate: int
) -> list[tuple[np.ndarray, int]]:
    """Up to ``pieces`` pieces per GM program of ``sources`` rendered by the SoundFont at
    ``rate``: (mono audio, program)."""
    from musegen.data.sources import get_source
    from musegen.render.audio import find_soundfont, render_soundfont

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
            out.append((audio / max(1e-6, float(np.abs(audio).max())) * 0.9, int(program)))
            count += 1
            if count == pieces:
                break
    return out


@dataclass
class TrainCodecConfig:
    codec: CodecConfig = field(default_factory=CodecConfig)
    sources: dict[str, str] = field(default_factory=lambda: {"0": "pianomidi", "19": "jsb"})
    pieces: int = 40
    piece_seconds: float = 20.0
    steps: int = 400
    batch: int = 8
    crop: int = 16_000
    lr: float = 1e-3
    restart_every: int = 25  # dead-code restart (first: every code from encoder latents)
    # > 0: codebooks are moving averages of the latents assigned to them (this decay per
    # step; VQ-VAE-2 / SoundStream) instead of following the codebook loss's gradient
    ema: float = 0.0
    waveform_l1: float = 1.0  # weight of the L1 waveform term beside the MR-STFT loss
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainCodecConfig:
        d = dict(d)
        codec = CodecConfig(**d.pop("codec", {}))
        return cls(codec=codec, **{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class EmaCodebooks:
    """Exponential moving averages of each code's assignment count and latent sum; a code is
    their ratio (counts Laplace-smoothed, so a code nobody picks stays finite until the
    dead-code restart moves it; a restart resets its averages to the new code)."""

    def __init__(self, codebooks: torch.Tensor, decay: float) -> None:
        self.decay = decay
        self.size = codebooks.new_ones(codebooks.shape[:2])
        self.sum = codebooks.detach().clone()

    def update(self, model: torch.nn.Module, z: torch.Tensor, levels: int) -> None:
        import torch

        size_k = model.cfg.codebook_size
        with torch.no_grad():
            for q, residual in enumerate(model.level_residuals(z)[:levels]):
                idx = torch.cdist(residual, model.codebooks[q]).argmin(-1)
                counts = torch.bincount(idx, minlength=size_k).to(residual.dtype)
                sums = torch.zeros_like(self.sum[q]).index_add_(0, idx, residual)
                self.size[q].mul_(self.decay).add_(counts, alpha=1 - self.decay)
                self.sum[q].mul_(self.decay).add_(sums, alpha=1 - self.decay)
                total = self.size[q].sum()
                smooth = (self.size[q] + 1e-5) / (total + size_k * 1e-5) * total
                model.codebooks[q] = self.sum[q] / smooth[:, None]

    def restarted(self, model: torch.nn.Module, before: torch.Tensor) -> None:
        """Codes a dead-code restart moved (``before``: the codebooks before it) start their
        averages afresh, at one assignment of the new code."""
        moved = (model.codebooks.detach() != before).any(-1)
        self.size[moved] = 1.0
        self.sum[moved] = model.codebooks.detach()[moved]


def train_codec(
    run: TrainCodecConfig, out: str | Path, clips: list[tuple[np.ndarray, int]] | None = None
) -> dict[str, Any]:
    """Train the codec on SoundFont renders (``clips`` or rendered here); saves to ``out``."""
    import torch

    from musegen.audio.train_synth import mr_stft_loss
    from musegen.utils import progress

    rng = np.random.default_rng(run.seed)
    torch.manual_seed(run.seed)
    cfg = run.codec
    if clips is None:
        clips = render_corpus(run.sources, "train", run.pieces, run.piece_seconds, cfg.sample_rate)
    clips = [c for c in clips if len(c[0]) > run.crop]
    if not clips:
        raise MusegenError("no training audio longer than one crop")
    model = build_codec(cfg)
    ema = EmaCodebooks(model.codebooks, run.ema) if run.ema > 0 else None
    if ema is not None:
        model.codebooks.requires_grad_(False)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=run.lr)
    t0 = time.perf_counter()
    bar = progress(total=run.steps, desc="train codec", unit="step")
    loss = torch.zeros(())
    used = torch.zeros(cfg.codebooks, cfg.codebook_size)
    restarted = 0

    def crops(count: int) -> torch.Tensor:
        batch = np.zeros((count, run.crop), np.float32)
        for row in range(count):
            audio = clips[int(rng.integers(len(clips)))][0]
            s = int(rng.integers(0, len(audio) - run.crop))
            batch[row] = audio[s : s + run.crop]
        return torch.as_tensor(batch)

    for step in range(run.steps):
        if step % run.restart_every == 0 and step < run.steps * 3 // 4:
            with torch.no_grad():
                z = model.encoder(crops(4 * run.batch)[:, None])
            before = model.codebooks.detach().clone()
            restarted += model.restart_codes(z, used, rng)
            used.zero_()
            if ema is not None:
                ema.restarted(model, before)
        x = crops(run.batch)
        n_q = int(rng.integers(1, cfg.codebooks + 1))  # quantizer dropout
        y, vq, codes, z = model(x, n_q)
        for q in range(n_q):
            used[q] += torch.bincount(codes[:, q].reshape(-1), minlength=cfg.codebook_size)
        loss = mr_stft_loss(y, x) + VQ_WEIGHT * vq + run.waveform_l1 * (y - x).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update(model, z.detach(), n_q)
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    bar.close()
    save_codec(model, out)
    return {
        "loss": float(loss.detach()),
        "codes_restarted": restarted,
        "seconds": round(time.perf_counter() - t0, 1),
        "out": str(out),
    }


def save_codec(model: torch.nn.Module, folder: str | Path) -> Path:
    from musegen.audio.synth import save_network

    return save_network(model, folder, {"kind": "rvq-codec", **asdict(model.cfg)})


def load_codec(folder: str | Path) -> torch.nn.Module:
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        data = json.loads((folder / "config.json").read_text())
        if data.pop("kind", None) != "rvq-codec":
            raise InputError(folder, "not a codec folder (config.json kind is not rvq-codec)")
        model = build_codec(CodecConfig(**data))
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
    except (OSError, ValueError, TypeError, RuntimeError) as e:
        raise InputError(folder, f"cannot load the codec ({e})") from e
    return model.eval()


def reconstruct(model: torch.nn.Module, audio: np.ndarray, n_q: int) -> np.ndarray:
    """``audio`` (mono, the codec's rate) encoded with ``n_q`` codebooks and decoded."""
    import torch

    hop = model.cfg.hop
    n = len(audio)
    padded = np.zeros(-(-n // hop) * hop, np.float32)
    padded[:n] = audio
    with torch.no_grad():
        codes = model.encode(torch.as_tensor(padded)[None], n_q)
        return model.decode(codes)[0, :n].numpy()
