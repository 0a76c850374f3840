"""Finance of a group of paths: operators' cash, debt service, covenants, defaults, fire sales.

Run by the demand side (engine/kernels/demand_kernel.py ``demand_group``, which
the market kernel calls after each group's months) for each group of up
to ``LANES`` paths, once each path's inputs are gathered
(engine/kernels/finance_inputs.py). The month's arithmetic runs across the
group's lanes (vectorised), every lane one path.

Order of events in month t (docs/model.md §10.2), the same on every path, for
each operator not yet in default:

1. draws (gathered): collateral phases energized in t draw their share of the
   principal (up to the original maturity), or the whole principal in month 1
   when drawn up front;
2. EBITDA = contract revenue (with re-letting) + merchant revenue - energy -
   opex (gathered);
3. debt service: interest on the balance after the draws (fixed, or base rate +
   spread), scheduled principal (the balance above the balloon, evenly over the
   months left to maturity), interest on a drawn revolver (negative cash);
4. cash += EBITDA + contract cash (prepayments, credits, refunds, recoveries)
   - capex (facility and GPUs of the phases energized in t) + draws - service;
5. tests, from each facility's first test month while it has a balance: DSCR
   (the operator's EBITDA over its debt service, summed over the trailing
   window) below the minimum, or LTV (balance / collateral GPUs x resale value
   x fire-sale keep) above the maximum, is a breach; a breach lasting ``cure``
   months is a default; at maturity a balance left must be refinanced: it fails
   when a covenant is breached, else with probability logistic(a + b (LTV - 0.6)
   + c [D_t < threshold]); cash below -liquidity is a default. A default takes
   all the operator's facilities.

Then, for the whole book: lenders of operators in default sell their collateral
in equal parts over the ``liquidation_months`` after the default month; the
units sold in t add to each generation's fire-sale impact J, which lowers every
collateral value (and later sales) from t + 1 on:
J <- J 2^(-1/h) + lambda x sold / installed base (h: the impact's half-life,
months; engine/kernels/finance_sales.py).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.kernels.finance_fields import (
    CAUSE_COVENANT,
    CAUSE_LIQUIDITY,
    CAUSE_REFINANCING,
    F_AMORT_START,
    F_BALLOON,
    F_CURE,
    F_FIRST_TEST,
    F_FIXED,
    F_MATURITY,
    F_MAX_LTV,
    F_MIN_DSCR,
    F_OP,
    F_RATE,
    F_REFI_A,
    F_REFI_B,
    F_REFI_C,
    F_REFI_TERM,
    F_STRESS,
    F_WINDOW,
    FR_REFINANCED,
    FS_CH_RESALE,
    NEVER,
    O_CASH0,
    O_LIQ_SPREAD,
    O_LIQUIDITY,
    O_WINDOW,
    S_CASH,
    S_CAUSE,
    S_DEFAULT,
    S_FIRST_BREACH,
    S_MIN_DSCR,
    SF_BALLOON,
    SF_DRAWN,
    SF_EAD,
    SF_MATURITY,
    SF_OUT,
    SF_RUN,
    SF_SELL_FROM,
)
from engine.kernels.finance_records import record_lanes_month
from engine.kernels.finance_sales import keep_ratio, lenders_sales
from engine.kernels.lanes import LANES

__all__ = ["finance_lanes"]


@njit(cache=True, error_model="numpy")
def finance_lanes(
    b: int,
    n_active: int,
    g_ebitda: np.ndarray,
    g_other: np.ndarray,
    g_draw: np.ndarray,
    g_value: np.ndarray,
    paths: np.ndarray,
    g_months: np.ndarray,
    u_refi: np.ndarray,
    ops: np.ndarray,
    phases: np.ndarray,
    pair_facility: np.ndarray,
    pair_gen: np.ndarray,
    facilities: np.ndarray,
    gens: np.ndarray,
    keep: np.ndarray,
    base_rate: np.ndarray,
    fsc: np.ndarray,
    op_state: np.ndarray,
    fac_state: np.ndarray,
    impact: np.ndarray,
    cum: np.ndarray,
    tmp: np.ndarray,
    month_sums: np.ndarray,
    fan_bins: np.ndarray,
    fac_sums: np.ndarray,
    fixed: np.ndarray,
) -> None:
    """Simulate the finance of one group of paths (lanes ``0 .. n_active - 1``).

    Parameters
    ----------
    b, n_active : int
        Block of the partial results; lanes holding a path.
    g_ebitda, g_other, g_draw, g_value, g_months : numpy.ndarray
        The group's gathered inputs (:func:`engine.kernels.finance_inputs.gather_path`
        and :func:`engine.kernels.finance_inputs.gather_group`).
    paths : numpy.ndarray
        ``float64[channels, T + 1, LANES]`` the group's market channels
        (demand factor; resale values from channel ``fsc[FS_CH_RESALE]``).
    u_refi : numpy.ndarray
        ``float64[F, LANES]`` one uniform per facility and lane (refinancing).
    ops ... fsc : numpy.ndarray
        Lowered finance (:class:`engine.finance_arrays.FinanceArrays`).
    op_state, fac_state : tuple
        ``N_OP_STATE`` arrays ``float64[O, LANES]`` and ``N_FAC_STATE`` arrays
        ``float64[F, LANES]`` (one per field ``S_*``, ``SF_*``)
        written: each lane's end state (cash, default month, minimum DSCR ...;
        balance, exposure at default, proceeds ...), read by
        :func:`engine.kernels.finance_records.record_group`.
    impact : tuple
        Two ``float64[G, LANES]`` scratch arrays: fire-sale impact J and units sold.
    cum : tuple
        Two ``float64[T + 1, O, LANES]`` scratch arrays: cumulative EBITDA and
        debt service.
    tmp : tuple
        ``N_TMP`` ``float64[max(O, F), LANES]`` scratch arrays (separate arrays,
        like the state: the lane loops vectorise).
    month_sums, fan_bins, fac_sums : numpy.ndarray
        Block records (:mod:`engine.kernels.finance_records`).
    fixed : numpy.ndarray
        ``float64[4, LANES]`` scratch: a month's fixed-point records
        (:func:`engine.kernels.finance_records.record_lanes_month`).
    """
    horizon = g_ebitda.shape[0] - 1
    n_ops, n_fac, n_gens = ops.shape[0], facilities.shape[0], gens.shape[0]
    ch_resale = int(fsc[FS_CH_RESALE])
    j_now, sold = impact[0], impact[1]
    cum_e, cum_d = cum[0], cum[1]
    service, drawn_now = tmp[0], tmp[1]
    out_total, value_total = tmp[2], tmp[3]
    breach_any, fails = tmp[4], tmp[5]
    tested_any = tmp[6]
    value = tmp[7]
    dscr_now = tmp[8]  # the operator's DSCR this month (nan: undefined or in default)
    sum_e, sum_d = tmp[9], tmp[10]  # cumulative EBITDA and debt service to date
    fixed_bits = fixed.view(np.int64)
    for o in range(n_ops):
        for lane in range(LANES):
            op_state[S_CASH][o, lane] = ops[o, O_CASH0]
            op_state[S_MIN_DSCR][o, lane] = math.inf
            # lanes without a path count as in default from the start (never recorded)
            op_state[S_DEFAULT][o, lane] = NEVER if lane < n_active else -1.0
            op_state[S_FIRST_BREACH][o, lane] = NEVER
            cum_e[0, o, lane] = 0.0
            cum_d[0, o, lane] = 0.0
            sum_e[o, lane] = 0.0
            sum_d[o, lane] = 0.0
    for f in range(n_fac):
        for lane in range(LANES):
            for k in range(len(fac_state)):
                fac_state[k][f, lane] = 0.0
            fac_state[SF_MATURITY][f, lane] = facilities[f, F_MATURITY]
            fac_state[SF_SELL_FROM][f, lane] = NEVER
    for g in range(n_gens):
        for lane in range(LANES):
            j_now[g, lane] = 0.0
    # sales and the impact's decay run from the group's first default to the horizon
    any_default = False
    for t in range(1, horizon + 1):
        rate_base = base_rate[t]
        for o in range(n_ops):
            spread = (rate_base + ops[o, O_LIQ_SPREAD]) / 12.0
            for lane in range(LANES):
                service[o, lane] = max(-op_state[S_CASH][o, lane], 0.0) * spread
                drawn_now[o, lane] = 0.0
        # 1. draws and 3. debt service of each facility
        for f in range(n_fac):
            o = int(facilities[f, F_OP])
            rate = facilities[f, F_RATE] + (rate_base if facilities[f, F_FIXED] < 0.5 else 0.0)
            amort_start = facilities[f, F_AMORT_START]
            b_share = facilities[f, F_BALLOON]
            # (each lane loop stores to at most two arrays: with more, LLVM cannot
            # prove the stores independent and leaves the loop scalar)
            for lane in range(LANES):
                draw = g_draw[t, f, lane]
                drawn = fac_state[SF_DRAWN][f, lane] + draw
                fac_state[SF_DRAWN][f, lane] = drawn
                # draws end at the original maturity: never after a refinancing
                balloon = fac_state[SF_BALLOON][f, lane]
                fac_state[SF_BALLOON][f, lane] = b_share * drawn if draw > 0.0 else balloon
            for lane in range(LANES):
                draw = g_draw[t, f, lane]
                maturity = fac_state[SF_MATURITY][f, lane]
                out = fac_state[SF_OUT][f, lane] + draw
                interest = out * rate / 12.0
                due = (t >= amort_start) & (t <= maturity)
                left = max(out - fac_state[SF_BALLOON][f, lane], 0.0)
                scheduled = left / (maturity - t + 1.0) if due else 0.0
                fac_state[SF_OUT][f, lane] = out - scheduled
                service[o, lane] += interest + scheduled
            for lane in range(LANES):
                drawn_now[o, lane] += g_draw[t, f, lane]
        # 2., 4. EBITDA and cash of operators not in default
        for o in range(n_ops):
            # (values loaded before the selects: a load under a condition is a
            # masked move on AVX2)
            for lane in range(LANES):
                alive = op_state[S_DEFAULT][o, lane] >= t
                ebitda, due = g_ebitda[t, o, lane], service[o, lane]
                e = ebitda if alive else 0.0
                d = due if alive else 0.0
                flow = e + g_other[t, o, lane] + drawn_now[o, lane] - d
                op_state[S_CASH][o, lane] += flow if alive else 0.0
            # running sums in their own arrays (no read of month t - 1: vectorises)
            for lane in range(LANES):
                ebitda = g_ebitda[t, o, lane]
                sum_e[o, lane] += ebitda if op_state[S_DEFAULT][o, lane] >= t else 0.0
                cum_e[t, o, lane] = sum_e[o, lane]
            for lane in range(LANES):
                due = service[o, lane]
                sum_d[o, lane] += due if op_state[S_DEFAULT][o, lane] >= t else 0.0
                cum_d[t, o, lane] = sum_d[o, lane]
            for lane in range(LANES):
                breach_any[o, lane] = 0.0
                fails[o, lane] = 0.0
            for lane in range(LANES):
                out_total[o, lane] = 0.0
                value_total[o, lane] = 0.0
            for lane in range(LANES):
                tested_any[o, lane] = 0.0
        # 5. tests of each facility
        for f in range(n_fac):
            _test_facility(
                t, f, g_value, paths, u_refi, pair_facility, pair_gen, facilities, keep,
                fac_state, op_state, j_now, cum_e, cum_d, breach_any, fails, out_total,
                value_total, tested_any, value, fac_sums, b,
            )  # fmt: skip
        for o in range(n_ops):
            limit = -ops[o, O_LIQUIDITY]
            w0 = max(t - int(ops[o, O_WINDOW]), 0)
            # selects of values all loaded, conditions joined with & (not `and`,
            # which branches around the loads): the loops vectorise
            for lane in range(LANES):
                alive = op_state[S_DEFAULT][o, lane] >= t
                fail = fails[o, lane]
                dry = alive & (op_state[S_CASH][o, lane] < limit) & (fail == 0.0)
                fails[o, lane] = CAUSE_LIQUIDITY if dry else fail
                first_breach = op_state[S_FIRST_BREACH][o, lane]
                new_breach = alive & (breach_any[o, lane] > 0.0) & (first_breach > t)
                op_state[S_FIRST_BREACH][o, lane] = t if new_breach else first_breach
            for lane in range(LANES):
                alive = op_state[S_DEFAULT][o, lane] >= t
                d_w = cum_d[t, o, lane] - cum_d[w0, o, lane]
                ratio = (cum_e[t, o, lane] - cum_e[w0, o, lane]) / d_w
                has = alive & (d_w > 0.0)
                dscr = ratio if has else np.nan
                dscr_now[o, lane] = dscr
                low = op_state[S_MIN_DSCR][o, lane]
                tested = has & (tested_any[o, lane] > 0.0)
                op_state[S_MIN_DSCR][o, lane] = min(low, dscr) if tested else low
            record_lanes_month(
                b, o, t, op_state, g_ebitda, dscr_now, breach_any, fails, out_total,
                value_total, ops, fsc, month_sums, fan_bins, fixed, fixed_bits,
            )  # fmt: skip
            n_fail = 0
            for lane in range(LANES):
                n_fail += 1 if (op_state[S_DEFAULT][o, lane] >= t) & (fails[o, lane] > 0.0) else 0
            if n_fail == 0:
                continue
            for lane in range(LANES):
                if op_state[S_DEFAULT][o, lane] >= t and fails[o, lane] > 0.0:
                    op_state[S_DEFAULT][o, lane] = t
                    op_state[S_CAUSE][o, lane] = fails[o, lane]
            any_default = True
            for f in range(n_fac):
                if int(facilities[f, F_OP]) != o:
                    continue
                for lane in range(LANES):
                    # lenders with a claim repossess and sell; a repaid loan's GPUs stay put
                    if op_state[S_DEFAULT][o, lane] == t and fac_state[SF_OUT][f, lane] > 0.0:
                        fac_state[SF_EAD][f, lane] = fac_state[SF_OUT][f, lane]
                        fac_state[SF_SELL_FROM][f, lane] = t + 1
        # lenders' sales and the impact they leave (nothing to do before a first default)
        if any_default:
            lenders_sales(
                t, t, paths, ch_resale, g_months, phases, pair_gen, facilities, gens, keep,
                fac_state, j_now, sold,
            )  # fmt: skip
    lenders_sales(
        horizon + 1, horizon, paths, ch_resale, g_months, phases, pair_gen, facilities, gens,
        keep, fac_state, j_now, sold,
    )  # fmt: skip


@njit(cache=True, error_model="numpy")
def _test_facility(
    t: int,
    f: int,
    g_value: np.ndarray,
    paths: np.ndarray,
    u_refi: np.ndarray,
    pair_facility: np.ndarray,
    pair_gen: np.ndarray,
    facilities: np.ndarray,
    keep: np.ndarray,
    fac_state: np.ndarray,
    op_state: np.ndarray,
    j_now: np.ndarray,
    cum_e: np.ndarray,
    cum_d: np.ndarray,
    breach_any: np.ndarray,
    fails: np.ndarray,
    out_total: np.ndarray,
    value_total: np.ndarray,
    tested_any: np.ndarray,
    value: np.ndarray,
    fac_sums: np.ndarray,
    b: int,
) -> None:
    """Covenant and maturity tests of facility f in month t, on every lane."""
    o = int(facilities[f, F_OP])
    for lane in range(LANES):
        value[f, lane] = 0.0
    for k in range(pair_facility.shape[0]):
        if pair_facility[k] != f:
            continue
        g = pair_gen[k]
        kt = keep[g, t]
        for lane in range(LANES):
            value[f, lane] += g_value[t, k, lane] * keep_ratio(kt, j_now[g, lane])
    w0 = max(t - int(facilities[f, F_WINDOW]), 0)
    first_test, min_dscr = facilities[f, F_FIRST_TEST], facilities[f, F_MIN_DSCR]
    max_ltv, cure = facilities[f, F_MAX_LTV], facilities[f, F_CURE]
    maturing = 0
    # every field loaded and every condition joined with & (`and` branches around
    # loads, which AVX2 can only vectorise with masked moves): selects only
    for lane in range(LANES):
        out = fac_state[SF_OUT][f, lane]
        v = value[f, lane]
        ltv = out / v if out > 0.0 else 0.0  # a balance on no collateral: +inf
        e_w = cum_e[t, o, lane] - cum_e[w0, o, lane]
        d_w = cum_d[t, o, lane] - cum_d[w0, o, lane]
        alive = op_state[S_DEFAULT][o, lane] >= t
        run_before = fac_state[SF_RUN][f, lane]
        fail = fails[o, lane]
        maturity = fac_state[SF_MATURITY][f, lane]
        tested = alive & (t >= first_test) & (out > 0.0)
        low = (d_w > 0.0) & (e_w < min_dscr * d_w)
        breach = tested & (low | (ltv > max_ltv))
        run = run_before + 1.0 if breach else 0.0
        fac_state[SF_RUN][f, lane] = run
        breach_any[o, lane] += 1.0 if breach else 0.0
        tested_any[o, lane] += 1.0 if tested else 0.0
        # causes of one month: refinancing before covenant before liquidity (max code)
        fails[o, lane] = max(fail, CAUSE_COVENANT) if alive & (run >= cure) else fail
        out_total[o, lane] += out if alive else 0.0
        value_total[o, lane] += v if alive else 0.0
        value[f, lane] = ltv
        maturing += 1 if alive & (t == maturity) & (out > 1e-6) else 0
    if maturing == 0:
        return
    # refinancing of the balance left at maturity (rare: scalar)
    for lane in range(LANES):
        alive = op_state[S_DEFAULT][o, lane] >= t
        out = fac_state[SF_OUT][f, lane]
        if not (alive and t == fac_state[SF_MATURITY][f, lane] and out > 1e-6):
            continue
        ltv = value[f, lane]
        x = facilities[f, F_REFI_A] + facilities[f, F_REFI_B] * (ltv - 0.6)
        if paths[0, t, lane] < facilities[f, F_STRESS]:
            x += facilities[f, F_REFI_C]
        p_fail = 1.0 / (1.0 + math.exp(-x)) if ltv < math.inf else 1.0
        if fac_state[SF_RUN][f, lane] > 0.0 or u_refi[f, lane] < p_fail:
            fails[o, lane] = CAUSE_REFINANCING
        else:
            fac_state[SF_MATURITY][f, lane] = t + facilities[f, F_REFI_TERM]
            fac_state[SF_BALLOON][f, lane] = 0.0
            fac_sums[b, f, FR_REFINANCED] += 1
