"""A DDSP-style neural synthesizer: each note is a harmonic oscillator bank plus filtered noise,
whose controls a small network predicts from the note (pitch, velocity, instrument, length)
and the time since its onset and since its release.

The SoundFont synthesizer this is trained on (TinySoundFont) plays every note as its own voice
and mixes voices by adding them, so a score's audio is the sum of its notes' audio. The model
learns one note at a time, against that note rendered alone, and a score is rendered by
adding its notes: the same additive structure, with no alignment problem (Engel et al. 2020,
"DDSP: Differentiable Digital Signal Processing", harmonic-plus-noise model).

Per control frame (``hop`` samples) the network gives an overall amplitude, a distribution over
``harmonics`` harmonics (harmonics above 0.95 x Nyquist masked out) and the gains of
``noise_bands`` noise bands. Synthesis: amplitudes interpolated linearly to samples times
``sin(k phi)``; noise shaped in the STFT domain and inverted. The same torch code trains and
renders, so what was trained is what plays.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from musegen.errors import InputError, MusegenError

if TYPE_CHECKING:
    import torch

    from musegen.score import Score

DEFAULT_MODEL = "synth-ddsp"
NOISE_FFT = 256
GAIN = 8.0  # targets are scaled by this in training (SoundFont notes peak near 0.1)
SUSTAINED_FAMILIES = frozenset({2, 5, 6, 7, 8, 9, 10, 11, 12, 15})  # GM program // 8


@dataclass
class SynthConfig:
    """The network and synthesis settings; saved as ``config.json`` beside the weights."""

    sample_rate: int = 16_000
    hop: int = 64
    harmonics: int = 64
    noise_bands: int = 32
    hidden: int = 256
    layers: int = 3
    pitch_dim: int = 16
    instruments: list[int] = field(default_factory=lambda: [0, 19])  # GM programs learned
    release: float = 0.5  # seconds each note sounds after its note-off
    max_note: float = 4.0  # time features saturate here (seconds)
    # partial k at k f0 t sqrt(1 + B k^2), (t, B) per instrument and key measured from the
    # SoundFont before training (musegen.audio.partials); False: exact harmonics
    stretch: bool = False

    def to_dict(self) -> dict[str, Any]:
        # "model" too: the shipped-model listing (models/pretrained.py) reads that key
        return {"model": "ddsp-synth", "kind": "ddsp-synth", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SynthConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def note_features(
    pitch: torch.Tensor,
    velocity: torch.Tensor,
    seconds: torch.Tensor,
    t: torch.Tensor,
    cfg: SynthConfig,
) -> torch.Tensor:
    """Time features ``(notes, frames, 8)`` of notes of length ``seconds`` at frame times ``t``."""
    import torch

    dur = seconds[:, None].clamp(min=1e-3)
    held_t = torch.minimum(t, dur)
    after = (t - dur).clamp(min=0.0)
    held = (t < dur).float()
    top = cfg.max_note
    cols = [
        ((pitch.float() - 60.0) / 24.0)[:, None].expand_as(t),
        (velocity.float() / 127.0)[:, None].expand_as(t),
        held,
        held_t.clamp(max=top) / top,
        torch.log1p(held_t / 0.005) / math.log1p(top / 0.005),
        after.clamp(max=cfg.release) / cfg.release,
        torch.log1p(after / 0.005) / math.log1p(cfg.release / 0.005),
        torch.log1p(dur / 0.05).expand_as(t) / math.log1p(top / 0.05),
    ]
    return torch.stack(cols, dim=-1)


def _exp_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """DDSP's positive output: 2 sigmoid(x)^ln(10) + 1e-7."""
    import torch

    return 2.0 * torch.sigmoid(x) ** math.log(10.0) + 1e-7


