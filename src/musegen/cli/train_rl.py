"""``musegen train rl``: tune a token model with reinforcement learning (rewards + KL anchor)."""

from __future__ import annotations

import argparse

REWARD_HELP = (
    "comma-separated rewards, summed: theory (RL Tuner's rules together), key, tonic, "
    "repetition, leaps, motifs, intervals, or your own function of a score as "
    "module:function or path/file.py:function (default: theory)"
)
# (flag, type, help): settings of musegen.train.rl.RLConfig; None = the run file's or default
FLAGS = (
    ("--model", str, "model to tune, also the KL anchor (default: folk)"),
    ("--reward", str, REWARD_HELP),
    ("--kl", float, "weight of KL(tuned || original) per piece (default 0.1)"),
    ("--steps", int, "policy-gradient steps (default 100)"),
    ("--batch-size", int, "pieces per step (default 16)"),
    ("--lr", float, "learning rate (AdamW; default 2e-5)"),
    ("--bars", int, "bars per piece (default 8)"),
    ("--temperature", float, "sampling temperature (default 1.0)"),
    ("--seed", int, "seed of every step's pieces (default 0)"),
    ("--checkpoint-every", int, "steps between checkpoints (default 10)"),
    (
        "--credit",
        str,
        "piece: every token shares its piece's reward; note: each note is rewarded by the "
        "rules on the partial piece when it is written, tokens pushed by discounted "
        "returns-to-go (RL Tuner's per-note credit; default note, chosen on valid: see "
        "docs/experiments.md, 'Reinforcement learning: per-note credit')",
    ),
    ("--gamma", float, "--credit note: discount per token of the returns-to-go (default 0.9)"),
    (
        "--note-kl",
        float,
        "--credit note: weight of an extra exact KL, at each step, between the tuned and the "
        "original model's chance of writing a note there (not holding or resting): keeps the "
        "original's note density (default 0: none)",
    ),
    (
        "--target-kl",
        float,
        "--credit note: weight of KL(target || tuned) at every step, the target being the "
        "original model's distribution there with the pitches that break a rule weighed down "
        "by --rule-tilt (the original itself where none does): learns the rules with bounded "
        "gradients while holding the rest of the model (default 0: none)",
    ),
    (
        "--repeat-kl",
        float,
        "--credit note: weight of an extra exact KL, at each step after a note where the "
        "repetition rule is not at stake, between the tuned and the original model's chance "
        "of repeating that note's pitch: the rule against a fifth repeat does not spread into "
        "fewer repeated notes everywhere (default 0: none)",
    ),
)


def part_weights(text: str, flag: str = "--weights") -> dict[str, float]:
    """``--weights repetition=30,motifs=4`` as a dict (the parts are checked later)."""
    from musegen.errors import MusegenError

    out: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, eq, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            eq = ""
        if not eq:
            raise MusegenError(f"{flag}: expected part=weight, got {item!r}")
    return out


SWITCHES = (  # (flag, help): true when given; else the run file's or false
    (
        "--candidates",
        "--credit note: credit every pitch the tuned model could have written at each step "
        "with the reward it would earn there by the rules a note's pitch decides (key, "
        "repetition, leaps, intervals), not only the one drawn (an expected, lower-variance "
        "gradient of the same objective)",
    ),
    (
        "--shaping",
        "--credit note: motif shaping: each note on its way to repeating an earlier motif "
        "bar earns a repeated motif note's reward, given back if the bar leaves the way "
        "(adds up to 0 over a piece)",
    ),
    (
        "--exact-kl",
        "--credit note: the KL penalty of each step taken exactly over every token the "
        "tuned model could have written there, not by the token drawn (the same objective, "
        "a lower-variance pull back to the original model)",
    ),
    (
        "--per-note-candidates",
        "--candidates: the expected reward of every pitch taken given that a note is written, "
        "the chance of writing one held fixed, so the rules move which pitch is written and "
        "never whether one is (holding or resting earns nothing by dodging a rule)",
    ),
)


def register(train: argparse.ArgumentParser) -> None:
    """Add ``rl`` under the ``train`` command's parser."""
    sub = train.add_subparsers(dest="train_command", metavar="{rl}", required=False)
    p = sub.add_parser(
        "rl",
        help="tune a token model by reinforcement learning with music-theory rewards",
        description="Fine-tune a token model (a shipped name or a model/run folder) by "
        "KL-regularised policy gradient (REINFORCE with a leave-one-out baseline): each step "
        "it writes --batch-size pieces with the sampler, scores them with the rewards, and "
        "moves towards the better ones while a KL penalty keeps it near the original model "
        "(RL Tuner, Jaques et al. 2017). The run folder is a model: generate --model OUT. "
        "Ctrl-C and --resume continue exactly.",
    )
    for flag, kind, text in FLAGS:
        p.add_argument(flag, type=kind, default=None, help=text)
    p.add_argument(
        "--weights",
        default=None,
        metavar="PART=W,...",
        help="reweight parts of the theory reward (key, tonic, repetition, leaps, motifs, "
        "intervals; defaults 2, 1, 10, 2, 0.5, 1), e.g. repetition=30,motifs=4",
    )
    for flag, text in SWITCHES:
        p.add_argument(flag, action="store_true", default=None, help=text)
    p.add_argument(
        "--candidate-weights",
        default=None,
        metavar="PART=W,...",
        help="--candidates: the weights of the rules a note's pitch decides (key, repetition, "
        "leaps, intervals) in the expected reward of every pitch, where they differ from "
        "--weights (e.g. repetition=1000: an extra penalty on the pitch that breaks the rule, "
        "at that step only)",
    )
    p.add_argument(
        "--rule-tilt",
        default=None,
        metavar="PART=T,...",
        help="--target-kl: how far the target weighs down a pitch that breaks a rule a note's "
        "pitch decides (key, repetition, leaps, intervals): by exp(-T) per rule broken, the "
        "chance of a note kept (e.g. repetition=6,leaps=1)",
    )
    p.add_argument(
        "--config",
        metavar="FILE.json",
        help="run file: a JSON object of these settings (e.g. configs/folk-rl.json); flags "
        "override it",
    )
    p.add_argument(
        "--out", default="runs/rl", metavar="RUN_DIR", help="run folder (default: runs/rl)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its checkpoint"
    )
    p.set_defaults(func=run_rl)


def run_rl(args: argparse.Namespace) -> int:
    import json

    from musegen.train.rl import RLConfig, read_rl_file, train_rl

    settings = read_rl_file(args.config) if args.config else {}
    for flag in [f for f, _, _ in FLAGS] + ["--weights"] + [f for f, _ in SWITCHES]:
        name = flag[2:].replace("-", "_")
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    if args.weights is not None:
        settings["weights"] = part_weights(args.weights)
    if args.candidate_weights is not None:
        settings["candidate_weights"] = part_weights(args.candidate_weights, "--candidate-weights")
    if args.rule_tilt is not None:
        settings["rule_tilt"] = part_weights(args.rule_tilt, "--rule-tilt")
    config = RLConfig.from_dict(settings)
    print(f"settings: {json.dumps(config.to_dict())}")
    summary = train_rl(config, args.out, resume=args.resume)
    last = summary["last"]
    tail = (
        f": last reward {last['reward']:.3f}, KL {last['kl_per_token']:.4f}/token" if last else ""
    )
    print(
        f"tuned {summary['steps']} steps{tail}; model in {summary['out']} "
        f"(generate --model {summary['out']})"
    )
    return 0
