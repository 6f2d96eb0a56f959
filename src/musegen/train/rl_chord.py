"""RL-Chord: pretrain the ``chord-lstm`` model on Nottingham's melodies and chords, then tune
it with harmonic rewards by the KL-regularised REINFORCE of :mod:`musegen.train.rl`.

Data: the Nottingham rolls (Boulanger-Lewandowski 2012 split, eighth-note frames, already in
C major or C minor; each piece is moved so its Krumhansl-Schmuckler tonic is C all the same).
In each frame the highest note at or above :data:`MELODY_LOW` is the melody; the other notes
are the accompaniment, and each beat's chord is the template (:data:`~musegen.models.
chord_lstm.CHORD_NAMES`) that best fits the accompaniment's pitch classes in the beat
(:func:`musegen.theory.best_chords`).

Pretraining: cross-entropy of each beat's chord given the melody and the chords before it,
AdamW, the model with the lowest valid loss kept. The chord bigram of the training split
(add-one smoothed log-probabilities) is stored in the model (the progression reward).

Tuning: for each of ``melodies`` training melodies per step the policy draws ``samples``
chord sequences; each gets ``fit + progression + cadence`` (:mod:`musegen.metrics.
harmonization`; progression: the mean bigram log-probability of its chord changes, scaled by
``progression_weight``), minus ``kl`` times the sum over beats of log(policy / pretrained);
the baseline of a draw is the mean of the other draws for the same melody (leave one out).

Checkpoints: once pretraining is done its model is saved (``OUT/base``) and the tuning's whole
state (policy, optimizer, random states, log rows) goes to ``OUT/checkpoint`` at the start and
every :data:`CHECKPOINT_EVERY` steps; Ctrl-C or SIGTERM finishes the step, saves and stops;
``--resume`` skips the pretraining and goes on, ending with the weights an uninterrupted run
ends with.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musegen.errors import Interrupted, MusegenError

MELODY_LOW = 60
FRAMES_PER_BEAT = 2  # the rolls' eighth notes
CHECKPOINT_EVERY = 10  # tuning steps between checkpoints


@dataclass
class RLChordConfig:
    hidden: int = 128
    pretrain_epochs: int = 30
    pretrain_lr: float = 3e-3
    batch_size: int = 32
    window: int = 1024  # beats per training window (whole pieces, almost all)
    rl_steps: int = 150
    melodies: int = 8  # melodies per RL step
    samples: int = 4  # chord draws per melody
    rl_lr: float = 3e-4
    kl: float = 0.05
    progression_weight: float = 0.2
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- data
def piece_from_roll(roll: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(melody per frame with -1 rests, chord id per beat) of one Nottingham roll, moved to
    C; None when it has no melody."""
    from musegen.models.chord_lstm import CHORDS, NO_CHORD, QUALITIES
    from musegen.theory import ChordVocabulary, best_chords, find_key

    low = 21
    T = len(roll) - len(roll) % FRAMES_PER_BEAT
    if T < FRAMES_PER_BEAT:
        return None
    melody = np.full(T, -1, dtype=np.int64)
    acc = np.zeros((T // FRAMES_PER_BEAT, 12))
    for f in range(T):
        keys = np.flatnonzero(roll[f]) + low
        if len(keys) and keys.max() >= MELODY_LOW:
            melody[f] = keys.max()
            keys = keys[:-1]
        np.add.at(acc[f // FRAMES_PER_BEAT], keys % 12, 1.0)
    if (melody < 0).all():
        return None
    weights = np.zeros(12)
    np.add.at(weights, melody[melody >= 0] % 12, 1.0)
    key = find_key(weights + acc.sum(axis=0))
    shift = -key[0] % 12 if key is not None else 0
    melody = np.where(melody >= 0, melody + shift, -1)
    acc = np.roll(acc, shift, axis=1)
    best = best_chords(acc, vocabulary=ChordVocabulary(QUALITIES))
    chords = np.where(best >= 0, best, NO_CHORD)
    assert chords.max() < CHORDS
    return melody, chords


def nottingham(split: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every piece of a Nottingham split as (melody frames, chord ids)."""
    from musegen.data.sources import get_source

    rolls = get_source("nottingham").rolls()[split]
    return [p for p in (piece_from_roll(r) for r in rolls) if p is not None]


def features(melody: np.ndarray) -> np.ndarray:
    from musegen.sampling.rl_chord import frame_features

    return frame_features(melody, FRAMES_PER_BEAT)


def bigram(pieces: list[tuple[np.ndarray, np.ndarray]]) -> torch.Tensor:
    """Add-one log-probabilities ``[CHORDS + 1, CHORDS]`` of each chord after each (row
    ``CHORDS``: the first chord)."""
    from musegen.models.chord_lstm import CHORDS

    counts = np.ones((CHORDS + 1, CHORDS))
    for _, chords in pieces:
        counts[CHORDS, chords[0]] += 1
        np.add.at(counts, (chords[:-1], chords[1:]), 1)
    return torch.from_numpy(np.log(counts / counts.sum(axis=1, keepdims=True))).float()


def windows(
    pieces: list[tuple[np.ndarray, np.ndarray]], window: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features, chords and a validity mask cut into windows of ``window`` beats (the last
    of a piece padded)."""
    from musegen.models.chord_lstm import FEATURES

    xs, ys, ms = [], [], []
    for melody, chords in pieces:
        f = features(melody)
        for s in range(0, len(chords), window):
            n = min(window, len(chords) - s)
            x = np.zeros((window, FEATURES), dtype=np.float32)
            y = np.zeros(window, dtype=np.int64)
            x[:n], y[:n] = f[s : s + n], chords[s : s + n]
            m = np.zeros(window, dtype=bool)
            m[:n] = True
            xs.append(x), ys.append(y), ms.append(m)
    return (
        torch.from_numpy(np.stack(xs)),
        torch.from_numpy(np.stack(ys)),
        torch.from_numpy(np.stack(ms)),
    )


def _loss(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, m: torch.Tensor
) -> torch.Tensor:
    logits, _ = model(x, y, m.sum(1))
    return torch.nn.functional.cross_entropy(logits[m], y[m])


# ----------------------------------------------------------------------------- pretraining
def pretrain(
    cfg: RLChordConfig, train: list, valid: list, log: Any = print
) -> tuple[torch.nn.Module, dict[str, float]]:
    """The pretrained model (lowest valid loss) and its losses."""
    from musegen.models import build_model

    torch.manual_seed(cfg.seed)
    model = build_model("chord-lstm", hidden=cfg.hidden)
    model.bigram.copy_(bigram(train))
    x, y, m = windows(train, cfg.window)
    vx, vy, vm = windows(valid, cfg.window)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.pretrain_lr, weight_decay=0.01)
    rng = np.random.default_rng(cfg.seed)
    best, best_state = math.inf, None
    for epoch in range(cfg.pretrain_epochs):
        model.train()
        by_length = np.argsort(m.sum(1).numpy(), kind="stable")  # batches of alike lengths
        batches = [by_length[b : b + cfg.batch_size] for b in range(0, len(x), cfg.batch_size)]
        for k in rng.permutation(len(batches)):
            i = torch.from_numpy(batches[k])
            n = int(m[i].sum(1).max())
            i_x, i_y, i_m = x[i, :n], y[i, :n], m[i, :n]
            loss = _loss(model, i_x, i_y, i_m)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        model.eval()
        with torch.no_grad():
            valid_loss = float(_loss(model, vx, vy, vm))
        log(f"pretrain epoch {epoch + 1}: valid loss {valid_loss:.4f}")
        if valid_loss < best:
            best, best_state = valid_loss, {k: v.clone() for k, v in model.state_dict().items()}
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    return model, {"valid_loss": best}


# ----------------------------------------------------------------------------- rewards
def harmonic_rewards(
    melody: np.ndarray, chords: np.ndarray, table: torch.Tensor, weight: float
) -> dict[str, float]:
    """fit, progression and cadence of one draw (in C), and their sum."""
    from musegen.metrics.harmonization import cadence_reward, fit_reward
    from musegen.models.chord_lstm import CHORDS
    from musegen.sampling.rl_chord import harmonization

    h = harmonization(melody, chords, FRAMES_PER_BEAT)
    prev = np.concatenate([[CHORDS], chords[:-1]])
    changes = np.flatnonzero(prev != chords)
    progression = float(table[prev[changes], chords[changes]].mean()) if len(changes) else 0.0
    out = {"fit": fit_reward(h), "progression": weight * progression, "cadence": cadence_reward(h)}
    out["total"] = sum(out.values())
    return out


def log_probs(
    model: torch.nn.Module, x: torch.Tensor, chords: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    logits, _ = model(x, chords, lengths)
    return torch.log_softmax(logits.float(), -1).gather(-1, chords[..., None])[..., 0]


# ----------------------------------------------------------------------------- tuning
def tune(
    cfg: RLChordConfig,
    base: torch.nn.Module,
    train: list,
    folder: Path,
    resume: bool = False,
    log: Any = print,
) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    """The policy after ``rl_steps`` steps (see the module docstring) and its log rows; the
    state is checkpointed in ``folder`` (``resume``: read back from there first)."""
    import copy

    from musegen.checkpoint import load_training_state, resumable_steps, save_training_state

    policy = copy.deepcopy(base)
    base.requires_grad_(False)
    policy.eval()  # no dropout: the distribution the draws came from
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.rl_lr, weight_decay=0.0)
    rng = np.random.default_rng(cfg.seed + 1)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    state: dict[str, Any] = {"step": 0, "rows": []}
    if resume:
        state, extra = load_training_state(folder, policy, opt, None, rng, cfg.to_dict(), log)
        gen.set_state(extra["generator"])
    rows = state["rows"]

    def save() -> None:
        extra = {"generator": gen.get_state()}
        save_training_state(folder, policy, opt, None, rng, state, cfg.to_dict(), extra)

    if not resume:
        save()  # the tuning's start: a resume after the pretraining need not redo it
    long_enough = [p for p in train if len(p[1]) >= 16]
    steps = resumable_steps(cfg.rl_steps, CHECKPOINT_EVERY, state, folder, save, "tune", False)
    for s in steps:
        step = s.number - 1
        t0 = time.perf_counter()
        picks = rng.choice(len(long_enough), cfg.melodies, replace=False)
        melodies = [long_enough[k][0] for k in picks]
        feats = [features(m) for m in melodies]
        T = max(len(f) for f in feats)
        x = torch.zeros((len(feats), T, feats[0].shape[1]))
        valid = torch.zeros((len(feats), T), dtype=torch.bool)
        for i, f in enumerate(feats):
            x[i, : len(f)] = torch.from_numpy(f)
            valid[i, : len(f)] = True
        x = x.repeat_interleave(cfg.samples, 0)  # rows: melody-major, its draws together
        valid = valid.repeat_interleave(cfg.samples, 0)
        lengths = valid.sum(1)
        draws = policy.sample(x, gen, 1.0, lengths)
        lp = torch.where(valid, log_probs(policy, x, draws, lengths), 0.0)
        with torch.no_grad():
            ref = torch.where(valid, log_probs(base, x, draws, lengths), 0.0)
        parts = [
            harmonic_rewards(
                melodies[r // cfg.samples],
                draws[r, : int(valid[r].sum())].numpy(),
                policy.bigram,
                cfg.progression_weight,
            )
            for r in range(len(draws))
        ]
        reward = torch.tensor([v["total"] for v in parts]).view(cfg.melodies, cfg.samples)
        beats = valid.sum(1).float()
        piece_kl = (lp.detach() - ref).sum(1).view(cfg.melodies, cfg.samples)
        regularised = reward - cfg.kl * piece_kl
        baseline = (regularised.sum(1, keepdim=True) - regularised) / (cfg.samples - 1)
        advantage = (regularised - baseline).view(-1)
        loss = -(advantage * lp.sum(1) / beats).sum() / len(draws)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        totals = [float(reward.mean())]
        kl_rows = [float(piece_kl.sum() / beats.sum())]
        row = {
            "step": step + 1,
            "reward": float(np.mean(totals)),
            "kl_per_beat": float(np.mean(kl_rows)),
        }
        row |= {k: float(np.mean([v[k] for v in parts])) for k in ("fit", "progression", "cadence")}
        row["seconds"] = round(time.perf_counter() - t0, 3)
        rows.append(row)
        if (step + 1) % 10 == 0 or step == 0:
            log(json.dumps(row))
    return policy, rows


def train_rl_chord(
    cfg: RLChordConfig, out: str | Path, log: Any = print, resume: bool = False
) -> dict[str, Any]:
    """Pretrain and tune; write ``OUT/base`` (pretrained) and ``OUT/rl-chord`` (tuned) as
    model folders, and ``OUT/log.jsonl``; ``resume``: go on from ``OUT/checkpoint``."""
    from musegen.checkpoint import run_checkpoint
    from musegen.models import load_model, save_model
    from musegen.utils import atomic_write_text

    out = Path(out)
    folder = run_checkpoint(out, resume, f"{out} already holds an RL-Chord run")
    out.mkdir(parents=True, exist_ok=True)
    train, valid = nottingham("train"), nottingham("valid")
    if not train or not valid:
        raise MusegenError("no Nottingham pieces to train on")
    if resume:  # the checkpoint is written once the pretrained model is saved
        base, saved = load_model(out / "base")
        losses = {"valid_loss": saved["valid_loss"]}
    else:
        base, losses = pretrain(cfg, train, valid, log)
    meta = {
        "description": "RL-Chord: a chord per beat under a melody (Nottingham)",
        "rl_chord": cfg.to_dict(),
        **losses,
    }
    if not resume:
        description = meta["description"] + ", pretrained (no RL)"
        save_model(base, out / "base", {**meta, "description": description})
    policy, rows = tune(cfg, base, train, folder, resume, log)
    save_model(
        policy,
        out / "rl-chord",
        {**meta, "description": meta["description"] + ", tuned with harmonic rewards"},
    )
    atomic_write_text(out / "log.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return {"out": str(out), **losses, "last": rows[-1] if rows else {}}


def main(argv: list[str] | None = None) -> int:
    """``python -m musegen.train.rl_chord --config configs/rl-chord.json --out runs/rl-chord``."""
    import argparse

    p = argparse.ArgumentParser(description="Pretrain and tune RL-Chord on Nottingham.")
    p.add_argument("--config", help="JSON object of RLChordConfig settings")
    p.add_argument("--out", default="runs/rl-chord")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--resume", action="store_true", help="go on from OUT/checkpoint")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        settings = json.loads(Path(args.config).read_text()) if args.config else {}
        cfg = RLChordConfig(**settings)
    except (OSError, ValueError, TypeError) as e:  # unreadable file, bad JSON, unknown key
        print(f"rl_chord: error: --config {args.config}: {e}", file=sys.stderr)
        return 2
    print(f"settings: {json.dumps(cfg.to_dict())}", flush=True)
    try:
        summary = train_rl_chord(cfg, args.out, lambda s: print(s, flush=True), args.resume)
    except MusegenError as e:
        print(f"rl_chord: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"rl_chord: interrupted: {e}", file=sys.stderr)
        return 130
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
