"""Demand blocks of a book: customers and their contracts (MODEL.md section 4).

Both lists are optional in a book. Every value is checked as it is read, with
the file, the key and what is allowed in the message (docs/scenarios.md lists
the fields with units, defaults and sources).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.reader import Reader

__all__ = [
    "RATING_ANNUAL_PD",
    "Contract",
    "Customer",
    "Renewal",
    "parse_contract",
    "parse_customer",
]

#: Annual probability of default by rating (S&P letters; Moody's A, Baa, Ba, B, Caa).
#: A: calibration.md 1F (IG hyperscaler anchor, 0.1%/yr). BBB: top of 1F's 0.05-0.3%
#: range (E). BB, B, CCC: annualised 5-year cumulative rates of calibration.md 1G
#: (Ba 7%, B 19%, Caa-C 37.5%): 1 - (1 - cumulative)^(1/5).
RATING_ANNUAL_PD: dict[str, float] = {
    "A": 0.001,
    "BBB": 0.003,
    "BB": 1.0 - (1.0 - 0.07) ** 0.2,
    "B": 1.0 - (1.0 - 0.19) ** 0.2,
    "CCC": 1.0 - (1.0 - 0.375) ** 0.2,
}


@dataclass(frozen=True)
class Customer:
    """A buyer of capacity.

    Attributes
    ----------
    id : str
        Identifier.
    annual_pd : float
        Annual probability of default (given, or from ``rating``).
    rating : str
        The rating it came from, or ``""``.
    demand_loading : float
        rho: the weight of the AI-demand factor in the customer's latent credit
        variable (one-factor model, asset correlation).
    default_recovery : float
        Share of the remaining take-or-pay value recovered when it defaults.
    """

    id: str
    annual_pd: float
    rating: str
    demand_loading: float
    default_recovery: float

    @property
    def monthly_pd(self) -> float:
        """Monthly PD with (1 - monthly)^12 = 1 - annual (exact)."""
        return -math.expm1(math.log1p(-self.annual_pd) / 12.0)


@dataclass(frozen=True)
class Renewal:
    """What a customer does at the end of a contract's term.

    P(renew) = probability_at_par x min(1, R / P)^rent_sensitivity, where R is
    the market rent of the contract's GPUs in the last month of the term and P
    the contract price: it falls as the market rent drops below the price.
    A renewal runs ``term_months`` more at the same price (once).
    """

    probability_at_par: float
    rent_sensitivity: float
    term_months: int


@dataclass(frozen=True)
class Contract:
    """Capacity sold to one customer.

    Attributes
    ----------
    id, customer : str
        Identifier and the customer's id.
    sites : tuple of str
        Sites whose GPUs are taken (in service as each phase is energized).
    share : float
        Share of those sites' GPUs taken, in (0, 1] (given, or from ``gpus`` or
        ``mw`` taken).
    price_usd_per_gpu_hour : float
        Price, $/GPU-hr.
    start_month : int
        Planned first month of service; the term starts at first delivery.
    term_months : int
        Months of service from first delivery.
    take_or_pay_share : float
        Share of the price paid whatever the use; the rest is paid x utilisation.
    utilisation : float
        Utilisation of the capacity the customer pays by use.
    prepayment_share : float
        Share of the contract value prepaid at signing, earned evenly over the term.
    grace_months : int
        Months first delivery may be late before the customer may terminate.
    termination_probability : float
        Probability that the customer terminates when first delivery is later
        than the grace period (decided when the grace period ends).
    delay_discount : float
        Otherwise, share of the price credited back for as many months of
        service as first delivery was late beyond the grace period.
    renewal : Renewal
        Behaviour at term end.
    """

    id: str
    customer: str
    sites: tuple[str, ...]
    share: float
    price_usd_per_gpu_hour: float
    start_month: int
    term_months: int
    take_or_pay_share: float
    utilisation: float
    prepayment_share: float
    grace_months: int
    termination_probability: float
    delay_discount: float
    renewal: Renewal


def parse_customer(r: Reader) -> Customer:
    """Read one entry of ``customers``; ``annual_pd`` or ``rating``, not both."""
    ident = r.string("id", required=True)
    if r.has("annual_pd") == r.has("rating"):
        raise r.error(
            "annual_pd",
            r.raw("annual_pd"),
            "exactly one of annual_pd (a probability in [0, 0.999]) or rating "
            f"({', '.join(RATING_ANNUAL_PD)})",
        )
    rating = ""
    if r.has("rating"):
        rating = r.string("rating")
        if rating not in RATING_ANNUAL_PD:
            raise r.error("rating", rating, f"one of {', '.join(RATING_ANNUAL_PD)}")
        pd = RATING_ANNUAL_PD[rating]
    else:
        pd = r.number("annual_pd", lo=0.0, hi=0.999)
    return Customer(
        ident,
        pd,
        rating,
        r.number("demand_loading", 0.35, lo=0.0, hi=0.99),
        r.number("default_recovery", 0.4, lo=0.0, hi=1.0),
    )


def _renewal(r: Reader | None, term: int) -> Renewal:
    if r is None:
        return Renewal(0.7, 2.0, term)
    renewal = Renewal(
        r.number("probability_at_par", 0.7, lo=0.0, hi=1.0),
        r.number("rent_sensitivity", 2.0, lo=0.0, hi=100.0),
        r.integer("term_months", term, lo=1, hi=1200),
    )
    r.finish()
    return renewal


def _share(r: Reader, sites: list[Any]) -> float:
    """Share of the sites' GPUs taken: ``share``, or ``gpus`` or ``mw`` (IT MW) taken."""
    given = [key for key in ("share", "gpus", "mw") if r.has(key)]
    if len(given) > 1:
        raise r.error(given[1], r.raw(given[1]), f"only one of share, gpus, mw (also {given[0]})")
    if not given or given[0] == "share":
        return r.number("share", 1.0, lo=0.0, lo_open=True, hi=1.0)
    if given[0] == "gpus":
        total = float(sum(p.gpus for site in sites for p in site.phases))
    else:
        total = float(sum(site.it_mw for site in sites))
    unit = "GPUs" if given[0] == "gpus" else "MW of IT load"
    amount = r.number(
        given[0], lo=0.0, lo_open=True, hi=total, allowed=f"{unit} in (0, {total:g}] (the sites')"
    )
    return amount / total


def parse_contract(r: Reader, customers: dict[str, Any], sites: dict[str, Any]) -> Contract:
    """Read one entry of ``contracts`` (customer and sites must exist)."""
    ident = r.string("id", required=True)
    customer = r.reference("customer", customers, "customers")
    names = r.references("sites", sites, "sites")
    term = r.integer("term_months", required=True, lo=1, hi=1200)
    contract = Contract(
        ident,
        customer,
        names,
        _share(r, [sites[n] for n in names]),
        r.number("price_usd_per_gpu_hour", required=True, lo=0.0, lo_open=True, hi=1000.0),
        r.integer("start_month", 1, lo=1, hi=1200),
        term,
        r.number("take_or_pay_share", 1.0, lo=0.0, hi=1.0),
        r.number("utilisation", 0.85, lo=0.0, hi=1.0),
        r.number("prepayment_share", 0.0, lo=0.0, hi=1.0),
        r.integer("grace_months", 3, lo=0, hi=1200),
        r.number("termination_probability", 0.15, lo=0.0, hi=1.0),
        r.number("delay_discount", 0.1, lo=0.0, hi=1.0),
        _renewal(r.child("renewal"), term),
    )
    return contract
