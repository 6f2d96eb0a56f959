"""Fuzzing the ``musegen`` commands with mutated files: reports crashes, not a speed figure.

For ``--minutes`` minutes, files made from real small seeds (music21's corpus, MIDI made from
it, hand-built MIDI, token files and run files written by our own commands) are mutated --
byte flips, truncation, chunk lengths that lie, huge and zero values, deep XML nesting,
entity bombs, broken zips, ABC with impossible lengths, JSON of the wrong shape -- and handed
to the command-line entry points that read them: ``info``, ``convert``, ``tokenize``,
``detokenize``, ``render``, ``evaluate stats|harmony|voice-leading``, ``harmonize``,
``infill``, ``generate --primer`` and ``train --config`` (a tiny model, ``--max-steps 2``).

A crash is any of: a traceback (an exception out of the CLI's ``main``, or one printed), an
exit code other than 0 or 2, a worker killed by a signal, or a hang: more than ``--timeout``
(10) seconds of CPU time, or 6 times that of wall time, twice (a case over the limit is run
again in a fresh worker: a burst of load on a shared machine is not a hang). Cases run
in-process in a worker (``musegen.cli.main.main(argv)``, imports paid once, output captured
at the file-descriptor level); the parent times each case and kills and replaces a worker
that hangs. Each crash's
input and command are saved under ``--out`` (one per kind of crash), to become a test.

    python benchmarks/fuzz.py --minutes 10 [--seed S] [--kinds midi,abc] [--out out/fuzz]

The sequence of cases follows from ``--seed``; how many run in the time depends on the
machine. Exit code 1 when any crash was found.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import struct
import sys
import tempfile
import time
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("midi", "musicxml", "mxl", "abc", "tokens", "runfile")
EXTENSION = {
    "midi": ".mid",
    "musicxml": ".musicxml",
    "mxl": ".mxl",
    "abc": ".abc",
    "tokens": ".json",
    "runfile": ".json",
}
WARM_UP = (
    "music21.converter",
    "musegen.models.transformer",
    "musegen.models.coconet",
    "musegen.sampling.generators",
    "musegen.sampling.gibbs",
    "musegen.train.run",
    "musegen.train.trainer",
    "musegen.evaluate.sets",
    "musegen.metrics.voice_leading",
    "musegen.render.audio",
    "musegen.render.pianoroll",
)
MEMORY_LIMIT = 6 * 2**30  # bytes of address space of the worker
MAX_BYTES = 400_000  # mutated files stay small: a hang must come from the content, not size

# ----------------------------------------------------------------------------- commands

# {in}: the mutated file; {out}: the case's own folder; {data}: the prepared tiny dataset
SCORE_COMMANDS = [
    ["info", "{in}"],
    ["info", "--json", "{in}"],
    ["convert", "{in}", "{out}/x.mid"],
    ["convert", "{in}", "{out}/x.musicxml"],
    ["convert", "--voices", "4", "{in}", "{out}/x.mid"],
    ["tokenize", "-t", "remi", "{in}", "-o", "{out}/t.json"],
    ["tokenize", "-t", "events", "{in}", "-o", "{out}/t.json"],
    ["tokenize", "-t", "chorale", "{in}", "-o", "{out}/t.json"],
    ["tokenize", "-t", "melody", "{in}", "-o", "{out}/t.json"],
    ["tokenize", "-t", "roll", "{in}", "-o", "{out}/t.json"],
    ["tokenize", "-t", "satb", "{in}", "-o", "{out}/t.json"],
    ["render", "--wav", "--png", "--synth", "builtin", "{in}", "--out", "{out}"],
    ["render", "--musicxml", "--svg", "{in}", "--out", "{out}"],
    ["evaluate", "stats", "--json", "{in}"],
    ["evaluate", "harmony", "{in}"],
    ["evaluate", "voice-leading", "{in}"],
    ["evaluate", "voice-leading", "--separate", "{in}"],
    ["harmonize", "{in}", "--model", "csp", "--out", "{out}", "--seed", "1"],
    ["harmonize", "{in}", "--out", "{out}", "--seed", "1", "--steps", "4"],
    ["infill", "{in}", "--bars", "1-2", "--out", "{out}", "--seed", "1", "--steps", "4"],
    [
        "generate",
        "--primer",
        "{in}",
        "--primer-bars",
        "1",
        "--bars",
        "2",
        "--seed",
        "1",
        "-o",
        "{out}",
    ],
]
COMMANDS: dict[str, list[list[str]]] = {
    "midi": SCORE_COMMANDS,
    "musicxml": SCORE_COMMANDS,
    "mxl": SCORE_COMMANDS,
    "abc": SCORE_COMMANDS,
    "tokens": [
        ["detokenize", "{in}", "--out", "{out}/x.mid"],
        ["detokenize", "{in}", "--out", "{out}/x.musicxml"],
    ],
    "runfile": [
        # a tiny run whatever the file says (an empty file trains the default model)
        [
            "train",
            "--config",
            "{in}",
            "--data",
            "{data}",
            "--out",
            "{out}/run",
            "--max-steps",
            "2",
            "--batch-size",
            "2",
            "--seq-len",
            "32",
        ],
    ],
}

# ----------------------------------------------------------------------------- seeds

CORPUS_SEEDS = {
    "mxl": ["bach/bwv165.6.mxl", "demos/chorale_with_parallels.mxl", "bach/bwv66.6.mxl"],
    "musicxml": ["demos/multiple-verses.xml", "demos/two-voices.xml"],
    "abc": [
        "ryansMammoth/PaddyMilesFricasseeReel.abc",
        "ryansMammoth/TwoPennyPostmansJig.abc",
        "ryansMammoth/RockyRoadToDublinJig.abc",
    ],
}
HAND_ABC = """X:1
T:Hand-made
M:6/8
L:1/8
Q:1/4=120
K:Dm
V:1
(3ABc d2 e | [DFA]2 z f>g a | ^c'2 _B,, =F/2G/2 | "Am" A3- A2 :|
V:2
D,6 | A,,6 |]
"""
TINY_RUN = {
    "model": "transformer",
    "model_config": {"n_layer": 1, "n_head": 2, "d_model": 16, "d_ff": 32, "max_relative": 16},
    "train": {
        "seq_len": 32,
        "batch_size": 2,
        "lr": 0.001,
        "warmup_steps": 1,
        "max_steps": 2,
        "eval_every": 2,
        "checkpoint_every": 2,
        "device": "cpu",
        "threads": 1,
        "seed": 0,
    },
    "augment": {"transpose": 2},
}


def vlq(n: int) -> bytes:
    """A MIDI variable-length quantity (any size: over 4 bytes is a lie a reader must catch)."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def chunk(tag: bytes, body: bytes, length: int | None = None) -> bytes:
    return tag + struct.pack(">I", len(body) if length is None else length) + body


