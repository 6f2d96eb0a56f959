"""music21's multi-part corpora as MIDI files for a ``remi-instruments`` model with style tags.

Each piece is written with its tracks' GM programs and a ``style:NAME`` MIDI marker at tick 0
(the tag the ``remi-instruments`` tokenizer's ``styles`` option turns into a STYLE token), and
``splits.json`` says each file's split. Styles (music21 corpus, what it holds):

* ``haydn``, ``mozart``, ``beethoven``, ``schumann``: string quartets (Haydn op. 1 no. 1, op. 74
  no. 1; Mozart K. 80, 155, 156, 458; Beethoven op. 18, 59, 74, 132, 133; Robert Schumann
  op. 41 no. 1). Parts are named (``Violin I`` -> violin 40, ``Viola`` -> 41,
  ``Violoncello`` -> 42); a piece with a part it cannot name is left out.
* ``bach``: the four-part chorales (parts Soprano, Alto, Tenor, Bass).
* ``monteverdi``: the madrigals (books 3-5, five voices).
* ``palestrina``: mass movements (Humdrum; every ``--palestrina-step``-th file, by name).

Voices are played by strings, as a string quartet plays a chorale: ranked by mean pitch, the
lowest is a cello (42), the upper half violins (40), the rest violas (41); so every style shares
one ensemble and the STYLE token alone tells them apart. Tracks of one program are one part
(REMI merges them), as the quartets' two violins are.

The split of a piece is :func:`~musegen.data.sources.base.hash_split` of the SHA-256 of its
file **without** the marker, so the quartets keep the split of ``scripts/string_quartets.py``'s
files (the shipped ``quartet`` model's valid and test movements stay out of training).
``--prepare DIR`` tokenizes the folder with those splits (a ``folder`` source whose split is
read from ``splits.json``)::

    .venv/bin/python scripts/multipart_corpora.py --out data/multipart-midi \\
        --prepare data/multipart --config '{"velocity_bins": 8, "tempo_bins": 0}'

The corpora trio sonatas would come from are not in music21 (one Corelli movement), so none
is used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

WORDS = {"violin": 40, "violino": 40, "viola": 41, "cello": 42, "violoncello": 42}
QUARTETS = {
    "haydn": ("haydn/",),
    "mozart": ("mozart/",),
    "beethoven": ("beethoven/",),
    "schumann": ("schumann_robert/opus41",),
}
VOICES = {
    "bach": ("bach/",),
    "monteverdi": ("monteverdi/",),
    "palestrina": ("palestrina/",),
}
STYLES = (*QUARTETS, *VOICES)
FORMATS = (".mxl", ".xml", ".musicxml", ".krn")
MARKER = "style:"


def program_for(name: str) -> int | None:
    """The GM program a string part's name names (None: not exactly one of :data:`WORDS`)."""
    words = name.lower().replace(".", " ").replace("-", " ").split()
    hits = {WORDS[w] for w in words if w in WORDS}
    return hits.pop() if len(hits) == 1 else None


def voice_programs(means: list[float]) -> list[int]:
    """Strings for voices ranked by mean pitch: the lowest a cello, the upper half violins,
    the rest violas (4 voices: violin, violin, viola, cello)."""
    order = sorted(range(len(means)), key=lambda i: -means[i])
    out = [0] * len(means)
    for rank, i in enumerate(order):
        if rank == len(means) - 1:
            out[i] = 42
        else:
            out[i] = 40 if rank / max(len(means) - 1, 1) < 0.5 else 41
    return out


def corpus_paths(style: str, palestrina_step: int) -> list[str]:
    """music21 corpus paths of a style (relative to the corpus folder), sorted."""
    from music21 import corpus

    prefixes = {**QUARTETS, **VOICES}[style]
    top = prefixes[0].split("/")[0]
    found = []
    for path in corpus.getComposer(top):
        rel = str(path).split("/corpus/", 1)[-1]
        if Path(rel).suffix in FORMATS and rel.startswith(prefixes):
            found.append(rel)
    found = sorted(set(found))
    if style == "palestrina":
        found = found[::palestrina_step]
    return found


