"""Properties of operator finance (hypothesis): more leverage and more concentration in
a weak customer never lower the default count (common random numbers), the revenue
CVaR is at least the VaR (also when the tail is one value), and every reported
probability lies in [0, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import item, pert
from finance_books import (
    TARGETS,
    facility,
    fin_book,
    fin_settings,
    fin_site,
    gen_market,
    phase,
    run_finance,
)
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from engine.kernels.finance_fields import MS_DEFAULT, USD_UNIT
from engine.scenario import Book

#: Small runs: every example is a whole run (a few hundredths of a second for 2000 x 60
#: paths x months on 2 idle cores).
N_PROP, T_PROP = 2000, 60


def prop_settings(max_examples: int) -> Any:
    return hyp_settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


def risky_site(ident: str, operator: str, mw: float, month: int) -> dict[str, Any]:
    """A site whose energization is uncertain (PERT fit-out around the planned month)."""
    fit = item("fit", "construction", pert(month - 2.0, float(month), month + 9.0))
    return fin_site(ident, operator, [{"it_mw": mw, "planned_month": month, "schedule": [fit]}])


def with_rate(fac: dict[str, Any], spread: float | None) -> dict[str, Any]:
    """The facility at a floating spread over the base rate (None: keep its fixed rate)."""
    if spread is None:
        return fac
    return {k: v for k, v in fac.items() if k != "fixed_rate"} | {"floating_spread": spread}


def defaults_by_month(fs: Any, o: int = 0) -> np.ndarray:
    """Paths in default by each month (cumulative), operator o."""
    return np.cumsum(fs.month_sums[o, :, MS_DEFAULT])


LEVERAGE = st.fixed_dictionaries(
    {
        "principal": st.floats(0.4e8, 1.1e8),
        "delta": st.floats(1.0e6, 4.0e7),
        "cash": st.floats(2.2e8, 3.5e8),
        "draw": st.sampled_from(["as_built", "upfront"]),
        "spread": st.one_of(st.none(), st.floats(0.0, 0.06)),
        "maturity": st.integers(24, 72),
        "min_dscr": st.floats(0.8, 1.5),
        "max_ltv": st.floats(0.8, 1.5),
        "cure": st.integers(1, 4),
        "seed": st.integers(0, 2**31),
    }
)


def leverage_book(x: dict[str, Any], principal: float, cash: float) -> Book:
    """One operator, a 10 MW site with uncertain delivery (4000 GPUs: $160M of GPUs and
    $115M of facility capex), a risky anchor, one facility."""
    fac = facility(
        "f",
        "op",
        ["s"],
        principal_usd=principal,
        draw=x["draw"],
        maturity_month=x["maturity"],
        amortisation_start_month=min(9, x["maturity"]),
        balloon_share=0.2,
        covenants={
            "min_dscr": x["min_dscr"],
            "max_ltv": x["max_ltv"],
            "cure_months": x["cure"],
            "first_test_month": 18,
        },
        refinancing={"failure_probability": 0.1, "ltv_slope": 5.0},
    )
    return fin_book(
        [
            {
                "id": "op",
                "starting_cash_usd": cash,
                "fixed_opex_usd_per_month": 1.0e6,
                "opex_usd_per_mw_month": 60_000.0,
                "liquidity_usd": 2.0e7,
            }
        ],
        [risky_site("s", "op", 10.0, 6)],
        [with_rate(fac, x["spread"])],
        customers=[{"id": "c", "annual_pd": 0.08, "demand_loading": 0.3}],
        contracts=[
            {
                "id": "k",
                "customer": "c",
                "sites": ["s"],
                "share": 0.7,
                "price_usd_per_gpu_hour": 2.6,
                "start_month": 6,
                "term_months": 60,
                "prepayment_share": 0.1,
            }
        ],
        base_rate={"steps": [[1, 0.04], [25, 0.06]]},
    )


@prop_settings(max_examples=12)
@given(LEVERAGE)
def test_more_leverage_never_lowers_the_default_count(x: dict[str, Any]) -> None:
    """Principal + delta and starting cash - delta (the same funding): the balance, the
    service and the LTV are pathwise higher, the cash and the DSCR lower or equal, so
    defaults can only come earlier (same seed): by every month, never fewer."""
    s = fin_settings(N_PROP, T_PROP, seed=x["seed"])
    base = run_finance(leverage_book(x, x["principal"], x["cash"]), s).finance
    more = x["principal"] + x["delta"]
    levered = run_finance(leverage_book(x, more, x["cash"] - x["delta"]), s).finance
    lo, hi = defaults_by_month(base), defaults_by_month(levered)
    assert np.all(hi >= lo), f"defaults by month: base {lo[-1]}, levered {hi[-1]}"


CONCENTRATION = st.fixed_dictionaries(
    {
        "shares": st.tuples(st.floats(0.05, 0.95), st.floats(0.05, 0.95)).filter(
            lambda p: abs(p[0] - p[1]) > 0.01
        ),
        "weak_pd": st.floats(0.05, 0.6),
        "loading": st.floats(0.0, 0.5),
        "price": st.floats(2.0, 3.5),
        "prepay": st.floats(0.0, 0.3),
        "cash": st.floats(2.2e8, 3.5e8),
        "principal": st.floats(0.4e8, 1.1e8),
        "min_dscr": st.floats(0.8, 1.5),
        "cure": st.integers(1, 4),
        "seed": st.integers(0, 2**31),
    }
)


def concentration_book(x: dict[str, Any], weak_share: float, recovery: float = 0.0) -> Book:
    """One site sold to a weak customer (share s) and a strong one (1 - s), same terms."""
    terms = {
        "sites": ["s"],
        "price_usd_per_gpu_hour": x["price"],
        "start_month": 6,
        "term_months": 72,
        "prepayment_share": x["prepay"],
        "termination_probability": 0.0,
    }
    return fin_book(
        [
            {
                "id": "op",
                "starting_cash_usd": x["cash"],
                "fixed_opex_usd_per_month": 1.0e6,
                "opex_usd_per_mw_month": 60_000.0,
                "liquidity_usd": 2.0e7,
            }
        ],
        [risky_site("s", "op", 10.0, 6)],
        [
            facility(
                "f",
                "op",
                ["s"],
                principal_usd=x["principal"],
                maturity_month=72,
                amortisation_start_month=9,
                covenants={
                    "min_dscr": x["min_dscr"],
                    "max_ltv": 5.0,
                    "cure_months": x["cure"],
                    "first_test_month": 18,
                },
            )
        ],
        customers=[
            {
                "id": "weak",
                "annual_pd": x["weak_pd"],
                "demand_loading": x["loading"],
                "default_recovery": recovery,
            },
            {"id": "strong", "annual_pd": 0.0},
        ],
        contracts=[
            {"id": "k_weak", "customer": "weak", "share": weak_share} | terms,
            {"id": "k_strong", "customer": "strong", "share": 1.0 - weak_share} | terms,
        ],
    )


@prop_settings(max_examples=12)
@given(CONCENTRATION)
def test_more_concentration_in_a_weak_customer_never_lowers_the_default_count(
    x: dict[str, Any],
) -> None:
    """Weak share s < s': the weak customer's default month is the same on each path
    (its own stream), and from it on s' loses more revenue, so defaults can only come
    earlier. Re-letting is off: capacity freed by the default, re-let at the market
    rent, could earn more than the contract did, and then concentration would pay.
    The weak customer recovers nothing: a recovery is 40% (by default) of the whole
    remaining take-or-pay value, paid at once 12 months after the default (even for a
    default before delivery), which can exceed the revenue the contract would have paid
    by then and postpone a liquidity default. Hypothesis found one with recovery 0.4 in
    a heavier version of this book (40 MW site, $2M/month fixed opex, $50M revolver,
    first test month 12; shares 0.5 / 0.75, weak PD 0.5, loading 0, price 2.0,
    prepayment 0.25, cash $50M, principal $100M, min DSCR 1.0, cure 2, seed 0):
    1996 vs 1995 of 2000 paths in default by month 13."""
    s = fin_settings(N_PROP, T_PROP, seed=x["seed"], relet=0.0)
    lo_share, hi_share = sorted(x["shares"])
    lo = defaults_by_month(run_finance(concentration_book(x, lo_share), s).finance)
    hi = defaults_by_month(run_finance(concentration_book(x, hi_share), s).finance)
    assert np.all(hi >= lo), f"defaults by month: share {lo_share} {lo[-1]}, {hi_share} {hi[-1]}"


RANDOM_BOOK = st.fixed_dictionaries(
    {
        "pd": st.tuples(st.floats(0.0, 0.5), st.floats(0.0, 0.5)),
        "termination": st.floats(0.0, 1.0),
        "prepay": st.floats(0.0, 0.3),
        "take_or_pay": st.floats(0.3, 1.0),
        "cash": st.tuples(st.floats(2.0e8, 3.5e8), st.floats(2.0e8, 3.5e8)),
        "ltv_at_origination": st.floats(0.3, 0.9),
        "max_ltv": st.floats(0.7, 1.5),
        "impact_lambda": st.floats(0.0, 3.0),
        "relet": st.floats(0.0, 1.0),
        "seed": st.integers(0, 2**31),
    }
)


def random_book(x: dict[str, Any]) -> Book:
    """Two operators sharing one GPU generation, each with a risky customer and a facility."""
    ops = [
        {
            "id": f"op_{o}",
            "starting_cash_usd": c,
            "fixed_opex_usd_per_month": 1.0e6,
            "opex_usd_per_mw_month": 60_000.0,
            "liquidity_usd": 2.0e7,
        }
        for o, c in zip("ab", x["cash"], strict=True)
    ]
    customers = [
        {"id": f"c_{o}", "annual_pd": pd, "demand_loading": 0.3}
        for o, pd in zip("ab", x["pd"], strict=True)
    ]
    contracts = [
        {
            "id": f"k_{o}",
            "customer": f"c_{o}",
            "sites": [o],
            "share": 0.8,
            "price_usd_per_gpu_hour": 2.6,
            "start_month": 6,
            "term_months": 36,
            "grace_months": 2,
            "termination_probability": x["termination"],
            "prepayment_share": x["prepay"],
            "take_or_pay_share": x["take_or_pay"],
            "utilisation": 0.8,
        }
        for o in "ab"
    ]
    facilities = [
        {k: v for k, v in facility(f"f_{o}", f"op_{o}", [o]).items() if k != "principal_usd"}
        | {
            "ltv_at_origination": x["ltv_at_origination"],
            "covenants": {"min_dscr": 1.1, "max_ltv": x["max_ltv"], "first_test_month": 18},
            "refinancing": {},
        }
        for o in "ab"
    ]
    market = gen_market(
        fire_sale={"impact_lambda": x["impact_lambda"], "installed_base_units": 40_000.0}
    )
    sites = [risky_site("a", "op_a", 10.0, 6), risky_site("b", "op_b", 10.0, 8)]
    return fin_book(ops, sites, facilities, customers, contracts, market=market)


@prop_settings(max_examples=8)
@given(RANDOM_BOOK)
def test_revenue_cvar_is_at_least_the_var(x: dict[str, Any]) -> None:
    """The mean of the worst (1 - alpha) shortfalls is at least their lower bound, the
    alpha-quantile, at 95% and 99%, for each operator."""
    s = fin_settings(N_PROP, T_PROP, seed=x["seed"], relet=x["relet"])
    risk = run_finance(random_book(x), s).tables["risk_summary"]
    for op in ("op_a", "op_b"):
        value = {
            r["metric"]: r["value"]
            for r in risk.filter(pl.col("operator") == op).iter_rows(named=True)
        }
        for level in (95, 99):
            var, cvar = value[f"revenue_var_{level}"], value[f"revenue_cvar_{level}"]
            assert cvar >= var, f"{op} at {level}%: CVaR {cvar} < VaR {var}"


def point_mass_book() -> Book:
    """Two on-time-or-late contracts, no other risk: k1 (site s1, energized at 9 against
    a start at 3, grace 2) is terminated on half the paths and then loses exactly its
    planned revenue; k2 (site s2) is never lost. The shortfall takes two values."""
    contracts = [
        {
            "id": k,
            "customer": c,
            "sites": [site],
            "share": 1.0,
            "price_usd_per_gpu_hour": price,
            "start_month": 3,
            "term_months": 24,
            "grace_months": 2,
            "termination_probability": q,
            "renewal": {"probability_at_par": 0.0},
        }
        for k, c, site, price, q in (("k1", "c1", "s1", 2.5, 0.5), ("k2", "c2", "s2", 2.5, 0.0))
    ]
    return fin_book(
        [{"id": "op", "starting_cash_usd": 5.0e8}],
        [
            fin_site("s1", "op", [phase(10.0, 9, "h1")]),
            fin_site("s2", "op", [phase(10.0, 3, "h2")]),
        ],
        [facility("f", "op", ["s2"])],
        customers=[{"id": "c1", "annual_pd": 0.0}, {"id": "c2", "annual_pd": 0.0}],
        contracts=contracts,
    )


def test_revenue_cvar_is_at_least_the_var_when_the_tail_is_one_value() -> None:
    """The tail is one value (the terminated contract's planned revenue, $175.32M): a
    VaR interpolated inside its histogram bin could land above it, while the CVaR sums
    the paths' exact shortfalls; the reported VaR must not exceed the CVaR."""
    risk = run_finance(point_mass_book(), fin_settings(4000, 36)).tables["risk_summary"]
    value = {r["metric"]: r["value"] for r in risk.iter_rows(named=True)}
    assert value["revenue_cvar_95"] == pytest.approx(175_320_000.0, abs=USD_UNIT)
    for level in (95, 99):
        var, cvar = value[f"revenue_var_{level}"], value[f"revenue_cvar_{level}"]
        assert cvar >= var, f"at {level}%: CVaR {cvar:,.0f} < VaR {var:,.0f}"


def probability_columns(tables: dict[str, pl.DataFrame]) -> dict[str, np.ndarray]:
    """Every probability a finance table reports (nulls dropped)."""
    out: dict[str, np.ndarray] = {}
    by_month = tables["finance_by_month"]
    for name in by_month.columns:
        if name.startswith("prob_") and not name.endswith("_se"):
            out[f"finance_by_month.{name}"] = by_month[name].drop_nulls().to_numpy()
    risk = tables["risk_summary"].filter(pl.col("unit") == "probability")
    for name in ("value", "ci95_low", "ci95_high"):
        out[f"risk_summary.{name}"] = risk[name].drop_nulls().to_numpy()
    joint = tables["joint_confidence"]
    for name in joint.columns:
        if name.startswith("prob_") and not name.endswith("_se"):
            out[f"joint_confidence.{name}"] = joint[name].drop_nulls().to_numpy()
    return out


@prop_settings(max_examples=8)
@given(RANDOM_BOOK)
def test_every_reported_probability_lies_in_the_unit_interval(x: dict[str, Any]) -> None:
    s = fin_settings(N_PROP, T_PROP, seed=x["seed"], relet=x["relet"], targets=TARGETS)
    tables = run_finance(random_book(x), s).tables
    columns = probability_columns(tables)
    assert len(columns) >= 10 and sum(v.size for v in columns.values()) > 0
    for name, values in columns.items():
        assert np.all((values >= 0.0) & (values <= 1.0)), (name, values.min(), values.max())
