"""Lowering the market model to kernel arrays.

What is lowered: parameters per month step, the copula's factor matrix, central
paths and the bins of the reported factors.

Monthly steps use exact discretisations (docs/model.md section 7): an OU
process with rate kappa (1/yr) and volatility sigma moves by
``X_t = a X_{t-1} + b z`` with ``a = exp(-kappa / 12)`` and
``b = sigma sqrt((1 - a^2) / (2 kappa))``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from engine.kernels.factors import T_GRID_MAX, T_GRID_POINTS
from engine.market_config import FACTOR_TYPES, MarketsConfig, check_correlation
from engine.rng import stream_id
from engine.scenario import Book

__all__ = [
    "DAYS_PER_MONTH",
    "HOURS_PER_MONTH",
    "MarketArrays",
    "lower_markets",
    "ou_step",
    "student_t_table",
]

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


def ou_step(kappa_per_year: float, sigma: float) -> tuple[float, float]:
    """Exact monthly step (a, b) of an OU process: X' = a X + b z."""
    a = math.exp(-kappa_per_year / 12.0)
    return a, sigma * math.sqrt((1.0 - a * a) / (2.0 * kappa_per_year))


@functools.lru_cache(maxsize=16)
def student_t_table(nu: float) -> np.ndarray:
    """Phi^-1(F_nu(sinh w)) on the w grid of :func:`engine.kernels.factors.t_to_normal`."""
    w = np.linspace(-T_GRID_MAX, T_GRID_MAX, T_GRID_POINTS)
    x = np.sinh(w)
    z = np.empty_like(x)
    low = x <= 0
    z[low] = stats.norm.ppf(stats.t.cdf(x[low], nu))
    z[~low] = stats.norm.isf(stats.t.sf(x[~low], nu))
    z = np.clip(z, -38.0, 38.0)
    z.flags.writeable = False
    return z


@dataclass(frozen=True)
class MarketArrays:
    """Kernel inputs of the market model (struct of arrays; see field comments).

    Attributes
    ----------
    switches : numpy.ndarray
        ``bool[5]`` demand, electricity, copper, gpu stochastic; Student-t copula.
    scalars : numpy.ndarray
        ``float64[.]`` see ``S_*`` indices in :func:`lower_markets`.
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


def factor_matrix(book: Book, markets: MarketsConfig) -> tuple[np.ndarray, list[str]]:
    """Correlation of the copula's factors: demand, each region, copper, each generation."""
    cop = markets.copula
    types = ["demand"] + ["electricity"] * len(book.regions) + ["copper"]
    types += ["gpu_rent"] * len(book.gpu_generations)
    names = factor_matrix_names(book)
    base = np.array(cop.correlation, dtype=float)
    within = {
        "electricity": cop.electricity_between_regions,
        "gpu_rent": cop.gpu_rent_between_generations,
    }
    n = len(types)
    matrix = np.eye(n)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            if types[i] == types[j]:
                matrix[i, j] = within[types[i]]
            else:
                matrix[i, j] = base[FACTOR_TYPES.index(types[i]), FACTOR_TYPES.index(types[j])]
    return matrix, names


def _square_root(matrix: np.ndarray) -> np.ndarray:
    """Lower-triangular L with L L' = C (Cholesky; a PSD singular C by pivot-free LDL')."""
    try:
        return np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        n = matrix.shape[0]
        low = np.zeros_like(matrix)
        for j in range(n):
            d = matrix[j, j] - low[j, :j] @ low[j, :j]
            low[j, j] = math.sqrt(max(d, 0.0))
            for i in range(j + 1, n):
                r = matrix[i, j] - low[i, :j] @ low[j, :j]
                low[i, j] = r / low[j, j] if low[j, j] > 1e-12 else 0.0
        return low


def _fire_sale_keep(fire, horizon: int) -> np.ndarray:
    keep = np.ones(horizon + 1)
    decay = 2.0 ** (-1.0 / fire.half_life_months)
    dumped = dict.fromkeys(range(horizon + 1), 0.0)
    for month, units in fire.dumped_units:
        if month <= horizon:
            dumped[month] += units
    impact = 0.0
    for t in range(1, horizon + 1):
        impact = impact * decay + fire.impact_lambda * dumped[t] / fire.installed_base_units
        keep[t] = max(0.0, 1.0 - impact)
    return keep


