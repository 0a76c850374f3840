"""Run settings and model parameters: dataclass schemas registered with Hydra.

``conf/`` holds the values; these dataclasses are their schemas. Hydra checks key
names and types when it composes the config; ``__post_init__`` checks ranges when
the composed config is turned into real objects with ``OmegaConf.to_object``, so
every value is validated once, before any simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from engine.customer_config import CustomersConfig
from engine.errors import InputError
from engine.finance_config import FinanceConfig
from engine.market_config import MarketsConfig

__all__ = [
    "CapacityConfig",
    "DelayCorrelationConfig",
    "OutputConfig",
    "OverrunConfig",
    "PathsConfig",
    "RunConfig",
    "Settings",
    "register_schemas",
]

_CONF = "conf"


def _check(ok: bool, key: str, value: Any, allowed: str, group: str) -> None:
    if not ok:
        raise InputError(f"{_CONF}/{group}", key, value, allowed)


@dataclass
class RunConfig:
    """How many paths, how far, with which seed, on how many threads.

    Attributes
    ----------
    n_paths : int
        Monte Carlo paths (futures of the whole book), >= 1.
    horizon_months : int
        Simulated months t = 1..T, >= 1.
    seed : int
        Run seed in [0, 2**63); with the config it fixes every number of the run.
    threads : int
        Numba threads; 0 means all cores available to the process.
    chunk_size : int
        Paths simulated at once; bounds memory, does not change results.
    progress : bool
        Log one line per chunk.
    """

    n_paths: int = 200_000
    horizon_months: int = 120
    seed: int = 20261122
    threads: int = 0
    chunk_size: int = 250_000
    progress: bool = True

    def __post_init__(self) -> None:
        _check(self.n_paths >= 1, "run.n_paths", self.n_paths, "an integer >= 1", "run")
        _check(
            1 <= self.horizon_months <= 600,
            "run.horizon_months",
            self.horizon_months,
            "an integer from 1 to 600 (months)",
            "run",
        )
        _check(0 <= self.seed < 2**63, "run.seed", self.seed, "an integer in [0, 2**63)", "run")
        _check(self.threads >= 0, "run.threads", self.threads, "0 (all cores) or >= 1", "run")
        _check(
            1 <= self.chunk_size <= 50_000_000,
            "run.chunk_size",
            self.chunk_size,
            "an integer from 1 to 50,000,000 (paths per chunk)",
            "run",
        )


@dataclass
class PathsConfig:
    """Where runs write.

    Attributes
    ----------
    results_dir : str
        Root of run directories, relative to the working directory unless absolute.
    """

    results_dir: str = "results"


@dataclass
class OverrunConfig:
    """Project-level duration multiplier M ~ lognormal(ln median, sigma_ln).

    Attributes
    ----------
    median : float
        Median of M (x planned duration), > 0. Default 1.31 (calibration.md 1B).
    sigma_ln : float
        Standard deviation of ln M, >= 0. Default 0.211 (calibration.md 1B).
    """

    median: float = 1.31
    sigma_ln: float = 0.211

    def __post_init__(self) -> None:
        _check(
            math.isfinite(self.median) and self.median > 0,
            "capacity.overrun.median",
            self.median,
            "a number > 0 (multiplier on planned durations)",
            "capacity",
        )
        _check(
            math.isfinite(self.sigma_ln) and 0 <= self.sigma_ln <= 3,
            "capacity.overrun.sigma_ln",
            self.sigma_ln,
            "a number in [0, 3]",
            "capacity",
        )


@dataclass
class DelayCorrelationConfig:
    """Gaussian-copula correlation of schedule draws.

    Attributes
    ----------
    operator : float
        Correlation between draws of the same kind at two sites of one operator.
    campus : float
        Correlation between draws of the same kind at two sites of one campus;
        must be >= ``operator`` (a campus shares everything an operator shares).
    """

    operator: float = 0.4
    campus: float = 0.6

    def __post_init__(self) -> None:
        for name in ("operator", "campus"):
            value = getattr(self, name)
            _check(
                -1.0 <= value <= 1.0,
                f"capacity.delay_correlation.{name}",
                value,
                "a correlation in [-1, 1]",
                "capacity",
            )
            _check(
                value >= 0.0,
                f"capacity.delay_correlation.{name}",
                value,
                "a correlation in [0, 1]: the nested one-factor copula cannot make "
                "delays of sites negatively correlated",
                "capacity",
            )
        _check(
            self.campus >= self.operator,
            "capacity.delay_correlation.campus",
            self.campus,
            f"a correlation >= capacity.delay_correlation.operator ({self.operator})",
            "capacity",
        )


@dataclass
class CapacityConfig:
    """Parameters of the capacity-delivery model (MODEL.md section 3).

    Attributes
    ----------
    overrun : OverrunConfig
        Project-level duration multiplier.
    delay_correlation : DelayCorrelationConfig
        Copula correlations of schedule draws.
    gpu_failure_rate_per_year : float
        Annualised share of GPUs that fail (1/yr), default 0.10 (calibration.md 1E).
    gpu_repair_days : float
        Mean days a failed GPU is out of service (estimate).
    """

    overrun: OverrunConfig = field(default_factory=OverrunConfig)
    delay_correlation: DelayCorrelationConfig = field(default_factory=DelayCorrelationConfig)
    gpu_failure_rate_per_year: float = 0.10
    gpu_repair_days: float = 14.0

    def __post_init__(self) -> None:
        _check(
            0.0 <= self.gpu_failure_rate_per_year <= 5.0,
            "capacity.gpu_failure_rate_per_year",
            self.gpu_failure_rate_per_year,
            "a rate in [0, 5] per GPU-year",
            "capacity",
        )
        _check(
            0.0 <= self.gpu_repair_days <= 365.0,
            "capacity.gpu_repair_days",
            self.gpu_repair_days,
            "a number of days in [0, 365]",
            "capacity",
        )

    @property
    def gpu_availability(self) -> float:
        """Steady-state share of installed GPUs in service, 1 / (1 + rate x repair time)."""
        return 1.0 / (1.0 + self.gpu_failure_rate_per_year * self.gpu_repair_days / 365.0)


@dataclass
class OutputConfig:
    """What a run keeps and prints.

    Attributes
    ----------
    keep_paths : bool
        Also write ``paths_energization.parquet`` (one row per path and phase).
    max_histogram_bins : int
        Bins per scope and measure for capacity quantiles; quantiles are exact
        when every possible value fits on the bin lattice (see docs/model.md).
    summary_months : list of int
        Months at which the printed summary shows MW online.
    """

    keep_paths: bool = False
    max_histogram_bins: int = 4096
    summary_months: list[int] = field(default_factory=lambda: [12, 24, 36, 60])

    def __post_init__(self) -> None:
        _check(
            16 <= self.max_histogram_bins <= 65536,
            "output.max_histogram_bins",
            self.max_histogram_bins,
            "an integer from 16 to 65536",
            "output",
        )
        for i, month in enumerate(self.summary_months):
            _check(
                month >= 1,
                f"output.summary_months[{i}]",
                month,
                "a month >= 1",
                "output",
            )


@dataclass
class Settings:
    """The whole composed configuration of one run.

    Attributes
    ----------
    scenario : str
        Name of a book in ``scenarios/`` (without ``.yaml``) or a path to a YAML file.
    run, paths, capacity, output, markets, customers, finance
        The config groups.
    """

    scenario: str = "reference"
    run: RunConfig = field(default_factory=RunConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    capacity: CapacityConfig = field(default_factory=CapacityConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    markets: MarketsConfig = field(default_factory=MarketsConfig)
    customers: CustomersConfig = field(default_factory=CustomersConfig)
    finance: FinanceConfig = field(default_factory=FinanceConfig)

    def __post_init__(self) -> None:
        _check(
            bool(self.scenario.strip()),
            "scenario",
            self.scenario,
            "a scenario name or a path to a .yaml file",
            "config.yaml",
        )


def register_schemas() -> None:
    """Register the schemas with Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="settings_schema", node=Settings)
    cs.store(group="run", name="run_schema", node=RunConfig)
    cs.store(group="paths", name="paths_schema", node=PathsConfig)
    cs.store(group="capacity", name="capacity_schema", node=CapacityConfig)
    cs.store(group="output", name="output_schema", node=OutputConfig)
    cs.store(group="markets", name="markets_schema", node=MarketsConfig)
    cs.store(group="customers", name="customers_schema", node=CustomersConfig)
    cs.store(group="finance", name="finance_schema", node=FinanceConfig)
