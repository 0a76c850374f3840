"""The market model in plain vectorised NumPy: the baseline of ``markets.py``.

Same model as :mod:`engine.kernels.market_block` (copula shocks, AI-demand AR(1),
electricity OU + compound-Poisson spikes + yearly capacity charge + curtailment
events, Schwartz-Smith copper with jumps and the squeeze regime, GPU rents and
resale values with the successor step-down, optional GPU regimes and Student-t
copula) and the same mergeable integer statistics (factor histograms on the
engine's bins, fixed-point sums, squeeze and curtailment counts, curtailed W by
scope, site capex and energy histograms and sums), written the way one would
write it without numba: the loops run over months and over the book's regions
and generations (a few iterations each), every operation runs on arrays of all
the paths of a chunk at once, and chunks bound memory.

Inputs are the engine's lowered :class:`engine.market_layout.MarketArrays` and
the layout of :class:`engine.market_stats.MarketStats` (``stats.layout``), so
the parameters and bins are the engine's. The random numbers come from a
``numpy.random.Generator`` (SFC64), so the statistics agree with the engine in
distribution, not bit for bit. The per-run constants and the jump draws (two
exact shortcuts in distribution) are in ``numpy_market_plan.py``; the statistics,
the site costs, the curtailed W and the factor table in ``numpy_market_stats.py``.
"""

from __future__ import annotations

import numpy as np
from numpy_market_months import electricity_month, gpu_month
from numpy_market_plan import T_GRID, MarketPlan, add_jumps, jumps
from numpy_market_stats import (
    NumpyMarketStats,
    curtailed_w,
    empty_stats,
    factor_table,
    site_costs,
)

