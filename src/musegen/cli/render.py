"""``musegen render``: a score as WAV audio, piano-roll pictures and notation."""

from __future__ import annotations

import argparse
from pathlib import Path

OUTPUT_FLAGS = ("wav", "png", "svg", "musicxml", "pdf")
DEFAULT_OUTPUTS = ("wav", "png")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render",
        help="render a score to WAV, piano roll (PNG/SVG), MusicXML or PDF",
        description="Render IN (a file or corpus:NAME). Without output flags: --wav --png. "
        "Audio uses a SoundFont when one is found (--soundfont, $MUSEGEN_SOUNDFONT, "
        "/usr/share/sounds/sf2, pretty_midi's TimGM6mb.sf2), else a built-in synthesizer. "
        "PDF needs MuseScore or LilyPond on PATH.",
    )
    p.add_argument("input", metavar="IN", help="MIDI/MusicXML/ABC file or corpus:NAME")
    p.add_argument("--wav", action="store_true", help="stereo 44.1 kHz 16-bit audio")
    p.add_argument("--png", action="store_true", help="piano roll picture")
    p.add_argument("--svg", action="store_true", help="piano roll as vector graphics")
    p.add_argument("--musicxml", action="store_true", help="quantized notation (MusicXML)")
    p.add_argument("--pdf", action="store_true", help="engraved notation (with MuseScore/LilyPond)")
    p.add_argument("--soundfont", metavar="PATH", help="an .sf2/.sf3 SoundFont for --wav")
    p.add_argument(
        "--synth",
        choices=("auto", "builtin", "soundfont"),
        default="auto",
        help="audio synthesizer (default: auto, a SoundFont when one is found)",
    )
    p.add_argument("--out", "-o", metavar="DIR", help="output folder (default: the input's folder)")
    p.set_defaults(func=run_render)


def output_stem(source: str, out: str | None) -> Path:
    """Where outputs go: ``DIR/NAME`` from --out, else next to the input (cwd for corpus:)."""
    from musegen.io import CORPUS_PREFIX

    if source.startswith(CORPUS_PREFIX):
        name = Path(source.removeprefix(CORPUS_PREFIX)).name or "score"
        folder = Path(out) if out else Path.cwd()
    else:
        name = Path(source).stem
        folder = Path(out) if out else Path(source).parent
    return folder / name


def run_render(args: argparse.Namespace) -> int:
    from musegen.io import load
    from musegen.render import render_outputs

    kinds = [k for k in OUTPUT_FLAGS if getattr(args, k)] or list(DEFAULT_OUTPUTS)
    score = load(args.input)
    render_outputs(
        score,
        output_stem(args.input, args.out),
        kinds,
        soundfont=args.soundfont,
        synth=args.synth,
        on_write=lambda path: print(f"wrote {path}", flush=True),
    )
    return 0
