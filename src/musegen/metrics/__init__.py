"""Music metrics: pure functions of scores, and reports built from them.

* :mod:`~musegen.metrics.stats`: statistics of one score (pitch, rhythm, texture, repetition)
  and the registry of features for set comparison;
* :mod:`~musegen.metrics.compare`: a generated set against a reference set (Yang & Lerch 2018:
  intra/inter-set distances, KDE, overlapping area, KL divergence);
* :mod:`~musegen.metrics.harmony`: chord per beat with its Roman numeral, cadences (keys,
  chords and numerals themselves: :mod:`musegen.theory`);
* :mod:`~musegen.metrics.voice_leading`: four-part voice-leading errors with bar and beat;
* :mod:`~musegen.metrics.likelihood`: NLL per token / per note of a prepared split;
* :mod:`~musegen.metrics.sets`: sets of pieces from folders, datasets, sources;
* :mod:`~musegen.metrics.report`: the HTML + JSON evaluation report.

Importing this package loads nothing heavy; scipy, matplotlib and torch load on use.
"""