def programs_of(style: str, score: Any) -> list[int] | None:
    """Each track's program for a style's piece, or None to leave the piece out."""
    if len(score.tracks) < 2 or any(not len(t) for t in score.tracks):
        return None
    if style in QUARTETS:
        programs = [program_for(t.name or "") for t in score.tracks]
        return None if None in programs else programs  # type: ignore[return-value]
    if style == "bach" and len(score.tracks) != 4:
        return None
    return voice_programs([float(t.notes["pitch"].mean()) for t in score.tracks])


def split_of(data: bytes) -> str:
    from musegen.data.sources.base import hash_split

    return hash_split(hashlib.sha256(data).hexdigest())


def midi_bytes(score: Any, path: Path) -> bytes:
    from musegen.io import save

    save(score, path)
    return path.read_bytes()


def write_corpora(out: Path, styles: tuple[str, ...], palestrina_step: int) -> dict[str, str]:
    """Write every style's pieces to ``out``; returns file name -> split (also saved)."""
    from musegen.errors import MusegenError
    from musegen.io import load
    from musegen.score import Marker
    from musegen.utils import atomic_write_text, progress

    out.mkdir(parents=True, exist_ok=True)
    splits: dict[str, str] = {}
    counts: dict[str, int] = {}
    todo = [(s, rel) for s in styles for rel in corpus_paths(s, palestrina_step)]
    for style, rel in progress(todo, desc="corpora"):
        try:
            score = load(f"corpus:{rel}")
        except MusegenError as e:
            print(f"skip {rel}: {e}", file=sys.stderr)
            continue
        programs = programs_of(style, score)
        if programs is None:
            names = [t.name for t in score.tracks]
            print(f"skip {rel}: parts {names}", file=sys.stderr)
            continue
        for track, program in zip(score.tracks, programs, strict=True):
            track.program = program
        name = rel.replace("/", "-").rsplit(".", 1)[0] + ".mid"
        if style in VOICES and not name.startswith(style):
            name = f"{style}-{name}"
        path = out / name
        plain = midi_bytes(score, path)  # the bytes string_quartets.py writes: the split
        score.markers = [Marker(0, MARKER + style), *score.markers]
        midi_bytes(score, path)
        splits[name] = split_of(plain)
        counts[style] = counts.get(style, 0) + 1
    atomic_write_text(out / "splits.json", json.dumps(splits, indent=1, sort_keys=True))
    print(f"wrote {sum(counts.values())} pieces to {out}: {counts}")
    return splits


def styled_folder(root: Path) -> Any:
    """A ``folder`` source over ``root`` whose splits come from its ``splits.json``."""
    from musegen.data.sources.folder import Folder
    from musegen.errors import MusegenError

    splits = json.loads((root / "splits.json").read_text())

    class SplitFolder(Folder):
        def iter_pieces(self) -> Iterator[Any]:
            for piece in super().iter_pieces():
                if piece.id not in splits:
                    raise MusegenError(f"{piece.id}: not in {root / 'splits.json'}")
                yield replace(piece, split=splits[piece.id])

        def pieces(self) -> list[Any]:
            return list(self.iter_pieces())

    return SplitFolder(root)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder to write the MIDI files to")
    p.add_argument("--styles", default=",".join(STYLES), help=f"of {', '.join(STYLES)}")
    p.add_argument("--palestrina-step", type=int, default=8, help="every N-th Palestrina file")
    p.add_argument("--skip-write", action="store_true", help="the folder is written: prepare")
    p.add_argument("--prepare", metavar="DIR", help="then tokenize the folder into DIR")
    p.add_argument("--config", default="{}", help="remi-instruments options as JSON (--prepare)")
    args = p.parse_args(argv)
    styles = tuple(s.strip() for s in args.styles.split(",") if s.strip())
    bad = [s for s in styles if s not in STYLES]
    if bad:
        p.error(f"unknown style(s) {', '.join(bad)}; choose of {', '.join(STYLES)}")
    out = Path(args.out)
    if not args.skip_write:
        write_corpora(out, styles, args.palestrina_step)
    if args.prepare:
        from musegen.data.dataset import prepare_dataset
        from musegen.tokenizers import get_tokenizer

        config = {"styles": list(styles), **json.loads(args.config)}
        tokenizer = get_tokenizer("remi-instruments", **config)
        manifest = prepare_dataset(styled_folder(out), tokenizer, args.prepare, workers=1)
        print(json.dumps({k: v.__dict__ for k, v in manifest.splits.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
