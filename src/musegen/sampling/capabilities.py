"""What a saved model can do, as words (``musegen models``), read from its config alone.

The words come from the generator class that would load the model
(:func:`musegen.sampling.generators.generator_class`) and its
:meth:`~musegen.sampling.generators.Generator.capabilities`, which by default are the commands
the class serves (``generate``, ``harmonize``, ``infill``, ``accompany``). A token model adds
what its tokenizer allows, so a new tokenizer or generator gets its words without a table
kept by hand:

* ``continue``: it continues a primer (``generate --primer``);
* ``infill``, ``accompany``: its tokenizer is an infill one (:func:`~musegen.tokenizers.infill.
  can_infill`);
* ``chords``, ``density``, ``instruments``, ``style`` …: the per-request controls its
  tokenizer lists in its ``controls`` attribute;
* ``theme``, ``structure``: bar-grid tokenizers, whose bars :mod:`musegen.sampling.themes` and
  :mod:`musegen.sampling.structure` can plan (``generate --theme``, ``--form``).

No weights are loaded and torch is not imported.
"""

from __future__ import annotations

from typing import Any

# the order words are printed in; words not listed here follow in the order they came
ORDER = (
    "generate",
    "continue",
    "infill",
    "accompany",
    "harmonize",
    "chords",
    "density",
    "theme",
    "structure",
    "instruments",
    "style",
)


def model_capabilities(meta: dict[str, Any]) -> tuple[str, ...]:
    """The capability words of a model saved with config ``meta`` (its ``config.json``);
    empty for a model no generator loads (one that writes no pieces)."""
    from musegen.sampling.generators import generator_class

    cls = generator_class(meta)
    return () if cls is None else ordered(cls.capabilities(meta))


def token_capabilities(tokenizer: Any) -> tuple[str, ...]:
    """What a token model with ``tokenizer`` can do beyond ``generate`` (module docstring)."""
    from musegen.sampling.structure import plannable
    from musegen.tokenizers.infill import can_infill

    words = ["generate", "continue"]
    if can_infill(tokenizer):
        words += ["infill", "accompany"]
    words += list(getattr(tokenizer, "controls", ()))
    if plannable(tokenizer):
        words += ["theme", "structure"]
    return ordered(words)


def ordered(words: Any) -> tuple[str, ...]:
    """``words`` once each, in :data:`ORDER` (others after, as they came)."""
    unique = list(dict.fromkeys(words))
    known = [w for w in ORDER if w in unique]
    return (*known, *(w for w in unique if w not in ORDER))
