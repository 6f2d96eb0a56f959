"""``musegen audio``: audio models.

* ``audio generate --model musicgen|diffusers --weights DIR``: a published model whose
  weights are on disk (nothing is downloaded), text -> audio; ``--melody FILE`` (a WAV, or a
  score rendered first) for a MusicGen melody model.
* ``audio generate --model codec --tag organ``: our own codec + code prior (the shipped
  ``audio-prior`` with its codec ``audio-codec``, or ``--weights`` a prior folder or an
  ``audio train-codec`` run folder), unconditional (``--tag none``) or conditioned on an
  instrument.
* ``audio transcribe IN.wav --out OUT.mid``: audio -> MIDI with basic-pitch's ONNX model
  (the ``transcribe`` extra), e.g. to feed ``harmonize``.
* ``audio train-synth --config FILE --out DIR``: train the neural synthesizer of
  ``render --synth neural`` from a run file (``configs/synth-ddsp.json``).

Each writes its settings (seed included) beside its output and prints them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from musegen.errors import MusegenError

BRIDGES = ("musicgen", "diffusers", "codec")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audio",
        help="audio models: generate (our codec + prior, MusicGen/diffusers weights on disk), "
        "transcribe, train the neural synth or the codec",
        description="Audio models. 'generate' samples our codec + code prior (shipped) or runs "
        "a published model from a local folder (the hf extra: transformers, diffusers); "
        "'transcribe' turns a WAV into MIDI; 'train-synth' trains the neural synthesizer used "
        "by 'render --synth neural'; 'train-codec' the codec and its prior.",
    )
    audio = p.add_subparsers(dest="audio_command", metavar="ACTION", required=True)

    g = audio.add_parser(
        "generate",
        help="audio from our codec + prior, or text (and melody) -> audio with MusicGen or a "
        "diffusers pipeline from a local folder",
        description="Generate audio. codec: our small spectral codec and its transformer code "
        "prior (shipped: audio-prior; --tag piano|organ|none). Published models whose weights "
        "are in a local folder (--weights; nothing is downloaded): musicgen, a MusicGen folder "
        "(config.json, weights, tokenizer), a musicgen_melody folder also takes --melody; "
        "diffusers, a pipeline folder (model_index.json), e.g. AudioLDM, Stable Audio.",
    )
    g.add_argument(
        "--model",
        choices=BRIDGES,
        required=True,
        help="musicgen, diffusers (published models), or codec (our codec + code prior)",
    )
    g.add_argument(
        "--weights",
        metavar="DIR",
        help="local model folder (musicgen, diffusers: required; codec: default the shipped "
        "audio-prior, or a prior folder or a train-codec run folder)",
    )
    g.add_argument(
        "--tag", default="none", help="codec prior: instrument tag none|piano|organ (default none)"
    )
    g.add_argument(
        "--temperature", type=float, default=1.0, help="codec prior: sampling temperature (1)"
    )
    g.add_argument("--prompt", default="", help="text prompt (e.g. 'calm organ chorale')")
    g.add_argument(
        "--melody",
        metavar="FILE",
        help="melody for a MusicGen melody model: a WAV, or a MIDI/MusicXML score (rendered "
        "with the SoundFont first)",
    )
    g.add_argument("--seconds", type=float, default=10.0, help="length (default 10)")
    g.add_argument("--steps", type=int, default=50, help="diffusion steps (diffusers; default 50)")
    g.add_argument("--guidance", type=float, default=3.0, help="MusicGen guidance (default 3)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--out", "-o", metavar="FILE.wav", required=True, help="output WAV")
    g.set_defaults(func=run_generate)

    r = audio.add_parser(
        "transcribe",
        help="audio (WAV) -> MIDI with basic-pitch's ONNX model (feeds harmonize/continue)",
        description="Transcribe a 16-bit WAV to MIDI (one piano track, 120 q/min) with the ONNX "
        "model inside basic-pitch's wheel, run by onnxruntime: pip install onnxruntime and "
        "pip install --no-deps basic-pitch. Then e.g. 'musegen harmonize OUT.mid'.",
    )
    r.add_argument("input", metavar="IN.wav", help="16-bit PCM WAV file")
    r.add_argument("--out", "-o", metavar="OUT.mid", required=True, help="output MIDI file")
    r.add_argument("--onset-threshold", type=float, default=0.5, help="default 0.5")
    r.add_argument("--frame-threshold", type=float, default=0.3, help="default 0.3")
    r.set_defaults(func=run_transcribe)

    c = audio.add_parser(
        "train-codec",
        help="train the small residual-VQ codec and its transformer prior from a run file",
        description="Train the codec (DIR/codec) on SoundFont renders of the run file's corpora, "
        "then the code prior (DIR/prior) on their codes, tagged by instrument "
        "(configs/codec-prior.json); the best weights by validation loss are kept. "
        "'audio generate --model codec --weights DIR' samples it.",
    )
    c.add_argument("--config", metavar="FILE", required=True, help="run file (JSON)")
    c.add_argument("--out", metavar="DIR", required=True, help="run folder")
    c.add_argument(
        "--stages",
        choices=("both", "codec", "prior"),
        default="both",
        help="train both (default), the codec only, or the prior on DIR/codec",
    )
    c.add_argument(
        "--resume",
        action="store_true",
        help="go on from the checkpoints in DIR/codec and DIR/prior (written at every "
        "validation, and by Ctrl-C); a finished stage is skipped",
    )
    c.set_defaults(func=run_train_codec)

    t = audio.add_parser(
        "train-synth",
        help="train the neural synthesizer (render --synth neural) from a run file",
        description="Train the DDSP-style neural synthesizer on notes rendered alone by the "
        "SoundFont (pitches and lengths from the run file's corpora). Writes DIR/best/ "
        "(config.json + model.safetensors), DIR/log.jsonl, DIR/run.json and DIR/checkpoint/ "
        "(the whole state at every validation; Ctrl-C saves it too, --resume goes on).",
    )
    t.add_argument("--config", metavar="FILE", required=True, help="run file (JSON)")
    t.add_argument("--out", metavar="DIR", required=True, help="run folder")
    t.add_argument("--steps", type=int, help="override the run file's steps")
    t.add_argument("--seed", type=int, help="override the run file's seed")
    t.add_argument(
        "--resume",
        action="store_true",
        help="go on from DIR/checkpoint (written at every validation, and by Ctrl-C)",
    )
    t.set_defaults(func=run_train_synth)


def run_generate(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from musegen.audio import bridges
    from musegen.render.audio import normalize, write_wav
    from musegen.utils import atomic_write_text

    if args.seconds <= 0:
        raise MusegenError(f"--seconds must be positive, got {args.seconds}")
    out = Path(args.out)
    if args.model != "codec":
        if not args.weights:
            raise MusegenError(f"--model {args.model} needs --weights DIR (a local model folder)")
        wanted = {"musicgen": "config.json", "diffusers": "model_index.json"}
        bridges.check_weights(args.weights, wanted[args.model])
    start = time.perf_counter()
    if args.model == "codec":
        from musegen.audio.prior import generate_audio, resolve_prior

        if args.temperature <= 0:
            raise MusegenError(f"--temperature must be positive, got {args.temperature}")
        audio, sr = generate_audio(
            args.weights, args.seconds, args.tag, args.seed, args.temperature
        )
        args.weights = str(resolve_prior(args.weights)[0])
    elif args.model == "musicgen":
        melody, rate = _melody(args.melody) if args.melody else (None, None)
        audio, sr = bridges.musicgen_generate(
            args.weights,
            args.prompt,
            seconds=args.seconds,
            melody=melody,
            melody_rate=rate,
            seed=args.seed,
            guidance=args.guidance,
        )
    else:
        if args.melody:
            raise MusegenError("--melody is for --model musicgen")
        audio, sr = bridges.diffusers_generate(
            args.weights,
            args.prompt or None,
            seconds=args.seconds,
            steps=args.steps,
            seed=args.seed,
        )
    stereo = normalize(np.repeat(audio[:, None], 2, axis=1))
    write_wav(out, stereo, sr)
    settings = {
        "command": "audio generate",
        "model": args.model,
        "weights": str(args.weights),
        "prompt": args.prompt,
        "melody": args.melody,
        "seconds": args.seconds,
        "steps": args.steps,
        "guidance": args.guidance,
        "seed": args.seed,
        **({"tag": args.tag, "temperature": args.temperature} if args.model == "codec" else {}),
        "sample_rate": sr,
        "seconds_taken": round(time.perf_counter() - start, 2),
        "files": [str(out)],
    }
    path = out.with_suffix(".json")
    atomic_write_text(path, json.dumps(settings, indent=2) + "\n")
    print(f"wrote {out} ({len(audio) / sr:.1f} s at {sr} Hz); seed {args.seed}; settings in {path}")
    return 0


def _melody(path: str) -> tuple[object, int]:
    """Mono audio of a WAV file, or of a score rendered with the SoundFont (else built-in)."""
    from musegen.render.audio import read_wav, render_audio

    if path.lower().endswith(".wav"):
        audio, rate = read_wav(path)
        return audio.mean(axis=1), rate
    from musegen.io import load

    rate = 32_000
    return render_audio(load(path), sample_rate=rate).mean(axis=1), rate


def run_transcribe(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from musegen.audio.transcribe import TranscribeSettings, transcribe
    from musegen.io import save
    from musegen.render.audio import read_wav
    from musegen.utils import atomic_write_text

    for name in ("onset_threshold", "frame_threshold"):
        if not 0.0 < getattr(args, name) < 1.0:
            raise MusegenError(f"--{name.replace('_', '-')} must be between 0 and 1")
    audio, rate = read_wav(args.input)
    settings = TranscribeSettings(args.onset_threshold, args.frame_threshold)
    score = transcribe(audio, rate, settings)
    out = Path(args.out)
    save(score, out)
    record = {
        "command": "audio transcribe",
        "input": args.input,
        **asdict(settings),
        "model": "basic-pitch nmp.onnx (onnxruntime)",
        "notes": score.n_notes,
        "files": [str(out)],
    }
    path = out.with_suffix(".json")
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    print(f"wrote {out} ({score.n_notes} notes); settings in {path}")
    return 0


def run_train_codec(args: argparse.Namespace) -> int:
    from musegen.audio.prior import train_codec_and_prior
    from musegen.errors import InputError

    try:
        run = json.loads(Path(args.config).read_text())
    except (OSError, ValueError) as e:
        raise InputError(args.config, f"not a readable run file ({e})") from e
    print("settings: " + json.dumps(run))
    train_codec_and_prior(run, args.out, stages=args.stages, resume=args.resume)
    return 0


def run_train_synth(args: argparse.Namespace) -> int:
    from musegen.audio.train_synth import TrainSynthConfig, train_synth
    from musegen.errors import InputError

    try:
        data = json.loads(Path(args.config).read_text())
    except (OSError, ValueError) as e:
        raise InputError(args.config, f"not a readable run file ({e})") from e
    run = TrainSynthConfig.from_dict(data)
    if args.steps is not None:
        run.steps = args.steps
    if args.seed is not None:
        run.seed = args.seed
    print("settings: " + json.dumps(run.to_dict()))
    train_synth(run, args.out, resume=args.resume)
    return 0
