"""What the studio's worker processes do: each task a function of plain parameters.

The tasks call the same code as the commands: :func:`musegen.sampling.generators.load_generator`
with a :class:`~musegen.sampling.generators.GenerateRequest` (``generate``), a generator's
``harmonize`` and ``infill`` (``harmonize``, ``infill``), the compose methods
(:mod:`musegen.web.methods`), :func:`musegen.io.load` (uploads, corpus pieces),
:func:`musegen.cli.common.write_pieces` (the take's MIDI and settings JSON) and
:func:`musegen.render.render_outputs` (WAV, MusicXML, engraved SVG). Every path a task gets
was made by the server (:mod:`musegen.web.takes`); no client names a file.

A take's answer (:func:`take_view`) is read back from the MIDI file written, so the piano
roll shows exactly the notes a download holds.
"""

from __future__ import annotations

import secrets
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from musegen.errors import MusegenError

_GENERATORS: dict[str, Any] = {}  # model name -> loaded generator (a worker's cache)

MAX_NOTES = 20_000
"""Notes an uploaded piece may hold."""
MAX_SECONDS = 20 * 60.0
"""Length an uploaded piece may have, in seconds."""


def worker_main(threads: int = 1) -> None:
    """A worker's loop: a JSON line ``[task, params]`` in on stdin, a JSON line
    ``["ok", result]`` or ``["error", status, message]`` out, until stdin closes. Whatever
    the libraries print goes to stderr, so the answers' channel holds answers only."""
    import json
    import os

    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # fd 1 (print, C libraries) now writes to stderr
    sys.stdout = sys.stderr
    os.environ["OMP_NUM_THREADS"] = str(threads)  # torch reads it when a task imports it
    for line in sys.stdin:
        params: dict[str, Any] = {}
        try:
            task, params = json.loads(line)
            answer: list[Any] = ["ok", run_task(task, params)]
        except MusegenError as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            answer = ["error", 400, scrub(first, params)]
        except Exception as e:  # a bug, not the user's input: logged, answered in one line
            traceback.print_exc(file=sys.stderr)
            answer = ["error", 500, f"internal error ({type(e).__name__}); see the server log"]
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def scrub(message: str, params: dict[str, Any]) -> str:
    """A message without the server's paths: a shipped model's folder becomes its name, a
    take's files "the take"."""
    from musegen.models.pretrained import PRETRAINED_DIR

    for key in ("source", "primer", "take_dir"):
        if isinstance(params, dict) and params.get(key):
            message = message.replace(str(params[key]), "the take")
    return message.replace(f"{PRETRAINED_DIR}/", "")


def run_task(task: str, params: dict[str, Any]) -> Any:
    """Run one task by name (the worker's dispatch; also what benchmarks call in-process)."""
    tasks = {
        "ping": ping,
        "catalog": catalog,
        "generate": generate,
        "compose": compose,
        "harmonize": harmonize,
        "infill": infill,
        "load": load_piece,
        "render": render,
    }
    if task not in tasks:
        raise MusegenError(f"no task {task!r}")
    return tasks[task](params)


def ping(params: dict[str, Any]) -> str:
    """An answer, after ``sleep`` seconds (at most 10: for tests of the pool's limits)."""
    time.sleep(min(10.0, float(params.get("sleep") or 0)))
    return "pong"


def generator(name: str) -> Any:
    """The loaded generator of a shipped model or method (cached)."""
    if name not in _GENERATORS:
        from musegen.sampling.generators import load_generator

        _GENERATORS[name] = load_generator(name)
    return _GENERATORS[name]


def catalog(params: dict[str, Any]) -> dict[str, Any]:
    """Every shipped model (what it serves, its controls), the compose methods and the
    harmonizers, loading each model once (which warms this worker's cache)."""
    from musegen.models.pretrained import DEFAULT_MODEL, list_pretrained
    from musegen.sampling.generators import METHODS
    from musegen.web.methods import METHODS as COMPOSE

    models = []
    for info in list_pretrained():
        try:
            gen = generator(info["name"])
        except Exception as e:  # one model that does not load leaves the others served
            print(f"musegen serve: {info['name']} not offered: {e!r}", file=sys.stderr)
            continue
        controls = list(gen.controls()) if hasattr(gen, "controls") else []
        settings = [*MODEL_SETTINGS.get(type(gen).__name__, BASE_SETTINGS), *controls]
        models.append(
            {
                "name": info["name"],
                "settings": settings,
                "kind": gen.kind,
                "description": info["description"],
                "serves": list(gen.serves),
                "controls": controls,
                "default": info["name"] == DEFAULT_MODEL,
                "primer": type(gen).__name__ == "TokenGenerator",
            }
        )
    for name in METHODS:
        gen = generator(name)
        models.append(
            {"name": name, "kind": gen.kind, "settings": [], "description": gen.__doc__.split("\n")[0],
             "serves": list(gen.serves), "controls": [], "default": False, "primer": False}
        )  # fmt: skip
    methods = [{"name": n, **m.describe()} for n, m in COMPOSE.items()]
    return {"models": models, "methods": methods}


