"""A run in process: horizon edge cases, headline figures, summary, integer-sum guard."""

from __future__ import annotations

import pytest

from engine.config import RunConfig, Settings
from engine.errors import InputError
from engine.run import compute_tables
from engine.scenario import load_book
from engine.summary import format_summary, headline


def small(horizon: int, n_paths: int = 5000) -> Settings:
    return Settings(run=RunConfig(n_paths=n_paths, horizon_months=horizon, seed=11, progress=False))


def test_on_time_is_null_when_the_plan_lies_beyond_the_horizon() -> None:
    book = load_book("reference")
    tables, _ = compute_tables(book, small(horizon=10), threads=1)
    sites = tables["site_energization"]
    beyond = sites.filter(sites["planned_month"] > 10)
    within = sites.filter(sites["planned_month"] <= 10)
    assert beyond.height > 0 and beyond["prob_on_time"].null_count() == beyond.height
    assert within["prob_on_time"].null_count() == 0
    text = format_summary(tables, small(horizon=10), book)
    assert "n/a" in text and ">T" in text
    figures = headline(tables, small(horizon=10))
    assert 0.0 <= figures["mw_weighted_prob_on_time"] <= 1.0
    assert "total_mw_online_mean_m12" not in figures  # month 12 is past the horizon


def test_headline_matches_the_tables() -> None:
    book = load_book("reference")
    settings = small(horizon=60)
    tables, _ = compute_tables(book, settings, threads=2)
    figures = headline(tables, settings)
    total = tables["capacity_by_month"].filter(
        (tables["capacity_by_month"]["scope"] == "total")
        & (tables["capacity_by_month"]["month"] == 24)
    )
    assert figures["total_mw_online_mean_m24"] == total["mw_online_mean"].item()
    sites = tables["site_energization"]
    expected = (sites["it_mw"] * sites["prob_not_energized"]).sum()
    assert figures["expected_mw_not_energized"] == pytest.approx(expected)


def test_too_many_paths_for_exact_integer_sums_is_an_input_error() -> None:
    book = load_book("reference")
    settings = small(horizon=12, n_paths=2**62)
    with pytest.raises(InputError) as info:
        compute_tables(book, settings, threads=1)
    assert info.value.key == "run.n_paths" and "at most" in info.value.allowed
