"""``musegen train``: train any model (token models, Coconet, frame models) from a run file."""

from __future__ import annotations

import argparse

# flags that override the run file's "train" section
OVERRIDES: dict[str, tuple[type, str]] = {
    "max_steps": (int, "optimizer steps to train for"),
    "batch_size": (int, "sequences per step (per process)"),
    "seq_len": (int, "tokens per training window"),
    "lr": (float, "peak learning rate"),
    "seed": (int, "seed for weights, batches and dropout"),
    "device": (str, "auto (default), cpu, cuda, cuda:N, mps"),
    "eval_every": (int, "steps between evaluations on the valid split"),
    "checkpoint_every": (int, "steps between checkpoints"),
    "threads": (int, "CPU threads (1 is fastest on a busy machine)"),
    "precision": (str, "auto (default: bf16 autocast where measured faster), fp32, bf16"),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (transformer, lstm, gru, coconet, rnn-nade, music-vae, GANs ...) "
        "from a run file; 'train rl' tunes one by reinforcement learning",
        description="Train a model with the one trainer. Token models (transformer, lstm, gru) "
        "read a dataset made by 'musegen data prepare'; coconet reads four-voice 16th-note "
        "chorales (Jsb16thSeparated.json or a JSON file of that shape); the piano-roll frame "
        "models (rnn-nade, frame-bernoulli) read binary piano rolls (a benchmark set, or a "
        "dataset prepared with the binary roll tokenizer); music-vae and latent-diffusion read "
        "a melody dataset; the GANs (musegan, midinet, crnngan) their corpus (configs/*.json). "
        "Multi-GPU / multi-node: launch with torchrun. Ctrl-C and --resume continue exactly.",
    )
    p.add_argument(
        "--model",
        default=None,
        help="model name (transformer, lstm, gru, coconet, rnn-nade, frame-bernoulli, "
        "music-vae, latent-diffusion, musegan, midinet, crnngan); "
        "default: the run file's, else transformer",
    )
    p.add_argument(
        "--data",
        metavar="PATH",
        help="token models: the prepared dataset folder (required); coconet: the "
        "Jsb16thSeparated.json file (or a folder holding it, or a JSON file of that shape; "
        "default: the run file's data.root, else the shared data folder); frame models: the "
        "set's .mat file or a folder holding it, or a prepared binary-roll dataset (default: "
        "the run file's data.root, else the shared data folder, else the vendored rolls)",
    )
    p.add_argument(
        "--config", metavar="FILE.json", help="run file: model, model_config, train, augment"
    )
    p.add_argument(
        "--out", default="runs/latest", metavar="RUN_DIR", help="run folder (default: runs/latest)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    p.add_argument(
        "--init",
        metavar="MODEL",
        help="start from this saved model's weights (folder or shipped name, e.g. coconet; "
        "same model_config; a token model may move to a grown vocabulary, e.g. bach into "
        "chorale tokens with phrases) with a fresh schedule and optimizer",
    )
    p.add_argument("--compile", action="store_true", help="use torch.compile")
    for name, (kind, text) in OVERRIDES.items():
        flag = f"--{name.replace('_', '-')}"
        p.add_argument(flag, type=kind, default=None, dest=name, metavar=name.upper(), help=text)
    p.set_defaults(func=run_train)
    from musegen.cli.train_rl import register as register_rl  # `musegen train rl`

    register_rl(p)


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
    summary = train_run(run, args.data, args.out, resume=args.resume, init=args.init)
    print(
        f"trained {summary['steps']} steps on {summary['device']}: best valid loss "
        f"{summary['best_valid_loss']:.4f}; model in {summary['out']}/best"
    )
    return 0
