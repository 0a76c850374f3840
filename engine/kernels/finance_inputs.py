"""A group's finance inputs, gathered into group buffers (lanes innermost).

The finance runs on groups of up to ``GROUP`` paths at once (SIMD lanes, as the
market kernel does). :func:`gather_path` scatters one path's energization
months (MW, collateral GPUs, draws) into the group buffers; :func:`gather_group`
then turns them, with the group's contract revenue and cash and its market
channels, into monthly EBITDA before debt, other cash and collateral value at
market prices, month by month across the lanes (vectorised). Each is
stored at ``[t, ..., lane]`` so that the month loop of engine/kernels/finance.py
reads contiguous lanes. What the month loop reads only rarely (resale values
for lenders' sales, the demand factor at a maturity) it reads from the
group's market channels directly.
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
from engine.kernels.lanes import LANES
from engine.market_layout import HOURS_PER_MONTH

__all__ = ["clear_draws", "gather_group", "gather_path"]


@njit(cache=True)
def gather_path(
    lane: int,
    phases: np.ndarray,
    facilities: np.ndarray,
    g_months: np.ndarray,
    g_draw: np.ndarray,
    g_mw: np.ndarray,
    g_units: np.ndarray,
) -> None:
    """Scatter one path's energization months into lane ``lane`` of the group buffers.

    Parameters
    ----------
    lane : int
        The path's lane in the group.
    phases, facilities : numpy.ndarray
        Lowered finance (:class:`engine.finance_arrays.FinanceArrays`).
    g_months : numpy.ndarray
        ``int64[P, LANES]`` energization month of each phase (> T: never).
    g_draw : numpy.ndarray
        ``float64[T + 1, F, LANES]`` each facility's draws, $ (zero on entry;
        :func:`clear_draws` clears it after the group): a collateral phase draws
        its share of the principal when energized, up to the facility's maturity;
        an up-front facility draws it all in month 1.
    g_mw, g_units : numpy.ndarray
        ``float64[T + 1, O, LANES]`` MW and ``float64[T + 1, n_pairs, LANES]``
        collateral GPUs energized in each month (zero on entry; added here,
        cleared by :func:`gather_group`).
    """
    horizon = g_draw.shape[0] - 1
    for p in range(phases.shape[0]):
        m = g_months[p, lane]
        if m > horizon:
            continue
        g_mw[m, int(phases[p, PH_OP]), lane] += phases[p, PH_MW]
        k = int(phases[p, PH_PAIR])
        if k >= 0:
            g_units[m, k, lane] += phases[p, PH_GPUS]
    for f in range(facilities.shape[0]):
        if facilities[f, F_UPFRONT] > 0.5:
            g_draw[1, f, lane] = facilities[f, F_PRINCIPAL]
    for p in range(phases.shape[0]):
        m, f = g_months[p, lane], int(phases[p, PH_FACILITY])
        if f >= 0 and facilities[f, F_UPFRONT] < 0.5 and m <= facilities[f, F_MATURITY]:
            if m <= horizon:
                g_draw[m, f, lane] += phases[p, PH_DRAW]


@njit(cache=True)
def gather_group(
    n_active: int,
    fp: np.ndarray,
    revenue: np.ndarray,
    cash: np.ndarray,
    ops: np.ndarray,
    phases: np.ndarray,
    pair_gen: np.ndarray,
    fsc: np.ndarray,
    merchant: np.ndarray,
    online: np.ndarray,
    g_ebitda: np.ndarray,
    g_other: np.ndarray,
    g_mw: np.ndarray,
    g_units: np.ndarray,
    g_value: np.ndarray,
    g_months: np.ndarray,
    g_contract_revenue: np.ndarray,
) -> None:
    """Complete a group's inputs once every path has been gathered (:func:`gather_path`).

    EBITDA = contract revenue (with re-letting) + merchant revenue of the GPUs
    not under contract (rent x hours x merchant utilisation, from energization)
    - energy - fixed opex - opex per MW online; other cash = the contracts'
    other cash - facility capex (market channel) - GPU capex (at energization);
    collateral value = GPUs of each (facility, generation) pair energized by t x
    the resale value. Sums run in the same order for every lane: a phase not
    yet energized adds exactly 0.

    Parameters
    ----------
    n_active : int
        Lanes holding a path (the caller sets the others' months to "never").
    fp : numpy.ndarray
        ``float64[channels, T + 1, LANES]`` the group's market channels: AI-demand
        factor, rents ($/GPU-hr), resale values ($/GPU) by generation; energy
        cost and facility capex by operator ($/month).
    revenue, cash : numpy.ndarray
        ``float64[O + 1, 2, T + 1, LANES]`` contract revenue by scope (total, then
        each operator) without and with re-letting, and ``float64[O, T + 2,
        LANES]`` the contracts' other cash by operator
        (:func:`engine.kernels.contracts.contract_group`), $ per month.
    ops, phases, pair_gen, fsc : numpy.ndarray
        Lowered finance (:class:`engine.finance_arrays.FinanceArrays`).
    merchant, online : numpy.ndarray
        ``float64[T + 1, LANES]`` and ``float64[LANES]`` scratch.
    g_ebitda, g_other, g_mw, g_units, g_value, g_months : numpy.ndarray
        Group buffers: ``g_ebitda`` and ``g_other`` ``float64[T + 1, O, LANES]``
        and ``g_value`` ``float64[T + 1, n_pairs, LANES]`` written; ``g_mw`` and
        ``g_units`` (:func:`gather_path`) cleared.
    g_contract_revenue : numpy.ndarray
        ``float64[O, LANES]`` written: contract revenue over the horizon ($, no
        re-letting).
    """
    horizon = g_ebitda.shape[0] - 1
    n_ops, n_pairs = g_ebitda.shape[1], g_value.shape[1]
    n_phases = phases.shape[0]
    merchant_u = fsc[FS_MERCHANT_U]
    ch_rent, ch_resale = int(fsc[FS_CH_RENT]), int(fsc[FS_CH_RESALE])
    ch_energy, ch_capex = int(fsc[FS_CH_ENERGY]), int(fsc[FS_CH_CAPEX])
    never = horizon + 1
    for o in range(n_ops):
        fixed, per_mw = ops[o, O_FIXED_OPEX], ops[o, O_OPEX_MW]
        for t in range(horizon + 1):
            for lane in range(LANES):
                merchant[t, lane] = 0.0
        for p in range(n_phases):
            free = phases[p, PH_FREE_GPUS] * HOURS_PER_MONTH * merchant_u
            if int(phases[p, PH_OP]) != o or not free > 0.0:
                continue
            g = int(phases[p, PH_GEN])
            first = never
            for lane in range(LANES):
                first = min(first, g_months[p, lane])
            for t in range(max(first, 1), horizon + 1):
                for lane in range(LANES):
                    add = free * fp[ch_rent + g, t, lane]
                    merchant[t, lane] += add if g_months[p, lane] <= t else 0.0
        for lane in range(LANES):
            online[lane] = 0.0
            g_contract_revenue[o, lane] = 0.0
        for t in range(1, horizon + 1):
            # (at most two arrays stored per lane loop: LLVM then vectorises it)
            for lane in range(LANES):
                online[lane] += g_mw[t, o, lane]
                g_ebitda[t, o, lane] = (
                    revenue[1 + o, 1, t, lane]
                    + merchant[t, lane]
                    - fp[ch_energy + o, t, lane]
                    - fixed
                    - per_mw * online[lane]
                )
            for lane in range(LANES):
                g_contract_revenue[o, lane] += revenue[1 + o, 0, t, lane]
            for lane in range(LANES):
                g_other[t, o, lane] = cash[o, t, lane] - fp[ch_capex + o, t, lane]
    for lane in range(n_active):
        for p in range(n_phases):
            m = g_months[p, lane]
            if m <= horizon:
                g_other[m, int(phases[p, PH_OP]), lane] -= phases[p, PH_GPU_CAPEX]
    for k in range(n_pairs):
        g = pair_gen[k]
        for lane in range(LANES):
            online[lane] = 0.0  # GPUs held
        for t in range(1, horizon + 1):
            for lane in range(LANES):
                online[lane] += g_units[t, k, lane]
                g_value[t, k, lane] = online[lane] * fp[ch_resale + g, t, lane]
    # clear what gather_path added, for the next group
    for lane in range(n_active):
        for p in range(n_phases):
            m = g_months[p, lane]
            if m <= horizon:
                g_mw[m, int(phases[p, PH_OP]), lane] = 0.0
                k = int(phases[p, PH_PAIR])
                if k >= 0:
                    g_units[m, k, lane] = 0.0


@njit(cache=True)
def clear_draws(
    n_active: int,
    phases: np.ndarray,
    facilities: np.ndarray,
    g_months: np.ndarray,
    g_draw: np.ndarray,
) -> None:
    """Zero the entries of ``g_draw`` that :func:`gather_path` wrote for the group."""
    horizon = g_draw.shape[0] - 1
    for lane in range(n_active):
        for f in range(facilities.shape[0]):
            g_draw[1, f, lane] = 0.0
        for p in range(phases.shape[0]):
            m, f = g_months[p, lane], int(phases[p, PH_FACILITY])
            if f >= 0 and m <= horizon:
                g_draw[m, f, lane] = 0.0
