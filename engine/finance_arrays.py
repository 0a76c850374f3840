"""Lowering of the finance side: operators, phases, facilities, targets -> kernel arrays.

Phases are numbered in book order (site by site, phase by phase), as the
energization times of the capacity model. Field indices are in
engine/kernels/finance_fields.py; docs/model.md §10 gives the equations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.config import Settings
from engine.demand_arrays import DemandArrays
from engine.finance_config import check_targets
from engine.kernels.contracts import C_OPERATOR, C_RATE
from engine.kernels.finance_fields import (
    F_AMORT_START,
    F_BALLOON,
    F_CURE,
    F_DISCOUNT,
    F_FIRST_TEST,
    F_FIXED,
    F_LIQ_MONTHS,
    F_LOSS_UNIT,
    F_MATURITY,
    F_MAX_LTV,
    F_MIN_DSCR,
    F_OP,
    F_PRINCIPAL,
    F_RATE,
    F_REFI_A,
    F_REFI_B,
    F_REFI_C,
    F_REFI_TERM,
    F_STRESS,
    F_UPFRONT,
    F_WINDOW,
    FAN_BINS,
    FLAG_CUSTOMERS,
    FLAG_DSCR,
    FLAG_MW,
    FLAG_OPERATORS,
    G_DECAY,
    G_IMPACT,
    N_FACILITY_FIELDS,
    N_GEN_FIELDS,
    N_OP_FIELDS,
    N_PHASE_FIELDS,
    N_SCALARS,
    N_TARGET_FIELDS,
    O_CASH0,
    O_CASH_LO,
    O_CASH_SCALE,
    O_EBITDA_LO,
    O_EBITDA_SCALE,
    O_EL_UNIT,
    O_FIXED_OPEX,
    O_LIQ_SPREAD,
    O_LIQUIDITY,
    O_LOSS_LO,
    O_LOSS_SCALE,
    O_LOSS_UNIT,
    O_OPEX_MW,
    O_PLANNED,
    O_WINDOW,
    PATH_BINS,
    PH_DRAW,
    PH_FACILITY,
    PH_FREE_GPUS,
    PH_GEN,
    PH_GPU_CAPEX,
    PH_GPUS,
    PH_MW,
    PH_OP,
    PH_PAIR,
    T_DSCR,
    T_FLAGS,
    T_MONTH,
    T_MW,
)
from engine.market_layout import HOURS_PER_MONTH
from engine.scenario import Book

__all__ = ["DSCR_RANGE", "LTV_TOP", "FinanceArrays", "lower_finance"]

#: Range of the DSCR bins (fans and minimum DSCR) and top of the LTV bins.
DSCR_RANGE = (-2.0, 6.0)
LTV_TOP = 2.5
#: Energy price used only to size the EBITDA bins, $/MWh (a generous all-in price).
_BIN_ENERGY_PRICE = 200.0


@dataclass
class FinanceArrays:
    """The finance side of a book as arrays (fields in the kernel's argument order).

    Attributes
    ----------
    ops, phases : numpy.ndarray
        ``float64[O, N_OP_FIELDS]`` and ``[P, N_PHASE_FIELDS]``: the ``O_*`` and
        ``PH_*`` fields of engine/kernels/finance_fields.py.
    pair_facility, pair_gen : numpy.ndarray
        ``int64[n_pairs]`` facility and GPU generation of each collateral pair.
    facilities, gens : numpy.ndarray
        ``float64[F, N_FACILITY_FIELDS]`` and ``[G, N_GEN_FIELDS]``: the ``F_*``
        and ``G_*`` fields.
    keep : numpy.ndarray
        ``float64[G, T + 1]`` the exogenous fire-sale keep factor max(0, 1 - I_t).
    base_rate : numpy.ndarray
        ``float64[T + 1]`` annual base rate by month.
    fsc : numpy.ndarray
        ``float64[N_SCALARS]`` the ``FS_*`` scalars.
    targets, target_ops, target_customers : numpy.ndarray
        ``float64[J, 4]`` MW threshold, month, DSCR threshold, condition flags;
        ``float64[J, O]`` and ``[J, K]`` (1: named by the target).
    n_channels : int
        Market channels per path the finance needs (1 + 2 G + 2 O).
    """

    ops: np.ndarray
    phases: np.ndarray
    pair_facility: np.ndarray
    pair_gen: np.ndarray
    facilities: np.ndarray
    gens: np.ndarray
    keep: np.ndarray
    base_rate: np.ndarray
    fsc: np.ndarray
    targets: np.ndarray
    target_ops: np.ndarray
    target_customers: np.ndarray
    n_channels: int


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def lower_finance(
    book: Book, settings: Settings, demand: DemandArrays, keep: np.ndarray
) -> FinanceArrays:
    """Lower the operators' finance, facilities and joint targets of ``book``.

    ``keep`` is the market lowering's exogenous fire-sale keep factor by
    generation and month; ``demand`` gives each contract's planned revenue.
    """
    horizon = settings.run.horizon_months
    ops_index = {o.id: k for k, o in enumerate(book.operators)}
    gens_index = {g.id: k for k, g in enumerate(book.gpu_generations)}
    fac_index = {f.id: k for k, f in enumerate(book.facilities)}
    n_ops, n_gens = len(book.operators), len(book.gpu_generations)
    copper = settings.markets.copper
    sold = {s.id: 0.0 for s in book.sites}
    for ct in book.contracts:
        for name in ct.sites:
            sold[name] += ct.share
    pledged = {name: fac_index[f.id] for f in book.facilities for name in f.collateral_sites}
    # phases
    rows = []
    site_capex = {}
    for site in book.sites:
        g = gens_index[site.gpu_generation]
        price = book.gpu_generations[g].market.new_price_usd
        site_capex[site.id] = sum(p.gpus for p in site.phases) * price
        for phase in site.phases:
            row = np.zeros(N_PHASE_FIELDS)
            row[PH_OP], row[PH_GEN] = ops_index[site.operator], g
            row[PH_MW], row[PH_GPUS] = phase.it_mw, phase.gpus
            row[PH_GPU_CAPEX] = phase.gpus * price
            row[PH_FREE_GPUS] = phase.gpus * max(0.0, 1.0 - sold[site.id])
            row[PH_FACILITY] = pledged.get(site.id, -1)
            rows.append(row)
    phases = np.array(rows).reshape(-1, N_PHASE_FIELDS)
    # collateral pairs (facility, generation), in facility then generation order
    pairs = sorted({(int(r[PH_FACILITY]), int(r[PH_GEN])) for r in phases if r[PH_FACILITY] >= 0})
    pair_index = {pair: k for k, pair in enumerate(pairs)}
    for r in phases:
        r[PH_PAIR] = pair_index.get((int(r[PH_FACILITY]), int(r[PH_GEN])), -1)
    pair_facility = np.array([f for f, _ in pairs], dtype=np.int64)
    pair_gen = np.array([g for _, g in pairs], dtype=np.int64)
    # facilities, and each collateral phase's draw (its share of the collateral GPU value)
    facilities = np.zeros((len(book.facilities), N_FACILITY_FIELDS))
    for k, f in enumerate(book.facilities):
        row = facilities[k]
        row[F_OP], row[F_PRINCIPAL] = ops_index[f.operator], f.principal_usd
        row[F_UPFRONT] = float(f.draw == "upfront")
        row[F_FIXED] = float(f.fixed_rate is not None)
        row[F_RATE] = f.fixed_rate if f.fixed_rate is not None else f.floating_spread
        row[F_AMORT_START], row[F_MATURITY] = f.amortisation_start_month, f.maturity_month
        row[F_BALLOON] = f.balloon_share
        cov, refi = f.covenants, f.refinancing
        row[F_MIN_DSCR], row[F_MAX_LTV] = cov.min_dscr, cov.max_ltv
        row[F_CURE], row[F_FIRST_TEST] = cov.cure_months, cov.first_test_month
        row[F_WINDOW] = cov.dscr_window_months
        row[F_REFI_A] = _logit(refi.failure_probability)
        row[F_REFI_B] = refi.ltv_slope
        row[F_REFI_C] = _logit(refi.stress_failure_probability) - row[F_REFI_A]
        row[F_STRESS], row[F_REFI_TERM] = refi.stress_demand_threshold, refi.term_months
        row[F_DISCOUNT], row[F_LIQ_MONTHS] = f.fire_sale_discount, f.liquidation_months
        row[F_LOSS_UNIT] = f.principal_usd * 1e-5
        total = sum(site_capex[name] for name in f.collateral_sites)
        mask = phases[:, PH_FACILITY] == k
        phases[mask, PH_DRAW] = f.principal_usd * phases[mask, PH_GPU_CAPEX] / total
    # operators: cash, costs, and the ranges of their bins
    planned = np.zeros(n_ops)
    monthly = np.zeros(n_ops)
    for c in range(demand.contracts.shape[0]):
        o = int(demand.contracts[c, C_OPERATOR])
        planned[o] += demand.planned_value[c]
        gpus = demand.phase_gpus[demand.phase_start[c] : demand.phase_start[c + 1]].sum()
        monthly[o] += gpus * demand.contracts[c, C_RATE]
    ops = np.zeros((n_ops, N_OP_FIELDS))
    for o, op in enumerate(book.operators):
        fin = op.finance
        own = phases[:, PH_OP] == o
        mw = float(phases[own, PH_MW].sum())
        rent = np.array([g.market.rent_usd_per_gpu_hour for g in book.gpu_generations])
        merchant = float((phases[own, PH_FREE_GPUS] * rent[phases[own, PH_GEN].astype(int)]).sum())
        merchant *= HOURS_PER_MONTH * 2.0
        running = fin.fixed_opex_usd_per_month + fin.opex_usd_per_mw_month * mw
        running += mw * 1.5 * HOURS_PER_MONTH * _BIN_ENERGY_PRICE
        principal = sum(f.principal_usd for f in book.facilities if f.operator == op.id)
        capex = float(phases[own, PH_GPU_CAPEX].sum()) + mw * copper.facility_capex_usd_per_mw
        cash_range = max(
            abs(fin.starting_cash_usd) + principal + planned[o] + capex + fin.liquidity_usd, 1e6
        )
        ebitda_range = max(1.5 * max(monthly[o] + merchant, running), 1e5)
        loss_range = max(planned[o], 1e3)
        windows = [f.covenants.dscr_window_months for f in book.facilities if f.operator == op.id]
        ops[o, O_CASH0] = fin.starting_cash_usd
        ops[o, O_FIXED_OPEX] = fin.fixed_opex_usd_per_month
        ops[o, O_OPEX_MW] = fin.opex_usd_per_mw_month
        ops[o, O_LIQUIDITY] = fin.liquidity_usd
        ops[o, O_LIQ_SPREAD] = fin.liquidity_spread
        ops[o, O_WINDOW] = min(windows) if windows else 12
        ops[o, O_CASH_LO], ops[o, O_CASH_SCALE] = -cash_range, FAN_BINS / (2.0 * cash_range)
        ops[o, O_EBITDA_LO] = -ebitda_range
        ops[o, O_EBITDA_SCALE] = FAN_BINS / (2.0 * ebitda_range)
        ops[o, O_PLANNED] = planned[o]
        ops[o, O_LOSS_LO], ops[o, O_LOSS_SCALE] = -loss_range, PATH_BINS / (2.0 * loss_range)
        ops[o, O_LOSS_UNIT] = loss_range * 1e-5
        ops[o, O_EL_UNIT] = max(principal, 1e3) * 1e-5
    gens = np.zeros((n_gens, N_GEN_FIELDS))
    for g, gen in enumerate(book.gpu_generations):
        fire = gen.market.fire_sale
        gens[g, G_DECAY] = 2.0 ** (-1.0 / fire.half_life_months)
        if settings.finance.contagion:
            gens[g, G_IMPACT] = fire.impact_lambda / fire.installed_base_units
    base_rate = np.array([book.base_rate.at(max(t, 1)) for t in range(horizon + 1)])
    lo, hi = DSCR_RANGE
    fsc = np.zeros(N_SCALARS)
    fsc[:] = (
        float(settings.finance.enabled),
        settings.customers.relet_utilisation,
        1.0,
        1.0 + n_gens,
        1.0 + 2 * n_gens,
        1.0 + 2 * n_gens + n_ops,
        lo,
        FAN_BINS / (hi - lo),
        FAN_BINS / LTV_TOP,
    )
    targets, target_ops, target_customers = _targets(book, settings, phases)
    return FinanceArrays(
        ops=ops,
        phases=phases,
        pair_facility=pair_facility,
        pair_gen=pair_gen,
        facilities=facilities,
        gens=gens,
        keep=np.ascontiguousarray(keep, dtype=np.float64),
        base_rate=base_rate,
        fsc=fsc,
        targets=targets,
        target_ops=target_ops,
        target_customers=target_customers,
        n_channels=1 + 2 * n_gens + 2 * n_ops,
    )


def _targets(
    book: Book, settings: Settings, phases: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower the joint targets of ``settings.finance`` (names checked against the book)."""
    cfg = settings.finance
    op_ids = [o.id for o in book.operators]
    cust_ids = [c.id for c in book.customers]
    check_targets(cfg, op_ids, cust_ids)
    n = len(cfg.joint_targets)
    targets = np.zeros((n, N_TARGET_FIELDS))
    target_ops = np.zeros((n, len(op_ids)))
    target_customers = np.zeros((n, len(cust_ids)))
    for j, t in enumerate(cfg.joint_targets):
        ops_named = set(t.operators) or set(op_ids)
        target_ops[j] = [float(o in ops_named) for o in op_ids]
        cust_named = set(t.customers) or set(cust_ids)
        target_customers[j] = [float(c in cust_named) for c in cust_ids]
        flags = 0
        if t.mw_online_share is not None:
            flags |= FLAG_MW
            scope = target_ops[j][phases[:, PH_OP].astype(int)] > 0.5
            targets[j, T_MW] = t.mw_online_share * float(phases[scope, PH_MW].sum())
        if t.no_customer_default:
            flags |= FLAG_CUSTOMERS
        if t.min_dscr is not None:
            flags |= FLAG_DSCR
            targets[j, T_DSCR] = t.min_dscr
        if t.no_operator_default:
            flags |= FLAG_OPERATORS
        targets[j, T_MONTH] = t.by_month
        targets[j, T_FLAGS] = flags
    return targets, target_ops, target_customers
