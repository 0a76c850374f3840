"""The operators' finance in plain vectorised NumPy: cash, debt, covenants, defaults, fire sales.

Same model as :func:`engine.kernels.finance.finance_lanes` (its module docstring
gives the order of events in a month), with the energy cost and facility capex
by operator of :func:`engine.kernels.market_records.operator_energy` and
:func:`engine.kernels.market_records.operator_capex`; the
statistics (``numpy_finance_records.py``) are accumulated into the engine's own
:class:`engine.finance_stats.FinanceStats` arrays (same layout, bins and
fixed-point units), so its table methods apply.

Written the way one would write it without numba: everything that does not
depend on the paths' financial state (EBITDA, capex, collateral units, draws)
is computed up front on ``[months, paths]`` arrays; the month loop then runs
over operators and facilities (a few each) with the state of all the chunk's
paths as arrays, an operator in default frozen by masks. The refinancing
uniforms come from a ``numpy.random.Generator``.
"""

from __future__ import annotations

import numpy as np
from numpy_demand import DemandPaths
from numpy_finance_inputs import FinanceSeries, finance_series, operator_costs
from numpy_finance_records import record_facilities, record_fans, record_month, record_paths

from engine.finance_arrays import FinanceArrays
from engine.finance_stats import FinanceStats
from engine.kernels.finance_fields import (
    CAUSE_COVENANT,
    CAUSE_LIQUIDITY,
    CAUSE_REFINANCING,
    F_AMORT_START,
    F_BALLOON,
    F_CURE,
    F_DISCOUNT,
    F_FIRST_TEST,
    F_FIXED,
    F_LIQ_MONTHS,
    F_MATURITY,
    F_MAX_LTV,
    F_MIN_DSCR,
    F_RATE,
    F_REFI_A,
    F_REFI_B,
    F_REFI_C,
    F_REFI_TERM,
    F_STRESS,
    F_WINDOW,
    FAN_BINS,
    FR_REFINANCED,
    G_DECAY,
    G_IMPACT,
    N_FAN,
    O_CASH0,
    O_LIQ_SPREAD,
    O_LIQUIDITY,
    O_WINDOW,
)

__all__ = ["add_finance", "operator_costs"]

#: A month after every horizon (no default, no breach, no sale).
NEVER = 1 << 30


class _State:
    """The financial state of every path: ``[O, n]`` per operator, ``[F, n]`` per facility."""

    def __init__(self, a: FinanceArrays, horizon: int, n: int) -> None:
        n_ops, n_fac = a.ops.shape[0], a.facilities.shape[0]
        self.cash = np.repeat(a.ops[:, O_CASH0, None], n, axis=1)  # $
        self.min_dscr = np.full((n_ops, n), np.inf)
        self.tested = np.zeros((n_ops, n), dtype=np.bool_)
        self.default_month = np.full((n_ops, n), NEVER)
        self.cause = np.zeros((n_ops, n), dtype=np.int64)
        self.first_breach = np.full((n_ops, n), NEVER)
        self.cum_e = np.zeros((n_ops, horizon + 1, n))  # cumulative EBITDA, $
        self.cum_ds = np.zeros((n_ops, horizon + 1, n))  # cumulative debt service, $
        self.out = np.zeros((n_fac, n))  # outstanding, $
        self.drawn = np.zeros((n_fac, n))
        self.balloon = np.zeros((n_fac, n))
        self.ead = np.zeros((n_fac, n))
        self.proceeds = np.zeros((n_fac, n))
        self.maturity = np.repeat(a.facilities[:, F_MATURITY, None].astype(np.int64), n, axis=1)
        self.run = np.zeros((n_fac, n), dtype=np.int64)  # months in breach in a row
        self.sell_from = np.full((n_fac, n), NEVER)
        self.impact = np.zeros((a.gens.shape[0], n))  # the book's fire-sale impact J


def add_finance(
    stats: FinanceStats,
    months: np.ndarray,
    channels: np.ndarray,
    energy: np.ndarray,
    capex: np.ndarray,
    demand: DemandPaths,
    rng: np.random.Generator,
) -> None:
    """Simulate the finance of one chunk's paths and add their statistics.

    Parameters
    ----------
    stats : FinanceStats
        The engine's finance statistics (``FinanceStats.create``): its ``arrays``
        are the inputs, its counts and sums are accumulated in place.
    months : numpy.ndarray
        ``int64[P, n]`` energization months (T + 1: not within T).
    channels : numpy.ndarray
        ``float64[1 + 2 G, T + 1, n]`` AI-demand factor, rents ($/GPU-hr) and
        resale values ($/GPU) by month.
    energy, capex : numpy.ndarray
        Energy cost and facility capex by operator and month ($, :func:`operator_costs`).
    demand : DemandPaths
        Contract revenue and cash by operator, customer default months.
    rng : numpy.random.Generator
        Source of the refinancing uniforms (one per facility and path).
    """
    a = stats.arrays
    horizon, n = channels.shape[1] - 1, channels.shape[2]
    series = finance_series(a, months, channels, energy, capex, demand, rng)
    state = _State(a, horizon, n)
    fan = np.empty((a.ops.shape[0], N_FAN, n), dtype=np.intp)  # FAN_BINS: not recorded
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for t in range(1, horizon + 1):
            price = _prices(a, series.resale[:, t], state.impact, t)
            fan.fill(FAN_BINS)
            for o in range(a.ops.shape[0]):
                _operator_month(stats, series, state, o, t, price, fan[o])
            record_fans(stats, t, fan)
            _fire_sales(a, series, state, t, price)
        _sales_after(a, series, state, horizon)
    record_paths(
        stats,
        months,
        state.default_month,
        state.cause,
        state.tested,
        state.min_dscr,
        demand.revenue[:, 0, 1:],
        demand.customer_default,
    )
    record_facilities(stats, state.ead, state.proceeds, state.sell_from)


