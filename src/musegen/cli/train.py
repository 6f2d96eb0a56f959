"""``musegen train``: train a sequence model on a prepared dataset."""

from __future__ import annotations

import argparse

# flags that override the run file's "train" section
OVERRIDES = {
    "max_steps": int,
    "batch_size": int,
    "seq_len": int,
    "lr": float,
    "seed": int,
    "device": str,
    "eval_every": int,
    "checkpoint_every": int,
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on a prepared dataset",
        description="Train a sequence model on a dataset made by 'musegen data prepare'. "
        "Multi-GPU / multi-node: launch with torchrun. Ctrl-C and --resume continue exactly.",
    )
    p.add_argument(
        "--model",
        default=None,
        help="model name (transformer, lstm, gru); default: the run file's, else transformer",
    )
    p.add_argument("--data", required=True, metavar="DIR", help="prepared dataset folder")
    p.add_argument(
        "--config", metavar="FILE.json", help="run file: model, model_config, train, augment"
    )
    p.add_argument(
        "--out", default="runs/latest", metavar="RUN_DIR", help="run folder (default: runs/latest)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    p.add_argument("--compile", action="store_true", help="use torch.compile")
    for name, kind in OVERRIDES.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None, dest=name)
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from musegen.train.run import read_run_file, train_run

    run = read_run_file(args.config) if args.config else {}
    if args.model:
        run["model"] = args.model
    train = dict(run.get("train", {}))
    for name in OVERRIDES:
        value = getattr(args, name)
        if value is not None:
            train[name] = value
    if args.compile:
        train["compile"] = True
    run["train"] = train
    summary = train_run(run, args.data, args.out, resume=args.resume)
    print(
        f"trained {summary['steps']} steps on {summary['device']}: best valid loss "
        f"{summary['best_valid_loss']:.4f}; model in {summary['out']}/best"
    )
    return 0
