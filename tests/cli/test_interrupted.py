"""Interrupted work loses nothing: ``kill -9`` during ``data prepare``, ``train`` and
``generate --num``, then the same command again (``--resume`` for train), gives what an
uninterrupted run gives, and no file under its final name is ever half-written.

Real ``musegen`` processes are killed at points drawn from a seeded generator: when the work
has reached a drawn amount (chunks cached, steps logged, pieces written), so the kill lands
in the work itself rather than in Python's start-up. The runs that are not killed run in this
process (``main``), on one thread as the killed ones, which spares their start-up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from musegen.cli.main import main
from musegen.io import load, save
from musegen.score import Note, Score, Track

RNG = np.random.default_rng(18)  # the kill points
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def musegen(*args: str) -> list[str]:
    return [sys.executable, "-m", "musegen", "--threads", "1", *map(str, args)]


def run(*args: object) -> int:
    """``musegen --threads 1 args`` in this process; its exit code."""
    return main(["--threads", "1", *map(str, args)])


def kill_when(args: list[str], reached: Callable[[], bool], timeout: float = 60) -> bool:
    """Start ``musegen args``; ``kill -9`` it once ``reached()``; whether it was killed
    (False: it finished first)."""
    proc = subprocess.Popen(
        musegen(*args), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    end = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < end:
            if reached():
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return True
            time.sleep(0.002)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def visible(folder: Path) -> list[Path]:
    """Files under their final names (temporaries are hidden: ``.NAME.XXXX.tmp``)."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not p.name.startswith(".")
        and not any(part.endswith((".tmp", ".old")) for part in p.parts)
    )


# ----------------------------------------------------------------------------- data prepare
@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("songs")
    for k in range(240):
        notes = [Note(48 + (k * 7 + i * 5) % 36, i * 120, 120) for i in range(96)]
        save(Score(tracks=[Track.from_notes(notes)]), root / f"song{k:03d}.mid")
    return root


def prepare(songs: Path, out: Path) -> list[str]:
    return ["data", "prepare", str(songs), "--tokenizer", "remi", "--out", str(out), "-j", "1"]


def test_data_prepare_killed_then_run_again_writes_the_same_files(
    songs: Path, tmp_path: Path
) -> None:
    whole = tmp_path / "whole"
    assert run(*prepare(songs, whole)) == 0
    want = outputs(whole)
    assert "manifest.json" in want and "train.bin" in want
    cut = tmp_path / "cut"
    chunks = int(RNG.integers(1, 4))  # of the four a one-worker run writes
    assert kill_when(prepare(songs, cut), lambda: len(list(cut.glob("cache/*/*.npz"))) >= chunks)
    readable_if_there(cut)
    # again, killed while it writes the dataset's files (its cache is complete by now)
    before = set(cut.glob(".*.tmp"))
    assert kill_when(prepare(songs, cut), lambda: bool(set(cut.glob(".*.tmp")) - before))
    readable_if_there(cut)
    assert run(*prepare(songs, cut)) == 0
    assert outputs(cut) == want
    assert not [p for p in cut.rglob("*") if p.name.endswith(".tmp")]
    for chunk in cut.glob("cache/*/*.npz"):  # the cache too holds whole files only
        with np.load(chunk) as z:
            assert len(z["keys"]) == len(z["lengths"])


def readable_if_there(folder: Path) -> None:
    """A manifest is written last, so where there is one the dataset it describes is whole."""
    from musegen.data.dataset import load_prepared

    if (folder / "manifest.json").exists():
        data = load_prepared(folder)
        assert sum(len(data.split(s)) for s in data.manifest.splits) == 240


def outputs(folder: Path) -> dict[str, object]:
    """The dataset's files (the cache apart: its chunks depend on where a run stopped), the
    manifest as JSON without the time it was made."""
    files: dict[str, object] = {
        p.name: p.read_bytes() for p in visible(folder) if "cache" not in p.parts
    }
    files["manifest.json"] = undated(json.loads(files["manifest.json"]))  # type: ignore[arg-type]
    return files


