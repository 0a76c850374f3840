"""The demand side in plain vectorised NumPy: customer defaults, contracts, their statistics.

Same model as :func:`engine.kernels.contract_records.default_months` and
:func:`engine.kernels.contracts.contract_group` (docs/model.md §9.1): each
customer defaults in the first month its latent variable
sqrt(rho) D_t + sqrt(1 - rho Var D_t) eps falls below its threshold; each
contract's delivery from its phases' energization months, late delivery
(termination at the end of the grace period, or a discount), renewal against
the market rent, revenue, re-letting of freed capacity, and the contract cash
besides revenue (prepayment received in month 1, credited against invoices,
refunded on termination; the recovery of a default paid 12 months later).

Written the way one would write it without numba: the loops run over the
book's contracts, customers and operators (a few each), every operation runs on
``[months, paths]`` arrays of a chunk's paths at once. The statistics are
accumulated into the engine's own :class:`engine.demand_stats.DemandStats`
arrays (same layout, bins and fixed-point units), so its table methods apply.
The random numbers come from a ``numpy.random.Generator``: the results agree
with the engine in distribution, not bit for bit (the customers' normals are
drawn for every month, also after a default, which does not change the law).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.demand_arrays import DemandArrays
from engine.demand_stats import DemandStats
from engine.kernels.contract_records import (
    D_DEMAND_ON,
    D_ENABLED,
    D_NU,
    D_PHI,
    D_RELET,
    D_STUDENT,
    K_RECOVERY,
    K_RHO,
    K_SQRT_RHO,
    K_THRESHOLD,
    LOST_SHARES,
    NEVER_MONTH,
)
from engine.kernels.contracts import (
    C_CUSTOMER,
    C_DISCOUNT,
    C_GENERATION,
    C_GRACE,
    C_OPERATOR,
    C_PREPAY,
    C_PRICE,
    C_Q_TERM,
    C_RATE,
    C_RENEW_P,
    C_RENEW_S,
    C_RENEW_TERM,
    C_START,
    C_TERM,
    C_TOP,
    RECOVERY_LAG_MONTHS,
    S_DEFAULTED,
    S_LATE,
    S_LOST_DEFAULT,
    S_LOST_LATE,
    S_LOST_NONRENEWAL,
    S_LOST_TERMINATION,
    S_RECOVERY,
    S_REFUND,
    S_RELET,
    S_RENEWED,
    S_REVENUE,
    S_REVENUE_SQ,
    S_TERMINATED,
)
from engine.market_layout import HOURS_PER_MONTH

__all__ = ["DemandPaths", "add_demand", "default_months"]


@dataclass
class DemandPaths:
    """What the finance needs from one chunk's demand side, paths last.

    Attributes
    ----------
    revenue : numpy.ndarray
        ``float64[O, 2, T + 1, n]`` contract revenue by operator and month
        (index 0: without re-letting, 1: with it), $; month 0 is zero.
    cash : numpy.ndarray
        ``float64[O, T + 2, n]`` the contracts' other cash by operator and month
        (prepayments received, credited and refunded; recoveries), $.
    customer_default : numpy.ndarray
        ``int64[K, n]`` each customer's default month (``NEVER_MONTH``: none).
    """

    revenue: np.ndarray
    cash: np.ndarray
    customer_default: np.ndarray


def _whole(x: np.ndarray) -> np.ndarray:
    """Nearest integers (half up), as ``int64``."""
    return np.floor(x + 0.5).astype(np.int64)


def _bins(x: np.ndarray, n_bins: int) -> np.ndarray:
    """``int(x)`` clamped to ``0 .. n_bins - 1`` (the kernels' linear bins)."""
    return np.clip(x, 0.0, n_bins - 1.0).astype(np.intp)


def default_months(demand: np.ndarray, a: DemandArrays, rng: np.random.Generator) -> np.ndarray:
    """Each customer's default month on every path (``NEVER_MONTH`` if none by T).

    Parameters
    ----------
    demand : numpy.ndarray
        ``float64[T + 1, n]`` the paths' AI-demand factor by month (unitless).
    a : DemandArrays
        Lowered demand side.
    rng : numpy.random.Generator
        Source of the normals (and of the Student-t chi-squares).

    Returns
    -------
    numpy.ndarray
        ``int64[K, n]`` default months.
    """
    horizon, n = demand.shape[0] - 1, demand.shape[1]
    n_cust = a.customers.shape[0]
    out = np.full((n_cust, n), NEVER_MONTH, dtype=np.int64)
    if n_cust == 0 or a.dsc[D_ENABLED] < 0.5:
        return out
    t = np.arange(1, horizon + 1)
    phi2 = a.dsc[D_PHI] ** 2
    var_d = 1.0 - phi2**t if a.dsc[D_DEMAND_ON] > 0.5 else np.zeros(horizon)
    x = rng.standard_normal((n_cust, horizon, n))
    x *= np.sqrt(1.0 - a.customers[:, K_RHO, None] * var_d)[:, :, None]
    x += a.customers[:, K_SQRT_RHO, None, None] * demand[None, 1:]
    if a.dsc[D_STUDENT] > 0.5:
        nu = a.dsc[D_NU]
        x *= np.sqrt(nu / rng.chisquare(nu, (horizon, n)))
    hit = x < a.customers[:, K_THRESHOLD, None, None]
    first = hit.argmax(axis=1)
    return np.where(hit.any(axis=1), first + 1, out)


def add_demand(
    stats: DemandStats,
    months: np.ndarray,
    demand: np.ndarray,
    rent: np.ndarray,
    rng: np.random.Generator,
) -> DemandPaths:
    """Simulate the demand side of one chunk's paths and add their statistics.

    Parameters
    ----------
    stats : DemandStats
        The engine's demand statistics (``DemandStats.create``): its ``arrays``
        are the inputs, its count and sum arrays are accumulated in place.
    months : numpy.ndarray
        ``int64[P, n]`` energization month of each phase (T + 1: not within T).
    demand, rent : numpy.ndarray
        ``float64[T + 1, n]`` AI-demand factor and ``float64[G, T + 1, n]`` each
        generation's rent ($/GPU-hr) by month.
    rng : numpy.random.Generator
        Source of every random number.

    Returns
    -------
    DemandPaths
        Revenue, other contract cash and customer defaults by path, for the finance.
    """
    a = stats.arrays
    horizon, n = demand.shape[0] - 1, demand.shape[1]
    n_ctr = a.contracts.shape[0]
    n_ops = stats.conc_sums.shape[0]
    enabled = a.dsc[D_ENABLED] > 0.5
    relet_u = a.dsc[D_RELET]
    tau_all = default_months(demand, a, rng)
    t = np.arange(1, horizon + 1)[:, None]  # months as a column: [T, 1]
    revenue = np.zeros((n_ops, 2, horizon + 1, n))
    cash = np.zeros((n_ops, horizon + 2, n))
    path = np.arange(n)
    # per contract, for the concentration: first service month, end, month freed, end
    # of the original term, contracted value per month
    live: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]] = []
    uniforms = rng.random((n_ctr, 2, n))
    for c in range(n_ctr):
        row = a.contracts[c]
        k, g, op = int(row[C_CUSTOMER]), int(row[C_GENERATION]), int(row[C_OPERATOR])
        price, rate = row[C_PRICE], row[C_RATE]
        start, term, grace = int(row[C_START]), int(row[C_TERM]), int(row[C_GRACE])
        renew_term = int(row[C_RENEW_TERM])
        # GPUs in service by month
        phases = slice(a.phase_start[c], a.phase_start[c + 1])
        own = months[a.phase_index[phases]]  # [J, n]
        take = a.phase_gpus[phases]
        gpus = np.zeros((horizon, n))
        for j in range(take.shape[0]):
            gpus += take[j] * (own[j] <= t)
        gpus_total = float(take.sum())
        first = own.min(axis=0)
        beyond = first - start - grace  # months late beyond the grace period
        late = beyond > 0
        deliver = np.maximum(start, first)
        decision = start + grace + 1
        tau = tau_all[k]
        u_term, u_renew = uniforms[c]
        if enabled and decision <= horizon:
            terminated = late & (tau > decision) & (u_term < row[C_Q_TERM])
        else:
            terminated = np.zeros(n, dtype=np.bool_)
        term_end = deliver + term - 1
        may_renew = ~terminated & (term_end < horizon) & (tau > term_end)
        p_renew = np.full(n, row[C_RENEW_P])
        if enabled:
            r_end = rent[g, np.minimum(term_end, horizon), path]
            cheap = r_end < price
            p_renew[cheap] *= (r_end[cheap] / price) ** row[C_RENEW_S]
        renewed = may_renew & (u_renew < p_renew)
        end = term_end + renew_term * renewed
        stop = np.where(terminated, deliver, np.minimum(end + 1, tau))
        freed = np.where(terminated, decision, stop)
        # revenue by month: service months, discounted while late
        value = gpus * rate
        in_service = (deliver <= t) & (t <= end)
        if row[C_DISCOUNT] > 0.0:
            discounted = in_service & (t - deliver < beyond) & (late & ~terminated)
            value *= 1.0 - row[C_DISCOUNT] * discounted
        earned = value * (in_service & (t < stop))
        would_term = (value * (in_service & (t <= term_end))).sum(axis=0)
        after_default = (value * (in_service & (t >= stop) & (t >= tau))).sum(axis=0)
        unrenewed = may_renew & ~renewed
        window = ~in_service & unrenewed & (t > term_end) & (t <= term_end + renew_term)
        nonrenewal = (value * window).sum(axis=0)
        total = earned.sum(axis=0)
        relet = gpus * (HOURS_PER_MONTH * relet_u) * rent[g, 1:] * (t >= freed)
        revenue[op, 0, 1:] += earned
        revenue[op, 1, 1:] += earned
        revenue[op, 1, 1:] += relet
        # contract cash: prepayment in month 1, credited against invoices, refunded
        prepay = row[C_PREPAY]
        prepaid = prepay * gpus_total * rate * term
        if prepaid > 0.0:
            cash[op, 1] += prepaid
            if decision <= horizon:
                cash[op, decision] -= prepaid * terminated
            left = np.where(terminated, 0.0, prepaid)
            credited = np.minimum(np.cumsum(prepay * earned, axis=0), left)
            cash[op, 1 : horizon + 1] -= np.diff(credited, axis=0, prepend=0.0)
        # default: the lost revenue net of the recovery within T; the recovery is paid later
        hit = (tau <= horizon) & ~terminated & (tau <= end)
        per_month = a.customers[k, K_RECOVERY] * gpus_total * HOURS_PER_MONTH * price * row[C_TOP]
        first_lost = np.maximum(tau, deliver)
        recovery = per_month * np.maximum(end - first_lost + 1, 0)
        within = per_month * np.maximum(np.minimum(end, horizon) - first_lost + 1, 0)
        paid = hit & (tau + RECOVERY_LAG_MONTHS <= horizon)
        cash[op, tau[paid] + RECOVERY_LAG_MONTHS, path[paid]] += recovery[paid]
        # the contract's sums and revenue histogram
        s = stats.ct_sums[c]
        s[S_LATE] += np.count_nonzero(late)
        s[S_TERMINATED] += np.count_nonzero(terminated)
        s[S_DEFAULTED] += np.count_nonzero(tau <= horizon)
        s[S_RENEWED] += np.count_nonzero(renewed)
        s[S_LOST_LATE] += _whole(a.planned_value[c] - would_term).sum()
        s[S_LOST_TERMINATION] += _whole(would_term[terminated]).sum()
        s[S_REFUND] += np.count_nonzero(terminated) * _whole(np.float64(prepaid))
        s[S_LOST_DEFAULT] += _whole((after_default - within)[hit]).sum()
        s[S_RECOVERY] += _whole(recovery[hit]).sum()
        s[S_LOST_NONRENEWAL] += _whole(nonrenewal).sum()
        whole_total = _whole(total)
        s[S_REVENUE] += whole_total.sum()
        cap = a.caps[c]
        unit = cap * 1e-5 if cap > 0.0 else 1.0
        s[S_REVENUE_SQ] += _whole(((total - a.planned_value[c]) / unit) ** 2).sum()
        s[S_RELET] += _whole(relet.sum(axis=0)).sum()
        n_bins = stats.ct_hist.shape[1]
        scale = n_bins / cap if cap > 0.0 else 0.0
        stats.ct_hist[c] += np.bincount(_bins(total * scale, n_bins), minlength=n_bins)
        stats.cust_sums[k, op] += whole_total.sum()
        live.append((op, k, deliver, end, freed, term_end, gpus_total * rate))
    _scope_revenue(stats, revenue, n_ctr)
    _concentration(stats, live, horizon, n)
    return DemandPaths(revenue, cash, tau_all)


