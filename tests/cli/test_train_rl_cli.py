"""``musegen train rl``: a tiny run, its resume, and one-line errors (exit 2)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from musegen.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from test_rl import tiny_melody_model


def run(*argv: str) -> int:
    return main(["train", "rl", *argv, "--threads", "1"])


def test_train_rl_runs_resumes_and_records_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    out = tmp_path / "run"
    common = ["--model", str(model), "--batch-size", "2", "--bars", "1", "--out", str(out)]
    assert run(*common, "--steps", "1", "--reward", "key,tonic") == 0
    printed = capsys.readouterr().out
    assert '"seed": 0' in printed and "tuned 1 steps" in printed
    assert json.loads((out / "run.json").read_text())["rewards"] == ["key", "tonic"]
    assert run(*common, "--steps", "2", "--reward", "key,tonic", "--resume") == 0
    assert "tuned 2 steps" in capsys.readouterr().out
    assert json.loads((out / "checkpoint" / "config.json").read_text())["rl"]["step"] == 2


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--kl", "-1"], "--kl"),
        (["--steps", "0"], "--steps"),
        (["--reward", "nonsense"], "unknown reward"),
        (["--reward", "no_such_module_xyz:f"], "cannot import"),
        (["--model", "no-such-model"], "no model"),
        (["--resume"], "no RL checkpoint"),
        (["--config", "/no/such/file.json"], "cannot read the RL run file"),
        (["--reward", "theory", "--weights", "rhythm=2"], "unknown part"),
        (["--reward", "theory", "--weights", "repetition"], "part=weight"),
        (["--candidates", "--credit", "piece"], "--credit note"),
        (["--reward", "theory", "--candidate-weights", "leaps=9"], "add it"),
        (["--reward", "theory", "--candidates", "--candidate-weights", "motifs=9"], "pitch"),
        (["--reward", "theory", "--candidates", "--candidate-weights", "x"], "part=weight"),
        (["--per-note-candidates"], "--candidates"),
        (["--note-kl", "-2"], "--note-kl"),
        (["--rule-tilt", "repetition=6"], "add it"),
        (["--target-kl", "1", "--rule-tilt", "motifs=1"], "pitch"),
        (["--target-kl", "1", "--rule-tilt", "key"], "part=weight"),
        (["--target-kl", "-1"], "--target-kl"),
        (["--repeat-kl", "-1"], "--repeat-kl"),
    ],
)
def test_train_rl_errors_are_one_line(
    argv: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    args = ["--model", str(model), "--batch-size", "2", "--bars", "1", "--steps", "1"]
    assert run(*args, "--out", str(tmp_path / "r"), *argv) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1


def test_train_rl_reads_a_run_file_and_flags_override_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tiny_melody_model(tmp_path / "tiny")
    run_file = tmp_path / "rl.json"
    run_file.write_text(json.dumps({"model": str(model), "batch_size": 2, "bars": 1, "kl": 0.5}))
    assert run("--config", str(run_file), "--steps", "1", "--out", str(tmp_path / "r")) == 0
    used = json.loads((tmp_path / "r" / "run.json").read_text())["rl"]
    assert (used["kl"], used["steps"], used["batch_size"]) == (0.5, 1, 2)
    assert (used["weights"], used["candidates"], used["shaping"]) == (None, False, False)
    out = str(tmp_path / "r3")
    assert run("--config", str(run_file), "--steps", "1", "--out", out, "--candidates",
               "--shaping", "--weights", "repetition=30",
               "--candidate-weights", "repetition=300") == 0  # fmt: skip
    used = json.loads((tmp_path / "r3" / "run.json").read_text())["rl"]
    assert used["candidate_weights"] == {"repetition": 300}
    assert (used["per_note_candidates"], used["note_kl"]) == (False, 0.0)
    assert (used["weights"], used["candidates"], used["shaping"]) == (
        {"repetition": 30},
        True,
        True,
    )
    run_file.write_text(json.dumps({"kl_weight": 1}))
    assert run("--config", str(run_file), "--out", str(tmp_path / "r2")) == 2
    assert "unknown RL setting" in capsys.readouterr().err


def test_the_shipped_run_file_is_valid() -> None:
    from musegen.train.rl import RLConfig, read_rl_file

    root = Path(__file__).resolve().parents[2]
    for name in ("folk-rl", "folk-rl-x2", "folk-rl-c100", "folk-rl-pernote", "folk-rl-exact"):
        assert RLConfig.from_dict(read_rl_file(root / "configs" / f"{name}.json")).model == "folk"


def one_step_settings(tmp_path: Path, name: str, *flags: str) -> dict:
    """The settings a one-step run of a tiny melody model with ``flags`` saved."""
    model = tiny_melody_model(tmp_path / "tiny")
    args = ["--model", str(model), "--batch-size", "2", "--bars", "1", "--steps", "1"]
    assert run(*args, "--out", str(tmp_path / name), *flags) == 0
    return json.loads((tmp_path / name / "run.json").read_text())["rl"]


def test_per_note_candidates_and_note_kl_from_flags(tmp_path: Path) -> None:
    used = one_step_settings(
        tmp_path, "r", "--candidates", "--per-note-candidates", "--note-kl", "2.5"
    )
    assert (used["per_note_candidates"], used["note_kl"]) == (True, 2.5)


def test_target_kl_and_rule_tilt_from_flags(tmp_path: Path) -> None:
    used = one_step_settings(tmp_path, "r", "--target-kl", "2", "--rule-tilt", "repetition=6,key=1")
    assert (used["target_kl"], used["rule_tilt"]) == (2.0, {"repetition": 6.0, "key": 1.0})
    assert one_step_settings(tmp_path, "q", "--repeat-kl", "3")["repeat_kl"] == 3.0
