"""Lowering the market model to kernel arrays.

What is lowered: parameters per month step and the copula's factor matrix;
the central paths and the bins of the reported factors are set by
engine/market_bins.py, the layout of the arrays is engine/market_layout.py.

Monthly steps use exact discretisations (docs/model.md section 7): an OU
process with rate kappa (1/yr) and volatility sigma moves by
``X_t = a X_{t-1} + b z`` with ``a = exp(-kappa / 12)`` and
``b = sigma sqrt((1 - a^2) / (2 kappa))``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import stats

from engine.correlation import check_correlation
from engine.kernels.factors import T_GRID_MAX, T_GRID_POINTS
from engine.market_bins import with_bins
from engine.market_config import FACTOR_TYPES, MarketsConfig
from engine.market_layout import (
    N_GPU_COLUMNS,
    N_REGION_COLUMNS,
    N_SCALARS,
    S_CHI0,
    S_CU_A,
    S_CU_B,
    S_CU_INTENSITY,
    S_CU_JUMP_MEAN,
    S_CU_JUMP_MU,
    S_CU_JUMP_SD,
    S_CU_RHO,
    S_D0,
    S_FACILITY_EX_CU,
    S_FIRST_MOY,
    S_GPU_REGIMES,
    S_NU,
    S_PHI,
    S_SQ_ENTER,
    S_SQ_EXIT,
    S_SQ_INITIAL,
    S_SQ_PREMIUM,
    S_XI0,
    S_XI_DRIFT,
    S_XI_SD,
    MarketArrays,
)
from engine.rng import stream_id
from engine.scenario import Book

__all__ = [
    "factor_matrix",
    "factor_matrix_names",
    "lower_markets",
    "ou_step",
    "student_t_table",
    "trace_channels",
]


def ou_step(kappa_per_year: float, sigma: float) -> tuple[float, float]:
    """Exact monthly step (a, b) of an OU process: X' = a X + b z."""
    a = math.exp(-kappa_per_year / 12.0)
    return a, sigma * math.sqrt((1.0 - a * a) / (2.0 * kappa_per_year))


@functools.lru_cache(maxsize=16)
def student_t_table(nu: float) -> np.ndarray:
    """Phi^-1(F_nu(sinh w)) on the w grid of :func:`engine.kernels.factors.t_to_normal`."""
    w = np.linspace(-T_GRID_MAX, T_GRID_MAX, T_GRID_POINTS)
    x = np.sinh(w)
    z = np.empty_like(x)
    low = x <= 0
    z[low] = stats.norm.ppf(stats.t.cdf(x[low], nu))
    z[~low] = stats.norm.isf(stats.t.sf(x[~low], nu))
    z = np.clip(z, -38.0, 38.0)
    z.flags.writeable = False
    return z


def factor_matrix(book: Book, markets: MarketsConfig) -> tuple[np.ndarray, list[str]]:
    """Correlation of the copula's factors: demand, each region, copper, each generation."""
    cop = markets.copula
    types = ["demand"] + ["electricity"] * len(book.regions) + ["copper"]
    types += ["gpu_rent"] * len(book.gpu_generations)
    names = factor_matrix_names(book)
    base = np.array(cop.correlation, dtype=float)
    within = {
        "electricity": cop.electricity_between_regions,
        "gpu_rent": cop.gpu_rent_between_generations,
    }
    n = len(types)
    matrix = np.eye(n)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            if types[i] == types[j]:
                matrix[i, j] = within[types[i]]
            else:
                matrix[i, j] = base[FACTOR_TYPES.index(types[i]), FACTOR_TYPES.index(types[j])]
    return matrix, names


def _square_root(matrix: np.ndarray) -> np.ndarray:
    """Lower-triangular L with L L' = C (Cholesky; a PSD singular C by pivot-free LDL')."""
    try:
        return np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        n = matrix.shape[0]
        low = np.zeros_like(matrix)
        for j in range(n):
            d = matrix[j, j] - low[j, :j] @ low[j, :j]
            low[j, j] = math.sqrt(max(d, 0.0))
            for i in range(j + 1, n):
                r = matrix[i, j] - low[i, :j] @ low[j, :j]
                low[i, j] = r / low[j, j] if low[j, j] > 1e-12 else 0.0
        return low


