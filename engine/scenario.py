"""Books (scenarios): what is simulated, read from one YAML file each.

A book lists regions, GPU generations, operators and sites. Every value is
checked here, with the file and the dotted key in the message; after
:func:`load_book` returns, the book is known to be valid. docs/scenarios.md is
the reference for writing one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.errors import InputError
from engine.reader import Reader, load_yaml
from engine.resources import scenario_path
from engine.scenario_customers import Contract, Customer, parse_contract, parse_customer
from engine.scenario_finance import (
    BaseRate,
    Facility,
    OperatorFinance,
    parse_base_rate,
    parse_facilities,
    parse_operator_finance,
)
from engine.scenario_markets import Electricity, GpuMarket, parse_electricity, parse_gpu_market

__all__ = [
    "Book",
    "Duration",
    "GpuGeneration",
    "Operator",
    "Phase",
    "Region",
    "ScheduleItem",
    "Site",
    "load_book",
    "parse_book",
]

DistName = Literal["pert", "lognormal", "fixed"]
ItemKind = Literal["construction", "equipment", "interconnection"]
SCHEDULE_KINDS: tuple[str, ...] = ("construction", "equipment")
MAX_MONTHS = 1200.0


@dataclass(frozen=True)
class Duration:
    """A duration distribution in months from the start of the simulation.

    Attributes
    ----------
    dist : {"pert", "lognormal", "fixed"}
        Family.
    a, b, c : float
        PERT: min, mode, max. Lognormal: median, sigma_ln, unused. Fixed: months.
    """

    dist: DistName
    a: float
    b: float = 0.0
    c: float = 0.0

    def mean(self) -> float:
        """Mean duration in months (PERT: (min + 4 mode + max) / 6)."""
        if self.dist == "pert":
            return (self.a + 4.0 * self.b + self.c) / 6.0
        if self.dist == "lognormal":
            return self.a * math.exp(0.5 * self.b**2)
        return self.a


@dataclass(frozen=True)
class ScheduleItem:
    """One schedule activity whose end gates energization.

    Attributes
    ----------
    name : str
        Label, unique within a site.
    kind : {"construction", "equipment", "interconnection"}
        Kind; draws of one kind are correlated across an operator's sites.
    duration : Duration
        Months from the start of the simulation until the item is done.
    """

    name: str
    kind: ItemKind
    duration: Duration


@dataclass(frozen=True)
class Region:
    """A grid / market area.

    Attributes
    ----------
    id : str
        Identifier.
    time_to_power : Duration
        Months until grid power for a site that gives no ``interconnection``.
    withdrawal_probability : float
        Probability that grid power never comes (interconnection withdrawn).
    electricity : Electricity
        The region's electricity market.
    """

    id: str
    time_to_power: Duration
    withdrawal_probability: float
    electricity: Electricity = field(default_factory=Electricity)


@dataclass(frozen=True)
class GpuGeneration:
    """A GPU generation.

    Attributes
    ----------
    id : str
        Identifier (for example ``gb300``).
    it_kw_per_gpu : float
        All-in IT load per GPU in kW (server plus network and storage share).
    h100_equivalents : float
        Compute of one GPU in H100 equivalents.
    market : GpuMarket
        The generation's rental and resale market.
    """

    id: str
    it_kw_per_gpu: float
    h100_equivalents: float
    market: GpuMarket = field(default_factory=GpuMarket)


@dataclass(frozen=True)
class Operator:
    """A GPU cloud / data-center operator.

    Attributes
    ----------
    id : str
        Identifier.
    name : str
        Display name.
    finance : OperatorFinance
        Starting cash, running costs and liquidity.
    """

    id: str
    name: str
    finance: OperatorFinance = field(default_factory=OperatorFinance)


@dataclass(frozen=True)
class Phase:
    """One block of IT capacity of a site, energized as a whole.

    Attributes
    ----------
    it_mw : float
        Critical IT load in MW.
    planned_month : int
        Month the operator plans to energize it (1 = first simulated month).
    gpus : int
        GPUs installed in the phase (given, or IT MW x 1000 / kW per GPU, floored).
    schedule : tuple of ScheduleItem
        Items that gate only this phase.
    """

    it_mw: float
    planned_month: int
    gpus: int
    schedule: tuple[ScheduleItem, ...]


@dataclass(frozen=True)
class Site:
    """A data-center site (a hall or a building) of one operator.

    Attributes
    ----------
    id, operator, region, campus, gpu_generation : str
        Identifier and references (campus defaults to the site id).
    pue : float
        Power usage effectiveness (utility MW / IT MW).
    withdrawal_probability : float
        Probability that grid power never comes (defaults to the region's).
    schedule : tuple of ScheduleItem
        Items that gate every phase; the first is the interconnection (months
        until grid power, the region's time to power unless the site gives one).
    phases : tuple of Phase
        Phases in energization order.
    """

    id: str
    operator: str
    region: str
    campus: str
    gpu_generation: str
    pue: float
    withdrawal_probability: float
    schedule: tuple[ScheduleItem, ...]
    phases: tuple[Phase, ...]

    @property
    def it_mw(self) -> float:
        """Total IT MW over all phases."""
        return sum(p.it_mw for p in self.phases)


@dataclass(frozen=True)
class Book:
    """A validated scenario.

    Attributes
    ----------
    name, description : str
        Identification.
    source : str
        File the book was read from.
    regions, gpu_generations, operators, sites : tuple
        Entities in file order.
    customers, contracts : tuple
        The demand side (empty when the book has none), in file order.
    base_rate : BaseRate
        Floating base rate by month (floating-rate facilities).
    facilities : tuple
        Debt facilities (empty: no debt), in file order.
    """

    name: str
    description: str
    source: str
    regions: tuple[Region, ...]
    gpu_generations: tuple[GpuGeneration, ...]
    operators: tuple[Operator, ...]
    sites: tuple[Site, ...]
    customers: tuple[Customer, ...] = ()
    contracts: tuple[Contract, ...] = ()
    base_rate: BaseRate = field(default_factory=BaseRate)
    facilities: tuple[Facility, ...] = ()


def _duration(r: Reader) -> Duration:
    dist = r.raw("dist", required=True)
    if dist == "pert":
        lo = r.number("min", required=True, lo=0.0, hi=MAX_MONTHS)
        mode = r.number("mode", required=True, lo=0.0, hi=MAX_MONTHS)
        hi = r.number("max", required=True, lo=0.0, hi=MAX_MONTHS)
        if lo > mode:
            raise r.error("min", lo, f"min <= mode ({mode}) <= max ({hi}) months")
        if mode > hi:
            raise r.error("mode", mode, f"min ({lo}) <= mode <= max ({hi}) months")
        result = Duration("pert", lo, mode, hi) if hi > lo else Duration("fixed", lo)
    elif dist == "lognormal":
        median = r.number("median", required=True, lo=0.0, lo_open=True, hi=MAX_MONTHS)
        sigma = r.number("sigma_ln", required=True, lo=0.0, hi=3.0)
        result = Duration("lognormal", median, sigma)
    elif dist == "fixed":
        result = Duration("fixed", r.number("months", required=True, lo=0.0, hi=MAX_MONTHS))
    else:
        raise r.error("dist", dist, "one of: pert, lognormal, fixed")
    r.finish()
    return result


def _schedule(r: Reader, name: str, seen: set[str]) -> tuple[ScheduleItem, ...]:
    items = []
    for key, raw in r.sequence(name):
        item = Reader(raw, r.source, key)
        label = item.string("name", required=True)
        if label in seen:
            raise item.error("name", label, "a schedule item name not used before in this site")
        seen.add(label)
        kind = item.raw("kind", required=True)
        if kind not in SCHEDULE_KINDS:
            raise item.error("kind", kind, f"one of: {', '.join(SCHEDULE_KINDS)}")
        items.append(ScheduleItem(label, kind, _duration(item)))
    return tuple(items)


def _unique(kind: str, key: str, source: str, ident: str, seen: set[str]) -> None:
    if ident in seen:
        raise InputError(source, f"{key}.id", ident, f"an id not used by another {kind}")
    seen.add(ident)


def _reference(r: Reader, name: str, known: dict[str, Any], what: str) -> str:
    value = r.string(name, required=True)
    if value not in known:
        raise r.error(name, value, f"one of the {what}: {', '.join(known)}")
    return value


def parse_book(data: Any, source: str) -> Book:
    """Validate plain data read from a book file and build the :class:`Book`.

    Parameters
    ----------
    data : Any
        Parsed YAML.
    source : str
        File name for messages.

    Returns
    -------
    Book
        The validated book.

    Raises
    ------
    InputError
        On the first invalid value.
    """
    top = Reader(data, source)
    name = top.string("name", required=True)
    description = str(top.raw("description", ""))
    seen: set[str] = set()

    regions: dict[str, Region] = {}
    for key, raw in top.sequence("regions", required=True):
        r = Reader(raw, source, key)
        ident = r.string("id", required=True)
        _unique("region", key, source, ident, seen)
        ttp = r.child("time_to_power", required=True)
        assert ttp is not None
        regions[ident] = Region(
            ident,
            _duration(ttp),
            r.number("withdrawal_probability", 0.0, lo=0.0, hi=1.0),
            parse_electricity(r.child("electricity")),
        )
        r.finish()

    generations: dict[str, GpuGeneration] = {}
    seen = set()
    for key, raw in top.sequence("gpu_generations", required=True):
        r = Reader(raw, source, key)
        ident = r.string("id", required=True)
        _unique("GPU generation", key, source, ident, seen)
        generations[ident] = GpuGeneration(
            ident,
            r.number("it_kw_per_gpu", required=True, lo=0.05, hi=100.0),
            r.number("h100_equivalents", required=True, lo=0.0, lo_open=True, hi=1000.0),
            parse_gpu_market(r.child("market")),
        )
        r.finish()

    operators: dict[str, Operator] = {}
    seen = set()
    for key, raw in top.sequence("operators", required=True):
        r = Reader(raw, source, key)
        ident = r.string("id", required=True)
        _unique("operator", key, source, ident, seen)
        operators[ident] = Operator(ident, str(r.raw("name", ident)), parse_operator_finance(r))
        r.finish()

    sites: list[Site] = []
    seen = set()
    for key, raw in top.sequence("sites", required=True):
        r = Reader(raw, source, key)
        ident = r.string("id", required=True)
        _unique("site", key, source, ident, seen)
        operator = _reference(r, "operator", operators, "operators")
        region = regions[_reference(r, "region", regions, "regions")]
        generation = generations[_reference(r, "gpu_generation", generations, "GPU generations")]
        campus = r.string("campus", ident)
        pue = r.number("pue", 1.2, lo=1.0, hi=3.0)
        inter = r.child("interconnection")
        grid = _duration(inter) if inter is not None else region.time_to_power
        withdrawal = r.number(
            "withdrawal_probability", region.withdrawal_probability, lo=0.0, hi=1.0
        )
        names: set[str] = {"interconnection"}
        site_items = (ScheduleItem("interconnection", "interconnection", grid),)
        site_items += _schedule(r, "schedule", names)
        phases = []
        for pkey, praw in r.sequence("phases", required=True):
            p = Reader(praw, source, pkey)
            it_mw = p.number(
                "it_mw",
                required=True,
                lo=0.0,
                lo_open=True,
                hi=10_000.0,
                allowed="a number of MW > 0 (critical IT load), at most 10000",
            )
            planned = p.integer("planned_month", required=True, lo=1, hi=1200)
            if phases and planned < phases[-1].planned_month:
                raise p.error(
                    "planned_month",
                    planned,
                    f"a month >= the previous phase's ({phases[-1].planned_month}): "
                    "phases energize in order",
                )
            derived = math.floor(it_mw * 1000.0 / generation.it_kw_per_gpu + 1e-9)
            if derived < 1 and not p.has("gpus"):
                raise p.error(
                    "it_mw",
                    it_mw,
                    f"at least one GPU's load ({generation.it_kw_per_gpu} kW of "
                    f"{generation.id}), or give gpus explicitly",
                )
            gpus = p.integer("gpus", derived, lo=1, hi=10_000_000)
            phases.append(Phase(it_mw, planned, gpus, _schedule(p, "schedule", names)))
            p.finish()
        sites.append(
            Site(
                ident,
                operator,
                region.id,
                campus,
                generation.id,
                pue,
                withdrawal,
                site_items,
                tuple(phases),
            )
        )
        r.finish()
    customers, contracts = _demand(top, source, {s.id: s for s in sites})
    base_rate = parse_base_rate(top.child("base_rate"))
    gpu_value = {
        s.id: sum(p.gpus for p in s.phases) * generations[s.gpu_generation].market.new_price_usd
        for s in sites
    }
    facilities = parse_facilities(top, source, operators, {s.id: s for s in sites}, gpu_value)
    top.finish()
    return Book(
        name,
        description,
        source,
        tuple(regions.values()),
        tuple(generations.values()),
        tuple(operators.values()),
        tuple(sites),
        customers,
        contracts,
        base_rate,
        facilities,
    )


def _demand(
    top: Reader, source: str, sites: dict[str, Site]
) -> tuple[tuple[Customer, ...], tuple[Contract, ...]]:
    """Read the customers and contracts; a site's GPUs are sold at most once in total."""
    customers: dict[str, Customer] = {}
    seen: set[str] = set()
    for key, raw in top.sequence("customers"):
        r = Reader(raw, source, key)
        customer = parse_customer(r)
        _unique("customer", key, source, customer.id, seen)
        customers[customer.id] = customer
        r.finish()
    contracts: list[Contract] = []
    sold = {name: 0.0 for name in sites}
    seen = set()
    for key, raw in top.sequence("contracts"):
        r = Reader(raw, source, key)
        contract = parse_contract(r, customers, sites)
        _unique("contract", key, source, contract.id, seen)
        first = sites[contract.sites[0]]
        for name in contract.sites[1:]:
            other = sites[name]
            if (other.operator, other.gpu_generation) != (first.operator, first.gpu_generation):
                raise r.error(
                    "sites",
                    name,
                    f"sites of one operator and GPU generation ({first.operator}, "
                    f"{first.gpu_generation}, as {first.id})",
                )
        for name in contract.sites:
            sold[name] += contract.share
            if sold[name] > 1.0 + 1e-9:
                raise r.error(
                    "share",
                    contract.share,
                    f"at most {1.0 - (sold[name] - contract.share):g}: the contracts "
                    f"would sell more than all GPUs of site {name}",
                )
        contracts.append(contract)
        r.finish()
    return tuple(customers.values()), tuple(contracts)


def load_book(scenario: str) -> Book:
    """Find, read and validate a book by name (``scenarios/NAME.yaml``) or path.

    Parameters
    ----------
    scenario : str
        A scenario name or a path to a YAML file.

    Returns
    -------
    Book
        The validated book.

    Raises
    ------
    InputError
        If the scenario does not exist or any value is invalid.
    """
    path: Path = scenario_path(scenario)
    return parse_book(load_yaml(path), str(path))
