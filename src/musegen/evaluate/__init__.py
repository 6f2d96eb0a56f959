"""Evaluation: sets of pieces against each other, models against data, and the report.

Unlike :mod:`musegen.metrics` (pure functions of one score), this package reads data and
models:

* :mod:`~musegen.evaluate.sets`: sets of pieces named by references (files, folders,
  prepared datasets, ``source:``, ``corpus:``; :mod:`musegen.data.refs`);
* :mod:`~musegen.evaluate.compare`: a generated set against a reference set, feature by
  feature (Yang & Lerch 2018: intra/inter-set distances, KDE, overlapping area, KL divergence);
* :mod:`~musegen.evaluate.c2st`: the classifier two-sample test;
* :mod:`~musegen.evaluate.quality`: the musical-quality figures, with real music against
  itself as the ceiling;
* :mod:`~musegen.evaluate.likelihood`: NLL per token / per note of a prepared split under a
  model;
* :mod:`~musegen.evaluate.report`: the HTML + JSON evaluation report.

Importing this package loads nothing heavy; scipy, matplotlib and torch load on use.
"""
