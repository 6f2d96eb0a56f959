"""Prove that a refactoring changed no output: run every generating command with fixed seeds and
print (or check) the SHA-256 of each MIDI file it writes.

    python scripts/output_digest.py --save digests.json     # before the change
    python scripts/output_digest.py --check digests.json    # after: exit 1 on any difference

The commands are those of ``make demo``, ``compose`` (every method), ``harmonize`` (both models),
``infill`` and ``generate`` for every shipped token model, each also with ``MUSEGEN_FAST_CPU=0``
(the plain PyTorch path must write the same notes as the fast CPU path). Settings JSON files hold
timings and paths, so only the MIDI bytes are compared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MELODY = "corpus:bach/bwv66.6"

# name -> musegen arguments (the output folder and name are added)
COMMANDS: dict[str, list[str]] = {
    "demo": ["generate", "--bars", "8", "--seed", "2026"],
    "generate-bach-num2": [
        "generate",
        "--model",
        "bach",
        "--bars",
        "4",
        "--num",
        "2",
        "--seed",
        "7",
    ],
    "generate-folk": ["generate", "--model", "folk", "--bars", "8", "--seed", "7"],
    "generate-bach-primer": [
        "generate",
        "--model",
        "bach",
        "--primer",
        MELODY,
        "--primer-bars",
        "2",
        "--bars",
        "4",
        "--seed",
        "3",
    ],
    "compose-markov": ["compose", "markov", "--seed", "5"],
    "compose-markov-chords": ["compose", "markov", "--chords", "--seed", "5"],
    "compose-rules": ["compose", "rules", "--seed", "5"],
    "compose-rules-2": ["compose", "rules", "--species", "2", "--seed", "5"],
    "compose-genetic": ["compose", "genetic", "--seed", "5", "--population", "24"],
    "compose-csp": ["compose", "csp", "--melody", MELODY, "--seed", "5"],
    "compose-recombine": ["compose", "recombine", "--seed", "5", "--max-pieces", "20"],
    "harmonize-coconet": ["harmonize", MELODY, "--model", "coconet", "--seed", "5"],
    "harmonize-coconet-strict": [
        "harmonize",
        MELODY,
        "--model",
        "coconet",
        "--strict",
        "--seed",
        "5",
    ],
    "harmonize-csp": ["harmonize", MELODY, "--model", "csp", "--seed", "5"],
    "infill": ["infill", MELODY, "--bars", "2-3", "--voices", "AT", "--seed", "5"],
}
# also run with the CPU fast path switched off; their digests must equal the fast path's
PLAIN = ("demo", "generate-folk", "generate-bach-primer")


def run(name: str, args: list[str], out: Path, env: dict[str, str]) -> dict[str, str]:
    folder = out / name
    cmd = [sys.executable, "-m", "musegen", *args, "--out", str(folder), "--name", "piece"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        return {"error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"}
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.mid"))
    }


def digests(only: list[str] | None) -> dict[str, dict[str, str]]:
    result: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in COMMANDS.items():
            if only and name not in only:
                continue
            result[name] = run(name, args, Path(tmp), dict(os.environ))
            print(f"{name}: {result[name]}", file=sys.stderr)
            if name in PLAIN:
                plain = run(
                    name + "-plain", args, Path(tmp), {**os.environ, "MUSEGEN_FAST_CPU": "0"}
                )
                result[name + "-plain"] = plain
                if plain != result[name]:
                    print(f"{name}: MUSEGEN_FAST_CPU=0 writes other bytes", file=sys.stderr)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--save", type=Path, help="write the digests here (JSON)")
    ap.add_argument(
        "--check", type=Path, help="compare with digests saved earlier; exit 1 on a difference"
    )
    ap.add_argument("--only", nargs="*", help="run only these commands: " + ", ".join(COMMANDS))
    args = ap.parse_args()
    now = digests(args.only)
    if args.save:
        args.save.write_text(json.dumps(now, indent=1) + "\n")
    if args.check:
        before = json.loads(args.check.read_text())
        changed = [k for k in now if before.get(k) != now[k]]
        for k in changed:
            print(f"CHANGED {k}: {before.get(k)} -> {now[k]}")
        print("identical" if not changed else f"{len(changed)} of {len(now)} outputs changed")
        return 1 if changed else 0
    if not args.save:
        print(json.dumps(now, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
