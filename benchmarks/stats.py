"""Score statistics of 400 Bach chorales: musegen's vectorised features vs a plain-Python peer.

The peer is what one would write without musegen: parse each MIDI file with pretty_midi and
compute the same features (the definitions of :mod:`musegen.metrics.stats`) with Python loops
over the notes (``tests/reference_stats.py``). Two figures:

* ``stats.read_and_features``: seconds to read the 400 files and compute every scalar and
  histogram feature (musegen: symusic reading + numpy; peer: pretty_midi + Python loops);
* ``stats.features_only``: pieces per second for the features alone, both sides given the
  same notes already in memory.

Both sides' values are compared and the largest difference printed to stderr. musegen's time is
the best of three runs; the peer's is one run (it takes long).

    .venv/bin/python benchmarks/stats.py      # pretty_midi: pip install -e ".[bench]"
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from _corpus import bach_midi_files, best_time, emit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_stats import features as reference_features
from reference_stats import histograms as reference_histograms

N_PIECES = 400


def ours_all(files: list[Path]) -> list[dict]:
    from musegen.io import load
    from musegen.metrics.stats import compute_features

    return [compute_features(load(f)) for f in files]


def notes_of(score) -> tuple[list, int, list]:  # type: ignore[no-untyped-def]
    """A musegen score as the reference's neutral input."""
    notes = [
        (int(n["start"]), int(n["duration"]), int(n["pitch"]), k)
        for k, t in enumerate(score.tracks)
        if not t.is_drum
        for n in t.notes
    ]
    sigs = [(ts.time, ts.numerator, ts.denominator) for ts in score.time_signatures]
    return notes, score.tpq, sigs


def pretty_notes(path: Path) -> tuple[list, int, list]:
    """A MIDI file read by pretty_midi, as the reference's neutral input (ticks)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    notes = []
    for k, inst in enumerate(i for i in pm.instruments if not i.is_drum):
        for n in inst.notes:
            start = pm.time_to_tick(n.start)
            notes.append((start, pm.time_to_tick(n.end) - start, n.pitch, k))
    sigs = [
        (pm.time_to_tick(ts.time), ts.numerator, ts.denominator) for ts in pm.time_signature_changes
    ]
    return notes, pm.resolution, sigs


def reference_all(inputs: list[tuple[list, int, list]]) -> list[dict]:
    return [
        reference_features(n, tpq, sigs) | reference_histograms(n, tpq) for n, tpq, sigs in inputs
    ]


def largest_difference(ours: list[dict], peer: list[dict]) -> tuple[float, str]:
    worst, where = 0.0, ""
    for a, b in zip(ours, peer, strict=True):
        for name, value in b.items():
            diff = np.nanmax(np.abs(np.asarray(a[name], float) - np.asarray(value, float)))
            if diff > worst:
                worst, where = float(diff), name
    return worst, where


def main() -> int:
    try:
        import pretty_midi  # noqa: F401
    except ImportError:
        print("benchmarks/stats.py needs pretty_midi: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    from musegen.io import load
    from musegen.metrics.stats import compute_features

    files = bach_midi_files()[:N_PIECES]
    scores = [load(f) for f in files]
    n_notes = sum(s.n_notes for s in scores)
    print(f"# {len(files)} chorales, {n_notes} notes", file=sys.stderr)

    t_ours = best_time(lambda: ours_all(files))
    t = time.perf_counter()
    peer_values = reference_all([pretty_notes(f) for f in files])
    t_peer = time.perf_counter() - t
    diff, where = largest_difference(ours_all(files), peer_values)
    print(f"# largest difference ours vs peer: {diff:.3g} ({where})", file=sys.stderr)
    emit(
        "stats.read_and_features.400_chorales",
        t_ours,
        t_peer,
        "s",
        higher_is_better=False,
        peer_name="pretty_midi + Python loops",
    )

    inputs = [notes_of(s) for s in scores]
    t_ours = best_time(lambda: [compute_features(s) for s in scores])
    t = time.perf_counter()
    reference_all(inputs)
    t_peer = time.perf_counter() - t
    emit(
        "stats.features_only",
        len(scores) / t_ours,
        len(scores) / t_peer,
        "pieces/s",
        peer_name="Python loops (tests/reference_stats.py)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
