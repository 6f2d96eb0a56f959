"""Essen folk songs (ABC tune books in music21's bundled corpus), one piece per tune."""

from __future__ import annotations

from musegen.data.sources._citations import MUSIC21
from musegen.data.sources._corpus import CorpusSource

ESSEN = """@book{schaffrath1995essen,
  title     = {The Essen Folksong Collection in the Humdrum Kern Format},
  author    = {Schaffrath, Helmut},
  editor    = {Huron, David},
  publisher = {Center for Computer Assisted Research in the Humanities},
  address   = {Menlo Park, CA},
  year      = {1995}
}"""


class Folk(CorpusSource):
    name = "folk"
    description = (
        "Essen Folksong Collection (mostly German folk melodies) from music21's corpus: "
        "ABC tune books, each tune a piece (id FILE#X)"
    )
    citation = f"{ESSEN}\n\n{MUSIC21}"
    license = (
        "Essen Folksong Collection (Helmut Schaffrath / CCARH), free for research use; "
        "the ABC versions ship with music21."
    )
    folder = "essenFolksong"
    suffixes = (".abc",)
    tune_books = True
