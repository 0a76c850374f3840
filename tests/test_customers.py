"""Demand side: customer defaults against the annual PD and the Vasicek closed form,
revenue, termination and concentration against hand computation (docs/model.md §9)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import P_MIN, assert_within, fixed, item, make_settings, site
from finance_books import separate_kernels
from numba import njit
from polars.testing import assert_frame_equal
from scipy import integrate, stats

from engine.config import Settings
from engine.customer_config import CustomersConfig
from engine.errors import InputError
from engine.kernels.contract_records import default_months
from engine.market_config import DemandConfig, MarketsConfig
from engine.rng import seed_stream
from engine.run import compute_tables
from engine.scenario import Book, load_book, parse_book

HOURS = 8766.0 / 12.0


def demand_book(
    sites: list[dict[str, Any]],
    customers: list[dict[str, Any]],
    contracts: list[dict[str, Any]],
) -> Book:
    """A small book with customers and contracts (one region, GB300 at 2.5 kW)."""
    data = {
        "name": "demand-test",
        "regions": [{"id": "test_region", "time_to_power": fixed(0.0)}],
        "gpu_generations": [{"id": "gb300", "it_kw_per_gpu": 2.5, "h100_equivalents": 2.5}],
        "operators": [{"id": "op_a"}, {"id": "op_b"}],
        "sites": sites,
        "customers": customers,
        "contracts": contracts,
    }
    return parse_book(data, "demand-test")


def on_time_site(ident: str, month: int, mw: float = 10.0, operator: str = "op_a") -> dict:
    """A site energized exactly at ``month`` (a fixed construction item), as planned."""
    return site(
        ident,
        operator=operator,
        schedule=[item("build", "construction", fixed(float(month)))],
        phases=[{"it_mw": mw, "planned_month": month}],
    )


def contract(ident: str, customer: str, sites: list[str], **fields: Any) -> dict[str, Any]:
    data = {"id": ident, "customer": customer, "sites": sites, "term_months": 24}
    data["price_usd_per_gpu_hour"] = 2.0
    return data | fields


def run(book: Book, settings: Settings) -> dict[str, pl.DataFrame]:
    tables, _ = compute_tables(book, settings, threads=2)
    return tables


def settings(n: int, horizon: int, **kw: Any) -> Settings:
    s = make_settings(n, horizon=horizon)
    s.markets = kw.get("markets", MarketsConfig())
    s.customers = kw.get("customers", CustomersConfig())
    return s


@pytest.mark.parametrize(
    ("loading", "demand_on", "family"),
    [(0.0, True, "gaussian"), (0.35, False, "gaussian"), (0.35, False, "student_t")],
    ids=["rho0", "demand_off", "student_t"],
)
def test_one_customer_defaults_within_a_year_with_its_annual_pd(
    loading: float, demand_on: bool, family: str
) -> None:
    """P(default within 12 months) = annual PD when the months are independent (rho 0,
    or the demand factor switched off): monthly PD = 1 - (1 - annual)^(1/12) exactly.
    Student-t: the latent variable is t_nu each month and the threshold t_nu^-1(p_m)."""
    book = demand_book(
        [on_time_site("s1", 1)],
        [{"id": "c1", "annual_pd": 0.04, "demand_loading": loading}],
        [contract("k1", "c1", ["s1"])],
    )
    n = 200_000
    markets = MarketsConfig(demand=DemandConfig(enabled=demand_on))
    custom = CustomersConfig(family=family)
    table = run(book, settings(n, 12, markets=markets, customers=custom))["contracts"]
    p = table["p_customer_default"][0]
    assert_within(p, 0.04, math.sqrt(0.04 * 0.96 / n), "P(default within 12 months)")


@njit
def _pool_defaults(
    seed: int, n_paths: int, n_cust: int, horizon: int, z: np.ndarray, customers: np.ndarray
) -> np.ndarray:
    """Defaults by month ``horizon`` in a pool, per path, with D_t = z[path] for every t."""
    dsc = np.array([1.0, 0.0, 6.0, 0.7, 0.0, 1.0])  # phi 0: Var D_t = 1 every month
    rng = np.zeros((4, n_cust + 1), dtype=np.uint64)
    out = np.empty(n_cust, dtype=np.int64)
    counts = np.zeros(n_paths, dtype=np.int64)
    demand = np.empty(horizon + 1)
    for i in range(n_paths):
        for k in range(n_cust + 1):
            seed_stream(rng, k, np.uint64(seed), np.uint64(i), np.uint64(1000 + k))
        demand[:] = z[i]
        default_months(rng, n_cust, demand, customers, dsc, out)
        for k in range(n_cust):
            counts[i] += out[k] <= horizon
    return counts


@pytest.mark.parametrize("horizon", [1, 12], ids=["one_period", "one_year_monthly"])
def test_pool_default_fraction_matches_the_vasicek_closed_form(horizon: int) -> None:
    """A homogeneous pool on one common factor Z: the count of defaults is binomial given
    Z with p(Z) = Phi((c - sqrt(rho) Z) / sqrt(1 - rho)) (one period: Vasicek), or
    1 - (1 - p(Z))^12 for 12 monthly periods; its CDF is that mixed over Z ~ N(0, 1)."""
    n_paths, n_cust, rho, pd = 4000, 400, 0.2, 0.01
    c = stats.norm.ppf(pd)
    customers = np.tile([c, math.sqrt(rho), rho, 0.4], (n_cust, 1))
    z = np.random.default_rng(5).standard_normal(n_paths)
    counts = _pool_defaults(9, n_paths, n_cust, horizon, z, customers)

    def p_of(zv: float) -> float:
        p = stats.norm.cdf((c - math.sqrt(rho) * zv) / math.sqrt(1.0 - rho))
        return 1.0 - (1.0 - p) ** horizon

    for m in (0, 2, 5, 10, 25, 60):
        expected, _ = integrate.quad(
            lambda zv, m=m: stats.binom.cdf(m, n_cust, p_of(zv)) * stats.norm.pdf(zv), -9, 9
        )
        got = float(np.mean(counts <= m))
        se = math.sqrt(max(expected * (1 - expected), P_MIN) / n_paths)
        assert_within(got, expected, se, f"P(defaults <= {m}) over {horizon} month(s)")


def test_no_risk_revenue_equals_the_hand_computation() -> None:
    """PD 0, on-time delivery, renewal certain: every path earns the same, exactly."""
    book = demand_book(
        [on_time_site("s1", 6)],  # 10 MW / 2.5 kW = 4000 GPUs, energized at month 6
        [{"id": "c1", "annual_pd": 0.0}],
        [
            contract(
                "k1",
                "c1",
                ["s1"],
                start_month=6,
                take_or_pay_share=0.5,
                utilisation=0.8,
                renewal={"probability_at_par": 1.0, "rent_sensitivity": 0.0, "term_months": 12},
            )
        ],
    )
    tables = run(book, settings(2000, 60))
    per_month = 4000 * HOURS * 2.0 * (0.5 + 0.5 * 0.8)
    row = tables["contracts"].row(0, named=True)
    assert row["revenue_mean_usd"] == pytest.approx(36 * per_month, abs=1.0)
    assert row["p_renewed"] == 1.0 and row["p_terminated"] == 0.0
    assert row["lost_late_delivery_mean_usd"] == pytest.approx(0.0, abs=1.0)
    by_month = tables["revenue_by_month"].filter((pl.col("scope") == "all") & ~pl.col("with_relet"))
    means = by_month.sort("month")["revenue_mean_usd"].to_numpy()
    expected = np.where((np.arange(1, 61) >= 6) & (np.arange(1, 61) <= 41), per_month, 0.0)
    np.testing.assert_allclose(means, expected, atol=1.0)


@pytest.mark.parametrize("taken", [{"share": 0.5}, {"gpus": 2000}, {"mw": 5.0}])
def test_gpus_or_mw_taken_are_a_share_of_the_sites(taken: dict[str, float]) -> None:
    """Half of a 10 MW (4000 GPU) site, given as a share, GPUs or MW: half the revenue."""
    book = demand_book(
        [on_time_site("s1", 1)],
        [{"id": "c1", "annual_pd": 0.0}],
        [contract("k1", "c1", ["s1"], renewal={"probability_at_par": 0.0}) | taken],
    )
    assert book.contracts[0].share == 0.5
    row = run(book, settings(100, 36))["contracts"].row(0, named=True)
    assert row["revenue_mean_usd"] == pytest.approx(24 * 2000 * HOURS * 2.0, abs=1.0)


@pytest.mark.parametrize(("grace", "rate"), [(5, 0.3), (6, 0.3)], ids=["beyond", "within"])
def test_termination_only_beyond_the_grace_period_at_its_rate(grace: int, rate: float) -> None:
    """Delivery at month 10 against a start at 4 is 6 months late: with grace 5 the
    customer terminates with probability 0.3 (binomial); with grace 6 never."""
    book = demand_book(
        [on_time_site("s1", 10)],
        [{"id": "c1", "annual_pd": 0.0}],
        [
            contract(
                "k1",
                "c1",
                ["s1"],
                start_month=4,
                grace_months=grace,
                termination_probability=rate,
            )
        ],
    )
    n = 40_000
    row = run(book, settings(n, 36))["contracts"].row(0, named=True)
    if grace == 6:
        assert row["p_late_beyond_grace"] == 0.0 and row["p_terminated"] == 0.0
    else:
        assert row["p_late_beyond_grace"] == 1.0
        assert_within(row["p_terminated"], rate, math.sqrt(rate * (1 - rate) / n), "P(term)")


def test_hhi_and_top1_share_equal_the_hand_computation() -> None:
    """Three customers of one operator, no risk: backlog shares, HHI and top-1 share
    by hand from the remaining contracted value at each month."""
    sites = [on_time_site("s1", 1, 20.0), on_time_site("s2", 1, 10.0), on_time_site("s3", 1, 10.0)]
    customers = [{"id": f"c{k}", "annual_pd": 0.0} for k in (1, 2, 3)]
    contracts = [
        contract("k1", "c1", ["s1"], term_months=36, price_usd_per_gpu_hour=2.0),
        contract("k2", "c2", ["s2"], term_months=24, price_usd_per_gpu_hour=3.0),
        contract("k3", "c3", ["s3"], term_months=12, price_usd_per_gpu_hour=1.0),
    ]
    for c in contracts:
        c["renewal"] = {"probability_at_par": 0.0}
    book = demand_book(sites, customers, contracts)
    table = run(book, settings(500, 48))["concentration"].filter(pl.col("operator") == "op_a")
    gpus, price, term = [8000, 4000, 4000], [2.0, 3.0, 1.0], [36, 24, 12]
    for month in (1, 6, 12, 13, 24, 30):
        left = [g * p * max(t - month + 1, 0) for g, p, t in zip(gpus, price, term, strict=True)]
        shares = np.array(left) / sum(left)
        row = table.filter(pl.col("month") == month).row(0, named=True)
        assert row["hhi_mean"] == pytest.approx(float((shares**2).sum()), abs=2e-6)
        assert row["top1_share_mean"] == pytest.approx(float(shares.max()), abs=2e-6)
        assert row["effective_customers_mean"] == pytest.approx(
            1.0 / float((shares**2).sum()), abs=2e-6
        )


def test_bad_demand_entries_name_the_key() -> None:
    """Over-selling a site, an unknown customer or site, both PD and rating: one message each."""
    s1 = on_time_site("s1", 1)
    cases = [
        (
            [{"id": "c1", "annual_pd": 0.01}],
            [contract("k1", "c1", ["s1"], share=0.7), contract("k2", "c1", ["s1"], share=0.5)],
            "share",
        ),
        ([{"id": "c1", "annual_pd": 0.01}], [contract("k1", "cX", ["s1"])], "customer"),
        ([{"id": "c1", "annual_pd": 0.01}], [contract("k1", "c1", ["s9"])], "sites"),
        ([{"id": "c1", "annual_pd": 0.01}], [contract("k1", "c1", ["s1", "s1"])], "sites"),
        ([{"id": "c1", "annual_pd": 0.01, "rating": "A"}], [], "annual_pd"),
        ([{"id": "c1", "rating": "AAA+"}], [], "rating"),
        ([{"id": "c1", "annual_pd": 0.01}], [contract("k1", "c1", ["s1"], gpus=5000)], "gpus"),
        ([{"id": "c1", "annual_pd": 0.01}], [contract("k1", "c1", ["s1"], share=1, mw=2)], "mw"),
    ]
    for customers, contracts, key in cases:
        with pytest.raises(InputError) as err:
            demand_book([s1], customers, contracts)
        assert err.value.key.rsplit(".", 1)[-1] == key


def test_demand_side_in_the_market_kernel_equals_it_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run hands each group's series to its demand side inside the market kernel; the
    demand kernel run apart on every path's series gives the same bits."""
    import engine.run

    book = load_book("reference")
    s = make_settings(5_003, horizon=60)
    fused = run(book, s)
    monkeypatch.setattr(engine.run, "_markets_and_demand", separate_kernels)
    apart = run(book, s)
    for name in ("contracts", "revenue_by_month", "concentration", "customer_risk", "revenue_risk"):
        assert_frame_equal(fused[name], apart[name], check_exact=True)


