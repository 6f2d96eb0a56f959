"""``musegen info`` and ``musegen convert``: look at and convert symbolic music files."""

from __future__ import annotations

import argparse
from typing import Any

from musegen.cli.common import load_batch, print_json, report_failures


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="summarise MIDI/MusicXML/ABC files or corpus references",
        description="Tracks, notes, duration, tempo, time and key signature, pitch range.",
    )
    p.add_argument("inputs", nargs="+", metavar="FILE", help="files or corpus:NAME references")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run_info)

    p = sub.add_parser(
        "convert",
        help="convert between MIDI, MusicXML and ABC",
        description="Convert IN to OUT; formats are picked by extension "
        "(.mid/.midi, .musicxml/.xml/.mxl; .abc and corpus:NAME read only).",
    )
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    p.add_argument(
        "--voices",
        type=int,
        metavar="N",
        help="deal the notes out to N voice tracks (4: Soprano, Alto, Tenor, Bass), e.g. a "
        "chorale on one track to four staves",
    )
    p.set_defaults(func=run_convert)


def summarise(source: str, score: Any) -> dict[str, Any]:
    """The facts ``musegen info`` shows about one score."""
    rng = score.pitch_range()
    ts = score.time_signatures[0] if score.time_signatures else None
    ks = score.key_signatures[0] if score.key_signatures else None
    return {
        "source": source,
        "tpq": score.tpq,
        "tracks": [
            {
                "name": t.name,
                "program": t.program,
                "is_drum": t.is_drum,
                "voice": t.voice,
                "notes": len(t),
            }
            for t in score.tracks
        ],
        "notes": score.n_notes,
        "duration_seconds": round(score.duration_seconds(), 3),
        "bars": score.n_bars,
        "tempo_qpm": round(score.tempo_at(0), 2),
        "tempo_changes": max(len(score.tempos) - 1, 0),
        "time_signature": str(ts) if ts else "4/4 (default)",
        "time_signature_changes": max(len(score.time_signatures) - 1, 0),
        "key_signature": str(ks) if ks else None,
        "pitch_range": list(rng) if rng else None,
    }


def format_summary(info: dict[str, Any]) -> str:
    from musegen.score import pitch_name

    rng = info["pitch_range"]
    lines = [
        info["source"],
        f"  notes {info['notes']} in {len(info['tracks'])} track(s); "
        f"{info['duration_seconds']:.1f} s, {info['bars']} bar(s) at {info['tpq']} ticks/quarter",
        f"  tempo {info['tempo_qpm']:g} qpm (+{info['tempo_changes']} changes); "
        f"time {info['time_signature']} (+{info['time_signature_changes']} changes); "
        f"key {info['key_signature'] or 'not given'}",
        f"  pitch range {pitch_name(rng[0])}–{pitch_name(rng[1])} ({rng[0]}–{rng[1]})"
        if rng
        else "  pitch range: no pitched notes",
    ]
    for i, t in enumerate(info["tracks"]):
        kind = "drums" if t["is_drum"] else f"program {t['program']}"
        voice = f", voice {t['voice']}" if t["voice"] else ""
        lines.append(f"  track {i}: {t['name'] or '(unnamed)'} ({kind}{voice}) {t['notes']} notes")
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> int:
    good, bad = load_batch(args.inputs)
    infos = [summarise(src, score) for src, score in good]
    if args.json:
        print_json(infos)
    else:
        print("\n".join(format_summary(i) for i in infos))
    return report_failures(bad, "info")


def run_convert(args: argparse.Namespace) -> int:
    from musegen.io import load, save

    score = load(args.input)
    if args.voices is not None:
        from musegen.errors import MusegenError
        from musegen.voices import separate_voices

        if args.voices < 1:
            raise MusegenError(f"--voices must be >= 1, got {args.voices}")
        score = separate_voices(score, args.voices)
    save(score, args.output)
    print(f"wrote {args.output} ({score.n_notes} notes, {len(score.tracks)} tracks)")
    return 0