def undated(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: undated(v) for k, v in obj.items() if k != "created"}
    if isinstance(obj, list):
        return [undated(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------- train
@pytest.fixture(scope="module")
def prepared(songs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data") / "remi"
    assert run(*prepare(songs, out)) == 0
    return out


def run_file(folder: Path) -> Path:
    path = folder / "run.json"
    path.write_text(
        json.dumps(
            {
                "model": "transformer",
                "model_config": {"n_layer": 1, "d_model": 32, "n_head": 2, "d_ff": 64},
                "train": {
                    "seq_len": 64,
                    "batch_size": 8,
                    "max_steps": 16,
                    "eval_every": 4,
                    "eval_batches": 2,
                    "checkpoint_every": 4,
                    "log_every": 1,
                    "warmup_steps": 2,
                    "precision": "fp32",  # not a timing probe: the same arithmetic each run
                    "progress": False,
                },
            }
        )
    )
    return path


def logged_steps(run_dir: Path) -> int:
    try:
        rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    except (OSError, ValueError):
        return 0
    return max((r.get("step", 0) for r in rows if "loss" in r), default=0)


def weights(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


def losses(run_dir: Path) -> list[tuple[int, float, float]]:
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"], r["lr"]) for r in rows if "loss" in r]


def test_train_killed_then_resumed_ends_as_an_uninterrupted_run(
    prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = run_file(tmp_path)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train = ["train", "--data", str(prepared), "--config", str(config)]
    assert run(*train, "--out", str(whole)) == 0
    step = int(RNG.integers(2, 15))
    assert kill_when([*train, "--out", str(cut)], lambda: logged_steps(cut) >= step)
    for folder in (cut / "checkpoint", cut / "best"):  # whole, or not there
        if folder.exists():
            assert set(weights(folder)) == set(weights(whole / folder.name))
    capsys.readouterr()
    again = run(*train, "--out", str(cut), "--resume")
    if again == 2:  # killed before the first checkpoint: the message says what to do
        assert "without --resume" in capsys.readouterr().err
        again = run(*train, "--out", str(cut))
    assert again == 0
    for name in ("checkpoint", "best"):
        a, b = weights(whole / name), weights(cut / name)
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}/{key}")
    assert losses(cut) == losses(whole)  # each step logged once, as in one run


# ----------------------------------------------------------------------------- generate
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from musegen.models import build_model, save_model
    from musegen.tokenizers import get_tokenizer

    tok = get_tokenizer("melody")
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=32, n_head=2)
    folder = tmp_path_factory.mktemp("model") / "tiny"
    save_model(model, folder, {"tokenizer": tok.to_dict()})
    return folder


def test_generate_many_killed_then_run_again_skips_what_was_written(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --seed: the second run takes the first one's from its record."""
    num = 34  # three batches: 16, 16 and 2
    gen = ["generate", "--model", str(tiny_model), "--num", num, "--bars", "2"]
    cut = tmp_path / "cut"
    pieces = int(RNG.integers(1, num))

    def written(n: int = pieces) -> bool:
        return len(list(cut.glob("piece_*.mid"))) >= n

    assert kill_when([*gen, "--out", str(cut)], written)
    for path in visible(cut):  # every file there is whole
        if path.suffix == ".mid":
            assert load(path).n_notes > 0
    assert not (cut / "piece.json").exists()  # the settings come last
    capsys.readouterr()
    assert run(*gen, "--out", str(cut)) == 0
    settings = json.loads((cut / "piece.json").read_text())
    if pieces > 16:
        assert "resuming:" in capsys.readouterr().out
    whole = tmp_path / "whole"
    assert run(*gen, "--out", str(whole), "--seed", settings["seed"]) == 0
    names = [f"piece_{i}.mid" for i in range(1, num + 1)]
    assert sorted(p.name for p in cut.glob("*.mid")) == sorted(names)
    for name in names:
        assert (cut / name).read_bytes() == (whole / name).read_bytes(), name
    other = json.loads((whole / "piece.json").read_text())
    assert len(settings["files"]) == num and len(settings["batch_seeds"]) == 3
    for key in ("seed", "sampling", "request", "batch_seeds"):
        assert settings[key] == other[key]
    assert not list(cut.glob(".*"))  # the record goes with a complete run


def test_batches_draw_their_own_pieces_and_a_record_of_another_command_is_ignored(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from musegen.cli.batches import BATCH, record_path

    out = tmp_path / "out"
    gen = ["generate", "--model", str(tiny_model), "--num", BATCH + 1, "--bars", "1"]
    assert run(*gen, "--out", str(out), "--seed", 5) == 0
    settings = json.loads((out / "piece.json").read_text())
    assert settings["batch_seeds"][0] == 5 and len(set(settings["batch_seeds"])) == 2
    assert (out / "piece_1.mid").read_bytes() != (out / f"piece_{BATCH + 1}.mid").read_bytes()
    # a record left by a run with other options: not resumed, its seed not taken
    record = {"command": {"num": 3}, "seed": 5, "settings": None, "done": {}}
    record_path(out, "piece").write_text(json.dumps(record))
    capsys.readouterr()
    assert run(*gen, "--out", str(out)) == 0
    assert "resuming" not in capsys.readouterr().out
    assert json.loads((out / "piece.json").read_text())["seed"] != 5
    assert not record_path(out, "piece").exists()
