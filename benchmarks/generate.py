"""Generation speed, ours vs a peer in one run: two figures, JSON lines.

1. ``generate.tokens_per_s.batch{1,8}.kv_cache_vs_hf_generate``: musegen's KV-cached decoding
   vs Hugging Face ``generate`` on the same-size model (6 layers, d_model 256, 4 heads, vocab
   512, random weights): greedy decoding of 256 new tokens after a 16-token prompt, fp32, no
   grammar. Our loop is the one the generator runs: ``init_cache``, the prompt in one call,
   then ``next_logits`` once per token. tokens/s = batch · new tokens / wall time (prompt
   included for both), the median over ``--repeats`` rounds; each round runs every model once,
   the order rotating, and ``ratio`` is the median of the rounds' own ratios (HF's time over
   ours), with their quartiles and range (``_timing.py``: a busy machine slows both sides of
   a round alike); ``cpu_ratio`` is the same in CPU time of this process.
   ``relative`` is the default the product ships. Needs ``transformers``
   (``pip install -e '.[hf]'``); skipped with a note without it.

2. ``generate.realtime.bach_default``: seconds of music per second of CPU (process time) from
   the shipped default model (``bach``) with ``musegen generate``'s defaults: 8 bars, top-p
   0.95, one piece at a time, through ``compose`` (primer, grammar-masked sampling, the
   length check, decoding) and the dealing out to four voice tracks, and again with
   ``--num 8`` (eight pieces sampled together, the ``.batch8`` line; music of all eight
   counts). One round per seed ``1..--pieces``, ``--rt-repeats`` times over: ours and the
   peer draw that seed's piece in turn (the order alternating); ``ours``/``peer`` are medians
   over the rounds, ``ratio`` the median of the rounds' own ratios. The peer is the same
   model, pipeline and settings with generation done by a plain PyTorch loop: the modules' forward with the KV cache (no fused CPU step), one
   grammar object per sequence, torch top-p and ``torch.multinomial``: what ``generate`` did
   before issue #5's speed work, down to drawing the same pieces for the same seeds (ours
   now draws with numpy's generator, so its pieces differ). Wall-clock figures ride along as
   ``ours_wall`` and ``peer_wall``.

Both figures run with ``--threads`` intra-op threads (default 1: one-token steps of a small
model are latency-bound, and on a busy machine a thread pool only waits), for PyTorch and for
numpy's BLAS alike (``musegen generate`` pins both to one thread while it decodes). Run:
``python benchmarks/generate.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any
from unittest import mock

import numpy as np
import torch

from _corpus import emit
from _models import VOCAB, gpt2, transformer
from _timing import interleaved, paired_ratios, spread
from musegen.models.cpu import blas_threads


def ours(position: str) -> torch.nn.Module:
    return transformer(position).eval()


def peer(positions: int) -> torch.nn.Module:
    return gpt2(positions).eval()


@torch.inference_mode()
def greedy(model: torch.nn.Module, prompt: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Greedy continuation with the model's cache, as the generator steps: the prompt in one
    call, then ``next_logits`` token by token (numpy logits and argmax)."""
    batch, length = prompt.shape
    cache = model.init_cache(batch, length + new_tokens)
    logits, cache = model(prompt, cache)
    last = logits[:, -1].numpy()
    out = np.empty((batch, new_tokens), dtype=np.int64)
    for i in range(new_tokens):
        out[:, i] = token = last.argmax(-1)
        if i + 1 < new_tokens:
            last, cache = model.next_logits(token, cache)
    return torch.from_numpy(out)


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