def test_market_kernel_refuses_series_the_demand_side_cannot_read() -> None:
    """The demand side reads every group's series: without them, or with the wrong
    channels or groups, the market kernel is not called (it would read past them)."""
    from engine.demand_stats import DemandStats
    from engine.market_stats import MarketStats
    from engine.scopes import build_scopes

    book = load_book("reference")
    s = make_settings(100, horizon=24)
    markets = MarketStats.create(book, s, build_scopes(book, 64))
    demand = DemandStats.create(book, s)
    times = np.full((100, sum(len(x.phases) for x in book.sites)), 5.0)
    channels = demand.series_channels(len(book.gpu_generations))
    for series in (None, np.empty((0, channels + 1, 25, 64)), np.empty((1, channels, 25, 64))):
        with pytest.raises(ValueError, match="factor_paths"):
            markets.add(times, 0, 1, factor_paths=series, demand=demand)


def _one_path(book: Book, months: list[int], demand: np.ndarray, rent: float) -> dict:
    """Run the contract kernel on one path with given energization months, demand
    factor and a constant rent; return its sums (for hand computations)."""
    from engine.demand_stats import DemandStats
    from engine.kernels.lanes import LANES

    horizon = demand.shape[0] - 1
    stats = DemandStats.create(book, make_settings(1, horizon=horizon))
    # the market kernel's layout: [group, channel, month, lane]; the path is lane 0
    factors = np.full((1, 1 + len(book.gpu_generations), horizon + 1, LANES), rent)
    factors[0, 0] = demand[:, None]
    stats.add(np.array([months], dtype=np.float64), factors, 0, 1)
    return {"ct": stats.ct_sums[None]}


