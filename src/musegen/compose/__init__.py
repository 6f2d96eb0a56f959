"""Algorithmic composition: Markov chains, rule-based counterpoint, a genetic algorithm,
constraint-satisfaction harmonization and Cope-style recombination.

Each method is one module with a function that returns a :class:`~musegen.score.Score`:

* :mod:`~musegen.compose.markov` — order-n chains over pitch, length and chord;
* :mod:`~musegen.compose.rules` — Fux first/second-species counterpoint by backtracking;
* :mod:`~musegen.compose.genetic` — melodies evolved over a chord progression;
* :mod:`~musegen.compose.csp` — SATB harmonization of a melody (Viterbi over voicings);
* :mod:`~musegen.compose.recombine` — new chorales from recombined Bach beats.

Modules are imported on use, so ``import musegen.compose`` stays cheap.
"""

METHODS = ("markov", "rules", "genetic", "csp", "recombine")
