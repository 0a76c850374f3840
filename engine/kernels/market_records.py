"""What the market kernel records: value bins and fixed-point sums, site costs, curtailment.

Every statistic is an integer (a count or a fixed-point sum), so the partial
results of parallel blocks merge to the same bits in any order. Factors are
binned in ln value (``bin = ln v x scale + shift``, clamped to the end bins).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.kernels.lanes import FIXED_MAGIC, LANES, fixed_total
from engine.market_layout import SITE_HALF_WIDTH

__all__ = [
    "N_SITE_SUMS",
    "SITE_CAPEX",
    "SITE_ENERGY",
    "bin_index",
    "operator_capex",
    "operator_energy",
    "path_costs",
    "record_lanes",
]

#: Site statistics: histograms of capex and of energy cost per month in service.
SITE_CAPEX, SITE_ENERGY = 0, 1
#: Site sums: capex ($k), copper cost ($k), energy cost over the horizon ($k),
#: energy cost per month in service ($), paths built within the horizon.
N_SITE_SUMS = 5


@njit(cache=True, inline="always")
def bin_index(log_value: float, shift: float, scale: float, n_bins: int) -> int:
    """Bin of ``log_value``: ``ln v x scale + shift`` clamped to ``0 .. n_bins - 1``."""
    x = log_value * scale + shift
    if not x >= 0.0:  # also -inf (a value of 0) and nan
        return 0
    if x >= n_bins - 1:
        return n_bins - 1
    return int(x)


@njit(cache=True, inline="always")
def record_lanes(
    hist: np.ndarray,
    sums: np.ndarray,
    b: int,
    row: int,
    t: int,
    log_value: np.ndarray,
    value: np.ndarray,
    n_active: int,
    bin_map: np.ndarray,
    lane_scratch: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Add the active lanes' value of one reported factor in month ``t``.

    Parameters
    ----------
    hist, sums : numpy.ndarray
        ``int16[blocks, T + 1, n_out, B]`` counts by ln-value bin and
        ``int64[blocks, T + 1, n_out]`` fixed-point sums (month-major: a lane
        group's records of a month sit together).
    b, row, t : int
        Block, reported factor (``< 0``: not reported, nothing added) and month.
    log_value, value : numpy.ndarray
        ``float64[LANES]`` ln value (binned) and value (summed, in units of
        ``1 / per_unit``).
    n_active : int
        Lanes holding a path (the first ``n_active``).
    bin_map : numpy.ndarray
        ``float64[T + 1, n_out, 3]``: shift and scale of the bins
        (``bin = ln v x scale + shift``) and fixed-point units per value unit.
    lane_scratch : tuple
        ``int64[1, LANES]`` (the lanes' bins), ``float64[1, LANES]`` (their
        fixed-point values + ``FIXED_MAGIC``) and its ``int64`` view
        (:func:`engine.kernels.lanes.fixed_total`).
    """
    if row < 0:
        return
    scratch, fixed, fixed_bits = lane_scratch
    shift, scale, unit = bin_map[t, row, 0], bin_map[t, row, 1], bin_map[t, row, 2]
    top = float(hist.shape[3] - 1)
    for lane in range(LANES):  # vectorised: same bins as bin_index (int32: AVX2 packs it)
        x = log_value[lane] * scale + shift
        x = x if x >= 0.0 else 0.0
        scratch[0, lane] = np.int64(np.int32(min(x, top)))
        fixed[0, lane] = np.trunc(value[lane] * unit + 0.5) + FIXED_MAGIC
    for lane in range(n_active):
        hist[b, t, row, scratch[0, lane]] += 1
    sums[b, t, row] += fixed_total(fixed_bits, 0, value, unit, n_active)


