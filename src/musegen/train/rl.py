"""Reinforcement learning with rewards: KL-regularised policy-gradient fine-tuning of any token
model (RL Tuner, Jaques et al. 2017), the frozen original as the KL anchor.

Each step the policy (a copy of the model being tuned) writes a batch of pieces with the
project's sampler (:func:`musegen.sampling.generate.generate`: the grammar masks every token
the tokenizer forbids, so each piece decodes); each decoded piece gets the sum of the rewards
(:mod:`musegen.metrics.rewards`), and the policy's log-probabilities of the tokens it drew are
pushed up or down by how much better the piece did than the others of its batch.

The objective is RL Tuner's KL-control one: maximise ``E[R(x)] - kl * KL(policy || anchor)``
over whole pieces ``x``. Its exact score-function gradient is REINFORCE on the *regularised*
return ``R(x) - kl * sum_t log(policy(x_t) / anchor(x_t))`` (the k1 estimate of the KL of
the piece, held constant), which is what :meth:`RLTrainer.step` follows.

``credit="note"`` (``--credit note``) is RL Tuner's per-note credit instead: each note is
rewarded by the rules on the partial piece when it is written, on the token that writes it,
and each token follows its discounted return-to-go (``gamma``) of those rewards less ``kl``
times its own log-ratio, with a per-position leave-one-out baseline
(:mod:`musegen.train.rl_credit`). Two refinements of it: ``candidates`` (``--candidates``)
replaces the drawn token's own immediate reward, for the rules a note's pitch decides (key,
repetition, leaps, intervals), by its expectation over every pitch the policy could have
written in that state, ``sum_a policy(a) r(a)``, differentiated exactly (an all-action
gradient: the same objective, with a signal in every state where a rule could be broken,
not only where a drawn note broke it; rare faults such as a fifth repeated onset are learnt
from the states that risk them); ``shaping`` (``--shaping``) adds motif shaping
(:func:`musegen.metrics.rewards.note_rewards`), and ``weights`` (``--weights``) reweights
the parts of the ``theory`` reward. ``candidate_weights`` (``--candidate-weights``) weighs
the local rules in that exact expected term more than in the reward (e.g. repetition 1000
there, 100 in the returns): the objective gains the extra immediate reward of those rules,
credited to the state alone (discount 0), so it bears on the pitch chosen where a rule can
be broken and not, through the returns of the tokens before, on how many notes a piece has
or how long they are. ``exact_kl`` (``--exact-kl``) does for the KL penalty what
``candidates`` does for the rules: each token's own term ``-kl * log(policy / anchor)`` of
the token drawn leaves its return and the state's exact KL over every token the grammar
allows, ``kl * KL(policy(.|s) || anchor(.|s))``, is differentiated instead (the same
objective; the anchor pulls back at every state, not only through the noisy returns, so a
strong, consistent push at a few states does not drift the rest of the model).

Two guards against *thinning* (avoiding the rules by writing fewer notes: every local rule
is a penalty on a pitch token, and holding or resting earns 0, so the plain expected term
``sum_a policy(a) r(a)`` is also raised by moving probability from every pitch to holding).
``per_note_candidates`` (``--per-note-candidates``) takes that term per opportunity:
``P(note) * sum_a P(a | note) r(a)`` with ``P(note)`` held constant, the same value whose
gradient moves which pitch is written and never whether one is
(:func:`musegen.train.rl_credit.expected_given_note`). ``note_kl`` (``--note-kl``) adds,
at every state, that weight times the exact KL between the policy's and the anchor's chance
of writing a note there (:func:`musegen.train.rl_credit.note_choice_kl`), so the returns,
whose penalties still fall on notes, cannot trade notes for silence either. Each log row
gives the policy's and the anchor's mean chance of a note on the states drawn.

``target_kl`` (``--target-kl``) with ``rule_tilt`` (``--rule-tilt``) holds the pitch choice
while large candidate weights teach a rule. A candidate weight of 10,000-30,000 (several
hundred a broken rule at the state) gives gradients far larger than the KL's at a few states;
those runs were clipped in most steps and took more pitch classes and more notes out of key
(the Yang-Lerch overlap fell). The target term gives each state a target: the anchor's
distribution with every pitch that would break a local rule there weighed down by
``exp(-tilt)`` per rule, renormalised among the pitches so the chance of a note stays the
anchor's (:func:`musegen.train.rl_credit.tilted_target`; the closed-form optimum of the
KL-regularised objective for that state's immediate rule reward), and the loss adds
``target_kl * KL(target || policy)`` at every state drawn. Its gradient on the logits is
``policy - target``, bounded by 1 however hard the tilt; where no rule is at stake the target
is the anchor (with a ``key`` tilt: the anchor with fewer notes out of key), so the same term
holds the rest of the pitch choice. ``repeat_kl`` (``--repeat-kl``) adds the exact KL of the
chance of repeating the previous note's pitch, where the repetition rule is not at stake,
against the anchor's (:func:`musegen.train.rl_credit.repeat_choice`).

Why REINFORCE with a leave-one-out baseline (RLOO; Kool et al. 2019, Ahmadian et al. 2024)
rather than PPO: the reward is one number per piece, so a value network (PPO's critic, a
second model to train and tune) would have to learn per-token values from a single late
signal, while the mean return of the batch's other pieces is an unbiased baseline for free.
Each rollout is used once, on-policy, so there is no importance ratio to clip and nothing
stale: one forward and backward pass of the policy and one forward pass of the anchor per
batch. On a CPU the sampler dominates a step, and RLOO spends nothing beyond it; the sample
efficiency PPO buys by reusing rollouts for several epochs is a constant factor that its
clipping and critic make fiddly to realise, and the published comparisons on sequence models
(Ahmadian et al.) find RLOO as good or better.

The log-probabilities are those of the distribution the sampler drew from: the logits masked
by the tokenizer's grammar (replayed over each piece) and renormalised, at the sampling
temperature. The policy runs in eval mode (no dropout), so they are exactly the sampler's.

A run folder holds ``run.json`` (every setting and the seed), ``log.jsonl`` (one row per
step: rewards, KL per token, seconds) and ``checkpoint/`` (the tuned model, loadable as
``--model RUN``, plus the optimizer and the step; replaced atomically every
``checkpoint_every`` steps and at the end). Step ``s`` draws its pieces with a seed made from
``seed`` and ``s``, so ``--resume`` goes on exactly as an uninterrupted run would.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musegen.checkpoint import CHECKPOINT
from musegen.errors import MusegenError
from musegen.metrics.rewards import (
    LOCAL_PARTS,
    NOTE_WEIGHTS,
    Reward,
    load_rewards,
    theory_reward,
    theory_weights,
    total_reward,
)
from musegen.score import Score, TimeSignature
from musegen.tokenizers.base import BOS, EOS, PAD, Tokenizer
from musegen.utils import atomic_write_text

TOKENS_PER_BAR = 160  # new tokens allowed per bar of four quarters (as generate's cap)


@dataclass
class RLConfig:
    """Settings of an RL run (``musegen train rl``); saved in ``run.json``."""

    model: str = "folk"  # the model to tune, and the KL anchor (a shipped name or a folder)
    reward: str = "theory"  # --reward: comma-separated names / module:function
    kl: float = 0.1  # weight of KL(policy || anchor), nats per piece
    steps: int = 100
    batch_size: int = 16  # pieces per step
    lr: float = 2e-5
    bars: int = 8  # length of each piece (bar-countdown tokenizers; else a token cap)
    temperature: float = 1.0
    max_new_tokens: int = 0  # 0: from the bars
    seed: int = 0
    checkpoint_every: int = 10
    grad_clip: float = 1.0
    credit: str = "note"  # note: per-note rewards (rl_credit); piece: one reward a piece
    gamma: float = 0.9  # --credit note: discount of the per-token returns-to-go
    weights: dict[str, float] | None = None  # --weights: the theory reward's parts reweighted
    candidates: bool = False  # --credit note: every pitch's immediate reward (rl_credit)
    shaping: bool = False  # --credit note: motif shaping (rewards.note_rewards)
    candidate_weights: dict[str, float] | None = None  # --candidates: local parts' weights there
    exact_kl: bool = False  # --credit note: each token's own KL term by its exact expectation
    per_note_candidates: bool = False  # --candidates: moves which pitch, never whether a note
    note_kl: float = 0.0  # --credit note: weight of the exact KL of the note-or-not choice
    target_kl: float = 0.0  # --credit note: weight of KL(rule target || policy) per state
    rule_tilt: dict[str, float] | None = None  # --target-kl: local parts' log-factors there
    repeat_kl: float = 0.0  # --credit note: weight of the exact KL of repeating the last pitch
    progress: bool = True

    def __post_init__(self) -> None:
        checks = [
            (self.kl >= 0 and math.isfinite(self.kl), f"--kl must be >= 0, got {self.kl}"),
            (self.steps >= 1, f"--steps must be >= 1, got {self.steps}"),
            (self.batch_size >= 2, f"--batch-size must be >= 2 (a baseline needs two pieces), got {self.batch_size}"),
            (0 < self.lr < 1, f"--lr must be in (0, 1), got {self.lr}"),
            (1 <= self.bars <= 256, f"--bars must be 1..256, got {self.bars}"),
            (self.temperature > 0, f"--temperature must be > 0, got {self.temperature}"),
            (self.max_new_tokens >= 0, "--max-new-tokens must be >= 0"),
            (self.checkpoint_every >= 1, "--checkpoint-every must be >= 1"),
            (self.grad_clip > 0, "--grad-clip must be > 0"),
            (self.credit in ("piece", "note"), f"--credit must be piece or note, got {self.credit!r}"),
            (0 <= self.gamma <= 1, f"--gamma must be in [0, 1], got {self.gamma}"),
            (self.note_kl >= 0 and math.isfinite(self.note_kl), f"--note-kl must be >= 0, got {self.note_kl}"),
            (self.target_kl >= 0 and math.isfinite(self.target_kl), f"--target-kl must be >= 0, got {self.target_kl}"),
            (self.repeat_kl >= 0 and math.isfinite(self.repeat_kl), f"--repeat-kl must be >= 0, got {self.repeat_kl}"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise MusegenError(message)
        if self.weights is not None:
            if not isinstance(self.weights, dict):
                raise MusegenError("--weights must be part=weight pairs, e.g. repetition=30")
            theory_weights(self.weights)
        if self.candidate_weights is not None:
            _local_parts("--candidate-weights", self.candidate_weights, "weight")
            theory_weights(self.candidate_weights)
        if self.rule_tilt is not None:
            _local_parts("--rule-tilt", self.rule_tilt, "tilt")
            for name, w in self.rule_tilt.items():
                if not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
                    raise MusegenError(f"--rule-tilt: {name} must be a number >= 0, got {w!r}")
            if not self.target_kl:
                raise MusegenError("--rule-tilt shapes the target of --target-kl: add it")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RLConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise MusegenError(
                f"unknown RL setting(s) {', '.join(unknown)}; known: {sorted(names)}"
            )
        return cls(**d)


def _local_parts(option: str, given: object, what: str) -> None:
    """``given`` must map parts a note's pitch decides (:data:`LOCAL_PARTS`) to values."""
    if not isinstance(given, dict):
        raise MusegenError(f"{option} must be part={what} pairs, e.g. repetition=6")
    other = sorted(set(given) - set(LOCAL_PARTS))
    if other:
        raise MusegenError(
            f"{option}: {', '.join(other)} is not a part a note's pitch decides; "
            f"the parts: {', '.join(LOCAL_PARTS)}"
        )


