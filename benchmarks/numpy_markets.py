"""The market model in plain vectorised NumPy: the baseline of ``markets.py``.

Same model as :mod:`engine.kernels.markets` (copula shocks, AI-demand AR(1),
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
distribution, not bit for bit. Two exact shortcuts in distribution: a month's
k compound-Poisson jumps N(mu, sd) add k mu + sd sqrt(k) Z with one normal, and
the Poisson count is found by inverting the same CDF as the engine, only on the
paths whose uniform exceeds P(0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.kernels.factors import T_GRID_MAX, T_GRID_POINTS
from engine.kernels.markets import N_SITE_SUMS, SITE_CAPEX, SITE_ENERGY
from engine.market_layout import (
    DAYS_PER_MONTH,
    G_AGE0,
    G_BETA,
    G_DRIFT,
    G_ELASTICITY,
    G_LN_KEEP,
    G_LN_NEW,
    G_LN_RENT,
    G_LN_STEP,
    G_OU_A,
    G_OU_B,
    G_SUCC_HI,
    G_SUCC_LO,
    HOURS_PER_MONTH,
    MARKET_BINS,
    R_ADDER,
    R_CAP0,
    R_CAP_MU,
    R_CAP_SIGMA,
    R_CURTAIL_P,
    R_CURTAIL_SHARE,
    R_LN_PRICE,
    R_OU_A,
    R_OU_B,
    R_PPA_SHARE,
    R_SPIKE_DECAY,
    R_SPIKE_MEAN,
    R_SPIKE_MU,
    R_SPIKE_SD,
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
    SITE_HALF_WIDTH,
    MarketArrays,
)
from engine.market_stats import QUANTILES, SITE_BINS, quantiles_from_log_histogram

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
_T_GRID = np.linspace(-T_GRID_MAX, T_GRID_MAX, T_GRID_POINTS)


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


def energization_months(energization: np.ndarray, horizon: int) -> np.ndarray:
    """Month each phase is energized, ``max(1, ceil(E))``, T + 1 if not within T (or nan)."""
    months = np.fmin(energization, horizon + 1.0)  # fmin: nan -> T + 1
    np.ceil(months, out=months)
    np.maximum(months, 1.0, out=months)
    return months.astype(np.int64)


def _poisson_table(mean: float) -> np.ndarray:
    """CDF P(N <= k) of Poisson(mean), k = 0, 1, ... as the engine's inversion sums it."""
    p = np.exp(-mean)
    cdf = [p]
    k = 0
    while k < 10_000 and cdf[-1] < 1.0:
        k += 1
        p *= mean / k
        if p == 0.0:
            break
        cdf.append(cdf[-1] + p)
    return np.array(cdf)


