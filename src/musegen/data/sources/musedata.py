"""MuseData: orchestral and piano classical music from CCARH's MuseData library,
Boulanger-Lewandowski (2012) split 524/135/124, binary piano rolls with one frame per eighth note."""

from __future__ import annotations

from typing import ClassVar

from musegen.data.sources._citations import BOULANGER_2012, POLY_LICENSE
from musegen.data.sources._polymusic import PolyMusicSource


class MuseData(PolyMusicSource):
    name = "musedata"
    description = (
        "MuseData classical scores (CCARH), Boulanger-Lewandowski (2012) split 524/135/124; "
        "binary piano rolls per eighth note"
    )
    citation = BOULANGER_2012
    license = POLY_LICENSE + " MuseData encodings are (c) CCARH, Stanford University."
    mat_file = "MuseData.mat"
    md5 = "f6ed2469c13ff7e61d8c06dc1e75840c"
    vendored = "musedata.npz"
    content_hash = "354dfcd04c96239fd202795792938b95b4e21ed800d12e0a46e41b78d2f3f07e"
    split_sizes: ClassVar[dict[str, int]] = {"train": 524, "valid": 135, "test": 124}
    steps_per_quarter = 2
    checksums: ClassVar[dict[str, str]] = {mat_file: f"md5:{md5}"}
