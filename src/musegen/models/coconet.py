"""Coconet: an orderless convolutional model of four-part chorales (registry name ``"coconet"``).

After Huang et al. (2017), *Counterpoint by Convolution*. A chorale is a grid of cells, one per
(16th-note step, voice); a cell holds a *class*: 0 = the voice is silent (a rest), ``1 + k`` =
MIDI pitch ``low + k``. Any subset of cells may be hidden; the network sees the known cells and
which cells are hidden, and predicts a categorical distribution for every cell at once:

    input   [B, 8, T, C]  4 one-hot voices (zero where hidden) + 4 hidden-cell masks, over time
                          T and class C (rest, low .. high), so convolutions slide over time and
                          pitch and a voice is a channel
    stem    3×3 conv → batchnorm → ReLU
    body    residual blocks of two 3×3 convs (batchnorm, ReLU), dilated over time and pitch by
            cycling (``time_dilations``, ``pitch_dilations``): a small net then sees bars of
            context and every other voice's register (a pitch dilation of 12 relates octaves)
    head    1×1 conv → 4 channels → logits [B, T, 4, C]; classes outside a voice's range get
            a large negative bias, so probability there is (numerically) zero

Silent cells are rare in Jsb16thSeparated (0.2% of cells): they are an extra class, predicted
like a pitch, not dropped. The rest class is row 0 of the class axis, just below ``low``.

Training is orderless NADE (:func:`coconet_objective`): hide a random subset of cells (its
size uniform in 1..N, the subset uniform given the size) and score the hidden cells; the loss
is their mean negative log-likelihood in nats per cell, averaged over pieces. ``N`` times it
is an unbiased estimate of the chain-rule NLL of a random ordering (Uria et al. 2016), so
``4 ×`` the loss estimates the framewise NLL that ``benchmarks/coconet_nll.py`` measures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from musegen.models.base import ModelConfig

N_VOICES = 4
REST = 0  # class id of a silent cell
OUT_OF_RANGE = -1e4  # logit bias of classes outside a voice's range


@dataclass
class CoconetConfig(ModelConfig):
    """Hyper-parameters of :class:`Coconet`; the voice ranges are part of the model."""

    n_layers: int = 8  # 3×3 conv layers in the body (two per residual block)
    channels: int = 64
    time_dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    pitch_dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 12])
    low: int = 36  # lowest pitch of the class axis (MIDI)
    high: int = 81  # highest pitch of the class axis
    # inclusive MIDI ranges of S, A, T, B (Jsb16thSeparated's, the same in every split)
    soprano: list[int] = field(default_factory=lambda: [60, 81])
    alto: list[int] = field(default_factory=lambda: [52, 74])
    tenor: list[int] = field(default_factory=lambda: [46, 69])
    bass: list[int] = field(default_factory=lambda: [36, 66])

    def __post_init__(self) -> None:
        for name in ("time_dilations", "pitch_dilations", "soprano", "alto", "tenor", "bass"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                setattr(self, name, [int(v) for v in value])  # JSON gives lists; tuples too
        super().__post_init__()

    def validate(self) -> None:
        self.check(self.n_layers >= 2 and self.n_layers % 2 == 0, "n_layers must be even and >= 2")
        self.check(self.channels > 0, "channels must be positive")
        for name in ("time_dilations", "pitch_dilations"):
            d = getattr(self, name)
            self.check(bool(d) and all(x >= 1 for x in d), f"{name} must be a list of ints >= 1")
        self.check(0 <= self.low <= self.high <= 127, "need 0 <= low <= high <= 127")
        for name, (lo, hi) in zip(("soprano", "alto", "tenor", "bass"), self.ranges, strict=True):
            self.check(
                self.low <= lo <= hi <= self.high,
                f"{name} range {lo}..{hi} must lie inside low..high ({self.low}..{self.high})",
            )

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """Inclusive (low, high) MIDI range of S, A, T, B."""
        pairs = (self.soprano, self.alto, self.tenor, self.bass)
        for p in pairs:
            self.check(len(p) == 2, f"a voice range is [low, high], got {p}")
        return [(int(p[0]), int(p[1])) for p in pairs]

    @property
    def n_classes(self) -> int:
        """Rest + one class per pitch low..high."""
        return 1 + self.high - self.low + 1


class ResidualBlock(nn.Module):
    """Two dilated 3×3 convs with batchnorm; the input is added back before the last ReLU."""

    def __init__(self, channels: int, dilation: tuple[int, int]) -> None:
        super().__init__()
        pad = dilation  # keeps [T, C] for a 3×3 kernel
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=pad, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=pad, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(y)))


class Coconet(nn.Module):
    """Known cells + hidden-cell mask ``[B, T, 4]`` → logits ``[B, T, 4, classes]``.

    Not a :class:`~musegen.models.base.LanguageModel` (there is no left-to-right order and no
    cache): it shares the registry, ``save_model`` / ``load_model`` and the trainer only.
    """

    model_name = "coconet"

    def __init__(self, config: CoconetConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.stem = nn.Sequential(
            nn.Conv2d(2 * N_VOICES, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()
        )
        td, pd = config.time_dilations, config.pitch_dilations
        self.blocks = nn.ModuleList(
            ResidualBlock(c, (td[i % len(td)], pd[i % len(pd)]))
            for i in range(config.n_layers // 2)
        )
        self.head = nn.Conv2d(c, N_VOICES, 1)
        self.register_buffer("range_bias", _range_bias(config), persistent=False)

    def forward(self, cells: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Logits of every cell; ``cells`` are class ids (any value where ``hidden``)."""
        n = self.config.n_classes
        known = (~hidden).unsqueeze(-1).to(torch.float32)
        onehot = F.one_hot(cells.clamp(0, n - 1).long(), n).to(torch.float32) * known
        masks = (1.0 - known).expand(-1, -1, -1, n)
        x = torch.cat([onehot, masks], dim=2).permute(0, 2, 1, 3)  # [B, 8, T, C]
        # channels-last convolutions run about twice as fast on CPU (oneDNN)
        x = x.to(self.head.weight.dtype).contiguous(memory_format=torch.channels_last)
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        logits = self.head(h).permute(0, 2, 1, 3)  # [B, T, 4, C]
        return logits + self.range_bias.to(logits.dtype)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ pitch <-> class
    def to_classes(self, pitches: torch.Tensor) -> torch.Tensor:
        """MIDI pitches (-1 = silent) → class ids (see :func:`to_classes`)."""
        return to_classes(pitches, self.config.low, self.config.high)

    def to_pitches(self, classes: torch.Tensor) -> torch.Tensor:
        """Class ids → MIDI pitches (-1 = silent)."""
        return to_pitches(classes, self.config.low)


