"""The compose methods as the studio offers them: each a name, the settings it takes, and a
``run(params, seed) -> (score, info)`` calling :mod:`musegen.compose` as ``musegen compose``
does (markov trains on the vendored Nottingham tunes once per worker; recombine reads the
chorales once). The rule-based harmonizer ``csp`` is a generator
(:data:`musegen.sampling.generators.METHODS`), offered with the harmonizers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from musegen.errors import MusegenError

_CACHE: dict[str, Any] = {}


@dataclass(frozen=True)
class Method:
    description: str
    settings: tuple[str, ...]  # the page's settings it reads
    run: Callable[[dict[str, Any], int], tuple[Any, dict[str, Any]]]

    def describe(self) -> dict[str, Any]:
        return {"description": self.description, "settings": list(self.settings)}


def _key(params: dict[str, Any]) -> Any:
    from musegen.theory import parse_key

    return parse_key(params["key"]) if params.get("key") else (0, False)


def _tempo(params: dict[str, Any], default: float) -> float:
    return float(params.get("tempo") or default)


def _markov(params: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    from musegen.compose.markov import train_markov

    if "markov" not in _CACHE:
        _CACHE["markov"] = train_markov(["source:nottingham"], 2)
    model = _CACHE["markov"]
    batch = model.sample(
        1, int(params.get("bars") or 8), seed=seed, temperature=params.get("temperature") or 1.0
    )
    score = batch.score(0, _key(params), _tempo(params, 110.0))
    return score, {"trained_on": "source:nottingham", "order": model.order}


def _rules(params: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    from musegen.compose.rules import compose_counterpoint

    bars = int(params.get("bars") or 10)
    cp = compose_counterpoint(key=_key(params), length=max(4, bars), seed=seed, max_seconds=10)
    return cp.score(_tempo(params, 160.0)), {"species": 1, "search_steps": cp.steps}


def _genetic(params: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    from musegen.compose.genetic import evolve, make_problem

    romans = params.get("chords") or None
    problem = make_problem(_key(params), romans, params.get("bars") or None)
    ev = evolve(problem, population=60, generations=60, seed=seed)
    info = {"population": 60, "generations": 60, "best_fitness": ev.best_fitness}
    return ev.score(_tempo(params, 110.0)), info


def _recombine(params: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    from musegen.compose.recombine import build_lexicon, chorale_steps, recombine
    from musegen.data.sources.base import shared_data_dir

    key = _key(params)
    shared = shared_data_dir()
    have = shared is not None and (shared / "jsb_chorales" / "Jsb16thSeparated.json").is_file()
    corpus = "jsb-satb" if have else "bach"
    cache = f"recombine-{corpus}-{key[1]}"
    if cache not in _CACHE:
        steps = chorale_steps(corpus, "train", None if have else 80)
        _CACHE[cache] = build_lexicon(steps, key[1], 1)
    beats = 4 * int(params.get("bars") or 4)
    rec = recombine(_CACHE[cache], beats, seed=seed)
    return rec.score(key, _tempo(params, 80.0)), {"corpus": corpus, "segments": beats}


METHODS: dict[str, Method] = {
    "markov": Method("Markov chains over pitch and length (Nottingham tunes)",
                     ("bars", "temperature", "key", "tempo"), _markov),
    "rules": Method("Fux first-species counterpoint over a cantus firmus (bars: notes)",
                    ("bars", "key", "tempo"), _rules),
    "genetic": Method("a genetic algorithm evolving a melody over chords (Roman numerals)",
                      ("bars", "key", "tempo", "chords"), _genetic),
    "recombine": Method("Bach chorale beats recombined (Cope-style)",
                        ("bars", "key", "tempo"), _recombine),
}  # fmt: skip


def method(name: str) -> Method:
    if name not in METHODS:
        raise MusegenError(f"no compose method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]
