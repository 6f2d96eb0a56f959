"""Writing MusicXML: seconds for long scores, ours vs music21's own writer.

A two-track piece (a melody of 16ths to half notes, some dotted, a quarter of them chords,
notes tied over bar lines; and a bass line in half notes) of 500, 2,000 and 4,200 bars of 4/4 in E flat, 16th grid. Ours: Score -> bytes with
:func:`musegen.io.music21.musicxml_bytes` (snap to the grid, lay out bars, write). Peer: the
same notes as music21 parts (inserted in one pass) written by music21's own MusicXML exporter
(``GeneralObjectExporter``, which makes measures, ties, beams and accidentals with
``makeNotation``), the way musegen wrote MusicXML before. Both documents are read back by our
reader at the smallest size, to check they hold the same notes. CPU seconds of this process,
one run each (the peer takes minutes at 4,200 bars); ratio = peer / ours (> 1: ours faster).

    .venv/bin/python benchmarks/musicxml_write.py [--bars 500 2000 4200] [--skip-peer-over N]
"""

from __future__ import annotations

import argparse
import gc
import time
from fractions import Fraction

import numpy as np

from _corpus import emit


def piece(bars: int):  # type: ignore[no-untyped-def]
    """A seeded two-track score ``bars`` bars long."""
    from musegen.score import KeySignature, Score, Tempo, TimeSignature, Track, make_notes

    rng = np.random.default_rng(bars)
    starts, durs, pitches = [], [], []
    t, end = 0, bars * 1920
    while t < end:
        d = int(rng.choice([120, 240, 240, 360, 480, 720, 960]))
        p = int(rng.integers(62, 82))
        starts.append(t), durs.append(d), pitches.append(p)
        if rng.random() < 0.25:  # a chord
            starts.append(t), durs.append(d), pitches.append(p - int(rng.choice([3, 4, 5])))
        t += d
    bass_t = np.arange(bars * 2) * 960
    bass_p = 39 + rng.choice([0, 5, 7, 12], len(bass_t))
    return Score(
        tracks=[
            Track(make_notes(starts, durs, pitches, rng.integers(50, 110, len(starts)))),
            Track(make_notes(bass_t, np.full(len(bass_t), 960), bass_p, 70), program=32),
        ],
        tempos=[Tempo(0, 100.0)],
        time_signatures=[TimeSignature(0, 4, 4)],
        key_signatures=[KeySignature(0, -3)],
    )


def ours(score) -> bytes:  # type: ignore[no-untyped-def]
    from musegen.io.music21 import musicxml_bytes

    return musicxml_bytes(score)


def peer(score) -> bytes:  # type: ignore[no-untyped-def]
    """music21's writer: parts of notes and chords (no measures), then its exporter."""
    from music21 import chord, instrument, key, meter, note, stream, tempo
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    out = stream.Score()
    q = Fraction(1, score.tpq)
    for i, track in enumerate(score.tracks):
        part = stream.Part(id=f"P{i + 1}")
        part.insert(0, instrument.instrumentFromMidiProgram(track.program))
        part.insert(0, meter.TimeSignature("4/4"))
        part.insert(0, key.KeySignature(score.key_signatures[0].key))
        if i == 0:
            part.insert(0, tempo.MetronomeMark(number=score.tempos[0].qpm))
        groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for s, d, p, v in track.notes[["start", "duration", "pitch", "velocity"]].tolist():
            groups.setdefault((s, d), []).append((p, v))
        for (s, d), members in sorted(groups.items()):  # the piece has no overlapping chords
            if len(members) == 1:
                el = note.Note(members[0][0])
            else:
                el = chord.Chord([m[0] for m in members])
            el.volume.velocity = round(sum(m[1] for m in members) / len(members))
            el.quarterLength = d * q
            part.coreInsert(s * q, el)  # one pass: Stream.insert re-sorts on every call
        part.coreElementsChanged()
        out.insert(0, part)
    return GeneralObjectExporter(out).parse()


def same_notes(score, a: bytes, b: bytes) -> bool:  # type: ignore[no-untyped-def]
    from musegen.io.music21 import _musicxml_to_score

    def rows(data: bytes) -> list:
        s = _musicxml_to_score("<bench>", data)
        return sorted(
            tuple(n) for t in s.tracks for n in t.notes[["start", "duration", "pitch"]].tolist()
        )

    return rows(a) == rows(b)


def cpu(fn, *args) -> tuple[float, bytes]:  # type: ignore[no-untyped-def]
    gc.collect()  # the garbage of the run before is not charged to this one
    t = time.process_time()
    out = fn(*args)
    return time.process_time() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, nargs="+", default=[500, 2000, 4200])
    ap.add_argument("--skip-peer-over", type=int, default=10_000, help="bars; 0: no peer")
    args = ap.parse_args()
    import music21  # noqa: F401  (its import is paid before either side is timed)

    from musegen.io.music21 import _gm_instrument

    _gm_instrument(0)  # music21's instrument table, loaded once
    for i, bars in enumerate(args.bars):
        score = piece(bars)
        ours_s, data = cpu(ours, score)
        extra: dict[str, object] = {"bars": bars, "notes": score.n_notes, "bytes": len(data)}
        if bars > args.skip_peer_over or not args.skip_peer_over:
            print(f"# {bars} bars: ours {ours_s:.2f} s CPU (peer skipped)", flush=True)
            continue
        peer_s, peer_data = cpu(peer, score)
        if i == 0:
            extra["same_notes_read_back"] = same_notes(score, data, peer_data)
        emit(
            f"musicxml_write_{bars}_bars", ours_s, peer_s, "s CPU", higher_is_better=False, **extra
        )


if __name__ == "__main__":
    main()
