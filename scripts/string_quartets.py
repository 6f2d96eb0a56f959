"""Write music21's string quartets as MIDI files whose tracks carry their instruments' programs.

music21 gives every part of its quartet scores the same program (String Ensemble); this names
each track's GM program from its part name (``Violin I`` → violin, 40; ``Viola`` → 41;
``Violoncello``/``Cello`` → 42; ``Contrabass`` → 43) and leaves out a piece with a part it
cannot name. The folder it writes is a ``folder`` source for ``musegen data prepare`` (the
split is by content hash), e.g. for the ``remi-instruments`` tokenizer::

    .venv/bin/python scripts/string_quartets.py --out data/quartets-midi
    musegen data prepare folder --root data/quartets-midi -t remi-instruments \\
        --config '{"velocity_bins": 8, "tempo_bins": 0}' --out data/quartets

Composers: Haydn, Mozart, Beethoven (music21's corpus, MusicXML and Humdrum).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

WORDS = {"violin": 40, "viola": 41, "cello": 42, "violoncello": 42, "contrabass": 43}
COMPOSERS = ("haydn", "mozart", "beethoven")


def program_for(name: str) -> int | None:
    """The GM program a part name names (None: none of :data:`WORDS`)."""
    words = name.lower().replace(".", " ").replace("-", " ").split()
    hits = {WORDS[w] for w in words if w in WORDS}
    return hits.pop() if len(hits) == 1 else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder to write the MIDI files to")
    p.add_argument("--limit", type=int, default=0, help="at most this many pieces (0: all)")
    args = p.parse_args(argv)
    from music21 import corpus

    from musegen.errors import MusegenError
    from musegen.io import load, save
    from musegen.utils import progress

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for composer in COMPOSERS:
        for path in corpus.getComposer(composer):
            rel = str(path).split("/corpus/", 1)[-1]
            if Path(rel).suffix in (".mxl", ".xml", ".musicxml", ".krn"):
                paths.append(rel)
    if args.limit:
        paths = paths[: args.limit]
    written = skipped = 0
    for rel in progress(paths, desc="quartets"):
        try:
            score = load(f"corpus:{rel}")
        except MusegenError as e:
            print(f"skip {rel}: {e}", file=sys.stderr)
            skipped += 1
            continue
        programs = [program_for(t.name or "") for t in score.tracks]
        if len(score.tracks) < 2 or None in programs:
            names = [t.name for t in score.tracks]
            print(f"skip {rel}: parts {names} (not all named instruments)", file=sys.stderr)
            skipped += 1
            continue
        for track, program in zip(score.tracks, programs, strict=True):
            track.program = program  # type: ignore[assignment]
        save(score, out / (rel.replace("/", "-").rsplit(".", 1)[0] + ".mid"))
        written += 1
    print(f"wrote {written} pieces to {out} ({skipped} skipped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
