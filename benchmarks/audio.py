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

With ``--codec REF`` (a codec prior: the shipped ``audio-prior``, a prior folder or a
``musegen audio train-codec`` run folder), also, on the same held-out renders:

* ``audio.codec.mrstft.{set}.{N}cb``: reconstruction MR-STFT distance through the codec with
  N codebooks (its bitrate in the unit); peer: Griffin-Lim from the renders' own STFT
  magnitudes, the codec's fixed inverse with nothing quantized (its floor; ratio < 1).
* ``audio.codec.f1.{set}.{N}cb``: transcription F1 of the reconstructions; peer: that of the
  renders (ratio = ours / peer).
* ``audio.prior.frechet.{tag}``: Fréchet distance of ``--samples`` x 10 s prior samples from
  the held-out renders (tag organ: the organ set, piano: the piano set, none: both); peer:
  codes drawn uniformly at random, decoded by the same codec (the issue's baseline).
  ``audio.prior.frechet.{tag}.shuffled``: peer: the held-out renders' own codes with their
  frames shuffled in time (the data's code frequencies, no order). ``.reconstruction``: the
  held-out renders through the codec at the prior's codebooks against the random codes (the
  best the prior could do through this codec).
``--codec-only`` leaves the synth figures out; ``--examples DIR`` also writes the first
piece of each set through the codec at 500 and 2,000 bit/s and a prior sample per tag.

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
    ap.add_argument("--codec", metavar="REF", help="also measure a codec prior (see above)")
    ap.add_argument("--codec-only", action="store_true", help="only the codec figures")
    ap.add_argument("--samples", type=int, default=6, help="prior samples per tag (10 s each)")
    ap.add_argument("--temperature", type=float, default=1.0, help="prior sampling temperature")
    ap.add_argument("--no-codec-rows", action="store_true", help="only the prior's rows")
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
    if args.codec_only:
        if not args.codec:
            ap.error("--codec-only needs --codec")
        sets = {}
        for name, source, program in SETS:
            scores = held_out(source, program, args.split, args.pieces, args.seconds)
            sets[name] = [(s, render_soundfont(s, sf, RATE).mean(axis=1)) for s in scores]
        codec_figures(
            args.codec,
            sets,
            args.samples,
            transcriber,
            args.temperature,
            args.no_codec_rows,
            args.examples,
        )
        return
    load_synth(args.model)  # loaded once, outside the timing
    spent = {"neural": 0.0, "neural44": 0.0}
    cpu = {"neural": 0.0, "neural44": 0.0, "builtin": 0.0}
    audio_seconds = 0.0
    held: dict[str, list] = {}
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
            held.setdefault(name, []).append((score, ref))
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
        codec_figures(
            args.codec, held, args.samples, transcriber, args.temperature, False, args.examples
        )


def codec_figures(
    ref: str,
    sets: dict[str, list],
    samples: int,
    transcriber: bool,
    temperature: float = 1.0,
    prior_only: bool = False,
    examples: str | None = None,
) -> None:
    """The codec's rows (module docstring); ``sets``: name -> [(score, SoundFont render)]."""
    import torch

    from musegen.audio.codec import INPUT_PEAK, griffin_lim, load_codec, reconstruct, stft
    from musegen.audio.metrics import audio_frechet, mr_stft_distance
    from musegen.audio.prior import load_prior, resolve_prior, sample
    from musegen.render.audio import normalize, write_wav

    def example(name: str, audio: np.ndarray) -> None:  # the first 5 s, as the synth's
        if examples:
            stereo = normalize(np.repeat(audio[: 5 * RATE, None], 2, axis=1))
            write_wav(Path(examples) / f"{name}.wav", stereo, RATE)

    prior_dir, codec_dir = resolve_prior(ref)
    codec, prior = load_codec(codec_dir), load_prior(prior_dir)
    cfg = codec.cfg
    f1 = None
    if transcriber:
        from musegen.audio.transcribe import note_f1, score_onsets, transcribe

        def f1(audio: np.ndarray, score: object) -> float:
            return note_f1(score_onsets(transcribe(audio, RATE)), score_onsets(score))

    levels = sorted({1, 2, 4, cfg.codebooks, prior.cfg.codebooks})
    recon: dict[str, list] = {}
    for name, held in sets.items():
        refs = [r for _, r in held]
        recon[name] = [reconstruct(codec, r, prior.cfg.codebooks) for r in refs]
        if prior_only:
            continue
        with torch.no_grad():
            floor = [
                griffin_lim(
                    stft(torch.as_tensor(r, dtype=torch.float32)[None], cfg).abs(), cfg, len(r)
                )[0].numpy()
                for r in refs
            ]
        d_floor = float(np.mean([mr_stft_distance(g, r) for g, r in zip(floor, refs, strict=True)]))
        base = float(np.mean([f1(r, s) for s, r in held])) if f1 else 0.0
        for n_q in levels:
            recs = [reconstruct(codec, r, n_q) for r in refs]
            if n_q in (2, cfg.codebooks):
                example(f"{name}-codec-{cfg.bitrate(n_q):.0f}bps", recs[0])
            d = float(np.mean([mr_stft_distance(x, r) for x, r in zip(recs, refs, strict=True)]))
            rate = f"{cfg.bitrate(n_q):.0f} bit/s"
            emit(f"audio.codec.mrstft.{name}.{n_q}cb", d, d_floor, f"MR-STFT at {rate}", False)
            if f1:
                f = float(np.mean([f1(x, s) for x, (s, _) in zip(recs, held, strict=True)]))
                emit(f"audio.codec.f1.{name}.{n_q}cb", f, base, f"note F1 at {rate}", True)
    frames = 10 * RATE // cfg.code_hop
    rng = np.random.default_rng(0)

    def decoded(codes: np.ndarray, seed: int) -> np.ndarray:
        with torch.no_grad():
            return codec.decode(torch.as_tensor(codes)[None], seed)[0].numpy()

    n_q = prior.cfg.codebooks
    uniform = [
        decoded(rng.integers(0, cfg.codebook_size, (n_q, frames)), k) for k in range(samples)
    ]
    for tag, names in (("organ", ["organ"]), ("piano", ["piano"]), ("none", list(sets))):
        refs = [r for name in names for _, r in sets[name]]
        groups = zip(*(sets[n] for n in names), strict=False)
        mixed = [r for group in groups for _, r in group]  # the sets' pieces alternate
        shuffled = []
        for k, r in enumerate(mixed[:samples]):
            with torch.no_grad():
                n = len(r) // cfg.code_hop * cfg.code_hop
                codes = codec.encode(torch.as_tensor(normalize(r[:n], INPUT_PEAK))[None], n_q)[0]
            shuffled.append(decoded(codes[:, rng.permutation(codes.shape[1])].numpy(), k))
        clips = [
            decoded(sample(prior, frames, tag, seed=k, temperature=temperature), k)
            for k in range(samples)
        ]
        if tag != "none":
            example(f"{tag}-prior", clips[0])
        ours = audio_frechet(clips, refs, RATE)
        unit = f"Frechet distance, cepstral, {samples} x 10 s (lower)"
        emit(f"audio.prior.frechet.{tag}", ours, audio_frechet(uniform, refs, RATE), unit, False)
        peer = audio_frechet(shuffled, refs, RATE)
        emit(f"audio.prior.frechet.{tag}.shuffled", ours, peer, unit, False)
        if tag != "none":
            other = [r for name in sets if name != tag for _, r in sets[name]]
            emit(
                f"audio.prior.frechet.{tag}.other",
                ours,
                audio_frechet(clips, other, RATE),
                f"Frechet distance of the {tag} samples from the other set's renders (peer)",
                False,
            )
        rec = [x for name in names for x in recon[name]]
        emit(
            f"audio.prior.frechet.{tag}.reconstruction",
            audio_frechet(rec, refs, RATE),
            audio_frechet(uniform, refs, RATE),
            f"Frechet distance, held-out renders through the codec at {n_q} codebooks (lower)",
            False,
        )


if __name__ == "__main__":
    main()
