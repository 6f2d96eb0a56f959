"""Learn the bin edges of bar descriptions from corpora, and those of the melody-chords tokenizer.

Writes ``src/musegen/metrics/description_bins.json`` (what ``musegen describe`` bins bar density
and mean pitch with: the terciles over every bar of the corpora) and prints the density edges of
the ``melody-chords`` tokenizer (terciles of the top line's notes per beat over the first
reference's bars), for its config (``configs/melody-chords.json`` and ``data prepare
--config``). Run from the repository root:

    .venv/bin/python scripts/description_bins.py [REF ...]
        (default: source:nottingham:train source:jsb:train)
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from musegen.data.refs import resolve
from musegen.metrics.describe import BINS_FILE, learn_bins
from musegen.tokenizers import get_tokenizer
from musegen.utils import atomic_write_text

DEFAULT_REFS = ("source:nottingham:train", "source:jsb:train")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("refs", nargs="*", default=list(DEFAULT_REFS))
    args = p.parse_args(argv)
    scores = {ref: [piece.load() for piece in resolve(ref)] for ref in args.refs}
    every = [s for group in scores.values() for s in group]
    bins = learn_bins(every, corpus=" + ".join(args.refs))
    text = json.dumps(
        {"density": list(bins.density), "pitch": list(bins.pitch), "corpus": bins.corpus}
    )
    atomic_write_text(BINS_FILE, text + "\n")
    print(f"{BINS_FILE}: {text} ({len(every)} pieces)")
    tok = get_tokenizer("melody-chords")
    per_beat = []
    for score in scores[args.refs[0]]:
        bars = tok.bar_controls(tok.encode(score))  # type: ignore[attr-defined]
        per_beat += [b.notes / b.beats for b in bars if b.notes]
    edges = np.round(np.quantile(per_beat, [1 / 3, 2 / 3]), 2).tolist()
    print(f"melody-chords density_edges over {args.refs[0]}: {edges} ({len(per_beat)} bars)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