def build_network(cfg: SynthConfig) -> torch.nn.Module:
    import torch
    from torch import nn

    class DDSPSynth(nn.Module):
        """Note and time features -> amplitude, harmonic distribution, noise band gains."""

        def __init__(self) -> None:
            super().__init__()
            self.cfg = cfg
            self.pitch_emb = nn.Embedding(128, cfg.pitch_dim)
            self.inst_emb = nn.Embedding(len(cfg.instruments), 8)
            dims = [8 + cfg.pitch_dim + 8] + [cfg.hidden] * cfg.layers
            blocks: list[nn.Module] = []
            for a, b in itertools.pairwise(dims):
                blocks += [nn.Linear(a, b), nn.LayerNorm(b), nn.LeakyReLU(0.1)]
            self.body = nn.Sequential(*blocks)
            self.head = nn.Linear(cfg.hidden, 1 + cfg.harmonics + cfg.noise_bands)
            if cfg.stretch:  # (t, B) per instrument and key; (1, 0): harmonic
                table = torch.tensor([1.0, 0.0]).repeat(len(cfg.instruments), 128, 1)
                self.register_buffer("partials", table)

        def partial_hz(self, pitch: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
            """Frequencies ``(N, K)`` (float64) of each note's partials."""
            k = torch.arange(1, cfg.harmonics + 1, dtype=torch.float64)
            f0 = 440.0 * 2.0 ** ((pitch.double() - 69.0) / 12.0)
            hz = f0[:, None] * k
            if cfg.stretch:
                tb = self.partials[inst, pitch].double()
                hz = hz * tb[:, :1] * torch.sqrt(1.0 + tb[:, 1:] * k * k)
            return hz

        def controls(
            self,
            pitch: torch.Tensor,
            velocity: torch.Tensor,
            inst: torch.Tensor,
            seconds: torch.Tensor,
            n_frames: int,
            first_frame: int = 0,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            """Harmonic amplitudes ``(N, F, K)`` and noise gains ``(N, F, B)`` per frame,
            frames ``first_frame ..`` after the onset."""
            frames = torch.arange(first_frame, first_frame + n_frames, dtype=torch.float32)
            t = frames * (cfg.hop / cfg.sample_rate)
            t = t[None].expand(len(pitch), -1)
            x = torch.cat(
                [
                    note_features(pitch, velocity, seconds, t, cfg),
                    self.pitch_emb(pitch)[:, None].expand(-1, n_frames, -1),
                    self.inst_emb(inst)[:, None].expand(-1, n_frames, -1),
                ],
                dim=-1,
            )
            out = self.head(self.body(x))
            amp = _exp_sigmoid(out[..., :1])
            logits = out[..., 1 : 1 + cfg.harmonics]
            audible = self.partial_hz(pitch, inst) < 0.95 * cfg.sample_rate / 2
            logits = logits.masked_fill(~audible[:, None, :], -1e9)
            harm = amp * torch.softmax(logits, dim=-1) * audible[:, None, :]
            noise = _exp_sigmoid(out[..., 1 + cfg.harmonics :] - 5.0) * 0.1
            return harm, noise

        def forward(
            self,
            pitch: torch.Tensor,
            velocity: torch.Tensor,
            inst: torch.Tensor,
            seconds: torch.Tensor,
            n_samples: int,
            noise_seed: int = 0,
            start: int = 0,
            blocks: bool = False,
        ) -> torch.Tensor:
            """Audio ``(N, n_samples)`` of each note alone from ``start`` samples after its
            onset (a multiple of ``hop``). ``blocks``: the block-wise harmonic synthesis
            (same sound, much faster; what rendering uses)."""
            n_frames = n_samples // cfg.hop + 1
            harm, noise = self.controls(pitch, velocity, inst, seconds, n_frames, start // cfg.hop)
            synth = harmonic_audio_blocks if blocks else harmonic_audio
            hz = self.partial_hz(pitch, inst)
            return synth(harm, hz, n_samples, cfg) + noise_audio(noise, n_samples, cfg, noise_seed)

    return DDSPSynth()


def harmonic_audio(
    harm: torch.Tensor, hz: torch.Tensor, n_samples: int, cfg: SynthConfig
) -> torch.Tensor:
    """Sum of partials at frequencies ``hz`` ``(N, K)`` with amplitudes ``harm`` ``(N, F, K)``
    (frames) interpolated to samples."""
    import torch

    n = torch.arange(n_samples, dtype=torch.float64)
    cycles = hz.double()[..., None] * n / cfg.sample_rate  # (N, K, S)
    phase = (2.0 * math.pi * (cycles - torch.floor(cycles))).float()
    amps = torch.nn.functional.interpolate(
        harm.transpose(1, 2), scale_factor=cfg.hop, mode="linear", align_corners=False
    )[..., :n_samples]  # (N, K, S)
    return (amps * torch.sin(phase)).sum(dim=1)


def harmonic_audio_blocks(
    harm: torch.Tensor, hz: torch.Tensor, n_samples: int, cfg: SynthConfig
) -> torch.Tensor:
    """:func:`harmonic_audio` computed a block of ``hop`` samples at a time (for rendering).

    Between two frame centres the amplitudes are linear in time and the phase advances by a
    fixed step, so ``sum_k a_k(j) sin(phi_bk + w_k j)`` is a few matrix products with the
    note's tables ``cos(w_k j)`` and ``sin(w_k j)``: one sine per partial and block instead
    of one per partial and sample. Same interpolation as ``interpolate(align_corners=False)``:
    block ``b`` starts at sample ``b hop + hop/2`` (frame ``b``'s centre).
    """
    import torch

    hop, half = cfg.hop, cfg.hop // 2
    n = harm.shape[0]
    hz = hz.double()
    step = 2.0 * math.pi * hz / cfg.sample_rate  # phase step per sample, (N, K)
    j = torch.arange(hop, dtype=torch.float64)
    arg = step[..., None] * j  # (N, K, hop)
    cos_t, sin_t = torch.cos(arg).float(), torch.sin(arg).float()
    blocks = max(0, -(-(n_samples - half) // hop))
    last = harm.shape[1] - 1
    idx = torch.arange(blocks)
    a0 = harm[:, idx.clamp(max=last)]
    a1 = harm[:, (idx + 1).clamp(max=last)]
    starts = (idx * hop + half).double()
    cycles = hz[:, None, :] * starts[None, :, None] / cfg.sample_rate
    phi = 2.0 * math.pi * (cycles - torch.floor(cycles))  # (N, B, K)
    sin_p, cos_p = torch.sin(phi).float(), torch.cos(phi).float()
    w = (torch.arange(hop, dtype=torch.float32) + 0.5) / hop
    d = a1 - a0
    body = (a0 * sin_p) @ cos_t + (a0 * cos_p) @ sin_t
    body = body + w * ((d * sin_p) @ cos_t + (d * cos_p) @ sin_t)  # (N, B, hop)
    head = (harm[:, 0, :, None] * sin_t[..., :half]).sum(dim=1)  # samples before frame 0's centre
    return torch.cat([head, body.reshape(n, -1)], dim=1)[:, :n_samples]


def noise_audio(
    gains: torch.Tensor, n_samples: int, cfg: SynthConfig, seed: int = 0
) -> torch.Tensor:
    """White noise shaped per frame by band gains ``(N, F, B)`` (linear between band centres)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    white = torch.rand(gains.shape[0], n_samples, generator=gen) * 2.0 - 1.0
    window = torch.hann_window(NOISE_FFT)
    spec = torch.stft(
        white, NOISE_FFT, hop_length=cfg.hop, window=window, return_complex=True, center=True
    )  # (N, bins, frames)
    bands = torch.nn.functional.interpolate(
        gains.transpose(1, 2).unsqueeze(1),
        size=(spec.shape[1], gains.shape[1]),
        mode="bilinear",
        align_corners=True,
    ).squeeze(1)[..., : spec.shape[2]]
    frames = spec.shape[2]
    if bands.shape[2] < frames:
        bands = torch.nn.functional.pad(bands, (0, frames - bands.shape[2]))
    return torch.istft(
        spec * bands, NOISE_FFT, hop_length=cfg.hop, window=window, center=True, length=n_samples
    )


# --------------------------------------------------------------------------- saving/loading
def save_network(model: torch.nn.Module, folder: str | Path, config: dict[str, Any]) -> Path:
    """``model.safetensors`` (``model``'s weights) + ``config.json`` (``config``) in
    ``folder``, atomic writes: how the audio networks (synth, codec, prior) are saved."""
    from safetensors.torch import save

    from musegen.utils import atomic_write_bytes, atomic_write_text

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(out / "model.safetensors", save(state))
    atomic_write_text(out / "config.json", json.dumps(config, indent=2) + "\n")
    return out


def save_synth(
    model: torch.nn.Module, folder: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    """``config.json`` + ``model.safetensors`` in ``folder`` (atomic writes)."""
    return save_network(model, folder, {**model.cfg.to_dict(), **(extra or {})})


def resolve_synth_model(ref: str | Path | None = None) -> Path:
    """A shipped synth name (``synth-ddsp``) or a folder with ``config.json`` + weights."""
    ref = ref or DEFAULT_MODEL
    candidates = [
        Path(ref),
        Path(ref) / "best",
        Path(__file__).parents[1] / "pretrained" / str(ref),
    ]
    for c in candidates:
        if (c / "config.json").is_file() and (c / "model.safetensors").is_file():
            return c
    raise InputError(ref, "no neural synth model here (want config.json + model.safetensors)")


_LOADED: dict[str, torch.nn.Module] = {}


def load_synth(ref: str | Path | None = None) -> torch.nn.Module:
    """The synth network from a folder or shipped name, in eval mode (cached per path)."""
    from safetensors.torch import load_file

    folder = resolve_synth_model(ref)
    key = str(folder.resolve())
    if key not in _LOADED:
        try:
            data = json.loads((folder / "config.json").read_text())
            if data.get("kind") != "ddsp-synth":
                raise InputError(folder, "config.json is not a neural synth's config")
            model = build_network(SynthConfig.from_dict(data))
            model.load_state_dict(load_file(str(folder / "model.safetensors")))
        except (OSError, ValueError, RuntimeError) as e:
            raise InputError(folder, f"cannot load the neural synth ({e})") from e
        _LOADED[key] = model.eval()
    return _LOADED[key]


# --------------------------------------------------------------------------- rendering scores
def instrument_index(program: int, instruments: list[int]) -> int:
    """Which learned instrument plays GM ``program``: itself, else a decaying one (piano) for
    decaying families, a sustained one (organ) for sustained families."""
    if program in instruments:
        return instruments.index(program)
    sustained = (program // 8) in SUSTAINED_FAMILIES
    for i, p in enumerate(instruments):
        if ((p // 8) in SUSTAINED_FAMILIES) == sustained:
            return i
    return 0


def render_notes(
    model: torch.nn.Module,
    onset: np.ndarray,
    length: np.ndarray,
    pitch: np.ndarray,
    velocity: np.ndarray,
    inst: np.ndarray,
    total: int,
    chunk_samples: int = 2_000_000,
) -> np.ndarray:
    """Mono float32 audio of ``total`` samples: each note rendered alone and added at its onset.

    ``onset`` and ``length`` in samples at the model's rate. Each distinct note (pitch,
    velocity, instrument, length) is rendered once and added at every onset where it occurs;
    distinct notes of similar length are rendered together, in chunks of about
    ``chunk_samples`` samples.
    """
    import torch

    cfg: SynthConfig = model.cfg
    out = np.zeros(total, np.float32)
    rows = np.stack([pitch, velocity, inst, length], axis=1).astype(np.int64)
    if len(rows) == 0:
        return out
    kinds, which = np.unique(rows, axis=0, return_inverse=True)
    which = which.reshape(-1)
    span = kinds[:, 3] + round(cfg.release * cfg.sample_rate)
    order = np.argsort(span, kind="stable")
    start = 0
    with torch.no_grad():
        while start < len(order):
            stop = start + 1
            while stop < len(order) and (stop - start + 1) * span[order[stop]] <= chunk_samples:
                stop += 1
            idx = order[start:stop]
            k = torch.as_tensor(kinds[idx])
            audio = model(
                k[:, 0],
                k[:, 1].float(),
                k[:, 2],
                k[:, 3].float() / cfg.sample_rate,
                int(span[idx].max()),
                noise_seed=start,
                blocks=True,
            ).numpy()
            for row, kind in enumerate(idx):
                for s in onset[which == kind].tolist():
                    m = min(int(span[kind]), total - s)
                    if m > 0:
                        out[s : s + m] += audio[row, :m]
            start = stop
    return out / GAIN


def render_neural(
    score: Score, sample_rate: int = 44_100, model_ref: str | Path | None = None
) -> np.ndarray:
    """Unnormalised stereo float32 audio of ``score`` at ``sample_rate`` by the neural synth.

    Notes are rendered at the model's rate (16 kHz: nothing above 8 kHz) and resampled;
    tracks are panned as the other synthesizers pan them. Drum tracks are left out.
    """
    from musegen.render.audio import _pan_gains, _playable, end_sample, note_samples, track_pans

    model = load_synth(model_ref)
    cfg: SynthConfig = model.cfg
    rate = cfg.sample_rate
    total = end_sample(score, rate) + round(cfg.release * rate) + 1
    pans = track_pans(score)
    buses: dict[float, np.ndarray] = {}
    for track, pan in zip(score.tracks, pans, strict=True):
        notes = track.notes[_playable(track.notes)]
        if track.is_drum or len(notes) == 0:
            continue
        onset, length = note_samples(score, track.copy(notes), rate)
        inst = np.full(len(notes), instrument_index(track.program, cfg.instruments))
        mono = render_notes(model, onset, length, notes["pitch"], notes["velocity"], inst, total)
        buses[pan] = buses.get(pan, 0) + mono
    out = np.zeros((total, 2), np.float32)
    for pan, bus in buses.items():
        left, right = _pan_gains(pan)
        out[:, 0] += left * bus
        out[:, 1] += right * bus
    if sample_rate != rate:
        out = resample(out, rate, sample_rate)
    return out


def resample(audio: np.ndarray, rate: int, to: int) -> np.ndarray:
    """Polyphase resampling along axis 0 (scipy)."""
    try:
        from scipy.signal import resample_poly
    except ImportError as e:  # pragma: no cover - scipy comes with the audio extra
        raise MusegenError("the neural synth needs scipy: pip install 'musegen[audio]'") from e
    g = math.gcd(rate, to)
    return resample_poly(audio, to // g, rate // g, axis=0).astype(np.float32)