def test_default_stops_revenue_recovers_and_relets_by_hand() -> None:
    """A default forced in month 6 (demand factor -100 there): five months of revenue,
    recovery 0.4 x the remaining take-or-pay value, re-letting at the rent from month 6."""
    from engine.kernels.contracts import S_DEFAULTED, S_LOST_DEFAULT, S_RECOVERY, S_RELET, S_REVENUE

    book = demand_book(
        [on_time_site("s1", 1)],
        [{"id": "c1", "annual_pd": 0.01, "demand_loading": 0.35, "default_recovery": 0.4}],
        [contract("k1", "c1", ["s1"], term_months=24)],
    )
    demand = np.zeros(61)
    demand[6] = -100.0
    ct = _one_path(book, [1], demand, rent=2.5)["ct"][0, 0]
    per_month = 4000 * HOURS * 2.0  # take-or-pay 1: the rate is the price
    assert ct[S_DEFAULTED] == 1
    assert ct[S_REVENUE] == round(5 * per_month)
    assert ct[S_RECOVERY] == round(0.4 * per_month * 19)
    assert ct[S_LOST_DEFAULT] == round(19 * per_month - 0.4 * per_month * 19)
    assert ct[S_RELET] == round(55 * 4000 * HOURS * 2.5 * 0.7)