def read_rl_file(path: str | Path) -> dict[str, Any]:
    """The settings of an RL run file (a JSON object of :class:`RLConfig` fields)."""
    try:
        settings = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MusegenError(f"{path}: cannot read the RL run file ({e})") from e
    if not isinstance(settings, dict):
        raise MusegenError(f"{path}: an RL run file is a JSON object of settings")
    RLConfig.from_dict(settings)  # unknown names and bad values: one line now
    return settings


def _hash_seed(*parts: int) -> int:
    from musegen.train.trainer import hash_seed

    return hash_seed(*parts) % (2**32)


class RLTrainer:
    """Tunes ``config.model`` (see the module docstring); :meth:`fit` runs it."""

    def __init__(
        self, config: RLConfig, out: str | Path, rewards: list[tuple[str, Reward]] | None = None
    ) -> None:
        from musegen.models import load_model
        from musegen.models.pretrained import resolve_model
        from musegen.tokenizers import tokenizer_from_dict

        self.cfg = config
        self.out = Path(out)
        self.rewards = rewards if rewards is not None else load_rewards(config.reward)
        self.note_weights = NOTE_WEIGHTS
        if config.weights:
            if "theory" not in [name for name, _ in self.rewards]:
                raise MusegenError("--weights reweights the theory reward: add it to --reward")
            weights = theory_weights(config.weights)
            self.note_weights = {**NOTE_WEIGHTS, "theory": weights}
            self.rewards = [
                (name, partial(theory_reward, weights=weights) if name == "theory" else fn)
                for name, fn in self.rewards
            ]
        if (
            config.candidates
            or config.shaping
            or config.exact_kl
            or config.note_kl
            or config.target_kl
            or config.repeat_kl
        ) and config.credit != "note":
            raise MusegenError(
                "--candidates, --shaping, --exact-kl, --note-kl, --target-kl and --repeat-kl "
                "are kinds of --credit note"
            )
        if config.per_note_candidates and not config.candidates:
            raise MusegenError("--per-note-candidates changes --candidates: add it")
        self.candidate_weights = self.note_weights  # the exact term's weights, by reward
        if config.candidate_weights:
            if not config.candidates:
                raise MusegenError("--candidate-weights weighs the rules in --candidates: add it")
            if "theory" not in [name for name, _ in self.rewards]:
                raise MusegenError(
                    "--candidate-weights weighs the theory reward: add it to --reward"
                )
            theory = {**self.note_weights["theory"], **config.candidate_weights}
            self.candidate_weights = {**self.note_weights, "theory": theory}
        folder = resolve_model(config.model)
        self.policy, self.meta = load_model(folder, map_location="cpu")
        if "tokenizer" not in self.meta or not hasattr(self.policy, "init_cache"):
            raise MusegenError(
                f"{config.model}: RL tunes token models (a model with a tokenizer), not a {self.meta.get('model')} model"
            )
        self.anchor, _ = load_model(folder, map_location="cpu")
        self.anchor.requires_grad_(False)
        self.anchor.eval()
        self.base_folder = folder
        self.tokenizer: Tokenizer = tokenizer_from_dict(self.meta["tokenizer"])
        self.optimizer = torch.optim.AdamW(
            self.policy.parameters(), lr=config.lr, betas=(0.9, 0.95), weight_decay=0.0
        )
        self.step_count = 0

    # ------------------------------------------------------------------ rollouts
    def _meter(self, rng: np.random.Generator) -> str | None:
        """The meter of a step's pieces: drawn from the model's meter shares (its training
        split's, in its config), else its tokenizer's first; None if it has no meter tokens."""
        names = list(getattr(self.tokenizer.config, "time_signatures", ()) or ())
        if not names:
            return None
        shares = (self.meta.get("sampling") or {}).get("meters") or {}
        weights = np.array([float(shares.get(m, 0.0)) for m in names])
        if weights.sum() <= 0:
            return names[0]
        return names[int(rng.choice(len(names), p=weights / weights.sum()))]

    def prompt(self, step: int) -> np.ndarray:
        """The primer of step ``step``: BOS, the meter and the length where the tokenizer
        carries them (every piece of the step shares it), else BOS."""
        meter = self._meter(np.random.default_rng([self.cfg.seed, step, 7]))
        if meter is not None:
            num, den = (int(x) for x in meter.split("/"))
            score = Score(tpq=480, time_signatures=[TimeSignature(0, num, den)])
            ids = self.tokenizer.primer_for_length(score, self.cfg.bars)
            if ids is not None:
                return np.asarray(ids, dtype=np.int64)
        return np.array([BOS], dtype=np.int64)

    def rollout(self, step: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """The primer and the ``batch_size`` sequences the policy writes at ``step``."""
        from musegen.sampling.generate import SamplingConfig, generate

        prompt = self.prompt(step)
        cap = self.cfg.max_new_tokens or max(64, self.cfg.bars * TOKENS_PER_BAR)
        sampling = SamplingConfig(
            max_new_tokens=cap,
            temperature=self.cfg.temperature,
            seed=_hash_seed(self.cfg.seed, step),
        )
        seqs = generate(
            self.policy, self.tokenizer, num=self.cfg.batch_size, primer=prompt, config=sampling
        )
        return prompt, seqs

    def score(
        self, seqs: list[np.ndarray], pieces: list[Score] | None = None
    ) -> list[dict[str, float]]:
        """Each sequence's rewards (by name) and their ``total`` (``pieces``: the sequences
        decoded, when the caller has them)."""
        pieces = pieces or [self.tokenizer.decode(s) for s in seqs]
        return [total_reward(self.rewards, piece) for piece in pieces]

    def token_rewards(
        self, seqs: list[np.ndarray], pieces: list[Score], P: int, T: int
    ) -> torch.Tensor:
        """``--credit note``: each drawn token's reward ``[B, T]`` (T tokens after the
        primer): each note's reward (:mod:`musegen.train.rl_credit`) on the token writing it."""
        from musegen.train.rl_credit import piece_note_rewards

        out = torch.zeros((len(seqs), T))
        for i, (s, piece) in enumerate(zip(seqs, pieces, strict=True)):
            pos, r = piece_note_rewards(
                self.rewards, self.tokenizer, s, piece, self.note_weights, self.cfg.shaping
            )
            keep = pos >= P
            out[i].index_add_(0, torch.from_numpy(pos[keep] - P), torch.from_numpy(r[keep]).float())
        return out

    def candidate_rewards(
        self,
        seqs: list[np.ndarray],
        pieces: list[Score],
        P: int,
        T: int,
        by: dict[str, dict[str, float]],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``--candidates``: each state's immediate reward for every pitch token ``[B, T,
        128]`` and the drawn token's share of it ``[B, T]`` (:mod:`musegen.train.rl_credit`),
        by the built-in rewards' local parts, weighted by ``by`` (the parts' weights by
        reward name)."""
        from musegen.train.rl_credit import PITCHES, candidate_rewards

        table = torch.zeros((len(seqs), T, PITCHES))
        drawn = torch.zeros((len(seqs), T))
        for name, _ in self.rewards:
            weights = by.get(name)
            if weights is None:
                continue
            for i, (s, piece) in enumerate(zip(seqs, pieces, strict=True)):
                t, d = candidate_rewards(self.tokenizer, s, P, piece, weights)
                table[i, : len(t)] += torch.from_numpy(t).float()
                drawn[i, : len(d)] += torch.from_numpy(d).float()
        return table, drawn

    def rule_target(
        self, seqs: list[np.ndarray], pieces: list[Score], P: int, T: int, anchor_logp: torch.Tensor
    ) -> torch.Tensor:
        """``--target-kl``: each state's target ``[B, T, vocab]`` (log-probabilities): the
        anchor's distribution with each pitch that would break a local rule there weighed
        down by ``exp(-tilt)`` per rule (``--rule-tilt``), the chance of a note kept
        (:func:`musegen.train.rl_credit.tilted_target`); the anchor itself without tilts."""
        from musegen.train.rl_credit import PITCHES, candidate_rewards, tilted_target

        tilt = {k: float(v) for k, v in (self.cfg.rule_tilt or {}).items() if v}
        if not tilt:
            return anchor_logp
        table = torch.zeros((len(seqs), T, PITCHES))
        for i, (s, piece) in enumerate(zip(seqs, pieces, strict=True)):
            t, _ = candidate_rewards(self.tokenizer, s, P, piece, tilt, shares=False)
            table[i, : len(t)] = torch.from_numpy(t).float()
        return tilted_target(anchor_logp, self.tokenizer.vocab.offset("pitch"), table)

    def repeat_loss(
        self,
        seqs: list[np.ndarray],
        pieces: list[Score],
        P: int,
        T: int,
        logp: torch.Tensor,
        anchor_logp: torch.Tensor,
        valid: torch.Tensor,
        extra: dict[str, float],
    ) -> torch.Tensor:
        """``--repeat-kl``: ``repeat_kl`` times the exact KL, at every state where a note
        would follow an earlier one and the repetition rule is not at stake, between the
        policy's and the anchor's chance of repeating the previous pitch given a note
        (:func:`musegen.train.rl_credit.repeat_choice`), weighted by the anchor's chance of a
        note there, summed and divided by the tokens; the mean chances go to ``extra``."""
        from musegen.train.rl_credit import (
            note_chance,
            note_choice_kl,
            previous_pitches,
            repeat_choice,
        )

        previous = torch.full((len(seqs), T), -1, dtype=torch.long)
        stake = torch.zeros((len(seqs), T), dtype=torch.bool)
        for i, (s, piece) in enumerate(zip(seqs, pieces, strict=True)):
            prev, at = previous_pitches(self.tokenizer, s, P, piece)
            previous[i, : len(prev)] = torch.from_numpy(prev)
            stake[i, : len(at)] = torch.from_numpy(at)
        lo, hi = self.tokenizer.vocab.span("pitch")
        own = repeat_choice(logp, lo, previous)
        with torch.no_grad():
            anchor = repeat_choice(anchor_logp, lo, previous)
            weight = note_chance(anchor_logp, lo, hi)[0].exp()
        judged = valid & (previous >= 0) & ~stake & torch.isfinite(anchor[0])
        zero = torch.zeros((), dtype=logp.dtype)
        kl = torch.where(judged, weight * note_choice_kl(own, anchor), zero)
        if judged.any():
            extra["repeat_chance"] = float(own[0].detach().exp()[judged].mean())
            extra["repeat_chance_anchor"] = float(anchor[0].exp()[judged].mean())
        extra["repeat_kl_per_token"] = float(kl.detach().sum() / valid.sum())
        return self.cfg.repeat_kl * kl.sum() / valid.sum()

    # ------------------------------------------------------------------ log-probabilities
    def masks(self, prompt: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The grammar's masks ``[B, T, vocab]`` for the tokens after the prompt, replayed
        as the sampler stepped them (a dead end allows EOS, as there)."""
        B, L = ids.shape
        P = len(prompt)
        grammar = self.tokenizer.batch_grammar(B, prompt)
        out = np.zeros((B, L - P, len(self.tokenizer)), dtype=bool)
        for t in range(P, L):
            if grammar.done.all():
                break
            m = grammar.mask().copy()
            dead = ~m.any(axis=1)
            if dead.any():  # as the sampler: the sequence ends with EOS, the grammar with PAD
                grammar.finish(dead)
                m[dead, EOS] = True
            out[:, t - P] = m
            grammar.step(np.where(dead, PAD, ids[:, t]))
        out[~out.any(axis=-1), PAD] = True  # after the end: PAD (never scored)
        return out

    def log_probs(
        self, model: torch.nn.Module, ids: torch.Tensor, masks: torch.Tensor, P: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token log-probabilities ``[B, T]`` of ``ids[:, P:]`` under ``model``'s masked,
        tempered distribution, and the distributions' log-probabilities ``[B, T, vocab]``."""
        logits, _ = model(ids[:, :-1])
        logits = logits[:, P - 1 :].float() / self.cfg.temperature
        logp = torch.log_softmax(logits.masked_fill(~masks, float("-inf")), dim=-1)
        taken = logp.gather(-1, ids[:, P:, None]).squeeze(-1)
        return taken, logp

    # ------------------------------------------------------------------ one step
    def step(self) -> dict[str, Any]:
        """One policy-gradient step; returns its log row."""
        t0 = time.perf_counter()
        step = self.step_count
        prompt, seqs = self.rollout(step)
        t_roll = time.perf_counter() - t0
        pieces = [self.tokenizer.decode(s) for s in seqs]  # once: every reward reads these
        values = self.score(seqs, pieces)
        P, B = len(prompt), len(seqs)
        L = max(len(s) for s in seqs)
        ids_np = np.full((B, L), PAD, dtype=np.int64)
        for i, s in enumerate(seqs):
            ids_np[i, : len(s)] = s
        lengths = torch.tensor([len(s) for s in seqs])
        valid = torch.arange(P, L)[None, :] < lengths[:, None]  # [B, T]: a token the sampler drew
        masks = torch.from_numpy(self.masks(prompt, ids_np))
        ids = torch.from_numpy(ids_np)
        self.policy.eval()  # no dropout: the sampler's distribution exactly
        taken, logp = self.log_probs(self.policy, ids, masks, P)
        with torch.no_grad():
            ref_taken, ref_logp = self.log_probs(self.anchor, ids, masks, P)
        zero = torch.zeros((), dtype=taken.dtype)
        with torch.no_grad():
            log_ratio = torch.where(valid, taken - ref_taken, zero)
            piece_kl = log_ratio.sum(dim=1)  # k1: an unbiased estimate of the piece's KL
            probs = logp.exp()
            exact = torch.where(masks, probs * (logp - ref_logp), zero).sum(-1)  # per state
            exact_kl = float(torch.where(valid, exact, zero).sum() / valid.sum())
        reward = torch.tensor([v["total"] for v in values], dtype=torch.float32)
        regularised = reward - self.cfg.kl * piece_kl
        extra: dict[str, float] = {}
        if self.cfg.credit == "note":
            from musegen.train.rl_credit import leave_one_out, returns_to_go

            per_token = self.token_rewards(seqs, pieces, P, L - P)
            extra["note_reward"] = float(per_token.sum(1).mean())
            shaped = torch.where(valid, per_token - self.cfg.kl * log_ratio, zero)
            returns = returns_to_go(shaped, valid, self.cfg.gamma)
            if self.cfg.exact_kl:  # the drawn token's own KL term: exact per state below
                returns = returns + self.cfg.kl * log_ratio
            if self.cfg.candidates:  # the drawn token's own immediate reward: expected below
                table, drawn = self.candidate_rewards(seqs, pieces, P, L - P, self.note_weights)
                returns = returns - torch.where(valid, drawn, zero)
                if self.candidate_weights is not self.note_weights:  # --candidate-weights
                    table, _ = self.candidate_rewards(
                        seqs, pieces, P, L - P, self.candidate_weights
                    )
            advantage = returns - leave_one_out(returns, valid)  # [B, T]
        else:
            baseline = (regularised.sum() - regularised) / (B - 1)  # leave one out
            advantage = (regularised - baseline)[:, None]
        n_tokens = valid.sum()
        loss = -(advantage * torch.where(valid, taken, zero)).sum() / n_tokens
        if self.cfg.credit == "note" and self.cfg.candidates:
            lo = self.tokenizer.vocab.offset("pitch")
            probs = logp[:, :, lo : lo + table.shape[-1]].exp()  # 0 where the grammar forbids
            if self.cfg.per_note_candidates:
                from musegen.train.rl_credit import expected_given_note

                state_expected = expected_given_note(probs, table)
            else:
                state_expected = (probs * table).sum(-1)
            expected = torch.where(valid, state_expected, zero)
            extra["candidate_reward"] = float(expected.detach().sum(1).mean())
            loss = loss - expected.sum() / n_tokens
        if self.cfg.credit == "note" and self.cfg.exact_kl:
            own = logp.masked_fill(~masks, 0.0)  # 0, not -inf, where the grammar forbids
            anchor = ref_logp.masked_fill(~masks, 0.0)
            state_kl = (own.exp() * (own - anchor)).masked_fill(~masks, 0.0).sum(-1)
            loss = loss + self.cfg.kl * torch.where(valid, state_kl, zero).sum() / n_tokens
        if self.cfg.credit == "note" and self.cfg.target_kl:
            from musegen.train.rl_credit import forward_kl

            target = self.rule_target(seqs, pieces, P, L - P, ref_logp)
            per_state = torch.where(valid, forward_kl(target, logp, masks), zero)
            extra["target_kl_per_token"] = float(per_state.detach().sum() / valid.sum())
            loss = loss + self.cfg.target_kl * per_state.sum() / n_tokens
        if self.cfg.credit == "note" and self.cfg.repeat_kl:
            loss = loss + self.repeat_loss(seqs, pieces, P, L - P, logp, ref_logp, valid, extra)
        if self.cfg.credit == "note" and "pitch" in self.tokenizer.vocab:
            from musegen.train.rl_credit import note_chance, note_choice_kl

            lo, hi = self.tokenizer.vocab.span("pitch")
            own_note = note_chance(logp, lo, hi)
            with torch.no_grad():
                anchor_note = note_chance(ref_logp, lo, hi)
                extra["note_chance"] = float(own_note[0].exp()[valid].mean())
                extra["note_chance_anchor"] = float(anchor_note[0].exp()[valid].mean())
            if self.cfg.note_kl:
                note_kl = torch.where(valid, note_choice_kl(own_note, anchor_note), zero)
                extra["note_kl_per_token"] = float(note_kl.detach().sum() / valid.sum())
                loss = loss + self.cfg.note_kl * note_kl.sum() / n_tokens
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.step_count += 1
        row: dict[str, Any] = {
            "step": self.step_count,
            "reward": float(reward.mean()),
            "regularised": float(regularised.mean()),
            "kl_per_token": exact_kl,
            "kl_per_piece": float(piece_kl.mean()),
            **extra,
            "tokens": int(n_tokens),
            "grad_norm": float(grad_norm),
            "rollout_s": round(t_roll, 3),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        for name, _ in self.rewards:
            row[f"reward:{name}"] = float(np.mean([v[name] for v in values]))
        return row

    # ------------------------------------------------------------------ the run
    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Run to ``config.steps`` (from the checkpoint with ``resume``); returns a summary."""
        from musegen.checkpoint import resumable_steps

        self._start(resume)
        row: dict[str, Any] = {}
        counted = {"step": self.step_count}  # resumable_steps' count; self.step() keeps its own
        every, ckpt = self.cfg.checkpoint_every, self.out / CHECKPOINT
        for s in resumable_steps(
            self.cfg.steps, every, counted, ckpt, self.save_checkpoint, "rl", self.cfg.progress
        ):
            row = self.step()
            self._log(row)
            s.bar.set_postfix(reward=f"{row['reward']:.3f}", kl=f"{row['kl_per_token']:.4f}")
        if not (self.out / CHECKPOINT / "rl.json").exists():
            self.save_checkpoint()
        return {"steps": self.step_count, "out": str(self.out), "last": row}

    def _start(self, resume: bool) -> None:
        from musegen.train.run import write_run

        ckpt = self.out / CHECKPOINT
        if resume:
            self.load_checkpoint()
            return
        if (ckpt / "rl.json").exists():
            raise MusegenError(
                f"{self.out} already holds an RL run: add --resume to go on with it, or give another --out"
            )
        settings = {
            "rl": self.cfg.to_dict(),
            "base": str(self.base_folder),
            "rewards": [n for n, _ in self.rewards],
        }
        write_run(self.out, settings, None)
        (self.out / "log.jsonl").unlink(missing_ok=True)

    def _log(self, row: dict[str, Any]) -> None:
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def _meta(self) -> dict[str, Any]:
        keep = {
            k: v
            for k, v in self.meta.items()
            if k not in ("model", "config", "valid_loss", "test_loss", "step", "rl", "run_config")
        }
        if self.meta.get("run_config"):  # how the model tuned here was made
            keep["base_run_config"] = self.meta["run_config"]
        rewards = ",".join(n for n, _ in self.rewards)
        base = self.meta.get("description", self.cfg.model)
        keep["description"] = (
            f"{base}; tuned by RL with the {rewards} reward (KL {self.cfg.kl} to {self.cfg.model})"
        )
        keep["rl"] = {**self.cfg.to_dict(), "step": self.step_count}
        return keep

    def save_checkpoint(self) -> None:
        """The policy (a loadable model folder), the optimizer and the step, atomically."""
        from safetensors.torch import save_file

        from musegen.checkpoint import flatten_optimizer, written_whole
        from musegen.models import save_model

        tensors, groups = flatten_optimizer(self.optimizer)
        info = {
            "step": self.step_count,
            "param_groups": groups,
            "rl": self.cfg.to_dict(),
            "rewards": [n for n, _ in self.rewards],
        }
        with written_whole(self.out / CHECKPOINT) as tmp:
            save_model(self.policy, tmp, self._meta())
            save_file(tensors, str(tmp / "optimizer.safetensors"))
            (tmp / "rl.json").write_text(json.dumps(info))

    def load_checkpoint(self) -> None:
        """What :meth:`save_checkpoint` wrote (``--resume``); settings other than the step
        count must be the run's."""
        from safetensors.torch import load_file

        from musegen.checkpoint import recover_swap, restore_optimizer

        ckpt = self.out / CHECKPOINT
        recover_swap(ckpt)
        if not (ckpt / "rl.json").exists():
            raise MusegenError(
                f"{ckpt}: no RL checkpoint to resume from: run the same command without --resume"
            )
        try:
            info = json.loads((ckpt / "rl.json").read_text())
            optim = load_file(str(ckpt / "optimizer.safetensors"))
            weights = load_file(str(ckpt / "model.safetensors"))
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            raise MusegenError(f"{ckpt}: checkpoint is unreadable ({e})") from e
        saved = {
            k: v
            for k, v in info.get("rl", {}).items()
            if k not in ("steps", "progress", "checkpoint_every")
        }
        now = {k: v for k, v in self.cfg.to_dict().items() if k in saved}
        changed = sorted(k for k in saved if saved[k] != now[k])
        if changed:
            raise MusegenError(
                f"{ckpt}: --resume with other settings than the run's ({', '.join(f'{k}: {saved[k]} -> {now[k]}' for k in changed)})"
            )
        missing, unexpected = self.policy.load_state_dict(weights, strict=False)
        tied = {n for n, _ in _tied(self.policy)}
        if set(missing) - tied or unexpected:
            raise MusegenError(f"{ckpt}: checkpoint does not fit the model {self.cfg.model}")
        restore_optimizer(self.optimizer, optim, info["param_groups"], torch.device("cpu"))
        self.step_count = int(info["step"])
        self._trim_log()

    def _trim_log(self) -> None:
        """Drop log rows past the checkpoint's step (steps that will be run again)."""
        path = self.out / "log.jsonl"
        if not path.exists():
            return
        keep = [
            ln
            for ln in path.read_text().splitlines(keepends=True)
            if ln.strip() and json.loads(ln).get("step", 0) <= self.step_count
        ]
        atomic_write_text(path, "".join(keep))


def _tied(model: torch.nn.Module) -> list[tuple[str, str]]:
    from musegen.train.trainer import _tied_names

    return _tied_names(model)


def train_rl(config: RLConfig, out: str | Path, resume: bool = False) -> dict[str, Any]:
    """What ``musegen train rl`` does: tune, checkpoint, and return a summary."""
    return RLTrainer(config, out).fit(resume=resume)
