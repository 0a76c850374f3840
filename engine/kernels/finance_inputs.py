"""One path's finance inputs, gathered into a group buffer (lanes innermost).

The finance runs on groups of up to ``GROUP`` paths at once (SIMD lanes, as the
market kernel does): :func:`gather_path` turns one path's contract revenue and
cash, market channels and energization months into monthly EBITDA before debt,
other cash, collateral value at market prices and the series the month loop
reads, each stored at ``[t, ..., lane]`` so that the month loop of
engine/kernels/finance.py reads contiguous lanes. What the month loop reads
only rarely (resale values for lenders' sales, the demand factor at a
maturity) it reads from the paths' market channels directly.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.finance_fields import (
    F_MATURITY,
    F_PRINCIPAL,
    F_UPFRONT,
    FS_CH_CAPEX,
    FS_CH_ENERGY,
    FS_CH_RENT,
    FS_CH_RESALE,
    FS_MERCHANT_U,
    O_FIXED_OPEX,
    O_OPEX_MW,
    PH_DRAW,
    PH_FACILITY,
    PH_FREE_GPUS,
    PH_GEN,
    PH_GPU_CAPEX,
    PH_GPUS,
    PH_MW,
    PH_OP,
    PH_PAIR,
)
from engine.market_arrays import HOURS_PER_MONTH

__all__ = ["gather_path"]


@njit(cache=True)
def gather_path(
    lane: int,
    months: np.ndarray,
    fp: np.ndarray,
    revenue: np.ndarray,
    contract_revenue: np.ndarray,
    contract_cash: np.ndarray,
    customer_default: np.ndarray,
    ops: np.ndarray,
    phases: np.ndarray,
    pair_gen: np.ndarray,
    facilities: np.ndarray,
    fsc: np.ndarray,
    scratch: np.ndarray,
    g_ebitda: np.ndarray,
    g_other: np.ndarray,
    g_draw: np.ndarray,
    g_value: np.ndarray,
    g_months: np.ndarray,
    g_customer_default: np.ndarray,
    g_contract_revenue: np.ndarray,
) -> None:
    """Write one path's finance inputs into lane ``lane`` of the group buffers.

    Parameters
    ----------
    lane : int
        The path's lane in the group.
    months : numpy.ndarray
        ``int64[P]`` energization month of each phase (> T: never).
    fp : numpy.ndarray
        ``float64[channels, T + 1]`` market channels: AI-demand factor, rents
        ($/GPU-hr), resale values ($/GPU) by generation; energy cost and facility
        capex by operator ($/month).
    revenue, contract_revenue, contract_cash : numpy.ndarray
        ``float64[O, T + 2]`` contract revenue with re-letting, without, and the
        contracts' other cash by operator and month ($).
    customer_default : numpy.ndarray
        ``int64[K]`` each customer's default month (> T: none).
    ops, phases, pair_gen, facilities, fsc : numpy.ndarray
        Lowered finance (:class:`engine.finance_arrays.FinanceArrays`).
    scratch : numpy.ndarray
        ``float64[2 O + n_pairs, T + 1]`` per-path scratch.
    g_ebitda, g_other : numpy.ndarray
        ``float64[T + 1, O, LANES]`` EBITDA (contract and merchant revenue -
        energy - opex) and other cash (contract cash - capex), $ per month.
    g_draw : numpy.ndarray
        ``float64[T + 1, F, LANES]`` each facility's draws, $ (zeroed by the
        caller for the group): a collateral phase draws its share of the principal
        when energized, up to the facility's maturity; an up-front facility draws
        it all in month 1.
    g_value : numpy.ndarray
        ``float64[T + 1, n_pairs, LANES]`` GPUs of each (facility, generation)
        collateral pair energized by t x the market resale value, $.
    g_months, g_customer_default : numpy.ndarray
        ``int64[P, LANES]`` and ``int64[K, LANES]``.
    g_contract_revenue : numpy.ndarray
        ``float64[O, LANES]`` contract revenue over the horizon ($, no re-letting).
    """
    horizon = fp.shape[1] - 1
    n_ops, n_pairs = g_ebitda.shape[1], g_value.shape[1]
    merchant_u = fsc[FS_MERCHANT_U]
    ch_rent, ch_resale = int(fsc[FS_CH_RENT]), int(fsc[FS_CH_RESALE])
    ch_energy, ch_capex = int(fsc[FS_CH_ENERGY]), int(fsc[FS_CH_CAPEX])
    mw = scratch[0:n_ops]
    merchant = scratch[n_ops : 2 * n_ops]
    units = scratch[2 * n_ops : 2 * n_ops + n_pairs]
    scratch[:, :] = 0.0
    for p in range(phases.shape[0]):
        m = months[p]
        g_months[p, lane] = m
        if m > horizon:
            continue
        o, g = int(phases[p, PH_OP]), int(phases[p, PH_GEN])
        mw[o, m] += phases[p, PH_MW]
        k = int(phases[p, PH_PAIR])
        if k >= 0:
            units[k, m] += phases[p, PH_GPUS]
        free = phases[p, PH_FREE_GPUS] * HOURS_PER_MONTH * merchant_u
        if free > 0.0:
            for t in range(m, horizon + 1):
                merchant[o, t] += free * fp[ch_rent + g, t]
    for o in range(n_ops):
        fixed, per_mw = ops[o, O_FIXED_OPEX], ops[o, O_OPEX_MW]
        online, total = 0.0, 0.0
        for t in range(1, horizon + 1):
            online += mw[o, t]
            g_ebitda[t, o, lane] = (
                revenue[o, t] + merchant[o, t] - fp[ch_energy + o, t] - fixed - per_mw * online
            )
            g_other[t, o, lane] = contract_cash[o, t] - fp[ch_capex + o, t]
            total += contract_revenue[o, t]
        g_contract_revenue[o, lane] = total
    for p in range(phases.shape[0]):
        m = months[p]
        if m <= horizon:
            g_other[m, int(phases[p, PH_OP]), lane] -= phases[p, PH_GPU_CAPEX]
    for f in range(facilities.shape[0]):
        if facilities[f, F_UPFRONT] > 0.5:
            g_draw[1, f, lane] = facilities[f, F_PRINCIPAL]
    for p in range(phases.shape[0]):
        m, f = months[p], int(phases[p, PH_FACILITY])
        if f >= 0 and facilities[f, F_UPFRONT] < 0.5 and m <= facilities[f, F_MATURITY]:
            if m <= horizon:
                g_draw[m, f, lane] += phases[p, PH_DRAW]
    for k in range(n_pairs):
        g, held = pair_gen[k], 0.0
        for t in range(1, horizon + 1):
            held += units[k, t]
            g_value[t, k, lane] = held * fp[ch_resale + g, t]
    for k in range(customer_default.shape[0]):
        g_customer_default[k, lane] = customer_default[k]
