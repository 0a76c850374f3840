"""Per-run constants of the plain-NumPy market model and its Poisson jump draws.

:class:`MarketPlan` holds what ``numpy_markets.py`` computes once per run from the
engine's lowered :class:`engine.market_layout.MarketArrays`: the switches, the rows
of a month's uniforms, Poisson CDF tables, the GPU regime chain's CDF, the
reported factors' bins and the deterministic parts of ln rent and ln resale. The
jumps use two exact shortcuts in distribution: the count by inverting the same
CDF as the engine, only on the paths whose uniform exceeds P(0), and k
compound-Poisson jumps N(mu, sd) added as k mu + sd sqrt(k) Z with one normal.
"""

from __future__ import annotations

import numpy as np

from engine.kernels.factors import T_GRID_MAX, T_GRID_POINTS
from engine.market_layout import (
    G_AGE0,
    G_DRIFT,
    G_LN_KEEP,
    G_LN_NEW,
    G_LN_RENT,
    MARKET_BINS,
    R_CURTAIL_P,
    R_SPIKE_MEAN,
    S_CU_JUMP_MEAN,
    S_GPU_REGIMES,
    S_PHI,
    MarketArrays,
)

__all__ = ["MarketPlan", "add_jumps", "jumps", "poisson_table"]

#: The t -> normal score table's grid in asinh(x) (engine.kernels.factors).
T_GRID = np.linspace(-T_GRID_MAX, T_GRID_MAX, T_GRID_POINTS)


def poisson_table(mean: float) -> np.ndarray:
    """CDF P(N <= k) of Poisson(mean), k = 0, 1, ... as the engine's inversion sums it."""
    p = np.exp(-mean)
    cdf = [p]
    k = 0
    while k < 10_000 and cdf[-1] < 1.0:
        k += 1
        p *= mean / k
        if p == 0.0:
            break
        cdf.append(cdf[-1] + p)
    return np.array(cdf)


def jumps(u: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paths with at least one jump and their counts, from one uniform per path."""
    hit = np.flatnonzero(u > table[0])
    counts = np.searchsorted(table, u[hit])
    np.minimum(counts, table.shape[0] - 1, out=counts)
    return hit, counts


def add_jumps(
    x: np.ndarray,
    hit: np.ndarray,
    counts: np.ndarray,
    mu: float,
    sd: float,
    rng: np.random.Generator,
) -> None:
    """x[hit] += sum of ``counts`` N(mu, sd^2) jumps (k mu + sd sqrt(k) Z, one normal)."""
    if hit.size:
        x[hit] += counts * mu + sd * np.sqrt(counts) * rng.standard_normal(hit.size)


class MarketPlan:
    """Per-run constants of the model (parameters, offsets of the uniforms, bins)."""

    def __init__(self, a: MarketArrays, horizon: int) -> None:
        sc = a.scalars
        self.n_regions, self.n_gens = a.region.shape[0], a.gpu.shape[0]
        self.n_factors = a.copula_factor.shape[0]
        self.demand_on, self.elec_on, self.copper_on, self.gpu_on, self.student = (
            bool(x) for x in a.switches
        )
        self.gpu_regimes = sc[S_GPU_REGIMES] > 0.5
        self.demand_b = float(np.sqrt(1.0 - sc[S_PHI] ** 2))
        # uniform rows of a month, only those the engine draws: per region its spike
        # count and curtailment event, then copper squeeze, copper jumps, GPU regime
        rows = 0

        def row(needed: bool) -> int:
            nonlocal rows
            rows += needed
            return rows - 1 if needed else -1

        elec = self.elec_on
        self.u_spike = [row(elec and m > 0.0) for m in a.region[:, R_SPIKE_MEAN]]
        self.u_curtail = [row(elec and p > 0.0) for p in a.region[:, R_CURTAIL_P]]
        self.u_squeeze = row(self.copper_on)
        self.u_copper = row(self.copper_on and sc[S_CU_JUMP_MEAN] > 0.0)
        self.u_regime = row(bool(self.gpu_regimes))
        self.n_uniforms = rows
        self.n_normals = self.n_factors + self.copper_on  # copula, then copper's own
        self.spike_table = [poisson_table(m) for m in a.region[:, R_SPIKE_MEAN]]
        self.copper_table = poisson_table(sc[S_CU_JUMP_MEAN])
        cum = np.cumsum(a.regime_transition, axis=1)
        self.regime_cdf = cum[:, :-1].T.copy()  # [n - 1, regimes]
        # reported rows: bin index = value * scale + shift, clipped to the row's range
        n_out = a.center.shape[0]
        self.n_out = n_out
        offset = (np.arange(n_out) * MARKET_BINS)[:, None]
        self.bin_scale = np.ascontiguousarray(a.bin_scale.T)  # [T + 1, n_out]
        self.bin_shift = np.ascontiguousarray(
            (offset + 0.5 * MARKET_BINS - a.center * a.bin_scale).T
        )
        self.bin_low = offset.astype(float)
        self.bin_high = offset + (MARKET_BINS - 1.0)
        self.per_unit = (1.0 / a.unit)[:, None]
        # deterministic parts of ln resale by generation and month
        t = np.arange(horizon + 1)
        g = a.gpu
        with np.errstate(divide="ignore"):
            self.resale_base = (
                g[:, G_LN_NEW, None]
                + (g[:, G_AGE0, None] + t / 12.0) * g[:, G_LN_KEEP, None]
                + np.log(a.fire_sale_keep)
            )
        self.trend = g[:, G_LN_RENT, None] + g[:, G_DRIFT, None] * t
