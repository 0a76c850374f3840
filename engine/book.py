"""Lowering a validated book to the flat arrays the kernels read.

Entities become indices, references become integer arrays, variable-length lists
become CSR offsets, and each random source gets its stable stream id. Nothing
here draws a random number; everything here is exact and cheap.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from engine.config import CapacityConfig
from engine.market_config import MarketsConfig
from engine.rng import stream_id
from engine.scenario import Book, Duration

__all__ = [
    "DIST_FIXED",
    "DIST_LOGNORMAL",
    "DIST_PERT",
    "FACTOR_KINDS",
    "PERT_GRID_POINTS",
    "PERT_Z_MAX",
    "CapacityArrays",
    "lower_capacity",
    "pert_quantile_table",
]

DIST_FIXED, DIST_PERT, DIST_LOGNORMAL = 0, 1, 2
#: Copula factor kinds, in draw order: overrun multiplier, then schedule item kinds.
FACTOR_KINDS: tuple[str, ...] = ("overrun", "construction", "equipment", "interconnection")
#: PERT quantiles are tabulated against the copula's normal z on [-Z_MAX, Z_MAX].
PERT_Z_MAX = 8.0
PERT_GRID_POINTS = 4097


@functools.lru_cache(maxsize=256)
def pert_quantile_table(lo: float, mode: float, hi: float) -> np.ndarray:
    """Quantiles of PERT(lo, mode, hi) at the normal scores of the z grid.

    PERT(a, m, b) is a Beta(alpha, beta) on [a, b] with alpha = 1 + 4 (m - a)/(b - a)
    and beta = 1 + 4 (b - m)/(b - a). Tabulating x(z) = F^-1(Phi(z)) lets the
    kernel turn a copula normal into a duration by linear interpolation.

    Parameters
    ----------
    lo, mode, hi : float
        Minimum, mode and maximum in months, lo < hi.

    Returns
    -------
    numpy.ndarray
        ``float64[PERT_GRID_POINTS]`` durations in months.
    """
    alpha = 1.0 + 4.0 * (mode - lo) / (hi - lo)
    beta = 1.0 + 4.0 * (hi - mode) / (hi - lo)
    z = np.linspace(-PERT_Z_MAX, PERT_Z_MAX, PERT_GRID_POINTS)
    dist = stats.beta(alpha, beta)
    lower = z <= 0
    unit = np.empty_like(z)
    # each tail from its own side: ppf(cdf) below the median, isf(sf) above it
    unit[lower] = dist.ppf(stats.norm.cdf(z[lower]))
    unit[~lower] = dist.isf(stats.norm.sf(z[~lower]))
    table = lo + (hi - lo) * np.clip(unit, 0.0, 1.0)
    table.flags.writeable = False
    return table


@dataclass(frozen=True)
class CapacityArrays:
    """Kernel inputs of the capacity-delivery model (struct of arrays).

    Attributes
    ----------
    site_operator, site_campus : numpy.ndarray
        ``int64[S]`` operator and campus index of each site.
    site_stream : numpy.ndarray
        ``uint64[S]`` stream id of each site's own draws.
    site_withdrawal : numpy.ndarray
        ``float64[S]`` probability that grid power never comes.
    site_item_start, site_item_end : numpy.ndarray
        ``int64[S]`` item range gating every phase of the site.
    site_phase_start, site_phase_end : numpy.ndarray
        ``int64[S]`` phase range of the site (phases in energization order).
    phase_item_start, phase_item_end : numpy.ndarray
        ``int64[P]`` item range gating only that phase.
    item_kind, item_dist, item_table : numpy.ndarray
        ``int64[K]`` factor kind (index into FACTOR_KINDS), distribution code,
        PERT table row (or -1).
    item_p1, item_p2 : numpy.ndarray
        ``float64[K]``: fixed months; lognormal ln(median months) and sigma_ln.
    pert_tables : numpy.ndarray
        ``float64[n_tables, PERT_GRID_POINTS]`` PERT quantiles in months.
    operator_stream, campus_stream : numpy.ndarray
        ``uint64`` stream ids of the copula factors of each operator and campus.
    weight_operator, weight_campus, weight_own : float
        Loadings of a site draw on its operator factor, campus factor and own noise.
    overrun_ln_median, overrun_sigma_ln : float
        Parameters of the lognormal overrun multiplier.
    squeeze : numpy.ndarray
        ``float64[4]`` copper squeeze regime: initial state (0 normal, 1 squeeze,
        2 stationary), P(enter), P(exit) per month, equipment slow-down factor
        (1 = no effect).
    squeeze_stream : numpy.uint64
        Stream id of the squeeze regime (shared with the market model).
    """

    site_operator: np.ndarray
    site_campus: np.ndarray
    site_stream: np.ndarray
    site_withdrawal: np.ndarray
    site_item_start: np.ndarray
    site_item_end: np.ndarray
    site_phase_start: np.ndarray
    site_phase_end: np.ndarray
    phase_item_start: np.ndarray
    phase_item_end: np.ndarray
    item_kind: np.ndarray
    item_dist: np.ndarray
    item_table: np.ndarray
    item_p1: np.ndarray
    item_p2: np.ndarray
    pert_tables: np.ndarray
    operator_stream: np.ndarray
    campus_stream: np.ndarray
    weight_operator: float
    weight_campus: float
    weight_own: float
    overrun_ln_median: float
    overrun_sigma_ln: float
    squeeze: np.ndarray
    squeeze_stream: np.uint64

    @property
    def n_phases(self) -> int:
        """Number of phases over all sites."""
        return int(self.phase_item_start.shape[0])


def _encode(
    duration: Duration, tables: list[np.ndarray], cache: dict[Duration, int]
) -> tuple[int, int, float, float]:
    if duration.dist == "fixed":
        return DIST_FIXED, -1, duration.a, 0.0
    if duration.dist == "lognormal":
        return DIST_LOGNORMAL, -1, math.log(duration.a), duration.b
    if duration not in cache:
        cache[duration] = len(tables)
        tables.append(pert_quantile_table(duration.a, duration.b, duration.c))
    return DIST_PERT, cache[duration], 0.0, 0.0


def lower_capacity(
    book: Book, capacity: CapacityConfig, markets: MarketsConfig | None = None
) -> CapacityArrays:
    """Lower a book and the capacity parameters to kernel arrays.

    Parameters
    ----------
    book : Book
        A validated book.
    capacity : CapacityConfig
        Model parameters.
    markets : MarketsConfig, optional
        Market parameters: the copper squeeze stretches equipment lead times
        (default: no squeeze effect).

    Returns
    -------
    CapacityArrays
        Arrays in site, phase and item order of the book.
    """
    operators = {op.id: i for i, op in enumerate(book.operators)}
    campuses: dict[str, int] = {}
    for site in book.sites:
        campuses.setdefault(site.campus, len(campuses))

    items: list[tuple[int, int, int, float, float]] = []
    tables: list[np.ndarray] = []
    cache: dict[Duration, int] = {}
    site_rows: list[tuple[int, int, int, int, int, int]] = []
    phase_rows: list[tuple[int, int]] = []
    for site in book.sites:
        item0 = len(items)
        for item in site.schedule:
            items.append((FACTOR_KINDS.index(item.kind), *_encode(item.duration, tables, cache)))
        item1 = len(items)
        phase0 = len(phase_rows)
        for phase in site.phases:
            start = len(items)
            for item in phase.schedule:
                code = _encode(item.duration, tables, cache)
                items.append((FACTOR_KINDS.index(item.kind), *code))
            phase_rows.append((start, len(items)))
        site_rows.append(
            (operators[site.operator], campuses[site.campus], item0, item1, phase0, len(phase_rows))
        )

    rows = np.array(site_rows, dtype=np.int64).reshape(-1, 6)
    phases = np.array(phase_rows, dtype=np.int64).reshape(-1, 2)
    kinds = np.array([it[0] for it in items], dtype=np.int64)
    rho_op = capacity.delay_correlation.operator
    rho_campus = capacity.delay_correlation.campus
    table = np.stack(tables) if tables else np.zeros((1, PERT_GRID_POINTS))
    return CapacityArrays(
        site_operator=rows[:, 0].copy(),
        site_campus=rows[:, 1].copy(),
        site_stream=np.array([stream_id("site", s.id) for s in book.sites], dtype=np.uint64),
        site_withdrawal=np.array([s.withdrawal_probability for s in book.sites], dtype=np.float64),
        site_item_start=rows[:, 2].copy(),
        site_item_end=rows[:, 3].copy(),
        site_phase_start=rows[:, 4].copy(),
        site_phase_end=rows[:, 5].copy(),
        phase_item_start=phases[:, 0].copy(),
        phase_item_end=phases[:, 1].copy(),
        item_kind=kinds,
        item_dist=np.array([it[1] for it in items], dtype=np.int64),
        item_table=np.array([it[2] for it in items], dtype=np.int64),
        item_p1=np.array([it[3] for it in items], dtype=np.float64),
        item_p2=np.array([it[4] for it in items], dtype=np.float64),
        pert_tables=np.ascontiguousarray(table, dtype=np.float64),
        operator_stream=np.array(
            [stream_id("capacity_factor", "operator", op.id) for op in book.operators],
            dtype=np.uint64,
        ),
        campus_stream=np.array(
            [stream_id("capacity_factor", "campus", c) for c in campuses], dtype=np.uint64
        ),
        weight_operator=math.sqrt(rho_op),
        weight_campus=math.sqrt(rho_campus - rho_op),
        weight_own=math.sqrt(1.0 - rho_campus),
        overrun_ln_median=math.log(capacity.overrun.median),
        overrun_sigma_ln=capacity.overrun.sigma_ln,
        squeeze=_squeeze(markets),
        squeeze_stream=np.uint64(stream_id("market", "copper_squeeze")),
    )


def _squeeze(markets: MarketsConfig | None) -> np.ndarray:
    """Return [initial, P(enter), P(exit), slow-down] of the squeeze (1 = no effect)."""
    if markets is None or not markets.copper.enabled:
        return np.array([0.0, 0.0, 0.0, 1.0])
    sq = markets.copper.squeeze
    initial = ("normal", "squeeze", "stationary").index(sq.initial)
    return np.array([initial, sq.enter_probability, sq.exit_probability, sq.equipment_lead_factor])
