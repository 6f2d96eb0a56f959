"""Autoregressive generation with a KV cache, logit filters and grammar masks.

Every step masks the logits with each sequence's tokenizer grammar, so whatever the model
says, the output decodes to a valid score. Sequences are sampled as a batch from one primer
(``num`` variations); the seed makes runs reproducible.

The loop is built for small models, where per-step overhead rivals the model itself: the ids
live in one preallocated numpy array, the batch's grammar mask is one call
(:meth:`Tokenizer.batch_grammar`), filters and sampling are numpy (:mod:`.filters`), and the
model sees one ``[B, 1]`` tensor per step (a transformer on the CPU then runs its fused step,
:mod:`musegen.models.cpu`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np
import torch

from musegen.errors import MusegenError
from musegen.models.base import LanguageModel, last_logits
from musegen.sampling.filters import Filter, apply_filters, build_filters, sample
from musegen.tokenizers.base import BOS, EOS, PAD, BatchGrammar, Tokenizer


@dataclass
class SamplingConfig:
    max_new_tokens: int = 1024
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0
    pitch_top_p: float = 1.0  # a nucleus among the pitch tokens only (filters.top_p_within)
    key_bias: float = 0.0  # nats taken from pitches out of the key so far (filters.key_bias)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def filters(self, tokenizer: Tokenizer) -> list[Filter]:
        """The logit filters these settings ask for (``pitch_top_p`` and ``key_bias`` over
        ``tokenizer``'s pitch ids, where it has a pitch block)."""
        return build_filters(
            self.temperature,
            self.top_k,
            self.top_p,
            self.repetition_penalty,
            self.pitch_top_p,
            _pitch_block(tokenizer),
            self.key_bias,
            _pitch_base(tokenizer),
        )


StopFn = Callable[[np.ndarray], bool]
SMALL_STEP = 2**24  # batch x parameters up to which a CPU decoding step runs single-threaded


def _pitch_block(tokenizer: Tokenizer) -> tuple[int, int] | None:
    """The ids ``lo:hi`` of the tokenizer's pitch tokens (its ``pitch`` block), if it has one."""
    vocab = getattr(tokenizer, "vocab", None)
    return vocab.span("pitch") if vocab is not None and "pitch" in vocab else None


def _pitch_base(tokenizer: Tokenizer) -> int:
    """The MIDI pitch of the first id of the tokenizer's pitch block (0 for a block of all 128
    pitches, else its vocabulary's ``pitch_lo``)."""
    vocab = getattr(tokenizer, "vocab", None)
    if vocab is None or "pitch" not in vocab or vocab.size("pitch") == 128:
        return 0
    return int(getattr(vocab, "pitch_lo", 0))


def primer_ids(tokenizer: Tokenizer, primer: np.ndarray | None) -> np.ndarray:
    """BOS followed by the primer (already encoded, without EOS), checked by the grammar."""
    ids = np.array([BOS], dtype=np.int64)
    if primer is not None and len(primer):
        body = np.asarray(primer, dtype=np.int64)
        if body[0] == BOS:
            body = body[1:]
        if len(body) and body[-1] == EOS:
            body = body[:-1]
        ids = np.concatenate([ids, body])
    try:
        tokenizer.grammar().feed(ids)
    except ValueError as e:
        raise MusegenError(f"the primer is not a valid {tokenizer.name} sequence ({e})") from e
    return ids


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    num: int = 1,
    primer: np.ndarray | None = None,
    config: SamplingConfig | None = None,
    stop: StopFn | None = None,
    stop_every: int = 32,
    progress: bool = False,
    hold_eos: bool = False,
    constraints: list[Filter] | None = None,
) -> list[np.ndarray]:
    """Sample ``num`` sequences (ids including BOS, and EOS when the model ended them).

    ``stop(ids)`` is asked every ``stop_every`` steps per unfinished sequence (e.g. "has it
    reached 16 bars?"); a sequence for which it says yes is finished. Generation also ends at
    ``max_new_tokens``. With ``hold_eos`` the model may not end a sequence itself (EOS only
    where the grammar allows nothing else), so a length asked for through ``stop`` is reached.
    ``constraints`` are filters applied before the sampling ones, after the grammar (e.g.
    :func:`~musegen.sampling.filters.hold_meter`).
    """
    cfg = config or SamplingConfig()
    if num < 1:
        raise MusegenError(f"--num must be >= 1, got {num}")
    if cfg.max_new_tokens < 1:
        raise MusegenError("max_new_tokens must be >= 1")
    filters = [*(constraints or []), *cfg.filters(tokenizer)]
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab is not None and vocab != len(tokenizer):
        raise MusegenError(
            f"model and tokenizer do not match: the model has {vocab} tokens, the "
            f"{tokenizer.name} tokenizer {len(tokenizer)}"
        )
    device = next(model.parameters()).device
    prompt = primer_ids(tokenizer, primer)
    grammar = tokenizer.batch_grammar(num, prompt)
    model.eval()
    with decoding_threads(model, num, device):
        return _sample(
            model, grammar, prompt, cfg, filters, stop, stop_every, progress, hold_eos=hold_eos
        )


