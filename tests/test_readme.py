"""The README's commands, run on tiny inputs.

Every command in a ```` ```sh ```` block of README.md is either run here (``RUN``: as written,
or made small: fewer bars, one training step) or listed in ``SKIP`` with the reason it is not.
A README command in neither fails :func:`test_every_readme_command_is_run_or_skipped`, and so
does an entry here that the README no longer has. The ```` ```python ```` blocks are run too.

The commands run in one workspace (a temporary folder used as the working directory) that
holds the file names the README uses: ``melody.mid`` (two bars of a soprano), ``chorale.mid``
and ``song.mid`` (four bars of BWV 66.6 in four voices), ``my_midi/`` (a few short chorales),
``out/piece.mid`` and the repository's ``configs/``. Commands call ``musegen``'s ``main`` in
this process: a fresh ``python -m musegen`` pays seconds of imports (torch, music21) per
command, which would take the file past its time budget. ``MUSEGEN_README_SUBPROCESS=1`` runs
each one through ``python -m musegen`` instead. Commands that need files an earlier README
command writes (a prepared dataset, a training run) run that command first when the file is
missing, so any single test also runs alone.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_TRAIN = "--max-steps 1 --batch-size 2 --seq-len 64 --eval-every 1"

# README command -> the command run here (None: as written).
RUN: dict[str, str | None] = {
    # Quick start
    "musegen --help": None,
    "musegen models": None,
    "musegen generate --bars 8 --render wav,png --out out": (
        "musegen generate --bars 2 --seed 1 --render wav,png --out out"
    ),
    "musegen info out/piece.mid": None,
    # Generate
    "musegen generate --bars 16 --num 4 --seed 7 --out out": (
        "musegen generate --bars 2 --num 2 --seed 7 --out out"
    ),
    'musegen generate --model folk --bars 8 --time-signature 6/8 --key "D major" --out out': (
        'musegen generate --model folk --bars 2 --time-signature 6/8 --key "D major" --seed 1'
        " --out out"
    ),
    "musegen generate --model coconet --bars 8 --num 2 --out out": (
        "musegen generate --model coconet --bars 1 --num 2 --seed 1 --out out"
    ),
    "musegen generate --primer chorale.mid --primer-bars 2 --bars 8 --temperature 0.9 --top-p 0.9"
    " --out out": (
        "musegen generate --primer chorale.mid --primer-bars 2 --bars 1 --temperature 0.9"
        " --top-p 0.9 --seed 1 --out out"
    ),
    'musegen generate --seconds 30 --tempo 90 --time-signature 3/4 --key "e minor" --out out': (
        'musegen generate --seconds 4 --tempo 90 --time-signature 3/4 --key "e minor" --seed 1'
        " --out out"
    ),
    # Harmonize, infill, compose (melody.mid is two bars: Coconet runs at full length)
    "musegen harmonize melody.mid --out out --render wav,png": (
        "musegen harmonize melody.mid --out out --render wav,png --seed 1"
    ),
    "musegen harmonize melody.mid --strict --samples 2 --out out": (
        "musegen harmonize melody.mid --strict --samples 2 --out out --seed 1"
    ),
    "musegen harmonize melody.mid --model csp --out out": None,
    "musegen harmonize chorale.mid --voices SB --out out": (
        "musegen harmonize chorale.mid --voices SB --out out --seed 1"
    ),
    "musegen infill chorale.mid --bars 2-3 --voices ATB --out out": (
        "musegen infill chorale.mid --bars 2-3 --voices ATB --out out --seed 1"
    ),
    "musegen accompany melody.mid --out out": "musegen accompany melody.mid --out out --seed 1",
    'musegen compose markov --train source:nottingham --order 3 --chords --bars 8 --key "D major"'
    " --out out": (
        'musegen compose markov --train source:nottingham --order 3 --chords --bars 2 --key "D major"'
        " --max-pieces 50 --seed 1 --out out"
    ),
    'musegen compose rules --species 2 --key "d minor" --out out': (
        'musegen compose rules --species 2 --key "d minor" --seed 1 --out out'
    ),
    'musegen compose genetic --chords "I vi IV V I ii V7 I" --key G --out out': (
        'musegen compose genetic --chords "I vi IV V I ii V7 I" --key G --population 16'
        " --generations 3 --quiet --seed 1 --out out"
    ),
    "musegen compose csp --melody melody.mid --out out": None,
    # (JSB's grids where the shared benchmark data is, else music21's chorales: 12 either way)
    'musegen compose recombine --segments 16 --key "F major" --out out': (
        'musegen compose recombine --segments 16 --key "F major" --max-pieces 12 --seed 1 --out out'
    ),
    # Render
    "musegen render song.mid": None,
    "musegen render corpus:bach/bwv66.6 --wav --svg --pdf --out out": None,
    "musegen render song.mid --wav --synth builtin": None,
    "musegen convert corpus:bach/bwv66.6 bwv66.6.mid": None,
    # Evaluate
    "musegen evaluate stats song.mid --json": None,
    "musegen evaluate harmony corpus:bach/bwv66.6": None,
    "musegen evaluate voice-leading chorale.mid": None,
    "musegen evaluate report out/ --reference source:bach:valid --out report.html"
    " --json report.json": (
        "musegen evaluate report out/ --reference source:bach:valid --out report.html"
        " --json report.json --max-pieces 2 --no-progress"
    ),
    # Train your own: the bach source parses 409 MusicXML files (~40 s), so the tiny
    # my_midi/ folder stands in for it; the test split of six pieces may be empty.
    "musegen data list": None,
    "musegen data prepare bach --tokenizer chorale --out data/bach-chorale": (
        "musegen data prepare my_midi/ --tokenizer chorale --out data/bach-chorale -j 1"
    ),
    "musegen data prepare my_midi/ --tokenizer remi --out data/mine": (
        "musegen data prepare my_midi/ --tokenizer remi --out data/mine -j 1"
    ),
    "musegen data info data/bach-chorale": None,
    "musegen train --config configs/bach.json --data data/bach-chorale --out runs/bach": (
        f"musegen train --config configs/bach.json --data data/bach-chorale --out runs/bach {TINY_TRAIN}"
    ),
    "musegen train --config configs/bach.json --data data/bach-chorale --out runs/bach --resume": (
        "musegen train --config configs/bach.json --data data/bach-chorale --out runs/bach --resume"
        f" {TINY_TRAIN.replace('--max-steps 1', '--max-steps 2')}"
    ),
    "musegen generate --model runs/bach --bars 8 --out out": (
        "musegen generate --model runs/bach --bars 1 --seed 1 --out out"
    ),
    "musegen evaluate nll --model runs/bach --data data/bach-chorale --split test": (
        "musegen evaluate nll --model runs/bach --data data/bach-chorale --split train"
    ),
    # More (a.mid and b.mid: the two-bar melody and the chorale)
    "musegen latent interpolate a.mid b.mid --steps 8 --out out": (
        "musegen latent interpolate melody.mid song.mid --steps 3 --seed 1 --out out"
    ),
    'musegen generate --model midinet --chords "C Am F G" --bars 8 --out out': (
        'musegen generate --model midinet --chords "C Am F G" --bars 2 --seed 1 --out out'
    ),
    "musegen harmonize melody.mid --model rl-chord --out out": (
        "musegen harmonize melody.mid --model rl-chord --seed 1 --out out"
    ),
    "musegen render song.mid --wav --synth neural": None,
}

# README command -> why it is not run here.
SKIP: dict[str, str] = {
    "make demo": "installs .venv with pip; the commands it runs (models, generate with "
    "--render wav,png, info) are run here in their Quick start forms",
    "make test": "runs the whole test suite, this file included",
    "python3 -m venv .venv": "installation: creates a virtual environment",
    ".venv/bin/pip install torch==2.13.0": "installation: downloads torch",
    '.venv/bin/pip install -e ".[audio,plot,notation]"': "installation: downloads the dependencies",
    '.venv/bin/pip install --no-deps "tinysoundfont>=0.3"': "installation: downloads tinysoundfont",
    "musegen train rl --config configs/folk-rl.json --out runs/folk-rl": (
        "150 steps of 16 folk melodies: about 4 minutes; train rl runs on a tiny model in "
        "tests/cli/test_train_rl_cli.py"
    ),
    "musegen serve": "starts a server that runs until stopped; tests/web/ runs the app, and the "
    "page in headless Chromium",
    "torchrun --nproc_per_node 4 -m musegen train --config configs/bach.json --data"
    " data/bach-chorale --out runs/bach": "starts four training processes; DDP under "
    "torchrun is tested with two CPU processes in tests/train/test_ddp.py",
}

# Files that a README command writes and later commands read: run the writer first if missing.
PRODUCERS = {
    "data/bach-chorale": "musegen data prepare bach --tokenizer chorale --out data/bach-chorale",
    "runs/bach": "musegen train --config configs/bach.json --data data/bach-chorale --out runs/bach",
}


def _strip_comment(line: str) -> str:
    """The line without a trailing ``# comment`` (a ``#`` outside quotes after a blank)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def readme_commands() -> list[str]:
    """Each shell command of the README's sh blocks, continuation lines joined, comments gone,
    runs of blanks made one; in README order, without repeats."""
    commands: list[str] = []
    for block in fenced_blocks(README.read_text(encoding="utf-8"), "sh"):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            command = " ".join(_strip_comment(line).split())
            if command and command not in commands:
                commands.append(command)
    return commands


