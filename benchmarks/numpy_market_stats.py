"""Statistics of the plain-NumPy market model: the layout of the engine's MarketStats.

:class:`NumpyMarketStats` holds the same mergeable integer statistics as
:class:`engine.market_stats.MarketStats` (factor histograms on the engine's bins,
fixed-point sums, squeeze and curtailment counts, curtailed W by scope, site capex
and energy histograms and sums). :func:`site_costs` and :func:`curtailed_w` add
a chunk's site costs and curtailed W after its month loop
(``numpy_markets.py``); :func:`factor_table` turns the statistics into the means
and quantiles of the engine's market_by_month.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.histograms import QUANTILES, quantiles_from_log_histogram
from engine.kernels.market_records import N_SITE_SUMS, SITE_CAPEX, SITE_ENERGY
from engine.market_layout import (
    MARKET_BINS,
    S_CU_INTENSITY,
    S_FACILITY_EX_CU,
    SITE_HALF_WIDTH,
    MarketArrays,
)
from engine.market_stats import SITE_BINS

__all__ = ["NumpyMarketStats", "curtailed_w", "empty_stats", "factor_table", "site_costs"]


@dataclass
class NumpyMarketStats:
    """Integer statistics of the market model, the layout of the engine's MarketStats.

    Attributes
    ----------
    n_paths, horizon : int
        Paths added so far and months simulated (T).
    hist, sums : numpy.ndarray
        ``int64[n_out, T + 1, MARKET_BINS]`` paths by bin and ``int64[n_out, T + 1]``
        fixed-point sums of each reported factor by month.
    squeeze_months, curtail_months : numpy.ndarray
        ``int64[T + 1]`` paths in copper squeeze, ``int64[R, T + 1]`` paths with a
        curtailment event, by month.
    curtailed_w : numpy.ndarray
        ``int64[n_scopes, T + 2]`` W taken offline by curtailment, by scope and month.
    site_hist, site_sums : numpy.ndarray
        ``int64[S, 2, SITE_BINS]`` capex / energy-cost histograms and
        ``int64[S, N_SITE_SUMS]`` sums (capex $k, copper $k, energy $k, energy
        $ per month in service, paths built within the horizon).
    """

    n_paths: int
    horizon: int
    hist: np.ndarray
    sums: np.ndarray
    squeeze_months: np.ndarray
    curtail_months: np.ndarray
    curtailed_w: np.ndarray
    site_hist: np.ndarray
    site_sums: np.ndarray


def empty_stats(
    arrays: MarketArrays, layout: dict[str, np.ndarray], horizon: int, n_scopes: int
) -> NumpyMarketStats:
    """Zeroed statistics (``n_scopes``: reporting scopes, ``len(scopes.kind)``)."""
    n_out, width = arrays.center.shape[0], horizon + 1
    n_sites = layout["site_region"].shape[0]
    return NumpyMarketStats(
        n_paths=0,
        horizon=horizon,
        hist=np.zeros((n_out, width, MARKET_BINS), dtype=np.int64),
        sums=np.zeros((n_out, width), dtype=np.int64),
        squeeze_months=np.zeros(width, dtype=np.int64),
        curtail_months=np.zeros((arrays.region.shape[0], width), dtype=np.int64),
        curtailed_w=np.zeros((n_scopes, horizon + 2), dtype=np.int64),
        site_hist=np.zeros((n_sites, 2, SITE_BINS), dtype=np.int64),
        site_sums=np.zeros((n_sites, N_SITE_SUMS), dtype=np.int64),
    )


def site_costs(
    stats: NumpyMarketStats,
    a: MarketArrays,
    lay: dict[str, np.ndarray],
    months: np.ndarray,
    cum: np.ndarray,
    copper: np.ndarray,
) -> None:
    """Each site's capex (copper at its phases' months) and energy cost, over built paths."""
    horizon = stats.horizon
    sc = a.scalars
    site_scale = SITE_BINS / (2.0 * SITE_HALF_WIDTH)
    for s in range(lay["site_region"].shape[0]):
        start, end = lay["site_phase_start"][s], lay["site_phase_end"][s]
        first = months[start]
        built = np.flatnonzero(first <= horizon)
        if built.size == 0:
            continue
        r = lay["site_region"][s]
        capex = np.zeros(built.size)
        copper_cost = np.zeros(built.size)
        energy = np.zeros(built.size)
        total = cum[r, horizon, built]
        for p in range(start, end):
            m = months[p, built]
            within = m <= horizon
            m = np.minimum(m, horizon)
            mw = lay["phase_mw"][p]
            cu = copper[m, built] * (mw * sc[S_CU_INTENSITY]) * within
            capex += cu + (mw * sc[S_FACILITY_EX_CU]) * within
            copper_cost += cu
            energy += (total - cum[r, m - 1, built]) * (mw * lay["site_pue"][s]) * within
        per_month = energy / (horizon - first[built] + 1)
        for kind, value in ((SITE_CAPEX, capex), (SITE_ENERGY, per_month)):
            x = np.log(value)
            x -= lay["site_center"][s, kind]
            x *= site_scale
            x += 0.5 * SITE_BINS
            np.fmax(x, 0.0, out=x)
            np.minimum(x, SITE_BINS - 1.0, out=x)
            stats.site_hist[s, kind] += np.bincount(x.astype(np.intp), minlength=SITE_BINS)
        for k, (value, unit) in enumerate(
            ((capex, 1e3), (copper_cost, 1e3), (energy, 1e3), (per_month, 1.0))
        ):
            stats.site_sums[s, k] += (value / unit + 0.5).astype(np.int64).sum()
        stats.site_sums[s, 4] += built.size


def curtailed_w(
    stats: NumpyMarketStats,
    lay: dict[str, np.ndarray],
    months: np.ndarray,
    events: list[list[tuple[int, np.ndarray]]],
) -> None:
    """W curtailed by scope and month: each event takes a share of the phases energized."""
    width = stats.curtailed_w.shape[1]
    for r, happened in enumerate(events):
        if not happened:
            continue
        ts = np.concatenate([np.full(idx.size, t) for t, idx in happened])
        paths = np.concatenate([idx for _, idx in happened])
        start, stop = lay["region_phase_start"][r], lay["region_phase_start"][r + 1]
        for p in lay["region_phase_index"][start:stop]:
            online = months[p, paths] <= ts
            counts = np.bincount(ts[online], minlength=width)[:width]
            for scope in lay["phase_scopes"][p]:
                stats.curtailed_w[scope] += lay["phase_curtail_w"][p] * counts


def factor_table(stats: NumpyMarketStats, arrays: MarketArrays) -> dict[str, np.ndarray]:
    """Mean and quantiles of every reported factor by month, as the engine's market_by_month.

    Returns
    -------
    dict of str to numpy.ndarray
        ``mean`` and ``p5`` ... ``p95``: ``float64[n_out, T]`` (months 1..T), and the
        event probabilities ``copper_squeeze`` (``[T]``) and ``curtailment`` (``[R, T]``).
    """
    n = max(stats.n_paths, 1)
    half = MARKET_BINS / (2.0 * arrays.bin_scale[:, 1:])
    table = {"mean": stats.sums[:, 1:] * arrays.unit[:, None] / n}
    for label, q in QUANTILES.items():
        binned = quantiles_from_log_histogram(stats.hist[:, 1:], arrays.center[:, 1:], q, half)
        table[label] = arrays.value_offset[:, 1:] + arrays.value_slope[:, None] * binned
    table["copper_squeeze"] = stats.squeeze_months[1:] / n
    table["curtailment"] = stats.curtail_months[:, 1:] / n
    return table
