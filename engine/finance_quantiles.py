"""Quantiles and standard errors read from the finance histograms and counts."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Z95", "binomial_se", "histogram_value_at_rank"]

#: Normal quantile of the two-sided 95% confidence intervals.
Z95 = 1.959963984540054


def histogram_value_at_rank(counts: np.ndarray, lo: float, width: float, rank: float) -> float:
    """Value of the ``rank``-th smallest path (1-based, fractional) of a linear histogram.

    Bins are ``[lo + k width, lo + (k + 1) width)``; inside a bin the values are
    taken as evenly spread (linear interpolation of the empirical CDF).
    """
    cum = np.cumsum(counts)
    n = int(cum[-1]) if cum.size else 0
    if n == 0:
        return math.nan
    rank = min(max(rank, 0.0), float(n))
    k = int(np.searchsorted(cum, rank, side="left"))
    k = min(k, counts.size - 1)
    below = float(cum[k - 1]) if k > 0 else 0.0
    inside = float(counts[k])
    frac = (rank - below) / inside if inside > 0 else 0.0
    return lo + (k + min(max(frac, 0.0), 1.0)) * width


def binomial_se(count: np.ndarray | float, n: int | np.ndarray) -> np.ndarray:
    """Binomial standard error of the probability count / n."""
    n_arr = np.maximum(np.asarray(n, dtype=float), 1.0)
    p = np.asarray(count, dtype=float) / n_arr
    return np.sqrt(p * (1.0 - p) / n_arr)