def test_termination_refunds_the_prepayment_by_hand() -> None:
    """Delivery 6 months late against grace 3, termination certain: no revenue, the whole
    prepayment refunded, the term's revenue lost, capacity re-let from the decision month."""
    from engine.kernels.contracts import (
        S_LOST_TERMINATION,
        S_REFUND,
        S_RELET,
        S_REVENUE,
        S_TERMINATED,
    )

    book = demand_book(
        [on_time_site("s1", 10)],
        [{"id": "c1", "annual_pd": 0.0}],
        [
            contract(
                "k1",
                "c1",
                ["s1"],
                start_month=4,
                grace_months=3,
                termination_probability=1.0,
                prepayment_share=0.2,
                term_months=24,
            )
        ],
    )
    ct = _one_path(book, [10], np.zeros(61), rent=2.5)["ct"][0, 0]
    per_month = 4000 * HOURS * 2.0
    assert ct[S_TERMINATED] == 1 and ct[S_REVENUE] == 0
    assert ct[S_REFUND] == round(0.2 * per_month * 24)
    assert ct[S_LOST_TERMINATION] == round(24 * per_month)  # months 10..33, undiscounted
    assert ct[S_RELET] == round((60 - 10 + 1) * 4000 * HOURS * 2.5 * 0.7)  # energized at 10