BASE_SETTINGS = ("bars", "seed", "key", "tempo")
MODEL_SETTINGS = {
    "TokenGenerator": (*BASE_SETTINGS, "temperature", "top_p"),
    "CoconetGenerator": (*BASE_SETTINGS, "temperature"),
}
"""The page's settings each kind of generator reads (a frame model: the base ones)."""


def _seed(params: dict[str, Any]) -> int:
    seed = params.get("seed")
    return secrets.randbelow(2**31) if seed is None else int(seed)


def generate(params: dict[str, Any]) -> dict[str, Any]:
    """New music from a shipped model, or a continuation of a take (``primer``)."""
    import torch

    from musegen.sampling.generators import GenerateRequest

    seed = _seed(params)
    torch.manual_seed(seed)
    gen = generator(params["model"])
    for name in ("chords", "density"):
        if params.get(name) and name not in gen.controls():
            raise MusegenError(f"the {params['model']} model takes no {name}")
    request = GenerateRequest(
        seed=seed,
        bars=params.get("bars") or 4,
        primer=params.get("primer"),
        temperature=params.get("temperature"),
        top_p=params.get("top_p"),
        tempo=params.get("tempo"),
        key=params.get("key") or None,
        chords=tuple(params.get("chords") or ()),
        density=tuple(params.get("density") or ()),
    )
    t0 = time.perf_counter()
    result = gen.generate(request)
    settings = {
        "op": "continue" if params.get("primer") else "generate",
        "model": params["model"],
        "seed": seed,
        **_asked(params, "bars", "temperature", "top_p", "key", "tempo", "chords", "density"),
        **result.settings,
        "seconds_taken": round(time.perf_counter() - t0, 3),
    }
    settings.pop("primer", None)  # a server path: the take's parent says where it came from
    if isinstance(settings.get("request"), dict):
        settings["request"].pop("primer", None)
    return write_take(result.pieces[0], params["take_dir"], settings)


def compose(params: dict[str, Any]) -> dict[str, Any]:
    """A piece from an algorithmic method (:mod:`musegen.web.methods`)."""
    from musegen.web.methods import METHODS

    method = METHODS.get(params["method"])
    if method is None:
        raise MusegenError(f"no compose method {params['method']!r}")
    seed = _seed(params)
    t0 = time.perf_counter()
    score, info = method.run(params, seed)
    settings = {
        "op": "compose",
        "method": params["method"],
        "seed": seed,
        **_asked(params, "bars", "temperature", "key", "tempo", "chords"),
        **info,
        "seconds_taken": round(time.perf_counter() - t0, 3),
    }
    return write_take(score, params["take_dir"], settings)


def harmonize(params: dict[str, Any]) -> dict[str, Any]:
    """Four parts under a take's melody (Coconet, or the rule-based ``csp``)."""
    from musegen.io import load

    seed = _seed(params)
    gen = generator(params["model"])
    melody = load(params["source"])
    t0 = time.perf_counter()
    result = gen.harmonize(
        melody,
        params.get("voices") or "S",
        seed=seed,
        temperature=params.get("temperature") or 1.0,
    )
    settings = {
        "op": "harmonize",
        "model": params["model"],
        "seed": seed,
        **_asked(params, "voices", "temperature"),
        **result.settings,
        "seconds_taken": round(time.perf_counter() - t0, 3),
    }
    return write_take(result.pieces[0], params["take_dir"], settings)


