"""A small transformer prior over the codec's codes (Jukebox / MusicGen in miniature).

Sequence: a tag token (an instrument: ``piano``, ``organ``, or ``none`` for unconditional),
then the codes of the first ``codebooks`` codebooks frame by frame (frame-major: frame 1's
codebook 1, 2, ..., frame 2's ...), codebook ``q``'s codes offset by ``q x codebook_size`` so
each codebook has its own ids. A causal transformer (learned positions) predicts the next id;
sampling masks every id outside the codebook whose turn it is. Training drops the tag to
``none`` for 20% of sequences, so one model serves both.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from musegen.errors import InputError, MusegenError

if TYPE_CHECKING:
    import torch

TAGS = ("none", "piano", "organ")
PROGRAM_TAG = {0: "piano", 19: "organ"}


@dataclass
class PriorConfig:
    codebooks: int = 2
    codebook_size: int = 256
    context: int = 512
    dim: int = 128
    layers: int = 3
    heads: int = 4

    @property
    def vocab(self) -> int:
        return self.codebooks * self.codebook_size + len(TAGS)


def build_prior(cfg: PriorConfig) -> torch.nn.Module:
    import torch
    from torch import nn

    class Prior(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cfg = cfg
            self.tok = nn.Embedding(cfg.vocab, cfg.dim)
            self.pos = nn.Embedding(cfg.context, cfg.dim)
            layer = nn.TransformerEncoderLayer(
                cfg.dim, cfg.heads, 4 * cfg.dim, dropout=0.0, batch_first=True, norm_first=True
            )
            self.body = nn.TransformerEncoder(layer, cfg.layers)
            self.norm = nn.LayerNorm(cfg.dim)
            self.head = nn.Linear(cfg.dim, cfg.vocab)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            n = ids.shape[1]
            mask = torch.triu(torch.full((n, n), float("-inf")), diagonal=1)
            x = self.tok(ids) + self.pos(torch.arange(n))[None]
            return self.head(self.norm(self.body(x, mask=mask, is_causal=True)))

    return Prior()


def tag_id(cfg: PriorConfig, tag: str) -> int:
    if tag not in TAGS:
        raise MusegenError(f"unknown tag {tag!r}; choose one of: {', '.join(TAGS)}")
    return cfg.codebooks * cfg.codebook_size + TAGS.index(tag)


def flatten(codes: np.ndarray, cfg: PriorConfig) -> np.ndarray:
    """Codes ``(n_q, frames)`` -> frame-major ids with per-codebook offsets."""
    c = codes[: cfg.codebooks].astype(np.int64)
    c = c + (np.arange(cfg.codebooks) * cfg.codebook_size)[:, None]
    return c.T.reshape(-1)


def unflatten(ids: np.ndarray, cfg: PriorConfig) -> np.ndarray:
    frames = len(ids) // cfg.codebooks
    c = ids[: frames * cfg.codebooks].reshape(frames, cfg.codebooks).T
    return c - (np.arange(cfg.codebooks) * cfg.codebook_size)[:, None]


@dataclass
class TrainPriorConfig:
    prior: PriorConfig = field(default_factory=PriorConfig)
    steps: int = 300
    batch: int = 8
    lr: float = 1e-3
    uncond: float = 0.2
    seed: int = 0


def train_prior(
    run: TrainPriorConfig, sequences: list[tuple[np.ndarray, str]], out: str | Path
) -> dict[str, Any]:
    """Train on ``(flat ids, tag)`` sequences (windows of ``context - 1`` ids); save to ``out``."""
    import torch

    from musegen.utils import progress

    cfg = run.prior
    rng = np.random.default_rng(run.seed)
    torch.manual_seed(run.seed)
    window = cfg.context - 1
    usable = [(s, t) for s, t in sequences if len(s) > window]
    if not usable:
        raise MusegenError(f"no code sequence longer than {window} ids")
    model = build_prior(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=run.lr, weight_decay=0.01)
    t0 = time.perf_counter()
    bar = progress(total=run.steps, desc="train prior", unit="step")
    loss = torch.zeros(())
    for _ in range(run.steps):
        rows = []
        for _ in range(run.batch):
            seq, tag = usable[int(rng.integers(len(usable)))]
            frame = int(rng.integers(0, (len(seq) - window) // cfg.codebooks + 1))
            start = frame * cfg.codebooks
            t = "none" if rng.random() < run.uncond else tag
            rows.append(np.concatenate([[tag_id(cfg, t)], seq[start : start + window]]))
        ids = torch.as_tensor(np.stack(rows))
        logits = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, cfg.vocab), ids[:, 1:].reshape(-1)
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.update(1)
    bar.close()
    save_prior(model, out)
    return {"loss": float(loss.detach()), "seconds": round(time.perf_counter() - t0, 1)}


def sample(
    model: torch.nn.Module, frames: int, tag: str = "none", seed: int = 0, temperature: float = 1.0
) -> np.ndarray:
    """Codes ``(codebooks, frames)`` drawn from the prior (a sliding window past ``context``)."""
    import torch

    cfg: PriorConfig = model.cfg
    gen = torch.Generator().manual_seed(seed)
    ids = [tag_id(cfg, tag)]
    with torch.no_grad():
        for i in range(frames * cfg.codebooks):
            q = i % cfg.codebooks
            ctx = ids[-(cfg.context - 1) :]
            if len(ids) > cfg.context - 1:  # keep the tag in front of a sliding window
                ctx = [ids[0], *ids[-(cfg.context - 2) :]]
            logits = model(torch.tensor([ctx]))[0, -1] / temperature
            lo = q * cfg.codebook_size
            allowed = logits[lo : lo + cfg.codebook_size]
            pick = torch.multinomial(torch.softmax(allowed, -1), 1, generator=gen)
            ids.append(lo + int(pick))
    return unflatten(np.asarray(ids[1:]), cfg)


def save_prior(model: torch.nn.Module, folder: str | Path) -> Path:
    from musegen.audio.synth import save_network

    config = {"kind": "code-prior", "tags": list(TAGS), **asdict(model.cfg)}
    return save_network(model, folder, config)


def load_prior(folder: str | Path) -> torch.nn.Module:
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        data = json.loads((folder / "config.json").read_text())
        if data.get("kind") != "code-prior":
            raise InputError(folder, "not a prior folder (config.json kind is not code-prior)")
        known = {k: v for k, v in data.items() if k in PriorConfig.__dataclass_fields__}
        model = build_prior(PriorConfig(**known))
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
    except (OSError, ValueError, TypeError, RuntimeError) as e:
        raise InputError(folder, f"cannot load the prior ({e})") from e
    return model.eval()


def generate_audio(
    folder: str | Path, seconds: float, tag: str = "none", seed: int = 0
) -> tuple[np.ndarray, int]:
    """``seconds`` of audio from a codec-prior run folder (``codec/`` and ``prior/``)."""
    import torch

    from musegen.audio.codec import load_codec

    folder = Path(folder)
    if (
        not (folder / "codec" / "config.json").is_file()
        or not (folder / "prior" / "config.json").is_file()
    ):
        raise InputError(folder, "not a codec-prior folder (want codec/ and prior/ inside)")
    codec = load_codec(folder / "codec")
    prior = load_prior(folder / "prior")
    frames = max(1, round(seconds * codec.cfg.sample_rate / codec.cfg.hop))
    codes = sample(prior, frames, tag, seed)
    with torch.no_grad():
        audio = codec.decode(torch.as_tensor(codes)[None])[0].numpy()
    return audio, codec.cfg.sample_rate


def train_codec_and_prior(run: dict[str, Any], out: str | Path, log: Any = print) -> dict[str, Any]:
    """A run file's two stages: the codec on SoundFont renders (``out/codec``), then the prior
    on the codes of the same renders, tagged by instrument (``out/prior``)."""
    import torch

    from musegen.audio.codec import TrainCodecConfig, render_corpus, train_codec
    from musegen.utils import atomic_write_text

    out = Path(out)
    codec_run = TrainCodecConfig.from_dict(run.get("codec", {}))
    p = dict(run.get("prior", {}))
    prior_run = TrainPriorConfig(prior=PriorConfig(**p.pop("model", {})), **p)
    cfg = codec_run.codec
    if (
        prior_run.prior.codebook_size != cfg.codebook_size
        or prior_run.prior.codebooks > cfg.codebooks
    ):
        raise MusegenError("the prior's codebooks must be the codec's (size, and at most as many)")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "run.json", json.dumps(run, indent=2) + "\n")
    clips = render_corpus(
        codec_run.sources, "train", codec_run.pieces, codec_run.piece_seconds, cfg.sample_rate
    )
    log(f"rendered {len(clips)} training pieces")
    summary = {"codec": train_codec(codec_run, out / "codec", clips)}
    from musegen.audio.codec import load_codec

    codec = load_codec(out / "codec")
    sequences = []
    with torch.no_grad():
        for audio, program in clips:
            n = len(audio) // cfg.hop * cfg.hop
            codes = codec.encode(torch.as_tensor(audio[:n])[None], prior_run.prior.codebooks)[0]
            sequences.append(
                (flatten(codes.numpy(), prior_run.prior), PROGRAM_TAG.get(program, "none"))
            )
    summary["prior"] = train_prior(prior_run, sequences, out / "prior")
    log(json.dumps(summary))
    return summary
