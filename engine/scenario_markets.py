"""Market blocks of a book: a region's electricity, a GPU generation's market.

Both blocks are optional in a book; every field has a default (docs/scenarios.md
lists them with units and sources). Values are checked as they are read, with
the file, the key and what is allowed in the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.reader import Reader

__all__ = ["Electricity", "FireSale", "GpuMarket", "parse_electricity", "parse_gpu_market"]


@dataclass(frozen=True)
class Electricity:
    """A region's electricity market (MODEL.md section 2).

    ln E_t = ln price + season[calendar month] + X_t + Y_t; X an OU process,
    Y compound-Poisson spikes decaying with a half-life. All-in price for load:
    hedged share x PPA price (escalating yearly) + (1 - hedged share) x E_t + adder.

    Attributes
    ----------
    price_usd_per_mwh : float
        Median wholesale energy price, $/MWh.
    seasonality : tuple of float
        Log offsets by calendar month (January first), 12 values.
    kappa_per_year, sigma : float
        OU mean reversion (1/yr) and volatility (1/sqrt(yr)) of X.
    spike_rate_per_year, spike_mean_log, spike_sd_log, spike_half_life_months : float
        Spikes: Poisson rate, N(mean, sd) log sizes, half-life of their decay.
    adder_usd_per_mwh : float
        Delivery (transmission, distribution, ancillary) added to every MWh.
    ppa_share, ppa_price_usd_per_mwh, ppa_escalator_per_year : float
        Hedged share of load, its price in year 1 and yearly escalation.
    capacity_charge_usd_per_mw_day, capacity_charge_drift, capacity_charge_sigma : float
        Capacity charge in year 1 ($/MW-day of utility load) and the log-mean and
        log-sd of its yearly lognormal step.
    curtailment_probability, curtailment_share : float
        Monthly probability of a curtailment event in the region, and the share
        of every energized site's MW it takes offline for that month.
    """

    price_usd_per_mwh: float = 40.0
    seasonality: tuple[float, ...] = (0.0,) * 12
    kappa_per_year: float = 3.0
    sigma: float = 0.35
    spike_rate_per_year: float = 2.0
    spike_mean_log: float = 0.5
    spike_sd_log: float = 0.3
    spike_half_life_months: float = 1.0
    adder_usd_per_mwh: float = 30.0
    ppa_share: float = 0.0
    ppa_price_usd_per_mwh: float = 60.0
    ppa_escalator_per_year: float = 0.09
    capacity_charge_usd_per_mw_day: float = 0.0
    capacity_charge_drift: float = 0.0
    capacity_charge_sigma: float = 0.0
    curtailment_probability: float = 0.0
    curtailment_share: float = 0.0


@dataclass(frozen=True)
class FireSale:
    """Price impact of dumped units: I_t = I_{t-1} 2^(-1/h) + lambda x dumped_t / base.

    Attributes
    ----------
    impact_lambda : float
        Fractional price drop per unit share of the installed base dumped.
    half_life_months : float
        Half-life of the impact's decay.
    installed_base_units : float
        Units of the generation in the market.
    dumped_units : tuple of (int, float)
        Exogenous (month, units dumped) pairs.
    """

    impact_lambda: float = 0.5
    half_life_months: float = 6.0
    installed_base_units: float = 1_000_000.0
    dumped_units: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class GpuMarket:
    """A GPU generation's rental and resale market.

    ln R_t = ln rent + drift t/12 + beta D_t + Y_t (+ regime offset), Y an OU
    process. Resale V_t = new price x (1 - decay)^age x (R_t / trend_t)^elasticity
    x (1 - step down once the successor ramps) x (1 - I_t).

    Attributes
    ----------
    rent_usd_per_gpu_hour : float
        Rental index at month 0, $/GPU-hr.
    rent_drift_per_year : float
        Log drift of the trend (negative: rents decline), 1/yr.
    kappa_per_year, sigma : float
        OU mean reversion and volatility of Y.
    demand_loading : float
        beta: log-rent change per standard deviation of the AI-demand factor.
    new_price_usd : float
        Price of a new unit, $/GPU.
    age_at_start_years : float
        Age of the market's reference unit at month 0.
    residual_decay_per_year : float
        Yearly loss of residual value by age (exponential).
    resale_rent_elasticity : float
        Exponent of the rent's deviation from trend in the resale value.
    successor_launch_min, successor_launch_max : int
        Window of the successor's volume ramp (months, uniform); -1 = none.
    successor_step_down : float
        One-off fall in resale value at the ramp.
    fire_sale : FireSale
        Price impact of dumped units.
    """

    rent_usd_per_gpu_hour: float = 2.0
    rent_drift_per_year: float = -0.2
    kappa_per_year: float = 1.0
    sigma: float = 0.35
    demand_loading: float = 0.15
    new_price_usd: float = 30_000.0
    age_at_start_years: float = 0.0
    residual_decay_per_year: float = 0.25
    resale_rent_elasticity: float = 1.0
    successor_launch_min: int = -1
    successor_launch_max: int = -1
    successor_step_down: float = 0.25
    fire_sale: FireSale = field(default_factory=FireSale)


def parse_electricity(r: Reader | None) -> Electricity:
    """Read a region's ``electricity`` block (defaults for what it omits)."""
    d = Electricity()
    if r is None:
        return d
    season = r.raw("seasonality", list(d.seasonality))
    if not (isinstance(season, list) and len(season) == 12):
        raise r.error("seasonality", season, "12 log offsets, January first")
    for i, v in enumerate(season):
        if isinstance(v, bool) or not isinstance(v, int | float) or not abs(v) <= 3.0:
            raise r.error(f"seasonality[{i}]", v, "a log offset in [-3, 3]")
    result = Electricity(
        price_usd_per_mwh=r.number(
            "price_usd_per_mwh", d.price_usd_per_mwh, lo=0.0, lo_open=True, hi=1e5
        ),
        seasonality=tuple(float(v) for v in season),
        kappa_per_year=r.number("kappa_per_year", d.kappa_per_year, lo=0.001, hi=1000.0),
        sigma=r.number("sigma", d.sigma, lo=0.0, hi=10.0),
        spike_rate_per_year=r.number("spike_rate_per_year", d.spike_rate_per_year, lo=0.0, hi=120),
        spike_mean_log=r.number("spike_mean_log", d.spike_mean_log, lo=-5.0, hi=5.0),
        spike_sd_log=r.number("spike_sd_log", d.spike_sd_log, lo=0.0, hi=5.0),
        spike_half_life_months=r.number(
            "spike_half_life_months", d.spike_half_life_months, lo=0.01, hi=120.0
        ),
        adder_usd_per_mwh=r.number("adder_usd_per_mwh", d.adder_usd_per_mwh, lo=0.0, hi=1e4),
        ppa_share=r.number("ppa_share", d.ppa_share, lo=0.0, hi=1.0),
        ppa_price_usd_per_mwh=r.number(
            "ppa_price_usd_per_mwh", d.ppa_price_usd_per_mwh, lo=0.0, hi=1e4
        ),
        ppa_escalator_per_year=r.number(
            "ppa_escalator_per_year", d.ppa_escalator_per_year, lo=-0.5, hi=1.0
        ),
        capacity_charge_usd_per_mw_day=r.number(
            "capacity_charge_usd_per_mw_day", d.capacity_charge_usd_per_mw_day, lo=0.0, hi=1e5
        ),
        capacity_charge_drift=r.number(
            "capacity_charge_drift", d.capacity_charge_drift, lo=-3.0, hi=3.0
        ),
        capacity_charge_sigma=r.number(
            "capacity_charge_sigma", d.capacity_charge_sigma, lo=0.0, hi=3.0
        ),
        curtailment_probability=r.number(
            "curtailment_probability", d.curtailment_probability, lo=0.0, hi=1.0
        ),
        curtailment_share=r.number("curtailment_share", d.curtailment_share, lo=0.0, hi=1.0),
    )
    r.finish()
    return result