@torch.no_grad()
def plain_generate(
    model: torch.nn.Module,
    tokenizer: object,
    num: int = 1,
    primer: np.ndarray | None = None,
    config: object = None,
    stop: Callable[[np.ndarray], bool] | None = None,
    stop_every: int = 32,
    progress: bool = False,
    hold_eos: bool = False,
) -> list[np.ndarray]:
    """The peer of the real-time figure: ``generate``'s contract in plain PyTorch: module
    forward with the KV cache (batched), one grammar object per sequence, torch filters."""
    from musegen.sampling.generate import primer_ids, without_eos
    from musegen.tokenizers.base import EOS, PAD

    assert config is not None
    prompt = primer_ids(tokenizer, primer)  # type: ignore[arg-type]
    grammars = [tokenizer.grammar().feed(prompt) for _ in range(num)]  # type: ignore[attr-defined]
    gen = torch.Generator().manual_seed(config.seed)  # type: ignore[attr-defined]
    cache = model.init_cache(num, len(prompt) + config.max_new_tokens)  # type: ignore[attr-defined, operator]
    cache.decoder = None  # the modules' path
    ids = [[int(t) for t in prompt] for _ in range(num)]
    done = [False] * num
    logits, cache = model(torch.tensor(ids), cache)
    pad_only = torch.zeros(len(tokenizer), dtype=torch.bool)  # type: ignore[arg-type]
    pad_only[PAD] = True
    for step in range(config.max_new_tokens):  # type: ignore[attr-defined]
        masks = torch.stack(
            [
                pad_only if d else torch.from_numpy(g.mask())
                for g, d in zip(grammars, done, strict=True)
            ]
        )
        if hold_eos:
            masks = torch.from_numpy(without_eos(masks.numpy()))
        z = logits[:, -1].masked_fill(~masks, float("-inf"))
        ranked, order = torch.sort(z, descending=True, dim=-1)
        probs = torch.softmax(ranked, dim=-1)
        drop = torch.cumsum(probs, dim=-1) - probs >= config.top_p  # type: ignore[attr-defined]
        drop[:, 0] = False
        z = z.masked_fill(torch.zeros_like(drop).scatter(1, order, drop), float("-inf"))
        tokens = torch.multinomial(torch.softmax(z, dim=-1), 1, generator=gen)
        for b, token in enumerate(tokens[:, 0].tolist()):
            if done[b]:
                continue
            grammars[b].step(token)
            ids[b].append(token)
            done[b] = token == EOS or grammars[b].done
            if stop is not None and (step + 1) % stop_every == 0 and not done[b]:
                done[b] = stop(np.asarray(ids[b]))
        if all(done):
            break
        logits, cache = model(tokens, cache)
    return [np.asarray(seq, dtype=np.int64) for seq in ids]


