"""Shared helpers of the finance tests (test_finance_*.py): small books, settings and a
run that keeps the engine's finance statistics. A plain module, not collected.

Books have one region ($50/MWh + $20 adder) and one GPU generation ``g``; facilities
have loose covenants and a refinancing that cannot fail unless told otherwise.
``CENTRAL`` switches every market to its central path, so that with fixed schedules and
customers with PD 0 and no termination every path is the same path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import fixed, item, make_settings

import engine.run
from engine.config import Settings
from engine.customer_config import CustomersConfig
from engine.demand_stats import DemandStats
from engine.finance_config import FinanceConfig, JointTarget
from engine.kernels.lanes import LANES
from engine.market_config import (
    CopperConfig,
    DemandConfig,
    GpuMarketConfig,
    MarketsConfig,
    MarketSwitch,
)
from engine.market_stats import MarketStats
from engine.run import compute_tables
from engine.scenario import Book, parse_book

#: Every market at its central path: no shocks, jumps, regimes or events.
CENTRAL = MarketsConfig(
    demand=DemandConfig(enabled=False),
    electricity=MarketSwitch(enabled=False),
    copper=CopperConfig(enabled=False),
    gpu=GpuMarketConfig(enabled=False),
)
#: Refinancing that cannot fail on any path: logit^-1(logit(1e-12)) at any LTV, no stress.
SAFE_REFI = {
    "failure_probability": 1e-12,
    "stress_failure_probability": 1e-12,
    "ltv_slope": 0.0,
    "stress_demand_threshold": -10.0,
    "term_months": 36,
}


# -- books -------------------------------------------------------------------------------


def gen_market(**fields: Any) -> dict[str, Any]:
    """A GPU generation's market: $2/GPU-hr, $40k new, 25%/yr decay; a successor at 30."""
    data = {
        "rent_usd_per_gpu_hour": 2.0,
        "rent_drift_per_year": -0.2,
        "new_price_usd": 40_000.0,
        "residual_decay_per_year": 0.25,
        "successor_launch_min": 30,
        "successor_launch_max": 30,
        "successor_step_down": 0.2,
    }
    return data | fields


def phase(mw: float, month: int, name: str, **fields: Any) -> dict[str, Any]:
    """A phase energized exactly at ``month`` (a fixed construction item), as planned."""
    data = {
        "it_mw": mw,
        "planned_month": month,
        "schedule": [item(name, "construction", fixed(float(month)))],
    }
    return data | fields


def fin_site(ident: str, operator: str, phases: list[dict[str, Any]], **fields: Any) -> dict:
    """A site on grid power at month 0 (GPU generation ``g``, PUE 1.25)."""
    data = {
        "id": ident,
        "operator": operator,
        "region": "r",
        "gpu_generation": "g",
        "pue": 1.25,
        "interconnection": fixed(0.0),
        "withdrawal_probability": 0.0,
        "phases": phases,
    }
    return data | fields


def facility(ident: str, operator: str, sites: list[str], **fields: Any) -> dict[str, Any]:
    """A debt facility; covenants loose and refinancing certain unless given."""
    data = {
        "id": ident,
        "operator": operator,
        "collateral_sites": sites,
        "principal_usd": 2.0e8,
        "fixed_rate": 0.08,
        "maturity_month": 48,
        "amortisation_start_month": 6,
        "balloon_share": 0.3,
        "covenants": {"min_dscr": 0.0, "max_ltv": 50.0, "first_test_month": 1},
        "refinancing": SAFE_REFI,
    }
    return data | fields


def fin_book(
    operators: list[dict[str, Any]],
    sites: list[dict[str, Any]],
    facilities: list[dict[str, Any]],
    customers: list[dict[str, Any]] | None = None,
    contracts: list[dict[str, Any]] | None = None,
    market: dict[str, Any] | None = None,
    base_rate: dict[str, Any] | None = None,
) -> Book:
    """A small book: one region ($50/MWh + $20 adder, no hedge), one GPU generation ``g``."""
    data: dict[str, Any] = {
        "name": "finance-test",
        "regions": [
            {
                "id": "r",
                "time_to_power": fixed(0.0),
                "electricity": {"price_usd_per_mwh": 50.0, "adder_usd_per_mwh": 20.0},
            }
        ],
        "gpu_generations": [
            {
                "id": "g",
                "it_kw_per_gpu": 2.5,
                "h100_equivalents": 2.5,
                "market": market if market is not None else gen_market(),
            }
        ],
        "operators": operators,
        "sites": sites,
        "customers": customers or [],
        "contracts": contracts or [],
        "facilities": facilities,
    }
    if base_rate is not None:
        data["base_rate"] = base_rate
    return parse_book(data, "finance-test")


def fin_settings(
    n: int,
    horizon: int,
    seed: int = 11,
    markets: MarketsConfig | None = None,
    relet: float = 0.7,
    targets: list[JointTarget] | None = None,
    contagion: bool = True,
) -> Settings:
    s = make_settings(n, horizon=horizon, seed=seed)
    s.markets = markets if markets is not None else MarketsConfig()
    s.customers = CustomersConfig(relet_utilisation=relet)
    s.finance = FinanceConfig(contagion=contagion)
    if targets is not None:
        s.finance = FinanceConfig(contagion=contagion, joint_targets=targets)
    return s


# -- running the engine --------------------------------------------------------------------


@dataclass
class FinanceRun:
    """A run's tables, its finance statistics and (optionally) its per-path inputs."""

    tables: dict[str, pl.DataFrame]
    finance: Any
    factor_paths: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    energization: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))


