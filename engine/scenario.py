"""Books (scenarios): what is simulated, read from one YAML file each.

A book lists regions, GPU generations, operators and sites. Every value is
checked here, with the file and the dotted key in the message; after
:func:`load_book` returns, the book is known to be valid. The blocks are read
by engine/scenario_sites.py (sites, phases, schedules), scenario_markets.py,
scenario_customers.py and scenario_finance.py. docs/scenarios.md is the
reference for writing one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from engine.scenario_sites import Duration, Phase, ScheduleItem, Site, parse_duration, parse_site

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


def _unique(kind: str, key: str, source: str, ident: str, seen: set[str]) -> None:
    if ident in seen:
        raise InputError(source, f"{key}.id", ident, f"an id not used by another {kind}")
    seen.add(ident)


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
            parse_duration(ttp),
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
        sites.append(parse_site(r, ident, operators, regions, generations))
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
