"""Quantiles and standard errors read from the integer histograms and counts of a run.

Linear histograms (the finance's fans, minimum DSCR and losses; contract revenue
and concentration on [0, top]): the value at a rank or a quantile, interpolated
inside its bin. Log-value histograms (the market factors, binned in ln(value)
around a central path): a quantile, interpolated linearly in ln value inside its
bin, and the standard error of the mean from the bins' mid-points. Binomial
standard errors of probabilities.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "QUANTILES",
    "Z95",
    "binomial_se",
    "histogram_value_at_rank",
    "histogram_values_at_ranks",
    "mean_se_from_log_histogram",
    "quantiles_from_linear_histogram",
    "quantiles_from_log_histogram",
]

#: The quantiles of the market, demand and finance tables, by column name.
QUANTILES = {"p5": 0.05, "p10": 0.10, "p50": 0.50, "p90": 0.90, "p95": 0.95}

#: Normal quantile of the two-sided 95% confidence intervals.
Z95 = 1.959963984540054


def histogram_values_at_ranks(
    counts: np.ndarray,
    lo: np.ndarray | float,
    width: np.ndarray | float,
    rank: np.ndarray | float,
) -> np.ndarray:
    """Value of the ``rank``-th smallest path (1-based, fractional) of linear histograms.

    Bins are ``[lo + k width, lo + (k + 1) width)``; inside a bin the values are
    taken as evenly spread (linear interpolation of the empirical CDF).

    Parameters
    ----------
    counts : numpy.ndarray
        ``int64[..., B]`` values per bin.
    lo, width : numpy.ndarray or float
        Lower end of the first bin and bin width (broadcast against ``counts[..., 0]``).
    rank : numpy.ndarray or float
        Rank, clipped to ``[0, n]`` (broadcast like ``lo``).

    Returns
    -------
    numpy.ndarray
        The values (nan where there are no values).
    """
    n_bins = counts.shape[-1]
    cum = np.cumsum(counts, axis=-1)
    n = cum[..., -1]
    rank = np.clip(np.asarray(rank, dtype=float), 0.0, n)
    k = np.minimum((cum < rank[..., None]).sum(axis=-1), n_bins - 1)
    below = np.where(k > 0, np.take_along_axis(cum, np.maximum(k - 1, 0)[..., None], -1)[..., 0], 0)
    inside = np.take_along_axis(counts, k[..., None], -1)[..., 0]
    frac = np.where(inside > 0, (rank - below) / np.maximum(inside, 1), 0.0)
    return np.where(n > 0, lo + (k + np.clip(frac, 0.0, 1.0)) * width, np.nan)


def histogram_value_at_rank(counts: np.ndarray, lo: float, width: float, rank: float) -> float:
    """One histogram's value at a rank (:func:`histogram_values_at_ranks`), as a float."""
    return float(histogram_values_at_ranks(counts, lo, width, rank))


def quantiles_from_linear_histogram(counts: np.ndarray, top: np.ndarray, q: float) -> np.ndarray:
    """Quantile q of values binned linearly on [0, top], interpolated inside the bin.

    Parameters
    ----------
    counts : numpy.ndarray
        ``int64[..., B]`` values per bin.
    top : numpy.ndarray
        Upper end of the range (broadcast against ``counts[..., 0]``).
    q : float
        Probability in (0, 1).

    Returns
    -------
    numpy.ndarray
        The quantiles (nan where there are no values): the value at rank ``q n``.
    """
    width = np.asarray(top, dtype=float) / counts.shape[-1]
    return histogram_values_at_ranks(counts, 0.0, width, q * counts.sum(axis=-1))


def binomial_se(count: np.ndarray | float, n: int | np.ndarray) -> np.ndarray:
    """Binomial standard error of the probability count / n."""
    n_arr = np.maximum(np.asarray(n, dtype=float), 1.0)
    p = np.asarray(count, dtype=float) / n_arr
    return np.sqrt(p * (1.0 - p) / n_arr)


def quantiles_from_log_histogram(
    counts: np.ndarray, center: np.ndarray, q: float, half_width: np.ndarray | float
) -> np.ndarray:
    """Quantile q of values binned in ln(value) - center, interpolated inside the bin.

    Parameters
    ----------
    counts : numpy.ndarray
        ``int64[..., B]`` paths per bin.
    center : numpy.ndarray
        ``float64[...]`` ln value at the middle of the bin range.
    q : float
        Probability in (0, 1).
    half_width : numpy.ndarray or float
        Half-width of the bin range in ln value (broadcast like ``center``).

    Returns
    -------
    numpy.ndarray
        ``float64[...]`` the quantile (nan where there are no paths).
    """
    n_bins = counts.shape[-1]
    width = 2.0 * half_width / n_bins
    cum = np.cumsum(counts, axis=-1)
    total = cum[..., -1]
    target = q * total
    k = np.argmax(cum >= target[..., None], axis=-1)
    before = np.take_along_axis(cum, k[..., None], axis=-1)[..., 0]
    inside = np.take_along_axis(counts, k[..., None], axis=-1)[..., 0]
    before = before - inside
    frac = np.where(inside > 0, (target - before) / np.maximum(inside, 1), 0.0)
    log_value = center - half_width + (k + frac) * width
    return np.where(total > 0, np.exp(log_value), np.nan)


def mean_se_from_log_histogram(
    counts: np.ndarray, center: np.ndarray, half_width: np.ndarray | float
) -> np.ndarray:
    """Return the standard error of the mean, sqrt(var / N), var from the bin mid-points.

    Parameters
    ----------
    counts : numpy.ndarray
        ``int64[..., B]`` paths per bin of ln(value) - center.
    center : numpy.ndarray
        ``float64[...]`` ln value at the middle of the bin range.
    half_width : numpy.ndarray or float
        Half-width of the bin range in ln value.

    Returns
    -------
    numpy.ndarray
        ``float64[...]`` (nan where there are no paths).
    """
    n_bins = counts.shape[-1]
    half = np.asarray(half_width, dtype=float)[..., None]
    offsets = (np.arange(n_bins) + 0.5) / n_bins * 2.0 - 1.0
    values = np.exp(np.asarray(center, dtype=float)[..., None] + offsets * half)
    n = counts.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (counts * values).sum(axis=-1) / n
        var = (counts * (values - mean[..., None]) ** 2).sum(axis=-1) / np.maximum(n - 1, 1)
        return np.where(n > 0, np.sqrt(var / n), np.nan)