def _sample(
    model: torch.nn.Module,
    grammar: BatchGrammar,
    prompt: np.ndarray,
    cfg: SamplingConfig,
    filters: list[Filter],
    stop: StopFn | None,
    stop_every: int,
    progress: bool,
    compact: bool = True,
    hold_eos: bool = False,
) -> list[np.ndarray]:
    """The decoding loop of :func:`generate` (arguments checked there).

    With ``compact``, finished sequences leave the model's batch (``select_cache``): the
    cache's row ``r`` then holds sequence ``active[r]``. Finished rows only ever draw PAD, so
    the draws, and the output, are the same either way.
    """
    device = next(model.parameters()).device
    num = len(grammar.done)
    rng = np.random.default_rng(cfg.seed)
    P = len(prompt)
    ids = np.empty((num, P + cfg.max_new_tokens), dtype=np.int64)  # PAD after a sequence ends
    ids[:, :P] = prompt
    lengths = np.full(num, P)
    cache = model.init_cache(num, P + cfg.max_new_tokens)
    logits, cache = model(torch.as_tensor(ids[:, :P], device=device), cache)
    last = last_logits(logits)  # [rows in the cache, vocab], then one step at a time:
    advance = getattr(model, "next_logits", None) or partial(LanguageModel.next_logits, model)
    finished = grammar.done
    active = np.arange(num)
    compact = compact and num > 1 and _can_select(model)
    every_row: np.ndarray | None = None  # logits of all sequences once some have left
    bar = _bar(cfg.max_new_tokens) if progress else None
    for step in range(cfg.max_new_tokens):
        n = P + step
        masks = grammar.mask()  # finished sequences: PAD only
        if hold_eos:
            masks = without_eos(masks)
        dead = None
        if not np.logical_and.reduce(np.logical_or.reduce(masks, axis=1)):
            dead = ~masks.any(axis=1)  # a grammar dead end: the sequence ends with EOS
            grammar.finish(dead)
            masks = masks.copy()
            masks[dead, EOS] = True
        if len(active) < num:  # the finished rows' logits are never used (PAD only)
            if every_row is None:
                every_row = np.zeros((num, last.shape[1]), dtype=np.float32)
            every_row[active] = last
            last = every_row
        next_logits = np.where(masks, last, np.float32(-np.inf))
        if filters:
            next_logits = apply_filters(next_logits, ids[:, :n], filters)
        tokens = sample(next_logits, rng)
        ids[:, n] = tokens
        lengths[~finished] = n + 1
        grammar.step(tokens if dead is None else np.where(dead, PAD, tokens))
        finished = grammar.done
        if stop is not None and (step + 1) % stop_every == 0:
            ended = [b for b in np.flatnonzero(~finished) if stop(ids[b, : lengths[b]].copy())]
            if ended:
                grammar.finish(np.array(ended))
                finished = grammar.done
        if bar is not None:
            bar.update(1)
        if finished.all():
            break
        if compact and finished[active].any():
            keep = np.flatnonzero(~finished[active])
            cache = model.select_cache(cache, torch.from_numpy(keep))
            active = active[keep]
        last, cache = advance(ids[active, n], cache)
    if bar is not None:
        bar.close()
    return [ids[b, : lengths[b]].copy() for b in range(num)]


def without_eos(masks: np.ndarray) -> np.ndarray:
    """``masks`` with EOS taken out of every row that allows something else."""
    eos = masks[:, EOS].copy()
    if not eos.any():
        return masks
    masks = masks.copy()
    masks[:, EOS] = False
    masks[eos & ~masks.any(axis=1), EOS] = True
    return masks


@contextmanager
def decoding_threads(model: torch.nn.Module, num: int, device: torch.device) -> Iterator[None]:
    """One intra-op thread (PyTorch's and numpy's BLAS) while decoding a small model on the CPU.

    A step's operations are far too small to split between threads, and waking a pool for
    each costs more than the work (many times more when the other cores are busy).
    """
    from musegen.models.cpu import blas_threads

    small = num * sum(p.numel() for p in model.parameters()) <= SMALL_STEP
    if device.type != "cpu" or not small:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with blas_threads(1):
            yield
    finally:
        torch.set_num_threads(before)


def _can_select(model: torch.nn.Module) -> bool:
    """Whether the model can drop sequences from its cache (``select_cache``)."""
    from musegen.models.base import LanguageModel

    method = getattr(type(model), "select_cache", None)
    return method is not None and method is not LanguageModel.select_cache


def _bar(total: int):  # type: ignore[no-untyped-def]
    from musegen.utils import progress as show

    return show(total=total, desc="generating", unit="tok", leave=False)
