"""Blind A/B listening tests: the plan of pairs, the answers, and their statistics.

A test plays pairs of pieces, one from set A and one from set B, in an order drawn per pair
(so a listener cannot learn that "the first is always A"), and asks one or more questions
("which is more musical?", "which is human-made?"). Each answer names the side chosen, A or
B, known to the server only. :func:`summarize` reports, per question, how often B was chosen,
with an exact two-sided binomial test against 0.5 (no preference) and two confidence
intervals: Wilson's score interval and the exact Clopper-Pearson interval.

The statistics are pure functions of counts (standard library only), so they are tested on
synthetic answers with known outcomes and against scipy where it is installed.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

from musegen.errors import MusegenError

QUESTIONS: dict[str, str] = {
    "musical": "Which of the two is more musical?",
    "human": "Which of the two was made by a person?",
}
"""The questions a test may ask, by the key answers are stored under."""

ANSWER_FIELDS = ("listener", "pair", "question", "choice", "a", "b", "b_first", "time")
"""The columns of an answers CSV (``choice`` is ``a`` or ``b``)."""


# --------------------------------------------------------------------------- statistics
def binom_pmf(k: int, n: int, p: float = 0.5) -> float:
    """P(X = k) for X ~ Binomial(n, p)."""
    if not 0 <= k <= n:
        return 0.0
    if p in (0.0, 1.0):
        return float(k == (n if p == 1.0 else 0))
    log = (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )
    return math.exp(log)


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return min(1.0, sum(binom_pmf(i, n, p) for i in range(k + 1)))


def binom_test(k: int, n: int, p: float = 0.5) -> float:
    """Exact two-sided binomial test: the probability, under Binomial(n, p), of an outcome no
    likelier than ``k`` (the same rule as scipy's ``binomtest``). 1.0 when ``n`` is 0."""
    _check_counts(k, n)
    if n == 0:
        return 1.0
    observed = binom_pmf(k, n, p)
    tolerance = 1 + 1e-7  # outcomes as likely as k, up to rounding, count as extreme
    total = sum(q for i in range(n + 1) if (q := binom_pmf(i, n, p)) <= observed * tolerance)
    return min(1.0, total)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a proportion ``k / n`` ((0, 1) when ``n`` is 0)."""
    _check_counts(k, n)
    if n == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    rate = k / n
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    low = 0.0 if k == 0 else max(0.0, centre - half)  # exact ends where rounding would miss
    high = 1.0 if k == n else min(1.0, centre + half)
    return (low, high)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval for a proportion: the ``p`` whose binomial tails
    at ``k`` hold at least ``(1 - confidence) / 2`` each, found by bisection."""
    _check_counts(k, n)
    if n == 0:
        return (0.0, 1.0)
    alpha = (1 - confidence) / 2
    # the lower end: P(X >= k | p) = alpha; the upper end: P(X <= k | p) = alpha
    low = 0.0 if k == 0 else _bisect(lambda p: 1 - binom_cdf(k - 1, n, p) - alpha)
    high = 1.0 if k == n else _bisect(lambda p: alpha - binom_cdf(k, n, p))
    return (low, high)


def _bisect(f: Any, steps: int = 60) -> float:
    """The root in (0, 1) of an increasing function ``f``."""
    lo, hi = 0.0, 1.0
    for _ in range(steps):
        mid = (lo + hi) / 2
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _check_counts(k: int, n: int) -> None:
    if n < 0 or not 0 <= k <= n:
        raise MusegenError(f"bad counts: {k} of {n}")


@dataclass(frozen=True)
class Preference:
    """How often B was chosen over A for one question."""

    question: str
    n: int
    chose_b: int
    rate_b: float
    p_value: float
    wilson: tuple[float, float]
    exact: tuple[float, float]
    confidence: float

    def line(self) -> str:
        """One line for a terminal."""
        if not self.n:
            return f"{self.question}: no answers"
        lo, hi = self.wilson
        return (
            f"{self.question}: B chosen {self.chose_b}/{self.n} = {self.rate_b:.1%} "
            f"({self.confidence:.0%} CI {lo:.1%}-{hi:.1%} Wilson, "
            f"{self.exact[0]:.1%}-{self.exact[1]:.1%} exact), "
            f"binomial p = {self.p_value:.3g} against 50%"
        )


def preference(question: str, chose_b: int, n: int, confidence: float = 0.95) -> Preference:
    """The statistics of ``chose_b`` answers for B out of ``n``."""
    if not 0 < confidence < 1:
        raise MusegenError(f"confidence must be between 0 and 1, got {confidence}")
    return Preference(
        question=question,
        n=n,
        chose_b=chose_b,
        rate_b=chose_b / n if n else math.nan,
        p_value=binom_test(chose_b, n),
        wilson=wilson_interval(chose_b, n, confidence),
        exact=clopper_pearson(chose_b, n, confidence),
        confidence=confidence,
    )


def summarize(answers: list[dict[str, Any]], confidence: float = 0.95) -> list[Preference]:
    """One :class:`Preference` per question, in the order questions first appear."""
    counts: dict[str, list[int]] = {}
    for row in answers:
        choice = str(row.get("choice", "")).lower()
        if choice not in ("a", "b"):
            raise MusegenError(f"an answer's choice is {row.get('choice')!r}, not a or b")
        tally = counts.setdefault(str(row.get("question", "")), [0, 0])
        tally[0] += choice == "b"
        tally[1] += 1
    return [preference(q, b, n, confidence) for q, (b, n) in counts.items()]


# --------------------------------------------------------------------------- plan and answers
@dataclass(frozen=True)
class Pair:
    """One trial: a piece of A and one of B, and whether B plays first."""

    index: int
    a: str
    b: str
    b_first: bool

    def side(self, slot: int) -> str:
        """``a`` or ``b``: which set the piece played in ``slot`` (1 or 2) came from."""
        if slot not in (1, 2):
            raise MusegenError(f"slot must be 1 or 2, got {slot}")
        return "b" if (slot == 1) == self.b_first else "a"

    def piece(self, slot: int) -> str:
        return self.b if self.side(slot) == "b" else self.a


def plan_pairs(a: list[str], b: list[str], pairs: int, seed: int = 0) -> list[Pair]:
    """``pairs`` trials drawn with ``seed``: pieces of each set used in a shuffled cycle (no
    piece repeats before all of its set have played), the order in each pair drawn."""
    if not a or not b:
        raise MusegenError("both sets need at least one piece")
    if pairs < 1:
        raise MusegenError(f"--pairs must be at least 1, got {pairs}")
    rng = random.Random(seed)

    def cycle(items: list[str]) -> list[str]:
        out: list[str] = []
        while len(out) < pairs:
            batch = sorted(items)
            rng.shuffle(batch)
            out += batch
        return out[:pairs]

    firsts, seconds = cycle(a), cycle(b)
    return [
        Pair(i, x, y, rng.random() < 0.5)
        for i, (x, y) in enumerate(zip(firsts, seconds, strict=True))
    ]


def answers_csv(answers: list[dict[str, Any]]) -> str:
    """The answers as CSV text with the :data:`ANSWER_FIELDS` columns."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ANSWER_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in answers:
        writer.writerow(row)
    return buffer.getvalue()


def save_answers(path: str | Path, setup: dict[str, Any], answers: list[dict[str, Any]]) -> None:
    """Write ``PATH`` (JSON: the test's setup and every answer) and the same answers as CSV
    beside it (``PATH`` with ``.csv``), each atomically."""
    from musegen.utils import atomic_write_text

    path = Path(path)
    atomic_write_text(path, json.dumps({"setup": setup, "answers": answers}, indent=1) + "\n")
    atomic_write_text(path.with_suffix(".csv"), answers_csv(answers))


def read_answers(path: str | Path) -> list[dict[str, Any]]:
    """Answers from a JSON file written by :func:`save_answers` or a CSV with a ``question``
    and a ``choice`` column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise MusegenError(f"{path}: cannot read answers ({e.__class__.__name__})") from e
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        if rows and not {"question", "choice"} <= set(rows[0]):
            raise MusegenError(f"{path}: a CSV of answers needs 'question' and 'choice' columns")
        return rows
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise MusegenError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from e
    answers = data.get("answers") if isinstance(data, dict) else data
    if not isinstance(answers, list) or not all(isinstance(r, dict) for r in answers):
        raise MusegenError(f"{path}: no list of answers (write it with 'musegen listen-test')")
    return answers


def report(prefs: list[Preference]) -> dict[str, Any]:
    """The statistics as JSON-ready data."""
    rows = [asdict(p) | {"rate_b": p.rate_b if p.n else None} for p in prefs]
    return {"questions": rows}
