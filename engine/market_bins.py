"""Central paths of the market factors and the bins of the reported ones.

The market kernel bins each reported factor's ln value around its central path
(no shocks, jumps or events) on about +-``BIN_SPREADS`` rough log standard
deviations (engine/market_layout.py); :func:`with_bins` sets those ranges, the
fixed-point units of the sums and the report rows on a lowered
:class:`engine.market_layout.MarketArrays`.
"""

from __future__ import annotations

import numpy as np

from engine.market_layout import (
    BIN_SPREADS,
    G_AGE0,
    G_BETA,
    G_DRIFT,
    G_ELASTICITY,
    G_LN_KEEP,
    G_LN_NEW,
    G_LN_RENT,
    G_LN_STEP,
    G_OU_A,
    G_OU_B,
    G_SUCC_HI,
    G_SUCC_LO,
    MARKET_BINS,
    MIN_HALF_WIDTH,
    R_ADDER,
    R_CAP0,
    R_CAP_MU,
    R_CAP_SIGMA,
    R_LN_PRICE,
    R_OU_A,
    R_OU_B,
    R_PPA_SHARE,
    R_SPIKE_DECAY,
    R_SPIKE_MEAN,
    R_SPIKE_MU,
    R_SPIKE_SD,
    S_CHI0,
    S_CU_A,
    S_CU_B,
    S_CU_JUMP_MEAN,
    S_CU_JUMP_MU,
    S_CU_JUMP_SD,
    S_D0,
    S_FIRST_MOY,
    S_GPU_REGIMES,
    S_PHI,
    S_SQ_PREMIUM,
    S_XI0,
    S_XI_DRIFT,
    S_XI_SD,
    SUM_UNIT,
    MarketArrays,
)
from engine.scenario import Book

__all__ = ["central_paths", "log_spreads", "with_bins"]


def central_paths(arrays: MarketArrays, horizon: int) -> np.ndarray:
    """Ln of every factor slot on its central path (no shocks, jumps, events), months 0..T.

    Slots: per region its all-in price and capacity charge, then copper, then per
    generation its rent and resale value (the order of ``MarketArrays.report``).
    """
    n_regions, n_gens = arrays.region.shape[0], arrays.gpu.shape[0]
    sc = arrays.scalars
    t = np.arange(horizon + 1)
    year = np.maximum(t - 1, 0) // 12
    moy = (np.maximum(t, 1) - 1 + int(sc[S_FIRST_MOY])) % 12
    out = np.zeros((2 * n_regions + 1 + 2 * n_gens, horizon + 1))
    for r in range(n_regions):
        p = arrays.region[r]
        energy = np.exp(p[R_LN_PRICE] + arrays.season[r, moy])
        ppa = arrays.ppa_price[r, np.minimum(year, arrays.ppa_price.shape[1] - 1)]
        share = p[R_PPA_SHARE]
        with np.errstate(divide="ignore"):
            out[2 * r] = np.log(share * ppa + (1 - share) * energy + p[R_ADDER])
            out[2 * r + 1] = np.log(p[R_CAP0]) + year * p[R_CAP_MU]
    chi = sc[S_CHI0] * sc[S_CU_A] ** t
    out[2 * n_regions] = chi + sc[S_XI0] + sc[S_XI_DRIFT] * t
    demand = sc[S_D0] * sc[S_PHI] ** t
    for g in range(n_gens):
        q = arrays.gpu[g]
        trend = q[G_LN_RENT] + q[G_DRIFT] * t
        rent = trend + q[G_BETA] * demand
        launch = (q[G_SUCC_LO] + q[G_SUCC_HI]) // 2 if q[G_SUCC_LO] >= 0 else np.inf
        with np.errstate(divide="ignore"):
            resale = (
                q[G_LN_NEW]
                + (q[G_AGE0] + t / 12.0) * q[G_LN_KEEP]
                + q[G_ELASTICITY] * (rent - trend)
                + np.where(t >= launch, q[G_LN_STEP], 0.0)
                + np.log(arrays.fire_sale_keep[g])
            )
        out[2 * n_regions + 1 + 2 * g] = rent
        out[2 * n_regions + 2 + 2 * g] = resale
    return out


