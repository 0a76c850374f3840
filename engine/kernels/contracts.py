"""The demand side of one path: customer defaults, contract revenue, concentration.

Called by the market kernel for each path once its months are simulated, with
the path's AI-demand factor and GPU rents by month and its energization months.
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

import math

import numpy as np
from numba import njit, prange

from engine.kernels.aggregate import _month
from engine.kernels.factors import chi_square
from engine.market_arrays import HOURS_PER_MONTH
from engine.rng import next_normal, next_uniform, seed_stream

__all__ = [
    "C_CUSTOMER",
    "N_CONTRACT_FIELDS",
    "N_CONTRACT_SUMS",
    "N_CUSTOMER_FIELDS",
    "contract_path",
    "contract_statistics",
    "default_months",
]

# customer fields
K_THRESHOLD, K_SQRT_RHO, K_RHO, K_RECOVERY = 0, 1, 2, 3
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
) = range(15)
N_CONTRACT_FIELDS = 15
# demand scalars
D_ENABLED, D_STUDENT, D_NU, D_RELET, D_PHI, D_DEMAND_ON = range(6)
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
NEVER_MONTH = 1 << 30


@njit(cache=True)
def default_months(
    rng: np.ndarray,
    chi_row: int,
    demand: np.ndarray,
    customers: np.ndarray,
    dsc: np.ndarray,
    out: np.ndarray,
) -> None:
    """Write each customer's default month on one path (``NEVER_MONTH`` if none by T).

    Customer k defaults in the first month t with
    sqrt(rho) D_t + sqrt(1 - rho Var D_t) eps_t < c_k (Gaussian), the left side
    scaled by sqrt(nu / W_t) for the Student-t option; eps_t is a normal from
    column k of ``rng``, W_t a chi-square(nu) from column ``chi_row`` shared by the
    path's customers. Var D_t = 1 - phi^(2t) (demand from a fixed D_0; 0 if the
    demand factor is off), so the latent variable is N(0, 1) each month when
    D_0 = 0 and c_k = Phi^-1(monthly PD) gives each month's PD exactly.

    Parameters
    ----------
    rng : numpy.ndarray
        ``uint64[4, >= K]`` generator states (seeded).
    chi_row : int
        Column of the chi-square stream.
    demand : numpy.ndarray
        ``float64[T + 1]`` the path's AI-demand factor by month.
    customers, dsc : numpy.ndarray
        Lowered customers and demand scalars.
    out : numpy.ndarray
        ``int64[K]`` written.
    """
    horizon = demand.shape[0] - 1
    n_cust = customers.shape[0]
    out[:] = NEVER_MONTH
    alive = n_cust
    var_d = 0.0
    phi2 = dsc[D_PHI] * dsc[D_PHI]
    student = dsc[D_STUDENT] > 0.5
    for t in range(1, horizon + 1):
        if alive == 0:
            break
        if dsc[D_DEMAND_ON] > 0.5:
            var_d = phi2 * var_d + (1.0 - phi2)
        scale = 1.0
        if student:
            scale = math.sqrt(dsc[D_NU] / chi_square(rng, chi_row, dsc[D_NU]))
        for k in range(n_cust):
            if out[k] != NEVER_MONTH:
                continue
            rho = customers[k, K_RHO]
            eps = next_normal(rng, k)
            x = customers[k, K_SQRT_RHO] * demand[t] + math.sqrt(1.0 - rho * var_d) * eps
            if x * scale < customers[k, K_THRESHOLD]:
                out[k] = t
                alive -= 1


@njit(cache=True)
def contract_path(
    b: int,
    seed: np.uint64,
    path: np.uint64,
    months: np.ndarray,
    planned: np.ndarray,
    demand: np.ndarray,
    rent: np.ndarray,
    rng: np.ndarray,
    scratch: np.ndarray,
    customers: np.ndarray,
    contracts: np.ndarray,
    phase_start: np.ndarray,
    phase_index: np.ndarray,
    phase_gpus: np.ndarray,
    dsc: np.ndarray,
    streams: np.ndarray,
    caps: np.ndarray,
    ct_sums: np.ndarray,
    ct_hist: np.ndarray,
    rev_sums: np.ndarray,
    rev_hist: np.ndarray,
    conc_sums: np.ndarray,
    conc_hist: np.ndarray,
    cust_sums: np.ndarray,
    lost_hist: np.ndarray,
) -> None:
    """Simulate one path's customers and contracts and add its statistics to block ``b``.

    Parameters
    ----------
    b : int
        Block of the partial results.
    seed, path : numpy.uint64
        Run seed and global path id (the streams of the demand side).
    months, planned : numpy.ndarray
        ``int64[P]`` energization month of each phase on the path (> T: never)
        and planned month.
    demand, rent : numpy.ndarray
        ``float64[T + 1]`` AI-demand factor and ``float64[G, T + 1]`` rent of
        each generation ($/GPU-hr) on the path.
    rng, scratch : numpy.ndarray
        ``uint64[4, K + C + 1]`` generator states; ``float64[2 C + K, T + 1]`` scratch.
    customers, contracts, phase_start, phase_index, phase_gpus, dsc, streams, caps
        Lowered demand side (:mod:`engine.demand_arrays`). ``caps``: each
        contract's largest revenue over the horizon, each scope's (total, then
        operators) largest monthly revenue, each scope's planned revenue over
        the horizon (the histogram ranges and the base of the lost share), in $.
    ct_sums, ct_hist, rev_sums, rev_hist, conc_sums, conc_hist, cust_sums, lost_hist
        Block partial statistics (:class:`engine.demand_stats.DemandStats`).
    """
    horizon = demand.shape[0] - 1
    n_cust, n_ctr = customers.shape[0], contracts.shape[0]
    n_ops = conc_sums.shape[1]
    enabled = dsc[D_ENABLED] > 0.5
    for j in range(streams.shape[0]):
        seed_stream(rng, j, seed, path, streams[j])
    # 1. customer default months
    default_month = np.full(n_cust, NEVER_MONTH, dtype=np.int64)
    if enabled:
        default_months(rng, n_cust + n_ctr, demand, customers, dsc, default_month)
    # 2.-3. contracts: revenue by month (scratch rows: contract revenue, then re-let)
    revenue = scratch[:n_ctr]
    relet = scratch[n_ctr : 2 * n_ctr]
    backlog = scratch[2 * n_ctr : 2 * n_ctr + n_cust]  # backlog by customer (column 0)
    revenue[:, :] = 0.0
    relet[:, :] = 0.0
    end_month = np.zeros(n_ctr, dtype=np.int64)
    first_month = np.zeros(n_ctr, dtype=np.int64)
    stop_month = np.zeros(n_ctr, dtype=np.int64)  # first month without service (cut)
    full_rate = np.zeros(n_ctr)
    for c in range(n_ctr):
        u_term = next_uniform(rng, n_cust + c)
        u_renew = next_uniform(rng, n_cust + c)
        k = int(contracts[c, C_CUSTOMER])
        g = int(contracts[c, C_GENERATION])
        price, top, util = contracts[c, C_PRICE], contracts[c, C_TOP], contracts[c, C_UTIL]
        rate = HOURS_PER_MONTH * price * (top + (1.0 - top) * util)  # $ per GPU-month
        start, term = int(contracts[c, C_START]), int(contracts[c, C_TERM])
        grace = int(contracts[c, C_GRACE])
        gpus_total = 0.0
        first = NEVER_MONTH
        first_planned = NEVER_MONTH
        for j in range(phase_start[c], phase_start[c + 1]):
            p = phase_index[j]
            gpus_total += phase_gpus[j]
            first = min(first, months[p])
            first_planned = min(first_planned, planned[p])
        full_rate[c] = gpus_total * rate
        # planned revenue: phases at their planned months, term from the later of
        # start and the first planned phase
        d_plan = max(start, first_planned)
        planned_total = 0.0
        for t in range(d_plan, min(d_plan + term - 1, horizon) + 1):
            for j in range(phase_start[c], phase_start[c + 1]):
                if planned[phase_index[j]] <= t:
                    planned_total += phase_gpus[j] * rate
        late = first - start
        beyond = late - grace
        deliver = max(start, first)
        terminated = False
        decision = start + grace + 1
        if beyond > 0 and decision <= horizon:
            ct_sums[b, c, S_LATE] += 1
            if enabled and u_term < contracts[c, C_Q_TERM]:
                terminated = True
                ct_sums[b, c, S_TERMINATED] += 1
        elif beyond > 0:
            ct_sums[b, c, S_LATE] += 1  # late beyond grace only after the horizon
        term_end = deliver + term - 1
        renewed = False
        tau = default_month[k]
        if tau <= horizon:
            ct_sums[b, c, S_DEFAULTED] += 1
        if not terminated and term_end < horizon and tau > term_end:
            p_renew = contracts[c, C_RENEW_P]
            if enabled and rent[g, term_end] < price:
                p_renew *= (rent[g, term_end] / price) ** contracts[c, C_RENEW_S]
            renewed = u_renew < p_renew
        end = term_end + (int(contracts[c, C_RENEW_TERM]) if renewed else 0)
        if renewed:
            ct_sums[b, c, S_RENEWED] += 1
        stop = min(end + 1, tau)
        if terminated:
            stop = deliver  # never served
        first_month[c], end_month[c], stop_month[c] = deliver, end, stop
        discount = contracts[c, C_DISCOUNT] if (beyond > 0 and not terminated) else 0.0
        would_term, would_after_default, would_renewal = 0.0, 0.0, 0.0
        for t in range(deliver, min(end, horizon) + 1):
            gpus = 0.0
            for j in range(phase_start[c], phase_start[c + 1]):
                if months[phase_index[j]] <= t:
                    gpus += phase_gpus[j]
            value = gpus * rate
            if t - deliver < beyond:
                value *= 1.0 - discount
            if t <= term_end:
                would_term += value
            else:
                would_renewal += value
            if t < stop:
                revenue[c, t] = value
            elif t >= tau:
                would_after_default += value
        # re-let what is freed: after termination, default or the end of service
        freed_from = decision if terminated else stop
        if contracts.shape[0] > 0:
            for t in range(max(freed_from, 1), horizon + 1):
                gpus = 0.0
                for j in range(phase_start[c], phase_start[c + 1]):
                    if months[phase_index[j]] <= t:
                        gpus += phase_gpus[j]
                relet[c, t] = gpus * HOURS_PER_MONTH * rent[g, t] * dsc[D_RELET]
        total = 0.0
        for t in range(1, horizon + 1):
            total += revenue[c, t]
        recovery = 0.0
        if tau <= horizon and not terminated and tau <= end:
            remaining = max(end - max(tau, deliver) + 1, 0)
            recovery = customers[k, K_RECOVERY] * gpus_total * HOURS_PER_MONTH * price * top
            recovery *= remaining
            ct_sums[b, c, S_LOST_DEFAULT] += np.int64(would_after_default - recovery + 0.5)
            ct_sums[b, c, S_RECOVERY] += np.int64(recovery + 0.5)
        if terminated:
            ct_sums[b, c, S_LOST_TERMINATION] += np.int64(would_term + 0.5)
            value = gpus_total * rate * term
            ct_sums[b, c, S_REFUND] += np.int64(contracts[c, C_PREPAY] * value + 0.5)
        elif not renewed and term_end < horizon and tau > term_end:
            # renewal months the customer did not take (before re-letting)
            lost = 0.0
            for t in range(
                term_end + 1, min(term_end + int(contracts[c, C_RENEW_TERM]), horizon) + 1
            ):
                gpus = 0.0
                for j in range(phase_start[c], phase_start[c + 1]):
                    if months[phase_index[j]] <= t:
                        gpus += phase_gpus[j]
                lost += gpus * rate
            ct_sums[b, c, S_LOST_NONRENEWAL] += np.int64(lost + 0.5)
        if not terminated:
            ct_sums[b, c, S_LOST_LATE] += np.int64(planned_total - would_term + 0.5)
        ct_sums[b, c, S_REVENUE] += np.int64(total + 0.5)
        ct_sums[b, c, S_REVENUE_SQ] += np.int64((total * 1e-6) ** 2 + 0.5)
        relet_total = 0.0
        for t in range(1, horizon + 1):
            relet_total += relet[c, t]
        ct_sums[b, c, S_RELET] += np.int64(relet_total + 0.5)
        n_bins = ct_hist.shape[2]
        x = total / caps[c] * n_bins if caps[c] > 0.0 else 0.0
        ct_hist[b, c, min(max(int(x), 0), n_bins - 1)] += 1
        cust_sums[b, k] += np.int64(total + 0.5)
    _by_operator(
        b,
        contracts,
        revenue,
        relet,
        first_month,
        end_month,
        stop_month,
        full_rate,
        caps,
        backlog,
        n_ops,
        rev_sums,
        rev_hist,
        conc_sums,
        conc_hist,
        lost_hist,
    )


@njit(cache=True, inline="always")
def _by_operator(
    b: int,
    contracts: np.ndarray,
    revenue: np.ndarray,
    relet: np.ndarray,
    first_month: np.ndarray,
    end_month: np.ndarray,
    stop_month: np.ndarray,
    full_rate: np.ndarray,
    caps: np.ndarray,
    backlog: np.ndarray,
    n_ops: int,
    rev_sums: np.ndarray,
    rev_hist: np.ndarray,
    conc_sums: np.ndarray,
    conc_hist: np.ndarray,
    lost_hist: np.ndarray,
) -> None:
    """Revenue by month per scope (total, operators), concentration of backlog, lost share."""
    horizon = revenue.shape[1] - 1
    n_ctr = contracts.shape[0]
    n_bins = rev_hist.shape[4]
    n_cbins = conc_hist.shape[4]
    for s in range(n_ops + 1):
        realised = 0.0
        for t in range(1, horizon + 1):
            plain, with_relet = 0.0, 0.0
            for c in range(n_ctr):
                if s == 0 or int(contracts[c, C_OPERATOR]) == s - 1:
                    plain += revenue[c, t]
                    with_relet += revenue[c, t] + relet[c, t]
            realised += plain
            cap = caps[n_ctr + s]
            for v in range(2):
                value = plain if v == 0 else with_relet
                rev_sums[b, s, v, t] += np.int64(value + 0.5)
                x = value / cap * n_bins if cap > 0.0 else 0.0
                rev_hist[b, s, v, t, min(max(int(x), 0), n_bins - 1)] += 1
        planned = caps[n_ctr + n_ops + 1 + s]
        lost = 1.0 - realised / planned if planned > 0.0 else 0.0
        n_lbins = lost_hist.shape[2]
        lost_hist[b, s, min(max(int(lost * n_lbins), 0), n_lbins - 1)] += 1
    # concentration of backlog (remaining contracted value) by operator and month
    n_cust_max = backlog.shape[0]
    for o in range(n_ops):
        for t in range(1, horizon + 1):
            for k in range(n_cust_max):
                backlog[k, 0] = 0.0
            total = 0.0
            for c in range(n_ctr):
                if int(contracts[c, C_OPERATOR]) != o or t >= stop_month[c]:
                    continue
                left = end_month[c] - max(t, first_month[c]) + 1
                if left <= 0:
                    continue
                k = int(contracts[c, C_CUSTOMER])
                value = full_rate[c] * left
                backlog[k, 0] += value
                total += value
            if total <= 0.0:
                continue
            hhi, top1 = 0.0, 0.0
            for k in range(n_cust_max):
                share = backlog[k, 0] / total
                hhi += share * share
                top1 = max(top1, share)
            conc_sums[b, o, 0, t] += np.int64(hhi * 1e6 + 0.5)
            conc_sums[b, o, 1, t] += np.int64(top1 * 1e6 + 0.5)
            conc_sums[b, o, 2, t] += np.int64(1e6 / hhi + 0.5)
            conc_sums[b, o, 3, t] += 1
            conc_hist[b, o, 0, t, min(int(hhi * n_cbins), n_cbins - 1)] += 1
            conc_hist[b, o, 1, t, min(int(top1 * n_cbins), n_cbins - 1)] += 1


@njit(cache=True, parallel=True)
def contract_statistics(
    seed: np.uint64,
    path0: np.uint64,
    energization: np.ndarray,
    factor_paths: np.ndarray,
    planned: np.ndarray,
    customers: np.ndarray,
    contracts: np.ndarray,
    phase_start: np.ndarray,
    phase_index: np.ndarray,
    phase_gpus: np.ndarray,
    dsc: np.ndarray,
    streams: np.ndarray,
    caps: np.ndarray,
    n_blocks: int,
    ct_sums: np.ndarray,
    ct_hist: np.ndarray,
    rev_sums: np.ndarray,
    rev_hist: np.ndarray,
    conc_sums: np.ndarray,
    conc_hist: np.ndarray,
    cust_sums: np.ndarray,
    lost_hist: np.ndarray,
) -> None:
    """Add the demand-side statistics of paths ``path0 .. path0 + n - 1``.

    Parameters
    ----------
    seed, path0 : numpy.uint64
        Run seed and global id of the first path.
    energization : numpy.ndarray
        ``float64[n, P]`` energization times (months) of the paths.
    factor_paths : numpy.ndarray
        ``float64[n, 1 + G, T + 1]`` the paths' AI-demand factor and each
        generation's rent ($/GPU-hr) by month, from the market kernel.
    planned : numpy.ndarray
        ``int64[P]`` planned energization month of each phase.
    customers ... caps
        Lowered demand side (:class:`engine.demand_arrays.DemandArrays`).
    n_blocks : int
        Independent partial results (any value: the same statistics).
    ct_sums ... lost_hist
        Statistics (:class:`engine.demand_stats.DemandStats`), accumulated.
    """
    n_paths, n_phases = energization.shape
    horizon = factor_paths.shape[2] - 1
    n_cust, n_ctr = customers.shape[0], contracts.shape[0]
    b_ct_sums = np.zeros((n_blocks,) + ct_sums.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_ct_hist = np.zeros((n_blocks,) + ct_hist.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_rev_sums = np.zeros((n_blocks,) + rev_sums.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_rev_hist = np.zeros((n_blocks,) + rev_hist.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_conc_sums = np.zeros((n_blocks,) + conc_sums.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_conc_hist = np.zeros((n_blocks,) + conc_hist.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_cust_sums = np.zeros((n_blocks,) + cust_sums.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_lost_hist = np.zeros((n_blocks,) + lost_hist.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    per_block = (n_paths + n_blocks - 1) // n_blocks
    for b in prange(n_blocks):
        rng = np.zeros((4, streams.shape[0]), dtype=np.uint64)
        scratch = np.zeros((2 * n_ctr + n_cust, horizon + 1))
        months = np.empty(n_phases, dtype=np.int64)
        for i in range(b * per_block, min(n_paths, (b + 1) * per_block)):
            for p in range(n_phases):
                months[p] = _month(energization[i, p], horizon)
            contract_path(
                b,
                seed,
                path0 + np.uint64(i),
                months,
                planned,
                factor_paths[i, 0],
                factor_paths[i, 1:],
                rng,
                scratch,
                customers,
                contracts,
                phase_start,
                phase_index,
                phase_gpus,
                dsc,
                streams,
                caps,
                b_ct_sums,
                b_ct_hist,
                b_rev_sums,
                b_rev_hist,
                b_conc_sums,
                b_conc_hist,
                b_cust_sums,
                b_lost_hist,
            )
    for b in range(n_blocks):
        ct_sums += b_ct_sums[b]
        ct_hist += b_ct_hist[b]
        rev_sums += b_rev_sums[b]
        rev_hist += b_rev_hist[b]
        conc_sums += b_conc_sums[b]
        conc_hist += b_conc_hist[b]
        cust_sums += b_cust_sums[b]
        lost_hist += b_lost_hist[b]