def midi_file(tracks: list[bytes], division: int = 480, fmt: int = 1) -> bytes:
    header = chunk(b"MThd", struct.pack(">HHH", fmt, len(tracks), division))
    return header + b"".join(chunk(b"MTrk", t + b"\x00\xff\x2f\x00") for t in tracks)


def hand_midi() -> bytes:
    """Two tracks: tempo, meter, key, program, a few notes, a pitch bend, running status."""
    meta = b"\x00\xff\x51\x03\x07\xa1\x20\x00\xff\x58\x04\x03\x02\x18\x08\x00\xff\x59\x02\xfe\x01"
    notes = b"\x00\xc0\x13"
    for i, pitch in enumerate((60, 64, 67, 72)):
        notes += b"\x00" + bytes((0x90, pitch, 80)) + vlq(240) + bytes((0x80, pitch, 0))
        notes += b"\x00" + bytes((0xE0, i * 20, 64))
    notes += b"\x00\x91\x30\x40\x81\x70\x30\x00"  # running status: note-on velocity 0 ends it
    return midi_file([meta, notes])


def build_seeds(work: Path) -> dict[str, list[bytes]]:
    """Real small files of every kind, and the tiny dataset ``train`` reads (``work/data``)."""
    from music21 import corpus

    from musegen.cli.main import main

    seeds: dict[str, list[bytes]] = {kind: [] for kind in KINDS}
    base = Path(corpus.getComposer("bach")[0]).parents[1]  # music21's corpus folder
    for kind, names in CORPUS_SEEDS.items():
        seeds[kind] += [(base / name).read_bytes() for name in names]
    with zipfile.ZipFile(base / CORPUS_SEEDS["mxl"][0]) as z:  # an uncompressed MusicXML too
        inner = next(n for n in z.namelist() if not n.startswith("META-INF"))
        seeds["musicxml"].append(z.read(inner))
    seeds["abc"].append(HAND_ABC.encode())
    midi_dir = work / "midi"
    midi_dir.mkdir()
    quiet = open(os.devnull, "w")  # noqa: SIM115 (closed below)
    for i, ref in enumerate(("corpus:bach/bwv165.6", "corpus:bach/bwv66.6")):
        with _redirect(quiet.fileno()):
            main(["convert", ref, str(midi_dir / f"{i}.mid")])
    (midi_dir / "hand.mid").write_bytes(hand_midi())
    seeds["midi"] += [p.read_bytes() for p in sorted(midi_dir.glob("*.mid"))]
    for tokenizer in ("remi", "events", "chorale", "melody", "roll"):
        out = work / f"tokens-{tokenizer}.json"
        with _redirect(quiet.fileno()):
            main(["tokenize", "-t", tokenizer, str(midi_dir / "0.mid"), "-o", str(out)])
        seeds["tokens"].append(out.read_bytes())
    for name in ("transformer", "lstm", "gru"):
        run = json.loads(json.dumps(TINY_RUN))
        run["model"] = name
        if name != "transformer":
            run["model_config"] = {"n_layer": 1, "d_model": 16}
        seeds["runfile"].append(json.dumps(run, indent=1).encode())
    with _redirect(quiet.fileno()):
        code = main(
            [*("data", "prepare", str(midi_dir), "-t", "remi", "-j", "1"), "-o", str(work / "data")]
        )
    quiet.close()
    if code:
        raise SystemExit(f"fuzz: could not prepare the tiny dataset (exit {code})")
    return seeds


