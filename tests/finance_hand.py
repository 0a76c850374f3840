"""The by-hand reference computation of the finance tests (test_finance_by_hand.py):
one operator's path month by month in the order of events of the kernel's docstring
(engine/kernels/finance.py), its fire-sale recovery after a default, and the check that
the engine's integer monthly sums equal n_paths x the fixed-point rounded hand values.
A plain module, not collected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from finance_books import FinanceRun

from engine.kernels.finance_fields import (
    DSCR_CAP,
    LTV_CAP,
    MS_ALIVE,
    MS_BREACH,
    MS_CASH,
    MS_DEFAULT,
    MS_DSCR,
    MS_DSCR_N,
    MS_EBITDA,
    MS_FIRST_BREACH,
    MS_LTV,
    MS_LTV_N,
    RATIO_UNIT,
    USD_UNIT,
)
from engine.market_layout import HOURS_PER_MONTH
from engine.scenario import Book

HOURS = HOURS_PER_MONTH


def the_path(run: FinanceRun, months: list[int]) -> np.ndarray:
    """The one market path of a deterministic run (every path equal; month 0 unused)."""
    fp = run.factor_paths
    assert fp.shape[0] == run.finance.n_paths
    assert np.all(fp[:, :, 1:] == fp[:1, :, 1:]), "the markets are not deterministic"
    assert np.all(run.energization == np.array(months, dtype=float)), run.energization[0]
    return fp[0]


def whole(x: float) -> int:
    """Nearest integer, half up (the kernel's fixed-point rounding)."""
    return math.floor(x + 0.5)


def exogenous_keep(market: Any, horizon: int) -> np.ndarray:
    """max(0, 1 - I_t) of the book's exogenous dumps: I_t = I_{t-1} 2^(-1/h) + lambda Q_t / B."""
    fire = market.fire_sale
    keep, impact = np.ones(horizon + 1), 0.0
    for t in range(1, horizon + 1):
        dumped = sum(q for month, q in fire.dumped_units if month == t)
        impact = impact * 2.0 ** (-1.0 / fire.half_life_months)
        impact += fire.impact_lambda * dumped / fire.installed_base_units
        keep[t] = max(0.0, 1.0 - impact)
    return keep


@dataclass
class Hand:
    """One operator's path by hand, months 1..T (index 0 unused)."""

    cash: list[float]
    ebitda: list[float]
    dscr: list[float | None]
    ltv: list[float | None]
    breach: list[bool]
    alive: list[bool]
    default_month: int
    cause: str
    ead: float
    proceeds: float
    refinanced: bool
    min_dscr: float | None
    revenue_loss: float


def hand_finance(book: Book, fp: np.ndarray, months: list[int], horizon: int, relet: float) -> Hand:
    """One operator, one facility, one GPU generation, customers that never default or
    terminate, no renewals: the documented order of events, month by month."""
    (op,) = book.operators
    (fac,) = book.facilities
    (gen,) = book.gpu_generations
    fin, mkt, cov = op.finance, gen.market, fac.covenants
    T = horizon
    rent, resale, energy, site_capex = fp[1], fp[2], fp[3], fp[4]
    phases = [(s, p) for s in book.sites for p in s.phases]
    assert len(months) == len(phases)
    # contracts: revenue (with re-letting after the term), prepayment cash, planned revenue
    revenue, other = np.zeros(T + 1), np.zeros(T + 1)
    realised, planned = 0.0, 0.0
    for ct in book.contracts:
        assert ct.renewal.probability_at_par == 0.0
        customer = next(c for c in book.customers if c.id == ct.customer)
        assert customer.annual_pd == 0.0
        rate = HOURS * ct.price_usd_per_gpu_hour
        rate *= ct.take_or_pay_share + (1 - ct.take_or_pay_share) * ct.utilisation
        taken = [
            (months[k], ct.share * p.gpus) for k, (s, p) in enumerate(phases) if s.id in ct.sites
        ]
        plan = [(p.planned_month, ct.share * p.gpus) for s, p in phases if s.id in ct.sites]
        first = min(m for m, _ in taken)
        assert first <= ct.start_month + ct.grace_months  # no termination, no discount
        deliver = max(ct.start_month, first)
        end = deliver + ct.term_months - 1
        total_gpus = sum(g for _, g in taken)
        prepaid = ct.prepayment_share * total_gpus * rate * ct.term_months
        other[1] += prepaid
        left = prepaid
        plan_first = max(ct.start_month, min(m for m, _ in plan))
        for t in range(1, T + 1):
            in_service = sum(g for m, g in taken if m <= t)
            earned = in_service * rate if deliver <= t <= end else 0.0
            if left > 0.0 and earned > 0.0:
                credit = min(ct.prepayment_share * earned, left)
                left -= credit
                other[t] -= credit
            revenue[t] += earned
            if t > end:  # re-let at the market rent once the term is over
                revenue[t] += in_service * HOURS * rent[t] * relet
            realised += earned
            if plan_first <= t <= plan_first + ct.term_months - 1:
                planned += sum(g for m, g in plan if m <= t) * rate
    # GPUs not sold to any contract earn the market rent at the re-let utilisation
    merchant = np.zeros(T + 1)
    for k, (s, p) in enumerate(phases):
        sold = sum(ct.share for ct in book.contracts if s.id in ct.sites)
        free = p.gpus * (1.0 - sold)
        for t in range(months[k], T + 1):
            merchant[t] += free * HOURS * relet * rent[t]
    # draws: each collateral phase its share of the principal by GPU value, when energized
    price_new = mkt.new_price_usd
    draws = np.zeros(T + 2)
    pledged = [k for k, (s, _) in enumerate(phases) if s.id in fac.collateral_sites]
    total = sum(phases[k][1].gpus * price_new for k in pledged)
    if fac.draw == "upfront":
        draws[1] = fac.principal_usd
    else:
        for k in pledged:
            if months[k] <= min(fac.maturity_month, T):
                draws[months[k]] += fac.principal_usd * phases[k][1].gpus * price_new / total
    keep = exogenous_keep(mkt, T)
    decay = 2.0 ** (-1.0 / mkt.fire_sale.half_life_months)
    lam_b = mkt.fire_sale.impact_lambda / mkt.fire_sale.installed_base_units
    # the month loop
    cash = fin.starting_cash_usd
    out = drawn = balloon = 0.0
    maturity, run, refinanced = fac.maturity_month, 0, False
    cum_e, cum_ds = [0.0] * (T + 1), [0.0] * (T + 1)
    h = Hand(
        [0.0] * (T + 1),
        [0.0] * (T + 1),
        [None] * (T + 1),
        [None] * (T + 1),
        [False] * (T + 1),
        [False] * (T + 1),
        T + 1,
        "",
        0.0,
        0.0,
        False,
        None,
        planned - realised,
    )
    for t in range(1, T + 1):
        if h.default_month < t:
            continue
        h.alive[t] = True
        base = book.base_rate.at(t)
        mw = sum(p.it_mw for k, (_, p) in enumerate(phases) if months[k] <= t)
        ebitda = revenue[t] + merchant[t] - energy[t]
        ebitda -= fin.fixed_opex_usd_per_month + fin.opex_usd_per_mw_month * mw
        capex = site_capex[t] + sum(
            p.gpus * price_new for k, (_, p) in enumerate(phases) if months[k] == t
        )
        service = max(-cash, 0.0) * (base + fin.liquidity_spread) / 12.0
        if draws[t] > 0.0:
            drawn += draws[t]
            out += draws[t]
            if maturity == fac.maturity_month:
                balloon = fac.balloon_share * drawn
        rate = fac.fixed_rate if fac.fixed_rate is not None else base + fac.floating_spread
        interest = out * rate / 12.0
        scheduled = 0.0
        if fac.amortisation_start_month <= t <= maturity:
            scheduled = max(out - balloon, 0.0) / (maturity - t + 1)
        out -= scheduled
        service += interest + scheduled
        cash += ebitda + other[t] - capex + draws[t] - service
        cum_e[t] = cum_e[t - 1] + ebitda
        cum_ds[t] = cum_ds[t - 1] + service
        units = sum(phases[k][1].gpus for k in pledged if months[k] <= t)
        value = units * resale[t]  # no fire sale before the operator's own default
        ltv = (out / value if value > 0 else math.inf) if out > 0 else None
        w0 = max(t - cov.dscr_window_months, 0)
        e_w, d_w = cum_e[t] - cum_e[w0], cum_ds[t] - cum_ds[w0]
        breach = False
        if t >= cov.first_test_month and out > 0:
            breach = (d_w > 0 and e_w < cov.min_dscr * d_w) or (
                ltv is not None and ltv > cov.max_ltv
            )
        run = run + 1 if breach else 0
        cause = "covenant" if run >= cov.cure_months else ""
        if t == maturity and out > 1e-6:
            x = math.log(fac.refinancing.failure_probability)
            x -= math.log1p(-fac.refinancing.failure_probability)
            assert fac.refinancing.ltv_slope == 0.0 and x < -20.0  # fails with p < 1e-9
            if breach:
                cause = "refinancing"
            else:
                maturity, balloon, refinanced = t + fac.refinancing.term_months, 0.0, True
        if cash < -fin.liquidity_usd and not cause:
            cause = "liquidity"
        h.cash[t], h.ebitda[t], h.ltv[t], h.breach[t] = cash, ebitda, ltv, breach
        if d_w > 0:
            h.dscr[t] = e_w / d_w
            if out > 0 and t >= cov.first_test_month:
                h.min_dscr = min(h.min_dscr, e_w / d_w) if h.min_dscr is not None else e_w / d_w
        if cause:
            h.default_month, h.cause, h.ead = t, cause, out
    h.refinanced = refinanced
    if h.default_month > T:
        return h
    # the lender's sales: units / L a month from tau + 1, at the resale value less the
    # discount, marked down by the book's own impact J (from the month after each sale)
    tau, n_sales = h.default_month, fac.liquidation_months
    units = sum(phases[k][1].gpus for k in pledged if months[k] <= tau)
    impact = 0.0
    for s in range(tau + 1, tau + n_sales + 1):
        month = min(s, T)
        price = resale[month] * max(keep[month] - impact, 0.0) / keep[month]
        h.proceeds += units / n_sales * (1.0 - fac.fire_sale_discount) * price
        if s <= T:
            impact = impact * decay + lam_b * units / n_sales
    return h


def fixed_ratio(x: float, cap: float) -> int:
    return whole(min(max(x, -cap), cap) * (1.0 / RATIO_UNIT))


def assert_month_sums(ms: np.ndarray, hand: Hand, n: int) -> None:
    """The operator's monthly sums equal n x the fixed-point hand values, exactly."""
    horizon = ms.shape[0] - 1
    first_breach = next((t for t in range(1, horizon + 1) if hand.breach[t]), None)
    for t in range(1, horizon + 1):
        alive = hand.alive[t]
        expected = {
            "alive": n * alive,
            # the kernel multiplies by the reciprocal of the unit (finance_records.py)
            "cash": n * whole(hand.cash[t] * (1.0 / USD_UNIT)) if alive else 0,
            "ebitda": n * whole(hand.ebitda[t] * (1.0 / USD_UNIT)) if alive else 0,
            "dscr_n": n * (alive and hand.dscr[t] is not None),
            "dscr": n * fixed_ratio(hand.dscr[t], DSCR_CAP)
            if alive and hand.dscr[t] is not None
            else 0,
            "ltv_n": n * (alive and hand.ltv[t] is not None),
            "ltv": n * fixed_ratio(hand.ltv[t], LTV_CAP)
            if alive and hand.ltv[t] is not None
            else 0,
            "breach": n * (alive and hand.breach[t]),
            "first_breach": n * (t == first_breach),
            "default": n * (t == hand.default_month),
        }
        got = {
            "alive": ms[t, MS_ALIVE],
            "cash": ms[t, MS_CASH],
            "ebitda": ms[t, MS_EBITDA],
            "dscr_n": ms[t, MS_DSCR_N],
            "dscr": ms[t, MS_DSCR],
            "ltv_n": ms[t, MS_LTV_N],
            "ltv": ms[t, MS_LTV],
            "breach": ms[t, MS_BREACH],
            "first_breach": ms[t, MS_FIRST_BREACH],
            "default": ms[t, MS_DEFAULT],
        }
        assert {k: int(v) for k, v in got.items()} == expected, f"month {t}"
