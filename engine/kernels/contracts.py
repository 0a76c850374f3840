"""The demand side of a group of paths: customer defaults, contract revenue.

Run by engine/kernels/demand_kernel.py after the market kernel, on the paths'
AI-demand factor and GPU rents by month (written by the market kernel, lanes
innermost) and their energization months. :func:`path_draws` draws one path's
numbers (its customers' default months, two uniforms per contract);
:func:`contract_group` then runs every contract of a group of ``GROUP`` paths,
month by month across the lanes (vectorised: each lane's arithmetic is the
same as a loop over its own months, so the statistics do not depend on the
grouping). Order of events (docs/model.md §9.1), the same on every path:

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
    GROUP,
    K_RECOVERY,
    L_DELIVER,
    L_END,
    L_FREED,
    L_TERM_END,
    NEVER_MONTH,
    default_months_scaled,
)
from engine.market_layout import HOURS_PER_MONTH
from engine.rng import next_uniform, seed_stream

__all__ = [
    "C_CUSTOMER",
    "GROUP",
    "N_CONTRACT_FIELDS",
    "N_CONTRACT_SUMS",
    "N_CUSTOMER_FIELDS",
    "N_LANE_F",
    "N_LANE_I",
    "contract_group",
    "path_draws",
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
#: Months from a customer's default to the recovery's payment (E: about a year in
#: bankruptcy; docs/model.md §10.1).
RECOVERY_LAG_MONTHS = 12
# per-lane slots of contract_group's flat scratch (offsets: slot x GROUP)
LF_RUN, LF_TOTAL, LF_RELET, LF_WOULD, LF_AFTER, LF_NONRENEWAL, LF_KEEP, LF_LEFT = (
    k * GROUP for k in range(8)
)
N_LANE_F = 8
LI_DELIVER, LI_END, LI_TERM_END, LI_STOP, LI_FREED, LI_BEYOND, LI_TAU, LI_RENEWING, LI_ENDED = (
    k * GROUP for k in range(9)
)
N_LANE_I = 9


@njit(cache=True)
def path_draws(
    seed: np.uint64,
    path: np.uint64,
    demand: np.ndarray,
    rng: np.ndarray,
    customers: np.ndarray,
    n_ctr: int,
    dsc: np.ndarray,
    streams: np.ndarray,
    scales: np.ndarray,
    default_month: np.ndarray,
    g_tau: np.ndarray,
    g_u: np.ndarray,
    lane: int,
) -> None:
    """Seed one path's demand-side streams and draw its customers and contracts.

    Parameters
    ----------
    seed, path : numpy.uint64
        Run seed and global path id.
    demand : numpy.ndarray
        ``float64[T + 1]`` the path's AI-demand factor.
    rng : numpy.ndarray
        ``uint64[4, K + C + 1 + F]`` generator states, seeded here (the streams
        after the contracts' are the finance's: read by the caller).
    customers, dsc, streams : numpy.ndarray
        Lowered demand side (:mod:`engine.demand_arrays`).
    scales : numpy.ndarray
        ``float64[K, T + 1]`` each customer's noise scale by month
        (:func:`engine.kernels.contract_records.latent_scales`).
    default_month : numpy.ndarray
        ``int64[K]`` scratch.
    g_tau, g_u : numpy.ndarray
        ``int64[K, GROUP]`` written in lane ``lane`` with each customer's default
        month (``NEVER_MONTH``: none by T); ``float64[C, 2, GROUP]`` with each
        contract's termination and renewal uniforms.
    """
    n_cust = customers.shape[0]
    for j in range(streams.shape[0]):
        seed_stream(rng, j, seed, path, streams[j])
    default_month[:] = NEVER_MONTH
    if dsc[D_ENABLED] > 0.5:
        default_months_scaled(rng, n_cust + n_ctr, demand, customers, dsc, scales, default_month)
    for k in range(n_cust):
        g_tau[k, lane] = default_month[k]
    for c in range(n_ctr):
        g_u[c, 0, lane] = next_uniform(rng, n_cust + c)
        g_u[c, 1, lane] = next_uniform(rng, n_cust + c)


@njit(cache=True, error_model="numpy")
def contract_group(
    b: int,
    n_active: int,
    g_months: np.ndarray,
    g_tau: np.ndarray,
    g_u: np.ndarray,
    fp: np.ndarray,
    customers: np.ndarray,
    contracts: np.ndarray,
    phase_start: np.ndarray,
    phase_index: np.ndarray,
    phase_gpus: np.ndarray,
    dsc: np.ndarray,
    caps: np.ndarray,
    planned_value: np.ndarray,
    ct_sums: np.ndarray,
    ct_hist: np.ndarray,
    cust_sums: np.ndarray,
    gpus: np.ndarray,
    lane_f: np.ndarray,
    lane_i: np.ndarray,
    earned_out: np.ndarray,
    relet_out: np.ndarray,
    credit_out: np.ndarray,
    state: np.ndarray,
    revenue: np.ndarray,
    cash: np.ndarray,
) -> None:
    """Simulate every contract of a group of paths (lanes ``0 .. n_active - 1``).

    Parameters
    ----------
    b, n_active : int
        Block of the partial results; lanes holding a path.
    g_months, g_tau, g_u : numpy.ndarray
        ``int64[P, GROUP]`` energization month of each phase (> T: never; also
        for lanes without a path), and the draws of :func:`path_draws`.
    fp : numpy.ndarray
        ``float64[channels, T + 1, GROUP]`` the group's market channels: AI-demand
        factor, then each generation's rent ($/GPU-hr).
    customers ... planned_value
        Lowered demand side (:mod:`engine.demand_arrays`). ``caps``: each
        contract's largest revenue over the horizon, each scope's (total, then
        operators) largest monthly revenue and planned revenue over the horizon
        (the histogram ranges and the base of the lost share), in $.
    ct_sums, ct_hist, cust_sums : numpy.ndarray
        Block partial statistics (:class:`engine.demand_stats.DemandStats`).
    gpus, lane_f, lane_i : numpy.ndarray
        Scratch: ``float64[T + 2, GROUP]`` (GPUs energized by month; zero on
        entry, left zero), and flat
        ``float64[N_LANE_F GROUP]`` and ``int64[N_LANE_I GROUP]`` (per-lane sums
        and months at constant offsets ``LF_*`` and ``LI_*``).
    earned_out, relet_out, credit_out : numpy.ndarray
        Scratch ``float64[T + 1, GROUP]`` each: a contract's revenue by month,
        with re-letting, and its prepayment credits (separate arrays: stores to
        one array at run-time offsets keep LLVM from vectorising the loop).
    state : numpy.ndarray
        ``int64[4, C, GROUP]`` written: each contract's first month of service,
        last month, first month re-let and end of the original term (``L_*``),
        for the backlog (:func:`engine.kernels.contract_records.concentration`).
    revenue : numpy.ndarray
        ``float64[O + 1, 2, T + 1, GROUP]`` written: revenue by scope (total,
        then each operator), without and with re-letting, by month ($).
    cash : numpy.ndarray
        ``float64[O, T + 2, GROUP]`` written: the contracts' other cash by
        operator and month: prepayments received, credited and refunded,
        customers' default recoveries ($).
    """
    horizon = fp.shape[1] - 1
    enabled = dsc[D_ENABLED] > 0.5
    relet_u = dsc[D_RELET]
    revenue[:] = 0.0
    cash[:] = 0.0
    for c in range(contracts.shape[0]):
        k = int(contracts[c, C_CUSTOMER])
        g = int(contracts[c, C_GENERATION])
        op = int(contracts[c, C_OPERATOR])
        price, top, rate = contracts[c, C_PRICE], contracts[c, C_TOP], contracts[c, C_RATE]
        start, term = int(contracts[c, C_START]), int(contracts[c, C_TERM])
        grace = int(contracts[c, C_GRACE])
        renew_term = int(contracts[c, C_RENEW_TERM])
        prepay = contracts[c, C_PREPAY]
        decision = start + grace + 1
        gpus_total = 0.0
        for j in range(phase_start[c], phase_start[c + 1]):
            gpus_total += phase_gpus[j]
        prepaid = prepay * gpus_total * rate * term
        # GPUs in service by month: a difference array over the phases, per lane
        # (zero on entry; cleared again after the month loop)
        for lane in range(n_active):
            first = NEVER_MONTH
            for j in range(phase_start[c], phase_start[c + 1]):
                m = g_months[phase_index[j], lane]
                first = min(first, m)
                if m <= horizon:
                    gpus[m, lane] += phase_gpus[j]
            # -- the contract's course on this path (decided once)
            late = first - start - grace  # months late beyond the grace period
            start_lane = max(start, first)
            terminated = False
            k_tau = g_tau[k, lane]
            if late > 0:
                ct_sums[b, c, S_LATE] += 1
                # a customer that defaulted before the grace period ended cannot terminate
                alive = k_tau > decision
                drawn = g_u[c, 0, lane] < contracts[c, C_Q_TERM]
                if enabled and alive and decision <= horizon and drawn:
                    terminated = True
                    ct_sums[b, c, S_TERMINATED] += 1
            last_term = start_lane + term - 1
            if k_tau <= horizon:
                ct_sums[b, c, S_DEFAULTED] += 1
            renewed = False
            may_renew = not terminated and last_term < horizon and k_tau > last_term
            if may_renew:
                p_renew = contracts[c, C_RENEW_P]
                r_end = fp[1 + g, last_term, lane]
                if enabled and r_end < price:
                    p_renew *= (r_end / price) ** contracts[c, C_RENEW_S]
                renewed = g_u[c, 1, lane] < p_renew
                if renewed:
                    ct_sums[b, c, S_RENEWED] += 1
            last = last_term + (renew_term if renewed else 0)
            first_out = start_lane if terminated else min(last + 1, k_tau)
            freed = decision if terminated else first_out  # first month re-let
            lane_i[LI_DELIVER + lane], lane_i[LI_END + lane] = start_lane, last
            lane_i[LI_TERM_END + lane] = last_term
            lane_i[LI_STOP + lane] = first_out  # first month without service
            lane_i[LI_FREED + lane], lane_i[LI_BEYOND + lane] = freed, late
            lane_i[LI_TAU + lane] = k_tau
            lane_i[LI_RENEWING + lane] = 1 if may_renew and not renewed else 0
            lane_i[LI_ENDED + lane] = 1 if terminated else 0
            discount = contracts[c, C_DISCOUNT] if late > 0 and not terminated else 0.0
            lane_f[LF_KEEP + lane] = 1.0 - discount
            state[L_DELIVER, c, lane], state[L_END, c, lane] = start_lane, last
            state[L_FREED, c, lane], state[L_TERM_END, c, lane] = freed, last_term
            # contract cash besides revenue: the prepayment (month 1), credited
            # against the invoices of service months, refunded on termination
            lane_f[LF_LEFT + lane] = 0.0 if terminated else prepaid
            cash[op, 1, lane] += prepaid
            if terminated and decision <= horizon:
                cash[op, decision, lane] -= prepaid
        for j in range(LF_RUN, LF_KEEP):  # the sums (not KEEP and LEFT)
            lane_f[j] = 0.0
        # -- month by month, across the lanes: flat lane buffers (constant offsets,
        # provably disjoint) so that the loop vectorises; every load unconditional
        # and conditions combined with & (no short-circuit branches), so that it
        # needs no masked loads or stores (slow on AVX2 machines without AVX-512)
        rent = fp[1 + g]
        for t in range(1, horizon + 1):
            for lane in range(GROUP):
                run = lane_f[LF_RUN + lane] + gpus[t, lane]
                lane_f[LF_RUN + lane] = run
                deliver, end = lane_i[LI_DELIVER + lane], lane_i[LI_END + lane]
                term_end, stop = lane_i[LI_TERM_END + lane], lane_i[LI_STOP + lane]
                beyond, tau = lane_i[LI_BEYOND + lane], lane_i[LI_TAU + lane]
                renewing, freed = lane_i[LI_RENEWING + lane] > 0, lane_i[LI_FREED + lane]
                keep, left = lane_f[LF_KEEP + lane], lane_f[LF_LEFT + lane]
                v = run * rate
                in_service = (deliver <= t) & (t <= end)
                late = in_service & (t - deliver < beyond)
                v *= keep if late else 1.0
                lane_f[LF_WOULD + lane] += v if in_service & (t <= term_end) else 0.0
                serving = in_service & (t < stop)
                earned = v if serving else 0.0
                lost = in_service & (not serving) & (t >= tau)
                lane_f[LF_AFTER + lane] += v if lost else 0.0
                not_renewed = (
                    (not in_service) & renewing & (term_end < t) & (t <= term_end + renew_term)
                )
                lane_f[LF_NONRENEWAL + lane] += v if not_renewed else 0.0
                lane_f[LF_TOTAL + lane] += earned
                owed = min(prepay * earned, left)
                credit = owed if (left > 0.0) & (earned > 0.0) else 0.0
                lane_f[LF_LEFT + lane] = left - credit
                relet_value = run * HOURS_PER_MONTH * rent[t, lane] * relet_u
                r = relet_value if t >= freed else 0.0
                lane_f[LF_RELET + lane] += r
                earned_out[t, lane] = earned
                relet_out[t, lane] = earned + r
                credit_out[t, lane] = credit
        for lane in range(n_active):
            for j in range(phase_start[c], phase_start[c + 1]):
                m = g_months[phase_index[j], lane]
                if m <= horizon:
                    gpus[m, lane] = 0.0
        # the month's revenue by scope and the credits, contract by contract
        for t in range(1, horizon + 1):
            for lane in range(GROUP):
                revenue[0, 0, t, lane] += earned_out[t, lane]
            for lane in range(GROUP):
                revenue[0, 1, t, lane] += relet_out[t, lane]
            for lane in range(GROUP):
                revenue[1 + op, 0, t, lane] += earned_out[t, lane]
            for lane in range(GROUP):
                revenue[1 + op, 1, t, lane] += relet_out[t, lane]
            for lane in range(GROUP):
                cash[op, t, lane] -= credit_out[t, lane]
        # -- the contract's statistics, per path
        n_bins = ct_hist.shape[2]
        unit = caps[c] * 1e-5 if caps[c] > 0.0 else 1.0
        for lane in range(n_active):
            total = lane_f[LF_TOTAL + lane]
            would_term = lane_f[LF_WOULD + lane]
            ct_sums[b, c, S_LOST_LATE] += _whole(planned_value[c] - would_term)
            if lane_i[LI_ENDED + lane] > 0:
                ct_sums[b, c, S_LOST_TERMINATION] += _whole(would_term)
                ct_sums[b, c, S_REFUND] += _whole(prepay * (gpus_total * rate * term))
            k_tau, end = lane_i[LI_TAU + lane], lane_i[LI_END + lane]
            if k_tau <= horizon and lane_i[LI_ENDED + lane] == 0 and k_tau <= end:
                per_month = customers[k, K_RECOVERY] * gpus_total * HOURS_PER_MONTH * price * top
                first_lost = max(k_tau, lane_i[LI_DELIVER + lane])
                recovery = per_month * max(end - first_lost + 1, 0)
                # the loss within the horizon is net of the recovery for those months only
                within = per_month * max(min(end, horizon) - first_lost + 1, 0)
                ct_sums[b, c, S_LOST_DEFAULT] += _whole(lane_f[LF_AFTER + lane] - within)
                ct_sums[b, c, S_RECOVERY] += _whole(recovery)
                if k_tau + RECOVERY_LAG_MONTHS <= horizon:
                    cash[op, k_tau + RECOVERY_LAG_MONTHS, lane] += recovery
            ct_sums[b, c, S_LOST_NONRENEWAL] += _whole(lane_f[LF_NONRENEWAL + lane])
            ct_sums[b, c, S_REVENUE] += _whole(total)
            # squared deviation from the planned revenue, in units of (cap x 1e-5)^2
            ct_sums[b, c, S_REVENUE_SQ] += _whole(((total - planned_value[c]) / unit) ** 2)
            ct_sums[b, c, S_RELET] += _whole(lane_f[LF_RELET + lane])
            x = total / caps[c] * n_bins if caps[c] > 0.0 else 0.0
            ct_hist[b, c, min(max(int(x), 0), n_bins - 1)] += 1
            cust_sums[b, k, op] += _whole(total)
