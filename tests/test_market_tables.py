"""Market switches and tables: central paths when markets are off, common random numbers
when one market is switched off, the tables against the traced per-path values, and the
same bits on any thread count and chunking.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import polars as pl
import pytest
from conftest import energization, energization_months, fixed, item, lognormal, site
from market_cases import DAYS_PER_MONTH, HOURS_PER_MONTH, market_book, market_settings
from polars.testing import assert_frame_equal

from engine.market_arrays import lower_markets
from engine.market_bins import central_paths
from engine.market_config import (
    CopperConfig,
    DemandConfig,
    GpuMarketConfig,
    MarketsConfig,
    MarketSwitch,
    SqueezeConfig,
)
from engine.market_stats import SITE_BINS, trace_markets
from engine.run import compute_tables
from engine.scenario import Book

# ----------------------------------------------------------------------------- switches


def switched_off_book() -> Book:
    """A book with seasonality, a PPA, a drifting capacity charge, curtailment and a GPU
    successor, so that every term of the central path is exercised."""
    season = [0.1 * math.sin(k) for k in range(12)]
    return market_book(
        {
            "r1": {
                "price_usd_per_mwh": 45.0,
                "seasonality": season,
                "ppa_share": 0.3,
                "ppa_price_usd_per_mwh": 60.0,
                "ppa_escalator_per_year": 0.03,
                "adder_usd_per_mwh": 20.0,
                "capacity_charge_usd_per_mw_day": 200.0,
                "capacity_charge_drift": 0.1,
                "capacity_charge_sigma": 0.3,
                "curtailment_probability": 0.2,
                "curtailment_share": 0.3,
            }
        },
        {
            "g1": {
                "rent_usd_per_gpu_hour": 2.5,
                "rent_drift_per_year": -0.2,
                "demand_loading": 0.2,
                "new_price_usd": 40_000.0,
                "age_at_start_years": 0.5,
                "residual_decay_per_year": 0.2,
                "successor_launch_min": 6,
                "successor_launch_max": 10,
                "successor_step_down": 0.25,
            }
        },
    )


def test_markets_off_every_path_is_the_central_path() -> None:
    """Every market disabled: all paths are equal (the copula scores are still drawn, and
    ignored), no events, and each channel is its
    central path, by hand: ln(share ppa (1+g)^y + (1-share) P e^{s(moy)} + adder),
    C0 e^{y mu}, chi0 e^{-kappa t/12} + ln S0 - chi0 + mu_cu t/12,
    ln R0 + drift t/12 + beta D0 phi^t, ln new + (age0 + t/12) ln(1 - d) + beta D0 phi^t
    + ln(1 - step) from the middle of the successor window; and engine's central_paths."""
    book = switched_off_book()
    copper = CopperConfig(
        enabled=False, long_drift_per_year=0.04, squeeze=SqueezeConfig(initial="squeeze")
    )
    markets = MarketsConfig(
        first_calendar_month=4,
        demand=DemandConfig(enabled=False, initial=0.7),
        electricity=MarketSwitch(enabled=False),
        copper=copper,
        gpu=GpuMarketConfig(enabled=False),
    )
    horizon = 30
    tr = trace_markets(book, market_settings(64, horizon, 15, markets))
    for name, values in tr.items():
        if not name.startswith("z:"):  # the copula scores are drawn, and ignored
            assert np.all(values == values[:1]), f"{name} differs between paths"
    assert not tr["r1:curtailed"].any() and not tr["r1:spikes"].any()
    assert not tr["copper_squeeze"].any() and not tr["copper_jumps"].any()
    t = np.arange(1, horizon + 1)
    year = (t - 1) // 12
    e = book.regions[0].electricity
    g = book.gpu_generations[0].market
    season = np.array(e.seasonality)[(t - 1 + 3) % 12]
    all_in = (
        e.ppa_share * e.ppa_price_usd_per_mwh * (1 + e.ppa_escalator_per_year) ** year
        + (1 - e.ppa_share) * e.price_usd_per_mwh * np.exp(season)
        + e.adder_usd_per_mwh
    )
    demand = 0.7 * 0.95**t
    log_rent = math.log(g.rent_usd_per_gpu_hour) + g.rent_drift_per_year * t / 12 + 0.2 * demand
    log_resale = (
        math.log(g.new_price_usd)
        + (g.age_at_start_years + t / 12) * math.log(1 - g.residual_decay_per_year)
        + 0.2 * demand
        + np.where(t >= 8, math.log(1 - g.successor_step_down), 0.0)
    )
    expected = {
        "r1:log_all_in": np.log(all_in),
        "r1:log_energy": math.log(e.price_usd_per_mwh) + season,
        "r1:capacity_charge": 200.0 * np.exp(0.1 * year),
        "copper_log_price": 0.09 * np.exp(-t / 12) + math.log(12_500.0) - 0.09 + 0.04 * t / 12,
        "demand": demand,
        "g1:log_rent": log_rent,
        "g1:log_resale": log_resale,
    }
    for name, values in expected.items():
        np.testing.assert_allclose(tr[name][0, 1:], values, rtol=1e-12, atol=1e-12, err_msg=name)
    central = central_paths(lower_markets(book, markets, horizon), horizon)[:, 1:]
    engine_rows = {"r1:log_all_in": 0, "copper_log_price": 2, "g1:log_rent": 3, "g1:log_resale": 4}
    for name, row in engine_rows.items():
        np.testing.assert_allclose(tr[name][0, 1:], central[row], rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(tr["r1:capacity_charge"][0, 1:], np.exp(central[1]), rtol=1e-12)


@pytest.mark.parametrize(
    "off, changed",
    [
        ("copper", ("copper_squeeze", "copper_jumps", "copper_log_price")),
        ("electricity", ("r1:",)),
        ("gpu", ("g1:",)),
        ("demand", ("demand", "g1:")),
    ],
)
def test_switching_one_market_off_keeps_the_others_draws(
    off: str, changed: tuple[str, ...]
) -> None:
    """Common random numbers: with one market disabled, every channel of the other markets
    (and every copula score) is bit-identical for the same seed; the disabled market's
    channels do change."""
    book = switched_off_book()
    on = MarketsConfig(copper=CopperConfig(jump_rate_per_year=2.0))
    switch = {
        "copper": {"copper": CopperConfig(enabled=False, jump_rate_per_year=2.0)},
        "electricity": {"electricity": MarketSwitch(enabled=False)},
        "gpu": {"gpu": GpuMarketConfig(enabled=False)},
        "demand": {"demand": DemandConfig(enabled=False)},
    }[off]
    n, horizon = 2000, 24
    a = trace_markets(book, market_settings(n, horizon, 16, on))
    b = trace_markets(book, market_settings(n, horizon, 16, dataclasses.replace(on, **switch)))
    moved = [k for k in a if k.startswith(changed)]
    assert moved and all(not np.array_equal(a[k], b[k]) for k in moved)
    for name in a:
        if name not in moved:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


# ----------------------------------------------------------------------------- tables


def table_book() -> Book:
    """A small book with every reported factor: one region with a capacity charge and
    curtailment, two generations, three sites (one with two phases, one equipment item)."""
    gen = {"successor_launch_min": 6, "successor_launch_max": 12}
    return market_book(
        {
            "r1": {
                "capacity_charge_usd_per_mw_day": 300.0,
                "capacity_charge_sigma": 0.3,
                "ppa_share": 0.3,
                "curtailment_probability": 0.05,
                "curtailment_share": 0.2,
            },
            "r2": {"spike_rate_per_year": 2.0},
        },
        {"g1": gen, "g2": {}},
        sites=[
            {
                **site(
                    "a",
                    interconnection=lognormal(8.0, 0.5),
                    phases=[
                        {"it_mw": 10.0, "planned_month": 8},
                        {
                            "it_mw": 5.0,
                            "planned_month": 14,
                            "schedule": [item("fit", "construction", fixed(13.0))],
                        },
                    ],
                ),
                "region": "r1",
                "gpu_generation": "g1",
                "pue": 1.3,
            },
            {
                **site("b", operator="op_b", schedule=[item("x", "equipment", fixed(9.0))]),
                "region": "r1",
                "gpu_generation": "g2",
            },
            {
                **site("c", interconnection=lognormal(20.0, 0.3)),
                "region": "r2",
                "gpu_generation": "g1",
            },
        ],
    )


def test_market_tables_match_the_traced_paths() -> None:
    """compute_tables vs the per-path trace of the same seed (numpy, by hand):
    market_by_month mean within 1e-5 relative and P5/P50/P95 within one bin of numpy's
    inverted-CDF quantiles; event probabilities exactly; site_costs means from the traced
    copper price, all-in price, capacity charge and curtailment at each phase's
    energization month (max(1, ceil E)); curtailed MW in capacity_by_month."""
    book = table_book()
    n, horizon, seed = 20_000, 24, 17
    markets = MarketsConfig()
    settings = market_settings(n, horizon, seed, markets)
    tables, _ = compute_tables(book, settings, threads=2)
    e = energization(book, settings.capacity, n, seed, markets=markets)
    tr = trace_markets(book, settings, energization=e)
    values = {
        "electricity_all_in:r1": np.exp(tr["r1:log_all_in"]),
        "capacity_charge:r1": tr["r1:capacity_charge"],
        "electricity_all_in:r2": np.exp(tr["r2:log_all_in"]),
        "copper": np.exp(tr["copper_log_price"]),
        "gpu_rent:g1": np.exp(tr["g1:log_rent"]),
        "gpu_resale:g1": np.exp(tr["g1:log_resale"]),
        "gpu_rent:g2": np.exp(tr["g2:log_rent"]),
        "gpu_resale:g2": np.exp(tr["g2:log_resale"]),
    }
    mbm = tables["market_by_month"]
    assert set(mbm["factor"].unique()) == {
        *values,
        "copper_squeeze",
        "curtailment_event:r1",
        "curtailment_event:r2",
    }
    for factor, v in values.items():
        rows = mbm.filter(pl.col("factor") == factor).sort("month")
        assert rows["month"].to_list() == list(range(1, horizon + 1))
        for t in (1, 7, 13, 24):
            row = rows.row(t - 1, named=True)
            assert math.isclose(row["mean"], float(v[:, t].mean()), rel_tol=1e-5), (factor, t)
            for label, q in (("p5", 0.05), ("p50", 0.5), ("p95", 0.95)):
                exact = float(np.quantile(v[:, t], q, method="inverted_cdf"))
                gap = abs(math.log(row[label]) - math.log(exact))
                assert gap <= row["bin_width_log"] * (1 + 1e-9), (factor, t, label, gap)
    events = {
        "copper_squeeze": tr["copper_squeeze"],
        "curtailment_event:r1": tr["r1:curtailed"],
        "curtailment_event:r2": tr["r2:curtailed"],
    }
    for factor, v in events.items():
        rows = mbm.filter(pl.col("factor") == factor).sort("month")
        expected = [np.count_nonzero(v[:, t]) / n for t in range(1, horizon + 1)]
        assert rows["mean"].to_list() == expected, factor
    assert tr["copper_squeeze"][:, 1:].any() and tr["r1:curtailed"][:, 1:].any()

    # site costs by hand
    months = energization_months(e, horizon)
    copper_cfg = markets.copper
    ex_copper = copper_cfg.facility_capex_usd_per_mw - (
        copper_cfg.intensity_t_per_mw * copper_cfg.reference_price_usd_per_t
    )
    costs = tables["site_costs"]
    rows_p = np.arange(n)
    phase = 0
    curtailed_mw = np.zeros(horizon + 1)
    for s in book.sites:
        rid = s.region
        share = next(r for r in book.regions if r.id == rid).electricity.curtailment_share
        curtailed = tr[f"{rid}:curtailed"]
        monthly = (
            HOURS_PER_MONTH
            * np.exp(tr[f"{rid}:log_all_in"])
            * np.where(curtailed == 1, 1.0 - share, 1.0)
            + DAYS_PER_MONTH * tr[f"{rid}:capacity_charge"]
        )
        monthly[:, 0] = 0.0
        cum = np.cumsum(monthly, axis=1)
        first = months[:, phase]
        built = first <= horizon
        capex = np.zeros(n)
        copper_cost = np.zeros(n)
        energy = np.zeros(n)
        for p in s.phases:
            m = months[:, phase]
            on = m <= horizon
            mc = np.minimum(m, horizon)
            cu = (
                p.it_mw * copper_cfg.intensity_t_per_mw * np.exp(tr["copper_log_price"][rows_p, mc])
            )
            capex += np.where(on, p.it_mw * ex_copper + cu, 0.0)
            copper_cost += np.where(on, cu, 0.0)
            energy += np.where(on, p.it_mw * s.pue * (cum[:, horizon] - cum[rows_p, mc - 1]), 0.0)
            w = round(p.it_mw * 1e6 * share)
            for t in range(1, horizon + 1):
                curtailed_mw[t] += w * np.count_nonzero((curtailed[:, t] == 1) & (m <= t))
            phase += 1
        per_month = energy / (horizon - np.minimum(first, horizon) + 1)
        row = costs.filter(pl.col("site") == s.id).row(0, named=True)
        assert row["prob_built_within_horizon"] == np.count_nonzero(built) / n
        assert 0.05 < row["prob_built_within_horizon"] <= 1.0
        expected = {
            "facility_capex_musd_mean": capex[built].mean() / 1e6,
            "copper_cost_musd_mean": copper_cost[built].mean() / 1e6,
            "energy_cost_musd_per_month_mean": per_month[built].mean() / 1e6,
            "energy_cost_musd_horizon_mean": energy[built].mean() / 1e6,
        }
        for column, value in expected.items():
            # per path the engine sums $k (per month: $) rounded: mean within half a unit
            unit = 1e-6 if column == "energy_cost_musd_per_month_mean" else 1e-3
            assert abs(row[column] - value) <= 0.5 * unit * (1 + 1e-9), (s.id, column)
        site_bin = 6.0 / SITE_BINS  # +-3 in ln value over SITE_BINS bins
        for label, q in (("p5", 0.05), ("p50", 0.5), ("p95", 0.95)):
            for column, v in (
                ("facility_capex_musd", capex),
                ("energy_cost_musd_per_month", per_month),
            ):
                exact = float(np.quantile(v[built], q, method="inverted_cdf")) / 1e6
                gap = abs(math.log(row[f"{column}_{label}"]) - math.log(exact))
                assert gap <= site_bin * (1 + 1e-9), (s.id, column, label, gap)
    total = tables["capacity_by_month"].filter(pl.col("scope_type") == "total").sort("month")
    np.testing.assert_allclose(
        total["mw_curtailed_mean"].to_numpy(), curtailed_mw[1:] / 1e6 / n, rtol=1e-12
    )


def test_market_tables_are_identical_on_threads_and_chunks() -> None:
    """market_by_month, site_costs and capacity_by_month are bit-identical on 1 and 2
    threads and with uneven chunks (integer statistics merge in any order)."""
    book = table_book()
    n = 10_007
    settings = market_settings(n, 24, 18)
    names = ("market_by_month", "site_costs", "capacity_by_month")
    one = compute_tables(book, settings, threads=1)[0]
    two = compute_tables(book, settings, threads=2)[0]
    uneven = compute_tables(book, settings, threads=2, chunk_sizes=[1, 4000, 3, 6003])[0]
    for name in names:
        assert_frame_equal(one[name], two[name], check_exact=True)
        assert_frame_equal(one[name], uneven[name], check_exact=True)
