"""The whole model in plain vectorised NumPy: capacity, markets, customers and contracts, finance.

The baseline of ``whole.py``: the default run (``engine.run.compute_tables``)
written without numba, from the pieces of this folder: ``numpy_capacity.py``
(energization times and capacity statistics), ``numpy_markets.py`` (market
factors and statistics, keeping each path's demand factor, rents, resale values,
regional energy costs and copper price), ``numpy_demand.py`` (customer
defaults, contracts, revenue and concentration statistics) and
``numpy_finance.py`` (operator costs, cash, debt, covenants, defaults, fire
sales and their statistics). Every loop runs over months or the book's
entities, never over paths; chunks of paths bound memory. As in the engine, the
markets see the copper squeeze history that stretched the capacity model's
equipment lead times (one history per path, docs/model.md §7.7).

Inputs are the engine's lowered arrays (``lower_capacity``, ``lower_markets``
through ``MarketStats.create``, ``lower_demand`` and ``lower_finance`` through
``DemandStats.create`` and ``FinanceStats.create``), so parameters, bins and
fixed-point units are the engine's; the demand and finance statistics are
accumulated into the engine's own statistics objects, whose table methods then
build the same tables. One ``numpy.random.Generator`` (SFC64) draws every
random number: the results agree with the engine in distribution, not bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy_capacity
import numpy_demand
import numpy_finance
import numpy_markets
from numpy_capacity import NumpyCapacityStats
from numpy_markets import NumpyMarketStats

from engine.book import lower_capacity
from engine.config import Settings
from engine.demand_stats import DemandStats
from engine.finance_stats import FinanceStats
from engine.market_layout import S_CU_INTENSITY, S_FACILITY_EX_CU
from engine.market_stats import MarketStats
from engine.scenario import Book
from engine.scopes import Scopes, build_scopes

__all__ = ["CHUNK", "WholeStats", "simulate_whole", "whole_tables"]

#: Paths whose markets, contracts and finance are simulated at once (the NumPy run's
#: peak memory is then some 0.65 GB above its start at 120 months, whatever the paths).
CHUNK = numpy_markets.CHUNK


@dataclass
class WholeStats:
    """Statistics of a NumPy run of the whole model.

    Attributes
    ----------
    scopes : Scopes
        Reporting scopes of the capacity and market statistics.
    capacity : NumpyCapacityStats
        Energization and capacity-online counts.
    markets : NumpyMarketStats
        Factor histograms and sums, events, site costs.
    markets_lowered : MarketStats
        The engine's market lowering (``arrays``, ``layout``; its counts unused).
    demand : DemandStats
        Demand-side statistics (the engine's class, filled by NumPy).
    finance : FinanceStats
        Finance statistics (the engine's class, filled by NumPy).
    """

    scopes: Scopes
    capacity: NumpyCapacityStats
    markets: NumpyMarketStats
    markets_lowered: MarketStats
    demand: DemandStats
    finance: FinanceStats


def simulate_whole(book: Book, settings: Settings, seed: int, chunk: int = CHUNK) -> WholeStats:
    """Simulate ``settings.run.n_paths`` paths of the whole model; return their statistics.

    Parameters
    ----------
    book : Book
        The validated book (with contracts and debt facilities).
    settings : Settings
        Run settings and model parameters (paths, horizon T in months, chunk size).
    seed : int
        Seed of the ``numpy.random.Generator``.
    chunk : int
        Paths whose markets, contracts and finance run at once (capacity runs
        ``settings.run.chunk_size`` paths at once).

    Returns
    -------
    WholeStats
        Finished statistics.
    """
    run = settings.run
    horizon, n_paths = run.horizon_months, run.n_paths
    rng = np.random.Generator(np.random.SFC64(seed))
    scopes = build_scopes(book, settings.output.max_histogram_bins)
    cap_arrays = lower_capacity(book, settings.capacity, settings.markets)
    lowered = MarketStats.create(book, settings, scopes)
    a, layout = lowered.arrays, lowered.layout
    capacity = numpy_capacity.empty_stats(n_paths, horizon, cap_arrays.n_phases, scopes)
    markets = numpy_markets.empty_stats(a, layout, horizon, len(scopes.kind))
    demand = DemandStats.create(book, settings)
    finance = FinanceStats.create(book, settings, demand.arrays, a.fire_sale_keep)
    n_gens, n_ops = a.gpu.shape[0], len(book.operators)
    copper_intensity, ex_copper = a.scalars[S_CU_INTENSITY], a.scalars[S_FACILITY_EX_CU]
    for start in range(0, n_paths, run.chunk_size):
        size = min(run.chunk_size, n_paths - start)
        energized, squeeze = numpy_capacity.energization_and_squeeze(cap_arrays, rng, size, horizon)
        numpy_capacity.accumulate_counts(energized, scopes, capacity)
        for off in range(0, size, chunk):
            months = numpy_markets.energization_months(energized[:, off : off + chunk], horizon)
            channels = np.zeros((1 + 2 * n_gens, horizon + 1, months.shape[1]))
            cum, copper = numpy_markets.add_paths(
                markets, a, layout, months, rng, channels, squeeze[:, off : off + chunk]
            )
            energy, capex = numpy_finance.operator_costs(
                months, cum, copper, layout, copper_intensity, ex_copper, n_ops
            )
            del cum, copper
            paths = numpy_demand.add_demand(
                demand, months, channels[0], channels[1 : 1 + n_gens], rng
            )
            numpy_finance.add_finance(finance, months, channels, energy, capex, paths, rng)
    numpy_capacity.finish(capacity, scopes)
    return WholeStats(scopes, capacity, markets, lowered, demand, finance)


def whole_tables(stats: WholeStats, book: Book, settings: Settings) -> dict[str, Any]:
    """The run's tables: capacity and markets as arrays, the demand side and finance as frames.

    Capacity (``numpy_capacity.capacity_tables``) and market factors
    (``numpy_markets.factor_table``) come as dicts of arrays; the contracts,
    revenue by month, concentration, customer risk, revenue risk, finance by
    month (cash, EBITDA, DSCR and LTV fans, PD by month), risk summary (PD,
    expected loss, LGD per facility, revenue VaR/CVaR, minimum DSCR) and joint
    confidence come from the engine's table methods on the NumPy statistics.

    Parameters
    ----------
    stats : WholeStats
        Finished statistics of :func:`simulate_whole`.
    book : Book
        The book simulated.
    settings : Settings
        Its settings (joint targets).

    Returns
    -------
    dict of str to object
        Tables by name.
    """
    planned = np.array([p.planned_month for s in book.sites for p in s.phases])
    demand, finance = stats.demand, stats.finance
    return {
        "capacity": numpy_capacity.capacity_tables(stats.capacity, stats.scopes, planned),
        "markets": numpy_markets.factor_table(stats.markets, stats.markets_lowered.arrays),
        "contracts": demand.contracts(book),
        "revenue_by_month": demand.revenue_by_month(book),
        "concentration": demand.concentration(book),
        "customer_risk": demand.customer_risk(book),
        "revenue_risk": demand.revenue_risk(book),
        "finance_by_month": finance.finance_by_month(book),
        "risk_summary": finance.risk_summary(book),
        "joint_confidence": finance.joint_confidence(settings),
    }
