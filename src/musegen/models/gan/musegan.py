"""MuseGAN (Dong et al. 2018): multi-track piano-roll phrases from shared and private latents.

A phrase is ``[tracks, bars * steps, pitches]`` (four voices S/A/T/B of a chorale, four 4/4
bars of 16th-note steps by default). The latent is cut into up to four parts (``d_z`` each):

* shared, inter-track: ``z`` (the same for every bar) and ``z_t`` through the temporal
  network ``G_temp`` (one vector per bar);
* private, per track: ``z_i`` and ``z_i,t`` through that track's own ``G_temp,i``.

``mode`` picks the paper's three models: ``"jamming"`` (one bar generator per track, private
latents only), ``"composer"`` (one bar generator writing every track, shared latents only),
``"hybrid"`` (one bar generator per track, each fed the shared and its private latents). A bar
generator is a linear layer and transposed convolutions over (time, pitch), upsampling steps
4x and the pitch axis from octaves to semitones; batch norm and ReLU between layers.

The critic (one for every mode: the paper's jamming model had one per track) reads the whole
phrase: per-octave pitch features, steps, beats and bars by strided convolutions over the
tracks as channels, and a second path over each track's chroma per bar (so harmony between
tracks is visible to it). ``critic_tonal`` also hands it, per bar, the tonal distance (Harte
et al.'s centroids, the figure MuseGAN's paper reports) between every two tracks, computed from
those chromas: the harmony between voices as one number a pair, where a linear layer over the
chromas would have to learn the centroids' normalisation and norm itself. No normalisation in
the critic: the objective is WGAN-GP (:mod:`musegen.train.gan`), as in the paper. ``ema``
keeps a moving average of the generator that writes in eval mode
(:class:`~musegen.models.gan.common.GanModel`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from musegen.models.base import ModelConfig
from musegen.models.gan.common import GanModel, cell_probs, leaky, roll_stats
from musegen.theory import TONAL_CENTROID

MODES = ("jamming", "composer", "hybrid")


@dataclass
class MuseGANConfig(ModelConfig):
    n_tracks: int = 4
    n_bars: int = 4
    steps: int = 16  # per bar (a multiple of 4)
    n_pitches: int = 48  # a multiple of 12
    low_pitch: int = 34  # MIDI pitch of the first pitch row
    monophonic: bool = True  # one note or a rest per step and track (SATB voices)
    mode: str = "hybrid"
    d_z: int = 32  # each latent part
    d_hidden: int = 128  # widest generator channels
    d_critic: int = 64  # critic width
    ema: float = 0.0  # decay of the generator's moving average (0: none; e.g. 0.999)
    critic_tonal: bool = False  # the critic also reads each bar's tonal distance per track pair

    def validate(self) -> None:
        self.check(self.mode in MODES, f"mode must be one of {MODES}, got {self.mode!r}")
        self.check(self.n_tracks >= 1 and self.n_bars >= 1, "n_tracks and n_bars must be >= 1")
        self.check(self.steps >= 4 and self.steps % 4 == 0, "steps must be a multiple of 4")
        self.check(self.n_pitches >= 12 and self.n_pitches % 12 == 0, "n_pitches: 12, 24, ..")
        self.check(self.low_pitch >= 0 and self.low_pitch + self.n_pitches <= 128, "pitch range")
        self.check(min(self.d_z, self.d_hidden, self.d_critic) >= 4, "widths must be >= 4")
        self.check(0 <= self.ema < 1, "ema must be in [0, 1)")


class BarGenerator(nn.Module):
    """A latent vector → one bar of ``out`` tracks: pitch logits and (monophonic) rest logits."""

    def __init__(self, d_in: int, out: int, steps: int, octaves: int, c: int, mono: bool) -> None:
        super().__init__()
        self.shape = (c, steps // 4, octaves)
        self.fc = nn.Sequential(nn.Linear(d_in, c * steps // 4 * octaves), nn.ReLU())
        self.up = nn.Sequential(
            nn.BatchNorm2d(c),
            nn.ConvTranspose2d(c, c // 2, (2, 1), (2, 1)),
            nn.BatchNorm2d(c // 2),
            nn.ReLU(),
            nn.ConvTranspose2d(c // 2, c // 4, (2, 1), (2, 1)),
            nn.BatchNorm2d(c // 4),
            nn.ReLU(),
        )
        self.pitch = nn.ConvTranspose2d(c // 4, out, (1, 12), (1, 12))
        self.rest = nn.Conv2d(c // 4, out, (1, octaves)) if mono else None

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.up(self.fc(h).view(len(h), *self.shape))  # [n, c/4, steps, octaves]
        rest = self.rest(x) if self.rest is not None else None
        return self.pitch(x), rest  # [n, out, steps, P], [n, out, steps, 1]


def temporal(d_z: int, n_bars: int) -> nn.Module:
    """``G_temp``: one latent → one latent per bar."""
    return nn.Sequential(nn.Linear(d_z, 4 * d_z), nn.ReLU(), nn.Linear(4 * d_z, n_bars * d_z))


class MuseGANGenerator(nn.Module):
    def __init__(self, c: MuseGANConfig) -> None:
        super().__init__()
        self.c = c
        shared, private = c.mode != "jamming", c.mode != "composer"
        self.temp = temporal(c.d_z, c.n_bars) if shared else None
        self.temp_tracks = (
            nn.ModuleList(temporal(c.d_z, c.n_bars) for _ in range(c.n_tracks)) if private else None
        )
        d_in = 2 * c.d_z * (int(shared) + int(private))
        n_gen, out = (1, c.n_tracks) if c.mode == "composer" else (c.n_tracks, 1)
        octaves = c.n_pitches // 12
        self.bars = nn.ModuleList(
            BarGenerator(d_in, out, c.steps, octaves, c.d_hidden, c.monophonic)
            for _ in range(n_gen)
        )

    @property
    def latent_size(self) -> int:
        c = self.c
        return 2 * c.d_z * ((c.mode != "jamming") + c.n_tracks * (c.mode != "composer"))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        c, n = self.c, len(z)
        parts = list(z.split(c.d_z, dim=1))
        per_bar_shared: list[torch.Tensor] = []
        if self.temp is not None:
            z_s, z_t = parts.pop(0), parts.pop(0)
            per_bar_shared = [
                z_s[:, None].expand(n, c.n_bars, c.d_z),
                self.temp(z_t).view(n, c.n_bars, c.d_z),
            ]
        inputs = []
        if self.temp_tracks is None:  # composer: one generator, shared latents
            inputs.append(torch.cat(per_bar_shared, -1))
        else:
            for i, temp in enumerate(self.temp_tracks):
                z_i, z_it = parts[2 * i], parts[2 * i + 1]
                own = [z_i[:, None].expand(n, c.n_bars, c.d_z), temp(z_it).view(n, c.n_bars, c.d_z)]
                inputs.append(torch.cat(per_bar_shared + own, -1))
        tracks = []
        for gen, h in zip(self.bars, inputs, strict=True):
            logits, rest = gen(h.reshape(n * c.n_bars, -1))
            tracks.append(cell_probs(logits, rest))
        x = torch.cat(tracks, 1)  # [n * bars, tracks, steps, P]
        x = x.view(n, c.n_bars, c.n_tracks, c.steps, c.n_pitches).transpose(1, 2)
        return x.reshape(n, c.n_tracks, c.n_bars * c.steps, c.n_pitches)


class MuseGANCritic(nn.Module):
    def __init__(self, c: MuseGANConfig) -> None:
        super().__init__()
        self.c = c
        w, octaves, beat = c.d_critic, c.n_pitches // 12, c.steps // 4
        self.roll = nn.Sequential(
            nn.Conv2d(c.n_tracks, w, (1, 12), (1, 12)),  # [w, T, octaves]
            leaky(),
            nn.Conv2d(w, w, (1, octaves)),  # [w, T, 1]
            leaky(),
            nn.Conv2d(w, 2 * w, (beat, 1), (beat, 1)),  # beats
            leaky(),
            nn.Conv2d(2 * w, 2 * w, (4, 1), (4, 1)),  # bars
            leaky(),
        )
        self.chroma = nn.Sequential(nn.Linear(c.n_tracks * 12, w), leaky())
        pairs = c.n_tracks * (c.n_tracks - 1) // 2 if c.critic_tonal else 0
        if pairs:
            self.register_buffer(
                "phi", torch.from_numpy(TONAL_CENTROID.T.astype("float32")), persistent=False
            )
            pair_index = torch.combinations(torch.arange(c.n_tracks), 2)  # [pairs, 2]
            self.register_buffer("pairs", pair_index, persistent=False)
        d = 2 * w * c.n_bars + w * c.n_bars + pairs * c.n_bars
        self.out = nn.Sequential(nn.Linear(d, 4 * w), leaky(), nn.Linear(4 * w, 1))

    def tonal_distances(self, chroma: torch.Tensor) -> torch.Tensor:
        """``[n, pairs * bars]``: for chromas ``[n, tracks, bars, 12]``, the distance between
        two tracks' tonal centroids in each bar, every pair of tracks (0 where one is silent,
        as the metric leaves such bars out)."""
        total = chroma.sum(-1, keepdim=True)
        centroid = (chroma / total.clamp_min(1e-6)) @ self.phi  # [n, tracks, bars, 6]
        a, b = centroid[:, self.pairs[:, 0]], centroid[:, self.pairs[:, 1]]
        gap = ((a - b).square().sum(-1) + 1e-8).sqrt()  # [n, pairs, bars]
        sounding = (total[..., 0] > 1e-6).float()
        both = sounding[:, self.pairs[:, 0]] * sounding[:, self.pairs[:, 1]]
        return (gap * both).flatten(1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden features ``[n, 4 * d_critic]``, under the score (feature matching)."""
        c, n = self.c, len(x)
        a = self.roll(x).reshape(n, -1)
        chroma = x.view(n, c.n_tracks, c.n_bars, c.steps, c.n_pitches // 12, 12).mean((3, 4))
        b = self.chroma(chroma.transpose(1, 2).reshape(n * c.n_bars, -1)).view(n, -1)
        parts = [a, b, self.tonal_distances(chroma)] if c.critic_tonal else [a, b]
        return self.out[:-1](torch.cat(parts, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out[-1](self.features(x)).squeeze(-1)


class MuseGAN(GanModel):
    registry_name = "musegan"

    def __init__(self, config: MuseGANConfig) -> None:
        super().__init__()
        self.config = config
        self.monophonic = config.monophonic
        self.generator = MuseGANGenerator(config)
        self.discriminator = MuseGANCritic(config)
        self.init_ema(config.ema)

    @property
    def latent_size(self) -> int:
        return self.generator.latent_size

    def fake(self, z: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.writer()(z)

    def critic(self, x: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.discriminator(x)

    def critic_features(self, x: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.discriminator.features(x)

    def stats(self, x: torch.Tensor) -> torch.Tensor:
        return roll_stats(x, self.config.steps)
