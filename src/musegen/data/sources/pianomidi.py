"""Piano-midi.de: classical piano pieces sequenced by Bernd Krueger, Boulanger-Lewandowski
(2012) split 87/12/25, binary piano rolls with one frame per eighth note."""

from __future__ import annotations

from typing import ClassVar

from musegen.data.sources._citations import BOULANGER_2012, POLY_LICENSE
from musegen.data.sources._polymusic import PolyMusicSource


class PianoMidi(PolyMusicSource):
    name = "pianomidi"
    description = (
        "Piano-midi.de classical piano (Bernd Krueger), Boulanger-Lewandowski (2012) split "
        "87/12/25; binary piano rolls per eighth note"
    )
    citation = BOULANGER_2012
    license = (
        POLY_LICENSE + " The piano-midi.de sequences are Bernd Krueger's; see piano-midi.de "
        "for their licence terms."
    )
    mat_file = "Piano_midi.mat"
    md5 = "06b11f106c71c0accaa82c3087dfbad0"
    vendored = "pianomidi.npz"
    content_hash = "54fe6c893225b51853376f72a27b99ff5ab95d258f78bf64db2d6f4db5c1669b"
    split_sizes: ClassVar[dict[str, int]] = {"train": 87, "valid": 12, "test": 25}
    steps_per_quarter = 2
    checksums: ClassVar[dict[str, str]] = {mat_file: f"md5:{md5}"}
