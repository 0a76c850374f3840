"""Finance of one path: operators' cash, debt service, covenants, defaults, fire sales.

Run by the contract kernel (engine/kernels/contracts.py) for each path, right
after the path's contracts, on its revenue and contract cash by operator, its
market paths (rents, resale values, energy cost and facility capex by
operator, written by the market kernel) and its energization months.

Order of events in month t (docs/model.md §10.2), the same on every path, for
each operator not yet in default, in book order:

1. draws (collateral phases energized in t, or all in month 1 when up front);
2. EBITDA = contract revenue + merchant revenue - energy - opex;
3. debt service: interest on the balance after the draws (fixed, or base rate +
   spread), scheduled principal, interest on a drawn revolver;
4. cash += EBITDA + contract cash (prepayments, credits, refunds, recoveries)
   - capex (facility and GPUs of the phases energized in t) + draws - service;
5. tests: DSCR (trailing window) and LTV (outstanding / collateral GPUs x resale
   x fire-sale keep) against each facility's covenants from its first test
   month; a breach lasting ``cure`` months, cash below -liquidity, or a failed
   refinancing at maturity is a default of the operator (all its facilities).

Then, for the whole book: lenders of operators in default sell their collateral
in equal parts over the months after the default month; the units sold in t
add to each generation's fire-sale impact J, which lowers every collateral
value from t + 1 on: J <- J 2^(-1/h) + lambda x sold / installed base.
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
    F_DISCOUNT,
    F_FIRST_TEST,
    F_FIXED,
    F_LIQ_MONTHS,
    F_MATURITY,
    F_MAX_LTV,
    F_MIN_DSCR,
    F_OP,
    F_PRINCIPAL,
    F_RATE,
    F_REFI_A,
    F_REFI_B,
    F_REFI_C,
    F_REFI_TERM,
    F_STRESS,
    F_UPFRONT,
    F_WINDOW,
    FS_CH_CAPEX,
    FS_CH_ENERGY,
    FS_CH_RENT,
    FS_CH_RESALE,
    FS_MERCHANT_U,
    G_DECAY,
    G_IMPACT,
    O_CASH0,
    O_FIXED_OPEX,
    O_LIQ_SPREAD,
    O_LIQUIDITY,
    O_OPEX_MW,
    O_WINDOW,
    PH_DRAW,
    PH_FACILITY,
    PH_FREE_GPUS,
    PH_GEN,
    PH_GPU_CAPEX,
    PH_GPUS,
    PH_MW,
    PH_OP,
)
from engine.kernels.finance_records import record_month, record_path
from engine.market_arrays import HOURS_PER_MONTH

__all__ = ["finance_path", "fw_rows"]

NEVER = 1 << 30


@njit(cache=True)
def fw_rows(n_ops: int, n_fac: int, n_gens: int) -> int:
    """Rows of the finance path scratch ``fw`` (see :func:`finance_path`)."""
    return 5 * n_ops + n_fac * n_gens + n_fac


@njit(cache=True, inline="always")
def _ratio(x: float, d: float) -> float:
    """x / d, or +inf for d <= 0 (callers test ``d > 0`` first where it matters)."""
    return x / d if d > 0.0 else math.inf


@njit(cache=True)
def finance_path(
    b: int,
    u_refi: np.ndarray,
    months: np.ndarray,
    fp: np.ndarray,
    revenue: np.ndarray,
    contract_revenue: np.ndarray,
    contract_cash: np.ndarray,
    customer_default: np.ndarray,
    ops: np.ndarray,
    phases: np.ndarray,
    facilities: np.ndarray,
    gens: np.ndarray,
    keep: np.ndarray,
    base_rate: np.ndarray,
    fsc: np.ndarray,
    targets: np.ndarray,
    target_ops: np.ndarray,
    target_customers: np.ndarray,
    fw: np.ndarray,
    state: np.ndarray,
    istate: np.ndarray,
    month_sums: np.ndarray,
    fan_bins: np.ndarray,
    lane: int,
    op_sums: np.ndarray,
    min_dscr_hist: np.ndarray,
    loss_hist: np.ndarray,
    fac_sums: np.ndarray,
    joint: np.ndarray,
    trace: np.ndarray,
) -> None:
    """Simulate one path's operator finance and add its records to block ``b``.

    Parameters
    ----------
    b : int
        Block of the partial results.
    u_refi : numpy.ndarray
        ``float64[F]`` one uniform per facility (refinancing at maturity).
    months : numpy.ndarray
        ``int64[P]`` energization month of each phase (> T: never).
    fp : numpy.ndarray
        ``float64[channels, T + 1]`` the path's market channels: AI-demand
        factor, rents ($/GPU-hr) and resale values ($/GPU) by generation, energy
        cost and facility capex by operator ($/month).
    revenue, contract_revenue, contract_cash : numpy.ndarray
        ``float64[O, T + 2]`` contract revenue with re-letting, without, and the
        contracts' other cash (prepayments received, credited, refunded;
        recoveries), $ by operator and month.
    customer_default : numpy.ndarray
        ``int64[K]`` each customer's default month (> T: none).
    ops, phases, facilities, gens, keep, base_rate, fsc : numpy.ndarray
        Lowered finance (:class:`engine.finance_arrays.FinanceArrays`).
    targets, target_ops, target_customers : numpy.ndarray
        Joint targets: thresholds and flags, and the operators and customers
        each one names.
    fw, state, istate : numpy.ndarray
        Scratch: ``float64[fw_rows, T + 2]``, ``float64[10, max(O, F, G)]``,
        ``int64[6, max(O, F)]``.
    month_sums, fan_bins, lane, op_sums, min_dscr_hist, loss_hist, fac_sums, joint
        Block records (:mod:`engine.kernels.finance_records`); fan bins are
        written in row ``lane`` of ``fan_bins`` and added by the caller per group.
    trace : numpy.ndarray
        ``float64[O, 4, T + 1]`` written with each operator's cash, EBITDA, DSCR
        and LTV by month (nan: undefined or in default), or ``float64[0, 0, 0]``.
    """
    horizon = fp.shape[1] - 1
    n_ops, n_fac, n_gens = ops.shape[0], facilities.shape[0], gens.shape[0]
    n_phases = phases.shape[0]
    merchant_u = fsc[FS_MERCHANT_U]
    ch_rent, ch_resale = int(fsc[FS_CH_RENT]), int(fsc[FS_CH_RESALE])
    ch_energy, ch_capex = int(fsc[FS_CH_ENERGY]), int(fsc[FS_CH_CAPEX])
    # scratch rows: MW online, GPU capex, merchant revenue, cumulative EBITDA and
    # debt service by operator; collateral units by facility and generation; draws
    mw = fw[0:n_ops]
    gpu_capex = fw[n_ops : 2 * n_ops]
    merchant = fw[2 * n_ops : 3 * n_ops]
    cum_e = fw[3 * n_ops : 4 * n_ops]
    cum_ds = fw[4 * n_ops : 5 * n_ops]
    units = fw[5 * n_ops : 5 * n_ops + n_fac * n_gens]
    draws = fw[5 * n_ops + n_fac * n_gens : 5 * n_ops + n_fac * n_gens + n_fac]
    fw[:, :] = 0.0
    cash, min_dscr = state[0], state[1]
    out, drawn, balloon, ead = state[2], state[3], state[4], state[5]
    proceeds, impact, sold = state[6], state[7], state[8]
    tested_dscr = state[9]
    maturity, run, default_month = istate[0], istate[1], istate[2]
    cause, first_breach, sell_from = istate[3], istate[4], istate[5]
    for o in range(n_ops):
        cash[o] = ops[o, O_CASH0]
        min_dscr[o] = math.inf
        tested_dscr[o] = 0.0
        default_month[o] = NEVER
        cause[o] = 0
        first_breach[o] = NEVER
    for f in range(n_fac):
        out[f], drawn[f], balloon[f], ead[f], proceeds[f] = 0.0, 0.0, 0.0, 0.0, 0.0
        maturity[f] = int(facilities[f, F_MATURITY])
        run[f] = 0
        sell_from[f] = NEVER
        if facilities[f, F_UPFRONT] > 0.5:
            draws[f, 1] = facilities[f, F_PRINCIPAL]
    for g in range(n_gens):
        impact[g] = 0.0
    tracing = trace.shape[0] > 0
    if tracing:
        trace[:, :, :] = np.nan
    # what the energization months decide: MW online, GPU capex, merchant
    # revenue, collateral units and draws (difference arrays, then running sums)
    for p in range(n_phases):
        m = months[p]
        if m > horizon:
            continue
        o, g = int(phases[p, PH_OP]), int(phases[p, PH_GEN])
        mw[o, m] += phases[p, PH_MW]
        gpu_capex[o, m] += phases[p, PH_GPU_CAPEX]
        free = phases[p, PH_FREE_GPUS] * HOURS_PER_MONTH * merchant_u
        if free > 0.0:
            for t in range(m, horizon + 1):
                merchant[o, t] += free * fp[ch_rent + g, t]
        f = int(phases[p, PH_FACILITY])
        if f >= 0:
            units[f * n_gens + g, m] += phases[p, PH_GPUS]
            if facilities[f, F_UPFRONT] < 0.5 and m <= maturity[f]:
                draws[f, m] += phases[p, PH_DRAW]
    for t in range(1, horizon + 1):
        for o in range(n_ops):
            mw[o, t] += mw[o, t - 1]
        for k in range(n_fac * n_gens):
            units[k, t] += units[k, t - 1]
    for t in range(1, horizon + 1):
        rate_base = base_rate[t]
        stress = fp[0, t]
        for o in range(n_ops):
            cum_e[o, t] = cum_e[o, t - 1]
            cum_ds[o, t] = cum_ds[o, t - 1]
            if default_month[o] < t:
                continue
            ebitda = (
                revenue[o, t]
                + merchant[o, t]
                - fp[ch_energy + o, t]
                - ops[o, O_FIXED_OPEX]
                - ops[o, O_OPEX_MW] * mw[o, t]
            )
            capex = fp[ch_capex + o, t] + gpu_capex[o, t]
            liquidity_interest = max(-cash[o], 0.0) * (rate_base + ops[o, O_LIQ_SPREAD]) / 12.0
            service = liquidity_interest
            drawn_now = 0.0
            for f in range(n_fac):
                if int(facilities[f, F_OP]) != o:
                    continue
                draw = draws[f, t]
                if draw > 0.0:
                    drawn[f] += draw
                    out[f] += draw
                    drawn_now += draw
                    if maturity[f] == int(facilities[f, F_MATURITY]):
                        balloon[f] = facilities[f, F_BALLOON] * drawn[f]
                rate = facilities[f, F_RATE]
                if facilities[f, F_FIXED] < 0.5:
                    rate += rate_base
                interest = out[f] * rate / 12.0
                scheduled = 0.0
                if t >= int(facilities[f, F_AMORT_START]) and t <= maturity[f]:
                    scheduled = max(out[f] - balloon[f], 0.0) / (maturity[f] - t + 1)
                out[f] -= scheduled
                service += interest + scheduled
            cash[o] += ebitda + contract_cash[o, t] - capex + drawn_now - service
            cum_e[o, t] += ebitda
            cum_ds[o, t] += service
            # tests
            breach_any = False
            fails = 0
            out_total, value_total = 0.0, 0.0
            for f in range(n_fac):
                if int(facilities[f, F_OP]) != o:
                    continue
                value = 0.0
                for g in range(n_gens):
                    n_units = units[f * n_gens + g, t]
                    if n_units > 0.0:
                        value += n_units * _price(fp, ch_resale, keep, impact, g, t)
                out_total += out[f]
                value_total += value
                w0 = max(t - int(facilities[f, F_WINDOW]), 0)
                e_w, d_w = cum_e[o, t] - cum_e[o, w0], cum_ds[o, t] - cum_ds[o, w0]
                ltv = _ratio(out[f], value) if out[f] > 0.0 else 0.0
                breach = False
                if t >= int(facilities[f, F_FIRST_TEST]) and out[f] > 0.0:
                    dscr_low = d_w > 0.0 and e_w < facilities[f, F_MIN_DSCR] * d_w
                    breach = dscr_low or ltv > facilities[f, F_MAX_LTV]
                run[f] = run[f] + 1 if breach else 0
                breach_any = breach_any or breach
                if run[f] >= int(facilities[f, F_CURE]):
                    fails = max(fails, CAUSE_COVENANT)
                if t == maturity[f] and out[f] > 1e-6:
                    x = facilities[f, F_REFI_A] + facilities[f, F_REFI_B] * (ltv - 0.6)
                    if stress < facilities[f, F_STRESS]:
                        x += facilities[f, F_REFI_C]
                    p_fail = 1.0 / (1.0 + math.exp(-x)) if ltv < math.inf else 1.0
                    if breach or u_refi[f] < p_fail:
                        fails = CAUSE_REFINANCING
                    else:
                        maturity[f] = t + int(facilities[f, F_REFI_TERM])
                        balloon[f] = 0.0
                        fac_sums[b, f, 7] += 1  # FR_REFINANCED
            if cash[o] < -ops[o, O_LIQUIDITY] and fails == 0:
                fails = CAUSE_LIQUIDITY
            if breach_any and first_breach[o] == NEVER:
                first_breach[o] = t
            # the operator's DSCR (its window): fans, minimum over tested months
            w0 = max(t - int(ops[o, O_WINDOW]), 0)
            e_w, d_w = cum_e[o, t] - cum_e[o, w0], cum_ds[o, t] - cum_ds[o, w0]
            has_dscr = d_w > 0.0
            dscr = e_w / d_w if has_dscr else 0.0
            if has_dscr and _tested(facilities, o, t, out):
                tested_dscr[o] = 1.0
                min_dscr[o] = min(min_dscr[o], dscr)
            has_ltv = out_total > 0.0
            ltv_o = _ratio(out_total, value_total) if has_ltv else 0.0
            if tracing:
                trace[o, 0, t], trace[o, 1, t] = cash[o], ebitda
                trace[o, 2, t] = dscr if has_dscr else np.nan
                trace[o, 3, t] = ltv_o if has_ltv else np.nan
            record_month(
                b,
                o,
                t,
                cash[o],
                ebitda,
                has_dscr,
                dscr,
                has_ltv,
                ltv_o,
                breach_any,
                first_breach[o] == t,
                fails > 0,
                ops,
                fsc,
                month_sums,
                fan_bins,
                lane,
            )
            if fails > 0:
                default_month[o] = t
                cause[o] = fails
                for f in range(n_fac):
                    if int(facilities[f, F_OP]) == o:
                        ead[f] = out[f]
                        sell_from[f] = t + 1
        # lenders' sales in month t, then the impact they have from t + 1 on
        for g in range(n_gens):
            sold[g] = 0.0
        for f in range(n_fac):
            n_sales = int(facilities[f, F_LIQ_MONTHS])
            if sell_from[f] <= t < sell_from[f] + n_sales:
                keep_share = (1.0 - facilities[f, F_DISCOUNT]) / n_sales
                for g in range(n_gens):
                    n_units = units[f * n_gens + g, sell_from[f] - 1]
                    if n_units > 0.0:
                        proceeds[f] += n_units * keep_share * _price(fp, ch_resale, keep, impact, g, t)
                        sold[g] += n_units / n_sales
        for g in range(n_gens):
            impact[g] = impact[g] * gens[g, G_DECAY] + gens[g, G_IMPACT] * sold[g]
    # sales after the horizon: at the month-T price
    for f in range(n_fac):
        n_sales = int(facilities[f, F_LIQ_MONTHS])
        left = sell_from[f] + n_sales - (horizon + 1)
        if sell_from[f] <= horizon + 1 and left > 0:
            keep_share = (1.0 - facilities[f, F_DISCOUNT]) / n_sales * left
            for g in range(n_gens):
                n_units = units[f * n_gens + g, sell_from[f] - 1]
                if n_units > 0.0:
                    proceeds[f] += n_units * keep_share * _price(
                        fp, ch_resale, keep, impact, g, horizon
                    )
    record_path(
        b,
        horizon,
        default_month,
        cause,
        tested_dscr,
        min_dscr,
        contract_revenue,
        customer_default,
        months,
        phases,
        facilities,
        ead,
        proceeds,
        sell_from,
        ops,
        fsc,
        targets,
        target_ops,
        target_customers,
        op_sums,
        min_dscr_hist,
        loss_hist,
        fac_sums,
        joint,
    )


@njit(cache=True, inline="always")
def _price(
    fp: np.ndarray, ch_resale: int, keep: np.ndarray, impact: np.ndarray, g: int, t: int
) -> float:
    """Resale value of one GPU of generation g in month t after the book's fire sales, $.

    The market's resale value carries the exogenous dumps' keep factor
    ``keep = max(0, 1 - I_t)``; with the book's own impact J it becomes
    max(0, 1 - I_t - J_t).
    """
    k = keep[g, t]
    if k <= 0.0:
        return 0.0
    return fp[ch_resale + g, t] * max(k - impact[g], 0.0) / k


@njit(cache=True, inline="always")
def _tested(facilities: np.ndarray, o: int, t: int, out: np.ndarray) -> bool:
    """Whether any facility of operator o with a balance is tested in month t."""
    for f in range(facilities.shape[0]):
        if int(facilities[f, F_OP]) == o and out[f] > 0.0 and t >= int(facilities[f, F_FIRST_TEST]):
            return True
    return False
