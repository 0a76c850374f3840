"""What the finance kernel records: integer statistics of one path, and group fan bins.

Every statistic is an integer (counts, fixed-point sums: $ in units of
``USD_UNIT``, ratios in ``RATIO_UNIT``), so the partial results of parallel
blocks merge to the same bits in any order. Monthly fans are binned linearly:
``bin = (x - lo) x scale`` clamped to the end bins; a path's bins go into a
group buffer that :func:`scatter_fans` adds month by month.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.kernels.finance_fields import (
    CAUSE_COVENANT,
    CAUSE_LIQUIDITY,
    DSCR_CAP,
    FAN_BINS,
    F_LOSS_UNIT,
    FLAG_CUSTOMERS,
    FLAG_DSCR,
    FLAG_MW,
    FLAG_OPERATORS,
    FR_DEFAULTS,
    FR_EAD,
    FR_LGD,
    FR_LGD_SQ,
    FR_LOSS,
    FR_LOSS_SQ,
    FR_RECOVERED,
    FS_DSCR_LO,
    FS_DSCR_SCALE,
    FS_LTV_SCALE,
    LTV_CAP,
    MS_ALIVE,
    MS_BREACH,
    MS_CASH,
    MS_DEFAULT,
    MS_DSCR,
    MS_DSCR_N,
    MS_EBITDA,
    MS_FIRST_BREACH,
    MS_LTV,
    MS_LTV_N,
    O_CASH_LO,
    O_CASH_SCALE,
    O_EBITDA_LO,
    O_EBITDA_SCALE,
    O_LOSS_LO,
    O_LOSS_SCALE,
    O_LOSS_UNIT,
    O_PLANNED,
    PH_MW,
    PH_OP,
    R_DEF_COVENANT,
    R_DEF_LIQUIDITY,
    R_DEF_REFINANCING,
    R_LOSS_SQ,
    R_LOSS_SUM,
    R_TESTED,
    RATIO_UNIT,
    T_DSCR,
    T_FLAGS,
    T_MONTH,
    T_MW,
    USD_UNIT,
    V_CASH,
    V_DSCR,
    V_EBITDA,
    V_LTV,
)

__all__ = ["linear_bin", "record_month", "record_path", "scatter_fans"]

#: Share of the loss in R_LGD units (per path, 1e-8 for the squares).
LGD_SQ_UNIT = 1e-8


@njit(cache=True, inline="always")
def _whole(x: float) -> np.int64:
    """Nearest integer (half up), also for negative values."""
    return np.int64(math.floor(x + 0.5))


@njit(cache=True, inline="always")
def linear_bin(x: float, lo: float, scale: float, n_bins: int) -> int:
    """Bin ``(x - lo) x scale`` clamped to ``0 .. n_bins - 1`` (also for +-inf)."""
    y = (x - lo) * scale
    if not y >= 0.0:
        return 0
    if y >= n_bins - 1:
        return n_bins - 1
    return int(y)


@njit(cache=True, inline="always")
def record_month(
    b: int,
    o: int,
    t: int,
    cash: float,
    ebitda: float,
    has_dscr: bool,
    dscr: float,
    has_ltv: bool,
    ltv: float,
    breach: bool,
    first_breach: bool,
    default: bool,
    ops: np.ndarray,
    fsc: np.ndarray,
    month_sums: np.ndarray,
    fan_bins: np.ndarray,
    lane: int,
) -> None:
    """Add operator o's month t on one path (the operator is not yet in default)."""
    n_bins = FAN_BINS
    month_sums[b, o, t, MS_ALIVE] += 1
    month_sums[b, o, t, MS_CASH] += _whole(cash / USD_UNIT)
    month_sums[b, o, t, MS_EBITDA] += _whole(ebitda / USD_UNIT)
    fan_bins[lane, o, V_CASH, t] = linear_bin(cash, ops[o, O_CASH_LO], ops[o, O_CASH_SCALE], n_bins)
    fan_bins[lane, o, V_EBITDA, t] = linear_bin(
        ebitda, ops[o, O_EBITDA_LO], ops[o, O_EBITDA_SCALE], n_bins
    )
    if has_dscr:
        month_sums[b, o, t, MS_DSCR] += _whole(min(max(dscr, -DSCR_CAP), DSCR_CAP) / RATIO_UNIT)
        month_sums[b, o, t, MS_DSCR_N] += 1
        fan_bins[lane, o, V_DSCR, t] = linear_bin(
            dscr, fsc[FS_DSCR_LO], fsc[FS_DSCR_SCALE], n_bins
        )
    if has_ltv:
        month_sums[b, o, t, MS_LTV] += _whole(min(ltv, LTV_CAP) / RATIO_UNIT)
        month_sums[b, o, t, MS_LTV_N] += 1
        fan_bins[lane, o, V_LTV, t] = linear_bin(ltv, 0.0, fsc[FS_LTV_SCALE], n_bins)
    if breach:
        month_sums[b, o, t, MS_BREACH] += 1
    if first_breach:
        month_sums[b, o, t, MS_FIRST_BREACH] += 1
    if default:
        month_sums[b, o, t, MS_DEFAULT] += 1


