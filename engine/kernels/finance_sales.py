"""Lenders' sales of repossessed GPUs and the fire-sale impact they leave.

Called by the finance month loop (engine/kernels/finance.py) for a group of
paths (lanes): lenders of an operator in default sell their collateral in equal
parts over the ``liquidation_months`` after the default month, at the market
resale value less the fire-sale discount and less the book's own impact; the
units sold in month t add to each generation's impact J, which lowers every
collateral value (and later sales) from t + 1 on:
J <- J 2^(-1/h) + lambda x sold / installed base (h: the impact's half-life,
months; lambda: impact per unit of the installed base sold).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.finance_fields import (
    F_DISCOUNT,
    F_LIQ_MONTHS,
    G_DECAY,
    G_IMPACT,
    PH_FACILITY,
    PH_GPUS,
    PH_PAIR,
    SF_PROCEEDS,
    SF_SELL_FROM,
)
from engine.kernels.lanes import LANES

__all__ = ["keep_ratio", "lenders_sales"]


@njit(cache=True, error_model="numpy", inline="always")
def keep_ratio(keep: float, j: float) -> float:
    """Share of the market resale value left by the book's own impact j: max(0, keep - j) / keep."""
    return max(keep - j, 0.0) / keep if keep > 0.0 else 0.0


@njit(cache=True, error_model="numpy")
def lenders_sales(
    t: int,
    price_month: int,
    paths: np.ndarray,
    ch_resale: int,
    g_months: np.ndarray,
    phases: np.ndarray,
    pair_gen: np.ndarray,
    facilities: np.ndarray,
    gens: np.ndarray,
    keep: np.ndarray,
    fac_state: np.ndarray,
    j_now: np.ndarray,
    sold: np.ndarray,
) -> None:
    """Lenders' sales in month t, then the impact they add from t + 1 on.

    Called with ``t = T + 1`` after the horizon: every sale left is then made at
    the month-T price (``price_month``), without further impact.
    """
    horizon = paths.shape[1] - 1
    n_gens = gens.shape[0]
    for g in range(n_gens):
        for lane in range(LANES):
            sold[g, lane] = 0.0
    for f in range(facilities.shape[0]):
        n_sales = facilities[f, F_LIQ_MONTHS]
        share = (1.0 - facilities[f, F_DISCOUNT]) / n_sales
        for lane in range(LANES):
            start = fac_state[SF_SELL_FROM][f, lane]
            if t <= horizon:
                months_sold = 1.0 if start <= t < start + n_sales else 0.0
            else:  # every sale not made within the horizon
                months_sold = start + n_sales - t if start <= t else 0.0
            if months_sold <= 0.0:
                continue
            tau = int(start) - 1
            for p in range(phases.shape[0]):
                if int(phases[p, PH_FACILITY]) != f or g_months[p, lane] > tau:
                    continue
                g = pair_gen[int(phases[p, PH_PAIR])]
                units = phases[p, PH_GPUS]
                price = paths[ch_resale + g, price_month, lane] * keep_ratio(
                    keep[g, price_month], j_now[g, lane]
                )
                fac_state[SF_PROCEEDS][f, lane] += units * share * months_sold * price
                sold[g, lane] += units / n_sales
    if t > horizon:
        return
    for g in range(n_gens):
        decay, per_unit = gens[g, G_DECAY], gens[g, G_IMPACT]
        for lane in range(LANES):
            j_now[g, lane] = j_now[g, lane] * decay + per_unit * sold[g, lane]