def lower_markets(book: Book, markets: MarketsConfig, horizon: int) -> MarketArrays:
    """Lower the book's market blocks and the market config to kernel arrays.

    Parameters
    ----------
    book : Book
        A validated book.
    markets : MarketsConfig
        Validated market parameters.
    horizon : int
        T, months simulated.

    Returns
    -------
    MarketArrays
        Arrays in region and generation order of the book.

    Raises
    ------
    InputError
        If the factor correlation assembled from the config is not positive
        semi-definite (the within-type correlations conflict with the matrix).
    """
    matrix, factor_names = factor_matrix(book, markets)
    check_correlation(
        matrix,
        factor_names,
        "markets.copula (correlation with electricity_between_regions and "
        "gpu_rent_between_generations)",
        "conf/markets",
    )
    years = (horizon + 11) // 12
    regions = np.zeros((len(book.regions), N_REGION_COLUMNS))
    season = np.zeros((len(book.regions), 12))
    ppa = np.zeros((len(book.regions), max(years, 1)))
    for k, reg in enumerate(book.regions):
        e = reg.electricity
        a, b = ou_step(e.kappa_per_year, e.sigma)
        regions[k] = (
            math.log(e.price_usd_per_mwh),
            a,
            b,
            e.spike_rate_per_year / 12.0,
            e.spike_mean_log,
            e.spike_sd_log,
            2.0 ** (-1.0 / e.spike_half_life_months),
            e.adder_usd_per_mwh,
            e.ppa_share,
            e.capacity_charge_usd_per_mw_day,
            e.capacity_charge_drift,
            e.capacity_charge_sigma,
            e.curtailment_probability,
            e.curtailment_share,
        )
        season[k] = e.seasonality
        ppa[k] = e.ppa_price_usd_per_mwh * (1.0 + e.ppa_escalator_per_year) ** np.arange(
            ppa.shape[1]
        )
    gpus = np.zeros((len(book.gpu_generations), N_GPU_COLUMNS))
    keep = np.ones((len(book.gpu_generations), horizon + 1))
    for k, gen in enumerate(book.gpu_generations):
        m = gen.market
        a, b = ou_step(m.kappa_per_year, m.sigma)
        gpus[k] = (
            math.log(m.rent_usd_per_gpu_hour),
            m.rent_drift_per_year / 12.0,
            a,
            b,
            m.demand_loading,
            math.log(m.new_price_usd),
            m.age_at_start_years,
            math.log1p(-m.residual_decay_per_year),
            m.resale_rent_elasticity,
            m.successor_launch_min,
            m.successor_launch_max,
            math.log1p(-m.successor_step_down) if m.successor_step_down < 1.0 else -math.inf,
        )
        keep[k] = _fire_sale_keep(m.fire_sale, horizon)
    cu = markets.copper
    cu_a, cu_b = ou_step(cu.short_kappa_per_year, cu.short_sigma)
    # exact joint step of (chi, xi): corr of the xi shock with the chi shock per month
    dt = 1.0 / 12.0
    cross = cu.short_sigma * cu.long_sigma * cu.short_long_correlation
    cross *= (1.0 - cu_a) / cu.short_kappa_per_year
    xi_sd = cu.long_sigma * math.sqrt(dt)
    cu_rho = cross / (cu_b * xi_sd) if cu_b > 0 and xi_sd > 0 else 0.0
    sq = cu.squeeze
    regimes = markets.gpu.regimes
    scalars = np.zeros(N_SCALARS)
    scalars[S_PHI] = markets.demand.persistence
    scalars[S_D0] = markets.demand.initial
    scalars[S_NU] = markets.copula.nu
    scalars[S_CHI0] = cu.short_term_start
    scalars[S_XI0] = math.log(cu.spot_usd_per_t) - cu.short_term_start
    scalars[S_CU_A], scalars[S_CU_B] = cu_a, cu_b
    scalars[S_XI_DRIFT] = cu.long_drift_per_year * dt
    scalars[S_XI_SD] = xi_sd
    scalars[S_CU_RHO] = cu_rho
    scalars[S_CU_JUMP_MEAN] = cu.jump_rate_per_year * dt
    scalars[S_CU_JUMP_MU] = cu.jump_mean_log
    scalars[S_CU_JUMP_SD] = cu.jump_sd_log
    scalars[S_SQ_INITIAL] = ("normal", "squeeze", "stationary").index(sq.initial)
    scalars[S_SQ_ENTER], scalars[S_SQ_EXIT] = sq.enter_probability, sq.exit_probability
    scalars[S_SQ_PREMIUM] = sq.log_premium
    scalars[S_FIRST_MOY] = markets.first_calendar_month - 1
    scalars[S_FACILITY_EX_CU] = (
        cu.facility_capex_usd_per_mw - cu.intensity_t_per_mw * cu.reference_price_usd_per_t
    )
    scalars[S_CU_INTENSITY] = cu.intensity_t_per_mw
    scalars[S_GPU_REGIMES] = float(regimes.enabled and markets.gpu.enabled)
    switches = np.array(
        [
            markets.demand.enabled,
            markets.electricity.enabled,
            cu.enabled,
            markets.gpu.enabled,
            markets.copula.family == "student_t",
        ],
        dtype=np.bool_,
    )
    streams = [stream_id("market", "copula"), stream_id("market", "copper")]
    streams += [stream_id("market", "copper_squeeze"), stream_id("market", "gpu_regime")]
    streams += [stream_id("market", "electricity", r.id) for r in book.regions]
    streams += [stream_id("market", "gpu", g.id) for g in book.gpu_generations]
    # each factor's independent shock has its own stream (common random numbers when
    # a factor is added: only the correlated scores of factors after it change)
    streams += [stream_id("market", "shock", name) for name in factor_names]
    arrays = MarketArrays(
        switches=switches,
        scalars=scalars,
        copula_factor=np.ascontiguousarray(_square_root(matrix)),
        t_table=student_t_table(markets.copula.nu),
        region=regions,
        season=season,
        ppa_price=ppa,
        gpu=gpus,
        fire_sale_keep=keep,
        regime_transition=np.array(regimes.transition, dtype=float),
        regime_offset=np.array(regimes.log_offsets, dtype=float),
        streams=np.array(streams, dtype=np.uint64),
        center=np.zeros((0, horizon + 1)),
        bin_scale=np.zeros((0, horizon + 1)),
        unit=np.zeros(0),
        report=np.zeros(0, dtype=np.int64),
        value_offset=np.zeros((0, horizon + 1)),
        value_slope=np.zeros(0),
        names=(),
        units=(),
    )
    return _with_bins(arrays, book, horizon)


