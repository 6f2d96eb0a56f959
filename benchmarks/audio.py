"""Neural synthesizer (issue 24) vs the built-in numpy synthesizer, on held-out pieces rendered
by the SoundFont it was trained on (TimGM6mb from pretty_midi's wheel), all at 16 kHz mono.

Pieces: the first ``--pieces`` of the ``--split`` of ``jsb`` (played by the church organ,
program 19) and of ``pianomidi`` (acoustic grand piano, program 0), each cut to ``--seconds``.

* ``audio.mrstft.{organ,piano}``: mean multi-resolution STFT distance from the SoundFont
  render (``musegen.audio.metrics.mr_stft_distance``; equal RMS, mono). Ours: the neural
  synth; peer: the built-in synth; ratio = peer / ours (the issue's target: >= 2).
* ``audio.frechet.{organ,piano}``: Fréchet distance of the set's mel-cepstral frame
  embeddings from the SoundFont renders' (ratio = peer / ours).
* ``audio.speed.neural``: seconds of audio per second of rendering on one thread, 16 kHz
  (``.44k``: rendered at 44.1 kHz, as ``render --synth neural`` writes); peer: the issue's
  target of 10x real time.

Transcription note-F1 is not measured: no audio-to-MIDI model installs here without
TensorFlow/ONNX Runtime (see the report). ``--examples DIR`` writes short WAVs of the first
piece of each set by the three synthesizers.

Prints JSON lines ``{"benchmark", "ours", "peer", "ratio", "unit"}`` (ratio > 1: we are better).

    .venv/bin/python benchmarks/audio.py --split test --threads 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RATE = 16_000
SETS = (("organ", "jsb", 19), ("piano", "pianomidi", 0))


def held_out(source: str, program: int, split: str, count: int, seconds: float) -> list:
    from musegen.data.sources import get_source

    out = []
    for _, score in get_source(source).scores(split):
        cut = score.slice_ticks(0, int(score.seconds_to_ticks(seconds)))
        for track in cut.tracks:
            track.program = program
        if cut.n_notes:
            out.append(cut)
        if len(out) == count:
            break
    return out


def emit(name: str, ours: float, peer: float, unit: str, higher_is_better: bool) -> None:
    ratio = ours / peer if higher_is_better else peer / max(ours, 1e-12)
    line = {
        "benchmark": name,
        "ours": round(ours, 4),
        "peer": round(peer, 4),
        "ratio": round(ratio, 3),
        "unit": unit,
    }
    print(json.dumps(line), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="test", choices=("valid", "test"))
    ap.add_argument("--pieces", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--model", default=None, help="synth model folder (default: shipped)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--examples", metavar="DIR", help="write short example WAVs here")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from musegen.audio.metrics import audio_frechet, mr_stft_distance
    from musegen.audio.synth import load_synth, render_neural
    from musegen.render.audio import (
        find_soundfont,
        normalize,
        render_builtin,
        render_soundfont,
        write_wav,
    )

    sf = find_soundfont()
    load_synth(args.model)  # loaded once, outside the timing
    spent = {"neural": 0.0, "neural44": 0.0}
    audio_seconds = 0.0
    for name, source, program in SETS:
        scores = held_out(source, program, args.split, args.pieces, args.seconds)
        refs, ours, peers = [], [], []
        for k, score in enumerate(scores):
            ref = render_soundfont(score, sf, RATE).mean(axis=1)
            t = time.perf_counter()
            neural = render_neural(score, RATE, args.model).mean(axis=1)
            spent["neural"] += time.perf_counter() - t
            t = time.perf_counter()
            render_neural(score, 44_100, args.model)
            spent["neural44"] += time.perf_counter() - t
            audio_seconds += score.duration_seconds()
            builtin = render_builtin(score, RATE).mean(axis=1)
            refs.append(ref)
            ours.append(neural)
            peers.append(builtin)
            if args.examples and k == 0:
                out = Path(args.examples)
                n = 5 * RATE
                for label, audio in (("soundfont", ref), ("neural", neural), ("builtin", builtin)):
                    stereo = normalize(np.repeat(audio[:n, None], 2, axis=1))
                    write_wav(out / f"{name}-{label}.wav", stereo, RATE)
        d_ours = float(np.mean([mr_stft_distance(o, r) for o, r in zip(ours, refs, strict=True)]))
        d_peer = float(np.mean([mr_stft_distance(p, r) for p, r in zip(peers, refs, strict=True)]))
        emit(f"audio.mrstft.{name}", d_ours, d_peer, "MR-STFT distance (lower is better)", False)
        f_ours = audio_frechet(ours, refs, RATE)
        f_peer = audio_frechet(peers, refs, RATE)
        emit(f"audio.frechet.{name}", f_ours, f_peer, "Frechet distance, cepstral (lower)", False)
    emit(
        "audio.speed.neural",
        audio_seconds / spent["neural"],
        10.0,
        f"x real time at 16 kHz, {args.threads} thread(s)",
        True,
    )
    emit(
        "audio.speed.neural.44k",
        audio_seconds / spent["neural44"],
        10.0,
        f"x real time at 44.1 kHz, {args.threads} thread(s)",
        True,
    )


if __name__ == "__main__":
    main()
