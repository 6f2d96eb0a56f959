"""Audio rendering speed in seconds of music per second of wall time ("x realtime"), one core.

Two inputs: a 4-part Bach chorale (``corpus:bach/bwv66.6``) and a ~3-minute band piece built
here (piano melody and chords, bass, strings, drums; melody pitches, velocities and drum
accents vary so repeated notes are not all identical). Two synthesizers:

* built-in numpy synth vs ``pretty_midi.PrettyMIDI.synthesize`` (a sine-per-note synth),
* SoundFont (tinysoundfont) vs the ``fluidsynth`` command line (``-F`` fast render, reverb and
  chorus off, as ours has none), both with the same SoundFont file.

Only rendering is timed (no file parsing; fluidsynth's time includes its start-up and its
WAV write). Best of three runs. ``ours``/``peer`` use wall time; ``ours_cpu``/``peer_cpu`` use
CPU time (children included), which a busy machine disturbs less. Without a peer, the 50x
target stands in as "peer" and a "note" says so.

    .venv/bin/python benchmarks/render.py      # peers: pip install pretty_midi; apt-get install fluidsynth
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from _corpus import best_time, emit

TARGET = 50.0  # x realtime, the goal


def band_piece(seconds: float = 180.0, qpm: float = 120.0, tpq: int = 480):  # type: ignore[no-untyped-def]
    """A ~``seconds`` long four-track piece: piano, bass, strings, drums (seeded)."""
    from musegen.score import Score, Tempo, TimeSignature, Track, make_notes

    rng = np.random.default_rng(7)
    bars = round(seconds * qpm / 60 / 4)
    roots = np.array([48, 57, 53, 55])[np.arange(bars) % 4]  # I vi IV V in C
    thirds = np.where(np.arange(bars) % 4 == 1, 3, 4)
    bar = 4 * tpq

    # piano: a chord on every beat plus an eighth-note melody with varied rhythm and dynamics
    beat_t = (np.arange(bars * 4) * tpq).repeat(3)
    chord_p = (
        roots.repeat(4)[:, None]
        + 12
        + np.stack([np.zeros(bars * 4, int), thirds.repeat(4), np.full(bars * 4, 7)], 1)
    ).ravel()
    mel_t = np.arange(bars * 8) * (tpq // 2)
    keep = rng.random(len(mel_t)) > 0.2
    mel_t = mel_t[keep]
    mel_p = roots[mel_t // bar] + 24 + rng.choice([0, 2, 4, 5, 7, 9, 11, 12], len(mel_t))
    mel_d = rng.choice([tpq // 2, tpq, 3 * tpq // 2], len(mel_t)) - 10
    piano = make_notes(
        np.concatenate([beat_t, mel_t]),
        np.concatenate([np.full(len(beat_t), tpq - 20), mel_d]),
        np.concatenate([chord_p, mel_p]),
        np.concatenate([np.full(len(beat_t), 60), rng.integers(55, 110, len(mel_t))]),
    )
    bass_t = np.arange(bars * 2) * 2 * tpq
    bass = make_notes(
        bass_t,
        np.full(len(bass_t), 2 * tpq - 30),
        roots[bass_t // bar] - 12,
        rng.integers(80, 100, len(bass_t)),
    )
    str_t = (np.arange(bars) * bar).repeat(3)
    str_p = (
        roots[:, None] + 12 + np.stack([np.zeros(bars, int), thirds, np.full(bars, 7)], 1)
    ).ravel()
    strings = make_notes(str_t, np.full(len(str_t), bar), str_p, 55)
    hat_t = np.arange(bars * 8) * (tpq // 2)
    kick_t = np.arange(bars * 2) * 2 * tpq
    snare_t = kick_t + tpq
    crash_t = np.arange(0, bars, 8) * bar
    drum_t = np.concatenate([hat_t, kick_t, snare_t, crash_t])
    drum_p = np.concatenate(
        [
            np.full(len(hat_t), 42),
            np.full(len(kick_t), 36),
            np.full(len(snare_t), 38),
            np.full(len(crash_t), 49),
        ]
    )
    drums = make_notes(
        drum_t, np.full(len(drum_t), tpq // 4), drum_p, rng.integers(70, 120, len(drum_t))
    )
    return Score(
        tpq=tpq,
        tracks=[
            Track(piano, program=0, name="Piano"),
            Track(bass, program=33, name="Bass"),
            Track(strings, program=48, name="Strings"),
            Track(drums, is_drum=True, name="Drums"),
        ],
        tempos=[Tempo(0, qpm)],
        time_signatures=[TimeSignature(0, 4, 4)],
    )


def pretty_midi_peer(midi: Path):  # type: ignore[no-untyped-def]
    """A function that renders ``midi`` with pretty_midi's sine synth, or None."""
    try:
        import pretty_midi
    except ImportError:
        return None
    pm = pretty_midi.PrettyMIDI(str(midi))
    return lambda: pm.synthesize(fs=44_100)


