"""Voice separation accuracy on Bach's chorales: ``musegen.voices.separate_voices`` vs the
plain rule (at each onset, rank the sounding notes by pitch), one JSON line per split.

Each chorale of music21's corpus (the ``bach`` source, its stored split) with exactly four
labelled S/A/T/B parts is merged into one track and dealt out again; a note counts as right
when it lands in the voice it came from (duplicates of one pitch at one onset, two voices in
unison, count as right in either). The costs (``CUT``, ``CROSS``) were chosen on ``train``;
``valid`` and ``test`` are reported, with the notes that overlap the previous note of
their voice (the rank rule can put two sounding notes in one voice; ours cuts instead). ``--grid`` prints the train accuracy of a grid of
costs (how they were chosen). Run: ``python benchmarks/voice_separation.py``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import replace
from functools import partial

import numpy as np

from _corpus import emit
from musegen.data.sources import get_source
from musegen.score import VOICES, Score, Track
from musegen.voices import CROSS, CUT, separate_voices


def chorales(split: str, limit: int | None) -> list[Score]:
    source = get_source("bach")
    pieces = [p for p in source.pieces() if p.split == split][:limit]
    out = []
    for score in source.load_many(pieces):
        if isinstance(score, Exception):
            continue
        voices = score.voices()
        if sorted(voices) == sorted(VOICES) and all(len(t) for t in voices.values()):
            out.append(replace(score, tracks=[voices[v].copy() for v in VOICES]))
    return out


def _truth(score: Score) -> dict[tuple[int, int], set[int]]:
    """(start, pitch) -> the voices (0..3) that sing it."""
    truth: dict[tuple[int, int], set[int]] = {}
    for v, name in enumerate(VOICES):
        notes = score.voices()[name].notes
        for s, p in zip(notes["start"].tolist(), notes["pitch"].tolist(), strict=True):
            truth.setdefault((s, p), set()).add(v)
    return truth


def merged(score: Score) -> Score:
    """All four voices on one track, a note sung by two voices in unison kept once (as a
    tokenizer that merges tracks writes it, e.g. REMI without programs)."""
    one = score.merge_tracks()
    notes = one.tracks[0].notes
    _, first = np.unique(notes[["start", "pitch", "duration"]], return_index=True)
    return replace(one, tracks=[one.tracks[0].copy(notes[np.sort(first)])])


def accuracy(scores: list[Score], deal) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Notes dealt to a voice that sings them, and notes that overlap the previous note of
    their voice (a voice must be monophonic), both as fractions of the merged notes."""
    right = overlaps = total = 0
    for score in scores:
        truth = _truth(score)
        one = merged(score)
        for v, track in enumerate(deal(one).tracks[:4]):
            notes = track.notes
            starts, pitches = notes["start"].tolist(), notes["pitch"].tolist()
            right += sum(v in truth[(s, p)] for s, p in zip(starts, pitches, strict=True))
            overlaps += int((notes["start"][1:] < (notes["start"] + notes["duration"])[:-1]).sum())
        total += one.n_notes
    return right / total, overlaps / total


def by_rank(score: Score) -> Score:
    """The peer: at each onset, the notes sounding there ranked high to low (S, A, T, B);
    a new note takes the voice of its rank (more than four: the lowest ones to bass)."""
    notes = score.tracks[0].notes
    start, end, pitch = notes["start"], notes["start"] + notes["duration"], notes["pitch"]
    voice = np.zeros(len(notes), dtype=np.int64)
    for i in range(len(notes)):
        sounding = (start <= start[i]) & (end > start[i])
        voice[i] = min(int((pitch[sounding] > pitch[i]).sum()), 3)
    tracks = [Track(notes[voice == v], voice=VOICES[v]) for v in range(4)]
    return Score(tpq=score.tpq, tracks=tracks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", default="valid,test")
    ap.add_argument("--limit", type=int, help="chorales per split (default: all)")
    ap.add_argument("--grid", action="store_true", help="train accuracy over a grid of costs")
    args = ap.parse_args()
    if args.grid:
        train = chorales("train", args.limit)
        for cut, cross in itertools.product((4, 8, 12, 16, 20, 24), (7, 12, 16, 20, 24, 32)):
            acc, _ = accuracy(train, partial(separate_voices, cut=cut, cross=cross))
            print(f"cut {cut:>2} cross {cross:>2}: {acc:.4f}", file=sys.stderr, flush=True)
        return
    for split in args.splits.split(","):
        scores = chorales(split, args.limit)
        t0 = time.perf_counter()
        ours, ours_overlaps = accuracy(scores, separate_voices)
        elapsed = time.perf_counter() - t0
        peer, peer_overlaps = accuracy(scores, by_rank)
        emit(
            f"voice_separation.accuracy.bach_{split}",
            ours,
            peer,
            unit="fraction of notes in a voice that sings them",
            higher_is_better=True,
            overlapping_ours=round(ours_overlaps, 4),
            overlapping_peer=round(peer_overlaps, 4),
            chorales=len(scores),
            notes=sum(merged(s).n_notes for s in scores),
            cut=CUT,
            cross=CROSS,
            seconds=round(elapsed, 2),
            peer_is="rank of the note among those sounding at its onset",
        )


if __name__ == "__main__":
    main()
