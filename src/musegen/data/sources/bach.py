"""Bach chorales from music21's bundled corpus (MusicXML), offline, with a stored split."""

from __future__ import annotations

from musegen.data.sources._citations import MUSIC21
from musegen.data.sources._corpus import CorpusSource


class Bach(CorpusSource):
    name = "bach"
    description = (
        "J. S. Bach's four-part chorales as MusicXML from music21's corpus (each "
        "harmonisation one piece; variants of one chorale share a split)"
    )
    citation = MUSIC21
    license = (
        "Bach's music is in the public domain; the encodings ship with music21 "
        "(BSD licence), see music21's corpus documentation for their sources."
    )
    folder = "bach"
    suffixes = (".mxl", ".xml")
    # BWV 846 is the C major prelude of the Well-Tempered Clavier, not a chorale.
    exclude = frozenset({"bwv846.mxl"})
    group_rule = "the chorale number without a variant suffix (bwv248.23-2 -> bach/bwv248.23)"

    @classmethod
    def group_key(cls, piece_id: str, data: bytes) -> str:
        return piece_id.split("-")[0]