def _scope_revenue(stats: DemandStats, revenue: np.ndarray, n_ctr: int) -> None:
    """Revenue sums and histograms by scope (total, operators) and month; lost shares."""
    a = stats.arrays
    n_ops, horizon = revenue.shape[0], revenue.shape[2] - 1
    n_bins = stats.rev_hist.shape[3]
    month_offset = (np.arange(horizon) * n_bins)[:, None]
    for s in range(n_ops + 1):
        scope = revenue.sum(axis=0) if s == 0 else revenue[s - 1]  # [2, T + 1, n]
        cap = a.caps[n_ctr + s]
        scale = n_bins / cap if cap > 0.0 else 0.0
        for v in range(2):
            value = scope[v, 1:]
            stats.rev_sums[s, v, 1:] += (value + 0.5).astype(np.int64).sum(axis=1)
            code = _bins(value * scale, n_bins) + month_offset
            counts = np.bincount(code.ravel(), minlength=horizon * n_bins)
            stats.rev_hist[s, v, 1:] += counts.reshape(horizon, n_bins)
        realised = scope[0].sum(axis=0)
        planned = a.caps[n_ctr + n_ops + 1 + s]
        for j, share in enumerate(LOST_SHARES):
            stats.lost_counts[s, j] += np.count_nonzero(realised < (1.0 - share) * planned)


