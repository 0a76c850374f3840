"""Sites of a book: their phases, schedules and duration distributions, read and checked.

Part of reading a book (engine/scenario.py, which re-exports these types);
docs/scenarios.md is the reference for the keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from engine.reader import Reader

if TYPE_CHECKING:
    from engine.scenario import GpuGeneration, Region

__all__ = [
    "MAX_MONTHS",
    "Duration",
    "Phase",
    "ScheduleItem",
    "Site",
    "parse_duration",
    "parse_site",
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


def parse_duration(r: Reader) -> Duration:
    """Read a duration distribution (``dist`` and its parameters, months).

    Parameters
    ----------
    r : Reader
        The mapping holding ``dist`` (a region's ``time_to_power``, a site's
        ``interconnection`` or a schedule item).

    Returns
    -------
    Duration
        The distribution (a PERT with min == max becomes fixed).

    Raises
    ------
    InputError
        If ``dist`` is not pert, lognormal or fixed, or a parameter is out of range.
    """
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
        items.append(ScheduleItem(label, kind, parse_duration(item)))
    return tuple(items)


def parse_site(
    r: Reader,
    ident: str,
    operators: dict[str, Any],
    regions: dict[str, Region],
    generations: dict[str, GpuGeneration],
) -> Site:
    """Read one site (its id already read and checked unique) and its phases.

    Parameters
    ----------
    r : Reader
        The site's entry in ``sites``.
    ident : str
        Its id.
    operators, regions, generations : dict
        The book's operators, regions and GPU generations by id (read before).

    Returns
    -------
    Site
        The validated site; the caller calls ``r.finish()``.

    Raises
    ------
    InputError
        On the first invalid value.
    """
    operator = r.reference("operator", operators, "operators")
    region = regions[r.reference("region", regions, "regions")]
    generation = generations[r.reference("gpu_generation", generations, "GPU generations")]
    campus = r.string("campus", ident)
    pue = r.number("pue", 1.2, lo=1.0, hi=3.0)
    inter = r.child("interconnection")
    grid = parse_duration(inter) if inter is not None else region.time_to_power
    withdrawal = r.number("withdrawal_probability", region.withdrawal_probability, lo=0.0, hi=1.0)
    names: set[str] = {"interconnection"}
    site_items = (ScheduleItem("interconnection", "interconnection", grid),)
    site_items += _schedule(r, "schedule", names)
    phases = []
    for pkey, praw in r.sequence("phases", required=True):
        p = Reader(praw, r.source, pkey)
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
    return Site(
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
