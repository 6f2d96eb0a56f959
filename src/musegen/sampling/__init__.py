"""Sampling from trained models: logit filters and the autoregressive generator."""