def _jumps(u: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paths with at least one jump and their counts, from one uniform per path."""
    hit = np.flatnonzero(u > table[0])
    counts = np.searchsorted(table, u[hit])
    np.minimum(counts, table.shape[0] - 1, out=counts)
    return hit, counts


def _add_jumps(
    x: np.ndarray,
    hit: np.ndarray,
    counts: np.ndarray,
    mu: float,
    sd: float,
    rng: np.random.Generator,
) -> None:
    """x[hit] += sum of ``counts`` N(mu, sd^2) jumps (k mu + sd sqrt(k) Z, one normal)."""
    if hit.size:
        x[hit] += counts * mu + sd * np.sqrt(counts) * rng.standard_normal(hit.size)


class _Plan:
    """Per-run constants of the model (parameters, offsets of the uniforms, bins)."""

    def __init__(self, a: MarketArrays, horizon: int) -> None:
        sc = a.scalars
        self.n_regions, self.n_gens = a.region.shape[0], a.gpu.shape[0]
        self.n_factors = a.copula_factor.shape[0]
        self.demand_on, self.elec_on, self.copper_on, self.gpu_on, self.student = (
            bool(x) for x in a.switches
        )
        self.gpu_regimes = sc[S_GPU_REGIMES] > 0.5
        self.demand_b = float(np.sqrt(1.0 - sc[S_PHI] ** 2))
        # uniform rows of a month, only those the engine draws: per region its spike
        # count and curtailment event, then copper squeeze, copper jumps, GPU regime
        rows = 0

        def row(needed: bool) -> int:
            nonlocal rows
            rows += needed
            return rows - 1 if needed else -1

        elec = self.elec_on
        self.u_spike = [row(elec and m > 0.0) for m in a.region[:, R_SPIKE_MEAN]]
        self.u_curtail = [row(elec and p > 0.0) for p in a.region[:, R_CURTAIL_P]]
        self.u_squeeze = row(self.copper_on)
        self.u_copper = row(self.copper_on and sc[S_CU_JUMP_MEAN] > 0.0)
        self.u_regime = row(bool(self.gpu_regimes))
        self.n_uniforms = rows
        self.n_normals = self.n_factors + self.copper_on  # copula, then copper's own
        self.spike_table = [_poisson_table(m) for m in a.region[:, R_SPIKE_MEAN]]
        self.copper_table = _poisson_table(sc[S_CU_JUMP_MEAN])
        cum = np.cumsum(a.regime_transition, axis=1)
        self.regime_cdf = cum[:, :-1].T.copy()  # [n - 1, regimes]
        # reported rows: bin index = value * scale + shift, clipped to the row's range
        n_out = a.center.shape[0]
        self.n_out = n_out
        offset = (np.arange(n_out) * MARKET_BINS)[:, None]
        self.bin_scale = np.ascontiguousarray(a.bin_scale.T)  # [T + 1, n_out]
        self.bin_shift = np.ascontiguousarray(
            (offset + 0.5 * MARKET_BINS - a.center * a.bin_scale).T
        )
        self.bin_low = offset.astype(float)
        self.bin_high = offset + (MARKET_BINS - 1.0)
        self.per_unit = (1.0 / a.unit)[:, None]
        # deterministic parts of ln resale by generation and month
        t = np.arange(horizon + 1)
        g = a.gpu
        with np.errstate(divide="ignore"):
            self.resale_base = (
                g[:, G_LN_NEW, None]
                + (g[:, G_AGE0, None] + t / 12.0) * g[:, G_LN_KEEP, None]
                + np.log(a.fire_sale_keep)
            )
        self.trend = g[:, G_LN_RENT, None] + g[:, G_DRIFT, None] * t


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
    plan = _Plan(arrays, stats.horizon)
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
    plan = _Plan(arrays, stats.horizon)
    result = _chunk(stats, arrays, plan, layout, months, rng, channels, squeeze)
    stats.n_paths += months.shape[1]
    return result


def _chunk(
    stats: NumpyMarketStats,
    a: MarketArrays,
    plan: _Plan,
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
    first_moy = int(sc[S_FIRST_MOY])
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
    keeping = channels is not None
    dev = np.empty(n)
    rows = report
    for g in range(n_gens):  # launched before month 1
        step_down[g, launch[g] < 1] = gpu[g, G_LN_STEP]
    for t in range(1, horizon + 1):
        year = (t - 1) // 12
        moy = (t - 1 + first_moy) % 12
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
            z[:] = np.interp(z, _T_GRID, a.t_table)
        # -- AI demand
        demand *= phi
        if plan.demand_on:
            np.multiply(z[0], plan.demand_b, out=tmp)
            demand += tmp
        if channels is not None:
            channels[0, t] = demand
        # -- electricity
        for r in range(n_regions):
            p = reg[r]
            x, y = x_ou[r], y_spike[r]
            event = None
            if plan.elec_on:
                x *= p[R_OU_A]
                np.multiply(z[1 + r], p[R_OU_B], out=tmp)
                x += tmp
                y *= p[R_SPIKE_DECAY]
                if plan.u_spike[r] >= 0:
                    hit, counts = _jumps(u[plan.u_spike[r]], plan.spike_table[r])
                    _add_jumps(y, hit, counts, p[R_SPIKE_MU], p[R_SPIKE_SD], rng)
                if new_year:
                    log_charge[r] += p[R_CAP_MU]
                    if p[R_CAP_SIGMA] > 0.0:
                        log_charge[r] += p[R_CAP_SIGMA] * rng.standard_normal(n)
                if plan.u_curtail[r] >= 0:
                    event = np.flatnonzero(u[plan.u_curtail[r]] < p[R_CURTAIL_P])
            elif new_year:
                log_charge[r] += p[R_CAP_MU]
            charge_row = rows[2 * r + 1]
            if new_year:
                np.exp(log_charge[r], out=charge[r])
            if charge_row >= 0 and (new_year or t == 1):  # changes once a year
                logs[charge_row] = log_charge[r]
                values[charge_row] = charge[r]
            # all-in $/MWh: PPA share at its price, the rest at the spot price, adder
            # binned in ln energy price, as the engine (all-in is increasing in it)
            share = p[R_PPA_SHARE]
            all_in = values[rows[2 * r]] if rows[2 * r] >= 0 else spare
            np.add(x, y, out=all_in)
            all_in += p[R_LN_PRICE] + a.season[r, moy]
            if rows[2 * r] >= 0:
                logs[rows[2 * r]] = all_in
            np.exp(all_in, out=all_in)
            all_in *= 1.0 - share
            all_in += share * a.ppa_price[r, year] + p[R_ADDER]
            # $ per utility MW this month: energy (less curtailed MW) and capacity charge
            month_cost = cum[r, t]
            np.multiply(all_in, HOURS_PER_MONTH, out=month_cost)
            if event is not None and event.size:
                month_cost[event] *= 1.0 - p[R_CURTAIL_SHARE]
                events[r].append((t, event))
                stats.curtail_months[r, t] += event.size
            np.multiply(charge[r], DAYS_PER_MONTH, out=tmp)
            month_cost += tmp
            month_cost += cum[r, t - 1]
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
                hit, counts = _jumps(u[plan.u_copper], plan.copper_table)
                _add_jumps(xi, hit, counts, sc[S_CU_JUMP_MU], sc[S_CU_JUMP_SD], rng)
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
            q = gpu[g]
            y = y_gpu[g]
            y *= q[G_OU_A]
            if plan.gpu_on:
                np.multiply(z[2 + n_regions + g], q[G_OU_B], out=tmp)
                y += tmp
            # dev = ln rent - trend
            np.multiply(demand, q[G_BETA], out=dev)
            dev += y
            if plan.gpu_regimes:
                dev += a.regime_offset[regime]
            rent_row = rows[2 * n_regions + 1 + 2 * g]
            resale_row = rows[2 * n_regions + 2 + 2 * g]
            if rent_row >= 0 or keeping:
                log_rent = logs[rent_row] if rent_row >= 0 else spare
                np.add(dev, plan.trend[g, t], out=log_rent)
                rent = values[rent_row] if rent_row >= 0 else tmp
                np.exp(log_rent, out=rent)
                if channels is not None:
                    channels[1 + g, t] = rent
            if resale_row >= 0 or keeping:
                log_resale = logs[resale_row] if resale_row >= 0 else spare
                np.multiply(dev, q[G_ELASTICITY], out=log_resale)
                log_resale += plan.resale_base[g, t]
                if q[G_SUCC_LO] >= 0:
                    step_down[g, launch[g] == t] = q[G_LN_STEP]
                    log_resale += step_down[g]
                resale = values[resale_row] if resale_row >= 0 else tmp
                np.exp(log_resale, out=resale)
                if channels is not None:
                    channels[1 + n_gens + g, t] = resale
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
    _site_costs(stats, a, lay, months, cum, copper)
    _curtailed_w(stats, lay, months, events)
    return cum, copper


def _site_costs(
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


def _curtailed_w(
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