def infill(params: dict[str, Any]) -> dict[str, Any]:
    """A take with the chosen voices of the chosen bars written again."""
    from musegen.io import load
    from musegen.sampling.gibbs import parse_voices

    seed = _seed(params)
    voices = str(params.get("voices") or "SATB")
    parse_voices(voices)
    first, last = (int(b) for b in params["bars"])
    if first < 1 or last < first:
        raise MusegenError(f"bars {first}-{last}: choose bars from 1 on, first <= last")
    gen = generator(params["model"])
    score = load(params["source"])
    if last > score.n_bars:
        raise MusegenError(f"the take has {score.n_bars} bars, not {last}")
    t0 = time.perf_counter()
    result = gen.infill(
        score, (first, last), voices, seed=seed, temperature=params.get("temperature") or 1.0
    )
    settings = {
        "op": "infill",
        "model": params["model"],
        "seed": seed,
        "bars": [first, last],
        "voices_rewritten": voices.upper(),
        **_asked(params, "temperature"),
        **result.settings,
        "seconds_taken": round(time.perf_counter() - t0, 3),
    }
    return write_take(result.pieces[0], params["take_dir"], settings)


def load_piece(params: dict[str, Any]) -> dict[str, Any]:
    """An uploaded file or a corpus piece as a take, refused past the caps on notes and
    length (the size was checked before the file was written)."""
    from musegen.errors import InputError
    from musegen.io import load

    name = params.get("title") or "upload"
    try:
        score = load(params["source"], max_bytes=int(params.get("max_bytes") or 2**21))
    except InputError as e:  # named by its upload's name, not the server's path
        raise MusegenError(f"{name}: {e.reason}") from None
    max_notes = int(params.get("max_notes") or MAX_NOTES)
    max_seconds = float(params.get("max_seconds") or MAX_SECONDS)
    if score.n_notes == 0:
        raise MusegenError(f"{name}: the file holds no notes")
    if score.n_notes > max_notes:
        raise MusegenError(f"{name}: {score.n_notes:,} notes; the studio takes up to {max_notes:,}")
    seconds = score.duration_seconds()
    if seconds > max_seconds:
        raise MusegenError(
            f"{name}: {seconds / 60:.1f} minutes long; the studio takes up to "
            f"{max_seconds / 60:g} minutes"
        )
    settings = {"op": params.get("op", "upload"), "title": name, "seed": None}
    return write_take(score, params["take_dir"], settings)


def render(params: dict[str, Any]) -> list[str]:
    """A take's WAV, MusicXML or engraved SVG pages (names of the files written)."""
    from musegen.io import load
    from musegen.render import render_outputs

    folder = Path(params["take_dir"])
    score = load(folder / "take.mid")
    files = render_outputs(score, folder / "take", [params["kind"]], title=params.get("title"))
    return [f.name for f in files]


def write_take(score: Any, take_dir: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Write ``take.mid`` and ``take.json`` (:func:`~musegen.cli.common.write_pieces`) and
    answer with the take as the page draws it."""
    from musegen.cli.common import write_pieces
    from musegen.io import load

    folder = Path(take_dir)
    write_pieces([score], folder, "take", settings)
    return {"settings": settings, **take_view(load(folder / "take.mid"))}


def take_view(score: Any) -> dict[str, Any]:
    """Notes in seconds per track, bar lines, voices, length, and the key, meter and each
    bar's chord of :func:`musegen.metrics.describe.describe`: what the page draws."""
    from musegen.metrics.describe import describe

    tracks, notes = [], []
    for index, track in enumerate(score.tracks):
        tracks.append({"name": track.name, "voice": track.voice, "drum": bool(track.is_drum)})
        arr = track.notes
        starts = score.ticks_to_seconds(arr["start"])
        ends = score.ticks_to_seconds(arr["start"] + arr["duration"])
        for s, e, p, v in zip(starts, ends, arr["pitch"], arr["velocity"], strict=True):
            notes.append([round(float(s), 4), round(float(e - s), 4), int(p), int(v), index])
    bars = [round(float(score.ticks_to_seconds(int(t))), 4) for t in score.bar_starts()]
    described = describe(score) if score.n_notes else None  # as 'musegen describe' does
    return {
        "key": described.key if described else None,
        "meter": described.meter if described else None,
        "chords": described.chords if described else [],
        "tracks": tracks,
        "notes": notes,
        "bars": bars,
        "seconds": round(float(score.duration_seconds()), 4),
        "n_notes": int(score.n_notes),
        "voices": "".join(t.voice for t in score.tracks if t.voice),
    }


def _asked(params: dict[str, Any], *names: str) -> dict[str, Any]:
    return {n: params[n] for n in names if params.get(n) not in (None, "", [])}


if __name__ == "__main__":
    worker_main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
