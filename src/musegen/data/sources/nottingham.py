"""Nottingham: 1,037 British and American folk tunes (melody + chords), Boulanger-Lewandowski
(2012) split 694/173/170, binary piano rolls with one frame per eighth note."""

from __future__ import annotations

from typing import ClassVar

from musegen.data.sources._citations import BOULANGER_2012, POLY_LICENSE
from musegen.data.sources._polymusic import PolyMusicSource


class Nottingham(PolyMusicSource):
    name = "nottingham"
    description = (
        "Nottingham folk tunes (Eric Foxley's Nottingham Music Database), "
        "Boulanger-Lewandowski (2012) split 694/173/170; binary piano rolls per eighth note"
    )
    citation = BOULANGER_2012
    license = POLY_LICENSE
    mat_file = "Nottingham.mat"
    md5 = "7cc53d4cad543cf589d8769ae59c556a"
    vendored = "nottingham.npz"
    content_hash = "8771a1a23d764d86e22f1adb72caa8afc94d300bfe2e79f71c457be2de57f4cc"
    split_sizes: ClassVar[dict[str, int]] = {"train": 694, "valid": 173, "test": 170}
    steps_per_quarter = 2
    checksums: ClassVar[dict[str, str]] = {mat_file: f"md5:{md5}"}