def trace_channels(book: Book) -> list[str]:
    """Names of the per-path channels the market kernel can trace (tests, diagnostics).

    Channels: demand D_t; copper squeeze state; GPU market regime; copper jumps in
    the month; ln copper price; each copula normal score z; per region ln all-in
    price, ln energy price, capacity charge, curtailment event, spikes in the
    month; per generation ln rent and ln resale value.
    """
    names = ["demand", "copper_squeeze", "gpu_regime", "copper_jumps", "copper_log_price"]
    names += [f"z:{n}" for n in factor_matrix_names(book)]
    for r in book.regions:
        names += [
            f"{r.id}:log_all_in",
            f"{r.id}:log_energy",
            f"{r.id}:capacity_charge",
            f"{r.id}:curtailed",
            f"{r.id}:spikes",
        ]
    for g in book.gpu_generations:
        names += [f"{g.id}:log_rent", f"{g.id}:log_resale"]
    return names


def factor_matrix_names(book: Book) -> list[str]:
    """Names of the copula's factors, in matrix order."""
    names = ["demand"] + [f"electricity:{r.id}" for r in book.regions] + ["copper"]
    return names + [f"gpu_rent:{g.id}" for g in book.gpu_generations]


def central_paths(arrays: MarketArrays, horizon: int) -> np.ndarray:
    """Ln of every factor slot on its central path (no shocks, jumps, events), months 0..T.

    Slots: per region its all-in price and capacity charge, then copper, then per
    generation its rent and resale value (the order of :func:`factor_slots`).
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


def _with_bins(arrays: MarketArrays, book: Book, horizon: int) -> MarketArrays:
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
