"""``musegen train rl``: tune a token model with reinforcement learning (rewards + KL anchor)."""

from __future__ import annotations

import argparse

REWARD_HELP = (
    "comma-separated rewards, summed: theory (RL Tuner's rules together), key, tonic, "
    "repetition, leaps, motifs, intervals, or your own function of a score as "
    "module:function or path/file.py:function (default: theory)"
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
    p.add_argument(
        "--model", default="folk", help="model to tune, also the KL anchor (default: folk)"
    )
    p.add_argument("--reward", default="theory", help=REWARD_HELP)
    p.add_argument(
        "--kl",
        type=float,
        default=0.1,
        help="weight of KL(tuned || original) per piece (default 0.1)",
    )
    p.add_argument("--steps", type=int, default=100, help="policy-gradient steps (default 100)")
    p.add_argument("--batch-size", type=int, default=16, help="pieces per step (default 16)")
    p.add_argument("--lr", type=float, default=2e-5, help="learning rate (AdamW; default 2e-5)")
    p.add_argument("--bars", type=int, default=8, help="bars per piece (default 8)")
    p.add_argument(
        "--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every step's pieces (default 0)")
    p.add_argument(
        "--checkpoint-every", type=int, default=10, help="steps between checkpoints (default 10)"
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

    from musegen.train.rl import RLConfig, train_rl

    config = RLConfig(
        model=args.model,
        reward=args.reward,
        kl=args.kl,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        bars=args.bars,
        temperature=args.temperature,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
    )
    print(f"settings: {json.dumps(config.to_dict())}")
    summary = train_rl(config, args.out, resume=args.resume)
    last = summary["last"]
    tail = (
        f": last reward {last['reward']:.3f}, KL {last['kl_per_token']:.4f}/token" if last else ""
    )
    print(
        f"tuned {summary['steps']} steps{tail}; model in {summary['out']} (generate --model {summary['out']})"
    )
    return 0
