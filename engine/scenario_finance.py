"""Finance blocks of a book: operators' cash and costs, the base rate, debt facilities.

MODEL.md section 5. Every block is optional: a book without ``facilities`` has
no debt, and no finance is simulated for it. Every value is
checked as it is read, with the file, the key and what is allowed in the
message; docs/scenarios.md lists the fields with units, defaults and sources.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.errors import InputError
from engine.reader import Reader

__all__ = [
    "BaseRate",
    "Covenants",
    "Facility",
    "OperatorFinance",
    "Refinancing",
    "parse_base_rate",
    "parse_facilities",
    "parse_facility",
    "parse_operator_finance",
]

#: SOFR, late 2025 (Fed funds target 3.75-4.00% after the Oct 2025 cut): estimate (E).
DEFAULT_BASE_RATE = 0.039


@dataclass(frozen=True)
class OperatorFinance:
    """An operator's cash, running costs and liquidity.

    Attributes
    ----------
    starting_cash_usd : float
        Cash at the start of month 1 ($): equity raised for the build.
    fixed_opex_usd_per_month : float
        Costs that run whatever is online (staff, SG&A), $/month.
    opex_usd_per_mw_month : float
        Operating costs per IT MW energized (maintenance, network, insurance),
        $/MW-month.
    liquidity_usd : float
        Committed revolving credit ($): cash may fall to ``-liquidity_usd``
        before the operator defaults for lack of liquidity.
    liquidity_spread : float
        Spread over the base rate paid on the drawn revolver (per year).
    """

    starting_cash_usd: float = 0.0
    fixed_opex_usd_per_month: float = 0.0
    opex_usd_per_mw_month: float = 0.0
    liquidity_usd: float = 0.0
    liquidity_spread: float = 0.03


@dataclass(frozen=True)
class BaseRate:
    """The floating base rate (SOFR-like) by month: steps ``(from_month, rate)``."""

    steps: tuple[tuple[int, float], ...] = ((1, DEFAULT_BASE_RATE),)

    def at(self, month: int) -> float:
        """Annual base rate in month ``month``."""
        rate = self.steps[0][1]
        for start, value in self.steps:
            if start <= month:
                rate = value
        return rate


@dataclass(frozen=True)
class Covenants:
    """Maintenance covenants of a facility.

    Attributes
    ----------
    min_dscr : float
        Minimum DSCR: the operator's EBITDA over its debt service (interest and
        scheduled principal), both summed over the trailing ``dscr_window_months``.
    max_ltv : float
        Maximum LTV: the facility's outstanding over its collateral value.
    cure_months : int
        A breach that lasts this many consecutive months is a default.
    first_test_month : int
        First month tested (a construction holiday before it).
    dscr_window_months : int
        Trailing window of the DSCR, months.
    """

    min_dscr: float = 1.2
    max_ltv: float = 0.8
    cure_months: int = 3
    first_test_month: int = 18
    dscr_window_months: int = 12


@dataclass(frozen=True)
class Refinancing:
    """What happens to the outstanding balance at maturity.

    Refinancing fails outright when a covenant is breached that month; otherwise
    with probability logistic(a + b (LTV - 0.6) + c S), where
    a = logit(``failure_probability``), c = logit(``stress_failure_probability``) - a,
    b = ``ltv_slope`` and S = 1 when the AI-demand factor is below
    ``stress_demand_threshold`` (a market in stress). A refinanced balance
    amortises to zero over ``term_months`` at the same rate.
    """

    failure_probability: float = 0.05
    stress_failure_probability: float = 0.4
    ltv_slope: float = 5.0
    stress_demand_threshold: float = -1.2816
    term_months: int = 36


@dataclass(frozen=True)
class Facility:
    """A GPU-backed debt facility of one operator.

    Attributes
    ----------
    id, operator : str
        Identifier and the borrowing operator.
    collateral_sites : tuple of str
        Sites whose GPUs secure it (the operator's).
    principal_usd : float
        Commitment, $ (given, or ``ltv_at_origination`` x the collateral GPUs' new price).
    draw : str
        ``as_built``: each collateral phase draws its share of the principal (by
        GPU value) when energized, until maturity; ``upfront``: all in month 1.
    fixed_rate : float or None
        Annual fixed rate; None for a floating rate.
    floating_spread : float
        Annual spread over the base rate (floating only).
    amortisation_start_month : int
        First month of scheduled principal.
    maturity_month : int
        Month the balance left (``balloon_share`` of the drawn principal) is due.
    balloon_share : float
        Share of the drawn principal left at maturity (1: bullet; 0: fully amortising).
    covenants : Covenants
    refinancing : Refinancing
    fire_sale_discount : float
        Discount to the market resale value at which repossessed GPUs are sold.
    liquidation_months : int
        Months over which the collateral is sold, in equal parts.
    """

    id: str
    operator: str
    collateral_sites: tuple[str, ...]
    principal_usd: float
    draw: str
    fixed_rate: float | None
    floating_spread: float
    amortisation_start_month: int
    maturity_month: int
    balloon_share: float
    covenants: Covenants
    refinancing: Refinancing
    fire_sale_discount: float
    liquidation_months: int


def parse_operator_finance(r: Reader) -> OperatorFinance:
    """Read an operator's finance keys (all optional)."""
    d = OperatorFinance()
    return OperatorFinance(
        r.number("starting_cash_usd", d.starting_cash_usd, lo=-1e13, hi=1e13),
        r.number("fixed_opex_usd_per_month", d.fixed_opex_usd_per_month, lo=0.0, hi=1e12),
        r.number("opex_usd_per_mw_month", d.opex_usd_per_mw_month, lo=0.0, hi=1e9),
        r.number("liquidity_usd", d.liquidity_usd, lo=0.0, hi=1e13),
        r.number("liquidity_spread", d.liquidity_spread, lo=0.0, hi=1.0),
    )


def parse_base_rate(r: Reader | None, horizon_hint: int = 1200) -> BaseRate:
    """Read ``base_rate``: ``{rate: x}`` or ``{steps: [[from_month, rate], ...]}``."""
    if r is None:
        return BaseRate()
    if r.has("rate") == r.has("steps"):
        raise r.error("rate", r.raw("rate"), "exactly one of rate (per year) or steps")
    if r.has("rate"):
        rate = BaseRate(((1, r.number("rate", lo=-0.05, hi=1.0)),))
        r.finish()
        return rate
    steps: list[tuple[int, float]] = []
    for key, raw in r.sequence("steps", required=True):
        ok = isinstance(raw, list) and len(raw) == 2
        ok = ok and isinstance(raw[0], int) and not isinstance(raw[0], bool)
        ok = ok and isinstance(raw[1], int | float) and not isinstance(raw[1], bool)
        ok = ok and 1 <= raw[0] <= horizon_hint and math.isfinite(raw[1])
        ok = ok and -0.05 <= raw[1] <= 1.0
        previous = steps[-1][0] if steps else 0
        if not ok or raw[0] <= previous:
            raise r.error(
                key.rsplit(".", 1)[-1],
                raw,
                "[from_month, rate]: increasing months >= 1 (the first is 1), rate in [-0.05, 1]",
            )
        steps.append((int(raw[0]), float(raw[1])))
    if steps[0][0] != 1:
        raise r.error("steps", steps[0][0], "a first step from month 1")
    r.finish()
    return BaseRate(tuple(steps))


def _covenants(r: Reader | None) -> Covenants:
    d = Covenants()
    if r is None:
        return d
    c = Covenants(
        r.number("min_dscr", d.min_dscr, lo=-100.0, hi=100.0),
        r.number("max_ltv", d.max_ltv, lo=0.0, lo_open=True, hi=100.0),
        r.integer("cure_months", d.cure_months, lo=1, hi=1200),
        r.integer("first_test_month", d.first_test_month, lo=1, hi=1200),
        r.integer("dscr_window_months", d.dscr_window_months, lo=1, hi=60),
    )
    r.finish()
    return c


def _refinancing(r: Reader | None) -> Refinancing:
    d = Refinancing()
    if r is None:
        return d
    p_open = {"lo": 0.0, "lo_open": True, "hi": 0.9999}
    f = Refinancing(
        r.number("failure_probability", d.failure_probability, **p_open),
        r.number("stress_failure_probability", d.stress_failure_probability, **p_open),
        r.number("ltv_slope", d.ltv_slope, lo=0.0, hi=1000.0),
        r.number("stress_demand_threshold", d.stress_demand_threshold, lo=-10.0, hi=10.0),
        r.integer("term_months", d.term_months, lo=1, hi=1200),
    )
    r.finish()
    return f


def parse_facility(
    r: Reader, operators: dict[str, Any], sites: dict[str, Any], gpu_price: dict[str, float]
) -> Facility:
    """Read one entry of ``facilities``.

    ``gpu_price`` maps a site id to the new price of all its GPUs ($), the base
    of ``ltv_at_origination``. Collateral sites must exist and belong to the
    facility's operator.
    """
    ident = r.string("id", required=True)
    operator = r.reference("operator", operators, "operators")
    own = {s: site for s, site in sites.items() if site.operator == operator}
    names = r.references("collateral_sites", own, f"sites of {operator}")
    if r.has("principal_usd") == r.has("ltv_at_origination"):
        raise r.error(
            "principal_usd",
            r.raw("principal_usd"),
            "exactly one of principal_usd ($) or ltv_at_origination (share of the "
            "collateral GPUs' new price)",
        )
    if r.has("principal_usd"):
        principal = r.number("principal_usd", lo=0.0, lo_open=True, hi=1e13)
    else:
        ltv = r.number("ltv_at_origination", lo=0.0, lo_open=True, hi=2.0)
        principal = ltv * sum(gpu_price[n] for n in names)
    draw = r.string("draw", "as_built")
    if draw not in ("as_built", "upfront"):
        raise r.error("draw", draw, "as_built or upfront")
    if r.has("fixed_rate") == r.has("floating_spread"):
        raise r.error(
            "fixed_rate",
            r.raw("fixed_rate"),
            "exactly one of fixed_rate or floating_spread (per year, over the book's base_rate)",
        )
    fixed = r.number("fixed_rate", lo=-0.05, hi=1.0) if r.has("fixed_rate") else None
    spread = r.number("floating_spread", 0.0, lo=-0.05, hi=1.0)
    maturity = r.integer("maturity_month", required=True, lo=1, hi=1200)
    start = r.integer("amortisation_start_month", 1, lo=1, hi=maturity)
    facility = Facility(
        ident,
        operator,
        names,
        principal,
        draw,
        fixed,
        spread if fixed is None else 0.0,
        start,
        maturity,
        r.number("balloon_share", 0.0, lo=0.0, hi=1.0),
        _covenants(r.child("covenants")),
        _refinancing(r.child("refinancing")),
        r.number("fire_sale_discount", 0.25, lo=0.0, hi=1.0),
        r.integer("liquidation_months", 6, lo=1, hi=120),
    )
    return facility


def parse_facilities(
    top: Reader,
    source: str,
    operators: dict[str, Any],
    sites: dict[str, Any],
    gpu_value: dict[str, float],
) -> tuple[Facility, ...]:
    """Read ``facilities``: unique ids, and a site secures at most one facility.

    ``gpu_value`` maps a site id to the new price of all its GPUs ($).
    """
    facilities: list[Facility] = []
    pledged: dict[str, str] = {}
    seen: set[str] = set()
    for key, raw in top.sequence("facilities"):
        r = Reader(raw, source, key)
        facility = parse_facility(r, operators, sites, gpu_value)
        if facility.id in seen:
            raise InputError(source, f"{key}.id", facility.id, "an id not used by another facility")
        seen.add(facility.id)
        for name in facility.collateral_sites:
            if name in pledged:
                raise r.error(
                    "collateral_sites", name, f"sites not already pledged (to {pledged[name]})"
                )
            pledged[name] = facility.id
        facilities.append(facility)
        r.finish()
    return tuple(facilities)
