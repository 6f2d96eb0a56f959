"""Music metrics: pure functions of scores.

* :mod:`~musegen.metrics.stats`: statistics of one score (pitch, rhythm, texture, repetition)
  and the registry of features that sets are compared on;
* :mod:`~musegen.metrics.harmony`: chord per beat with its Roman numeral, cadences (keys,
  chords and numerals themselves: :mod:`musegen.theory`);
* :mod:`~musegen.metrics.voice_leading`: four-part voice-leading errors with bar and beat;
* :mod:`~musegen.metrics.quality`: what the musical-quality figures measure in one piece;
* :mod:`~musegen.metrics.frame_nll`: frame-level NLL of piano rolls under a frame model.

Comparing sets, scoring datasets and the report are :mod:`musegen.evaluate`'s. Importing this
package loads nothing heavy; scipy, matplotlib and torch load on use.
"""
