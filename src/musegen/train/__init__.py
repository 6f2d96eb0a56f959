"""One training loop for every model: see :mod:`musegen.train.trainer`."""