def test_every_readme_command_is_run_or_skipped() -> None:
    commands = readme_commands()
    assert commands, "no ```sh blocks found in README.md"
    assert not set(RUN) & set(SKIP), "a command is both run and skipped"
    unknown = [c for c in commands if c not in RUN and c not in SKIP]
    assert not unknown, (
        "README commands that tests/test_readme.py neither runs nor skips (add each to RUN, "
        f"with a tiny version if it is slow, or to SKIP with a reason): {unknown}"
    )
    stale = [c for c in [*RUN, *SKIP] if c not in commands]
    assert not stale, f"tests/test_readme.py lists commands the README no longer has: {stale}"
    assert all(reason.strip() for reason in SKIP.values())


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the file names the README uses, made with musegen itself."""
    from musegen.io import load, save

    ws = tmp_path_factory.mktemp("readme")
    bwv = load("corpus:bach/bwv66.6")  # ships with music21: offline
    chorale = bwv.slice_bars(0, 4)
    save(chorale, ws / "chorale.mid")
    save(chorale, ws / "song.mid")
    melody = bwv.slice_bars(0, 2)
    melody.tracks = [t for t in melody.tracks if t.voice == "S"]
    save(melody, ws / "melody.mid")
    (ws / "my_midi").mkdir()
    for i in range(6):
        save(bwv.slice_bars(i, i + 3).transpose(i - 3), ws / "my_midi" / f"chorale{i}.mid")
    (ws / "out").mkdir()
    save(chorale, ws / "out" / "piece.mid")
    shutil.copytree(ROOT / "configs", ws / "configs")
    return ws


def _argv(command: str) -> list[str]:
    argv = shlex.split(command)
    assert argv[0] == "musegen", f"only musegen commands run here: {command}"
    return argv[1:]


def run_command(command: str, ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path, producer in PRODUCERS.items():
        if path in command.split() and not (ws / path).exists() and command != RUN[producer]:
            run_command(RUN[producer] or producer, ws, capsys)
    if os.environ.get("MUSEGEN_README_SUBPROCESS"):
        proc = subprocess.run(
            [sys.executable, "-m", "musegen", *_argv(command)],
            cwd=ws,
            capture_output=True,
            text=True,
            timeout=600,
        )
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        from musegen.cli.main import main

        try:
            code = main(_argv(command))
        except SystemExit as e:  # --help, and argparse errors
            code = e.code if isinstance(e.code, int) else 1
        out, err = capsys.readouterr()
    assert code == 0, (
        f"`{command}` exited with {code}\nstdout:\n{out[-2000:]}\nstderr:\n{err[-2000:]}"
    )


@pytest.mark.parametrize("readme_command", list(RUN), ids=[c.removeprefix("musegen ") for c in RUN])
def test_readme_command_runs(
    readme_command: str,
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(workspace)
    run_command(RUN[readme_command] or readme_command, workspace, capsys)


def test_readme_python_blocks_run(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = fenced_blocks(README.read_text(encoding="utf-8"), "python")
    assert blocks, "no ```python blocks found in README.md"
    monkeypatch.chdir(workspace)
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md python block {i + 1}", "exec"), {"__name__": "readme"})