def log_spreads(arrays: MarketArrays, horizon: int) -> np.ndarray:
    """Rough log standard deviation of every factor slot by month (sizes the bins only).

    Sums of the variances of the shocks that reach ln value by month t, ignoring
    correlations; jumps and regimes add their second moments. Only the bin range
    depends on it, never a result beyond the bin resolution.
    """
    n_regions, n_gens = arrays.region.shape[0], arrays.gpu.shape[0]
    sc = arrays.scalars
    t = np.arange(horizon + 1, dtype=float)
    out = np.zeros((2 * n_regions + 1 + 2 * n_gens, horizon + 1))

    def ou_var(a: float, b: float) -> np.ndarray:
        return b * b * (1.0 - a ** (2.0 * t)) / max(1.0 - a * a, 1e-12)

    for r in range(n_regions):
        p = arrays.region[r]
        jump2 = p[R_SPIKE_MEAN] * (p[R_SPIKE_MU] ** 2 + p[R_SPIKE_SD] ** 2)
        spikes = jump2 / max(1.0 - p[R_SPIKE_DECAY] ** 2, 1e-12)
        out[2 * r] = np.sqrt(ou_var(p[R_OU_A], p[R_OU_B]) + spikes)
        out[2 * r + 1] = np.sqrt(np.maximum(t - 1, 0) // 12) * p[R_CAP_SIGMA]
    jumps = sc[S_CU_JUMP_MEAN] * (sc[S_CU_JUMP_MU] ** 2 + sc[S_CU_JUMP_SD] ** 2)
    copper = ou_var(sc[S_CU_A], sc[S_CU_B]) + t * (sc[S_XI_SD] ** 2 + jumps)
    out[2 * n_regions] = np.sqrt(copper) + abs(sc[S_SQ_PREMIUM])
    demand = 1.0 - sc[S_PHI] ** (2.0 * t)
    regime = float(np.ptp(arrays.regime_offset)) if sc[S_GPU_REGIMES] > 0.5 else 0.0
    for g in range(n_gens):
        q = arrays.gpu[g]
        rent = np.sqrt(ou_var(q[G_OU_A], q[G_OU_B]) + q[G_BETA] ** 2 * demand) + regime
        out[2 * n_regions + 1 + 2 * g] = rent
        step = abs(q[G_LN_STEP]) if np.isfinite(q[G_LN_STEP]) else 1.0
        out[2 * n_regions + 2 + 2 * g] = q[G_ELASTICITY] * rent + step
    return out


def with_bins(arrays: MarketArrays, book: Book, horizon: int) -> MarketArrays:
    """Choose the reported factors (positive central value), bin centres and sum units."""
    slots = central_paths(arrays, horizon)
    names: list[str] = []
    units: list[str] = []
    for r in book.regions:
        names += [f"electricity_all_in:{r.id}", f"capacity_charge:{r.id}"]
        units += ["$/MWh", "$/MW-day"]
    names.append("copper")
    units.append("$/t")
    for g in book.gpu_generations:
        names += [f"gpu_rent:{g.id}", f"gpu_resale:{g.id}"]
        units += ["$/GPU-hr", "$/GPU"]
    # a capacity charge of 0 (no capacity market) stays 0: nothing to report
    shown = [k for k in range(len(names)) if np.all(np.isfinite(slots[k]))]
    report = np.full(len(names), -1, dtype=np.int64)
    report[shown] = np.arange(len(shown))
    # all-in prices are binned in ln energy price (increasing in it, no log in the kernel)
    offset = np.zeros_like(slots)
    slope = np.ones(len(names))
    t = np.arange(horizon + 1)
    moy = (np.maximum(t, 1) - 1 + int(arrays.scalars[S_FIRST_MOY])) % 12
    year = np.minimum(np.maximum(t - 1, 0) // 12, arrays.ppa_price.shape[1] - 1)
    for r in range(len(book.regions)):
        p = arrays.region[r]
        slots[2 * r] = p[R_LN_PRICE] + arrays.season[r, moy]
        offset[2 * r] = p[R_PPA_SHARE] * arrays.ppa_price[r, year] + p[R_ADDER]
        slope[2 * r] = 1.0 - p[R_PPA_SHARE]
    center = np.ascontiguousarray(slots[shown])
    half = np.maximum(BIN_SPREADS * log_spreads(arrays, horizon)[shown], MIN_HALF_WIDTH)
    return MarketArrays(
        **{
            **{f: getattr(arrays, f) for f in arrays.__dataclass_fields__},
            "center": center,
            "bin_scale": np.ascontiguousarray(MARKET_BINS / (2.0 * half)),
            "unit": np.exp(center[:, 0]) * SUM_UNIT,
            "report": report,
            "value_offset": np.ascontiguousarray(offset[shown]),
            "value_slope": slope[shown],
            "names": tuple(names[k] for k in shown),
            "units": tuple(units[k] for k in shown),
        }
    )
