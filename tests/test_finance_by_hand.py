"""Operator finance (engine/kernels/finance.py) by hand on deterministic books: cash,
EBITDA, DSCR and LTV every month without risk, the market channels the hand computation
reads against closed forms, and the lender's fire-sale recovery after a forced default.

Deterministic books switch every market to its central path (demand, electricity,
copper, GPU market off), use fixed schedules, customers with PD 0 and no
termination, so every path is the same path; the hand computation
(tests/finance_hand.py) follows the kernel docstring's order of events month by month
and the integer statistics must equal n_paths x the fixed-point rounded hand values.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from finance_books import (
    CENTRAL,
    facility,
    fin_book,
    fin_settings,
    fin_site,
    gen_market,
    phase,
    run_finance,
)
from finance_hand import HOURS, assert_month_sums, hand_finance, the_path, whole

from engine.finance_arrays import LTV_TOP
from engine.finance_config import JointTarget
from engine.kernels.finance_fields import (
    FR_DEFAULTS,
    FR_EAD,
    FR_LGD,
    FR_LGD_SQ,
    FR_LOSS,
    FR_RECOVERED,
    FR_REFINANCED,
    R_DEF_COVENANT,
    R_DEF_LIQUIDITY,
    R_DEF_REFINANCING,
    R_LOSS_SUM,
    R_TESTED,
    RATIO_UNIT,
    USD_UNIT,
)
from engine.market_config import CopperConfig
from engine.scenario import Book

#: Loss given default in 1e-8 units (engine/kernels/finance_records.py LGD_SQ_UNIT).
LGD_SQ_UNIT = 1e-8


# -- 1. no risk: every month by hand -------------------------------------------------------

NO_RISK_CASES = {
    # as built, fixed rate, amortising with a balloon refinanced at month 48
    "as_built_fixed_refinanced": (
        {
            "starting_cash_usd": 3.0e8,
            "fixed_opex_usd_per_month": 1.0e6,
            "opex_usd_per_mw_month": 50_000.0,
        },
        {
            "draw": "as_built",
            "fixed_rate": 0.08,
            "maturity_month": 48,
            "amortisation_start_month": 6,
            "balloon_share": 0.3,
            "principal_usd": 2.4e8,
            "covenants": {
                "min_dscr": 1.1,
                "max_ltv": 1.14,
                "cure_months": 4,
                "first_test_month": 12,
                "dscr_window_months": 6,
            },
        },
    ),
    # up front, floating over a stepped base rate, cash below zero on the revolver for a
    # while, maturity after the horizon
    "upfront_floating_revolver": (
        {
            "starting_cash_usd": 2.0e7,
            "fixed_opex_usd_per_month": 1.5e6,
            "opex_usd_per_mw_month": 60_000.0,
            "liquidity_usd": 3.0e8,
            "liquidity_spread": 0.04,
        },
        {
            "draw": "upfront",
            "floating_spread": 0.03,
            "maturity_month": 72,
            "amortisation_start_month": 13,
            "balloon_share": 0.0,
            "principal_usd": 2.0e8,
            "covenants": {
                "min_dscr": 0.5,
                "max_ltv": 1.5,
                "cure_months": 2,
                "first_test_month": 18,
                "dscr_window_months": 12,
            },
        },
    ),
    # a small bullet: DSCR far above the cap of 10 in the sums; refinanced at 36, then
    # amortising to zero over the 36-month refinancing term
    "small_bullet_dscr_capped": (
        {"starting_cash_usd": 6.0e8, "fixed_opex_usd_per_month": 5.0e5},
        {
            "draw": "as_built",
            "fixed_rate": 0.05,
            "maturity_month": 36,
            "amortisation_start_month": 36,
            "balloon_share": 1.0,
            "principal_usd": 2.0e7,
            "covenants": {"min_dscr": 1.5, "max_ltv": 0.9, "first_test_month": 6},
        },
    ),
}


def no_risk_book(case: str) -> Book:
    op_fields, fac_fields = NO_RISK_CASES[case]
    fac = facility("f", "op", ["s"]) | fac_fields
    if "floating_spread" in fac_fields:
        del fac["fixed_rate"]
    return fin_book(
        [{"id": "op"} | op_fields],
        # 20 MW = 8000 GPUs in two phases, energized at 3 and 8; the second was planned
        # for 7, so one month of its revenue is lost against the plan
        [fin_site("s", "op", [phase(10.0, 3, "hall1"), phase(10.0, 8, "hall2", planned_month=7)])],
        [fac],
        customers=[{"id": "c", "annual_pd": 0.0}],
        contracts=[
            {
                "id": "k",
                "customer": "c",
                "sites": ["s"],
                "share": 0.8,
                "price_usd_per_gpu_hour": 3.0,
                "start_month": 3,
                "term_months": 48,
                "take_or_pay_share": 0.8,
                "utilisation": 0.9,
                "prepayment_share": 0.1,
                "renewal": {"probability_at_par": 0.0},
            }
        ],
        market=gen_market(rent_usd_per_gpu_hour=3.0, rent_drift_per_year=-0.1),
        base_rate={"steps": [[1, 0.04], [13, 0.05], [25, 0.03]]},
    )


@pytest.mark.parametrize("case", list(NO_RISK_CASES))
def test_no_risk_cash_ebitda_dscr_ltv_equal_the_hand_computation(case: str) -> None:
    """Every month of the one path by hand: cash, EBITDA, DSCR (trailing window), LTV,
    breaches, no default; the sums over n identical paths are n x the rounded values."""
    n, horizon, relet = 100, 60, 0.7
    book = no_risk_book(case)
    targets = [
        JointTarget("all_by_7", mw_online_share=1.0, by_month=7),
        JointTarget("all_by_8", mw_online_share=1.0, by_month=8, no_operator_default=True),
        JointTarget("dscr_1", min_dscr=1.0, no_customer_default=True),
        JointTarget("dscr_2_5", min_dscr=2.5),
    ]
    s = fin_settings(n, horizon, markets=CENTRAL, relet=relet, targets=targets)
    run = run_finance(book, s, capture=True)
    months = [3, 8]
    fp = the_path(run, months)
    hand = hand_finance(book, fp, months, horizon, relet)
    assert hand.default_month > horizon, "the book must not default"
    fs = run.finance
    assert_month_sums(fs.month_sums[0], hand, n)
    assert fs.op_sums[0, R_DEF_COVENANT] == fs.op_sums[0, R_DEF_LIQUIDITY] == 0
    assert fs.op_sums[0, R_DEF_REFINANCING] == 0
    assert fs.op_sums[0, R_TESTED] == n * (hand.min_dscr is not None)
    assert hand.revenue_loss > 0  # a month of the second phase's revenue
    assert fs.op_sums[0, R_LOSS_SUM] == n * whole(hand.revenue_loss / USD_UNIT)
    assert fs.fac_sums[0, FR_DEFAULTS] == 0
    assert fs.fac_sums[0, FR_REFINANCED] == n * hand.refinanced
    # the tables: means are the rounded hand values, medians within one bin width
    table = run.tables["finance_by_month"].sort("month")
    for t in (1, 5, 12, 30, 48, 60):
        row = table.row(t - 1, named=True)
        assert row["cash_usd_mean"] == whole(hand.cash[t] / USD_UNIT) * USD_UNIT
        assert abs(row["cash_usd_p50"] - hand.cash[t]) <= row["cash_usd_bin_width"]
        assert abs(row["ebitda_usd_p50"] - hand.ebitda[t]) <= row["ebitda_usd_bin_width"]
        if hand.ltv[t] is not None:  # the fan's bins clamp at LTV_TOP (inf: no GPUs yet)
            ltv = min(hand.ltv[t], LTV_TOP)
            assert abs(row["ltv_p50"] - ltv) <= row["ltv_bin_width"]
        assert row["prob_default_by_month"] == 0.0
    # joint targets on the one path: phase 2 is energized at 8; the DSCR tested from the
    # first test month stays at or above its minimum
    joint = run.tables["joint_confidence"]
    assert hand.min_dscr is not None
    expected = [0.0, 1.0, float(hand.min_dscr >= 1.0), float(hand.min_dscr >= 2.5)]
    assert joint["prob_all"].to_list() == expected


def test_no_risk_market_channels_are_the_central_paths() -> None:
    """The channels the hand computation reads, against closed forms: resale = new price
    x (1 - decay)^(t / 12) x successor step from month 30; rent = rent x e^(drift t / 12);
    energy = MW x PUE x hours x ($50 + $20); facility capex = MW x ($/MW ex copper + t/MW x
    copper on its central path) in each energization month."""
    horizon = 60
    book = no_risk_book("as_built_fixed_refinanced")
    run = run_finance(book, fin_settings(10, horizon, markets=CENTRAL), capture=True)
    fp = the_path(run, [3, 8])
    t = np.arange(1, horizon + 1)
    rent = 3.0 * np.exp(-0.1 * t / 12.0)
    resale = 40_000.0 * 0.75 ** (t / 12.0) * np.where(t >= 30, 0.8, 1.0)
    mw = np.where(t >= 3, 10.0, 0.0) + np.where(t >= 8, 10.0, 0.0)
    np.testing.assert_allclose(fp[1, 1:], rent, rtol=1e-12)
    np.testing.assert_allclose(fp[2, 1:], resale, rtol=1e-12)
    np.testing.assert_allclose(fp[3, 1:], mw * 1.25 * HOURS * 70.0, rtol=1e-12)
    # copper on its central path: ln S_t = chi_0 a^t + ln S_0 - chi_0, a = e^(-kappa / 12)
    cu = CopperConfig()
    a = math.exp(-cu.short_kappa_per_year / 12.0)
    copper = cu.spot_usd_per_t * np.exp(cu.short_term_start * (a**t - 1.0))
    ex_copper = cu.facility_capex_usd_per_mw - cu.intensity_t_per_mw * cu.reference_price_usd_per_t
    capex = 10.0 * (ex_copper + cu.intensity_t_per_mw * copper) * np.isin(t, [3, 8])
    np.testing.assert_allclose(fp[4, 1:], capex, rtol=1e-12)


# -- 2. forced default: the lender's recovery by hand --------------------------------------

DEFAULT_CASES = {
    # merchant revenue only: cash runs out (no revolver) in a known month, after
    # amortisation began; sold over 6 months, all within the horizon; an exogenous dump
    # at month 4 lowers the keep factor
    "liquidity_sold_within_horizon": (
        36,
        {
            "starting_cash_usd": 3.5e8,
            "fixed_opex_usd_per_month": 2.0e6,
            "opex_usd_per_mw_month": 60_000.0,
        },
        {
            "draw": "upfront",
            "principal_usd": 3.0e8,
            "amortisation_start_month": 3,
            "maturity_month": 60,
            "balloon_share": 0.2,
            "liquidation_months": 6,
            "fire_sale_discount": 0.3,
        },
    ),
    # an LTV covenant breached for `cure` months once the successor ramps (month 30); the
    # sales run past the horizon (priced at month T)
    "covenant_sold_past_horizon": (
        36,
        {"starting_cash_usd": 5.0e8, "fixed_opex_usd_per_month": 1.0e6},
        {
            "draw": "upfront",
            "principal_usd": 3.0e8,
            "amortisation_start_month": 40,
            "maturity_month": 60,
            "balloon_share": 1.0,
            "liquidation_months": 8,
            "fire_sale_discount": 0.2,
            "covenants": {
                "min_dscr": -100.0,
                "max_ltv": 2.0,
                "cure_months": 2,
                "first_test_month": 1,
            },
        },
    ),
}


def default_book(case: str) -> Book:
    _, op_fields, fac_fields = DEFAULT_CASES[case]
    market = gen_market(
        fire_sale={
            "impact_lambda": 2.0,
            "half_life_months": 4.0,
            "installed_base_units": 40_000.0,
            "dumped_units": [{"month": 4, "units": 3000.0}],
        }
    )
    return fin_book(
        [{"id": "op"} | op_fields],
        [fin_site("s", "op", [phase(20.0, 1, "hall1")])],  # 8000 GPUs at month 1
        [facility("f", "op", ["s"]) | fac_fields],
        market=market,
    )


@pytest.mark.parametrize("case", list(DEFAULT_CASES))
def test_forced_default_recovery_equals_the_fire_sale_by_hand(case: str) -> None:
    """Default month and cause by hand; EAD = the balance after that month's service;
    proceeds = sum over s = tau+1..tau+L of units / L x resale_s x (1 - discount) x
    max(0, keep_s - J_s) / keep_s, J_{s+1} = J_s 2^(-1/h) + lambda sold_s / base;
    recovered = min(proceeds, EAD), loss = EAD - recovered, LGD = loss / EAD."""
    horizon = DEFAULT_CASES[case][0]
    n = 50
    book = default_book(case)
    run = run_finance(book, fin_settings(n, horizon, markets=CENTRAL), capture=True)
    fp = the_path(run, [1])
    hand = hand_finance(book, fp, [1], horizon, 0.7)
    assert hand.default_month <= horizon, "the book must default"
    fs = run.finance
    assert_month_sums(fs.month_sums[0], hand, n)
    cause = {"covenant": R_DEF_COVENANT, "liquidity": R_DEF_LIQUIDITY}[hand.cause]
    assert fs.op_sums[0, cause] == n
    assert fs.op_sums[0, R_DEF_COVENANT : R_DEF_REFINANCING + 1].sum() == n
    recovered = min(hand.proceeds, hand.ead)
    loss = hand.ead - recovered
    lgd = loss / hand.ead
    assert fs.fac_sums[0, FR_DEFAULTS] == n
    assert fs.fac_sums[0, FR_EAD] == n * whole(hand.ead / USD_UNIT)
    assert fs.fac_sums[0, FR_RECOVERED] == n * whole(recovered / USD_UNIT)
    assert fs.fac_sums[0, FR_LOSS] == n * whole(loss / USD_UNIT)
    assert fs.fac_sums[0, FR_LGD] == n * whole(lgd / RATIO_UNIT)
    assert fs.fac_sums[0, FR_LGD_SQ] == n * whole(lgd * lgd / LGD_SQ_UNIT)
    assert 0.0 < lgd < 1.0  # the discount and the impact cost the lender something
    risk = run.tables["risk_summary"].filter(pl.col("facility") == "f")
    value = {r["metric"]: r["value"] for r in risk.iter_rows(named=True)}
    assert value["pd"] == 1.0
    assert value["lgd"] == pytest.approx(whole(lgd / RATIO_UNIT) * RATIO_UNIT, abs=1e-12)
    assert value["ead_given_default"] == whole(hand.ead / USD_UNIT) * USD_UNIT
    assert value["expected_loss"] == whole(loss / USD_UNIT) * USD_UNIT
