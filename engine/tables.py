"""From merged integer statistics to the Polars tables analysts read.

Quantiles use one definition everywhere: the inverted empirical CDF (Hyndman &
Fan type 1, NumPy ``method="inverted_cdf"``): the smallest value v with
F(v) >= q. Every probability carries its binomial standard error
sqrt(p (1 - p) / N); quantiles of energization months carry a 95% confidence
interval from order statistics (ranks N q -/+ 1.96 sqrt(N q (1 - q))).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from engine.scenario import Book
from engine.scopes import MEASURE_SCALE, Scopes
from engine.simulate import CapacityStats

__all__ = [
    "CAPACITY_QUANTILES",
    "ENERGIZATION_QUANTILES",
    "capacity_by_month",
    "first_reaching",
    "site_energization",
]

#: Quantiles of capacity online, in per mille (exact integer thresholds).
CAPACITY_QUANTILES: tuple[int, ...] = (50, 100, 500, 900, 950)
#: Quantiles of energization months, in per mille.
ENERGIZATION_QUANTILES: tuple[int, ...] = (500, 800, 900)
_Z95 = 1.959963984540054
SCOPE_TYPES = pl.Enum(["total", "operator", "site"])
_MEASURES = (("mw_online", "MW"), ("gpus_online", "GPUs"), ("h100e_online", "H100-equivalents"))


def first_reaching(cumulative: np.ndarray, rank: np.ndarray | int) -> np.ndarray:
    """Index of the first row where a cumulative count reaches ``rank``.

    Parameters
    ----------
    cumulative : numpy.ndarray
        Non-decreasing counts along axis 0 (``[n_values, ...]``).
    rank : numpy.ndarray or int
        1-based rank(s) of the order statistic, broadcast over the other axes.

    Returns
    -------
    numpy.ndarray
        Row index per column (the inverted-CDF quantile's position).
    """
    return np.argmax(cumulative >= rank, axis=0)


def _rank(n: int, per_mille: int) -> int:
    """Rank of the inverted-CDF quantile: ceil(N q), computed exactly."""
    return max(1, (per_mille * n + 999) // 1000)


def _ci_ranks(n: int, per_mille: int) -> tuple[int, int]:
    q = per_mille / 1000.0
    half = _Z95 * math.sqrt(n * q * (1.0 - q))
    return max(1, math.floor(n * q - half)), min(n, math.ceil(n * q + half))


def _prob_se(p: np.ndarray, n: int) -> np.ndarray:
    return np.sqrt(p * (1.0 - p) / n)


def capacity_by_month(
    stats: CapacityStats, scopes: Scopes, gpu_availability: float
) -> pl.DataFrame:
    """Capacity online by month and scope: mean, its standard error, and quantiles.

    Parameters
    ----------
    stats : CapacityStats
        Finished statistics of a run.
    scopes : Scopes
        The scopes the statistics refer to.
    gpu_availability : float
        Share of installed GPUs in service (failure haircut); scales GPUs and H100e.

    Returns
    -------
    polars.DataFrame
        One row per (scope, month), ordered total, operators, sites (book order), month.
    """
    n, horizon = stats.n_paths, stats.horizon
    months = np.arange(1, horizon + 1)
    frames = []
    for s in range(len(scopes.kind)):
        columns: dict[str, pl.Series | np.ndarray] = {}
        for m, (label, _unit) in enumerate(_MEASURES):
            scale = 1.0 / MEASURE_SCALE[m] * (1.0 if m == 0 else gpu_availability)
            width = int(scopes.bin_width[s, m])
            first = int(scopes.bin_offset[s, m])
            last = first + int(scopes.bin_count[s, m])
            counts = stats.value_counts[first:last, 1 : horizon + 1]
            values = np.arange(last - first, dtype=np.float64) * width * scale
            mean = stats.value_sums[s, m, 1 : horizon + 1] / n * scale
            second = (counts * (values**2)[:, None]).sum(axis=0) / n
            hist_mean = (counts * values[:, None]).sum(axis=0) / n
            columns[f"{label}_mean"] = mean
            columns[f"{label}_mean_se"] = np.sqrt(np.maximum(second - hist_mean**2, 0.0) / n)
            cumulative = np.cumsum(counts, axis=0)
            for q in CAPACITY_QUANTILES:
                columns[f"{label}_p{q // 10}"] = values[first_reaching(cumulative, _rank(n, q))]
        frame = pl.DataFrame(
            {
                "scope_type": pl.Series([scopes.kind[s]] * horizon, dtype=SCOPE_TYPES),
                "scope": [scopes.name[s]] * horizon,
                "operator": pl.Series([scopes.operator[s] or None] * horizon, dtype=pl.String),
                "month": pl.Series(months, dtype=pl.Int32),
                **{k: pl.Series(v, dtype=pl.Float64) for k, v in columns.items()},
            }
        )
        frames.append(frame)
    return pl.concat(frames)


def site_energization(stats: CapacityStats, book: Book) -> pl.DataFrame:
    """Energization of each site phase: timing quantiles, on-time and failure odds.

    Parameters
    ----------
    stats : CapacityStats
        Finished statistics of a run.
    book : Book
        The book (phase order = site order, then phases in order).

    Returns
    -------
    polars.DataFrame
        One row per site phase, in book order.
    """
    n, horizon = stats.n_paths, stats.horizon
    rows: dict[str, list] = {
        k: []
        for k in (
            "site",
            "phase",
            "operator",
            "region",
            "campus",
            "gpu_generation",
            "it_mw",
            "gpus",
            "planned_month",
        )
    }
    planned = []
    for site in book.sites:
        for number, phase in enumerate(site.phases, start=1):
            for key, value in (
                ("site", site.id),
                ("phase", number),
                ("operator", site.operator),
                ("region", site.region),
                ("campus", site.campus),
                ("gpu_generation", site.gpu_generation),
                ("it_mw", phase.it_mw),
                ("gpus", phase.gpus),
                ("planned_month", phase.planned_month),
            ):
                rows[key].append(value)
            planned.append(phase.planned_month)
    counts = stats.phase_months  # [P, T + 2]
    cumulative = np.cumsum(counts, axis=1).T  # [T + 2, P]
    planned_arr = np.array(planned, dtype=np.int64)
    month_index = np.arange(horizon + 2)
    on_time = np.array(
        [cumulative[min(p, horizon), j] for j, p in enumerate(planned_arr)], dtype=np.int64
    )
    energized = cumulative[horizon]
    late = np.maximum(month_index[None, : horizon + 1] - planned_arr[:, None], 0)
    delay_sum = (counts[:, : horizon + 1] * late).sum(axis=1)
    p_on_time = on_time / n
    beyond = planned_arr > horizon
    p_never = (n - energized) / n
    p_withdrawn = stats.withdrawn / n
    out: dict[str, pl.Series] = {
        "site": pl.Series(rows["site"], dtype=pl.String),
        "phase": pl.Series(rows["phase"], dtype=pl.Int32),
        "operator": pl.Series(rows["operator"], dtype=pl.String),
        "region": pl.Series(rows["region"], dtype=pl.String),
        "campus": pl.Series(rows["campus"], dtype=pl.String),
        "gpu_generation": pl.Series(rows["gpu_generation"], dtype=pl.String),
        "it_mw": pl.Series(rows["it_mw"], dtype=pl.Float64),
        "gpus": pl.Series(rows["gpus"], dtype=pl.Int64),
        "planned_month": pl.Series(rows["planned_month"], dtype=pl.Int32),
        # on time cannot be judged when the plan lies beyond the simulated horizon
        "prob_on_time": pl.Series(np.where(beyond, np.nan, p_on_time), dtype=pl.Float64),
        "prob_on_time_se": pl.Series(
            np.where(beyond, np.nan, _prob_se(p_on_time, n)), dtype=pl.Float64
        ),
    }

    def month_or_null(index: np.ndarray) -> pl.Series:
        return pl.Series([int(i) if i <= horizon else None for i in index], dtype=pl.Int32)

    for q in ENERGIZATION_QUANTILES:
        label = f"p{q // 10}_energization_month"
        out[label] = month_or_null(first_reaching(cumulative, _rank(n, q)))
        low, high = _ci_ranks(n, q)
        out[f"{label}_ci95_low"] = month_or_null(first_reaching(cumulative, low))
        out[f"{label}_ci95_high"] = month_or_null(first_reaching(cumulative, high))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_delay = np.where(energized > 0, delay_sum / np.maximum(energized, 1), np.nan)
    out["mean_delay_months"] = pl.Series(mean_delay, dtype=pl.Float64)
    out["prob_not_energized"] = pl.Series(p_never, dtype=pl.Float64)
    out["prob_not_energized_se"] = pl.Series(_prob_se(p_never, n), dtype=pl.Float64)
    out["prob_grid_withdrawn"] = pl.Series(p_withdrawn, dtype=pl.Float64)
    out["prob_grid_withdrawn_se"] = pl.Series(_prob_se(p_withdrawn, n), dtype=pl.Float64)
    return pl.DataFrame(out).with_columns(
        pl.col("mean_delay_months", "prob_on_time", "prob_on_time_se").fill_nan(None)
    )
