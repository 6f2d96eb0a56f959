"""``musegen live``: play along with a MIDI player in real time (see :mod:`musegen.live`)."""

from __future__ import annotations

import argparse
import time

MODES = ("harmonize", "accompany", "answer", "continue")  # musegen.live.modes.MODES, unloaded
MODE_HELP = (
    "harmonize: alto, tenor and bass under each melody note; accompany: chords and bass (and "
    "--drums) on the beat, following the key and chord; answer: after a pause the model "
    "answers with --bars bars; continue: the model plays on from where you stop"
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "live",
        help="play along in real time over MIDI ports (harmonize, accompany, answer, continue)",
        description="Read notes from a MIDI input port and play an answer to a MIDI output port "
        "in time. " + MODE_HELP + ". Ports are ALSA or JACK ports through mido and "
        "python-rtmidi (pip install 'musegen[live]'); 'virtual:NAME' opens a virtual port "
        "other programs connect to. Both parts are recorded to one MIDI file when the "
        "session ends (--duration, Ctrl-C, or a closed port).",
    )
    p.add_argument(
        "--in",
        dest="inport",
        metavar="PORT",
        help="MIDI input port (name, part of one, or virtual:NAME)",
    )
    p.add_argument(
        "--out",
        dest="outport",
        metavar="PORT",
        help="MIDI output port (name, part of one, or virtual:NAME)",
    )
    p.add_argument("--list-ports", action="store_true", help="list the MIDI ports and exit")
    p.add_argument(
        "--mode", choices=MODES, default="accompany", help=MODE_HELP + " (default accompany)"
    )
    p.add_argument(
        "--model",
        "-m",
        metavar="NAME|PATH",
        help="answer/continue: a melody token model (default folk)",
    )
    tempo = p.add_mutually_exclusive_group()
    tempo.add_argument(
        "--tempo",
        type=float,
        default=120.0,
        metavar="BPM",
        help="beats per minute of the internal clock (default 120)",
    )
    tempo.add_argument(
        "--follow",
        action="store_true",
        help="follow the tempo: MIDI clock in if it comes, else the player's onsets",
    )
    p.add_argument(
        "--key", metavar="KEY", help="key, e.g. 'G major' (default: found from the playing)"
    )
    p.add_argument(
        "--bars",
        type=int,
        default=2,
        metavar="N",
        help="answer: bars the model answers with (1-16, default 2)",
    )
    p.add_argument(
        "--pause",
        type=float,
        default=1.0,
        metavar="BEATS",
        help="answer/continue: silence that hands over to the model (default 1 beat)",
    )
    p.add_argument("--drums", action="store_true", help="accompany: add drums (channel 10)")
    p.add_argument(
        "--late-limit",
        type=float,
        default=30.0,
        metavar="MS",
        help="a note more than this late is dropped, a note less late is sent at once (default 30)",
    )
    p.add_argument(
        "--realtime",
        type=int,
        nargs="?",
        const=50,
        metavar="PRIORITY",
        help="run the session loop at real-time priority (Linux SCHED_FIFO, default 50; "
        "needs the permission, as JACK's -R does); the model's thread stays at normal priority",
    )
    p.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="stop after this long (default: until Ctrl-C or a port closes)",
    )
    p.add_argument(
        "--record",
        metavar="FILE.mid",
        help="where the recording goes (default out/live-TIME.mid; its settings beside it as .json)",
    )
    p.add_argument(
        "--seed",
        type=int,
        help="answer/continue: random seed (default: a new one, printed and saved)",
    )
    p.add_argument(
        "--temperature",
        "-t",
        type=float,
        default=1.0,
        metavar="T",
        help="answer/continue: sampling temperature (default: the model's)",
    )
    p.set_defaults(func=run_live)


def run_live(args: argparse.Namespace) -> int:
    import json
    import secrets
    import sys
    from pathlib import Path

    from musegen.errors import MusegenError
    from musegen.live.ports import list_ports, open_ports
    from musegen.live.session import LiveConfig, LiveSession, run_session
    from musegen.utils import atomic_write_text

    if args.list_ports:
        ports = list_ports()
        for kind in ("inputs", "outputs"):
            print(f"{kind}:")
            for name in ports[kind] or ["(none)"]:
                print(f"  {name}")
        return 0
    if not args.inport or not args.outport:
        raise MusegenError("live needs --in PORT and --out PORT (see --list-ports)")
    if not 1 <= args.bars <= 16:
        raise MusegenError(f"--bars must be 1..16, got {args.bars}")
    if args.pause <= 0 or args.late_limit <= 0:
        raise MusegenError("--pause and --late-limit must be positive")
    if args.duration is not None and args.duration <= 0:
        raise MusegenError("--duration must be positive")
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    config = LiveConfig(
        mode=args.mode,
        bpm=args.tempo,
        follow=args.follow,
        key=args.key,
        late_limit=args.late_limit / 1000.0,
        drums=args.drums,
        bars=args.bars,
        pause_beats=args.pause,
        model=args.model,
        seed=seed,
        temperature=args.temperature,
    )
    record = Path(args.record or f"out/live-{time.strftime('%Y%m%d-%H%M%S')}.mid")
    if record.suffix.lower() not in (".mid", ".midi"):
        raise MusegenError(f"--record {record}: the recording is MIDI (.mid)")
    session = LiveSession(config)  # loads the model (answer/continue) before the ports open
    inport, outport = open_ports(args.inport, args.outport)
    settings = {"command": "live", "in": inport.name, "out": outport.name, **config.to_dict()}
    print(json.dumps(settings), flush=True)
    print(f"playing ({args.mode}); Ctrl-C to stop", file=sys.stderr, flush=True)
    if args.realtime is not None:
        settings["realtime"] = set_realtime(args.realtime)
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # the loop gets the interpreter back quickly from the model
    try:
        result = run_session(session, inport, outport, duration=args.duration, record_to=record)
    finally:
        sys.setswitchinterval(old)
        inport.close()
        outport.close()
    settings.update(ended=result.reason, recording=str(result.recording), stats=result.stats)
    atomic_write_text(record.with_suffix(".json"), json.dumps(settings, indent=2) + "\n")
    print(f"ended ({result.reason}); recording: {result.recording}", file=sys.stderr)
    print(json.dumps(result.stats))
    return 0


def set_realtime(priority: int) -> int:
    """SCHED_FIFO at ``priority`` for the calling thread (the session loop)."""
    import os

    from musegen.errors import MusegenError

    if not hasattr(os, "sched_setscheduler"):
        raise MusegenError("--realtime needs Linux (SCHED_FIFO)")
    low, high = os.sched_get_priority_min(os.SCHED_FIFO), os.sched_get_priority_max(os.SCHED_FIFO)
    if not low <= priority <= high:
        raise MusegenError(f"--realtime priority must be {low}..{high}, got {priority}")
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError as e:
        raise MusegenError(
            "--realtime: no permission for real-time priority (needs CAP_SYS_NICE or an "
            "rtprio limit, as for JACK -R); run without it"
        ) from e
    return priority
