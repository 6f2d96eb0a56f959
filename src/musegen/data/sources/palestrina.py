"""Palestrina mass movements (Humdrum **kern) from music21's bundled corpus, offline."""

from __future__ import annotations

import re

from musegen.data.sources._citations import MUSIC21
from musegen.data.sources._corpus import CorpusSource

_TITLE = re.compile(rb"^!!!OPR:\s*(.+?)\s*$", re.MULTILINE)


class Palestrina(CorpusSource):
    name = "palestrina"
    description = (
        "Giovanni Pierluigi da Palestrina's mass movements (Humdrum **kern, from CCARH) in "
        "music21's corpus; all movements of one mass share a split"
    )
    citation = MUSIC21
    license = (
        "Palestrina's music is in the public domain; the kern encodings (CCARH) ship with music21."
    )
    folder = "palestrina"
    suffixes = (".krn",)
    group_rule = "the mass title (the file's !!!OPR line), else the piece id"

    @classmethod
    def group_key(cls, piece_id: str, data: bytes) -> str:
        found = _TITLE.search(data)
        if not found:
            return piece_id
        return "palestrina/" + found.group(1).decode("utf-8", "replace")
