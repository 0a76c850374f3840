"""A month of the copula, a region's electricity and the GPU market for a group of lanes.

The market kernel (engine/kernels/market_block.py) calls these inline functions
once per month for its ``LANES`` paths: first the copula's factor scores, then
each region's electricity (its draws in engine/kernels/market_steps.py; prices,
curtailment, records, cost per utility MW), copper (market_steps), last the GPU
market (regime, each generation's rent and resale value, their records).
Vector loops run over all lanes, draws only for the first ``n_active`` lanes,
each from its own stream column ``row0 + lane`` of the generator states, in the
order docs/model.md §7.1 gives for a single path.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.kernels.factors import chi_square, markov_step, t_to_normal
from engine.kernels.lanes import LANES, exp_lanes
from engine.kernels.market_records import record_lanes
from engine.kernels.market_steps import electricity_draws
from engine.market_layout import (
    DAYS_PER_MONTH,
    G_BETA,
    G_ELASTICITY,
    G_LN_STEP,
    G_OU_A,
    G_OU_B,
    HOURS_PER_MONTH,
    R_CAP_MU,
    R_CURTAIL_SHARE,
)
from engine.rng import next_normal

__all__ = [
    "ST_COPULA",
    "ST_GPU_REGIME",
    "TRACE_FIXED",
    "TRACE_PER_REGION",
    "copula_scores",
    "electricity_month",
    "gpu_month",
    "resale_lanes",
]

#: Stream columns (x LANES) of the Student-t scale and the GPU regime (copper: market_steps).
ST_COPULA, ST_GPU_REGIME = 0, 3
#: Trace channels before the copula shocks, and per region (see trace_channels).
TRACE_FIXED, TRACE_PER_REGION = 5, 5


@njit(cache=True, inline="always")
def copula_scores(
    rng: np.ndarray,
    shock0: int,
    n_active: int,
    student: bool,
    nu: float,
    copula_factor: np.ndarray,
    t_table: np.ndarray,
    eps: np.ndarray,
    scale: np.ndarray,
    z: np.ndarray,
) -> None:
    """Draw the month's factor shocks and mix them into normal scores ``z`` (in place).

    Parameters
    ----------
    rng : numpy.ndarray
        Generator states ``uint64[4, streams x LANES]``; factor ``f``'s shock is
        drawn from stream column ``(shock0 + f) x LANES + lane``.
    shock0 : int
        Stream of the first factor's shock.
    n_active : int
        Lanes that hold a path (draws only for these).
    student, nu : bool, float
        Student-t copula and its degrees of freedom: each lane's scores are
        scaled by sqrt(nu / chi-square(nu)) and mapped back to normal scores.
    copula_factor, t_table : numpy.ndarray
        Lower-triangular square root L of the factor correlation; the t -> normal
        score table.
    eps, scale, z : numpy.ndarray
        Scratch ``float64[factors, LANES]`` (shocks), ``float64[LANES]`` (t
        scale) and the scores written, ``float64[factors, LANES]``.
    """
    n_factors = copula_factor.shape[0]
    for f in range(n_factors):
        for lane in range(n_active):
            eps[f, lane] = next_normal(rng, (shock0 + f) * LANES + lane)
    if student:
        for lane in range(n_active):
            scale[lane] = math.sqrt(nu / chi_square(rng, ST_COPULA * LANES + lane, nu))
    for f in range(n_factors):
        for lane in range(LANES):
            z[f, lane] = 0.0
        for k in range(f + 1):
            coef = copula_factor[f, k]
            for lane in range(LANES):
                z[f, lane] += coef * eps[k, lane]
        if student:
            for lane in range(n_active):
                z[f, lane] = t_to_normal(z[f, lane] * scale[lane], t_table)


@njit(cache=True, inline="always")
def electricity_month(
    rng: np.ndarray,
    b: int,
    t: int,
    i0: int,
    r: int,
    n_active: int,
    elec_on: bool,
    new_year: bool,
    region: np.ndarray,
    spike_p0: float,
    z: np.ndarray,
    energy_base: np.ndarray,
    fixed_cost: np.ndarray,
    open_share: float,
    state: tuple,
    report: np.ndarray,
    records: tuple,
    costs: tuple,
    finance: bool,
    tracing: bool,
    trace: np.ndarray,
    trace0: int,
    scratch: tuple,
) -> None:
    """Step region ``r``'s electricity to month ``t`` and add what it costs per utility MW.

    The draws (:func:`engine.kernels.market_steps.electricity_draws`: OU,
    spikes, the capacity charge at each new year, the curtailment event), or
    with the market off the capacity charge's drift alone; then the all-in price
    (hedged part + unhedged share x energy price, binned in ln energy price, to
    which it is increasing), the capacity charge, the curtailment event months
    and ``cum[r, t]`` = ``cum[r, t - 1]`` + hours x all-in x available share +
    days x capacity charge ($ per utility MW). With the finance, ``spent[r]`` is
    the month's part of it.

    Parameters
    ----------
    rng : numpy.ndarray
        Generator states; the region draws from stream columns ``(4 + r) x LANES + lane``.
    b, t, i0, r, n_active : int
        Block, month, the group's first path, region and lanes holding a path.
    elec_on, new_year : bool
        The electricity market on; ``t`` starts a year (the capacity charge steps).
    region, spike_p0 : numpy.ndarray, float
        Per-region parameters and P(no spike) of region ``r``.
    z : numpy.ndarray
        The month's copula scores (region ``r``'s is row ``1 + r``).
    energy_base, fixed_cost, open_share : numpy.ndarray, numpy.ndarray, float
        ln central energy price and hedged cost by region and month ($/MWh), and
        the region's unhedged share.
    state : tuple of numpy.ndarray
        ``(x_ou, y_spike, log_charge, charge, spikes, event, uniform)``: lane state
        and scratch of :func:`electricity_draws` (updated in place).
    report : numpy.ndarray
        Report row of each factor slot (region ``r``: slots ``2 r``, ``2 r + 1``).
    records : tuple
        ``(b_hist, b_sums, bin_map, recs)`` as in
        :func:`engine.kernels.market_records.record_lanes`.
    costs : tuple of numpy.ndarray
        ``(b_curtail, curtailed, n_curtailed, cum, spent)``: paths with an event by
        block, region and month; each lane's event months and their count
        (appended to); ``float64[R, T + 1, LANES]`` cumulative and
        ``float64[R, LANES]`` month's cost per utility MW ($).
    finance, tracing : bool
        Write ``spent``; write the trace.
    trace, trace0 : numpy.ndarray, int
        Per-path trace and region ``r``'s first channel.
    scratch : tuple of numpy.ndarray
        ``(log_v, value, price, bits, pow2)``: lane scratch ``[LANES]``.

    Notes
    -----
    The arrays come in tuples because CPython compiles a call of more than 30
    arguments as ``f(*args)``, which numba does not inline.
    """
    x_ou, y_spike, log_charge, charge, spikes, event, uniform = state
    b_hist, b_sums, bin_map, recs = records
    b_curtail, curtailed, n_curtailed, cum, spent = costs
    log_v, value, price, bits, pow2 = scratch
    for lane in range(LANES):
        event[lane] = False
    if elec_on:
        electricity_draws(rng, (4 + r) * LANES, r, region, spike_p0, new_year, n_active, z, 1 + r,
            x_ou, y_spike, log_charge, charge, spikes, event, uniform)  # fmt: skip
    elif new_year:
        for lane in range(LANES):
            log_charge[r, lane] += region[r, R_CAP_MU]
            charge[r, lane] = math.exp(log_charge[r, lane])
    base = energy_base[r, t]
    for lane in range(LANES):
        log_v[lane] = base + x_ou[r, lane] + y_spike[r, lane]
    exp_lanes(log_v, price, bits, pow2)
    hedged = fixed_cost[r, t]
    for lane in range(LANES):
        value[lane] = hedged + open_share * price[lane]
    # binned in ln energy price: all-in is increasing in it (no log needed)
    record_lanes(b_hist, b_sums, b, report[2 * r], t, log_v, value, n_active, bin_map, recs)
    row = report[2 * r + 1]
    record_lanes(b_hist, b_sums, b, row, t, log_charge[r], charge[r], n_active, bin_map, recs)
    for lane in range(n_active):
        if event[lane]:
            b_curtail[b, r, t] += 1
            curtailed[r, lane, n_curtailed[r, lane]] = t
            n_curtailed[r, lane] += 1
    kept = 1.0 - region[r, R_CURTAIL_SHARE]
    for lane in range(LANES):
        available = kept if event[lane] else 1.0
        cum[r, t, lane] = cum[r, t - 1, lane] + (
            HOURS_PER_MONTH * value[lane] * available + DAYS_PER_MONTH * charge[r, lane]
        )
    if finance:  # the month's cost, once per region (not per phase)
        for lane in range(LANES):
            spent[r, lane] = cum[r, t, lane] - cum[r, t - 1, lane]
    if tracing:
        for lane in range(n_active):
            trace[i0 + lane, trace0, t] = math.log(value[lane])
            trace[i0 + lane, trace0 + 1, t] = log_v[lane]
            trace[i0 + lane, trace0 + 2, t] = charge[r, lane]
            trace[i0 + lane, trace0 + 3, t] = event[lane]
            trace[i0 + lane, trace0 + 4, t] = spikes[lane] if elec_on else 0


@njit(cache=True, inline="always")
def resale_lanes(
    t: int,
    g: int,
    gpu: np.ndarray,
    launch: np.ndarray,
    trend: float,
    resale_base: np.ndarray,
    resale_log_factor: np.ndarray,
    resale_factor: np.ndarray,
    step_factor: np.ndarray,
    unit_elasticity: np.ndarray,
    log_value: np.ndarray,
    value: np.ndarray,
    bits: np.ndarray,
    pow2: np.ndarray,
) -> None:
    """Turn generation ``g``'s ln rent and rent (in place) into ln resale and resale ($/GPU).

    ln resale = resale_base + elasticity x (ln rent - ln trend) + the successor
    step-down from the launch month on. With elasticity 1 that is rent x a
    factor of the month, so no exponential is needed.
    """
    ln_step, step = gpu[g, G_LN_STEP], step_factor[g]
    if unit_elasticity[g]:
        ln_f, f_resale = resale_log_factor[g, t], resale_factor[g, t]
        for lane in range(LANES):
            after = t >= launch[g, lane]
            log_value[lane] = log_value[lane] + ln_f + (ln_step if after else 0.0)
            value[lane] = value[lane] * f_resale * (step if after else 1.0)
    else:
        base, elasticity = resale_base[g, t], gpu[g, G_ELASTICITY]
        for lane in range(LANES):
            after = t >= launch[g, lane]
            log_value[lane] = (
                base + elasticity * (log_value[lane] - trend) + (ln_step if after else 0.0)
            )
        exp_lanes(log_value, value, bits, pow2)


@njit(cache=True, inline="always")
def gpu_month(
    rng: np.ndarray,
    b: int,
    t: int,
    i0: int,
    n_active: int,
    gpu_on: bool,
    gpu_regimes: bool,
    z: np.ndarray,
    z0: int,
    demand: np.ndarray,
    gpu: np.ndarray,
    regime_transition: np.ndarray,
    regime_offset: np.ndarray,
    constants: tuple,
    state: tuple,
    report: np.ndarray,
    slot0: int,
    records: tuple,
    series: np.ndarray,
    keeping: bool,
    finance: bool,
    tracing: bool,
    trace: np.ndarray,
    trace0: int,
    scratch: tuple,
) -> None:
    """Step the GPU market to month ``t``: regime, each generation's rent and resale value.

    ln rent = trend(t) + beta x demand + OU deviation (+ the regime's offset);
    resale from rent (:func:`resale_lanes`). Both are recorded (value bins and
    fixed-point sums, the report rows of factor slots ``slot0 + 2 g`` and
    ``slot0 + 2 g + 1``), kept in
    the series (rent: channel ``1 + g``; resale, with the finance: ``1 + G + g``)
    and, when tracing, written to the trace channels ``trace0 + 2 g`` and
    ``trace0 + 2 g + 1``.

    Parameters
    ----------
    rng : numpy.ndarray
        Generator states; the regime is drawn from column ``ST_GPU_REGIME x LANES + lane``.
    b, t, i0, n_active : int
        Block, month, the group's first path and its lanes holding a path.
    gpu_on, gpu_regimes : bool
        The GPU market's shocks on; a regime chain to step.
    z, z0 : numpy.ndarray, int
        The month's copula scores and the row of the first generation's score.
    demand : numpy.ndarray
        AI-demand factor of the month, ``float64[LANES]``.
    gpu, regime_transition, regime_offset : numpy.ndarray
        Per-generation parameters, the regime chain's transition matrix and its ln
        rent offsets.
    constants : tuple of numpy.ndarray
        ``(rent_trend, resale_base, resale_log_factor, resale_factor, step_factor,
        unit_elasticity)``: month-indexed constants
        (:func:`engine.kernels.market_steps.month_constants`).
    state : tuple of numpy.ndarray
        ``(gpu_regime, y_gpu, launch)``: lane state (updated in place): regime, OU
        deviation of ln rent per generation, successor launch month per generation.
    report, slot0 : numpy.ndarray, int
        Report row of each factor slot (-1: not reported) and the slot of the
        first generation's rent.
    records : tuple
        ``(b_hist, b_sums, bin_map, recs)`` as in
        :func:`engine.kernels.market_records.record_lanes`.
    series : numpy.ndarray
        The group's series ``float64[channels, T + 1, LANES]`` (written when ``keeping``).
    keeping, finance, tracing : bool
        Keep rents; keep resale values; write the trace.
    trace, trace0 : numpy.ndarray, int
        Per-path trace and the first generation's channel.
    scratch : tuple of numpy.ndarray
        ``(log_v, value, price, bits, pow2)``: lane scratch ``[LANES]`` (``price``
        unused).
    """
    rent_trend, resale_base, resale_log_factor, resale_factor, step_factor, unit_elasticity = (
        constants
    )
    gpu_regime, y_gpu, launch = state
    b_hist, b_sums, bin_map, recs = records
    log_v, value, _, bits, pow2 = scratch
    n_gens = gpu.shape[0]
    if gpu_regimes:
        for lane in range(n_active):
            gpu_regime[lane] = markov_step(
                rng, ST_GPU_REGIME * LANES + lane, gpu_regime[lane], regime_transition
            )
    for g in range(n_gens):
        ou_a = gpu[g, G_OU_A]
        ou_b = gpu[g, G_OU_B] if gpu_on else 0.0
        zg = z0 + g
        trend, beta = rent_trend[g, t], gpu[g, G_BETA]
        for lane in range(LANES):
            y_gpu[g, lane] = ou_a * y_gpu[g, lane] + ou_b * z[zg, lane]
            log_v[lane] = trend + beta * demand[lane] + y_gpu[g, lane]
        if gpu_regimes:
            for lane in range(LANES):
                log_v[lane] += regime_offset[gpu_regime[lane]]
        exp_lanes(log_v, value, bits, pow2)
        if keeping:
            for lane in range(LANES):
                series[1 + g, t, lane] = value[lane]
        row = report[slot0 + 2 * g]
        record_lanes(b_hist, b_sums, b, row, t, log_v, value, n_active, bin_map, recs)
        c = trace0 + 2 * g
        if tracing:
            for lane in range(n_active):
                trace[i0 + lane, c, t] = log_v[lane]
        resale_lanes(t, g, gpu, launch, trend, resale_base, resale_log_factor, resale_factor,
            step_factor, unit_elasticity, log_v, value, bits, pow2)  # fmt: skip
        if finance:
            for lane in range(LANES):
                series[1 + n_gens + g, t, lane] = value[lane]
        row = report[slot0 + 2 * g + 1]
        record_lanes(b_hist, b_sums, b, row, t, log_v, value, n_active, bin_map, recs)
        if tracing:
            for lane in range(n_active):
                trace[i0 + lane, c + 1, t] = log_v[lane]
