"""Seeds and search budgets of the algorithmic composers: every method can be repeated from
its seed, and every search stops at a step or time limit with an error that says what to do."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

import numpy as np

from musegen.errors import MusegenError


def make_rng(seed: int | None) -> tuple[np.random.Generator, int]:
    """A generator and the seed it came from (a fresh random seed when ``seed`` is None)."""
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    return np.random.default_rng(seed), seed


class SearchGaveUp(MusegenError):
    """A search hit its step or time limit before finding an answer."""


@dataclass
class Budget:
    """A step and wall-time limit for a search; :meth:`tick` raises when either is spent."""

    what: str
    max_steps: int = 200_000
    max_seconds: float = 10.0
    steps: int = 0
    started: float = field(default_factory=time.perf_counter)

    def tick(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > self.max_steps:
            raise SearchGaveUp(
                f"{self.what}: gave up after {self.max_steps:,} search steps without a solution "
                "(raise the step limit, or relax the request: shorter, other key or range)"
            )
        if self.steps % 256 == 0 and self.elapsed > self.max_seconds:
            raise SearchGaveUp(
                f"{self.what}: gave up after {self.max_seconds:g} s ({self.steps:,} steps) "
                "without a solution (raise the time limit, or relax the request)"
            )

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started
