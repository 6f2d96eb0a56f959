"""Two "nodes" on this machine: two torchrun launchers (``--nnodes 2``, node ranks 0 and 1,
c10d rendezvous on 127.0.0.1, gloo) train on a sharded dataset; after 20 steps the valid loss
and the weights equal one process's run with the same global batch."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from musegen.data.dataset import prepare_dataset
from musegen.data.sources import get_source
from musegen.tokenizers import get_tokenizer
from shardhelpers import write_corpus

BATCH = 4  # per process; the single-process run takes 2 * BATCH
STEPS = 20

WORKER = """
import sys, torch
sys.path.insert(0, {tests!r})
from safetensors.torch import save_file
from tinymodels import TinyLM, cfg, save_tiny
from musegen.data.dataset import load_prepared
from musegen.data.shards import StreamWindows
from musegen.data.training import WindowDataset
from musegen.train.trainer import Trainer

out, batch = sys.argv[1], int(sys.argv[2])
data = load_prepared({data!r})
train = StreamWindows(data.split("train"), 12, seed=0)
valid = WindowDataset(data.split("valid"), 12, mode="tile")
torch.manual_seed(0)  # the same initial weights on every rank, as DDP requires
model = TinyLM(vocab=len(data.tokenizer))
model.drop.p = 0.0  # no dropout: the ranks' random streams differ from one process's
c = cfg(max_steps={steps}, batch_size=batch, eval_every={steps}, eval_batches=0,
        checkpoint_every={steps}, log_every={steps}, precision="fp32", threads=1, lr=3e-3)
t = Trainer(model, train, valid, c, out, save_fn=save_tiny)
t.fit()
if t.dist.main:
    state = {{k: v.contiguous() for k, v in t.raw_model.state_dict().items()}}
    save_file(state, out + "/final.safetensors")
if t.dist.world > 1:
    torch.distributed.destroy_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(procs: list[subprocess.Popen[str]], timeout: float = 240) -> list[str]:
    errors = []
    try:
        for p in procs:
            _, err = p.communicate(timeout=timeout)
            errors.append(err)
    except subprocess.TimeoutExpired:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)  # a launcher and its worker
            p.communicate()
        raise
    for p, err in zip(procs, errors, strict=True):
        assert p.returncode == 0, err[-3000:]
    return errors


def _valid_loss(run: Path) -> float:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return next(r["valid_loss"] for r in rows if r.get("step") == STEPS and "valid_loss" in r)


@pytest.mark.slow
def test_two_nodes_train_as_one_process_with_their_global_batch(tmp_path: Path) -> None:
    source = get_source("folder", root=write_corpus(tmp_path / "corpus", 40))
    prepare_dataset(source, get_tokenizer("remi"), tmp_path / "ds", progress=False, shards=2)
    script = tmp_path / "worker.py"
    tests = str(Path(__file__).resolve().parents[1])
    code = WORKER.format(tests=tests, data=str(tmp_path / "ds"), steps=STEPS)
    script.write_text(textwrap.dedent(code))
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    port = _free_port()
    launchers = []
    for node in (0, 1):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2"]
        cmd += ["--nproc-per-node", "1", "--node-rank", str(node), "--max-restarts", "0"]
        cmd += ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}"]
        cmd += ["--rdzv-id", "musegen-test", "--local-addr", "127.0.0.1"]
        cmd += [str(script), str(tmp_path / "nodes"), str(BATCH)]
        launchers.append(
            subprocess.Popen(
                cmd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        )
    single = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "one"), str(2 * BATCH)],
        env={k: v for k, v in env.items() if k not in ("WORLD_SIZE", "RANK")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _wait([*launchers, single])
    assert abs(_valid_loss(tmp_path / "nodes") - _valid_loss(tmp_path / "one")) <= 1e-5
    a = load_file(str(tmp_path / "nodes" / "final.safetensors"))
    b = load_file(str(tmp_path / "one" / "final.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=0)
    first = json.loads((tmp_path / "one" / "log.jsonl").read_text().splitlines()[1])
    assert first["step"] == STEPS and first["loss"] > 0