def _concentration(
    stats: DemandStats,
    live: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]],
    horizon: int,
    n: int,
) -> None:
    """HHI, 1/HHI and top-1 share of each operator's backlog by customer and month.

    A contract's backlog at month t, while live (before the month it is freed):
    its value per month x the months left to the end of its original term, or
    of its renewal once decided (after the original term).
    """
    t = np.arange(1, horizon + 1)[:, None]
    n_bins = stats.conc_hist.shape[3]
    month_offset = (np.arange(horizon) * n_bins)[:, None]
    for o in range(stats.conc_sums.shape[0]):
        customers = sorted({k for op, k, *_ in live if op == o})
        total = np.zeros((horizon, n))
        squares = np.zeros((horizon, n))
        top = np.zeros((horizon, n))
        for k in customers:
            backlog = np.zeros((horizon, n))
            for op, kk, deliver, end, freed, term_end, per_month in live:
                if op != o or kk != k:
                    continue
                until = np.where(t <= term_end, term_end, end)
                left = until - np.maximum(t, deliver) + 1
                backlog += per_month * np.maximum(left, 0) * (t < freed)
            total += backlog
            squares += backlog * backlog
            np.maximum(top, backlog, out=top)
        has = total > 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            hhi = squares / (total * total)
            top1 = top / total
        sums = stats.conc_sums[o]
        sums[0, 1:] += np.where(has, (hhi * 1e6 + 0.5), 0.0).astype(np.int64).sum(axis=1)
        sums[1, 1:] += np.where(has, (top1 * 1e6 + 0.5), 0.0).astype(np.int64).sum(axis=1)
        sums[2, 1:] += np.where(has, (1e6 / hhi + 0.5), 0.0).astype(np.int64).sum(axis=1)
        sums[3, 1:] += has.sum(axis=1)
        for v, share in enumerate((hhi, top1)):
            code = np.minimum(share[has] * n_bins, n_bins - 1).astype(np.intp)
            code += np.broadcast_to(month_offset, has.shape)[has]
            counts = np.bincount(code, minlength=horizon * n_bins)
            stats.conc_hist[o, v, 1:] += counts.reshape(horizon, n_bins)
