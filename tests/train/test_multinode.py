"""Two "nodes" on this machine: two torchrun launchers (``--nnodes 2``, node ranks 0 and 1,
c10d rendezvous on 127.0.0.1, gloo) train on a sharded dataset; after 20 steps the valid loss
and the weights equal one process's run with the same global batch."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from launchhelpers import free_port, run_launchers
from musegen.data.dataset import prepare_dataset
from musegen.data.sources import get_source
from musegen.tokenizers import get_tokenizer
from shardhelpers import train_tiny_stream, write_corpus

BATCH = 4  # per process; the single-process run takes 2 * BATCH
STEPS = 20

WORKER = """
import sys
sys.path.insert(0, {tests!r})
from launchhelpers import leave_group
from shardhelpers import train_tiny_stream
train_tiny_stream(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
leave_group()  # the work is written
"""


def _valid_loss(run: Path) -> float:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return next(r["valid_loss"] for r in rows if r.get("step") == STEPS and "valid_loss" in r)


@pytest.mark.slow
def test_two_nodes_train_as_one_process_with_their_global_batch(
    tmp_path: Path, one_torch_thread: None
) -> None:
    source = get_source("folder", root=write_corpus(tmp_path / "corpus", 40))
    prepare_dataset(source, get_tokenizer("remi"), tmp_path / "ds", progress=False, shards=2)
    script = tmp_path / "worker.py"
    tests = str(Path(__file__).resolve().parents[1])
    script.write_text(textwrap.dedent(WORKER.format(tests=tests)))
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    port = free_port()
    launchers = []
    for node in (0, 1):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2"]
        cmd += ["--nproc-per-node", "1", "--node-rank", str(node), "--max-restarts", "0"]
        cmd += ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}"]
        cmd += ["--rdzv-id", "musegen-test", "--local-addr", "127.0.0.1"]
        cmd += [str(script), str(tmp_path / "ds"), str(tmp_path / "nodes"), str(BATCH), str(STEPS)]
        launchers.append(cmd)
    train_tiny_stream(str(tmp_path / "ds"), str(tmp_path / "one"), 2 * BATCH, STEPS)  # here
    run_launchers(launchers, tmp_path / "logs", env=env)
    assert abs(_valid_loss(tmp_path / "nodes") - _valid_loss(tmp_path / "one")) <= 1e-5
    a = load_file(str(tmp_path / "nodes" / "final.safetensors"))
    b = load_file(str(tmp_path / "one" / "final.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=0)
    first = json.loads((tmp_path / "one" / "log.jsonl").read_text().splitlines()[1])
    assert first["step"] == STEPS and first["loss"] > 0