from engine.market_layout import (
    G_LN_STEP,
    G_SUCC_HI,
    G_SUCC_LO,
    MARKET_BINS,
    R_CAP0,
    S_CHI0,
    S_CU_A,
    S_CU_B,
    S_CU_JUMP_MU,
    S_CU_JUMP_SD,
    S_CU_RHO,
    S_D0,
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

__all__ = [
    "NumpyMarketStats",
    "add",
    "add_paths",
    "empty_stats",
    "energization_months",
    "factor_table",
    "simulate_markets",
]

#: Paths simulated at once inside :func:`add` (fastest on the benchmark machine: 8k-16k
#: paths keep a month's arrays in L2).
CHUNK = 16_384
#: Columns per matmul call: larger products make OpenBLAS start threads (NumPy on 1 core).
_BLAS_COLUMNS = 8_192


def energization_months(energization: np.ndarray, horizon: int) -> np.ndarray:
    """Month each phase is energized, ``max(1, ceil(E))``, T + 1 if not within T (or nan)."""
    months = np.fmin(energization, horizon + 1.0)  # fmin: nan -> T + 1
    np.ceil(months, out=months)
    np.maximum(months, 1.0, out=months)
    return months.astype(np.int64)


def simulate_markets(
    arrays: MarketArrays,
    layout: dict[str, np.ndarray],
    energization: np.ndarray,
    n_scopes: int,
    seed: int,
    chunk_size: int = CHUNK,
) -> NumpyMarketStats:
    """Simulate the markets of ``energization.shape[1]`` paths and return their statistics.

    Parameters
    ----------
    arrays : MarketArrays
        The engine's lowered market model (``MarketStats.arrays``).
    layout : dict of str to numpy.ndarray
        Sites, phases and regions (``MarketStats.layout``).
    energization : numpy.ndarray
        ``float64[P, n]`` months until each phase is energized (a transposed view
        of the engine's ``float64[n, P]`` is fine).
    n_scopes : int
        Reporting scopes (``len(scopes.kind)``).
    seed : int
        Seed of the ``numpy.random.Generator``.
    chunk_size : int
        Paths simulated at once; bounds memory.
    """
    horizon = arrays.center.shape[1] - 1
    stats = empty_stats(arrays, layout, horizon, n_scopes)
    rng = np.random.Generator(np.random.SFC64(seed))
    add(stats, arrays, layout, energization, rng, chunk_size)
    return stats


def add(
    stats: NumpyMarketStats,
    arrays: MarketArrays,
    layout: dict[str, np.ndarray],
    energization: np.ndarray,
    rng: np.random.Generator,
    chunk_size: int = CHUNK,
    squeeze: np.ndarray | None = None,
) -> None:
    """Simulate the markets of new paths and add their statistics (chunk by chunk).

    Parameters
    ----------
    stats : NumpyMarketStats
        Accumulated in place.
    arrays, layout : see :func:`simulate_markets`
    energization : numpy.ndarray
        ``float64[P, n]`` energization times (months) of the new paths.
    rng : numpy.random.Generator
        Source of every random number.
    chunk_size : int
        Paths simulated at once.
    squeeze : numpy.ndarray, optional
        ``bool[T + 1, n]`` the copper squeeze regime by month drawn by the capacity
        model (see :func:`add_paths`); default: drawn here.
    """
    plan = MarketPlan(arrays, stats.horizon)
    n = energization.shape[1]
    for start in range(0, n, chunk_size):
        part = slice(start, start + chunk_size)
        months = energization_months(energization[:, part], stats.horizon)
        history = squeeze[:, part] if squeeze is not None else None
        _chunk(stats, arrays, plan, layout, months, rng, None, history)
    stats.n_paths += n


def add_paths(
    stats: NumpyMarketStats,
    arrays: MarketArrays,
    layout: dict[str, np.ndarray],
    months: np.ndarray,
    rng: np.random.Generator,
    channels: np.ndarray,
    squeeze: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate one chunk of paths, add their statistics and keep their factor paths.

    What the demand side and the finance need from the markets
    (``numpy_demand.py``, ``numpy_finance.py``).

    Parameters
    ----------
    stats : NumpyMarketStats
        Accumulated in place.
    arrays, layout : see :func:`simulate_markets`
    months : numpy.ndarray
        ``int64[P, n]`` energization months of the chunk's paths
        (:func:`energization_months`; ``n`` of about :data:`CHUNK` bounds memory).
    rng : numpy.random.Generator
        Source of every random number.
    channels : numpy.ndarray
        ``float64[1 + 2 G, T + 1, n]`` written for months 1..T: the AI-demand
        factor, each generation's rent ($/GPU-hr) and resale value ($/GPU).
    squeeze : numpy.ndarray, optional
        ``bool[T + 1, n]`` the copper squeeze regime by month, when the capacity
        model drew it (``numpy_capacity.energization_and_squeeze``; the engine's
        two models share one history); default: drawn here.

    Returns
    -------
    tuple of numpy.ndarray
        ``cum[R, T + 1, n]`` each region's cost of one utility MW from month 1 to
        t ($: energy at the all-in price less curtailment, plus capacity
        charges) and ``copper[T + 1, n]`` the copper price by month ($/t).
    """
    plan = MarketPlan(arrays, stats.horizon)
    result = _chunk(stats, arrays, plan, layout, months, rng, channels, squeeze)
    stats.n_paths += months.shape[1]
    return result


def _chunk(
    stats: NumpyMarketStats,
    a: MarketArrays,
    plan: MarketPlan,
    lay: dict[str, np.ndarray],
    months: np.ndarray,
    rng: np.random.Generator,
    channels: np.ndarray | None = None,
    squeeze_history: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of paths: the month loop, then site costs and curtailed W.

    With ``channels`` (see :func:`add_paths`), also keep the demand factor, rents
    and resale values by month; with ``squeeze_history``, take the copper squeeze
    regime from it. Returns ``cum`` and ``copper`` (:func:`add_paths`).
    """
    horizon = stats.horizon
    n = months.shape[1]
    sc, reg, gpu, report = a.scalars, a.region, a.gpu, a.report
    n_regions, n_gens, n_factors = plan.n_regions, plan.n_gens, plan.n_factors
    phi, nu = sc[S_PHI], sc[S_NU]
    cu_rho = sc[S_CU_RHO]
    cu_own = float(np.sqrt(1.0 - cu_rho * cu_rho))
    enter, leave = sc[S_SQ_ENTER], sc[S_SQ_EXIT]
    # -- path state
    demand = np.full(n, sc[S_D0])
    x_ou = np.zeros((n_regions, n))
    y_spike = np.zeros((n_regions, n))
    charge = np.repeat(reg[:, R_CAP0, None], n, axis=1)  # $/MW-day
    with np.errstate(divide="ignore"):
        log_charge = np.log(charge)
    chi = np.full(n, sc[S_CHI0])
    xi = np.full(n, sc[S_XI0])  # without its drift: added with the month's constant
    squeeze = np.zeros(n, dtype=np.bool_)
    if plan.copper_on:
        initial = int(sc[S_SQ_INITIAL])
        if squeeze_history is not None:
            pass  # read month by month
        elif initial == 2:
            squeeze = rng.random(n) < enter / (enter + leave)
        else:
            squeeze[:] = initial == 1
    regime = np.ones(n, dtype=np.intp)
    y_gpu = np.zeros((n_gens, n))
    step_down = np.zeros((n_gens, n))  # ln successor step, once launched
    launch = np.full((n_gens, n), horizon + 1, dtype=np.int64)
    for g in range(n_gens):
        lo, hi = gpu[g, G_SUCC_LO], gpu[g, G_SUCC_HI]
        if lo >= 0 and plan.gpu_on:
            launch[g] = int(lo) + (rng.random(n) * (hi - lo + 1.0)).astype(np.int64)
        elif lo >= 0:
            launch[g] = int((lo + hi) // 2)
    # -- per month, kept for the site costs: $ per utility MW from month 1, copper price
    cum = np.zeros((n_regions, horizon + 1, n))
    copper = np.empty((horizon + 1, n))
    events: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(n_regions)]
    # -- scratch
    eps = np.empty((plan.n_normals, n))
    z = np.empty((n_factors, n))
    u = np.empty((plan.n_uniforms, n))
    logs = np.empty((plan.n_out, n))  # ln value of every reported factor this month
    values = np.empty((plan.n_out, n))
    bins = np.empty((plan.n_out, n))
    index = np.empty((plan.n_out, n), dtype=np.intp)
    fixed = np.empty((plan.n_out, n), dtype=np.int64)
    tmp = np.empty(n)
    spare = np.empty(n)
    dev = np.empty(n)
    rows = report
    for g in range(n_gens):  # launched before month 1
        step_down[g, launch[g] < 1] = gpu[g, G_LN_STEP]
    for t in range(1, horizon + 1):
        new_year = t > 1 and (t - 1) % 12 == 0
        # -- the month's random numbers (jumps and yearly steps: drawn where needed)
        rng.standard_normal(out=eps)
        rng.random(out=u)
        # -- copula shocks (column blocks: OpenBLAS stays single-threaded)
        for c in range(0, n, _BLAS_COLUMNS):
            block = slice(c, c + _BLAS_COLUMNS)
            np.matmul(a.copula_factor, eps[:n_factors, block], out=z[:, block])
        if plan.student:
            scale = rng.standard_gamma(0.5 * nu, n)
            np.divide(0.5 * nu, scale, out=scale)  # nu / chi^2, chi^2 = 2 Gamma(nu / 2)
            np.sqrt(scale, out=scale)
            z *= scale
            np.arcsinh(z, out=z)
            z[:] = np.interp(z, T_GRID, a.t_table)
        # -- AI demand
        demand *= phi
        if plan.demand_on:
            np.multiply(z[0], plan.demand_b, out=tmp)
            demand += tmp
        if channels is not None:
            channels[0, t] = demand
        # -- electricity
        for r in range(n_regions):
            electricity_month(stats, a, plan, r, t, new_year, z, u, rng, x_ou, y_spike, log_charge,
                               charge, cum, events, logs, values, tmp, spare)  # fmt: skip
        # -- copper
        chi *= sc[S_CU_A]
        if plan.copper_on:
            # two-state squeeze chain: leave with P(exit), enter with P(enter)
            if squeeze_history is not None:
                squeeze = squeeze_history[t]
            else:
                uq = u[plan.u_squeeze]
                squeeze = np.where(squeeze, uq >= leave, uq < enter)
            z_cu = z[1 + n_regions]
            np.multiply(z_cu, sc[S_CU_B], out=tmp)
            chi += tmp
            np.multiply(z_cu, sc[S_XI_SD] * cu_rho, out=tmp)
            xi += tmp
            np.multiply(eps[n_factors], sc[S_XI_SD] * cu_own, out=tmp)
            xi += tmp
            if plan.u_copper >= 0:
                hit, counts = jumps(u[plan.u_copper], plan.copper_table)
                add_jumps(xi, hit, counts, sc[S_CU_JUMP_MU], sc[S_CU_JUMP_SD], rng)
        copper_row = rows[2 * n_regions]
        log_copper = logs[copper_row] if copper_row >= 0 else spare
        np.add(chi, xi, out=log_copper)
        log_copper += sc[S_XI_DRIFT] * t
        if plan.copper_on:
            in_squeeze = int(np.count_nonzero(squeeze))
            stats.squeeze_months[t] += in_squeeze
            if in_squeeze:
                log_copper += squeeze * sc[S_SQ_PREMIUM]
        np.exp(log_copper, out=copper[t])
        if copper_row >= 0:
            values[copper_row] = copper[t]
        # -- GPU market
        if plan.gpu_regimes:
            ur = u[plan.u_regime]
            regime = (ur[None, :] >= plan.regime_cdf[:, regime]).sum(axis=0)
        for g in range(n_gens):
            gpu_month(a, plan, g, t, demand, z, regime, y_gpu, step_down, launch, logs, values,
                       dev, tmp, spare, channels)  # fmt: skip
        # -- the month's histograms and fixed-point sums of every reported factor
        if plan.n_out:
            np.multiply(logs, plan.bin_scale[t, :, None], out=bins)
            bins += plan.bin_shift[t, :, None]
            np.fmax(bins, plan.bin_low, out=bins)  # fmax: nan -> the first bin
            np.minimum(bins, plan.bin_high, out=bins)
            np.copyto(index, bins, casting="unsafe")
            counts = np.bincount(index.ravel(), minlength=plan.n_out * MARKET_BINS)
            stats.hist[:, t] += counts.reshape(plan.n_out, MARKET_BINS)
            np.multiply(values, plan.per_unit, out=bins)
            bins += 0.5
            np.copyto(fixed, bins, casting="unsafe")
            stats.sums[:, t] += fixed.sum(axis=1)
    site_costs(stats, a, lay, months, cum, copper)
    curtailed_w(stats, lay, months, events)
    return cum, copper
