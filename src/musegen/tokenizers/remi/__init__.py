"""REMI tokenizer (Huang & Yang 2020) with REMI+-style program tokens for multi-track music.

Token order, per bar::

    BAR [TIME_SIG]                             TIME_SIG on the first bar and at meter changes
      POSITION [TEMPO]                         per onset (or tempo change), increasing in a bar
        [PROGRAM] PITCH [VELOCITY] DURATION    per note, sorted by (program, pitch, duration,
                                               velocity), none twice (the grammar keeps it so)

Empty bars still get their BAR token. A PROGRAM token (0..127, 128 = drums) precedes the first
note of each program at a position, so every position names its instruments afresh: a chord
of one instrument costs one PROGRAM token, and a sampler never has to remember the instrument
across positions.

Time is a grid of ``positions_per_quarter`` steps per quarter note (default 12: 16ths and
8th-note triplets are exact); decoded scores are at 480 ticks per quarter.
:meth:`RemiTokenizer.prepare` gives the canonical form the tokens describe, which is what
``decode(encode(s))`` returns (the rules are listed in :mod:`.encode`).

The modules: :mod:`.vocab` (config, id blocks and value tables), :mod:`.encode` (scores to
canonical form to ids, many pieces at once), :mod:`.decode` (ids to a score), :mod:`.grammar`
(allowed next ids, for one sequence or a batch) and :mod:`.tokenizer` (the class that joins
them). ``python -m musegen.tokenizers.remi --describe`` prints the vocabulary and grammar.
"""

# the run helpers under the names they had in the one-file module (the tests use them)
from musegen.tokenizers.remi.arrays import first_of_runs as _first_of_runs  # noqa: F401
from musegen.tokenizers.remi.arrays import sorted_unique as _sorted_unique  # noqa: F401
from musegen.tokenizers.remi.grammar import RemiBatchGrammar, RemiGrammar
from musegen.tokenizers.remi.tokenizer import RemiTokenizer
from musegen.tokenizers.remi.vocab import (
    DEFAULT_TIME_SIGNATURES,
    DRUMS,
    K_BAR,
    K_BOS,
    K_DUR,
    K_EOS,
    K_PAD,
    K_PITCH,
    K_POS,
    K_PROG,
    K_TEMPO,
    K_TS,
    K_VEL,
    TPQ,
    RemiConfig,
    RemiVocab,
)

__all__ = [
    "DEFAULT_TIME_SIGNATURES",
    "DRUMS",
    "K_BAR",
    "K_BOS",
    "K_DUR",
    "K_EOS",
    "K_PAD",
    "K_PITCH",
    "K_POS",
    "K_PROG",
    "K_TEMPO",
    "K_TS",
    "K_VEL",
    "TPQ",
    "RemiBatchGrammar",
    "RemiConfig",
    "RemiGrammar",
    "RemiTokenizer",
    "RemiVocab",
]
