"""Result tables against numpy computed on the kernel's per-path energization times:
quantiles (numpy ``method="inverted_cdf"``), means and probabilities, exact and binned."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import (
    capacity_config,
    energization,
    energization_months,
    fixed,
    item,
    lognormal,
    make_book,
    make_settings,
    pert,
    site,
)

from engine.run import compute_tables
from engine.scenario import Book
from engine.scopes import Scopes, build_scopes
from engine.simulate import CapacityStats

N_PATHS, HORIZON, SEED = 20_000, 36, 13
#: A run so small that neighbouring order statistics differ: N q is an integer for every
#: quantile, so the rank convention (ceil(N q), not floor(N q) + 1) is tested.
N_SMALL = 40
CAPACITY_Q = {"p5": 0.05, "p10": 0.10, "p50": 0.50, "p90": 0.90, "p95": 0.95}
MONTH_Q = {"p50": 0.5, "p80": 0.8, "p90": 0.9}
Z95 = 1.959963984540054


def tables_book() -> Book:
    """Two operators, four sites, six phases; one site often withdrawn or late."""
    return make_book(
        [
            site(
                "a1",
                campus="camp1",
                interconnection=pert(2.0, 4.0, 10.0),
                schedule=[item("xfmr", "equipment", pert(6.0, 9.0, 18.0))],
                phases=[
                    {
                        "it_mw": 12.5,
                        "planned_month": 12,
                        "schedule": [item("f1", "construction", pert(8.0, 11.0, 20.0))],
                    },
                    {
                        "it_mw": 37.5,
                        "planned_month": 18,
                        "schedule": [item("f2", "construction", pert(12.0, 16.0, 30.0))],
                    },
                ],
            ),
            site(
                "a2",
                campus="camp1",
                gpu_generation="h100",
                interconnection=lognormal(10.0, 0.4),
                phases=[{"it_mw": 50.0, "planned_month": 15}],
            ),
            site(
                "b1",
                operator="op_b",
                withdrawal=0.3,
                interconnection=lognormal(24.0, 0.5),
                phases=[{"it_mw": 20.0, "planned_month": 30}, {"it_mw": 7.5, "planned_month": 34}],
            ),
            site(
                "b2",
                operator="op_b",
                interconnection=fixed(3.0),
                schedule=[item("hall", "construction", pert(5.0, 7.0, 12.0))],
                phases=[{"it_mw": 30.0, "planned_month": 10}],
            ),
        ]
    )


def run(max_bins: int, n_paths: int = N_PATHS) -> dict[str, Any]:
    """Tables of a run, and the per-path months and times of the same seed from the kernel."""
    book = tables_book()
    capacity = capacity_config(0.4, 0.6, overrun_median=1.31, overrun_sigma_ln=0.211)
    settings = make_settings(n_paths, HORIZON, SEED, capacity, max_bins=max_bins)
    chunks = [7_001, n_paths - 7_001] if n_paths > 7_001 else None
    tables, _ = compute_tables(book, settings, threads=2, chunk_sizes=chunks)
    times = energization(book, settings.capacity, n_paths, SEED)
    return {
        "n": n_paths,
        "book": book,
        "settings": settings,
        "tables": tables,
        "times": times,
        "months": energization_months(times, HORIZON),
    }


@pytest.fixture(scope="module", params=[N_PATHS, N_SMALL], ids=["N=20000", "N=40"])
def exact(request: pytest.FixtureRequest) -> dict[str, Any]:
    return run(max_bins=4096, n_paths=request.param)


def rank_sensitive(values: np.ndarray, q: float) -> np.ndarray:
    """Columns where the order statistics of ranks N q and N q + 1 differ (N q integer)."""
    k = round(values.shape[0] * q)
    ordered = np.sort(values, axis=0)
    return ordered[k - 1] != ordered[k]


def phase_amounts(book: Book, availability: float) -> dict[str, np.ndarray]:
    """Capacity each phase adds, per measure: IT MW, GPUs and H100e in service."""
    ratio = {g.id: g.h100_equivalents for g in book.gpu_generations}
    phases = [(s, p) for s in book.sites for p in s.phases]
    return {
        "mw_online": np.array([p.it_mw for _, p in phases]),
        "gpus_online": np.array([p.gpus * availability for _, p in phases]),
        "h100e_online": np.array(
            [p.gpus * ratio[s.gpu_generation] * availability for s, p in phases]
        ),
    }


def scope_phases(book: Book) -> dict[tuple[str, str], list[int]]:
    """Phase columns of every scope: the total, each operator, each site."""
    owner = [(s.operator, s.id) for s in book.sites for _ in s.phases]
    scopes = {("total", "total"): list(range(len(owner)))}
    for op in book.operators:
        scopes[("operator", op.id)] = [j for j, (o, _) in enumerate(owner) if o == op.id]
    for s in book.sites:
        scopes[("site", s.id)] = [j for j, (_, ident) in enumerate(owner) if ident == s.id]
    return scopes


def online(months: np.ndarray, amounts: np.ndarray, phases: list[int]) -> np.ndarray:
    """``[N, T]`` capacity online per path at months 1..T: sum of amounts with month <= t."""
    t = np.arange(1, HORIZON + 1)
    on = months[:, phases, None] <= t[None, None, :]
    return np.einsum("npt,p->nt", on, amounts[phases])


def availability(result: dict[str, Any]) -> float:
    """Steady-state share of GPUs in service: 1 / (1 + failures per year x repair years)."""
    cap = result["settings"].capacity
    return 1.0 / (1.0 + cap.gpu_failure_rate_per_year * cap.gpu_repair_days / 365.0)


def test_capacity_quantiles_and_means_match_numpy(exact: dict[str, Any]) -> None:
    """Every scope, measure and month: quantiles = numpy inverted_cdf, mean = per-path mean,
    mean_se = per-path sd / sqrt(N)."""
    book, table, n = exact["book"], exact["tables"]["capacity_by_month"], exact["n"]
    amounts = phase_amounts(book, availability(exact))
    sensitive = 0
    for (kind, name), phases in scope_phases(book).items():
        rows = table.filter((pl.col("scope_type") == kind) & (pl.col("scope") == name))
        assert rows["month"].to_list() == list(range(1, HORIZON + 1))
        for measure, amount in amounts.items():
            values = online(exact["months"], amount, phases)
            what = f"{kind}:{name} {measure}"
            np.testing.assert_allclose(
                rows[f"{measure}_mean"], values.mean(axis=0), 1e-12, 1e-9, err_msg=what
            )
            se = values.std(axis=0) / math.sqrt(n)
            np.testing.assert_allclose(rows[f"{measure}_mean_se"], se, 1e-9, 1e-9, err_msg=what)
            for label, q in CAPACITY_Q.items():
                expected = np.quantile(values, q, axis=0, method="inverted_cdf")
                got = rows[f"{measure}_{label}"].to_numpy()
                np.testing.assert_allclose(got, expected, 1e-12, 1e-9, err_msg=f"{what} {label}")
                sensitive += int(rank_sensitive(values, q).sum())
    assert n == N_PATHS or sensitive > 0


def test_site_energization_matches_per_path_months(exact: dict[str, Any]) -> None:
    """Per phase: month quantiles = numpy inverted_cdf (null beyond T), CI bounds = order
    statistics at ranks N q -/+ 1.96 sqrt(N q (1 - q)), P(on time) = share with month <=
    planned, P(not energized), P(withdrawn), mean delay over energized paths."""
    table, months, times = exact["tables"]["site_energization"], exact["months"], exact["times"]
    n = exact["n"]
    planned = table["planned_month"].to_numpy()
    ordered = np.sort(months, axis=0)
    nulls = sensitive = 0
    for j in range(months.shape[1]):
        row = table.row(j, named=True)
        m = months[:, j]
        assert row["prob_on_time"] == pytest.approx(np.mean(m <= planned[j]), abs=1e-15)
        assert row["prob_not_energized"] == pytest.approx(np.mean(m > HORIZON), abs=1e-15)
        assert row["prob_grid_withdrawn"] == pytest.approx(
            np.mean(np.isinf(times[:, j])), abs=1e-15
        )
        energized = m[m <= HORIZON]
        delay = np.maximum(energized - planned[j], 0).mean()
        assert row["mean_delay_months"] == pytest.approx(delay, rel=1e-12)
        for label, q in MONTH_Q.items():
            value = int(np.quantile(m, q, method="inverted_cdf"))
            half = Z95 * math.sqrt(n * q * (1.0 - q))
            low_rank, high_rank = max(1, math.floor(n * q - half)), min(n, math.ceil(n * q + half))
            low, high = ordered[low_rank - 1, j], ordered[high_rank - 1, j]
            sensitive += int(rank_sensitive(m[:, None], q)[0])
            sensitive += int(low_rank < n and ordered[low_rank, j] != low)
            for column, expected in (("", value), ("_ci95_low", low), ("_ci95_high", high)):
                got = row[f"{label}_energization_month{column}"]
                assert got == (expected if expected <= HORIZON else None), (j, label, column)
            nulls += value > HORIZON
    assert nulls > 0  # the null branch (quantile beyond the horizon) is exercised
    assert n == N_PATHS or sensitive > 0


def test_few_histogram_bins_give_quantiles_within_one_bin_width() -> None:
    """max_histogram_bins = 16: each quantile is the lower edge of its bin, within one bin
    width below the exact numpy quantile (docs/model.md 5); means stay exact (integer sums)."""
    binned = run(max_bins=16)
    book = binned["book"]
    table = binned["tables"]["capacity_by_month"]
    scopes = build_scopes(book, 16)
    amounts = phase_amounts(book, availability(binned))
    scale = [1e-3, availability(binned), 1e-3 * availability(binned)]
    coarse = 0
    for s, ((kind, name), phases) in enumerate(scope_phases(book).items()):
        assert (scopes.kind[s], scopes.name[s]) == (kind, name)
        rows = table.filter((pl.col("scope_type") == kind) & (pl.col("scope") == name))
        for m, (measure, amount) in enumerate(amounts.items()):
            assert scopes.bin_count[s, m] <= 16
            width = scopes.bin_width[s, m] * scale[m]
            values = online(binned["months"], amount, phases)
            np.testing.assert_allclose(rows[f"{measure}_mean"], values.mean(axis=0), 1e-12, 1e-9)
            for label, q in CAPACITY_Q.items():
                expected = np.quantile(values, q, axis=0, method="inverted_cdf")
                below = expected - rows[f"{measure}_{label}"].to_numpy()  # lower bin edge
                assert np.all(below > -1e-9), (kind, name, measure, label)
                assert np.all(below < width * (1 + 1e-9)), (kind, name, measure, label)
                coarse += int(np.any(below > 1e-9))
    assert coarse > 0  # some quantiles really are approximate at 16 bins


def test_on_time_is_null_when_the_plan_lies_beyond_the_horizon() -> None:
    """P(on time) = share of paths with E <= planned month, SE sqrt(p (1 - p) / N); null when
    the planned month is beyond the horizon (E > T is not resolved; docs/model.md 3.6)."""
    phases = [{"it_mw": 10.0, "planned_month": 20}, {"it_mw": 10.0, "planned_month": 40}]
    book = make_book([site("s", interconnection=lognormal(20.0, 0.3), phases=phases)])
    n, horizon = 2_000, 30
    settings = make_settings(n, horizon, SEED)
    table = compute_tables(book, settings, threads=1)[0]["site_energization"]
    p = float(np.mean(energization(book, settings.capacity, n, SEED)[:, 0] <= 20.0))
    assert table["prob_on_time"].to_list() == [pytest.approx(p, abs=1e-15), None]
    se = math.sqrt(p * (1.0 - p) / n)
    assert table["prob_on_time_se"].to_list() == [pytest.approx(se, rel=1e-12), None]


def count(scopes: Scopes, times: np.ndarray, n_blocks: int) -> CapacityStats:
    """Finished integer statistics of per-path energization times under ``scopes``."""
    stats = CapacityStats.empty(times.shape[0], HORIZON, scopes)
    stats.add(times, scopes, n_blocks)
    stats.finish(scopes)
    return stats


def test_counting_by_state_equals_counting_by_value_bins() -> None:
    """The two ways of counting multi-site scopes per path (by state code, by value bin;
    docs/model.md 5) give the same integers, on any number of blocks (more blocks than paths
    included); and the by-value counts agree with numpy on the per-path values."""
    book = tables_book()
    settings = make_settings(999, HORIZON, SEED, capacity_config(0.4, 0.6))
    times = energization(book, settings.capacity, 999, SEED)
    by_state = build_scopes(book, 4096)
    by_value = build_scopes(book, 4096, max_states=1)
    assert np.all(by_state.state_offset[by_state.per_path] >= 0) and by_state.n_states > 0
    assert np.all(by_value.state_offset == -1) and by_value.n_states == 0
    reference = count(by_value, times, 1)
    for scopes, blocks in ((by_state, 1), (by_state, 3), (by_state, 2048), (by_value, 5)):
        got = count(scopes, times, blocks)
        assert np.array_equal(got.value_counts, reference.value_counts), blocks
        assert np.array_equal(got.value_sums, reference.value_sums), blocks
    months = energization_months(times, HORIZON)
    total = online(months, by_value.phase_amount[:, 0].astype(float), list(range(6)))
    first = by_value.bin_offset[0, 0]
    for t in (1, 12, HORIZON):  # total IT kW: paths at each value, bins of width bin_width
        bins = (total[:, t - 1] // by_value.bin_width[0, 0]).astype(np.int64)
        histogram = np.bincount(bins, minlength=by_value.bin_count[0, 0])
        assert np.array_equal(reference.value_counts[first : first + histogram.size, t], histogram)