def realtime(pieces: int, repeats: int, bars: int, batch: int = 1) -> dict[str, Any]:
    """Seconds of music per CPU (and wall) second, ours and the plain loop, same seeds;
    ``batch`` pieces are sampled together per seed (``musegen generate --num``)."""
    from musegen.models.pretrained import DEFAULT_MODEL
    from musegen.sampling import pieces as pieces_module
    from musegen.sampling.generate import SamplingConfig
    from musegen.sampling.generators import TokenGenerator, load_generator
    from musegen.sampling.pieces import PieceRequest, compose
    from musegen.voices import separate_voices

    generator = load_generator(DEFAULT_MODEL)
    assert isinstance(generator, TokenGenerator)  # bach: a network and its tokenizer
    model, tok, meta = generator.model, generator.tokenizer, generator.meta

    def music(seed: int) -> float:
        sampling = SamplingConfig(top_p=0.95, seed=seed)
        scores = compose(model, tok, PieceRequest(bars=bars), sampling, num=batch)
        if meta.get("voices"):  # as musegen generate does: the chorale dealt out to voices
            scores = [separate_voices(score, meta["voices"]) for score in scores]
        return sum(score.duration_seconds() for score in scores)

    def plain(seed: int) -> float:
        with mock.patch.object(pieces_module, "generate", plain_generate):
            return music(seed)

    music(0)  # warm-up
    # rounds of one piece (seed) each, ours and the peer in turn: (music s, CPU s, wall s)
    got: dict[str, list[tuple[float, float, float]]] = {"ours": [], "peer": []}
    for r in range(repeats):
        for seed in range(1, pieces + 1):
            order = [("ours", music), ("peer", plain)]
            for name, run in order if (r + seed) % 2 else order[::-1]:
                cpu, wall = time.process_time(), time.perf_counter()
                seconds = run(seed)
                got[name].append((seconds, time.process_time() - cpu, time.perf_counter() - wall))
    out: dict[str, object] = {}
    for name, rows in got.items():
        out[name] = statistics.median(m / c for m, c, _ in rows)
        out[f"{name}_wall"] = statistics.median(m / w for m, _, w in rows)
        out[f"{name}_music_s"] = sum(m for m, _, _ in rows) / repeats
    # paired per round: the ratio of music per CPU second, ours over the peer's
    out["paired"] = [
        (m / c) / (pm / pc) for (m, c, _), (pm, pc, _) in zip(got["ours"], got["peer"], strict=True)
    ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--figures", default="hf,realtime", help="which of hf,realtime to run")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=7, help="HF figure: rounds")
    ap.add_argument("--rt-repeats", type=int, default=2, help="real-time figure: rounds per seed")
    ap.add_argument("--variants", default="relative,rope", help="positions of ours to time")
    ap.add_argument("--pieces", type=int, default=10, help="real-time figure: pieces (seeds)")
    ap.add_argument("--bars", type=int, default=8, help="real-time figure: bars per piece")
    ap.add_argument("--rt-batches", default="1,8", help="real-time figure: pieces sampled together")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # numpy's BLAS (our decoder's small products) gets the same thread count as PyTorch's
    with blas_threads(args.threads):
        run(args, set(args.figures.split(",")))


def run(args: argparse.Namespace, figures: set[str]) -> None:
    if "hf" in figures:
        try:
            import transformers  # noqa: F401
        except ImportError:
            print(
                "skipping the HF figure: needs transformers (pip install -e '.[hf]')",
                file=sys.stderr,
            )
        else:
            hf_figure(args)
    for batch in (int(b) for b in args.rt_batches.split(",")) if "realtime" in figures else ():
        rt = realtime(args.pieces, args.rt_repeats, args.bars, batch)
        emit(
            "generate.realtime.bach_default" + (f".batch{batch}" if batch > 1 else ""),
            rt["ours"],
            rt["peer"],
            "x realtime",
            **spread(rt["paired"]),
            peer_is="same model+settings, plain PyTorch loop (module forward, torch top-p)",
            measure="music seconds / process CPU seconds",
            ours_wall=round(rt["ours_wall"], 3),
            peer_wall=round(rt["peer_wall"], 3),
            music_seconds=round(rt["ours_music_s"], 1),
            peer_music_seconds=round(rt["peer_music_s"], 1),
            pieces=args.pieces,
            bars=args.bars,
            batch=batch,
            top_p=0.95,
            threads=args.threads,
        )


def hf_figure(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    hf = peer(args.prompt + args.new)
    models = {v: ours(v) for v in args.variants.split(",")}
    for batch in (int(b) for b in args.batches.split(",")):
        prompt = torch.randint(3, VOCAB, (batch, args.prompt))
        runs: dict[str, Callable[[], torch.Tensor]] = {
            "hf": partial(hf_greedy, hf, prompt, args.new),
            **{v: partial(greedy, m, prompt, args.new) for v, m in models.items()},
        }
        for name, run in runs.items():  # warm-up (also checks the output shape)
            assert run().shape == (batch, args.new), name
        times = interleaved(runs, args.repeats)
        wall = {name: [w for w, _ in t] for name, t in times.items()}
        cpu = {name: [c for _, c in t] for name, t in times.items()}
        tokens = batch * args.new
        for variant in models:
            cpu_ratios = spread(paired_ratios(cpu[variant], cpu["hf"]))
            emit(
                f"generate.tokens_per_s.batch{batch}.kv_cache_vs_hf_generate",
                tokens / statistics.median(wall[variant]),
                tokens / statistics.median(wall["hf"]),
                "tokens/s",
                **spread(paired_ratios(wall[variant], wall["hf"])),
                cpu_ratio=cpu_ratios["ratio"],
                cpu_ratio_range=cpu_ratios["ratio_range"],
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
