"""Shared helpers of the statistical tests: small books, settings, per-path draws.

Tolerances of the Monte Carlo tests are ``Z_TOL`` standard errors (the SE is
computed in each test from its formula); p-value tests reject below ``P_MIN``,
the two-sided tail of the same number of sigmas.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numba
import numpy as np
from scipy import stats

from engine.book import lower_capacity
from engine.config import (
    CapacityConfig,
    DelayCorrelationConfig,
    OutputConfig,
    OverrunConfig,
    RunConfig,
    Settings,
)
from engine.kernels.capacity import energization_times
from engine.market_config import CopperConfig, MarketsConfig, SqueezeConfig
from engine.scenario import Book, parse_book

#: Tolerance of Monte Carlo checks, in standard errors.
Z_TOL = 4.5
#: Smallest accepted p-value of a goodness-of-fit test (two-sided 4.5 sigma).
P_MIN = float(2.0 * stats.norm.sf(Z_TOL))


def pert(lo: float, mode: float, hi: float) -> dict[str, Any]:
    """A PERT duration as written in a book (months)."""
    return {"dist": "pert", "min": lo, "mode": mode, "max": hi}


def lognormal(median: float, sigma_ln: float) -> dict[str, Any]:
    """A lognormal duration as written in a book (months)."""
    return {"dist": "lognormal", "median": median, "sigma_ln": sigma_ln}


def fixed(months: float) -> dict[str, Any]:
    """A fixed duration as written in a book (months)."""
    return {"dist": "fixed", "months": months}


def item(name: str, kind: str, duration: dict[str, Any]) -> dict[str, Any]:
    """A schedule item as written in a book."""
    return {"name": name, "kind": kind, **duration}


def pert_beta(lo: float, mode: float, hi: float) -> Any:
    """The PERT distribution as a frozen scipy Beta on [lo, hi] (closed form, not the engine's)."""
    alpha = 1.0 + 4.0 * (mode - lo) / (hi - lo)
    beta = 1.0 + 4.0 * (hi - mode) / (hi - lo)
    return stats.beta(alpha, beta, loc=lo, scale=hi - lo)


def site(
    ident: str,
    *,
    operator: str = "op_a",
    campus: str | None = None,
    interconnection: dict[str, Any] | None = None,
    schedule: list[dict[str, Any]] | None = None,
    phases: list[dict[str, Any]] | None = None,
    withdrawal: float = 0.0,
    gpu_generation: str = "gb300",
) -> dict[str, Any]:
    """A site as written in a book; by default grid power is there at month 0."""
    data: dict[str, Any] = {
        "id": ident,
        "operator": operator,
        "region": "test_region",
        "gpu_generation": gpu_generation,
        "interconnection": interconnection or fixed(0.0),
        "withdrawal_probability": withdrawal,
        "schedule": schedule or [],
        "phases": phases or [{"it_mw": 10.0, "planned_month": 12}],
    }
    if campus is not None:
        data["campus"] = campus
    return data


def make_book(sites: list[dict[str, Any]], operators: tuple[str, ...] = ("op_a", "op_b")) -> Book:
    """Validate a small book built from plain data (one region, two GPU generations)."""
    data = {
        "name": "test-book",
        "regions": [{"id": "test_region", "time_to_power": fixed(0.0)}],
        "gpu_generations": [
            {"id": "gb300", "it_kw_per_gpu": 2.5, "h100_equivalents": 2.5},
            {"id": "h100", "it_kw_per_gpu": 1.25, "h100_equivalents": 1.0},
        ],
        "operators": [{"id": op} for op in operators],
        "sites": sites,
    }
    return parse_book(data, "test-book")


def capacity_config(
    rho_operator: float = 0.0,
    rho_campus: float = 0.0,
    overrun_median: float = 1.0,
    overrun_sigma_ln: float = 0.0,
) -> CapacityConfig:
    """Capacity parameters; by default no overrun and independent draws."""
    return CapacityConfig(
        overrun=OverrunConfig(median=overrun_median, sigma_ln=overrun_sigma_ln),
        delay_correlation=DelayCorrelationConfig(operator=rho_operator, campus=rho_campus),
    )


def make_settings(
    n_paths: int,
    horizon: int = 48,
    seed: int = 11,
    capacity: CapacityConfig | None = None,
    max_bins: int = 4096,
    keep_paths: bool = False,
    chunk_size: int = 250_000,
) -> Settings:
    """Run settings for tests (no progress lines)."""
    return Settings(
        run=RunConfig(
            n_paths=n_paths,
            horizon_months=horizon,
            seed=seed,
            progress=False,
            chunk_size=chunk_size,
        ),
        capacity=capacity or capacity_config(),
        output=OutputConfig(keep_paths=keep_paths, max_histogram_bins=max_bins),
    )


#: The market model without the copper squeeze's effect on equipment lead times.
NO_SQUEEZE = MarketsConfig(copper=CopperConfig(squeeze=SqueezeConfig(equipment_lead_factor=1.0)))


def energization(
    book: Book,
    capacity: CapacityConfig,
    n_paths: int,
    seed: int,
    path0: int = 0,
    markets: MarketsConfig | None = None,
) -> np.ndarray:
    """Per-path energization times (months, ``inf`` = never), ``float64[n_paths, n_phases]``,
    under the default market model (its copper squeeze stretches equipment lead times)."""
    arrays = lower_capacity(book, capacity, markets or MarketsConfig())
    out = np.empty((n_paths, arrays.n_phases), dtype=np.float64)
    args = [getattr(arrays, f.name) for f in dataclasses.fields(arrays)]
    energization_times(np.uint64(seed), np.uint64(path0), *args, out)
    return out


def energization_months(times: np.ndarray, horizon: int) -> np.ndarray:
    """Energization month of each path and phase: ceil(E), at least 1; T + 1 if not by T."""
    months = np.maximum(1.0, np.ceil(np.where(times <= horizon, times, horizon + 1)))
    return months.astype(np.int64)


@contextmanager
def numba_threads(n: int) -> Iterator[None]:
    """Run the ``with`` block with ``n`` numba threads (at most the machine's), then restore."""
    previous = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def assert_within(estimate: float, expected: float, se: float, what: str) -> None:
    """Assert ``|estimate - expected| <= Z_TOL * se`` with a readable message."""
    assert se > 0, f"{what}: standard error must be positive"
    z = (estimate - expected) / se
    assert abs(z) <= Z_TOL, f"{what}: {estimate:.6g} vs {expected:.6g} ({z:+.1f} SE, SE {se:.3g})"
