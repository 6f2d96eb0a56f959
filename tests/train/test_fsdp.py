"""FSDP (``"fsdp": true``) with two CPU processes (gloo) under torchrun: a small transformer
(two layers sharded as units, tied embeddings) trains as one process with the same global
batch, resumes from its checkpoint, and writes full weights that ``load_model`` loads into a
plain, unsharded model."""

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
from musegen.errors import MusegenError
from musegen.models import build_model, load_model
from musegen.train import fsdp
from tinymodels import TinyLM

BATCH = 4  # per process; the one-process run takes 2 * BATCH
STEPS = 6

WORKER = """
import sys, torch
sys.path.insert(0, {tests!r})
from safetensors.torch import save_file
from launchhelpers import leave_group
from tinymodels import cfg
from musegen.models import build_model
from musegen.train.trainer import Trainer

out, batch, use_fsdp = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "fsdp"
torch.set_num_threads(1)


class Stream:
    '''Windows of a half-learnable sequence by global position: the batches of a step are
    the same on any number of ranks (as musegen.data.shards.StreamWindows makes them).'''

    def __init__(self, n=48, seq=12):
        noise = torch.randint(1, 16, (n + seq + 1,), generator=torch.Generator().manual_seed(5))
        ids = torch.where(torch.arange(n + seq + 1) % 3 == 0, noise, torch.arange(n + seq + 1) % 8 + 1)
        self.items = [(ids[i : i + seq], ids[i + 1 : i + seq + 1]) for i in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i % len(self.items)]

    def batch_items(self, step, batch, rank=0, world=1):
        start = (step * world + rank) * batch
        return [self[start + j] for j in range(batch)]


def trainer(steps):
    torch.manual_seed(0)  # no dropout: the ranks' random streams differ from one process's
    model = build_model("transformer", vocab_size=16, n_layer=2, n_head=2, d_model=32, dropout=0.0,
                        bias=False)  # no key bias: its gradient is rounding noise, which Adam scales up
    c = cfg(max_steps=steps, batch_size=batch, warmup_steps=0, min_lr_ratio=1.0, lr=1e-2,
            eval_every={steps}, eval_batches=0, checkpoint_every=3, log_every=1,
            precision="fp32", threads=1, fsdp=use_fsdp)
    return Trainer(model, Stream(), Stream(16), c, out, meta={{"tokenizer": {{"tokenizer": "remi"}}}})


trainer(3).fit()  # stopped after 3 steps ...
t = trainer({steps})
t.fit(resume=True)  # ... and resumed to the end
leave_group()  # the work is written
"""


def _losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def _valid(run: Path) -> float:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return next(r["valid_loss"] for r in rows if r.get("step") == STEPS and "valid_loss" in r)


@pytest.mark.slow
def test_fsdp_on_two_processes_trains_as_one_process_with_the_global_batch(
    tmp_path: Path,
) -> None:
    script = tmp_path / "worker.py"
    tests = str(Path(__file__).resolve().parents[1])
    script.write_text(textwrap.dedent(WORKER.format(tests=tests, steps=STEPS)))
    sharded = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    sharded += [f"--master_port={free_port()}", str(script), str(tmp_path / "fsdp"), str(BATCH)]
    one = [sys.executable, str(script), str(tmp_path / "one"), str(2 * BATCH)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    run_launchers([[*sharded, "fsdp"], [*one, "plain"]], tmp_path / "logs", env=env, timeout=240)
    losses = _losses(tmp_path / "fsdp")  # rank 0's half of each global batch
    assert sorted(losses) == list(range(1, STEPS + 1)) and losses[STEPS] < losses[1]
    # the loss after the steps (the valid split, evaluated whole) is one process's
    assert abs(_valid(tmp_path / "fsdp") - _valid(tmp_path / "one")) <= 1e-5
    # the checkpoint holds full weights: load_model makes a plain model of them
    plain, _ = load_model(tmp_path / "fsdp" / "checkpoint")
    reference, _ = load_model(tmp_path / "one" / "checkpoint")
    assert plain.lm_head.weight is plain.tok_emb.weight  # still tied
    mine, theirs = plain.state_dict(), reference.state_dict()
    assert set(mine) == set(theirs)
    for k, v in theirs.items():
        torch.testing.assert_close(mine[k], v, atol=1e-5, rtol=0)
    info = json.loads((tmp_path / "fsdp" / "checkpoint" / "trainer.json").read_text())
    assert info["step"] == STEPS and info["train_config"]["fsdp"] is True
    optimizer = load_file(str(tmp_path / "fsdp" / "checkpoint" / "trainer.safetensors"))
    whole = load_file(str(tmp_path / "one" / "checkpoint" / "trainer.safetensors"))
    assert set(optimizer) == set(whole)  # the same layout as a one-process run's
    for k in whole:
        if k.startswith("opt."):
            torch.testing.assert_close(optimizer[k], whole[k], atol=1e-5, rtol=0)


def test_fsdp_refuses_devices_it_does_not_run_on() -> None:
    with pytest.raises(MusegenError, match="not meta"):
        fsdp.check(torch.device("meta"), 2)


def test_blocks_are_the_layers_of_module_lists() -> None:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(4, 4)
            self.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4), torch.nn.ReLU()])

    net = Net()
    assert fsdp.blocks(net) == [net.layers[0]]  # a layer without weights is not sharded
    assert fsdp.blocks(TinyLM()) == []
    transformer = build_model("transformer", vocab_size=16, n_layer=2, n_head=2, d_model=32)
    assert fsdp.blocks(transformer) == list(transformer.blocks)
