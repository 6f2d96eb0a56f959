"""DDP with two CPU processes (gloo), launched by torchrun as a user would."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import torch
from safetensors.torch import load_file

from launchhelpers import free_port, run_launchers

WORKER = """
import json, sys, torch
sys.path.insert(0, {tests!r})
from launchhelpers import leave_group
from safetensors.torch import save_file
from tinymodels import TinyLM, Windows, cfg, save_tiny
from musegen.train.trainer import Trainer

torch.set_num_threads(1)
torch.manual_seed(0)  # the same initial weights on every rank, as DDP requires
t = Trainer(TinyLM(), Windows(), Windows(16), cfg(max_steps=6), {out!r}, save_fn=save_tiny)
seen = []  # this rank's training losses and target counts, step by step
objective = t.objective
def recording(model, batch):
    loss, n = objective(model, batch)
    if model.training:
        seen.append((float(loss.detach()), int(n)))
    return loss, n
t.objective = recording
t.fit()
with open({out!r} + f"/losses{{t.dist.rank}}.json", "w") as f:
    json.dump(seen, f)
state = {{k: v.contiguous() for k, v in t.raw_model.state_dict().items()}}
save_file(state, {out!r} + f"/rank{{t.dist.rank}}.safetensors")
leave_group()  # the work is written
"""


def test_torchrun_two_cpu_processes_stay_in_sync(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    tests = str(Path(__file__).resolve().parents[1])
    script.write_text(textwrap.dedent(WORKER.format(tests=tests, out=str(tmp_path))))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    cmd += [f"--master_port={free_port()}", str(script)]
    run_launchers([cmd], tmp_path / "logs", timeout=180)
    a = load_file(str(tmp_path / "rank0.safetensors"))
    b = load_file(str(tmp_path / "rank1.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    assert (tmp_path / "checkpoint" / "trainer.json").exists()  # written by rank 0 only
    # the logged loss is both ranks' (weighted by their targets), not rank 0's alone
    ranks = [json.loads((tmp_path / f"losses{r}.json").read_text()) for r in (0, 1)]
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "loss" in r]
    assert logged
    for row in logged:
        (l0, n0), (l1, n1) = (losses[row["step"] - 1] for losses in ranks)
        assert abs(row["loss"] - (l0 * n0 + l1 * n1) / (n0 + n1)) < 1e-6
        assert abs(l0 - l1) > 1e-6  # the ranks saw different batches