def to_classes(pitches: torch.Tensor, low: int, high: int) -> torch.Tensor:
    """MIDI pitches (-1 = silent) → class ids; a pitch off ``low..high`` is a ValueError."""
    sounding = pitches >= 0
    if bool(((pitches < low) | (pitches > high))[sounding].any()):
        raise ValueError(f"pitches outside the model's range {low}..{high}")
    return torch.where(sounding, pitches.long() - low + 1, REST)


def to_pitches(classes: torch.Tensor, low: int) -> torch.Tensor:
    """Class ids → MIDI pitches (-1 = silent)."""
    return torch.where(classes == REST, -1, classes.long() - 1 + low)


def _range_bias(config: CoconetConfig) -> torch.Tensor:
    """[4, classes]: 0 for the rest and each voice's pitches, a large negative value elsewhere."""
    bias = torch.full((N_VOICES, config.n_classes), OUT_OF_RANGE)
    bias[:, REST] = 0.0
    for v, (lo, hi) in enumerate(config.ranges):
        bias[v, 1 + lo - config.low : 2 + hi - config.low] = 0.0
    return bias


# --------------------------------------------------------------------------- training
def random_hidden(shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    """Orderless-NADE masks ``[B, T, 4]``: per piece, a uniform number 1..N of hidden cells,
    then a uniform subset of that size (N = T · 4)."""
    b = shape[0]
    n = int(torch.tensor(shape[1:]).prod())
    scores = torch.rand(b, n, generator=generator)
    count = torch.randint(1, n + 1, (b, 1), generator=generator)
    rank = scores.argsort(dim=1).argsort(dim=1)
    return (rank < count).reshape(shape)


def masked_nll(model: nn.Module, cells: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """Per piece: mean NLL (nats) of the hidden cells given the others → ``[B]``."""
    logits = model(cells, hidden)
    nll = F.cross_entropy(logits.permute(0, 3, 1, 2), cells.long(), reduction="none")
    h = hidden.to(nll.dtype)
    return (nll * h).sum(dim=(1, 2)) / h.sum(dim=(1, 2)).clamp(min=1)


def coconet_objective(
    model: nn.Module, batch: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, int]:
    """Trainer objective: ``batch`` is ``(cells [B, T, 4], hidden [B, T, 4])`` or just cells
    (masks are then drawn here). Loss = mean over pieces of the hidden cells' mean NLL."""
    if isinstance(batch, torch.Tensor):
        cells, hidden = batch, random_hidden(tuple(batch.shape)).to(batch.device)
    else:
        cells, hidden = batch
    per_piece = masked_nll(model, cells, hidden.bool())
    return per_piece.mean(), int(cells.shape[0])
