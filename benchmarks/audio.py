"""Neural synthesizer (issue 24) vs the built-in numpy synthesizer, on held-out pieces rendered
by the SoundFont it was trained on (TimGM6mb from pretty_midi's wheel), all at 16 kHz mono.

Pieces: the first ``--pieces`` of the ``--split`` of ``jsb`` (played by the church organ,
program 19) and of ``pianomidi`` (acoustic grand piano, program 0), each cut to ``--seconds``.

* ``audio.mrstft.{organ,piano}``: mean multi-resolution STFT distance from the SoundFont
  render (``musegen.audio.metrics.mr_stft_distance``; equal RMS, mono). Ours: the neural
  synth; peer: the built-in synth; ratio = peer / ours (the issue's target: >= 2).
* ``audio.frechet.{organ,piano}``: Fréchet distance of the set's mel-cepstral frame
  embeddings from the SoundFont renders' (ratio = peer / ours).
* ``audio.speed.neural.cpu``: seconds of audio per CPU second of the rendering thread
  (``time.thread_time``: one core's work, whatever else the host runs), 16 kHz (``.44k``:
  rendered at 44.1 kHz, as ``render --synth neural`` writes); peer: the issue's target of
  10x real time. ``audio.speed.neural``: the same per wall-clock second (the host's load
  average in the unit: on a shared host it is the CPU figure divided by the contention).
* ``audio.speed.neural_vs_builtin``: the neural synth's CPU speed against the built-in numpy
  synth's on the same pieces (ratio = ours / peer).

* ``audio.transcription_f1.{organ,piano}``: onset note F-measure (50 ms) of basic-pitch's ONNX
  model (``musegen.audio.transcribe``) on the neural render against the score, peer: the same
  on the SoundFont render; ratio = ours / peer (the issue's target: >= 0.9). Left out when
  onnxruntime or basic-pitch's model file is missing.

With ``--codec DIR`` (a ``musegen audio train-codec`` run folder), also:

* ``audio.codec.mrstft.{N}cb``: reconstruction MR-STFT distance of the held-out renders
  (both sets) through the codec with N codebooks (its bitrate in the unit); peer: the
  neural synth's distance on the same pieces (a reference point, not a target);
  ``audio.codec.f1.{N}cb``: transcription F1 of the reconstructions over that of the renders.
* ``audio.prior.frechet.{tag}``: Fréchet distance from the held-out renders of the prior's
  samples (``--samples`` x 5 s, tag none/organ/piano); peer: codes drawn uniformly at random,
  decoded by the same codec (ratio = peer / ours).

``--examples DIR`` writes short WAVs of the first
piece of each set by the three synthesizers.

Prints JSON lines ``{"benchmark", "ours", "peer", "ratio", "unit"}`` (ratio > 1: we are better).

    .venv/bin/python benchmarks/audio.py --split test --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
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
    ap.add_argument("--codec", metavar="DIR", help="also measure a codec + prior run folder")
    ap.add_argument("--samples", type=int, default=4, help="prior samples per tag (5 s each)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import importlib.util

    from musegen.audio.metrics import audio_frechet, mr_stft_distance
    from musegen.audio.synth import load_synth, render_neural
    from musegen.render.audio import (
        find_soundfont,
        normalize,
        render_builtin,
        render_soundfont,
        write_wav,
    )

    transcriber = all(importlib.util.find_spec(m) for m in ("onnxruntime", "basic_pitch"))
    sf = find_soundfont()
    load_synth(args.model)  # loaded once, outside the timing
    spent = {"neural": 0.0, "neural44": 0.0}
    cpu = {"neural": 0.0, "neural44": 0.0, "builtin": 0.0}
    audio_seconds = 0.0
    held: list = []
    for name, source, program in SETS:
        scores = held_out(source, program, args.split, args.pieces, args.seconds)
        refs, ours, peers = [], [], []
        for k, score in enumerate(scores):
            ref = render_soundfont(score, sf, RATE).mean(axis=1)
            t, c = time.perf_counter(), time.thread_time()
            neural = render_neural(score, RATE, args.model).mean(axis=1)
            spent["neural"] += time.perf_counter() - t
            cpu["neural"] += time.thread_time() - c
            t, c = time.perf_counter(), time.thread_time()
            render_neural(score, 44_100, args.model)
            spent["neural44"] += time.perf_counter() - t
            cpu["neural44"] += time.thread_time() - c
            audio_seconds += score.duration_seconds()
            c = time.thread_time()
            builtin = render_builtin(score, RATE).mean(axis=1)
            cpu["builtin"] += time.thread_time() - c
            refs.append(ref)
            held.append((score, ref, neural))
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
        if transcriber:
            from musegen.audio.transcribe import note_f1, score_onsets, transcribe

            def f1(audio: np.ndarray, score: object) -> float:
                return note_f1(score_onsets(transcribe(audio, RATE)), score_onsets(score))

            t_ours = float(np.mean([f1(a, s) for a, s in zip(ours, scores, strict=True)]))
            t_peer = float(np.mean([f1(a, s) for a, s in zip(refs, scores, strict=True)]))
            emit(f"audio.transcription_f1.{name}", t_ours, t_peer, "note F1 (higher)", True)
        f_ours = audio_frechet(ours, refs, RATE)
        f_peer = audio_frechet(peers, refs, RATE)
        emit(f"audio.frechet.{name}", f_ours, f_peer, "Frechet distance, cepstral (lower)", False)
    load = os.getloadavg()[0]
    for key, label in (("neural", "16 kHz"), ("neural44", "44.1 kHz")):
        suffix = ".44k" if key == "neural44" else ""
        emit(
            f"audio.speed.neural.cpu{suffix}",
            audio_seconds / cpu[key],
            10.0,
            f"x real time per CPU second at {label}, {args.threads} thread(s)",
            True,
        )
        emit(
            f"audio.speed.neural{suffix}",
            audio_seconds / spent[key],
            10.0,
            f"x real time per wall second at {label}, {args.threads} thread(s), load {load:.1f}",
            True,
        )
    emit(
        "audio.speed.neural_vs_builtin",
        audio_seconds / cpu["neural"],
        audio_seconds / cpu["builtin"],
        "x real time per CPU second at 16 kHz, neural vs built-in numpy synth",
        True,
    )
    if args.codec:
        codec_figures(args.codec, held, args.samples, transcriber)


def codec_figures(folder: str, held: list, samples: int, transcriber: bool) -> None:
    import torch

    from musegen.audio.codec import load_codec, reconstruct
    from musegen.audio.metrics import audio_frechet, mr_stft_distance
    from musegen.audio.prior import TAGS, load_prior, sample

    codec = load_codec(Path(folder) / "codec")
    prior = load_prior(Path(folder) / "prior")
    neural = float(np.mean([mr_stft_distance(n, r) for _, r, n in held]))
    if transcriber:
        from musegen.audio.transcribe import note_f1, score_onsets, transcribe

        def f1(audio: np.ndarray, score: object) -> float:
            return note_f1(score_onsets(transcribe(audio, RATE)), score_onsets(score))

        base = float(np.mean([f1(r, s) for s, r, _ in held]))
    for n_q in range(1, codec.cfg.codebooks + 1):
        recs = [
            reconstruct(codec, r / max(1e-6, float(np.abs(r).max())) * 0.9, n_q) for _, r, _ in held
        ]
        d = float(
            np.mean([mr_stft_distance(x, r) for x, (_, r, _) in zip(recs, held, strict=True)])
        )
        rate = codec.cfg.bitrate(n_q)
        emit(
            f"audio.codec.mrstft.{n_q}cb", d, neural, f"MR-STFT at {rate:.0f} bit/s (lower)", False
        )
        if transcriber:
            f = float(np.mean([f1(x, s) for x, (s, _, _) in zip(recs, held, strict=True)]))
            emit(f"audio.codec.f1.{n_q}cb", f, base, f"note F1 at {rate:.0f} bit/s (higher)", True)
    refs = [r for _, r, _ in held]
    frames = 5 * RATE // codec.cfg.hop
    rng = np.random.default_rng(0)
    random_audio = []
    for _ in range(samples):
        codes = rng.integers(0, codec.cfg.codebook_size, (prior.cfg.codebooks, frames))
        with torch.no_grad():
            random_audio.append(codec.decode(torch.as_tensor(codes)[None])[0].numpy())
    peer = audio_frechet(random_audio, refs, RATE)
    for tag in TAGS:
        clips = []
        for k in range(samples):
            codes = sample(prior, frames, tag, seed=k)
            with torch.no_grad():
                clips.append(codec.decode(torch.as_tensor(codes)[None])[0].numpy())
        emit(
            f"audio.prior.frechet.{tag}",
            audio_frechet(clips, refs, RATE),
            peer,
            "Frechet distance, cepstral (lower)",
            False,
        )


if __name__ == "__main__":
    main()
