"""The model size the speed benchmarks share (6 layers, d_model 256, 4 heads, vocab 512): ours
and Hugging Face GPT-2 built alike, for ``train.py`` and ``generate.py``."""

from __future__ import annotations

import torch

from musegen.models import build_model

LAYERS, D_MODEL, HEADS, VOCAB = 6, 256, 4, 512


def transformer(position: str, **options: object) -> torch.nn.Module:
    """musegen's transformer of the shared size (``options``: other config fields)."""
    return build_model(
        "transformer",
        vocab_size=VOCAB,
        n_layer=LAYERS,
        n_head=HEADS,
        d_model=D_MODEL,
        position=position,
        **options,
    )


def gpt2(positions: int) -> torch.nn.Module:
    """``GPT2LMHeadModel`` of the shared size: embedding/residual dropout 0.1, no attention
    dropout, tied embeddings, SDPA attention (needs ``transformers``)."""
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging

    logging.set_verbosity_error()  # no notes about config defaults in the benchmark output

    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=positions,
        n_embd=D_MODEL,
        n_layer=LAYERS,
        n_head=HEADS,
        resid_pdrop=0.1,
        embd_pdrop=0.1,
        attn_pdrop=0.0,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        attn_implementation="sdpa",
    )
    return GPT2LMHeadModel(config)
