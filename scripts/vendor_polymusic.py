"""Vendor the four Boulanger-Lewandowski piano-roll benchmarks as compressed NPZ files.

Reads ``JSB_Chorales.mat``, ``Nottingham.mat``, ``MuseData.mat`` and ``Piano_midi.mat`` (checked
against their published MD5s) from the shared data folder or ``--src``, and writes
``src/musegen/data/vendor/{jsb,nottingham,musedata,pianomidi}.npz`` in the layout that
``musegen.data.sources._polymusic`` reads. Prints each file's size, its SHA-256 and the content
hash the source classes pin (``content_hash``). Run from the repository root:

    .venv/bin/python scripts/vendor_polymusic.py [--src ../shared/data/poly_music]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from musegen.data.sources import SOURCES
from musegen.data.sources._polymusic import (
    VENDOR_DIR,
    PolyMusicSource,
    content_sha256,
    read_mat,
    read_npz,
    write_npz,
)
from musegen.data.sources.base import check_md5, shared_data_dir

NAMES = ("jsb", "nottingham", "musedata", "pianomidi")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, help="folder holding the four .mat files")
    parser.add_argument("--out", type=Path, default=VENDOR_DIR)
    args = parser.parse_args()
    src = args.src
    if src is None:
        shared = shared_data_dir()
        if shared is None:
            parser.error("no shared data folder found: pass --src")
        src = shared / "poly_music"
    args.out.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        cls = SOURCES[name]
        assert issubclass(cls, PolyMusicSource)
        mat = src / cls.mat_file
        check_md5(mat, cls.md5)
        packed = read_mat(mat)
        out = args.out / cls.vendored
        write_npz(out, packed, cls.md5)
        back = read_npz(out)
        digest = content_sha256(packed)
        assert content_sha256(back) == digest, f"{out}: round trip changed the rolls"
        sha = hashlib.sha256(out.read_bytes()).hexdigest()
        print(f"{out.name}: {out.stat().st_size} bytes sha256={sha} content_hash={digest}")


if __name__ == "__main__":
    main()
