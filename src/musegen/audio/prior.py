"""A small transformer prior over the codec's codes (Jukebox / MusicGen in miniature).

Sequence: a tag token (an instrument: ``piano``, ``organ``, or ``none`` for unconditional),
then the codes of the first ``codebooks`` codebooks frame by frame (frame-major: frame 1's
codebook 1, 2, ..., frame 2's ...; MusicGen's "flattening" pattern), codebook ``q``'s codes
offset by ``q x codebook_size`` so each codebook has its own ids. A causal transformer
(pre-norm, learned positions) predicts the next id; sampling masks every id outside the
codebook whose turn it is and runs on a key/value cache (equal to the full forward, tested).
Past ``context`` ids the window slides: the cache is rebuilt from the tag and the last half
context, whole frames. Training drops the tag to ``none`` for a share of windows, so one model
serves both.

The prior's ``config.json`` names its codec (``codec``: a shipped name, or a folder relative to
the prior's); :func:`generate_audio` samples codes and decodes them with it.
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

KIND = "code-prior"
TAGS = ("none", "piano", "organ")
PROGRAM_TAG = {0: "piano", 19: "organ"}
DEFAULT_PRIOR = "audio-prior"
PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"


@dataclass
class PriorConfig:
    codebooks: int = 4
    codebook_size: int = 256
    context: int = 384
    dim: int = 128
    layers: int = 3
    heads: int = 4

    @property
    def vocab(self) -> int:
        return self.codebooks * self.codebook_size + len(TAGS)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PriorConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def build_prior(cfg: PriorConfig) -> torch.nn.Module:
    import torch
    from torch import nn
    from torch.nn import functional as F

    if cfg.dim % cfg.heads:
        raise MusegenError(f"prior dim {cfg.dim} is not a multiple of its {cfg.heads} heads")

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1 = nn.LayerNorm(cfg.dim)
            self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
            self.proj = nn.Linear(cfg.dim, cfg.dim)
            self.ln2 = nn.LayerNorm(cfg.dim)
            self.mlp = nn.Sequential(
                nn.Linear(cfg.dim, 4 * cfg.dim), nn.GELU(), nn.Linear(4 * cfg.dim, cfg.dim)
            )

        def forward(self, x: torch.Tensor, cache: list[torch.Tensor] | None) -> torch.Tensor:
            n, t, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).reshape(n, t, 3, cfg.heads, d // cfg.heads).unbind(2)
            q, k, v = (a.transpose(1, 2) for a in (q, k, v))  # (N, heads, T, d/heads)
            if cache is not None:
                if cache:  # keys and values of the ids before these
                    k = torch.cat([cache[0], k], dim=2)
                    v = torch.cat([cache[1], v], dim=2)
                cache[:] = [k, v]
            causal = t > 1  # one new id attends to everything before it
            if causal and k.shape[2] != t:
                raise ValueError("several new ids with a non-empty cache are not supported")
            att = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            x = x + self.proj(att.transpose(1, 2).reshape(n, t, d))
            return x + self.mlp(self.ln2(x))

    class Prior(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cfg = cfg
            self.tok = nn.Embedding(cfg.vocab, cfg.dim)
            self.pos = nn.Embedding(cfg.context, cfg.dim)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.layers))
            self.norm = nn.LayerNorm(cfg.dim)
            self.head = nn.Linear(cfg.dim, cfg.vocab)

        def forward(
            self, ids: torch.Tensor, cache: list[list[torch.Tensor]] | None = None
        ) -> torch.Tensor:
            """Logits ``(N, T, vocab)`` of ids ``(N, T)``; with ``cache`` (one list per layer,
            empty at first) the ids continue the cached ones and their keys are added."""
            start = cache[0][0].shape[2] if cache and cache[0] else 0
            pos = torch.arange(start, start + ids.shape[1])
            x = self.tok(ids) + self.pos(pos)[None]
            for i, block in enumerate(self.blocks):
                x = block(x, None if cache is None else cache[i])
            return self.head(self.norm(x))

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


# --------------------------------------------------------------------------- training
@dataclass
class TrainPriorConfig:
    prior: PriorConfig = field(default_factory=PriorConfig)
    pieces: int = 80  # per instrument, train split, rendered and encoded by the codec
    piece_seconds: float = 30.0
    valid_pieces: int = 4
    steps: int = 1000
    batch: int = 8
    lr: float = 1e-3
    uncond: float = 0.2  # share of windows whose tag is dropped to "none"
    valid_every: int = 200
    precision: str = "fp32"  # or "bf16" (autocast; for CPUs with AMX)
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainPriorConfig:
        d = dict(d)
        prior = PriorConfig.from_dict(d.pop("model", {}))
        reject_unknown(d, cls.__dataclass_fields__, "prior run settings")
        return cls(prior=prior, **d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def windows(
    sequences: list[tuple[np.ndarray, str]],
    cfg: PriorConfig,
    count: int,
    rng: np.random.Generator,
    uncond: float,
) -> np.ndarray:
    """``count`` training rows ``(count, context)``: a tag id, then a window of ids starting
    at a frame boundary of a random sequence."""
    window = cfg.context - 1
    rows = []
    for _ in range(count):
        seq, tag = sequences[int(rng.integers(len(sequences)))]
        frame = int(rng.integers(0, (len(seq) - window) // cfg.codebooks + 1))
        start = frame * cfg.codebooks
        t = "none" if rng.random() < uncond else tag
        rows.append(np.concatenate([[tag_id(cfg, t)], seq[start : start + window]]))
    return np.stack(rows)


def sequence_loss(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats per code) of each id after the tag given those before it."""
    import torch

    logits = model(ids[:, :-1])
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, model.cfg.vocab).float(), ids[:, 1:].reshape(-1)
    )


