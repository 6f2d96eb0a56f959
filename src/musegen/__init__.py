"""musegen: a toolkit for music generation.

Import the pieces you need; nothing heavy (torch, music21) is imported here::

    from musegen.score import Score, Track, Note
    from musegen.io import load, save
    from musegen.tokenizers import get_tokenizer
"""

from musegen.score import KeySignature, Note, Score, Tempo, TimeSignature, Track

__version__ = "0.1.0"
__all__ = ["KeySignature", "Note", "Score", "Tempo", "TimeSignature", "Track", "__version__"]
