"""A month of the plain-NumPy market model's electricity and GPU market, all paths at once.

``numpy_markets.py`` calls these from its month loop: each region's electricity
(OU, spikes, capacity charge, curtailment events, all-in price and the cost per
utility MW) and each generation's rent and resale value, as arrays over the
chunk's paths.
"""

from __future__ import annotations

import numpy as np
from numpy_market_plan import MarketPlan, add_jumps, jumps
from numpy_market_stats import NumpyMarketStats

from engine.market_layout import (
    DAYS_PER_MONTH,
    G_BETA,
    G_ELASTICITY,
    G_LN_STEP,
    G_OU_A,
    G_OU_B,
    G_SUCC_LO,
    HOURS_PER_MONTH,
    R_ADDER,
    R_CAP_MU,
    R_CAP_SIGMA,
    R_CURTAIL_P,
    R_CURTAIL_SHARE,
    R_LN_PRICE,
    R_OU_A,
    R_OU_B,
    R_PPA_SHARE,
    R_SPIKE_DECAY,
    R_SPIKE_MU,
    R_SPIKE_SD,
    S_FIRST_MOY,
    MarketArrays,
)

__all__ = ["electricity_month", "gpu_month"]


def gpu_month(
    a: MarketArrays,
    plan: MarketPlan,
    g: int,
    t: int,
    demand: np.ndarray,
    z: np.ndarray,
    regime: np.ndarray,
    y_gpu: np.ndarray,
    step_down: np.ndarray,
    launch: np.ndarray,
    logs: np.ndarray,
    values: np.ndarray,
    dev: np.ndarray,
    tmp: np.ndarray,
    spare: np.ndarray,
    channels: np.ndarray | None,
) -> None:
    """Generation ``g``'s rent ($/GPU-hr) and resale value ($/GPU) in month ``t``, all paths.

    ln rent = trend + beta x demand + OU deviation (+ the regime's offset); ln
    resale = its deterministic part + elasticity x (ln rent - trend) + the
    successor step-down from the launch month. Reported rows go into ``logs``
    and ``values``; with ``channels``, both are kept (see :func:`numpy_markets.add_paths`).
    """
    gpu, rows, n_regions, n_gens = a.gpu, a.report, plan.n_regions, plan.n_gens
    keeping = channels is not None
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


def electricity_month(
    stats: NumpyMarketStats,
    a: MarketArrays,
    plan: MarketPlan,
    r: int,
    t: int,
    new_year: bool,
    z: np.ndarray,
    u: np.ndarray,
    rng: np.random.Generator,
    x_ou: np.ndarray,
    y_spike: np.ndarray,
    log_charge: np.ndarray,
    charge: np.ndarray,
    cum: np.ndarray,
    events: list[list[tuple[int, np.ndarray]]],
    logs: np.ndarray,
    values: np.ndarray,
    tmp: np.ndarray,
    spare: np.ndarray,
) -> None:
    """Region ``r``'s electricity in month ``t``, all paths, and its cost per utility MW.

    OU and compound-Poisson spikes of the ln energy price, the capacity charge's
    yearly lognormal step, curtailment events (appended to ``events[r]``); the
    all-in price ($/MWh: PPA share at its price, the rest at the spot price,
    adder) and ``cum[r, t]`` = ``cum[r, t - 1]`` + hours x all-in (less the
    curtailed share) + days x capacity charge ($ per utility MW). Reported rows go
    into ``logs`` and ``values``.
    """
    reg, rows, n = a.region, a.report, x_ou.shape[1]
    year = (t - 1) // 12
    moy = (t - 1 + int(a.scalars[S_FIRST_MOY])) % 12
    p = reg[r]
    x, y = x_ou[r], y_spike[r]
    event = None
    if plan.elec_on:
        x *= p[R_OU_A]
        np.multiply(z[1 + r], p[R_OU_B], out=tmp)
        x += tmp
        y *= p[R_SPIKE_DECAY]
        if plan.u_spike[r] >= 0:
            hit, counts = jumps(u[plan.u_spike[r]], plan.spike_table[r])
            add_jumps(y, hit, counts, p[R_SPIKE_MU], p[R_SPIKE_SD], rng)
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
