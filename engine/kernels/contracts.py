"""The demand side of one path: customer defaults, contract revenue, concentration.

Run for each path by engine/kernels/demand_kernel.py after the market kernel,
on the path's AI-demand factor and GPU rents by month (written by the market
kernel) and its energization months.
Order of events (docs/model.md §9.1), the same on every path:

1. Each customer's default month: the first month t with
   X = sqrt(rho) D_t + b_t eps < c (Student-t: X scaled by sqrt(nu / W_t)),
   c = Phi^-1 (or t_nu^-1) of the monthly PD, b_t = sqrt(1 - rho Var D_t), one
   normal a month from the customer's stream (and one chi-square a month shared
   by the path's customers).
2. Each contract draws two uniforms from its stream: termination, renewal.
3. Month by month: service from first delivery for ``term`` months (renewed
   once at the term end with probability p_par min(1, R/P)^s), revenue
   GPUs in service x hours x price x (ToP + (1 - ToP) u), discounted for as many
   months as delivery was late beyond the grace period; a default stops it,
   a termination (decided when the grace period ends) prevents it; freed
   capacity is re-let at the market rent x the re-let utilisation.

Every statistic is an integer (counts, whole dollars, fixed-point shares).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.aggregate import _whole
from engine.kernels.contract_records import (
    D_ENABLED,
    D_RELET,
    K_RECOVERY,
    NEVER_MONTH,
    concentration,
    default_months,
    scope_revenue,
)
from engine.market_arrays import HOURS_PER_MONTH
from engine.rng import next_uniform, seed_stream

__all__ = [
    "C_CUSTOMER",
    "GROUP",
    "N_CONTRACT_FIELDS",
    "N_CONTRACT_SUMS",
    "N_CUSTOMER_FIELDS",
    "contract_path",
]

# customer fields: K_* (contract_records)
N_CUSTOMER_FIELDS = 4
# contract fields
(
    C_CUSTOMER,
    C_GENERATION,
    C_OPERATOR,
    C_PRICE,
    C_START,
    C_TERM,
    C_TOP,
    C_UTIL,
    C_PREPAY,
    C_GRACE,
    C_Q_TERM,
    C_DISCOUNT,
    C_RENEW_P,
    C_RENEW_S,
    C_RENEW_TERM,
    C_RATE,
) = range(16)
N_CONTRACT_FIELDS = 16
# demand scalars: D_* (contract_records)
# per-contract sums (counts, or whole $)
(
    S_LATE,
    S_TERMINATED,
    S_DEFAULTED,
    S_REVENUE,
    S_LOST_LATE,
    S_LOST_TERMINATION,
    S_LOST_DEFAULT,
    S_LOST_NONRENEWAL,
    S_RECOVERY,
    S_REFUND,
    S_RELET,
    S_RENEWED,
    S_REVENUE_SQ,
) = range(13)
N_CONTRACT_SUMS = 13
#: Paths whose histogram bins are added month by month together (cache locality).
GROUP = 64
#: Months from a customer's default to the recovery's payment (E: about a year in
#: bankruptcy; docs/model.md §10.1).
RECOVERY_LAG_MONTHS = 12


@njit(cache=True)
def contract_path(
    b: int,
    seed: np.uint64,
    path: np.uint64,
    months: np.ndarray,
    demand: np.ndarray,
    rent: np.ndarray,
    rng: np.ndarray,
    work: np.ndarray,
    iwork: np.ndarray,
    customers: np.ndarray,
    contracts: np.ndarray,
    phase_start: np.ndarray,
    phase_index: np.ndarray,
    phase_gpus: np.ndarray,
    dsc: np.ndarray,
    streams: np.ndarray,
    caps: np.ndarray,
    planned_value: np.ndarray,
    ct_sums: np.ndarray,
    ct_hist: np.ndarray,
    rev_sums: np.ndarray,
    rev_hist: np.ndarray,
    conc_sums: np.ndarray,
    conc_hist: np.ndarray,
    cust_sums: np.ndarray,
    lost_counts: np.ndarray,
    rev_bins: np.ndarray,
    conc_bins: np.ndarray,
    lane: int,
) -> None:
    """Simulate one path's customers and contracts and add its statistics to block ``b``.

    Parameters
    ----------
    b : int
        Block of the partial results.
    seed, path : numpy.uint64
        Run seed and global path id (the streams of the demand side).
    months : numpy.ndarray
        ``int64[P]`` energization month of each phase on the path (> T: never).
    demand, rent : numpy.ndarray
        ``float64[T + 1]`` AI-demand factor and ``float64[G, T + 1]`` rent of
        each generation ($/GPU-hr) on the path.
    rng : numpy.ndarray
        ``uint64[4, K + C + 1]`` generator states.
    work, iwork : numpy.ndarray
        Scratch: ``float64[C + 2 (O + 1) + K + O, T + 2]`` (GPUs in service by
        contract and month, and in column T + 1 the contract's value per month at
        full delivery; revenue by scope and month; backlog by customer; the
        contracts' other cash by operator: prepayments received, credited and
        refunded, recoveries) and
        ``int64[C + K, 6]`` (per contract: first month of service, last, first
        month out of the backlog, operator, customer, end of the original term;
        per customer: default month).
    customers, contracts, phase_start, phase_index, phase_gpus, dsc, streams, caps
        Lowered demand side (:mod:`engine.demand_arrays`). ``caps``: each
        contract's largest revenue over the horizon, each scope's (total, then
        operators) largest monthly revenue, each scope's planned revenue over
        the horizon (the histogram ranges and the base of the lost share), in $.
    planned_value : numpy.ndarray
        ``float64[C]`` each contract's revenue within the horizon with every
        phase energized at its planned month, $.
    ct_sums, ct_hist, rev_sums, rev_hist, conc_sums, conc_hist, cust_sums, lost_counts
        Block partial statistics (:class:`engine.demand_stats.DemandStats`).
    rev_bins, conc_bins, lane : numpy.ndarray, numpy.ndarray, int
        The path's histogram bins of revenue by scope and month, and of HHI and
        top-1 share by operator and month (-1: no backlog), written in row
        ``lane``: :func:`contract_statistics` adds them month by month for a group
        of paths, so that each month's histogram is fetched once per group.
    """
    horizon = demand.shape[0] - 1
    n_cust, n_ctr = customers.shape[0], contracts.shape[0]
    n_ops = conc_sums.shape[1]
    enabled = dsc[D_ENABLED] > 0.5
    relet_u = dsc[D_RELET]
    for j in range(streams.shape[0]):
        seed_stream(rng, j, seed, path, streams[j])
    # 1. customer default months
    default_month = iwork[n_ctr:, 0]
    default_month[:] = NEVER_MONTH
    if enabled:
        default_months(rng, n_cust + n_ctr, demand, customers, dsc, default_month)
    # 2.-3. contracts
    scope_row = n_ctr
    work[scope_row : scope_row + 2 * (n_ops + 1), :] = 0.0
    cash_row = scope_row + 2 * (n_ops + 1) + n_cust
    work[cash_row : cash_row + n_ops, :] = 0.0
    for c in range(n_ctr):
        u_term = next_uniform(rng, n_cust + c)
        u_renew = next_uniform(rng, n_cust + c)
        k = int(contracts[c, C_CUSTOMER])
        g = int(contracts[c, C_GENERATION])
        op = int(contracts[c, C_OPERATOR])
        price, top, rate = contracts[c, C_PRICE], contracts[c, C_TOP], contracts[c, C_RATE]
        start, term = int(contracts[c, C_START]), int(contracts[c, C_TERM])
        grace = int(contracts[c, C_GRACE])
        renew_term = int(contracts[c, C_RENEW_TERM])
        # GPUs in service by month: a difference array over the phases
        gpus = work[c]
        gpus[:] = 0.0
        gpus_total = 0.0
        first = NEVER_MONTH
        for j in range(phase_start[c], phase_start[c + 1]):
            m = months[phase_index[j]]
            gpus_total += phase_gpus[j]
            first = min(first, m)
            if m <= horizon:
                gpus[m] += phase_gpus[j]
        for t in range(1, horizon + 1):
            gpus[t] += gpus[t - 1]
        gpus[horizon + 1] = gpus_total * rate  # contracted value per month, for the backlog
        beyond = first - start - grace  # months late beyond the grace period
        deliver = max(start, first)
        decision = start + grace + 1
        terminated = False
        tau = default_month[k]
        if beyond > 0:
            ct_sums[b, c, S_LATE] += 1
            # a customer that defaulted before the grace period ended cannot terminate
            alive = tau > decision
            if enabled and alive and decision <= horizon and u_term < contracts[c, C_Q_TERM]:
                terminated = True
                ct_sums[b, c, S_TERMINATED] += 1
        term_end = deliver + term - 1
        if tau <= horizon:
            ct_sums[b, c, S_DEFAULTED] += 1
        renewed = False
        may_renew = not terminated and term_end < horizon and tau > term_end
        if may_renew:
            p_renew = contracts[c, C_RENEW_P]
            if enabled and rent[g, term_end] < price:
                p_renew *= (rent[g, term_end] / price) ** contracts[c, C_RENEW_S]
            renewed = u_renew < p_renew
            if renewed:
                ct_sums[b, c, S_RENEWED] += 1
        end = term_end + (renew_term if renewed else 0)
        stop = deliver if terminated else min(end + 1, tau)  # first month without service
        freed = decision if terminated else stop  # first month re-let
        # backlog: live until the termination decision or the stop; the renewal
        # counts only once decided (after the original term)
        iwork[c, 0], iwork[c, 1], iwork[c, 2] = deliver, end, freed
        iwork[c, 3], iwork[c, 4], iwork[c, 5] = op, k, term_end
        discount = contracts[c, C_DISCOUNT] if beyond > 0 and not terminated else 0.0
        # contract cash besides revenue: the prepayment (month 1), credited
        # against the invoices of service months, refunded on termination
        prepay = contracts[c, C_PREPAY]
        prepaid = prepay * gpus_total * rate * term
        left = 0.0 if terminated else prepaid
        cash = work[cash_row + op]
        cash[1] += prepaid
        if terminated and decision <= horizon:
            cash[decision] -= prepaid
        total, relet_total = 0.0, 0.0
        would_term, after_default, nonrenewal = 0.0, 0.0, 0.0
        for t in range(1, horizon + 1):
            v = gpus[t] * rate
            earned = 0.0
            if deliver <= t <= end:
                if t - deliver < beyond:
                    v *= 1.0 - discount
                if t <= term_end:
                    would_term += v
                if t < stop:
                    earned = v
                elif t >= tau:
                    after_default += v
            elif may_renew and not renewed and term_end < t <= term_end + renew_term:
                nonrenewal += v
            total += earned
            if left > 0.0 and earned > 0.0:
                credit = min(prepay * earned, left)
                left -= credit
                cash[t] -= credit
            r = gpus[t] * HOURS_PER_MONTH * rent[g, t] * relet_u if t >= freed else 0.0
            relet_total += r
            work[scope_row, t] += earned
            work[scope_row + 1, t] += earned + r
            work[scope_row + 2 * (1 + op), t] += earned
            work[scope_row + 2 * (1 + op) + 1, t] += earned + r
        ct_sums[b, c, S_LOST_LATE] += _whole(planned_value[c] - would_term)
        if terminated:
            ct_sums[b, c, S_LOST_TERMINATION] += _whole(would_term)
            value = gpus_total * rate * term
            ct_sums[b, c, S_REFUND] += _whole(contracts[c, C_PREPAY] * value)
        if tau <= horizon and not terminated and tau <= end:
            per_month = customers[k, K_RECOVERY] * gpus_total * HOURS_PER_MONTH * price * top
            first_lost = max(tau, deliver)
            recovery = per_month * max(end - first_lost + 1, 0)
            # the loss within the horizon is net of the recovery for those months only
            within = per_month * max(min(end, horizon) - first_lost + 1, 0)
            ct_sums[b, c, S_LOST_DEFAULT] += _whole(after_default - within)
            ct_sums[b, c, S_RECOVERY] += _whole(recovery)
            if tau + RECOVERY_LAG_MONTHS <= horizon:
                cash[tau + RECOVERY_LAG_MONTHS] += recovery
        ct_sums[b, c, S_LOST_NONRENEWAL] += _whole(nonrenewal)
        ct_sums[b, c, S_REVENUE] += _whole(total)
        # squared deviation from the planned revenue, in units of (cap x 1e-5)^2
        unit = caps[c] * 1e-5 if caps[c] > 0.0 else 1.0
        ct_sums[b, c, S_REVENUE_SQ] += _whole(((total - planned_value[c]) / unit) ** 2)
        ct_sums[b, c, S_RELET] += _whole(relet_total)
        n_bins = ct_hist.shape[2]
        x = total / caps[c] * n_bins if caps[c] > 0.0 else 0.0
        ct_hist[b, c, min(max(int(x), 0), n_bins - 1)] += 1
        cust_sums[b, k, op] += _whole(total)
    scope_revenue(
        b,
        work,
        scope_row,
        n_ctr,
        caps,
        n_ops,
        rev_sums,
        rev_bins,
        lane,
        rev_hist.shape[4],
        lost_counts,
    )
    concentration(
        b,
        contracts,
        work,
        iwork,
        default_month,
        n_ops,
        conc_sums,
        conc_bins,
        lane,
        conc_hist.shape[4],
    )
