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

from engine.kernels.aggregate import _whole
from engine.kernels.finance_fields import (
    CAUSE_COVENANT,
    CAUSE_LIQUIDITY,
    DSCR_CAP,
    F_LOSS_UNIT,
    F_OP,
    FAN_BINS,
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
    O_EL_UNIT,
    O_LOSS_LO,
    O_LOSS_SCALE,
    O_LOSS_UNIT,
    O_PLANNED,
    PH_MW,
    PH_OP,
    R_DEF_COVENANT,
    R_DEF_LIQUIDITY,
    R_DEF_REFINANCING,
    R_EL_SQ,
    R_EL_SUM,
    R_LOSS_SQ,
    R_LOSS_SUM,
    R_TESTED,
    RATIO_UNIT,
    S_CASH,
    S_CAUSE,
    S_DEFAULT,
    S_FIRST_BREACH,
    S_MIN_DSCR,
    SF_EAD,
    SF_PROCEEDS,
    SF_SELL_FROM,
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
from engine.kernels.lanes import FIXED_MAGIC, LANES, fixed_sum
from engine.kernels.prefetch import COUNTS_PER_LINE, prefetch_row

__all__ = ["linear_bin", "record_group", "record_lanes_month", "scatter_fans"]

#: Share of the loss in R_LGD units (per path, 1e-8 for the squares).
LGD_SQ_UNIT = 1e-8


#: Reciprocals of the fixed-point units: the month loop multiplies (a vector division
#: costs ten times more); the rounded sums differ from dividing only when a value lies
#: within an ulp of a half unit.
PER_USD_UNIT, PER_RATIO_UNIT = 1.0 / USD_UNIT, 1.0 / RATIO_UNIT


@njit(cache=True, error_model="numpy", inline="always")
def linear_bin(x: float, lo: float, scale: float, n_bins: int) -> np.int32:
    """Bin ``(x - lo) x scale`` clamped to ``0 .. n_bins - 1`` (also for +-inf; nan: 0).

    Converted through int32, which vectorises on AVX2 (a float to int64
    conversion does not). nan, a value the records never hold, goes to bin 0,
    as the int64 conversion stored into int32 fan bins gave on x86.
    """
    y = (x - lo) * scale
    y = y if y >= 0.0 else 0.0  # nan -> 0
    return np.int32(min(y, n_bins - 1.0))


@njit(cache=True, error_model="numpy")
def record_lanes_month(
    b: int,
    o: int,
    t: int,
    op_state: np.ndarray,
    g_ebitda: np.ndarray,
    dscr_now: np.ndarray,
    breach_any: np.ndarray,
    fails: np.ndarray,
    out_total: np.ndarray,
    value_total: np.ndarray,
    ops: np.ndarray,
    fsc: np.ndarray,
    month_sums: np.ndarray,
    fan_bins: np.ndarray,
    fixed: np.ndarray,
    fixed_bits: np.ndarray,
) -> None:
    """Add operator o's month t on the group's lanes where it is not yet in default.

    Sums are added once for the group (integer lane sums); fan bins are written
    to ``fan_bins[o, v, t, lane]`` for every lane (-1: not recorded).
    ``dscr_now[o, lane]`` is the month's DSCR where defined (nan otherwise).
    ``fixed`` is ``float64[4, LANES]`` scratch and ``fixed_bits`` its ``int64`` view.

    Every loop over the lanes vectorises without a float to int64 conversion
    (AVX2 has none) and stores to at most two rows: fixed-point values are
    rounded as doubles and read as integers from the bits of
    ``value + 1.5 x 2**52`` (:func:`engine.kernels.lanes.fixed_sum`); bins are
    converted through int32 (:func:`linear_bin`).
    """
    n_bins = FAN_BINS
    cash_lo, cash_scale = ops[o, O_CASH_LO], ops[o, O_CASH_SCALE]
    e_lo, e_scale = ops[o, O_EBITDA_LO], ops[o, O_EBITDA_SCALE]
    d_lo, d_scale, l_scale = fsc[FS_DSCR_LO], fsc[FS_DSCR_SCALE], fsc[FS_LTV_SCALE]
    cash_s, default_s, first_s = op_state[S_CASH], op_state[S_DEFAULT], op_state[S_FIRST_BREACH]
    # one quantity per loop, at most two stores each (more keep LLVM from vectorising)
    for lane in range(LANES):
        alive = default_s[o, lane] >= t
        c = np.floor(cash_s[o, lane] * PER_USD_UNIT + 0.5)
        e = np.floor(g_ebitda[t, o, lane] * PER_USD_UNIT + 0.5)
        fixed[0, lane] = (c if alive else 0.0) + FIXED_MAGIC
        fixed[1, lane] = (e if alive else 0.0) + FIXED_MAGIC
    for lane in range(LANES):
        alive = default_s[o, lane] >= t
        cash_bin = linear_bin(cash_s[o, lane], cash_lo, cash_scale, n_bins)
        e_bin = linear_bin(g_ebitda[t, o, lane], e_lo, e_scale, n_bins)
        fan_bins[o, V_CASH, t, lane] = cash_bin if alive else np.int32(-1)
        fan_bins[o, V_EBITDA, t, lane] = e_bin if alive else np.int32(-1)
    for lane in range(LANES):
        dscr = dscr_now[o, lane]
        has_dscr = dscr == dscr  # not nan: alive, with debt service in the window
        dscr = dscr if has_dscr else 0.0
        d = np.floor(min(max(dscr, -DSCR_CAP), DSCR_CAP) * PER_RATIO_UNIT + 0.5)
        fixed[2, lane] = (d if has_dscr else 0.0) + FIXED_MAGIC
        d_bin = linear_bin(dscr, d_lo, d_scale, n_bins)
        fan_bins[o, V_DSCR, t, lane] = d_bin if has_dscr else np.int32(-1)
    for lane in range(LANES):
        has_ltv = (default_s[o, lane] >= t) & (out_total[o, lane] > 0.0)
        ratio = out_total[o, lane] / value_total[o, lane]
        ltv = ratio if has_ltv else 0.0
        r = np.floor(min(ltv, LTV_CAP) * PER_RATIO_UNIT + 0.5)
        fixed[3, lane] = (r if has_ltv else 0.0) + FIXED_MAGIC
        l_bin = linear_bin(ltv, 0.0, l_scale, n_bins)
        fan_bins[o, V_LTV, t, lane] = l_bin if has_ltv else np.int32(-1)
    n_alive, n_dscr, n_ltv = np.int64(0), np.int64(0), np.int64(0)
    n_breach, n_first, n_default = np.int64(0), np.int64(0), np.int64(0)
    for lane in range(LANES):
        alive = default_s[o, lane] >= t
        n_alive += 1 if alive else 0
        n_dscr += 1 if dscr_now[o, lane] == dscr_now[o, lane] else 0
        n_ltv += 1 if alive & (out_total[o, lane] > 0.0) else 0
        n_breach += 1 if alive & (breach_any[o, lane] > 0.0) else 0
        n_first += 1 if alive & (first_s[o, lane] == t) else 0
        n_default += 1 if alive & (fails[o, lane] > 0.0) else 0
    s_cash, out_c = fixed_sum(fixed_bits, 0, LANES)
    s_ebitda, out_e = fixed_sum(fixed_bits, 1, LANES)
    s_dscr, out_d = fixed_sum(fixed_bits, 2, LANES)
    s_ltv, out_l = fixed_sum(fixed_bits, 3, LANES)
    if out_c + out_e + out_d + out_l > 0:  # a value beyond 2**51 units, or nan: exactly
        s_cash, s_ebitda, s_dscr, s_ltv = _sums_exact(o, t, op_state, g_ebitda, dscr_now,
                                                      out_total, value_total)  # fmt: skip
    m = month_sums[b, o, t]
    m[MS_ALIVE] += n_alive
    m[MS_CASH] += s_cash
    m[MS_EBITDA] += s_ebitda
    m[MS_DSCR] += s_dscr
    m[MS_DSCR_N] += n_dscr
    m[MS_LTV] += s_ltv
    m[MS_LTV_N] += n_ltv
    m[MS_BREACH] += n_breach
    m[MS_FIRST_BREACH] += n_first
    m[MS_DEFAULT] += n_default


@njit(cache=True, error_model="numpy")
def _sums_exact(
    o: int,
    t: int,
    op_state: np.ndarray,
    g_ebitda: np.ndarray,
    dscr_now: np.ndarray,
    out_total: np.ndarray,
    value_total: np.ndarray,
) -> tuple[np.int64, np.int64, np.int64, np.int64]:
    """Sum the fixed-point records of :func:`record_lanes_month` through int64 conversions.

    Parameters
    ----------
    o, t : int
        Operator and month.
    op_state, g_ebitda, dscr_now, out_total, value_total : numpy.ndarray
        As in :func:`record_lanes_month`.

    Returns
    -------
    s_cash, s_ebitda, s_dscr, s_ltv : numpy.int64
        Cash and EBITDA (``USD_UNIT``), DSCR and LTV (``RATIO_UNIT``) sums of the lanes.
    """
    s_cash, s_ebitda = np.int64(0), np.int64(0)
    s_dscr, s_ltv = np.int64(0), np.int64(0)
    for lane in range(LANES):
        alive = op_state[S_DEFAULT][o, lane] >= t
        dscr = dscr_now[o, lane]
        has_dscr = dscr == dscr
        has_ltv = alive and out_total[o, lane] > 0.0
        ltv = out_total[o, lane] / value_total[o, lane] if has_ltv else 0.0
        s_cash += _whole(op_state[S_CASH][o, lane] * PER_USD_UNIT) if alive else 0
        s_ebitda += _whole(g_ebitda[t, o, lane] * PER_USD_UNIT) if alive else 0
        s_dscr += _whole(min(max(dscr, -DSCR_CAP), DSCR_CAP) * PER_RATIO_UNIT) if has_dscr else 0
        s_ltv += _whole(min(ltv, LTV_CAP) * PER_RATIO_UNIT) if has_ltv else 0
    return s_cash, s_ebitda, s_dscr, s_ltv


@njit(cache=True)
def record_group(
    b: int,
    n_active: int,
    horizon: int,
    op_state: np.ndarray,
    fac_state: np.ndarray,
    g_months: np.ndarray,
    g_customer_default: np.ndarray,
    g_contract_revenue: np.ndarray,
    phases: np.ndarray,
    facilities: np.ndarray,
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
    lost: np.ndarray,
) -> None:
    """Add each path's per-operator, per-facility and joint-target records (lanes).

    ``lost`` is ``float64[O]`` scratch: the lenders' loss by operator on a path ($).
    """
    n_ops = ops.shape[0]
    n_dbins, n_lbins = min_dscr_hist.shape[2], loss_hist.shape[2]
    for lane in range(n_active):
        for o in range(n_ops):
            if op_state[S_DEFAULT][o, lane] <= horizon:
                c = int(op_state[S_CAUSE][o, lane])
                k = R_DEF_COVENANT if c == CAUSE_COVENANT else R_DEF_LIQUIDITY
                if c != CAUSE_COVENANT and c != CAUSE_LIQUIDITY:
                    k = R_DEF_REFINANCING
                op_sums[b, o, k] += 1
            tested = op_state[S_MIN_DSCR][o, lane] < math.inf  # a DSCR was tested
            if tested:
                op_sums[b, o, R_TESTED] += 1
                k = linear_bin(
                    op_state[S_MIN_DSCR][o, lane], fsc[FS_DSCR_LO], fsc[FS_DSCR_SCALE], n_dbins
                )
                min_dscr_hist[b, o, k] += 1
            loss = ops[o, O_PLANNED] - g_contract_revenue[o, lane]
            unit = ops[o, O_LOSS_UNIT]
            k = linear_bin(loss, ops[o, O_LOSS_LO], ops[o, O_LOSS_SCALE], n_lbins)
            whole_loss = _whole(loss / USD_UNIT)
            square = _whole((loss / unit) ** 2)
            loss_hist[b, o, k, 0] += 1
            loss_hist[b, o, k, 1] += whole_loss
            loss_hist[b, o, k, 2] += square
            op_sums[b, o, R_LOSS_SUM] += whole_loss
            op_sums[b, o, R_LOSS_SQ] += square
        for o in range(n_ops):
            lost[o] = 0.0
        for f in range(facilities.shape[0]):
            ead = fac_state[SF_EAD][f, lane]
            if fac_state[SF_SELL_FROM][f, lane] > horizon + 1 or ead <= 0.0:
                continue
            recovered = min(fac_state[SF_PROCEEDS][f, lane], ead)
            loss = ead - recovered
            lost[int(facilities[f, F_OP])] += loss
            lgd = loss / ead
            fac_sums[b, f, FR_DEFAULTS] += 1
            fac_sums[b, f, FR_EAD] += _whole(ead / USD_UNIT)
            fac_sums[b, f, FR_LOSS] += _whole(loss / USD_UNIT)
            fac_sums[b, f, FR_LOSS_SQ] += _whole((loss / facilities[f, F_LOSS_UNIT]) ** 2)
            fac_sums[b, f, FR_RECOVERED] += _whole(recovered / USD_UNIT)
            fac_sums[b, f, FR_LGD] += _whole(lgd / RATIO_UNIT)
            fac_sums[b, f, FR_LGD_SQ] += _whole(lgd * lgd / LGD_SQ_UNIT)
        for o in range(n_ops):
            op_sums[b, o, R_EL_SUM] += _whole(lost[o] / USD_UNIT)
            op_sums[b, o, R_EL_SQ] += _whole((lost[o] / ops[o, O_EL_UNIT]) ** 2)
        for j in range(targets.shape[0]):
            flags = int(targets[j, T_FLAGS])
            ok_mw, ok_c, ok_d, ok_o = True, True, True, True
            if flags & FLAG_MW:
                by = int(targets[j, T_MONTH])
                online = 0.0
                for p in range(phases.shape[0]):
                    month = g_months[p, lane]  # T + 1 when not energized within the horizon
                    if target_ops[j, int(phases[p, PH_OP])] > 0.5 and month <= min(by, horizon):
                        online += phases[p, PH_MW]
                ok_mw = online >= targets[j, T_MW] - 1e-9
            if flags & FLAG_CUSTOMERS:
                for k in range(target_customers.shape[1]):
                    if target_customers[j, k] > 0.5 and g_customer_default[k, lane] <= horizon:
                        ok_c = False
            for o in range(n_ops):
                if target_ops[j, o] < 0.5:
                    continue
                low = op_state[S_MIN_DSCR][o, lane] < targets[j, T_DSCR]
                tested = op_state[S_MIN_DSCR][o, lane] < math.inf
                if flags & FLAG_DSCR and tested and low:
                    ok_d = False
                if flags & FLAG_OPERATORS and op_state[S_DEFAULT][o, lane] <= horizon:
                    ok_o = False
            if ok_mw and ok_c and ok_d and ok_o:
                joint[b, j, 0] += 1
            joint[b, j, 1] += ok_mw
            joint[b, j, 2] += ok_c
            joint[b, j, 3] += ok_d
            joint[b, j, 4] += ok_o


@njit(cache=True)
def scatter_fans(b: int, n_active: int, fan_bins: np.ndarray, fan_hist: np.ndarray) -> None:
    """Add a group's fan bins ``fan_bins[o, v, t, lane]`` month by month (-1: not recorded).

    ``fan_hist`` is ``int16[blocks, T + 1, O, N_FAN, bins]`` (month-major; a block
    holds at most ``BLOCK_PATHS`` paths).
    """
    n_ops, n_var, width = fan_bins.shape[0], fan_bins.shape[1], fan_bins.shape[2]
    n_bins = fan_hist.shape[4]
    for t in range(1, width):
        for o in range(n_ops):  # next month's rows, requested while this month is counted
            for v in range(n_var):
                for line in range(0, n_bins, COUNTS_PER_LINE):
                    prefetch_row(fan_hist, (b, t + 1, o, v, line))
        for o in range(n_ops):
            for v in range(n_var):
                for lane in range(n_active):
                    k = fan_bins[o, v, t, lane]
                    if k >= 0:
                        fan_hist[b, t, o, v, k] += 1