@njit(cache=True, inline="always")
def path_costs(
    b: int,
    lane: int,
    months: np.ndarray,
    copper: np.ndarray,
    cum: np.ndarray,
    curtailed: np.ndarray,
    n_curtailed: np.ndarray,
    copper_intensity: float,
    facility_ex_copper: float,
    site_region: np.ndarray,
    site_pue: np.ndarray,
    site_phase_start: np.ndarray,
    site_phase_end: np.ndarray,
    site_center: np.ndarray,
    phase_mw: np.ndarray,
    phase_curtail_w: np.ndarray,
    phase_scopes: np.ndarray,
    region_phase_start: np.ndarray,
    region_phase_index: np.ndarray,
    b_site_hist: np.ndarray,
    b_site_sums: np.ndarray,
    b_curtailed: np.ndarray,
) -> None:
    """Add what one path's markets cost each site, and the MW its curtailments took.

    Capex of a phase = MW x (facility $/MW ex copper + t/MW x copper $/t in its
    energization month); energy of a site = sum over its phases of MW x PUE x
    the region's cumulative $ per utility MW from the energization month to the
    horizon (``cum``, lane ``lane``); per month in service = energy / months in
    service. A curtailment event in month t takes ``phase_curtail_w`` W from
    every phase of its region energized by t, in each scope holding the phase.
    ``months`` is ``int64[P, LANES]``, each lane's energization months (> T: never).
    """
    horizon = cum.shape[1] - 1
    n_site_bins = b_site_hist.shape[3]
    site_scale = n_site_bins / (2.0 * SITE_HALF_WIDTH)
    for s in range(site_region.shape[0]):
        first = months[site_phase_start[s], lane]
        if first > horizon:
            continue
        r = site_region[s]
        capex = 0.0
        copper_cost = 0.0
        energy = 0.0
        for p in range(site_phase_start[s], site_phase_end[s]):
            m = months[p, lane]
            if m > horizon:
                continue
            cu_cost = phase_mw[p] * copper_intensity * copper[m, lane]
            capex += phase_mw[p] * facility_ex_copper + cu_cost
            copper_cost += cu_cost
            energy += phase_mw[p] * site_pue[s] * (cum[r, horizon, lane] - cum[r, m - 1, lane])
        per_month = energy / (horizon - first + 1)
        shift = 0.5 * n_site_bins - site_center[s, SITE_CAPEX] * site_scale
        k = bin_index(math.log(capex), shift, site_scale, n_site_bins)
        b_site_hist[b, s, SITE_CAPEX, k] += 1
        shift = 0.5 * n_site_bins - site_center[s, SITE_ENERGY] * site_scale
        k = bin_index(math.log(per_month), shift, site_scale, n_site_bins)
        b_site_hist[b, s, SITE_ENERGY, k] += 1
        b_site_sums[b, s, 0] += np.int64(capex / 1000.0 + 0.5)
        b_site_sums[b, s, 1] += np.int64(copper_cost / 1000.0 + 0.5)
        b_site_sums[b, s, 2] += np.int64(energy / 1000.0 + 0.5)
        b_site_sums[b, s, 3] += np.int64(per_month + 0.5)
        b_site_sums[b, s, 4] += 1
    for r in range(n_curtailed.shape[0]):
        for e in range(n_curtailed[r, lane]):
            t = curtailed[r, lane, e]
            for j in range(region_phase_start[r], region_phase_start[r + 1]):
                p = region_phase_index[j]
                if months[p, lane] <= t:
                    for k in range(3):
                        b_curtailed[b, phase_scopes[p, k], t] += phase_curtail_w[p]


@njit(cache=True, inline="always")
def operator_energy(
    series: np.ndarray,
    ch_energy: int,
    n_ops: int,
    t: int,
    months: np.ndarray,
    spent: np.ndarray,
    site_region: np.ndarray,
    site_pue: np.ndarray,
    site_operator: np.ndarray,
    site_phase_start: np.ndarray,
    site_phase_end: np.ndarray,
    phase_mw: np.ndarray,
) -> None:
    """Write a group's energy cost by operator in month ``t``, $ (run in the month loop).

    Energy in month t = sum over the operator's phases energized by t of
    MW x PUE x the region's $ per utility MW in t (``spent``, ``float64[R, LANES]``:
    the difference of the region's running cost, energy at the all-in price,
    curtailment and capacity charges included). Channel
    ``ch_energy + o`` of ``series`` (``float64[channels, T + 1, LANES]``) is
    overwritten in month t for every lane; ``months`` (``int64[P, LANES]``)
    holds each lane's energization months (> T: never, also for lanes without
    a path). One term per phase, in site and phase order, as a loop over one
    path's phases would add them (a phase not yet energized adds exactly 0).
    """
    for o in range(n_ops):
        for lane in range(LANES):
            series[ch_energy + o, t, lane] = 0.0
    for s in range(site_region.shape[0]):
        r = site_region[s]
        k = ch_energy + site_operator[s]
        for p in range(site_phase_start[s], site_phase_end[s]):
            load = phase_mw[p] * site_pue[s]
            for lane in range(LANES):
                add = load * spent[r, lane]
                series[k, t, lane] += add if months[p, lane] <= t else 0.0


@njit(cache=True)
def operator_capex(
    series: np.ndarray,
    ch_capex: int,
    n_ops: int,
    months: np.ndarray,
    copper: np.ndarray,
    copper_intensity: float,
    facility_ex_copper: float,
    site_operator: np.ndarray,
    site_phase_start: np.ndarray,
    site_phase_end: np.ndarray,
    phase_mw: np.ndarray,
) -> None:
    """Write a group's facility capex by operator and month, $.

    Capex of a phase = MW x (facility $/MW ex copper + t/MW x copper $/t), paid
    in its energization month. Channels ``ch_capex + o`` of ``series``
    (``float64[channels, T + 1, LANES]``, months 0..T) are overwritten for
    every lane; ``months`` (``int64[P, LANES]``) holds each lane's energization
    months (> T: never, also for lanes without a path).
    """
    horizon = series.shape[1] - 1
    for k in range(ch_capex, ch_capex + n_ops):
        for t in range(horizon + 1):
            for lane in range(LANES):
                series[k, t, lane] = 0.0
    for s in range(site_operator.shape[0]):
        capex = series[ch_capex + site_operator[s]]
        for p in range(site_phase_start[s], site_phase_end[s]):
            for lane in range(LANES):
                m = months[p, lane]
                if m <= horizon:
                    capex[m, lane] += phase_mw[p] * (
                        facility_ex_copper + copper_intensity * copper[m, lane]
                    )
