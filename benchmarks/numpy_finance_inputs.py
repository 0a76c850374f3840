"""The finance's inputs in plain NumPy: what does not depend on the paths' financial state.

``numpy_finance.py`` computes these up front on ``[months, paths]`` arrays before
its month loop: each operator's energy cost and facility capex by month (as
:func:`engine.kernels.market_records.operator_energy` and
:func:`engine.kernels.market_records.operator_capex`), and
:class:`FinanceSeries`: EBITDA before debt, other cash, draws, collateral units
and the refinancing uniforms (as :mod:`engine.kernels.finance_inputs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy_demand import DemandPaths

from engine.finance_arrays import FinanceArrays
from engine.kernels.finance_fields import (
    F_MATURITY,
    F_OP,
    F_PRINCIPAL,
    F_UPFRONT,
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
)
from engine.market_layout import HOURS_PER_MONTH

__all__ = ["FinanceSeries", "finance_series", "operator_costs"]


def operator_costs(
    months: np.ndarray,
    cum: np.ndarray,
    copper: np.ndarray,
    layout: dict[str, np.ndarray],
    copper_intensity: float,
    facility_ex_copper: float,
    n_ops: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Energy cost and facility capex by operator and month, $ (as the engine's kernels).

    Parameters
    ----------
    months : numpy.ndarray
        ``int64[P, n]`` energization months (T + 1: not within T).
    cum, copper : numpy.ndarray
        ``float64[R, T + 1, n]`` cost of one utility MW from month 1 to t ($) and
        ``float64[T + 1, n]`` copper price ($/t), from ``numpy_markets.add_paths``.
    layout : dict of str to numpy.ndarray
        ``MarketStats.layout`` (sites, their phases, regions, PUEs, operators).
    copper_intensity, facility_ex_copper : float
        t of copper per MW and facility capex per MW without copper ($).
    n_ops : int
        Operators.

    Returns
    -------
    tuple of numpy.ndarray
        ``energy[O, T + 1, n]`` by month (month 0 is zero) and ``capex[O, T + 2, n]``
        paid in each phase's energization month (row T + 1: beyond the horizon).
    """
    horizon, n = cum.shape[1] - 1, cum.shape[2]
    t = np.arange(1, horizon + 1)[:, None]
    path = np.arange(n)
    energy = np.zeros((n_ops, horizon + 1, n))
    capex = np.zeros((n_ops, horizon + 2, n))
    per_month = np.diff(cum, axis=1)  # [R, T, n]
    copper_at = np.vstack([copper, copper[-1:]])  # month T + 1: never paid within T
    for s in range(layout["site_region"].shape[0]):
        r, o = layout["site_region"][s], layout["site_operator"][s]
        for p in range(layout["site_phase_start"][s], layout["site_phase_end"][s]):
            mw, m = layout["phase_mw"][p], months[p]
            energy[o, 1:] += (mw * layout["site_pue"][s]) * per_month[r] * (m <= t)
            cost = mw * (facility_ex_copper + copper_intensity * copper_at[m, path])
            capex[o, m, path] += cost
    return energy, capex


@dataclass
class FinanceSeries:
    """What one chunk's paths bring to the month loop, state-free (paths last).

    Attributes
    ----------
    ebitda, other : numpy.ndarray
        ``float64[O, T, n]`` EBITDA (months 1..T) and the cash besides EBITDA and
        debt (contract cash less facility and GPU capex), $.
    units : dict of (int, int) to numpy.ndarray
        ``float64[T + 1, n]`` collateral GPUs energized by month, per pledged
        (facility, generation) pair.
    draws : numpy.ndarray
        ``float64[F, T + 2, n]`` draws by month, $ (row T + 1: beyond the horizon).
    stress, resale : numpy.ndarray
        ``float64[T + 1, n]`` AI-demand factor, ``float64[G, T + 1, n]`` resale
        values ($/GPU) by month.
    u_refi : numpy.ndarray
        ``float64[F, n]`` one uniform per facility (refinancing at maturity).
    facs_of, gens_of : list of list of int
        Facilities of each operator; pledged generations of each facility.
    """

    ebitda: np.ndarray
    other: np.ndarray
    units: dict[tuple[int, int], np.ndarray]
    draws: np.ndarray
    stress: np.ndarray
    resale: np.ndarray
    u_refi: np.ndarray
    facs_of: list[list[int]]
    gens_of: list[list[int]]


def finance_series(
    a: FinanceArrays,
    months: np.ndarray,
    channels: np.ndarray,
    energy: np.ndarray,
    capex: np.ndarray,
    demand: DemandPaths,
    rng: np.random.Generator,
) -> FinanceSeries:
    """Everything the energization months and markets decide, before the month loop."""
    ops, ph, fac = a.ops, a.phases, a.facilities
    n_ops, n_fac, n_gens = ops.shape[0], fac.shape[0], a.gens.shape[0]
    horizon, n = channels.shape[1] - 1, channels.shape[2]
    t_col = np.arange(1, horizon + 1)[:, None]
    path = np.arange(n)
    rent = channels[1 : 1 + n_gens]
    mw = np.zeros((n_ops, horizon, n))
    merchant = np.zeros((n_ops, horizon, n))
    gpu_capex = np.zeros((n_ops, horizon + 2, n))
    pairs = sorted({(int(f), int(g)) for f, g in ph[:, [PH_FACILITY, PH_GEN]] if f >= 0})
    units = {pair: np.zeros((horizon + 1, n)) for pair in pairs}
    draws = np.zeros((n_fac, horizon + 2, n))
    for f in range(n_fac):
        if fac[f, F_UPFRONT] > 0.5:
            draws[f, 1] = fac[f, F_PRINCIPAL]
    for p in range(ph.shape[0]):
        o, g, f, m = int(ph[p, PH_OP]), int(ph[p, PH_GEN]), int(ph[p, PH_FACILITY]), months[p]
        online = m <= t_col
        mw[o] += ph[p, PH_MW] * online
        gpu_capex[o, m, path] += ph[p, PH_GPU_CAPEX]
        free = ph[p, PH_FREE_GPUS] * HOURS_PER_MONTH * a.fsc[FS_MERCHANT_U]
        if free > 0.0:
            merchant[o] += free * rent[g, 1:] * online
        if f >= 0:
            units[f, g][1:] += ph[p, PH_GPUS] * online
            if fac[f, F_UPFRONT] < 0.5:
                drawn = m <= fac[f, F_MATURITY]
                draws[f, m[drawn], path[drawn]] += ph[p, PH_DRAW]
    ebitda = demand.revenue[:, 1, 1:] + merchant - energy[:, 1:]
    ebitda -= mw * ops[:, O_OPEX_MW, None, None] + ops[:, O_FIXED_OPEX, None, None]
    other = demand.cash[:, 1 : horizon + 1] - capex[:, 1 : horizon + 1]
    other -= gpu_capex[:, 1 : horizon + 1]
    return FinanceSeries(
        ebitda=ebitda,
        other=other,
        units=units,
        draws=draws,
        stress=channels[0],
        resale=channels[1 + n_gens :],
        u_refi=rng.random((n_fac, n)),
        facs_of=[[f for f in range(n_fac) if int(fac[f, F_OP]) == o] for o in range(n_ops)],
        gens_of=[[g for ff, g in pairs if ff == f] for f in range(n_fac)],
    )