def _prices(a: FinanceArrays, resale: np.ndarray, impact: np.ndarray, t: int) -> np.ndarray:
    """Resale value of a GPU of each generation after the book's own fire sales, $.

    The market's resale value carries the exogenous keep factor k = max(0, 1 - I_t);
    with the book's impact J it becomes max(0, 1 - I_t - J).
    """
    price = np.zeros_like(resale)
    for g in range(resale.shape[0]):
        keep = a.keep[g, t]
        if keep > 0.0:
            price[g] = resale[g] * np.maximum(keep - impact[g], 0.0) / keep
    return price


def _debt_service(
    a: FinanceArrays, series: FinanceSeries, state: _State, o: int, t: int, alive: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Draws, interest and scheduled principal of operator o's facilities; ($ service, $ drawn)."""
    fac, rate_base = a.facilities, a.base_rate[t]
    cash = state.cash[o]
    service = np.maximum(-cash, 0.0) * ((rate_base + a.ops[o, O_LIQ_SPREAD]) / 12.0)
    drawn_now = np.zeros_like(cash)
    for f in series.facs_of[o]:
        out, balloon, maturity = state.out[f], state.balloon[f], state.maturity[f]
        draw = series.draws[f, t] * alive
        state.drawn[f] += draw
        out += draw
        drawn_now += draw
        fresh = (draw > 0.0) & (maturity == int(fac[f, F_MATURITY]))  # not yet refinanced
        balloon[fresh] = fac[f, F_BALLOON] * state.drawn[f, fresh]
        rate = fac[f, F_RATE] + (rate_base if fac[f, F_FIXED] < 0.5 else 0.0)
        interest = out * (rate / 12.0)
        scheduled = np.maximum(out - balloon, 0.0) / np.maximum(maturity - t + 1, 1)
        scheduled *= alive & (t >= fac[f, F_AMORT_START]) & (t <= maturity)
        out -= scheduled
        service += interest + scheduled
    return service, drawn_now


def _tests(
    stats: FinanceStats,
    series: FinanceSeries,
    state: _State,
    o: int,
    t: int,
    alive: np.ndarray,
    price: np.ndarray,
) -> dict[str, np.ndarray]:
    """Covenant tests and refinancing of operator o's facilities in month t.

    Returns
    -------
    dict of str to numpy.ndarray
        ``fails`` (``int64[n]`` default cause, 0: none), ``breach`` and ``tested``
        (any facility in breach / tested), ``out`` and ``value`` (outstanding and
        collateral value summed over the facilities, $).
    """
    fac = stats.arrays.facilities
    n = alive.shape[0]
    fails = np.zeros(n, dtype=np.int64)
    found = {"breach": np.zeros(n, dtype=np.bool_), "tested": np.zeros(n, dtype=np.bool_)}
    found["out"], found["value"] = np.zeros(n), np.zeros(n)
    cum_e, cum_ds = state.cum_e[o], state.cum_ds[o]
    for f in series.facs_of[o]:
        out, maturity = state.out[f], state.maturity[f]
        value = np.zeros(n)
        for g in series.gens_of[f]:
            value += series.units[f, g][t] * price[g]
        found["out"] += out
        found["value"] += value
        w0 = max(t - int(fac[f, F_WINDOW]), 0)
        e_w, d_w = cum_e[t] - cum_e[w0], cum_ds[t] - cum_ds[w0]
        owing = out > 0.0
        ltv = np.where(owing, np.where(value > 0.0, out / value, np.inf), 0.0)
        tested = owing & (t >= fac[f, F_FIRST_TEST])
        breach = ((d_w > 0.0) & (e_w < fac[f, F_MIN_DSCR] * d_w)) | (ltv > fac[f, F_MAX_LTV])
        breach &= tested
        state.run[f] = np.where(alive, np.where(breach, state.run[f] + 1, 0), state.run[f])
        found["breach"] |= breach
        found["tested"] |= tested
        cured = state.run[f] >= fac[f, F_CURE]
        fails[cured] = np.maximum(fails[cured], CAUSE_COVENANT)
        due = alive & (t == maturity) & (out > 1e-6)
        if due.any():
            x = fac[f, F_REFI_A] + fac[f, F_REFI_B] * (ltv - 0.6)
            x += fac[f, F_REFI_C] * (series.stress[t] < fac[f, F_STRESS])
            p_fail = np.where(np.isfinite(ltv), 1.0 / (1.0 + np.exp(-x)), 1.0)
            failed = due & (breach | (series.u_refi[f] < p_fail))
            renewed = due & ~failed
            fails[failed] = CAUSE_REFINANCING
            maturity[renewed] = t + int(fac[f, F_REFI_TERM])
            state.balloon[f, renewed] = 0.0
            stats.fac_sums[f, FR_REFINANCED] += np.count_nonzero(renewed)
    found["fails"] = fails
    return found


def _operator_month(
    stats: FinanceStats,
    series: FinanceSeries,
    state: _State,
    o: int,
    t: int,
    price: np.ndarray,
    fan: np.ndarray,
) -> None:
    """Operator o in month t on every path where it is not yet in default (steps 1-5)."""
    a = stats.arrays
    alive = state.default_month[o] >= t
    ebitda = series.ebitda[o, t - 1]
    service, drawn_now = _debt_service(a, series, state, o, t, alive)
    state.cash[o] += (ebitda + series.other[o, t - 1] + drawn_now - service) * alive
    state.cum_e[o, t] = state.cum_e[o, t - 1] + ebitda * alive
    state.cum_ds[o, t] = state.cum_ds[o, t - 1] + service * alive
    found = _tests(stats, series, state, o, t, alive, price)
    fails = found["fails"]
    fails[(fails == 0) & (state.cash[o] < -a.ops[o, O_LIQUIDITY])] = CAUSE_LIQUIDITY
    first = alive & found["breach"] & (state.first_breach[o] == NEVER)
    state.first_breach[o, first] = t
    # the operator's DSCR over its window (the lowest in tested months), LTV over its facilities
    w0 = max(t - int(a.ops[o, O_WINDOW]), 0)
    e_w = state.cum_e[o, t] - state.cum_e[o, w0]
    d_w = state.cum_ds[o, t] - state.cum_ds[o, w0]
    has_dscr = alive & (d_w > 0.0)
    dscr = e_w / d_w
    low = has_dscr & found["tested"]
    state.tested[o] |= low
    state.min_dscr[o, low] = np.minimum(state.min_dscr[o, low], dscr[low])
    out, value = found["out"], found["value"]
    defaulted = alive & (fails > 0)
    values = {
        "cash": state.cash[o],
        "ebitda": ebitda,
        "dscr": dscr,
        "ltv": np.where(value > 0.0, out / value, np.inf),
        "has_dscr": has_dscr,
        "has_ltv": alive & (out > 0.0),
        "breach": found["breach"],
        "first_breach": first,
        "default": defaulted,
    }
    record_month(stats, o, t, alive, values, fan)
    state.default_month[o, defaulted] = t
    state.cause[o, defaulted] = fails[defaulted]
    for f in series.facs_of[o]:
        claim = defaulted & (state.out[f] > 0.0)  # a repaid loan's GPUs are not sold
        state.ead[f, claim] = state.out[f, claim]
        state.sell_from[f, claim] = t + 1


def _fire_sales(
    a: FinanceArrays, series: FinanceSeries, state: _State, t: int, price: np.ndarray
) -> None:
    """Lenders' sales in month t (equal parts after the default month), then the impact J."""
    fac, path = a.facilities, np.arange(price.shape[1])
    sold = np.zeros_like(price)
    for f in range(fac.shape[0]):
        n_sales = int(fac[f, F_LIQ_MONTHS])
        sell_from = state.sell_from[f]
        selling = (sell_from <= t) & (t < sell_from + n_sales)
        if not selling.any():
            continue
        at_default = np.minimum(sell_from - 1, t)
        for g in series.gens_of[f]:
            sale = series.units[f, g][at_default, path] * selling / n_sales
            state.proceeds[f] += sale * (1.0 - fac[f, F_DISCOUNT]) * price[g]
            sold[g] += sale
    state.impact = state.impact * a.gens[:, G_DECAY, None] + a.gens[:, G_IMPACT, None] * sold


def _sales_after(a: FinanceArrays, series: FinanceSeries, state: _State, horizon: int) -> None:
    """Lenders' sales after the horizon, at the month-T price."""
    fac = a.facilities
    price = _prices(a, series.resale[:, horizon], state.impact, horizon)
    path = np.arange(price.shape[1])
    for f in range(fac.shape[0]):
        n_sales = int(fac[f, F_LIQ_MONTHS])
        sell_from = state.sell_from[f]
        left = sell_from + n_sales - (horizon + 1)
        late = (sell_from <= horizon + 1) & (left > 0)
        if not late.any():
            continue
        at_default = np.minimum(sell_from - 1, horizon)
        share = (1.0 - fac[f, F_DISCOUNT]) / n_sales * left * late
        for g in series.gens_of[f]:
            state.proceeds[f] += series.units[f, g][at_default, path] * share * price[g]