# ----------------------------------------------------------------------------- mutations

INTS = [0, 1, -1, 2, 127, 128, 255, 256, 2**15, 2**16, 2**31 - 1, 2**31, 2**32, 2**63, 10**12]
WEIRD = [
    *INTS,
    -(2**63),
    0.5,
    -0.5,
    1e-300,
    1e308,
    float("nan"),
    float("inf"),
    "",
    "x",
    "1",
    None,
    True,
    [],
    {},
    [[[[[]]]]],
]


def weird(rng: random.Random) -> Any:
    """An odd JSON value, a fresh copy (a shared ``{}`` put twice into a file would make it
    contain itself)."""
    return copy.deepcopy(rng.choice(WEIRD))


NUMBERS_TEXT = ["0", "-1", "-0", "1e308", "NaN", "inf", "999999999", "2147483648", "0.0000001"]
NUMBERS_TEXT += ["18446744073709551616", "abc", "", "3/0", "1.5.5", "+7", " 12 ", "٣"]


def mutate_bytes(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """One to four byte-level changes: flips, interesting values, cuts, copies, splices."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            buf += rng.randbytes(rng.randint(1, 64))
            continue
        i = rng.randrange(len(buf))
        op = rng.randrange(9)
        if op == 0:
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[i] = rng.choice((0, 0x7F, 0x80, 0xFF, 0x20, 0x3C, 0x3E))
        elif op == 2:
            value = rng.choice(INTS[:13]) & 0xFFFFFFFF
            buf[i : i + 4] = struct.pack(rng.choice((">I", "<I")), value)
        elif op == 3:
            del buf[rng.randint(1, len(buf)) :]  # truncation
        elif op == 4:
            del buf[i : i + rng.randint(1, 256)]
        elif op == 5:
            j = rng.randrange(len(buf))
            buf[i:i] = buf[j : j + rng.randint(1, 512)] * rng.randint(1, 8)
        elif op == 6:
            buf[i:i] = rng.randbytes(rng.randint(1, 32))
        elif op == 7:
            other = rng.choice(others)
            j = rng.randrange(len(other) or 1)
            buf[i:] = other[j:]  # splice: this file's head, another's tail
        else:
            buf[i:i] = b"\x00" * rng.randint(1, 64)
    return bytes(buf[:MAX_BYTES])


def midi_chunks(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """A MIDI file's header body and its other chunks (tag, body); lenient."""
    header = data[8:14] if data[:4] == b"MThd" else b"\x00\x01\x00\x01\x01\xe0"
    chunks, i = [], 8 + int.from_bytes(data[4:8], "big") if data[:4] == b"MThd" else 0
    while i + 8 <= len(data):
        length = int.from_bytes(data[i + 4 : i + 8], "big")
        chunks.append((data[i : i + 4], data[i + 8 : i + 8 + length]))
        i += 8 + length
    return header, chunks


def weird_midi_event(rng: random.Random) -> bytes:
    """A delta time and one odd (but mostly well-formed) MIDI event."""
    delta = vlq(rng.choice((0, 0, 1, 0x7F, 0x3FFF, 0x0FFFFFFF, 0xFFFFFFFF, 2**40)))
    pick = rng.randrange(12)
    if pick == 0:
        return delta + b"\xff\x51\x03" + rng.choice((b"\0\0\0", b"\xff\xff\xff", b"\0\0\1"))
    if pick == 1:
        numer, denom = rng.choice((0, 1, 255, 3)), rng.choice((0, 1, 7, 31, 64, 255))
        return delta + bytes((0xFF, 0x58, 4, numer, denom, 24, 8))
    if pick == 2:
        return delta + bytes((0xFF, 0x59, 2, rng.randrange(256), rng.choice((0, 1, 2, 255))))
    if pick == 3:  # a meta event whose length runs past the track
        return delta + b"\xff" + bytes((rng.randrange(128),)) + vlq(rng.choice((9999, 2**28)))
    if pick == 4:
        return delta + b"\xf0" + vlq(rng.choice((0, 3, 2**20))) + b"\x7e\x7f\xf7"
    if pick == 5:  # a note held for ages
        pitch = rng.choice((0, 21, 60, 108, 127))
        gap = vlq(rng.choice((0x0FFFFFFF, 10**6, 0)))
        return delta + bytes((0x90 | rng.randrange(16), pitch, 100)) + gap + bytes((0x80, pitch, 0))
    if pick == 6:  # a note-on that never ends
        return delta + bytes((0x9F, rng.randrange(128), rng.randrange(1, 128)))
    if pick == 7:  # a data byte with no status before it
        return delta + bytes((rng.randrange(128), rng.randrange(128)))
    if pick == 8:
        return delta + bytes((0xC0 | rng.randrange(16), rng.randrange(128)))
    if pick == 9:  # many notes at once
        n = rng.choice((50, 500, 3000))
        return b"".join(
            b"\x00" + bytes((0x90, 30 + (k % 70), 64)) + b"\x01" + bytes((0x80, 30 + (k % 70), 0))
            for k in range(n)
        )
    if pick == 10:
        return delta + bytes((rng.choice((0xF1, 0xF2, 0xF4, 0xF8, 0xFE, 0xF7)),))
    return delta + b"\xff\x2f\x00"  # an end of track in the middle


def mutate_midi(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    header, chunks = midi_chunks(data)
    fmt, ntracks, division = struct.unpack(">HHH", header[:6].ljust(6, b"\0"))
    lengths: dict[int, int] = {}
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(8)
        if op == 0:
            fmt = rng.choice((0, 1, 2, 3, 0xFFFF))
        elif op == 1:
            ntracks = rng.choice((0, 1, len(chunks) + 1, 0xFFFF))
        elif op == 2:  # ticks per quarter, or SMPTE frames (the top bit)
            division = rng.choice((0, 1, 0x7FFF, 0x8000, 0xE250, 0xE728, 0xFFFF, 24))
        elif op == 3 and chunks:
            k = rng.randrange(len(chunks))
            size = len(chunks[k][1])  # a length that lies (never below 0: an empty chunk)
            lengths[k] = rng.choice((0, max(size - 1, 0), size + 7, 2**32 - 1))
        elif op in (4, 5) and chunks:
            k = rng.randrange(len(chunks))
            tag, body = chunks[k]
            at = 0 if rng.random() < 0.7 else rng.randrange(len(body) + 1)
            chunks[k] = (tag, body[:at] + weird_midi_event(rng) + body[at:])
        elif op == 6:
            chunks.insert(
                rng.randrange(len(chunks) + 1),
                rng.choice([(b"XFIH", rng.randbytes(9)), (b"MTrk", b""), (b"MTrk", b"\x00")]),
            )
        elif op == 7 and chunks:
            k = rng.randrange(len(chunks))
            chunks.insert(k, chunks[k]) if rng.random() < 0.5 else chunks.pop(k)
    out = chunk(b"MThd", struct.pack(">HHH", fmt, ntracks, division))
    out += b"".join(chunk(t, b, lengths.get(k)) for k, (t, b) in enumerate(chunks))
    if rng.random() < 0.15:  # RIFF-wrapped (RMID)
        data_chunk = b"data" + struct.pack("<I", len(out)) + out
        out = b"RIFF" + struct.pack("<I", len(data_chunk) + 4) + b"RMID" + data_chunk
    if rng.random() < 0.3:
        out = mutate_bytes(out, rng, others)
    return out[:MAX_BYTES]


def mutate_xml(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    text = data.decode("utf-8", "replace")
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(9)
        numbers = list(re.finditer(r">\s*(-?\d+(?:\.\d+)?)\s*<|=\"(-?\d+(?:\.\d+)?)\"", text))
        if op in (0, 1) and numbers:
            m = rng.choice(numbers)
            g = 1 if m.group(1) is not None else 2
            text = text[: m.start(g)] + rng.choice(NUMBERS_TEXT) + text[m.end(g) :]
        elif op == 2:  # deep nesting
            depth = rng.choice((100, 1000, 20000))
            tag = rng.choice(("x", "note", "measure", "part", "score-part", "direction"))
            at = [m.end() for m in re.finditer(r"<(note|measure|part)\b[^>]*>", text)] or [0]
            i = rng.choice(at)
            text = text[:i] + f"<{tag}>" * depth + f"</{tag}>" * depth + text[i:]
        elif op == 3:  # an element removed
            elements = list(re.finditer(r"<(\w[\w-]*)\b[^>]*>[^<]*</\1>", text))
            if elements:
                m = rng.choice(elements)
                text = text[: m.start()] + text[m.end() :]
        elif op == 4:  # an element repeated
            elements = list(re.finditer(r"<(note|measure|backup|forward)\b.*?</\1>", text, re.S))
            if elements:
                m = rng.choice(elements)
                text = text[: m.end()] + m.group(0) * rng.choice((2, 50, 400)) + text[m.end() :]
        elif op == 5:  # an entity bomb / external entity in the DOCTYPE
            ents = '<!ENTITY a "aaaaaaaaaa">' + "".join(
                f'<!ENTITY {c} "{("&" + p + ";") * 10}">'
                for p, c in zip("abcdefg", "bcdefgh", strict=True)
            )
            if rng.random() < 0.3:
                ents = '<!ENTITY h SYSTEM "file:///etc/hostname">'
            text = re.sub(r"<score-partwise", f"<!DOCTYPE score-partwise [{ents}]><score-partwise",
                          text, count=1)  # fmt: skip
            text = re.sub(r"<part-name>[^<]*<", "<part-name>&h;<", text, count=1)
        elif op == 6:  # a tag renamed
            tags = list(re.finditer(r"<(/?)([\w-]+)", text))
            if tags:
                m = rng.choice(tags)
                new = rng.choice(("note", "chord", "rest", "pitch", "alter", "time", "tie", "x"))
                text = text[: m.start(2)] + new + text[m.end(2) :]
        elif op == 7:  # an odd element inserted into a note
            odd = rng.choice(
                (
                    "<chord/>",
                    "<grace/>",
                    "<rest/>",
                    "<duration>0</duration>",
                    "<tie type='start'/>",
                    "<time-modification><actual-notes>0</actual-notes>"
                    "<normal-notes>0</normal-notes></time-modification>",
                    "<pitch><step>H</step><alter>99</alter><octave>-9</octave></pitch>",
                    "<voice>999999</voice><staff>0</staff>",
                )
            )
            notes = [m.end() for m in re.finditer(r"<note\b[^>]*>", text)] or [0]
            i = rng.choice(notes)
            text = text[:i] + odd + text[i:]
        else:
            return mutate_bytes(text.encode(), rng, others)
    return text.encode()[:MAX_BYTES]


def mutate_mxl(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    if rng.random() < 0.25:
        return mutate_bytes(data, rng, others)
    try:
        with zipfile.ZipFile(BytesIO(data)) as z:
            files = {name: z.read(name) for name in z.namelist()}
    except (zipfile.BadZipFile, OSError, ValueError):
        return mutate_bytes(data, rng, others)
    names = list(files)
    op = rng.randrange(5)
    if op in (0, 1):
        name = rng.choice([n for n in names if not n.startswith("META-INF")] or names)
        files[name] = mutate_xml(files[name], rng, [files[name]])
    elif op == 2:
        container = "META-INF/container.xml"
        files[container] = mutate_xml(files.get(container, b"<container/>"), rng, [b""])
    elif op == 3:
        files.pop(rng.choice(names))
    else:
        files["META-INF/container.xml"] = (
            b'<?xml version="1.0"?><container><rootfiles><rootfile full-path="'
            + rng.choice((b"missing.xml", b"", b"../../etc/passwd", b"META-INF/container.xml"))
            + b'"/></rootfiles></container>'
        )
    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in files.items():
            z.writestr(name, body)
    return out.getvalue()


ABC_TOKENS = [
    "C99999999",
    "C/0",
    "C0",
    "z1000000",
    "(9",
    "(3:0:2",
    "[CEG",
    "]]",
    "|:",
    "::",
    ":|2",
    "[2",
    "^^^^^C",
    "C,,,,,,,,,,,,,,",
    "c''''''''''''''",
    "V:2\n",
    "%%MIDI program 200\n",
    "K:\n",
    "M:0/0\n",
    "L:1/0\n",
    "Q:1/4=0\n",
    "Q:1/4=999999999\n",
    "K:Hmix\n",
    "{g}",
    "!fermata!",
    '"Z#13"',
    "&",
    "y",
    "T:\n",
    "X:2\n",
    "A-",
    "-",
    "<<<<",
    ">>>>",
    "\\\n",
]
ABC_HEADERS = {
    "M": ["0/0", "999/1", "3/0", "C|", "none", "-4/4", "4/4"],
    "L": ["1/0", "0/8", "1/99999", "1/1", "x"],
    "Q": ["0", "1/4=0", "99999999", "1/4=-60", '"fast"', "1/0=120"],
    "K": ["", "C#m", "Xyz", "D clef=bass", "none", "Hp", "C transpose=999"],
}


def mutate_abc(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    text = data.decode("utf-8", "replace")
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(5)
        if op == 0:
            field_name = rng.choice(list(ABC_HEADERS))
            value = rng.choice(ABC_HEADERS[field_name])
            line = f"{field_name}:{value}"
            text, n = re.subn(rf"^{field_name}:.*$", line, text, count=1, flags=re.M)
            if not n:
                text = text.replace("\n", f"\n{line}\n", 1)
        elif op in (1, 2):
            body = [m.end() for m in re.finditer(r"[A-Ga-gz|\]]", text)] or [len(text)]
            i = rng.choice(body)
            text = text[:i] + rng.choice(ABC_TOKENS) + text[i:]
        elif op == 3:
            numbers = list(re.finditer(r"\d+", text))
            if numbers:
                m = rng.choice(numbers)
                text = text[: m.start()] + rng.choice(NUMBERS_TEXT[:9]) + text[m.end() :]
        else:
            return mutate_bytes(text.encode(), rng, others)
    return text.encode()[:MAX_BYTES]


def _paths(obj: Any, path: tuple = ()) -> list[tuple]:
    """Every path into a JSON value (dict keys and list indices, lists sampled)."""
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*path, k))
    elif isinstance(obj, list):
        for i in sorted(set(range(min(len(obj), 3))) | {len(obj) - 1} if obj else set()):
            out += _paths(obj[i], (*path, i))
    return out


def _set(obj: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return obj


def mutate_json(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    if rng.random() < 0.15:
        return mutate_bytes(data, rng, others)
    try:
        obj = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return mutate_bytes(data, rng, others)
    for _ in range(rng.randint(1, 3)):
        paths = _paths(obj)
        ids = [p for p in paths if p and p[-1] == "ids"]
        path = rng.choice(ids if ids and rng.random() < 0.4 else paths)
        try:
            target = obj
            for key in path:
                target = target[key]
        except (KeyError, IndexError, TypeError):
            continue
        op = rng.randrange(6)
        if op == 0 and path:  # delete
            parent = obj
            for key in path[:-1]:
                parent = parent[key]
            del parent[path[-1]]
        elif op == 1 and isinstance(target, list) and target:  # one element odd
            target[rng.randrange(len(target))] = weird(rng)
        elif op == 2 and isinstance(target, list):  # shortened, emptied, repeated
            new = rng.choice((target[: len(target) // 2], [], target * rng.choice((2, 20))))
            obj = _set(obj, path, new)
        elif op == 3 and isinstance(target, dict):  # an unknown or odd key
            target[rng.choice(("x", "", "model", "tokenizer", "n_layer", "seq_len"))] = rng.choice(
                WEIRD
            )
        elif op == 4:
            obj = _set(obj, path, [target] if rng.random() < 0.5 else {"x": target})
        else:
            obj = _set(obj, path, weird(rng))
    return json.dumps(obj).encode()[:MAX_BYTES]


MUTATORS: dict[str, Callable[[bytes, random.Random, list[bytes]], bytes]] = {
    "midi": mutate_midi,
    "musicxml": mutate_xml,
    "mxl": mutate_mxl,
    "abc": mutate_abc,
    "tokens": mutate_json,
    "runfile": mutate_json,
}

# ----------------------------------------------------------------------------- the worker


class _redirect:
    """File descriptors 1 and 2 (and Python's streams) into ``fd`` inside the block."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = os.dup(1), os.dup(2)
        os.dup2(self.fd, 1)
        os.dup2(self.fd, 2)

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        for target, saved in zip((1, 2), self.saved, strict=True):
            os.dup2(saved, target)
            os.close(saved)


def _worker(conn: Any) -> None:
    """Run cases sent over ``conn``: ``(argv, cwd, log)`` -> ``(exit code, traceback)``."""
    import resource

    # a case asking for absurd memory fails here instead of pushing the machine into swap or
    # the OOM killer (whose victim might be another process)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    import torch

    torch.set_num_threads(1)
    import music21  # noqa: F401  (paid once, not inside the first case's time)
    import symusic  # noqa: F401

    for module in WARM_UP:  # the heavy imports of the commands, also paid once
        importlib.import_module(module)

    from musegen.cli.main import main

    conn.send("ready")
    while True:
        job = conn.recv()
        if job is None:
            return
        argv, cwd, log = job
        code, tb = None, ""
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            os.chdir(cwd)
            with _redirect(fd):
                try:
                    code = main(argv)
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                except BaseException:  # any escape is the finding
                    tb = traceback.format_exc()
        finally:
            os.close(fd)
            os.chdir(ROOT)
        conn.send((code, tb))


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


@dataclass
class Worker:
    """A worker process and our end of its pipe; replaced after a hang or a death."""

    timeout: float
    process: Any = None
    conn: Any = None
    restarts: int = 0

    def start(self) -> None:
        ctx = mp.get_context("fork")
        self.conn, theirs = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(theirs,), daemon=True)
        self.process.start()
        if not self.conn.poll(120) or self.conn.recv() != "ready":
            raise SystemExit("fuzz: the worker did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()  # our own child, by its handle
        if self.process is not None:
            self.process.join()
        self.process = None

    def run(self, argv: list[str], cwd: Path, log: Path) -> tuple[str, str]:
        """``("ok", "")``, or a crash: ``(kind, detail)`` with kind one of traceback, exit,
        hang, signal."""
        if self.process is None:
            self.start()
        pid = self.process.pid
        cpu0, wall0 = _cpu_seconds(pid), time.monotonic()
        self.conn.send((argv, str(cwd), str(log)))
        while not self.conn.poll(0.5):
            if not self.process.is_alive():
                code = self.process.exitcode
                self.stop()
                self.restarts += 1
                return "signal", f"worker died (exit code {code})"
            cpu, wall = _cpu_seconds(pid) - cpu0, time.monotonic() - wall0
            if cpu > self.timeout or wall > 6 * self.timeout:
                self.stop()
                self.restarts += 1
                return "hang", f"{cpu:.0f} s CPU, {wall:.0f} s wall"
        try:
            code, tb = self.conn.recv()
        except EOFError:
            self.stop()
            return "signal", "worker died"
        output = log.read_text(errors="replace") if log.exists() else ""
        if tb:
            return "traceback", tb
        if "Traceback (most recent call last)" in output:
            return "traceback", output[output.index("Traceback (most recent call last)") :]
        if code not in (0, 2):
            return "exit", f"exit code {code}: {output.strip()[-500:]}"
        return "ok", ""


def signature(kind: str, detail: str, command: str) -> str:
    """What makes two crashes the same: the exception and the deepest musegen frame."""
    if kind != "traceback":
        return f"{kind} in {command}: {detail.splitlines()[0][:80] if detail else ''}"
    frames = re.findall(r'File "([^"]*musegen[^"]*)", line \d+, in (\w+)', detail)
    where = f"{Path(frames[-1][0]).name}:{frames[-1][1]}" if frames else "?"
    last = [line for line in detail.strip().splitlines() if line and not line.startswith(" ")]
    error = last[-1].split(":")[0] if last else "?"
    return f"{error} at {where} ({command})"


# ----------------------------------------------------------------------------- main loop


@dataclass
class Tally:
    cases: Counter = field(default_factory=Counter)
    crashes: dict[str, list[str]] = field(default_factory=dict)  # signature -> saved cases
    slow: list[str] = field(default_factory=list)  # over the time limit once, not again


def fuzz(args: argparse.Namespace) -> Tally:
    kinds = [k for k in args.kinds.split(",") if k]
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="musegen-fuzz-") as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        seeds = build_seeds(work)
        print(f"# seeds ready in {time.monotonic() - t0:.0f} s", file=sys.stderr)
        worker = Worker(args.timeout)
        worker.start()
        rng = random.Random(args.seed)
        deadline = time.monotonic() + 60 * args.minutes
        n = 0
        while time.monotonic() < deadline:
            n += 1
            kind = rng.choice(kinds)
            data = MUTATORS[kind](rng.choice(seeds[kind]), rng, seeds[kind])
            ext = EXTENSION[kind]
            if rng.random() < 0.03:  # content under another kind's name
                ext = rng.choice([".mid", ".musicxml", ".xml", ".mxl", ".abc", ".midi"])
            command = rng.choice(COMMANDS[kind])
            case = work / f"case{n}"
            case.mkdir()
            path = case / f"input{ext}"
            path.write_bytes(data)
            fill = {"in": str(path), "out": str(case / "out"), "data": str(work / "data")}
            argv = [a.format(**fill) for a in command]
            name = " ".join(command[:2] if command[0] in ("evaluate", "tokenize") else command[:1])
            result, detail = worker.run(argv, case, case / "log.txt")
            if result == "hang":  # a real hang hangs again; a burst of load does not
                again, _ = worker.run(argv, case, case / "log.txt")
                if again != "hang":
                    tally.slow.append(f"{name} ({detail}; {again} when run again)")
                    result = again
            tally.cases[kind] += 1
            if result != "ok":
                sig = signature(result, detail, name)
                saved = tally.crashes.setdefault(sig, [])
                if not saved:
                    keep = out / f"crash{len(tally.crashes)}"
                    keep.mkdir()
                    shutil.copy(path, keep / path.name)
                    (keep / "command.json").write_text(
                        json.dumps({"kind": kind, "argv": command, "result": result}, indent=1)
                    )
                    (keep / "detail.txt").write_text(detail)
                    print(f"# crash {len(tally.crashes)}: {sig}", file=sys.stderr)
                saved.append(f"case{n}")
            shutil.rmtree(case, ignore_errors=True)
            if args.verbose:
                print(f"# case {n} {kind} {name}: {result}", file=sys.stderr)
        worker.stop()
        tally.cases["restarts"] = worker.restarts
    return tally


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=10.0, help="CPU seconds before a hang")
    ap.add_argument("--kinds", default=",".join(KINDS), help="of " + ",".join(KINDS))
    ap.add_argument("--out", default=str(ROOT / "out" / "fuzz"), help="saved crashing cases")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()
    started = time.monotonic()
    tally = fuzz(args)
    restarts = tally.cases.pop("restarts", 0)
    total = sum(tally.cases.values())
    crashes = sum(len(v) for v in tally.crashes.values())
    minutes = (time.monotonic() - started) / 60
    per_kind = ", ".join(f"{k} {v}" for k, v in sorted(tally.cases.items()))
    print(f"fuzz: {minutes:.1f} min, seed {args.seed}, {total} cases ({per_kind})")
    print(f"fuzz: {crashes} crashing cases, {len(tally.crashes)} distinct, {restarts} restarts")
    for note in tally.slow:
        print(f"  slow once, not a hang: {note}")
    for i, (sig, cases) in enumerate(tally.crashes.items(), 1):
        print(f"  crash{i}: {len(cases)} x {sig}  (saved: {args.out}/crash{i})")
    sys.exit(1 if tally.crashes else 0)


if __name__ == "__main__":
    main()