def train_prior(
    run: TrainPriorConfig,
    sequences: list[tuple[np.ndarray, str]],
    out: str | Path,
    valid: list[tuple[np.ndarray, str]] | None = None,
    extra: dict[str, Any] | None = None,
    log: Any = print,
    resume: bool = False,
) -> dict[str, Any]:
    """Train on ``(flat ids, tag)`` sequences; with ``valid`` keep the weights with the lowest
    validation loss (fixed windows, tags kept), else the last. Saves to ``out`` with
    ``extra`` in its config (e.g. the codec it belongs to). The whole state goes to
    ``out/checkpoint`` every ``valid_every`` steps (Ctrl-C saves it too and stops);
    ``resume`` goes on from there."""
    import torch

    from musegen.checkpoint import (
        load_training_state,
        resumable_steps,
        run_checkpoint,
        save_training_state,
    )
    from musegen.utils import atomic_write_text

    ckpt = run_checkpoint(out, resume, f"{out} already holds a prior run")

    cfg = run.prior
    rng = np.random.default_rng(run.seed)
    torch.manual_seed(run.seed)
    window = cfg.context - 1
    usable = [(s, t) for s, t in sequences if len(s) > window]
    if not usable:
        raise MusegenError(f"no code sequence longer than {window} ids")
    valid_rows = None
    held = [(s, t) for s, t in valid or [] if len(s) > window]
    if held:
        valid_rows = torch.as_tensor(windows(held, cfg, 32, np.random.default_rng(1), 0.0))
    model = build_prior(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=run.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, run.lr, total_steps=run.steps, pct_start=0.05)
    t0 = time.perf_counter()
    out = Path(out)
    state: dict[str, Any] = {"step": 0, "best": math.inf, "best_step": 0, "lines": [], "loss": 0.0}
    if resume:
        state, _ = load_training_state(ckpt, model, opt, sched, rng, run.to_dict(), log)
    lines = state["lines"]

    def save() -> None:
        save_training_state(ckpt, model, opt, sched, rng, state, run.to_dict())

    for s in resumable_steps(run.steps, run.valid_every, state, ckpt, save, "train prior"):
        model.train()
        ids = torch.as_tensor(windows(usable, cfg, run.batch, rng, run.uncond))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=run.precision == "bf16"):
            loss = sequence_loss(model, ids)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        state["loss"] = float(loss.detach())
        if valid_rows is not None and s.due:
            model.eval()
            with torch.no_grad():
                v = float(sequence_loss(model, valid_rows))
            line = {
                "step": s.number,
                "train_loss": round(float(loss.detach()), 4),
                "valid_loss": round(v, 4),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            lines.append(json.dumps(line))
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "log.jsonl", "\n".join(lines) + "\n")
            s.bar.set_postfix(loss=f"{float(loss.detach()):.3f}", valid=f"{v:.3f}")
            if v < state["best"]:
                state["best"], state["best_step"] = v, s.number
                trained = {"trained": {"step": s.number, "valid_loss": round(v, 4)}}
                save_prior(model, out, {**(extra or {}), **trained})
    best, best_step = state["best"], state["best_step"]
    if valid_rows is None:
        save_prior(model, out, extra)
    summary = {
        "loss": round(state["loss"], 4),
        "best_valid_loss": round(best, 4) if valid_rows is not None else None,
        "best_step": best_step,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    log(json.dumps(summary))
    return summary


# --------------------------------------------------------------------------- sampling
def sample(
    model: torch.nn.Module, frames: int, tag: str = "none", seed: int = 0, temperature: float = 1.0
) -> np.ndarray:
    """Codes ``(codebooks, frames)`` drawn from the prior on its key/value cache; past
    ``context`` ids the cache is rebuilt from the tag and the last half context."""
    import torch

    cfg: PriorConfig = model.cfg
    if temperature <= 0:
        raise MusegenError(f"temperature must be positive, got {temperature}")
    gen = torch.Generator().manual_seed(seed)
    head = tag_id(cfg, tag)
    ids: list[int] = []
    keep = (cfg.context // 2) // cfg.codebooks * cfg.codebooks  # whole frames
    with torch.no_grad():
        cache: list[list[torch.Tensor]] = [[] for _ in range(cfg.layers)]
        logits = model(torch.tensor([[head]]), cache)[0, -1]
        for i in range(frames * cfg.codebooks):
            q = i % cfg.codebooks
            lo = q * cfg.codebook_size
            allowed = logits[lo : lo + cfg.codebook_size].float() / temperature
            pick = lo + int(torch.multinomial(torch.softmax(allowed, -1), 1, generator=gen))
            ids.append(pick)
            if i + 1 == frames * cfg.codebooks:
                break
            if cache[0][0].shape[2] + 1 > cfg.context:  # slide: the tag, then whole frames
                cache = [[] for _ in range(cfg.layers)]
                tail = ids[-(keep + q + 1) :]
                logits = model(torch.tensor([[head, *tail]]), cache)[0, -1]
            else:
                logits = model(torch.tensor([[pick]]), cache)[0, -1]
    return unflatten(np.asarray(ids), cfg)


# --------------------------------------------------------------------------- saving/loading
def save_prior(
    model: torch.nn.Module, folder: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    from musegen.audio.synth import save_network

    config = {"model": KIND, "kind": KIND, "tags": list(TAGS), **asdict(model.cfg), **(extra or {})}
    return save_network(model, folder, config)


def load_prior(folder: str | Path) -> torch.nn.Module:
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        data = json.loads((folder / "config.json").read_text())
        if data.get("kind") != KIND:
            raise InputError(folder, f"not a prior folder (config.json kind is not {KIND})")
        model = build_prior(PriorConfig.from_dict(data))
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
    except (OSError, ValueError, TypeError, RuntimeError) as e:
        raise InputError(folder, f"cannot load the prior ({e})") from e
    return model.eval()


def resolve_prior(ref: str | Path | None = None) -> tuple[Path, Path]:
    """The prior and codec folders of a reference: a shipped prior's name (default
    ``audio-prior``), a prior folder (its config names its codec, else ``../codec``), or a
    ``train-codec`` run folder (``prior/`` and ``codec/`` inside)."""
    ref = ref or DEFAULT_PRIOR
    path = Path(ref).expanduser()
    shipped = PRETRAINED / str(ref)
    if "/" not in str(ref) and (shipped / "config.json").is_file() and not path.exists():
        path = shipped
    if not path.exists():
        raise InputError(
            ref,
            "no such folder: give a prior folder, a train-codec run folder or a shipped "
            "prior (audio-prior)",
        )
    if (path / "prior" / "config.json").is_file():
        path = path / "prior"
    if not (path / "config.json").is_file():
        raise InputError(
            ref,
            "not a codec prior: give a shipped prior (audio-prior), a prior folder or a "
            "train-codec run folder (prior/ and codec/ inside)",
        )
    try:
        named = json.loads((path / "config.json").read_text()).get("codec")
    except (OSError, ValueError) as e:
        raise InputError(path / "config.json", f"unreadable prior config ({e})") from e
    codec = path.parent / "codec"
    if named:
        codec = (
            PRETRAINED / named if (PRETRAINED / named / "config.json").is_file() else path / named
        )
    if not (codec / "config.json").is_file():
        raise InputError(path, f"the prior's codec is missing (looked in {codec})")
    return path, codec


def generate_audio(
    ref: str | Path | None,
    seconds: float,
    tag: str = "none",
    seed: int = 0,
    temperature: float = 1.0,
) -> tuple[np.ndarray, int]:
    """``seconds`` of mono audio from a codec prior (:func:`resolve_prior`) and its rate."""
    import torch

    from musegen.audio.codec import load_codec

    prior_dir, codec_dir = resolve_prior(ref)
    codec = load_codec(codec_dir)
    prior = load_prior(prior_dir)
    if prior.cfg.codebook_size != codec.cfg.codebook_size:
        raise InputError(prior_dir, "the prior's codebook size is not its codec's")
    frames = max(1, math.ceil(seconds * codec.cfg.frame_rate))
    codes = sample(prior, frames, tag, seed, temperature)
    with torch.no_grad():
        audio = codec.decode(torch.as_tensor(codes)[None], seed)[0].numpy()
    return audio[: round(seconds * codec.cfg.sample_rate)], codec.cfg.sample_rate


# --------------------------------------------------------------------------- the run
def encode_clips(
    codec: torch.nn.Module, clips: list[tuple[np.ndarray, int]], cfg: PriorConfig
) -> list[tuple[np.ndarray, str]]:
    """Flat code ids and instrument tag of each rendered clip."""
    import torch

    hop = codec.cfg.code_hop
    out = []
    with torch.no_grad():
        for audio, program in clips:
            n = len(audio) // hop * hop
            codes = codec.encode(torch.as_tensor(audio[:n])[None], cfg.codebooks)[0]
            out.append((flatten(codes.numpy(), cfg), PROGRAM_TAG.get(program, "none")))
    return out


def train_codec_and_prior(
    run: dict[str, Any],
    out: str | Path,
    log: Any = print,
    stages: str = "both",
    resume: bool = False,
) -> dict[str, Any]:
    """A run file's two stages: the codec on SoundFont renders (``out/codec``), then the prior
    on the codes of (more) renders, tagged by instrument (``out/prior``). ``stages``:
    ``both``, ``codec`` or ``prior`` (the prior on an existing ``out/codec``). ``resume``: a
    stage whose checkpoint is at its last step is done, one stopped halfway goes on from its
    checkpoint, one not begun begins."""
    from musegen.audio.codec import TrainCodecConfig, load_codec, render_corpus, train_codec
    from musegen.checkpoint import CHECKPOINT, has_training_state, saved_step
    from musegen.utils import atomic_write_text

    if stages not in ("both", "codec", "prior"):
        raise MusegenError(f"stages must be both, codec or prior, got {stages!r}")
    out = Path(out)
    codec_run = TrainCodecConfig.from_dict(run.get("codec", {}))
    prior_run = TrainPriorConfig.from_dict(run.get("prior", {}))
    cfg = codec_run.codec
    if (
        prior_run.prior.codebook_size != cfg.codebook_size
        or prior_run.prior.codebooks > cfg.codebooks
    ):
        raise MusegenError("the prior's codebooks must be the codec's (size, and at most as many)")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "run.json", json.dumps(run, indent=2) + "\n")
    summary: dict[str, Any] = {}
    if stages != "prior":
        ckpt = out / "codec" / CHECKPOINT
        if resume and saved_step(ckpt) == codec_run.steps:
            log(f"codec: trained already ({ckpt} is at step {codec_run.steps})")
        else:
            go_on = resume and has_training_state(ckpt)
            summary["codec"] = train_codec(codec_run, out / "codec", log=log, resume=go_on)
    if stages == "codec":
        return summary
    ckpt = out / "prior" / CHECKPOINT
    if resume and saved_step(ckpt) == prior_run.steps:
        log(f"prior: trained already ({ckpt} is at step {prior_run.steps})")
        return summary
    codec = load_codec(out / "codec")
    rate = cfg.sample_rate
    train = render_corpus(
        codec_run.sources, "train", prior_run.pieces, prior_run.piece_seconds, rate
    )
    valid = render_corpus(
        codec_run.sources, "valid", prior_run.valid_pieces, prior_run.piece_seconds, rate
    )
    log(f"rendered {len(train)} train and {len(valid)} valid pieces for the prior")
    summary["prior"] = train_prior(
        prior_run,
        encode_clips(codec, train, prior_run.prior),
        out / "prior",
        encode_clips(codec, valid, prior_run.prior),
        extra={"codec": "../codec"},
        log=log,
        resume=resume and has_training_state(ckpt),
    )
    log(json.dumps(summary))
    return summary
