"""What the market kernel's arrays hold: units, column and scalar indices, ``MarketArrays``.

Shared by the lowering (engine/market_arrays.py, engine/market_bins.py), the
kernels that read the arrays (engine/kernels/), the statistics
(engine/market_stats.py), and the demand side and finance (hours and days per
month).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DAYS_PER_MONTH", "HOURS_PER_MONTH", "MARKET_BINS", "MarketArrays"]

HOURS_PER_MONTH = 8766.0 / 12.0  # 730.5 h: a 365.25-day year
DAYS_PER_MONTH = 365.25 / 12.0
#: Reported factor values are binned in ln(value / central value) on +-BIN_SPREADS
#: approximate log standard deviations (at least +-MIN_HALF_WIDTH), MARKET_BINS bins.
BIN_SPREADS = 6.0
MIN_HALF_WIDTH = 0.05
MARKET_BINS = 256
#: Site capex and energy cost: ln(value / central value) on +-SITE_HALF_WIDTH.
SITE_HALF_WIDTH = 3.0
#: Fixed-point unit of summed factor values, relative to the factor's month-0 central value.
SUM_UNIT = 2.0**-20

# columns of MarketArrays.region
(
    R_LN_PRICE,
    R_OU_A,
    R_OU_B,
    R_SPIKE_MEAN,
    R_SPIKE_MU,
    R_SPIKE_SD,
    R_SPIKE_DECAY,
    R_ADDER,
    R_PPA_SHARE,
    R_CAP0,
    R_CAP_MU,
    R_CAP_SIGMA,
    R_CURTAIL_P,
    R_CURTAIL_SHARE,
) = range(14)
N_REGION_COLUMNS = 14
# columns of MarketArrays.gpu
(
    G_LN_RENT,
    G_DRIFT,
    G_OU_A,
    G_OU_B,
    G_BETA,
    G_LN_NEW,
    G_AGE0,
    G_LN_KEEP,
    G_ELASTICITY,
    G_SUCC_LO,
    G_SUCC_HI,
    G_LN_STEP,
) = range(12)
N_GPU_COLUMNS = 12


@dataclass(frozen=True)
class MarketArrays:
    """Kernel inputs of the market model (struct of arrays; see field comments).

    Attributes
    ----------
    switches : numpy.ndarray
        ``bool[5]`` demand, electricity, copper, gpu stochastic; Student-t copula.
    scalars : numpy.ndarray
        ``float64[N_SCALARS]`` at the ``S_*`` indices below.
    copula_factor : numpy.ndarray
        ``float64[F, F]`` lower-triangular factor L of the factor correlation (L L' = C).
    t_table : numpy.ndarray
        ``float64[T_GRID_POINTS]`` Student-t -> normal score map.
    region : numpy.ndarray
        ``float64[R, N_REGION_COLUMNS]`` electricity parameters per region.
    season : numpy.ndarray
        ``float64[R, 12]`` log seasonality by calendar month.
    ppa_price : numpy.ndarray
        ``float64[R, years]`` PPA price of each simulated year, $/MWh.
    gpu : numpy.ndarray
        ``float64[G, N_GPU_COLUMNS]`` GPU-market parameters per generation.
    fire_sale_keep : numpy.ndarray
        ``float64[G, T + 1]`` resale multiplier max(0, 1 - I_t) of the exogenous dumps.
    regime_transition, regime_offset : numpy.ndarray
        GPU market regimes: ``float64[3, 3]`` monthly transitions, ``float64[3]`` log offsets.
    streams : numpy.ndarray
        ``uint64[4 + R + G + F]``: copula (t scale), copper, squeeze, GPU regime, each
        region, each generation, each copula factor's shock.
    center : numpy.ndarray
        ``float64[n_out, T + 1]`` ln of each reported factor's central path.
    bin_scale : numpy.ndarray
        ``float64[n_out, T + 1]`` bins per unit of ln(value) - center: the bins span
        +-``half_width`` = MARKET_BINS / (2 bin_scale) around the centre.
    value_offset, value_slope : numpy.ndarray
        ``float64[n_out, T + 1]``, ``float64[n_out]``: a reported value is
        offset + slope x exp(binned ln value). For an all-in electricity price the
        bins hold the ln energy price (offset: hedged and delivery part, slope:
        unhedged share); otherwise 0 and 1. Not a kernel input.
    report : numpy.ndarray
        ``int64[2 R + 1 + 2 G]`` row of each factor slot in the report, -1 if not reported.
    unit : numpy.ndarray
        ``float64[n_out]`` fixed-point unit of its sums.
    names, units : tuple of str
        Reported factors and their units.
    """

    switches: np.ndarray
    scalars: np.ndarray
    copula_factor: np.ndarray
    t_table: np.ndarray
    region: np.ndarray
    season: np.ndarray
    ppa_price: np.ndarray
    gpu: np.ndarray
    fire_sale_keep: np.ndarray
    regime_transition: np.ndarray
    regime_offset: np.ndarray
    streams: np.ndarray
    center: np.ndarray
    bin_scale: np.ndarray
    unit: np.ndarray
    report: np.ndarray
    value_offset: np.ndarray
    value_slope: np.ndarray
    names: tuple[str, ...]
    units: tuple[str, ...]


# indices of MarketArrays.scalars
(
    S_PHI,
    S_D0,
    S_NU,
    S_CHI0,
    S_XI0,
    S_CU_A,
    S_CU_B,
    S_XI_DRIFT,
    S_XI_SD,
    S_CU_RHO,
    S_CU_JUMP_MEAN,
    S_CU_JUMP_MU,
    S_CU_JUMP_SD,
    S_SQ_INITIAL,
    S_SQ_ENTER,
    S_SQ_EXIT,
    S_SQ_PREMIUM,
    S_FIRST_MOY,
    S_FACILITY_EX_CU,
    S_CU_INTENSITY,
    S_GPU_REGIMES,
) = range(21)
N_SCALARS = 21
