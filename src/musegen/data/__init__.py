"""Datasets: corpus sources, prepared token datasets, training access."""
