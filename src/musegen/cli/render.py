"""``musegen render``: a score as WAV audio, piano-roll pictures and notation.

Writes the outputs asked for and ``NAME.render.json``: the input, how each output was made
(the synthesizer and SoundFont of the WAV, the engraver of SVG/PDF) and the files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

OUTPUT_FLAGS = ("wav", "png", "roll_svg", "musicxml", "svg", "pdf")  # as KINDS, "_" for "-"
DEFAULT_OUTPUTS = ("wav", "png")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render",
        help="render a score to WAV, piano roll (PNG/SVG), MusicXML, engraved SVG or PDF",
        description="Render IN (a file or corpus:NAME). Without output flags: --wav --png. "
        "Audio uses a SoundFont when one is found (--soundfont, $MUSEGEN_SOUNDFONT, "
        "pretty_midi's TimGM6mb.sf2, /usr/share/sounds/sf2), else a built-in synthesizer. "
        "Notation is engraved by verovio (a wheel), else MuseScore or LilyPond from PATH. "
        "NAME.render.json records how each output was made.",
    )
    p.add_argument("input", metavar="IN", help="MIDI/MusicXML/ABC file or corpus:NAME")
    p.add_argument("--wav", action="store_true", help="stereo 44.1 kHz 16-bit audio")
    p.add_argument("--png", action="store_true", help="piano roll picture")
    p.add_argument(
        "--roll-svg", action="store_true", help="piano roll as vector graphics (NAME.roll.svg)"
    )
    p.add_argument("--musicxml", action="store_true", help="quantized notation (MusicXML)")
    p.add_argument("--svg", action="store_true", help="engraved notation, one SVG per page")
    p.add_argument("--pdf", action="store_true", help="engraved notation, every page in one PDF")
    p.add_argument("--soundfont", metavar="PATH", help="an .sf2/.sf3 SoundFont for --wav")
    p.add_argument(
        "--synth",
        choices=("auto", "builtin", "soundfont", "neural"),
        default="auto",
        help="audio synthesizer (default: auto, a SoundFont when one is found; neural: the "
        "shipped DDSP synthesizer trained on SoundFont renders, needs torch)",
    )
    p.add_argument(
        "--engraver",
        choices=("auto", "verovio", "musescore", "lilypond"),
        default="auto",
        help="notation engraver for --svg/--pdf (default: auto, verovio when installed)",
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
    import json

    from musegen import __version__
    from musegen.io import load
    from musegen.render import describe_outputs, render_outputs
    from musegen.utils import atomic_write_text

    kinds = [k.replace("_", "-") for k in OUTPUT_FLAGS if getattr(args, k)]
    kinds = kinds or list(DEFAULT_OUTPUTS)
    score = load(args.input)
    stem = output_stem(args.input, args.out)
    how = describe_outputs(kinds, args.soundfont, synth=args.synth, engraver=args.engraver)
    written = render_outputs(
        score,
        stem,
        kinds,
        soundfont=args.soundfont,
        synth=args.synth,
        engraver=args.engraver,
        on_write=lambda path: print(f"wrote {path}{_how(path, how)}", flush=True),
    )
    record = {
        "command": "render",
        "input": args.input,
        "musegen": __version__,
        "outputs": how,
        "files": [str(p) for p in written],
    }
    settings = stem.with_name(f"{stem.name}.render.json")
    atomic_write_text(settings, json.dumps(record, indent=2) + "\n")
    print(f"settings in {settings}")
    return 0


def _how(path: Path, how: dict[str, dict[str, str]]) -> str:
    """`` (SoundFont X from Y)`` after a WAV, `` (verovio 6.4.1)`` after an engraving."""
    kind = path.suffix.lstrip(".")
    if path.name.endswith(".roll.svg") or kind not in how:
        return ""
    info = how[kind]
    if kind == "wav":
        if info["synth"] == "neural":
            return f" (neural synthesizer {info['model']})"
        if info["synth"] == "builtin":
            return f" (built-in synthesizer: {info['why']})"
        return f" (SoundFont {Path(info['soundfont']).name} from {info['soundfont_from']})"
    return f" ({info['engraver']})"
