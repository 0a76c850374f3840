"""Schemas of the market risk factors (MODEL.md section 2): ``conf/markets/``.

Book-wide market parameters live here: the AI-demand factor, the copula that
joins the factors' monthly shocks, copper, and the switches that make each
market deterministic at its central path. Parameters that belong to an entity
(a region's electricity, a GPU generation's market) live in the book
(docs/scenarios.md). Defaults and sources: docs/model.md section 6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.correlation import check_correlation
from engine.errors import InputError

__all__ = [
    "FACTOR_TYPES",
    "CopperConfig",
    "CopulaConfig",
    "DemandConfig",
    "GpuMarketConfig",
    "GpuRegimeConfig",
    "MarketSwitch",
    "MarketsConfig",
    "SqueezeConfig",
]

_SOURCE = "conf/markets"

#: Types of the copula's factors, in the order of ``markets.copula.correlation``.
FACTOR_TYPES = ("demand", "electricity", "copper", "gpu_rent")


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise InputError(_SOURCE, f"markets.{key}", value, allowed)


def _number(value: float, key: str, lo: float, hi: float, what: str = "") -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and lo <= value <= hi
    _check(ok, key, value, f"a number in [{lo}, {hi}]{what}")


@dataclass
class MarketSwitch:
    """A market that is either stochastic or fixed at its central path.

    Attributes
    ----------
    enabled : bool
        False: shocks, jumps, regime switches and events are all zero, so an
        analyst can see what the market's risk adds.
    """

    enabled: bool = True


@dataclass
class DemandConfig:
    """AI-demand factor D_t = phi D_{t-1} + sqrt(1 - phi^2) z_t (standard normal, latent).

    Attributes
    ----------
    enabled : bool
        False: D_t = initial phi^t (no shocks).
    persistence : float
        Monthly AR(1) coefficient phi in [0, 1).
    initial : float
        D_0 in standard deviations (0 = neutral demand today).
    """

    enabled: bool = True
    persistence: float = 0.95
    initial: float = 0.0

    def __post_init__(self) -> None:
        _number(self.persistence, "demand.persistence", 0.0, 0.9999)
        _number(self.initial, "demand.initial", -5.0, 5.0, " (standard deviations)")


@dataclass
class CopulaConfig:
    """How the factors' monthly shocks are joined.

    Attributes
    ----------
    family : str
        ``gaussian`` or ``student_t``.
    nu : float
        Degrees of freedom of the Student-t copula, > 2.
    correlation : list of list of float
        4 x 4 correlation of the factor types demand, electricity, copper, gpu_rent.
    electricity_between_regions : float
        Correlation of the electricity shocks of two regions.
    gpu_rent_between_generations : float
        Correlation of the rent shocks of two GPU generations.
    """

    family: str = "gaussian"
    nu: float = 6.0
    correlation: list[Any] = field(
        default_factory=lambda: [
            [1.0, 0.4, 0.2, 0.0],
            [0.4, 1.0, 0.1, 0.0],
            [0.2, 0.1, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    electricity_between_regions: float = 0.5
    gpu_rent_between_generations: float = 0.8

    def __post_init__(self) -> None:
        _check(
            self.family in ("gaussian", "student_t"),
            "copula.family",
            self.family,
            "gaussian or student_t",
        )
        _number(self.nu, "copula.nu", 2.01, 1000.0, " (degrees of freedom)")
        if not _rectangular(self.correlation):
            raise InputError(
                _SOURCE,
                "markets.copula.correlation",
                self.correlation,
                f"a 4 x 4 matrix of numbers (rows and columns {', '.join(FACTOR_TYPES)})",
            )
        for i, row in enumerate(self.correlation):
            for j, value in enumerate(row):
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                ok = ok and math.isfinite(value) and abs(value) <= 1.0
                key = f"copula.correlation[{i}][{j}]"
                _check(
                    ok,
                    key,
                    value,
                    f"a correlation in [-1, 1] ({FACTOR_TYPES[i]} vs {FACTOR_TYPES[j]})",
                )
        matrix = np.array([[float(v) for v in row] for row in self.correlation])
        check_correlation(matrix, list(FACTOR_TYPES), "markets.copula.correlation", _SOURCE)
        _number(self.electricity_between_regions, "copula.electricity_between_regions", -1, 1)
        _number(self.gpu_rent_between_generations, "copula.gpu_rent_between_generations", -1, 1)


def _rectangular(rows: Any) -> bool:
    n = len(FACTOR_TYPES)
    return (
        isinstance(rows, list | tuple)
        and len(rows) == n
        and all(isinstance(r, list | tuple) and len(r) == n for r in rows)
    )


@dataclass
class SqueezeConfig:
    """Two-state Markov supply-squeeze regime of copper and electrical equipment.

    Attributes
    ----------
    enter_probability : float
        P(normal -> squeeze) per month.
    exit_probability : float
        P(squeeze -> normal) per month.
    initial : str
        State before month 1: ``normal``, ``squeeze`` or ``stationary`` (drawn).
    log_premium : float
        Added to the copper log-price while in squeeze.
    equipment_lead_factor : float
        Long-lead electrical equipment progresses at 1/factor of its pace in
        squeeze months (>= 1).
    """

    enter_probability: float = 0.0087
    exit_probability: float = 0.08
    initial: str = "stationary"
    log_premium: float = 0.18
    equipment_lead_factor: float = 1.5

    def __post_init__(self) -> None:
        _number(self.enter_probability, "copper.squeeze.enter_probability", 0.0, 1.0)
        _number(self.exit_probability, "copper.squeeze.exit_probability", 0.0, 1.0)
        _check(
            self.initial in ("normal", "squeeze", "stationary"),
            "copper.squeeze.initial",
            self.initial,
            "normal, squeeze or stationary",
        )
        _check(
            not (
                self.initial == "stationary" and self.enter_probability + self.exit_probability == 0
            ),
            "copper.squeeze.initial",
            self.initial,
            "normal or squeeze when both transition probabilities are 0",
        )
        _number(self.log_premium, "copper.squeeze.log_premium", -2.0, 2.0)
        _number(self.equipment_lead_factor, "copper.squeeze.equipment_lead_factor", 1.0, 10.0)


@dataclass
class CopperConfig:
    """Schwartz-Smith copper log-price with jumps and a squeeze regime; copper capex.

    ln S_t = chi_t + xi_t (+ squeeze premium); chi OU (short term), xi a drifting
    level (long term) that also takes the jumps.

    Attributes
    ----------
    enabled : bool
        False: the central path (no shocks, jumps or squeezes).
    spot_usd_per_t : float
        S_0 in $/t.
    short_term_start : float
        chi_0: log deviation of spot above the long-term level.
    short_kappa_per_year, short_sigma : float
        Mean reversion (1/yr) and volatility (1/sqrt(yr)) of chi.
    long_drift_per_year, long_sigma : float
        Drift (1/yr) and volatility (1/sqrt(yr)) of xi.
    short_long_correlation : float
        Instantaneous correlation of the chi and xi shocks.
    jump_rate_per_year, jump_mean_log, jump_sd_log : float
        Compound-Poisson jumps of ln S (tariffs, outages): rate and N(mean, sd) sizes.
    squeeze : SqueezeConfig
        The supply-squeeze regime.
    intensity_t_per_mw : float
        Copper in a data center, t per MW of IT load.
    facility_capex_usd_per_mw : float
        Facility capex ($/MW of IT) including copper at ``reference_price_usd_per_t``.
    reference_price_usd_per_t : float
        Copper price embedded in the facility capex.
    """

    enabled: bool = True
    spot_usd_per_t: float = 12_500.0
    short_term_start: float = 0.09
    short_kappa_per_year: float = 1.0
    short_sigma: float = 0.20
    long_drift_per_year: float = 0.0
    long_sigma: float = 0.15
    short_long_correlation: float = 0.3
    jump_rate_per_year: float = 0.15
    jump_mean_log: float = 0.0
    jump_sd_log: float = 0.18
    squeeze: SqueezeConfig = field(default_factory=SqueezeConfig)
    intensity_t_per_mw: float = 27.0
    facility_capex_usd_per_mw: float = 11_500_000.0
    reference_price_usd_per_t: float = 12_500.0

    def __post_init__(self) -> None:
        _number(self.spot_usd_per_t, "copper.spot_usd_per_t", 1.0, 1e6, " ($/t)")
        _number(self.short_term_start, "copper.short_term_start", -3.0, 3.0)
        _number(self.short_kappa_per_year, "copper.short_kappa_per_year", 0.001, 100.0)
        _number(self.short_sigma, "copper.short_sigma", 0.0, 5.0)
        _number(self.long_drift_per_year, "copper.long_drift_per_year", -1.0, 1.0)
        _number(self.long_sigma, "copper.long_sigma", 0.0, 5.0)
        _number(self.short_long_correlation, "copper.short_long_correlation", -1.0, 1.0)
        _number(self.jump_rate_per_year, "copper.jump_rate_per_year", 0.0, 120.0)
        _number(self.jump_mean_log, "copper.jump_mean_log", -3.0, 3.0)
        _number(self.jump_sd_log, "copper.jump_sd_log", 0.0, 3.0)
        _number(self.intensity_t_per_mw, "copper.intensity_t_per_mw", 0.0, 1000.0, " (t/MW)")
        _number(self.facility_capex_usd_per_mw, "copper.facility_capex_usd_per_mw", 0.0, 1e9)
        _number(self.reference_price_usd_per_t, "copper.reference_price_usd_per_t", 1.0, 1e6)
        embedded = self.intensity_t_per_mw * self.reference_price_usd_per_t
        _check(
            embedded <= self.facility_capex_usd_per_mw,
            "copper.facility_capex_usd_per_mw",
            self.facility_capex_usd_per_mw,
            f"at least the copper it embeds ({embedded:,.0f} $/MW = intensity x reference price)",
        )


@dataclass
class GpuRegimeConfig:
    """Optional tight / normal / glut regimes of the GPU rental market.

    Attributes
    ----------
    enabled : bool
        Switch the regimes on (off by default).
    transition : list of list of float
        3 x 3 monthly transition matrix, rows tight, normal, glut; each row sums to 1.
    log_offsets : list of float
        Added to every generation's log-rent in each regime.
    """

    enabled: bool = False
    transition: list[Any] = field(
        default_factory=lambda: [
            [0.9707, 0.0293, 0.0],
            [0.01465, 0.9707, 0.01465],
            [0.0, 0.0293, 0.9707],
        ]
    )
    log_offsets: list[Any] = field(default_factory=lambda: [0.2231, 0.0, -0.2877])

    def __post_init__(self) -> None:
        rows = self.transition
        _check(
            isinstance(rows, list | tuple)
            and len(rows) == 3
            and all(isinstance(r, list | tuple) and len(r) == 3 for r in rows),
            "gpu.regimes.transition",
            rows,
            "a 3 x 3 matrix (tight, normal, glut)",
        )
        for i, row in enumerate(rows):
            for j, p in enumerate(row):
                _number(p, f"gpu.regimes.transition[{i}][{j}]", 0.0, 1.0, " (probability)")
            _check(
                abs(sum(row) - 1.0) < 1e-9,
                f"gpu.regimes.transition[{i}]",
                row,
                "probabilities that sum to 1",
            )
        _check(
            isinstance(self.log_offsets, list | tuple) and len(self.log_offsets) == 3,
            "gpu.regimes.log_offsets",
            self.log_offsets,
            "3 numbers",
        )
        for j, v in enumerate(self.log_offsets):
            _number(v, f"gpu.regimes.log_offsets[{j}]", -3.0, 3.0)


@dataclass
class GpuMarketConfig:
    """Book-wide GPU secondary-market switches (per-generation values are in the book).

    Attributes
    ----------
    enabled : bool
        False: no rent shocks or regimes (rents follow their trend plus the
        demand loading, which the demand switch controls), no successor
        uncertainty (the launch at the middle of its window).
    regimes : GpuRegimeConfig
        Optional market regimes.
    """

    enabled: bool = True
    regimes: GpuRegimeConfig = field(default_factory=GpuRegimeConfig)


@dataclass
class MarketsConfig:
    """The market risk factors of MODEL.md section 2.

    Attributes
    ----------
    first_calendar_month : int
        Calendar month (1 = January) of simulated month 1, for seasonality.
    demand, copula, electricity, copper, gpu
        The factors and their dependence.
    """

    first_calendar_month: int = 1
    demand: DemandConfig = field(default_factory=DemandConfig)
    copula: CopulaConfig = field(default_factory=CopulaConfig)
    electricity: MarketSwitch = field(default_factory=MarketSwitch)
    copper: CopperConfig = field(default_factory=CopperConfig)
    gpu: GpuMarketConfig = field(default_factory=GpuMarketConfig)

    def __post_init__(self) -> None:
        _check(
            isinstance(self.first_calendar_month, int) and 1 <= self.first_calendar_month <= 12,
            "first_calendar_month",
            self.first_calendar_month,
            "an integer from 1 (January) to 12",
        )