def _fire_sale_keep(fire, horizon: int) -> np.ndarray:
    keep = np.ones(horizon + 1)
    decay = 2.0 ** (-1.0 / fire.half_life_months)
    dumped = dict.fromkeys(range(horizon + 1), 0.0)
    for month, units in fire.dumped_units:
        if month <= horizon:
            dumped[month] += units
    impact = 0.0
    for t in range(1, horizon + 1):
        impact = impact * decay + fire.impact_lambda * dumped[t] / fire.installed_base_units
        keep[t] = max(0.0, 1.0 - impact)
    return keep


def lower_markets(book: Book, markets: MarketsConfig, horizon: int) -> MarketArrays:
    """Lower the book's market blocks and the market config to kernel arrays.

    Parameters
    ----------
    book : Book
        A validated book.
    markets : MarketsConfig
        Validated market parameters.
    horizon : int
        T, months simulated.

    Returns
    -------
    MarketArrays
        Arrays in region and generation order of the book.

    Raises
    ------
    InputError
        If the factor correlation assembled from the config is not positive
        semi-definite (the within-type correlations conflict with the matrix).
    """
    matrix, factor_names = factor_matrix(book, markets)
    check_correlation(
        matrix,
        factor_names,
        "markets.copula (correlation with electricity_between_regions and "
        "gpu_rent_between_generations)",
        "conf/markets",
    )
    years = (horizon + 11) // 12
    regions = np.zeros((len(book.regions), N_REGION_COLUMNS))
    season = np.zeros((len(book.regions), 12))
    ppa = np.zeros((len(book.regions), max(years, 1)))
    for k, reg in enumerate(book.regions):
        e = reg.electricity
        a, b = ou_step(e.kappa_per_year, e.sigma)
        regions[k] = (
            math.log(e.price_usd_per_mwh),
            a,
            b,
            e.spike_rate_per_year / 12.0,
            e.spike_mean_log,
            e.spike_sd_log,
            2.0 ** (-1.0 / e.spike_half_life_months),
            e.adder_usd_per_mwh,
            e.ppa_share,
            e.capacity_charge_usd_per_mw_day,
            e.capacity_charge_drift,
            e.capacity_charge_sigma,
            e.curtailment_probability,
            e.curtailment_share,
        )
        season[k] = e.seasonality
        ppa[k] = e.ppa_price_usd_per_mwh * (1.0 + e.ppa_escalator_per_year) ** np.arange(
            ppa.shape[1]
        )
    gpus = np.zeros((len(book.gpu_generations), N_GPU_COLUMNS))
    keep = np.ones((len(book.gpu_generations), horizon + 1))
    for k, gen in enumerate(book.gpu_generations):
        m = gen.market
        a, b = ou_step(m.kappa_per_year, m.sigma)
        gpus[k] = (
            math.log(m.rent_usd_per_gpu_hour),
            m.rent_drift_per_year / 12.0,
            a,
            b,
            m.demand_loading,
            math.log(m.new_price_usd),
            m.age_at_start_years,
            math.log1p(-m.residual_decay_per_year),
            m.resale_rent_elasticity,
            m.successor_launch_min,
            m.successor_launch_max,
            math.log1p(-m.successor_step_down) if m.successor_step_down < 1.0 else -math.inf,
        )
        keep[k] = _fire_sale_keep(m.fire_sale, horizon)
    cu = markets.copper
    cu_a, cu_b = ou_step(cu.short_kappa_per_year, cu.short_sigma)
    # exact joint step of (chi, xi): corr of the xi shock with the chi shock per month
    dt = 1.0 / 12.0
    cross = cu.short_sigma * cu.long_sigma * cu.short_long_correlation
    cross *= (1.0 - cu_a) / cu.short_kappa_per_year
    xi_sd = cu.long_sigma * math.sqrt(dt)
    cu_rho = cross / (cu_b * xi_sd) if cu_b > 0 and xi_sd > 0 else 0.0
    sq = cu.squeeze
    regimes = markets.gpu.regimes
    scalars = np.zeros(N_SCALARS)
    scalars[S_PHI] = markets.demand.persistence
    scalars[S_D0] = markets.demand.initial
    scalars[S_NU] = markets.copula.nu
    scalars[S_CHI0] = cu.short_term_start
    scalars[S_XI0] = math.log(cu.spot_usd_per_t) - cu.short_term_start
    scalars[S_CU_A], scalars[S_CU_B] = cu_a, cu_b
    scalars[S_XI_DRIFT] = cu.long_drift_per_year * dt
    scalars[S_XI_SD] = xi_sd
    scalars[S_CU_RHO] = cu_rho
    scalars[S_CU_JUMP_MEAN] = cu.jump_rate_per_year * dt
    scalars[S_CU_JUMP_MU] = cu.jump_mean_log
    scalars[S_CU_JUMP_SD] = cu.jump_sd_log
    scalars[S_SQ_INITIAL] = ("normal", "squeeze", "stationary").index(sq.initial)
    scalars[S_SQ_ENTER], scalars[S_SQ_EXIT] = sq.enter_probability, sq.exit_probability
    scalars[S_SQ_PREMIUM] = sq.log_premium
    scalars[S_FIRST_MOY] = markets.first_calendar_month - 1
    scalars[S_FACILITY_EX_CU] = (
        cu.facility_capex_usd_per_mw - cu.intensity_t_per_mw * cu.reference_price_usd_per_t
    )
    scalars[S_CU_INTENSITY] = cu.intensity_t_per_mw
    scalars[S_GPU_REGIMES] = float(regimes.enabled and markets.gpu.enabled)
    switches = np.array(
        [
            markets.demand.enabled,
            markets.electricity.enabled,
            cu.enabled,
            markets.gpu.enabled,
            markets.copula.family == "student_t",
        ],
        dtype=np.bool_,
    )
    streams = [stream_id("market", "copula"), stream_id("market", "copper")]
    streams += [stream_id("market", "copper_squeeze"), stream_id("market", "gpu_regime")]
    streams += [stream_id("market", "electricity", r.id) for r in book.regions]
    streams += [stream_id("market", "gpu", g.id) for g in book.gpu_generations]
    # each factor's independent shock has its own stream (common random numbers when
    # a factor is added: only the correlated scores of factors after it change)
    streams += [stream_id("market", "shock", name) for name in factor_names]
    arrays = MarketArrays(
        switches=switches,
        scalars=scalars,
        copula_factor=np.ascontiguousarray(_square_root(matrix)),
        t_table=student_t_table(markets.copula.nu),
        region=regions,
        season=season,
        ppa_price=ppa,
        gpu=gpus,
        fire_sale_keep=keep,
        regime_transition=np.array(regimes.transition, dtype=float),
        regime_offset=np.array(regimes.log_offsets, dtype=float),
        streams=np.array(streams, dtype=np.uint64),
        center=np.zeros((0, horizon + 1)),
        bin_scale=np.zeros((0, horizon + 1)),
        unit=np.zeros(0),
        report=np.zeros(0, dtype=np.int64),
        value_offset=np.zeros((0, horizon + 1)),
        value_slope=np.zeros(0),
        names=(),
        units=(),
    )
    return with_bins(arrays, book, horizon)


def trace_channels(book: Book) -> list[str]:
    """Names of the per-path channels the market kernel can trace (tests, diagnostics).

    Channels: demand D_t; copper squeeze state; GPU market regime; copper jumps in
    the month; ln copper price; each copula normal score z; per region ln all-in
    price, ln energy price, capacity charge, curtailment event, spikes in the
    month; per generation ln rent and ln resale value.
    """
    names = ["demand", "copper_squeeze", "gpu_regime", "copper_jumps", "copper_log_price"]
    names += [f"z:{n}" for n in factor_matrix_names(book)]
    for r in book.regions:
        names += [
            f"{r.id}:log_all_in",
            f"{r.id}:log_energy",
            f"{r.id}:capacity_charge",
            f"{r.id}:curtailed",
            f"{r.id}:spikes",
        ]
    for g in book.gpu_generations:
        names += [f"{g.id}:log_rent", f"{g.id}:log_resale"]
    return names


def factor_matrix_names(book: Book) -> list[str]:
    """Names of the copula's factors, in matrix order."""
    names = ["demand"] + [f"electricity:{r.id}" for r in book.regions] + ["copper"]
    return names + [f"gpu_rent:{g.id}" for g in book.gpu_generations]
