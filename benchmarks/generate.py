"""Generation throughput: musegen's KV-cached decoding vs Hugging Face ``generate``, one run.

Same size for both (6 layers, d_model 256, 4 heads, vocab 512, random weights), greedy
decoding of 256 new tokens after a 16-token prompt, batch 1 and 8, fp32, no grammar.
Our loop is the plain one a sampler runs: ``init_cache``, the prompt in one call, then one
token per call. Runs alternate (ours, peer, ours, ...); the best of ``--repeats`` counts.

Prints one JSON line per (variant, batch): tokens/s = batch · new tokens / wall time
(prompt processing included for both). ``relative`` is the default the product ships.

Needs ``transformers`` (``pip install -e '.[hf]'``). Run: ``python benchmarks/generate.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from functools import partial

import torch

from _corpus import emit
from musegen.models import build_model

LAYERS, D_MODEL, HEADS, VOCAB = 6, 256, 4, 512


def ours(position: str) -> torch.nn.Module:
    return build_model(
        "transformer",
        vocab_size=VOCAB,
        n_layer=LAYERS,
        n_head=HEADS,
        d_model=D_MODEL,
        position=position,
    ).eval()


def peer(positions: int) -> torch.nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging

    logging.set_verbosity_error()  # no notes about config defaults in the benchmark output

    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=positions,
        n_embd=D_MODEL,
        n_layer=LAYERS,
        n_head=HEADS,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        attn_implementation="sdpa",
    )
    return GPT2LMHeadModel(config).eval()


@torch.inference_mode()
def greedy(model: torch.nn.Module, prompt: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Greedy continuation with the model's cache: prompt in one call, then token by token."""
    batch, length = prompt.shape
    cache = model.init_cache(batch, length + new_tokens)
    logits, cache = model(prompt, cache)
    out = torch.empty(batch, new_tokens, dtype=torch.long)
    for i in range(new_tokens):
        token = logits[:, -1].argmax(-1, keepdim=True)
        out[:, i : i + 1] = token
        if i + 1 < new_tokens:
            logits, cache = model(token, cache)
    return out


@torch.inference_mode()
def hf_greedy(model: torch.nn.Module, prompt: torch.Tensor, new_tokens: int) -> torch.Tensor:
    out = model.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        pad_token_id=0,
    )
    return out[:, prompt.shape[1] :]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", default="relative,rope", help="positions of ours to time")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()
    try:
        import transformers  # noqa: F401
    except ImportError:
        sys.exit("benchmarks/generate.py needs transformers: pip install -e '.[hf]'")

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hf = peer(args.prompt + args.new)
    models = {v: ours(v) for v in args.variants.split(",")}
    for batch in (int(b) for b in args.batches.split(",")):
        prompt = torch.randint(3, VOCAB, (batch, args.prompt))
        runs: dict[str, Callable[[], torch.Tensor]] = {
            "hf": partial(hf_greedy, hf, prompt, args.new),
            **{v: partial(greedy, m, prompt, args.new) for v, m in models.items()},
        }
        best = {name: float("inf") for name in runs}
        for name, run in runs.items():  # warm-up (also checks the output shape)
            assert run().shape == (batch, args.new), name
        for _ in range(args.repeats):
            for name, run in runs.items():
                t = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - t)
        tokens = batch * args.new
        for variant in models:
            emit(
                f"generate.tokens_per_s.batch{batch}.kv_cache_vs_hf_generate",
                tokens / best[variant],
                tokens / best["hf"],
                "tokens/s",
                variant=variant,
                default=variant == "relative",
                batch=batch,
                prompt=args.prompt,
                new_tokens=args.new,
                decoding="greedy",
                threads=args.threads,
            )


if __name__ == "__main__":
    main()