def _series_buffer(n_paths: int, series: np.ndarray) -> np.ndarray:
    """Every path's market series, ``[group, channel, month, lane]`` (``series``: a slot)."""
    return np.empty(((n_paths + LANES - 1) // LANES, *series.shape[1:]))


def separate_kernels(
    markets: MarketStats, demand: DemandStats
) -> Callable[[np.ndarray, int, int], None]:
    """Chunk hook running the demand side apart: the market kernel writes every path's
    series into a buffer, then ``contract_statistics`` reads them (a run does both in one
    kernel, group by group); for tests that both give the same bits."""
    width = markets.horizon + 1
    slot = np.empty((0, demand.series_channels(markets.arrays.gpu.shape[0]), width, LANES))

    def hook(energization: np.ndarray, path0: int, n_blocks: int) -> None:
        series = _series_buffer(energization.shape[0], slot)
        markets.add(energization, path0, n_blocks, factor_paths=series)
        demand.add(energization, series, path0, n_blocks)

    return hook


def run_finance(
    book: Book,
    settings: Settings,
    threads: int = 2,
    capture: bool = False,
    chunk_sizes: list[int] | None = None,
) -> FinanceRun:
    """compute_tables, keeping its FinanceStats (and with ``capture`` every path's market
    channels and energization times, as the market kernel hands them to the demand side:
    written to a buffer of every path's series instead of one slot per block)."""
    seen: dict[str, Any] = {}
    paths: list[np.ndarray] = []
    times: list[np.ndarray] = []
    inner = engine.run._markets_and_demand  # the run's, or a test's (separate_kernels)

    def spy(markets: Any, demand: Any) -> Any:
        seen["demand"] = demand
        if capture:
            add = markets.add

            def add_and_keep(e: np.ndarray, path0: int, n_blocks: int, **kw: Any) -> None:
                fp = kw["factor_paths"]
                if fp.shape[0] == 0:  # a slot per block: every path's series instead
                    kw["factor_paths"] = fp = _series_buffer(e.shape[0], fp)
                add(e, path0, n_blocks, **kw)
                # [group, channel, month, lane] -> [path, channel, month]
                by_path = fp.transpose(0, 3, 1, 2).reshape(-1, fp.shape[1], fp.shape[2])
                paths.append(by_path[: e.shape[0]].copy())
                times.append(e.copy())

            markets.add = add_and_keep
        return inner(markets, demand)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine.run, "_markets_and_demand", spy)
        tables, _ = compute_tables(book, settings, threads=threads, chunk_sizes=chunk_sizes)
    out = FinanceRun(tables, seen["demand"].finance)
    if capture:
        out.factor_paths = np.concatenate(paths)
        out.energization = np.concatenate(times)
    return out


# -- contagion book and joint targets (shared by several test files) ------------------------


def contagion_book(impact_lambda: float, a_has_debt: bool = True) -> Book:
    """Operators A and B, 16,000 GPUs each of generation ``g`` (installed base 80,000).

    A: one anchor customer with a 30% annual PD; re-let at a low utilisation its DSCR
    (3-month window) falls below 1.3 within months of the customer's default; its LTV
    covenant is loose. B: a customer that never defaults, a comfortable DSCR and an LTV
    of 0.5-0.65 on the central path against a covenant of 0.9: its own market risk
    (rent volatility 20%) breaches it on about one path in ten, the fire sale of A's
    GPUs on many more."""
    market = gen_market(
        sigma=0.2,
        successor_launch_min=-1,
        successor_launch_max=-1,
        fire_sale={
            "impact_lambda": impact_lambda,
            "half_life_months": 6.0,
            "installed_base_units": 80_000.0,
        },
    )
    ops = [
        {"id": "op_a", "starting_cash_usd": 8.0e8, "fixed_opex_usd_per_month": 1.0e6},
        {"id": "op_b", "starting_cash_usd": 8.0e8, "fixed_opex_usd_per_month": 1.0e6},
    ]
    sites = [
        fin_site("a", "op_a", [phase(40.0, 2, "hall_a")]),
        fin_site("b", "op_b", [phase(40.0, 2, "hall_b")]),
    ]
    customers = [
        {"id": "weak", "annual_pd": 0.3, "demand_loading": 0.3, "default_recovery": 0.0},
        {"id": "strong", "annual_pd": 0.0},
    ]
    contracts = [
        {
            "id": f"k_{x}",
            "customer": c,
            "sites": [x],
            "share": 1.0,
            "price_usd_per_gpu_hour": 3.0,
            "start_month": 2,
            "term_months": 60,
        }
        for x, c in (("a", "weak"), ("b", "strong"))
    ]
    common = {
        "principal_usd": 3.84e8,
        "draw": "as_built",
        "maturity_month": 72,
        "amortisation_start_month": 3,
        "balloon_share": 0.0,
        "liquidation_months": 6,
    }
    fa = (
        facility("fa", "op_a", ["a"])
        | common
        | {
            "covenants": {
                "min_dscr": 1.3,
                "max_ltv": 5.0,
                "cure_months": 2,
                "first_test_month": 3,
                "dscr_window_months": 3,
            }
        }
    )
    fb = (
        facility("fb", "op_b", ["b"])
        | common
        | {
            "principal_usd": 3.2e8,
            "covenants": {
                "min_dscr": 1.0,
                "max_ltv": 0.9,
                "cure_months": 2,
                "first_test_month": 3,
                "dscr_window_months": 12,
            },
        }
    )
    facilities = [fa, fb] if a_has_debt else [fb]
    return fin_book(ops, sites, facilities, customers, contracts, market=market)


#: Joint targets over the two operators of a random or contagion book.
TARGETS = [
    JointTarget("solvent_a", no_operator_default=True, operators=["op_a"]),
    JointTarget("covered", min_dscr=1.2, no_customer_default=True, customers=["c_b"]),
    JointTarget("delivered", mw_online_share=0.9, by_month=12, no_operator_default=True),
]
