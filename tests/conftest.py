"""Fixtures shared by the test folders."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from musegen.utils import usable_cores


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs ``-n auto``) each worker takes its share of the
    cores for torch: N workers each spinning OpenMP threads over every core would wait for one
    another and run slower than one worker alone."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        torch.set_num_threads(max(1, usable_cores() // workers))


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """A module's tests on one torch thread: tiny tensors gain nothing from threads, and on a
    busy machine OpenMP threads waiting for each other make them many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