def fluidsynth_peer(midi: Path, soundfont: Path, out: Path):  # type: ignore[no-untyped-def]
    """A function that renders ``midi`` to ``out`` with the fluidsynth CLI, or None."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        return None
    cmd = [
        exe,
        "-ni",
        "-q",
        "-R",
        "0",
        "-C",
        "0",
        "-r",
        "44100",
        "-F",
        str(out),
        str(soundfont),
        str(midi),
    ]
    return lambda: subprocess.run(cmd, check=True, capture_output=True)


def best_cpu_time(fn, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    """Least CPU time (this process and its children) of ``repeats`` runs: robust to load."""
    best = float("inf")
    for _ in range(repeats):
        t0 = os.times()
        fn()
        t1 = os.times()
        best = min(best, sum(t1[:4]) - sum(t0[:4]))  # user + system, self + children
    return max(best, 1e-9)


def report(name: str, seconds: float, ours_fn, peer_fn, peer_name: str, missing: str) -> None:  # type: ignore[no-untyped-def]
    """One JSON line: wall-clock x realtime, plus CPU-time x realtime as a load-free check."""
    ours = seconds / best_time(ours_fn)
    ours_cpu = round(seconds / best_cpu_time(ours_fn), 1)
    if peer_fn is None:
        note = f"{missing} not installed: peer is the 50x target"
        emit(name, ours, TARGET, "x realtime", ours_cpu=ours_cpu, note=note)
        return
    peer = seconds / best_time(peer_fn)
    peer_cpu = round(seconds / best_cpu_time(peer_fn), 1)
    emit(name, ours, peer, "x realtime", ours_cpu=ours_cpu, peer_cpu=peer_cpu, peer_name=peer_name)


def main() -> int:
    from musegen.io import load, save
    from musegen.render.audio import find_soundfont, has_tinysoundfont, render_audio

    soundfont = find_soundfont() if has_tinysoundfont() else None
    if soundfont is None:
        print("# no SoundFont or no tinysoundfont: SoundFont figures skipped", file=sys.stderr)
    inputs = {"chorale_bwv66.6": load("corpus:bach/bwv66.6"), "band_3min": band_piece()}
    with tempfile.TemporaryDirectory() as tmp:
        for label, score in inputs.items():
            seconds = score.duration_seconds()
            midi = Path(tmp) / f"{label}.mid"
            save(score, midi)
            print(f"# {label}: {score.n_notes} notes, {seconds:.1f} s", file=sys.stderr)

            def builtin(score=score):  # type: ignore[no-untyped-def]
                return render_audio(score, synth="builtin")

            peer = pretty_midi_peer(midi)
            report(
                f"render.audio.builtin.{label}",
                seconds,
                builtin,
                peer,
                "pretty_midi.synthesize",
                "pretty_midi",
            )
            if soundfont is None:
                continue

            def sf(score=score):  # type: ignore[no-untyped-def]
                return render_audio(score, synth="soundfont", soundfont=soundfont)

            peer = fluidsynth_peer(midi, soundfont, Path(tmp) / "peer.wav")
            report(
                f"render.audio.soundfont.{label}", seconds, sf, peer, "fluidsynth -F", "fluidsynth"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
