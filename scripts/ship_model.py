"""Copy a trained run's best model into the package as a shipped model, with a model card.

    .venv/bin/python scripts/ship_model.py runs/bach bach --data data/bach-remi \\
        --config configs/bach.json --description "Four-part Bach chorales (REMI)"

Evaluates the mean next-token loss on the valid and test splits once (test is reported, never
used for choices), stores the weights in float16 if asked (smaller wheel), and writes
``src/musegen/pretrained/NAME/{model.safetensors,config.json,MODEL_CARD.md}``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import torch
import torch.nn.functional as F

from musegen.data.dataset import load_prepared
from musegen.data.training import WindowDataset
from musegen.models import load_model, save_model
from musegen.models.pretrained import PRETRAINED_DIR
from musegen.tokenizers import tokenizer_from_dict


@torch.no_grad()
def split_loss(
    model: torch.nn.Module, data_dir: str, split: str, seq_len: int
) -> tuple[float, int]:
    """Mean cross-entropy per target token over the whole split (tiled windows)."""
    ds = WindowDataset(load_prepared(data_dir).split(split), seq_len, mode="tile")
    total, count = 0.0, 0
    for start in range(0, len(ds), 16):
        xs, ys = zip(*(ds[i] for i in range(start, min(start + 16, len(ds)))), strict=True)
        logits, _ = model(torch.stack(xs))
        y = torch.stack(ys)
        total += float(
            F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100, reduction="sum")
        )
        count += int((y != -100).sum())
    return total / count, count


def quality_table(path: str) -> str:
    """The musical-quality figures of a benchmark run as a markdown table for the card."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if not rows:
        return ""
    first = rows[0]
    out = [
        f"Musical quality (`benchmarks/musical_quality.py`: {first.get('pieces')} pieces of "
        f"{first.get('bars')} bars, seed {first.get('seed')}, against the `{first.get('reference')}` "
        f"split; ceiling = as many real training pieces against the same split; "
        f"{first.get('cpu', '?')}):",
        "",
        "| figure | model | ceiling (real vs real) | unit |",
        "|---|---:|---:|---|",
    ]
    for r in rows:
        name = r["benchmark"].rsplit(".", 1)[-1]
        peer = "" if r.get("peer") is None else f"{r['peer']:.3f}"
        out.append(f"| {name} | {r['ours']:.3f} | {peer} | {r['unit']} |")
    return "\n".join(out) + "\n\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("name")
    p.add_argument("--data", required=True)
    p.add_argument("--config", required=True, help="the committed run file that trained it")
    p.add_argument("--description", required=True)
    p.add_argument("--half", action="store_true", help="store float16 weights")
    p.add_argument(
        "--voices",
        type=int,
        default=0,
        help="voice tracks 'musegen generate' deals each piece out to (0: as generated)",
    )
    p.add_argument("--checkpoint", help="model folder to ship (default: RUN/best)")
    p.add_argument(
        "--sampling-options",
        default="{}",
        help='sampling defaults chosen on the valid split, JSON, e.g. {"temperature": 0.9}',
    )
    p.add_argument(
        "--tokenizer-options",
        default="{}",
        help="grammar-only tokenizer settings for sampling, JSON, e.g. "
        '{"voice_leading": true} (the vocabulary must not change)',
    )
    p.add_argument(
        "--quality",
        help="a JSON file written by benchmarks/musical_quality.py --json-out: its table goes "
        "into the model card",
    )
    p.add_argument("--note", default="", help="extra text for the model card (markdown)")
    args = p.parse_args()

    run = Path(args.run)
    model, meta = load_model(Path(args.checkpoint) if args.checkpoint else run / "best")
    vocab_before = len(tokenizer_from_dict(meta["tokenizer"]))
    meta["tokenizer"]["config"].update(json.loads(args.tokenizer_options))
    if len(tokenizer_from_dict(meta["tokenizer"])) != vocab_before:
        raise SystemExit("--tokenizer-options changed the vocabulary")
    sampling = json.loads(args.sampling_options)
    tokenizer = tokenizer_from_dict(meta["tokenizer"])
    if (
        hasattr(tokenizer, "meter_shares")
        and "meters" not in sampling
        and "time_signature" not in sampling
    ):
        # pieces draw their meter as the training pieces have them (the model's own first
        # token comes without context and is learned poorly)
        sampling["meters"] = tokenizer.meter_shares(load_prepared(args.data).split("train"))
    if getattr(tokenizer.config, "modes", False) and "modes" not in sampling:
        # and their mode as the training pieces have it (left alone, a model drifts to major)
        sampling["modes"] = tokenizer.mode_shares(load_prepared(args.data).split("train"))
    seq_len = meta["train_config"]["seq_len"]
    valid, _ = split_loss(model, args.data, "valid", seq_len)
    test, n_test = split_loss(model, args.data, "test", seq_len)
    manifest = load_prepared(args.data).manifest
    if args.half:
        model = model.half()
    out = PRETRAINED_DIR / args.name
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    extra = (
        {k: v for k, v in meta.items() if k not in ("model", "config")}
        | {
            "description": args.description,
            "valid_loss": round(valid, 4),
            "test_loss": round(test, 4),
            "run_config": args.config,
        }
        | ({"voices": args.voices} if args.voices else {})
        | ({"sampling": sampling} if sampling else {})
    )
    save_model(model, tmp, extra)
    counts = {k: vars(v) for k, v in manifest.splits.items()}
    voices_row = (
        f"| output | one stream of notes (the tokens name no voices); `musegen generate` deals "
        f'each piece out to {args.voices} voice tracks (`"voices": {args.voices}` in '
        "`config.json`; `--voices 0` keeps one track) |\n"
        if args.voices
        else ""
    )
    sampling_row = (
        f"| sampling defaults | {json.dumps(sampling)} (chosen on the valid split) |\n"
        if sampling
        else ""
    )
    quality = quality_table(args.quality) if args.quality else ""
    card = f"""# {args.name}: {args.description}

| | |
|---|---|
| model | {meta.get("model", "?")} ({model.num_parameters():,} parameters, {"float16" if args.half else "float32"} weights) |
| tokenizer | `{json.dumps(meta["tokenizer"])}` |
| data | source `{manifest.source.get("name")}`; splits {json.dumps(counts)} |
| training | {meta["step"]} steps, `{args.config}` (seed {meta["train_config"]["seed"]}) |
| valid loss | {valid:.4f} nats/token ({valid / math.log(2):.3f} bits) — used to pick the checkpoint |
| test loss | {test:.4f} nats/token over {n_test:,} tokens — measured once, after training |
{voices_row}{sampling_row}
{quality}{args.note}
Retrain:

    musegen data prepare {manifest.source.get("name")} --tokenizer {meta["tokenizer"]["tokenizer"]} \\
        --config '{json.dumps(meta["tokenizer"]["config"])}' --out {args.data}
    musegen train --config {args.config} --data {args.data} --out {args.run}
    python scripts/ship_model.py {args.run} {args.name} --data {args.data} --config {args.config} \\
        --description "{args.description}"{" --half" if args.half else ""}{f" --voices {args.voices}" if args.voices else ""}{f" --sampling-options '{args.sampling_options}'" if sampling else ""}{f" --tokenizer-options '{args.tokenizer_options}'" if args.tokenizer_options != "{}" else ""}
"""
    (tmp / "MODEL_CARD.md").write_text(card)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"shipped {out}: valid {valid:.4f}, test {test:.4f} nats/token")


if __name__ == "__main__":
    main()
