"""What the contract kernel records, and the customers' default months.

``default_months`` draws one path's customer defaults (docs/model.md §9.1 step
1). The others turn one path's revenue and backlog into integer statistics:
sums directly, histogram bins into a group buffer that ``scatter_group`` adds
month by month for the group's paths (each month's histogram is then fetched
once per group instead of once per path).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.kernels.factors import chi_square
from engine.rng import next_normal

__all__ = [
    "LOST_SHARES",
    "concentration",
    "default_months",
    "scatter_group",
    "scope_revenue",
]

K_THRESHOLD, K_SQRT_RHO, K_RHO, K_RECOVERY = 0, 1, 2, 3
D_ENABLED, D_STUDENT, D_NU, D_RELET, D_PHI, D_DEMAND_ON = range(6)
NEVER_MONTH = 1 << 30
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


@njit(cache=True, inline="always")
def scope_revenue(
    b: int,
    work: np.ndarray,
    scope_row: int,
    n_ctr: int,
    caps: np.ndarray,
    n_ops: int,
    rev_sums: np.ndarray,
    rev_bins: np.ndarray,
    lane: int,
    n_bins: int,
    lost_counts: np.ndarray,
) -> None:
    """Add each scope's revenue by month (with and without re-letting) and lost share.

    Scopes are the total, then each operator; ``lost_counts[b, s, j]`` counts the
    paths whose revenue over the horizon is below (1 - LOST_SHARES[j]) x planned.
    """
    horizon = rev_sums.shape[3] - 1
    for s in range(n_ops + 1):
        cap = caps[n_ctr + s]
        scale = n_bins / cap if cap > 0.0 else 0.0
        realised = 0.0
        for v in range(2):
            row = work[scope_row + 2 * s + v]
            for t in range(1, horizon + 1):
                value = row[t]
                if v == 0:
                    realised += value
                rev_sums[b, s, v, t] += np.int64(value + 0.5)
                rev_bins[lane, s, v, t] = min(max(int(value * scale), 0), n_bins - 1)
        planned = caps[n_ctr + n_ops + 1 + s]
        for j in range(len(LOST_SHARES)):
            if realised < (1.0 - LOST_SHARES[j]) * planned:
                lost_counts[b, s, j] += 1


@njit(cache=True, inline="always")
def concentration(
    b: int,
    contracts: np.ndarray,
    work: np.ndarray,
    iwork: np.ndarray,
    default_month: np.ndarray,
    n_ops: int,
    conc_sums: np.ndarray,
    conc_bins: np.ndarray,
    lane: int,
    n_cbins: int,
) -> None:
    """HHI, 1/HHI and top-1 share of each operator's backlog by month.

    Backlog of customer k at month t: sum over its contracts still live at t
    (before a termination decision, a default or the end of service) of
    contracted GPUs x rate x months of service left (from the later of t and
    first delivery to the end of the original term, or of the renewal once it
    has been decided).
    """
    n_ctr = contracts.shape[0]
    n_cust = default_month.shape[0]
    horizon = conc_sums.shape[3] - 1
    backlog = work[work.shape[0] - n_cust :, 0]
    for o in range(n_ops):
        last = 0  # last month with backlog left: none after it
        for c in range(n_ctr):
            if iwork[c, 3] == o:
                last = max(last, min(iwork[c, 2] - 1, iwork[c, 1]))
        for t in range(min(last, horizon) + 1, horizon + 1):
            conc_bins[lane, o, 0, t] = -1
        for t in range(1, min(last, horizon) + 1):
            backlog[:] = 0.0
            total = 0.0
            conc_bins[lane, o, 0, t] = -1  # no backlog left
            for c in range(n_ctr):
                if iwork[c, 3] != o or t >= iwork[c, 2]:
                    continue
                # the renewal months count once decided, after the original term
                end = iwork[c, 5] if t <= iwork[c, 5] else iwork[c, 1]
                left = end - max(t, iwork[c, 0]) + 1
                if left > 0:
                    value = work[c, horizon + 1] * left
                    backlog[iwork[c, 4]] += value
                    total += value
            if total <= 0.0:
                continue
            hhi, top1 = 0.0, 0.0
            for k in range(n_cust):
                share = backlog[k] / total
                hhi += share * share
                top1 = max(top1, share)
            conc_sums[b, o, 0, t] += np.int64(hhi * 1e6 + 0.5)
            conc_sums[b, o, 1, t] += np.int64(top1 * 1e6 + 0.5)
            conc_sums[b, o, 2, t] += np.int64(1e6 / hhi + 0.5)
            conc_sums[b, o, 3, t] += 1
            conc_bins[lane, o, 0, t] = min(int(hhi * n_cbins), n_cbins - 1)
            conc_bins[lane, o, 1, t] = min(int(top1 * n_cbins), n_cbins - 1)


@njit(cache=True)
def scatter_group(
    b: int,
    n_active: int,
    rev_bins: np.ndarray,
    conc_bins: np.ndarray,
    rev_hist: np.ndarray,
    conc_hist: np.ndarray,
) -> None:
    """Add a group's revenue and concentration bins, month by month (-1: nothing)."""
    n_scopes, n_var, width = rev_bins.shape[1], rev_bins.shape[2], rev_bins.shape[3]
    for s in range(n_scopes):
        for v in range(n_var):
            for t in range(1, width):
                for lane in range(n_active):
                    rev_hist[b, s, v, t, rev_bins[lane, s, v, t]] += 1
    for o in range(conc_bins.shape[1]):
        for t in range(1, width):
            for lane in range(n_active):
                k = conc_bins[lane, o, 0, t]
                if k >= 0:
                    conc_hist[b, o, 0, t, k] += 1
                    conc_hist[b, o, 1, t, conc_bins[lane, o, 1, t]] += 1
