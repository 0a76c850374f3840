"""Lowering of the demand side: customers and contracts -> flat arrays for the kernel.

Phases are numbered in book order (site by site, phase by phase), as the
energization times of the capacity model. Stream ids are named, so adding a
customer or a contract leaves every other stream's numbers unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from engine.config import Settings
from engine.kernels.contracts import (
    C_CUSTOMER,
    C_DISCOUNT,
    C_GENERATION,
    C_GRACE,
    C_OPERATOR,
    C_PREPAY,
    C_PRICE,
    C_Q_TERM,
    C_RATE,
    C_RENEW_P,
    C_RENEW_S,
    C_RENEW_TERM,
    C_START,
    C_TERM,
    C_TOP,
    C_UTIL,
    N_CONTRACT_FIELDS,
    N_CUSTOMER_FIELDS,
)
from engine.market_layout import HOURS_PER_MONTH
from engine.rng import stream_id
from engine.scenario import Book

__all__ = ["DemandArrays", "lower_demand", "planned_revenue"]


@dataclass
class DemandArrays:
    """The demand side of a book as arrays (fields in the kernel's argument order).

    Attributes
    ----------
    customers : numpy.ndarray
        ``float64[K, 4]`` default threshold (Phi^-1 or t_nu^-1 of the monthly PD;
        -inf for PD 0), sqrt(rho), rho, recovery share.
    contracts : numpy.ndarray
        ``float64[C, 15]`` the fields ``C_*`` of :mod:`engine.kernels.contracts`.
    phase_start, phase_index, phase_gpus : numpy.ndarray
        CSR list of each contract's phases and the GPUs it takes of each.
    dsc : numpy.ndarray
        ``float64[6]`` enabled, Student-t, nu, re-let utilisation, demand
        persistence phi, demand factor enabled.
    streams : numpy.ndarray
        ``uint64[K + C + 1 + F]`` customers', contracts', the chi-square and the
        debt facilities' stream ids.
    caps : numpy.ndarray
        ``float64[C + 2 (O + 1)]`` $: each contract's largest revenue over the
        horizon; each scope's (total, operators) largest monthly revenue; each
        scope's planned revenue over the horizon.
    planned_value : numpy.ndarray
        ``float64[C]`` each contract's revenue within the horizon with every
        phase energized at its planned month ($, :func:`planned_revenue`).
    """

    customers: np.ndarray
    contracts: np.ndarray
    phase_start: np.ndarray
    phase_index: np.ndarray
    phase_gpus: np.ndarray
    dsc: np.ndarray
    streams: np.ndarray
    caps: np.ndarray
    planned_value: np.ndarray


def _phase_numbers(book: Book) -> dict[str, list[int]]:
    numbers: dict[str, list[int]] = {}
    k = 0
    for site in book.sites:
        numbers[site.id] = list(range(k, k + len(site.phases)))
        k += len(site.phases)
    return numbers


def monthly_rate(price: float, take_or_pay: float, utilisation: float) -> float:
    """Revenue of one GPU in service for a month: hours x price x (ToP + (1 - ToP) u), $."""
    return HOURS_PER_MONTH * price * (take_or_pay + (1.0 - take_or_pay) * utilisation)


def planned_revenue(
    start: int, term: int, rate: float, planned: list[int], gpus: list[float], horizon: int
) -> float:
    """Revenue within the horizon if every phase is energized at its planned month, $.

    Service runs from the later of ``start`` and the first planned phase for
    ``term`` months, each phase from its planned month (the kernel's rule).
    """
    first = max(start, min(planned))
    total = 0.0
    for t in range(first, min(first + term - 1, horizon) + 1):
        for month, n in zip(planned, gpus, strict=True):
            if month <= t:
                total += n * rate
    return total


def lower_demand(book: Book, settings: Settings) -> DemandArrays:
    """Lower the customers and contracts of ``book`` for the contract kernel."""
    horizon = settings.run.horizon_months
    cfg = settings.customers
    student = cfg.family == "student_t"
    numbers = _phase_numbers(book)
    planned_value = []
    sites = {s.id: s for s in book.sites}
    gens = {g.id: k for k, g in enumerate(book.gpu_generations)}
    ops = {o.id: k for k, o in enumerate(book.operators)}
    cust_index = {c.id: k for k, c in enumerate(book.customers)}
    customers = np.zeros((len(book.customers), N_CUSTOMER_FIELDS))
    for k, c in enumerate(book.customers):
        pd = c.monthly_pd
        if pd <= 0.0:
            threshold = -math.inf
        elif student:
            threshold = float(stats.t.ppf(pd, cfg.nu))
        else:
            threshold = float(stats.norm.ppf(pd))
        customers[k] = (
            threshold,
            math.sqrt(c.demand_loading),
            c.demand_loading,
            c.default_recovery,
        )
    contracts = np.zeros((len(book.contracts), N_CONTRACT_FIELDS))
    starts, index, take = [0], [], []
    n_scopes = 1 + len(book.operators)
    caps_contract, caps_month, caps_planned = [], np.zeros(n_scopes), np.zeros(n_scopes)
    rent0 = [g.market.rent_usd_per_gpu_hour for g in book.gpu_generations]
    for c, ct in enumerate(book.contracts):
        site = sites[ct.sites[0]]
        row = contracts[c]
        row[C_CUSTOMER] = cust_index[ct.customer]
        row[C_GENERATION] = gens[site.gpu_generation]
        row[C_OPERATOR] = ops[site.operator]
        row[C_PRICE] = ct.price_usd_per_gpu_hour
        row[C_START], row[C_TERM] = ct.start_month, ct.term_months
        row[C_TOP], row[C_UTIL] = ct.take_or_pay_share, ct.utilisation
        row[C_PREPAY], row[C_GRACE] = ct.prepayment_share, ct.grace_months
        row[C_Q_TERM], row[C_DISCOUNT] = ct.termination_probability, ct.delay_discount
        row[C_RENEW_P], row[C_RENEW_S] = ct.renewal.probability_at_par, ct.renewal.rent_sensitivity
        row[C_RENEW_TERM] = ct.renewal.term_months
        months, gpus = [], []
        for name in ct.sites:
            for p, phase in zip(numbers[name], sites[name].phases, strict=True):
                index.append(p)
                months.append(phase.planned_month)
                gpus.append(ct.share * phase.gpus)
        take += gpus
        starts.append(len(index))
        rate = monthly_rate(ct.price_usd_per_gpu_hour, ct.take_or_pay_share, ct.utilisation)
        row[C_RATE] = rate
        total_gpus = sum(gpus)
        caps_contract.append(total_gpus * rate * horizon)
        plan = planned_revenue(ct.start_month, ct.term_months, rate, months, gpus, horizon)
        planned_value.append(plan)
        top_rate = HOURS_PER_MONTH * max(
            ct.price_usd_per_gpu_hour, 2.0 * rent0[int(row[C_GENERATION])]
        )
        for s in (0, 1 + int(row[C_OPERATOR])):
            caps_month[s] += total_gpus * top_rate
            caps_planned[s] += plan
    dsc = np.array(
        [
            float(cfg.enabled),
            float(student),
            cfg.nu,
            cfg.relet_utilisation,
            settings.markets.demand.persistence,
            float(settings.markets.demand.enabled),
        ]
    )
    streams = [stream_id("customer", c.id) for c in book.customers]
    streams += [stream_id("contract", c.id) for c in book.contracts]
    streams.append(stream_id("customers", "chi_square"))
    streams += [stream_id("facility", f.id) for f in book.facilities]  # refinancing draws
    return DemandArrays(
        customers=customers,
        contracts=contracts,
        phase_start=np.array(starts, dtype=np.int64),
        phase_index=np.array(index, dtype=np.int64),
        phase_gpus=np.array(take, dtype=np.float64),
        dsc=dsc,
        streams=np.array(streams, dtype=np.uint64),
        caps=np.concatenate([np.array(caps_contract), caps_month, caps_planned]),
        planned_value=np.array(planned_value, dtype=np.float64),
    )
