"""The one progress display: tqdm's bar on a terminal, a few plain lines in a log."""

from __future__ import annotations

import io

import pytest

from musegen import utils
from musegen.utils import PlainProgress, progress


class Clock:
    """A stand-in for ``time.monotonic`` that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(utils.time, "monotonic", c)
    return c


def test_a_log_gets_a_line_every_few_seconds_not_one_per_step(clock: Clock) -> None:
    log = io.StringIO()
    bar = progress(total=1000, desc="training", unit="step", file=log, every=10.0)
    assert isinstance(bar, PlainProgress)
    for _ in range(1000):
        clock.now += 0.1  # 100 s in all: 10 lines at most, then the summary
        bar.update(1)
        bar.set_postfix(loss="1.234")
    bar.close()
    bar.close()  # a second close writes nothing
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert 9 <= len(lines) <= 11
    assert lines[0].startswith("training: 100/1,000 step (10%), 10 step/s, loss=1.234, 1:30 left")
    assert lines[-1] == "training: 1,000 step in 1:40, 10 step/s, loss=1.234"


def test_a_short_job_in_a_log_stays_silent(clock: Clock) -> None:
    log = io.StringIO()
    items = list(progress(range(50), desc="reading", file=log))
    clock.now += 1
    assert items == list(range(50))
    assert log.getvalue() == ""


def test_iterating_counts_and_closes(clock: Clock) -> None:
    log = io.StringIO()
    bar = progress(iter(range(3)), desc="x", file=log, every=0.0)
    for _ in bar:
        clock.now += 1
    assert bar.n == 3 and bar.closed
    assert log.getvalue().splitlines()[-1] == "x: 3 it in 3.0 s, 1 it/s"


def test_disabled_shows_nothing_but_still_iterates(clock: Clock) -> None:
    log = io.StringIO()
    with progress(total=5, file=log, disable=True, every=0.0) as bar:
        clock.now += 100
        bar.update(5)
    assert list(progress([1, 2], disable=True, file=log)) == [1, 2]
    assert log.getvalue() == ""


def test_bytes_are_scaled_and_resumed_counts_start_where_they_were(clock: Clock) -> None:
    log = io.StringIO()
    bar = progress(total=4e6, initial=1e6, unit="B", unit_scale=True, file=log, every=1.0)
    clock.now += 2
    bar.update(2e6)
    assert log.getvalue() == "3M/4M B (75%), 1M B/s, 1.0 s left\n"


def test_a_terminal_gets_tqdm() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    from tqdm import tqdm

    bar = progress(total=3, file=Tty())
    assert isinstance(bar, tqdm)
    bar.close()
