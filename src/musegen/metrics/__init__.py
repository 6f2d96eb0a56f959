"""Music metrics: statistics, harmony, likelihood (pure functions of scores)."""