def _fire_sale(r: Reader | None) -> FireSale:
    d = FireSale()
    if r is None:
        return d
    dumped = []
    for key, raw in r.sequence("dumped_units"):
        item = Reader(raw, r.source, key)
        month = item.integer("month", required=True, lo=1, hi=1200)
        units = item.number("units", required=True, lo=0.0, hi=1e9)
        item.finish()
        dumped.append((month, units))
    result = FireSale(
        impact_lambda=r.number("impact_lambda", d.impact_lambda, lo=0.0, hi=100.0),
        half_life_months=r.number("half_life_months", d.half_life_months, lo=0.01, hi=1200.0),
        installed_base_units=r.number(
            "installed_base_units", d.installed_base_units, lo=1.0, hi=1e10
        ),
        dumped_units=tuple(sorted(dumped)),
    )
    r.finish()
    return result


def parse_gpu_market(r: Reader | None) -> GpuMarket:
    """Read a GPU generation's ``market`` block (defaults for what it omits)."""
    d = GpuMarket()
    if r is None:
        return d
    lo = r.integer("successor_launch_min", d.successor_launch_min, lo=-1, hi=1200)
    hi = r.integer(
        "successor_launch_max", lo if lo >= 0 else d.successor_launch_max, lo=-1, hi=1200
    )
    if (lo < 0) != (hi < 0) or hi < lo:
        raise r.error(
            "successor_launch_max",
            hi,
            f"a month >= successor_launch_min ({lo}), or -1 for both (no successor)",
        )
    result = GpuMarket(
        rent_usd_per_gpu_hour=r.number(
            "rent_usd_per_gpu_hour", d.rent_usd_per_gpu_hour, lo=0.0, lo_open=True, hi=1000.0
        ),
        rent_drift_per_year=r.number("rent_drift_per_year", d.rent_drift_per_year, lo=-3, hi=3),
        kappa_per_year=r.number("kappa_per_year", d.kappa_per_year, lo=0.001, hi=1000.0),
        sigma=r.number("sigma", d.sigma, lo=0.0, hi=10.0),
        demand_loading=r.number("demand_loading", d.demand_loading, lo=-5.0, hi=5.0),
        new_price_usd=r.number("new_price_usd", d.new_price_usd, lo=0.0, lo_open=True, hi=1e8),
        age_at_start_years=r.number("age_at_start_years", d.age_at_start_years, lo=0.0, hi=50.0),
        residual_decay_per_year=r.number(
            "residual_decay_per_year", d.residual_decay_per_year, lo=0.0, hi=0.99
        ),
        resale_rent_elasticity=r.number(
            "resale_rent_elasticity", d.resale_rent_elasticity, lo=0.0, hi=10.0
        ),
        successor_launch_min=lo,
        successor_launch_max=hi,
        successor_step_down=r.number("successor_step_down", d.successor_step_down, lo=0.0, hi=1.0),
        fire_sale=_fire_sale(r.child("fire_sale")),
    )
    r.finish()
    return result
