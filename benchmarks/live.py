"""Live playing through real MIDI ports: input-to-output latency, jitter, missed deadlines.

A melody of 16th notes at 120 bpm (a seeded walk over C major, 0.9 of each step sounding) is
played for ``--seconds`` (60) into ``musegen live`` and what comes out is timed where it
arrives. Per mode:

* ``harmonize``: **latency**, from the moment the player sends a melody note-on to the
  arrival of the first voice note-on it causes (notes inside a beat that keep the chord cause
  none), p50 and p95 (target p95 <= 20 ms);
* ``accompany``: the chords and bass are planned ahead on the beat grid: **jitter** is the
  standard deviation of their arrival times around the best-fitting 16th grid (target
  sigma <= 2 ms), **missed** deadlines the session's own count (note-ons dropped or sent more
  than the 30 ms late limit after their time; target 0);
* ``continue``: the player plays one bar and rests three; in the rests the ``folk`` model
  plays on, sampling on a worker thread ahead of the music with its KV cache: jitter and
  missed as for accompany, and how far ahead of each note the model had it ready.

``--ports jack`` (default): ``musegen live`` runs as its own process (the command a user
runs), between JACK MIDI ports of a ``jackd --no-realtime -d dummy`` server (``--start-jack``
starts one with ``--period`` frames at 48 kHz when none is running; ALSA's sequencer is absent
in this container). ``--ports inprocess``: the same session on a thread of this process
between in-process ports (no MIDI system: the session's own timing only). The load average
is printed with every row: these figures move with how busy the machine is.

    python benchmarks/live.py [--seconds 60] [--modes harmonize,accompany,continue]
        [--ports jack|inprocess] [--start-jack] [--period 64] [--out out/bench-live]

JSON lines ``{"benchmark", "ours", "peer", "ratio", "unit", ...}``: ``peer`` is the target
and ``ratio`` = target / ours (> 1: better than the target).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from musegen.live.ports import MidiEvent, MidoIn, MidoOut, note_off, note_on, port_pair

ROOT = Path(__file__).resolve().parents[1]
BPM = 120.0
STEP = 60.0 / BPM / 4
TARGETS = {"latency_p95": 20.0, "jitter": 2.0, "missed": 0}


def melody(seconds: float, mode: str, seed: int = 7) -> list[tuple[float, MidiEvent]]:
    """(offset seconds, event) of the player's part."""
    rng = np.random.default_rng(seed)
    scale = [60, 62, 64, 65, 67, 69, 71, 72, 74, 76, 77, 79]
    i = 5
    out = []
    for k in range(int(seconds / STEP)):
        if mode == "continue" and (k // 16) % 4:  # one bar on, three bars off
            continue
        i = int(np.clip(i + rng.choice([-2, -1, -1, 1, 1, 2]), 0, len(scale) - 1))
        p = scale[i]
        out += [(k * STEP, note_on(p, 90)), ((k + 0.9) * STEP, note_off(p))]
    return sorted(out, key=lambda e: e[0])


def play(
    port: Any, events: list[tuple[float, MidiEvent]], t0: float, sent: list, spin: float = 0.002
) -> None:
    """Send each event at ``t0 + offset`` (sleep, then spin the last ``spin`` seconds: not
    in-process, where spinning would hold the interpreter the session needs)."""
    for offset, ev in events:
        target = t0 + offset
        while (left := target - time.perf_counter()) > spin:
            time.sleep(left - spin)
        while time.perf_counter() < target:
            pass
        port.send(ev)
        sent.append((time.perf_counter(), ev))


class StampedIn(MidoIn):
    """A mido input that stamps each event's arrival in rtmidi's callback."""

    def __init__(self, name: str) -> None:
        self.arrived: list[tuple[float, MidiEvent]] = []
        super().__init__(name, client="bench-listen")

    def _on_message(self, message: Any) -> None:
        from musegen.live.ports import from_mido

        ev = from_mido(message)
        if ev is not None:
            self.arrived.append((time.perf_counter(), ev))


def listen_in_process(port: Any, arrived: list, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            ev = port.receive(0.05)
        except Exception:
            return
        if ev is not None:
            arrived.append((time.perf_counter(), ev))


def grid_jitter(times: np.ndarray) -> tuple[float, float]:
    """(sigma, max |deviation|) in ms of ``times`` around the best-fitting 16th grid."""
    phase = np.angle(np.exp(2j * np.pi * times / STEP).mean()) / (2 * np.pi) * STEP
    dev = (times - phase + STEP / 2) % STEP - STEP / 2
    dev -= np.median(dev)
    return float(dev.std() * 1000), float(np.abs(dev).max() * 1000)


def latencies(sent: list, arrived: list) -> np.ndarray:
    """Per melody note-on: the first output note-on after it (before the next), in ms."""
    ons = np.array([t for t, e in sent if e.kind == "note_on"])
    out = np.array(sorted(t for t, e in arrived if e.kind == "note_on"))
    lat = []
    for k, t in enumerate(ons):
        nxt = ons[k + 1] if k + 1 < len(ons) else np.inf
        j = np.searchsorted(out, t)
        if j < len(out) and out[j] < nxt:
            lat.append(out[j] - t)
    return np.array(lat) * 1000


def port_floor(seconds: float, tag: str) -> np.ndarray:
    """Latency (ms) of the JACK ports alone: 16ths sent straight from a virtual output to an
    input of this process, no session between."""
    player = MidoOut(f"virtual:{tag}-loop", client=f"{tag}-l")
    listener = StampedIn(f"{tag}-loop")
    time.sleep(0.5)
    sent: list = []
    play(player, melody(seconds, "harmonize"), time.perf_counter() + 0.2, sent)
    time.sleep(0.2)
    listener.close()
    player.close()
    return latencies(sent, listener.arrived)


def run_jack(
    mode: str, seconds: float, out: Path, tag: str, realtime: int | None
) -> tuple[list, list, dict]:
    player = MidoOut(f"virtual:{tag}-player", client=f"{tag}-p")
    record = out / f"live-{mode}.mid"
    cmd = [sys.executable, "-m", "musegen", "--threads", "1", "live", "--in", f"{tag}-player",
           "--out", f"virtual:{tag}-out", "--mode", mode, "--tempo", str(BPM), "--seed", "1",
           "--duration", str(seconds + 3), "--record", str(record)]  # fmt: skip
    if realtime is not None:
        cmd += ["--realtime", str(realtime)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        line = proc.stdout.readline()  # the settings line: its ports are open
        if not line:
            raise SystemExit(f"musegen live did not start: {proc.stderr.read()[-2000:]}")
        listener = StampedIn(f"{tag}-out")
        time.sleep(0.5)  # connections settle
        sent: list = []
        play(player, melody(seconds, mode), time.perf_counter() + 0.2, sent)
        proc.wait(timeout=seconds + 60)
    finally:
        if proc.poll() is None:
            proc.terminate()
    time.sleep(0.2)
    listener.close()
    player.close()
    stats = json.loads(record.with_suffix(".json").read_text())["stats"]
    return sent, listener.arrived, stats


def run_in_process(mode: str, seconds: float, out: Path) -> tuple[list, list, dict]:
    from musegen.live.session import LiveConfig, LiveSession, run_session

    player, session_in = port_pair("player")
    session_out, listener = port_pair("listener")
    session = LiveSession(LiveConfig(mode=mode, bpm=BPM, seed=1))
    result: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: result.update(
            r=run_session(
                session,
                session_in,
                session_out,
                duration=seconds + 2,
                record_to=out / f"live-{mode}-inprocess.mid",
            )
        )
    )
    arrived: list = []
    stop = threading.Event()
    reader = threading.Thread(target=listen_in_process, args=(listener, arrived, stop))
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    runner.start()
    reader.start()
    sent: list = []
    try:
        play(player, melody(seconds, mode), time.perf_counter() + 0.2, sent, spin=0.0)
        runner.join()
    finally:
        stop.set()
        reader.join()
        sys.setswitchinterval(old)
    return sent, arrived, result["r"].stats


def emit(name: str, ours: float, target: float, unit: str, **extra: Any) -> None:
    ratio = (target / ours if ours else float("inf")) if target else (1.0 if ours == 0 else 0.0)
    row = {"benchmark": name, "ours": round(ours, 3), "peer": target,
           "ratio": round(ratio, 3) if np.isfinite(ratio) else "inf", "unit": unit, **extra}  # fmt: skip
    print(json.dumps(row), flush=True)


def jack_running() -> bool:
    try:
        from musegen.live.ports import list_ports

        list_ports()
        return True
    except Exception:
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--modes", default="harmonize,accompany,continue")
    ap.add_argument("--ports", choices=("jack", "inprocess"), default="jack")
    ap.add_argument(
        "--start-jack", action="store_true", help="start jackd's dummy driver if none runs"
    )
    ap.add_argument("--period", type=int, default=64, help="JACK frames per period (48 kHz)")
    ap.add_argument(
        "--realtime",
        type=int,
        metavar="PRIORITY",
        help="jack: run musegen live --realtime PRIORITY (SCHED_FIFO session loop)",
    )
    ap.add_argument("--out", default="out/bench-live")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jackd = None
    if args.ports == "jack":
        os.environ.setdefault("MIDO_BACKEND", "mido.backends.rtmidi/UNIX_JACK")
        if not jack_running():
            if not args.start_jack or not shutil.which("jackd"):
                raise SystemExit(
                    "no JACK server: start one (jackd --no-realtime -d dummy) or pass --start-jack"
                )
            rt = ["-R", "-P", "70"] if args.realtime is not None else ["--no-realtime"]
            jackd = subprocess.Popen(
                ["jackd", *rt, "-d", "dummy", "-r", "48000", "-p", str(args.period)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(2)
    cpu = _cpu()
    try:
        if args.ports == "jack":
            floor = port_floor(min(args.seconds, 10.0), f"b{os.getpid()}")
            emit("live_port_floor_p95", float(np.percentile(floor, 95)), TARGETS["latency_p95"],
                 "ms", p50_ms=round(float(np.percentile(floor, 50)), 3), ports="jack",
                 jack_period_frames=args.period, load=list(os.getloadavg()), cpu=cpu)  # fmt: skip
        for mode in args.modes.split(","):
            load0 = os.getloadavg()
            if args.ports == "jack":
                tag = f"b{os.getpid()}{mode[:3]}"
                sent, arrived, stats = run_jack(mode, args.seconds, out, tag, args.realtime)
            else:
                sent, arrived, stats = run_in_process(mode, args.seconds, out)
            load1 = os.getloadavg()
            extra = {"mode": mode, "ports": args.ports, "seconds": args.seconds, "bpm": BPM,
                     "load_before": [round(x, 2) for x in load0],
                     "load_after": [round(x, 2) for x in load1], "cpu": cpu,
                     "played": len([1 for _, e in sent if e.kind == "note_on"]),
                     "received": len([1 for _, e in arrived if e.kind == "note_on"]),
                     "session_late_ms": stats.get("late_ms"), "dropped": stats.get("dropped")}  # fmt: skip
            if args.ports == "jack":
                extra.update(jack_period_frames=args.period, realtime=args.realtime)
            if mode == "harmonize":
                lat = latencies(sent, arrived)
                extra["answered_notes"] = len(lat)
                emit(
                    "live_latency_p50",
                    float(np.percentile(lat, 50)),
                    TARGETS["latency_p95"],
                    "ms",
                    **extra,
                )
                emit("live_latency_p95", float(np.percentile(lat, 95)), TARGETS["latency_p95"], "ms",
                     latency_max_ms=round(float(lat.max()), 2), **extra)  # fmt: skip
            else:
                times = np.array([t for t, e in arrived if e.kind == "note_on"])
                sigma, worst = (
                    grid_jitter(times) if len(times) > 2 else (float("nan"), float("nan"))
                )
                if mode == "continue":
                    extra.update(ahead_min_ms=stats.get("ahead_min_ms"),
                                 ahead_median_ms=stats.get("ahead_median_ms"),
                                 handovers=stats.get("handovers"))  # fmt: skip
                emit(
                    f"live_{mode}_jitter",
                    sigma,
                    TARGETS["jitter"],
                    "ms",
                    worst_ms=round(worst, 2),
                    **extra,
                )
                emit(
                    f"live_{mode}_missed",
                    float(stats["missed"]),
                    TARGETS["missed"],
                    "deadlines",
                    **extra,
                )
    finally:
        if jackd is not None:
            jackd.terminate()
            jackd.wait(timeout=10)
    return 0


def _cpu() -> str:
    try:
        from musegen.utils import cpu_model_name

        return f"{cpu_model_name()}, {os.cpu_count()} cores"
    except Exception:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
