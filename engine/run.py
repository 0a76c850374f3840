"""One run, end to end: book -> simulation -> tables -> run directory -> summary.

Plain Python orchestration; no Hydra here, so tests and sweeps call it directly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine import __version__
from engine.compile_notice import watch_compilation
from engine.config import Settings
from engine.demand_stats import DemandStats
from engine.finance_stats import FinanceStats
from engine.kernels.lanes import LANES
from engine.market_stats import MarketStats
from engine.resources import scenario_path
from engine.results import command_line, git_commit, package_versions, write_run
from engine.scenario import Book, load_book
from engine.scopes import build_scopes
from engine.simulate import available_cores, simulate_capacity
from engine.summary import headline
from engine.tables import capacity_by_month, site_energization

__all__ = ["RunOutput", "compute_tables", "lower_statistics", "run_scenario"]


@dataclass
class RunOutput:
    """What a run produced.

    Attributes
    ----------
    run_dir : pathlib.Path or None
        Where it was written (None when not written).
    tables : dict of str to polars.DataFrame
        The result tables by name.
    manifest : dict
        The run's manifest.
    book : Book
        The book that was simulated.
    """

    run_dir: Path | None
    tables: dict[str, pl.DataFrame]
    manifest: dict[str, Any]
    book: Book


def lower_statistics(book: Book, settings: Settings) -> tuple[MarketStats, DemandStats | None]:
    """Lower a book into the kernels' arrays and zero statistics (no kernel runs).

    Parameters
    ----------
    book : Book
        The validated book.
    settings : Settings
        Run settings and model parameters.

    Returns
    -------
    tuple
        The market statistics, and the demand side's (with its finance when the book
        has debt and ``finance.enabled``), or None for a book without contracts or debt.
    """
    markets = MarketStats.create(
        book, settings, build_scopes(book, settings.output.max_histogram_bins)
    )
    # finance needs debt: a book without facilities has no finance tables
    finance_on = settings.finance.enabled and bool(book.facilities)
    demand = DemandStats.create(book, settings) if book.contracts or finance_on else None
    if demand is not None and finance_on:
        demand.finance = FinanceStats.create(
            book, settings, demand.arrays, markets.arrays.fire_sale_keep
        )
    return markets, demand


def compute_tables(
    book: Book, settings: Settings, threads: int | None = None, chunk_sizes: list[int] | None = None
) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """Simulate a book and build its result tables (nothing is written).

    Parameters
    ----------
    book : Book
        The validated book.
    settings : Settings
        Run settings and model parameters.
    threads : int, optional
        Numba threads (default from the settings).
    chunk_sizes : list of int, optional
        Explicit chunking (default from ``run.chunk_size``).

    Returns
    -------
    tuple
        Tables by name, and run facts for the manifest (chunks, threads, timings).
    """
    started = time.perf_counter()
    markets, demand = lower_statistics(book, settings)
    hook = markets.add if demand is None else _markets_and_demand(markets, demand)
    with watch_compilation(announce=settings.run.progress) as compiling:
        stats, scopes = simulate_capacity(
            book, settings, threads=threads, chunk_sizes=chunk_sizes, chunk_hooks=[hook]
        )
    simulated = time.perf_counter()
    availability = settings.capacity.gpu_availability
    capacity = capacity_by_month(stats, scopes, availability)
    capacity = capacity.join(
        markets.curtailment(scopes).with_columns(
            pl.col("scope_type").cast(capacity.schema["scope_type"])
        ),
        on=["scope_type", "scope", "month"],
        how="left",
        maintain_order="left",
    ).with_columns(
        (pl.col("mw_online_mean") - pl.col("mw_curtailed_mean")).alias("mw_available_mean")
    )
    tables = {
        "capacity_by_month": capacity,
        "site_energization": site_energization(stats, book),
        "market_by_month": markets.market_by_month(book),
        "site_costs": markets.site_costs(book),
    }
    if demand is not None and book.contracts:
        tables["contracts"] = demand.contracts(book)
        tables["revenue_by_month"] = demand.revenue_by_month(book)
        tables["concentration"] = demand.concentration(book)
        tables["customer_risk"] = demand.customer_risk(book)
        tables["revenue_risk"] = demand.revenue_risk(book)
    if demand is not None and demand.finance is not None:
        tables["finance_by_month"] = demand.finance.finance_by_month(book)
        tables["risk_summary"] = demand.finance.risk_summary(book)
        tables["joint_confidence"] = demand.finance.joint_confidence(settings)
    if stats.kept_months is not None:
        tables["paths_energization"] = _paths_table(stats.kept_months, book)
    done = time.perf_counter()
    exact = {
        f"{scopes.kind[s]}:{scopes.name[s]}": [bool(x) for x in scopes.exact[s]]
        for s in range(len(scopes.kind))
    }
    facts = {
        "chunks": stats.chunks,
        "threads": threads,
        "quantiles_exact_mw_gpus_h100e": exact,
        # simulate includes compile: the first run on a machine compiles the kernels
        "timings_s": {
            "simulate": simulated - started,
            "compile": compiling.seconds,
            "tables": done - simulated,
        },
    }
    return tables, facts


def _markets_and_demand(
    markets: MarketStats, demand: DemandStats
) -> Callable[[np.ndarray, int, int], None]:
    """Chunk hook: the markets, each group of paths followed by its demand side.

    The demand side needs each path's AI-demand factor and rents by month, the
    finance also resale values, energy cost and facility capex (1 + 2 G + 2 O
    series); the market kernel runs each group's demand side and finance right
    after the group's months, on the series it has just written into one slot
    per block, which stays in L2.
    """
    channels = demand.series_channels(markets.arrays.gpu.shape[0])
    series = np.empty((0, channels, markets.horizon + 1, LANES))

    def hook(energization: np.ndarray, path0: int, n_blocks: int) -> None:
        markets.add(energization, path0, n_blocks, factor_paths=series, demand=demand)

    return hook


def _paths_table(months: Any, book: Book) -> pl.DataFrame:
    labels = [f"{s.id}#{k}" for s in book.sites for k in range(1, len(s.phases) + 1)]
    return (
        pl.DataFrame(
            {f"{label}_energization_month": months[:, j] for j, label in enumerate(labels)}
        )
        .with_row_index("path")
        .with_columns(pl.col("path").cast(pl.Int64))
    )


def run_scenario(
    settings: Settings,
    run_dir: Path,
    *,
    threads: int | None = None,
    resolved_config: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> RunOutput:
    """Load the book, simulate, build tables and write the run directory atomically.

    Parameters
    ----------
    settings : Settings
        Validated settings.
    run_dir : pathlib.Path
        Final run directory (absent or empty).
    threads : int, optional
        Numba threads for this run (default from the settings).
    resolved_config : dict, optional
        The composed config, recorded in the manifest.
    extra : dict, optional
        More manifest fields (overrides, job number).

    Returns
    -------
    RunOutput
        Tables, manifest and the run directory.
    """
    started = dt.datetime.now(dt.UTC)
    book = load_book(settings.scenario)
    n_threads = threads if threads is not None else (settings.run.threads or available_cores())
    tables, facts = compute_tables(book, settings, threads=n_threads)
    manifest: dict[str, Any] = {
        "engine": "neocloud-risk",
        "engine_version": __version__,
        "created_utc": started.isoformat(timespec="seconds"),
        "command": command_line(),
        "scenario": book.name,
        "scenario_file": str(scenario_path(settings.scenario)),
        "seed": settings.run.seed,
        "n_paths": settings.run.n_paths,
        "horizon_months": settings.run.horizon_months,
        "cores": available_cores(),
        **facts,
        "threads": n_threads,
        "quantile_definition": "inverted empirical CDF (Hyndman-Fan type 1) for capacity and "
        "energization; market and cost quantiles interpolated in ln value inside a "
        "histogram bin (within bin_width_log of the sample quantile)",
        "versions": package_versions(),
        "git_commit": git_commit(),
        "config": resolved_config or dataclasses.asdict(settings),
        "headline": headline(tables, settings),
        **(extra or {}),
    }
    write_run(run_dir, tables, manifest)
    return RunOutput(run_dir, tables, manifest, book)
