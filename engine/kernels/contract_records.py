"""What the contract kernel records, and the customers' default months.

``default_months`` draws one path's customer defaults (docs/model.md §9.1 step
1). ``scope_revenue`` and ``concentration`` turn a group's revenue and backlog
(lanes innermost) into integer statistics: sums directly, histogram bins into
a group buffer that ``scatter_group`` adds month by month for the group's paths
(each month's histogram is then fetched once per group instead of once per
path).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.kernels.factors import chi_square
from engine.kernels.lanes import FIXED_MAGIC, LANES, fixed_total
from engine.kernels.prefetch import COUNTS_PER_LINE, prefetch_row
from engine.rng import next_normal

__all__ = [
    "LOST_SHARES",
    "concentration",
    "default_months",
    "default_months_scaled",
    "latent_scales",
    "scatter_group",
    "scope_revenue",
]

K_THRESHOLD, K_SQRT_RHO, K_RHO, K_RECOVERY = 0, 1, 2, 3
D_ENABLED, D_STUDENT, D_NU, D_RELET, D_PHI, D_DEMAND_ON = range(6)
#: Fields of ``dsc`` (engine/demand_arrays.py).
N_DSC = 6
NEVER_MONTH = 1 << 30
#: Per lane and contract, what the backlog needs (``state`` of contract_group).
L_DELIVER, L_END, L_FREED, L_TERM_END = range(4)
#: Paths simulated together, one per SIMD lane.
GROUP = LANES
#: Shares of the planned revenue whose loss is counted (revenue_risk).
LOST_SHARES = (0.25, 0.5, 0.75)


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
    default_months_scaled(
        rng, chi_row, demand, customers, dsc, latent_scales(customers, dsc, horizon), out
    )


@njit(cache=True)
def latent_scales(customers: np.ndarray, dsc: np.ndarray, horizon: int) -> np.ndarray:
    """Each customer's noise scale by month, ``b[k, t] = sqrt(1 - rho_k Var D_t)``.

    Var D_t = 1 - phi^(2t) (0 if the demand factor is off): the same for every
    path, so the kernel computes it once per block.
    """
    n_cust = customers.shape[0]
    scales = np.zeros((n_cust, horizon + 1))
    var_d = 0.0
    phi2 = dsc[D_PHI] * dsc[D_PHI]
    for t in range(1, horizon + 1):
        if dsc[D_DEMAND_ON] > 0.5:
            var_d = phi2 * var_d + (1.0 - phi2)
        for k in range(n_cust):
            scales[k, t] = math.sqrt(1.0 - customers[k, K_RHO] * var_d)
    return scales


@njit(cache=True)
def default_months_scaled(
    rng: np.ndarray,
    chi_row: int,
    demand: np.ndarray,
    customers: np.ndarray,
    dsc: np.ndarray,
    scales: np.ndarray,
    out: np.ndarray,
) -> None:
    """:func:`default_months` with the scales ``b[k, t]`` of :func:`latent_scales` given."""
    horizon = demand.shape[0] - 1
    n_cust = customers.shape[0]
    out[:] = NEVER_MONTH
    alive = n_cust
    student = dsc[D_STUDENT] > 0.5
    for t in range(1, horizon + 1):
        if alive == 0:
            break
        scale = 1.0
        if student:
            scale = math.sqrt(dsc[D_NU] / chi_square(rng, chi_row, dsc[D_NU]))
        for k in range(n_cust):
            if out[k] != NEVER_MONTH:
                continue
            eps = next_normal(rng, k)
            x = customers[k, K_SQRT_RHO] * demand[t] + scales[k, t] * eps
            if x * scale < customers[k, K_THRESHOLD]:
                out[k] = t
                alive -= 1


@njit(cache=True, error_model="numpy")
def scope_revenue(
    b: int,
    n_active: int,
    revenue: np.ndarray,
    n_ctr: int,
    caps: np.ndarray,
    rev_sums: np.ndarray,
    rev_bins: np.ndarray,
    n_bins: int,
    lost_counts: np.ndarray,
    realised: np.ndarray,
    fixed: np.ndarray,
) -> None:
    """Add a group's revenue by scope and month (with and without re-letting) and lost share.

    ``revenue`` is ``float64[O + 1, 2, T + 1, GROUP]`` (scopes: the total, then
    each operator); bins go to ``rev_bins[s, v, t, lane]``; ``lost_counts[b, s, j]``
    counts the paths whose revenue over the horizon is below
    (1 - LOST_SHARES[j]) x planned. ``realised`` is ``float64[GROUP]`` and
    ``fixed`` ``float64[rows, GROUP]`` scratch.

    The month loop vectorises without a double to int64 conversion (AVX2 has
    none): whole dollars are rounded as doubles and summed from the bits of
    ``value + 1.5 x 2**52`` (:func:`engine.kernels.lanes.fixed_total`), bins
    converted through int32.
    """
    horizon = rev_sums.shape[3] - 1
    fixed_bits = fixed.view(np.int64)
    top = n_bins - 1.0
    for s in range(revenue.shape[0]):
        cap = caps[n_ctr + s]
        scale = n_bins / cap if cap > 0.0 else 0.0
        for lane in range(n_active):
            realised[lane] = 0.0
        for v in range(2):
            for t in range(1, horizon + 1):
                for lane in range(n_active):
                    value = revenue[s, v, t, lane]
                    fixed[0, lane] = np.trunc(value + 0.5) + FIXED_MAGIC
                    x = value * scale
                    x = x if x >= 0.0 else 0.0  # also nan
                    rev_bins[s, v, t, lane] = np.int32(min(x, top))
                if v == 0:
                    for lane in range(n_active):
                        realised[lane] += revenue[s, v, t, lane]
                rev_sums[b, s, v, t] += fixed_total(fixed_bits, 0, revenue[s, v, t], 1.0, n_active)
        planned = caps[n_ctr + revenue.shape[0] + s]
        for lane in range(n_active):
            for j in range(len(LOST_SHARES)):
                if realised[lane] < (1.0 - LOST_SHARES[j]) * planned:
                    lost_counts[b, s, j] += 1


@njit(cache=True, error_model="numpy")
def concentration(
    b: int,
    n_active: int,
    c_op: np.ndarray,
    c_cust: np.ndarray,
    c_value: np.ndarray,
    state: np.ndarray,
    conc_sums: np.ndarray,
    conc_bins: np.ndarray,
    n_cbins: int,
    backlog: np.ndarray,
    total: np.ndarray,
    hhi_l: np.ndarray,
    top_l: np.ndarray,
) -> None:
    """HHI, 1/HHI and top-1 share of each operator's backlog by month, for a group.

    Backlog of customer k at month t: sum over its contracts still live at t
    (before a termination decision, a default or the end of service) of
    contracted GPUs x rate x months of service left (from the later of t and
    first delivery to the end of the original term, or of the renewal once it
    has been decided); ``c_op``, ``c_cust`` and ``c_value`` are each contract's
    operator, customer and contracted value per month of service (GPUs x $ per
    GPU-month). ``state`` holds each contract's months per lane
    (:func:`engine.kernels.contracts.contract_group`); bins go to
    ``conc_bins[o, 0 | 1, t, lane]`` (-1: no backlog). ``backlog`` is
    ``float64[K, GROUP]`` scratch; ``total``, ``hhi_l`` and ``top_l``
    ``float64[GROUP]`` scratch (separate arrays: the loops vectorise).
    """
    n_ctr, n_ops, n_cust = c_op.shape[0], conc_sums.shape[1], backlog.shape[0]
    horizon = conc_sums.shape[3] - 1
    for o in range(n_ops):
        last = 0  # last month with backlog left on any lane: none after it
        for c in range(n_ctr):
            if c_op[c] == o:
                for lane in range(n_active):
                    last = max(last, min(state[L_FREED, c, lane] - 1, state[L_END, c, lane]))
        last = min(last, horizon)
        for t in range(1, horizon + 1):
            for lane in range(GROUP):
                conc_bins[o, 0, t, lane] = -1
        for t in range(1, last + 1):
            for k in range(n_cust):
                for lane in range(GROUP):
                    backlog[k, lane] = 0.0
            for lane in range(GROUP):
                total[lane] = 0.0
            for c in range(n_ctr):
                if c_op[c] != o:
                    continue
                k, per_month = c_cust[c], c_value[c]
                for lane in range(GROUP):
                    # the renewal months count once decided, after the original term
                    term_end = state[L_TERM_END, c, lane]
                    end = term_end if t <= term_end else state[L_END, c, lane]
                    left = end - max(t, state[L_DELIVER, c, lane]) + 1
                    live = (t < state[L_FREED, c, lane]) & (left > 0)
                    # months through int32 (AVX2 converts no int64 to double), exact
                    # where live (0 < left <= T)
                    value = per_month * np.float64(np.int32(left)) if live else 0.0
                    backlog[k, lane] += value
                    total[lane] += value
            # shares customer by customer, across the lanes
            for lane in range(GROUP):
                hhi_l[lane], top_l[lane] = 0.0, 0.0
            for k in range(n_cust):
                for lane in range(GROUP):
                    share = backlog[k, lane] / total[lane] if total[lane] > 0.0 else 0.0
                    hhi_l[lane] += share * share
                    top_l[lane] = max(top_l[lane], share)
            hhi_sum, top_sum, inv_sum, n = 0, 0, 0, 0
            for lane in range(n_active):
                if total[lane] <= 0.0:
                    continue
                hhi, top1 = hhi_l[lane], top_l[lane]
                hhi_sum += np.int64(hhi * 1e6 + 0.5)
                top_sum += np.int64(top1 * 1e6 + 0.5)
                inv_sum += np.int64(1e6 / hhi + 0.5)
                n += 1
                conc_bins[o, 0, t, lane] = min(int(hhi * n_cbins), n_cbins - 1)
                conc_bins[o, 1, t, lane] = min(int(top1 * n_cbins), n_cbins - 1)
            conc_sums[b, o, 0, t] += hhi_sum
            conc_sums[b, o, 1, t] += top_sum
            conc_sums[b, o, 2, t] += inv_sum
            conc_sums[b, o, 3, t] += n


@njit(cache=True)
def scatter_group(
    b: int,
    n_active: int,
    rev_bins: np.ndarray,
    conc_bins: np.ndarray,
    rev_hist: np.ndarray,
    conc_hist: np.ndarray,
) -> None:
    """Add a group's revenue and concentration bins, month by month (-1: nothing).

    ``rev_bins[s, v, t, lane]`` and ``conc_bins[o, 0 | 1, t, lane]`` (lanes innermost).
    """
    n_scopes, n_var, width = rev_bins.shape[0], rev_bins.shape[1], rev_bins.shape[2]
    for s in range(n_scopes):
        for v in range(n_var):
            for t in range(1, width):
                for line in range(0, rev_hist.shape[4], COUNTS_PER_LINE):  # next month's row
                    prefetch_row(rev_hist, (b, s, v, t + 1, line))
                for lane in range(n_active):
                    rev_hist[b, s, v, t, rev_bins[s, v, t, lane]] += 1
    for o in range(conc_bins.shape[0]):
        for t in range(1, width):
            for line in range(0, conc_hist.shape[4], COUNTS_PER_LINE):
                prefetch_row(conc_hist, (b, o, 0, t + 1, line))
                prefetch_row(conc_hist, (b, o, 1, t + 1, line))
            for lane in range(n_active):
                k = conc_bins[o, 0, t, lane]
                if k >= 0:
                    conc_hist[b, o, 0, t, k] += 1
                    conc_hist[b, o, 1, t, conc_bins[o, 1, t, lane]] += 1
