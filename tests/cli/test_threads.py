"""``--threads`` sets PyTorch's CPU threads for every command (default: the usable cores)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from musegen.cli.common import command_threads
from musegen.cli.main import _commands, build_parser
from musegen.errors import MusegenError
from musegen.utils import usable_cores


def test_every_command_takes_threads_before_or_after_its_name() -> None:
    parser = build_parser()
    leaves = _commands(parser)
    assert len(leaves) > 20
    for leaf in leaves:
        assert "--threads" in leaf._option_string_actions, leaf.prog
    args = parser.parse_args(["generate", "--threads", "3"])
    assert args.threads == 3 and args.all_threads is None
    args = parser.parse_args(["--threads", "2", "compose", "rules"])
    assert args.all_threads == 2 and args.threads is None
    args = parser.parse_args(["--threads", "2", "train", "--data", "d"])  # train keeps its own
    assert args.all_threads == 2 and args.threads is None


def test_torch_runs_on_the_threads_asked_for_and_gets_its_count_back() -> None:
    before = torch.get_num_threads()
    with command_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
        assert os.environ["OMP_NUM_THREADS"] == "1"  # for processes the command starts
    assert torch.get_num_threads() == before


def test_default_is_the_usable_cores_unless_omp_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with command_threads(None) as n:
        assert n == usable_cores() == len(os.sched_getaffinity(0))
    assert "OMP_NUM_THREADS" not in os.environ
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with command_threads(None) as n:
        assert n == 1
    with command_threads(2) as n:
        assert n == 2
    assert os.environ["OMP_NUM_THREADS"] == "1"
    with pytest.raises(MusegenError, match="--threads must be >= 1"), command_threads(0):
        pass


def test_a_command_that_loads_torch_later_gets_the_count() -> None:
    """In a fresh process torch is not loaded when the command starts: it reads the count
    when a command imports it."""
    code = (
        "import sys\n"
        "import musegen.cli.main as m\n"
        "def probe(args):\n"
        "    assert 'torch' not in sys.modules\n"
        "    import torch\n"
        "    print(torch.get_num_threads())\n"
        "build = m.build_parser\n"
        "def patched():\n"
        "    parser = build()\n"
        "    for leaf in m._commands(parser):\n"
        "        leaf.set_defaults(func=probe)\n"
        "    return parser\n"
        "m.build_parser = patched\n"
        "sys.exit(m.main(sys.argv[1:]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    for argv, want in ((["--threads", "1", "models"], 1), (["models"], usable_cores())):
        done = subprocess.run(
            [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [str(want)]