@njit(cache=True)
def record_path(
    b: int,
    horizon: int,
    default_month: np.ndarray,
    cause: np.ndarray,
    tested_dscr: np.ndarray,
    min_dscr: np.ndarray,
    contract_revenue: np.ndarray,
    customer_default: np.ndarray,
    months: np.ndarray,
    phases: np.ndarray,
    facilities: np.ndarray,
    ead: np.ndarray,
    proceeds: np.ndarray,
    sell_from: np.ndarray,
    ops: np.ndarray,
    fsc: np.ndarray,
    targets: np.ndarray,
    target_ops: np.ndarray,
    target_customers: np.ndarray,
    op_sums: np.ndarray,
    min_dscr_hist: np.ndarray,
    loss_hist: np.ndarray,
    fac_sums: np.ndarray,
    joint: np.ndarray,
) -> None:
    """Add one path's per-operator, per-facility and joint-target records."""
    n_ops = ops.shape[0]
    n_dbins, n_lbins = min_dscr_hist.shape[2], loss_hist.shape[2]
    for o in range(n_ops):
        if default_month[o] <= horizon:
            c = cause[o]
            k = R_DEF_COVENANT if c == CAUSE_COVENANT else R_DEF_LIQUIDITY
            if c != CAUSE_COVENANT and c != CAUSE_LIQUIDITY:
                k = R_DEF_REFINANCING
            op_sums[b, o, k] += 1
        if tested_dscr[o] > 0.0:
            op_sums[b, o, R_TESTED] += 1
            k = linear_bin(min_dscr[o], fsc[FS_DSCR_LO], fsc[FS_DSCR_SCALE], n_dbins)
            min_dscr_hist[b, o, k] += 1
        realised = 0.0
        for t in range(1, horizon + 1):
            realised += contract_revenue[o, t]
        loss = ops[o, O_PLANNED] - realised
        unit = ops[o, O_LOSS_UNIT]
        k = linear_bin(loss, ops[o, O_LOSS_LO], ops[o, O_LOSS_SCALE], n_lbins)
        whole_loss = _whole(loss / USD_UNIT)
        square = _whole((loss / unit) ** 2)
        loss_hist[b, o, k, 0] += 1
        loss_hist[b, o, k, 1] += whole_loss
        loss_hist[b, o, k, 2] += square
        op_sums[b, o, R_LOSS_SUM] += whole_loss
        op_sums[b, o, R_LOSS_SQ] += square
    for f in range(facilities.shape[0]):
        if sell_from[f] > horizon + 1 or ead[f] <= 0.0:
            continue
        recovered = min(proceeds[f], ead[f])
        loss = ead[f] - recovered
        lgd = loss / ead[f]
        fac_sums[b, f, FR_DEFAULTS] += 1
        fac_sums[b, f, FR_EAD] += _whole(ead[f] / USD_UNIT)
        fac_sums[b, f, FR_LOSS] += _whole(loss / USD_UNIT)
        fac_sums[b, f, FR_LOSS_SQ] += _whole((loss / facilities[f, F_LOSS_UNIT]) ** 2)
        fac_sums[b, f, FR_RECOVERED] += _whole(recovered / USD_UNIT)
        fac_sums[b, f, FR_LGD] += _whole(lgd / RATIO_UNIT)
        fac_sums[b, f, FR_LGD_SQ] += _whole(lgd * lgd / LGD_SQ_UNIT)
    for j in range(targets.shape[0]):
        flags = int(targets[j, T_FLAGS])
        ok_mw, ok_c, ok_d, ok_o = True, True, True, True
        if flags & FLAG_MW:
            by = int(targets[j, T_MONTH])
            online = 0.0
            for p in range(phases.shape[0]):
                if target_ops[j, int(phases[p, PH_OP])] > 0.5 and months[p] <= by:
                    online += phases[p, PH_MW]
            ok_mw = online >= targets[j, T_MW] - 1e-9
        if flags & FLAG_CUSTOMERS:
            for k in range(target_customers.shape[1]):
                if target_customers[j, k] > 0.5 and customer_default[k] <= horizon:
                    ok_c = False
        for o in range(n_ops):
            if target_ops[j, o] < 0.5:
                continue
            if flags & FLAG_DSCR and tested_dscr[o] > 0.0 and min_dscr[o] < targets[j, T_DSCR]:
                ok_d = False
            if flags & FLAG_OPERATORS and default_month[o] <= horizon:
                ok_o = False
        if ok_mw and ok_c and ok_d and ok_o:
            joint[b, j, 0] += 1
        joint[b, j, 1] += ok_mw
        joint[b, j, 2] += ok_c
        joint[b, j, 3] += ok_d
        joint[b, j, 4] += ok_o


@njit(cache=True)
def scatter_fans(b: int, n_active: int, fan_bins: np.ndarray, fan_hist: np.ndarray) -> None:
    """Add a group's fan bins, month by month (-1: not recorded), then reset them to -1.

    ``fan_hist`` is ``int32[blocks, T + 1, O, N_FAN, bins]`` (month-major).
    """
    n_ops, n_var, width = fan_bins.shape[1], fan_bins.shape[2], fan_bins.shape[3]
    for t in range(1, width):
        for o in range(n_ops):
            for v in range(n_var):
                for lane in range(n_active):
                    k = fan_bins[lane, o, v, t]
                    if k >= 0:
                        fan_hist[b, t, o, v, k] += 1
                        fan_bins[lane, o, v, t] = -1
