"""One block of the market kernel: factors month by month, their statistics and site costs.

Per path and month, in this order: the copula's factor shocks (one normal per
factor, mixed by L; for the Student-t copula a chi-square scale and the map back
to normal scores), the AI-demand factor, each region's electricity (OU, spikes,
capacity charge at each new year, curtailment event), copper (squeeze regime,
short- and long-term factors, jumps), the GPU market regime and each
generation's rent and resale value. A disabled market draws nothing from its own
streams and ignores its copula shocks, so the other factors keep their draws.

Paths run as SIMD lanes (engine/kernels/lanes.py): a group of ``LANES`` paths
advances month by month together, the arithmetic vectorised across the group,
each path drawing from its own streams in the order above. The months of one
group are in engine/kernels/market_steps.py, what is recorded in
engine/kernels/market_records.py.

With a demand side, each group's contracts and finance run right after its
months (engine/kernels/demand_kernel.py ``demand_group``), on the group's
series (AI-demand factor, rents, resale values, energy cost and capex) while
they are still in L2: they never go through memory.

A block adds to its own partial statistics (index ``b`` of the ``b_*``
arrays and tuples); engine/blocks.py runs the blocks on the run's threads (the
GIL released: ``nogil``) and engine/kernels/markets.py merges them.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.kernels.aggregate import group_months
from engine.kernels.demand_kernel import demand_group
from engine.kernels.factors import (
    REGIME_SQUEEZE,
    chi_square,
    markov_step,
    t_to_normal,
)
from engine.kernels.lanes import LANES, exp_lanes
from engine.kernels.market_records import (
    operator_capex,
    operator_energy,
    path_costs,
    record_lanes,
)
from engine.kernels.market_steps import (
    copper_draws,
    electricity_draws,
    resale_lanes,
    start_lanes,
)
from engine.kernels.prefetch import COUNTS_PER_LINE, prefetch_row
from engine.market_layout import (
    DAYS_PER_MONTH,
    G_BETA,
    G_OU_A,
    G_OU_B,
    HOURS_PER_MONTH,
    R_CAP_MU,
    R_CURTAIL_SHARE,
    S_CU_A,
    S_CU_INTENSITY,
    S_CU_JUMP_MEAN,
    S_FACILITY_EX_CU,
    S_GPU_REGIMES,
    S_NU,
    S_PHI,
    S_SQ_PREMIUM,
    S_XI_DRIFT,
)
from engine.rng import next_normal

#: Stream columns (x LANES) of the Student-t scale and the GPU regime (copper: market_steps).
ST_COPULA, ST_GPU_REGIME = 0, 3
#: Trace channels before the copula shocks, and per region (see trace_channels).
TRACE_FIXED, TRACE_PER_REGION = 5, 5


@njit(cache=True, error_model="numpy", nogil=True, _nrt=False)
def market_block(
    b: int,
    per_block: int,
    seed: np.uint64,
    path0: np.uint64,
    energization: np.ndarray,
    switches: np.ndarray,
    scalars: np.ndarray,
    copula_factor: np.ndarray,
    t_table: np.ndarray,
    region: np.ndarray,
    gpu: np.ndarray,
    regime_transition: np.ndarray,
    regime_offset: np.ndarray,
    streams: np.ndarray,
    report: np.ndarray,
    site_region: np.ndarray,
    site_pue: np.ndarray,
    site_operator: np.ndarray,
    site_phase_start: np.ndarray,
    site_phase_end: np.ndarray,
    site_center: np.ndarray,
    phase_mw: np.ndarray,
    phase_curtail_w: np.ndarray,
    phase_scopes: np.ndarray,
    region_phase_start: np.ndarray,
    region_phase_index: np.ndarray,
    b_hist: np.ndarray,
    b_sums: np.ndarray,
    b_squeeze: np.ndarray,
    b_curtail: np.ndarray,
    b_curtailed: np.ndarray,
    b_site_hist: np.ndarray,
    b_site_sums: np.ndarray,
    trace: np.ndarray,
    factor_paths: np.ndarray,
    slots: np.ndarray,
    demand_side: bool,
    dem_in: tuple,
    fin_inputs: tuple,
    b_dem: tuple,
    b_fin: tuple,
    constants: tuple,
    scratch: tuple,
    dem_scratch: tuple,
) -> None:
    """Simulate the paths of block ``b`` and add their statistics to its partial results.

    Block ``b`` holds paths ``b * per_block .. min(n, (b + 1) * per_block) - 1``
    of the chunk, in groups of ``LANES``; each path draws from its own streams
    in the same order as alone, so the statistics do not depend on the blocks.

    Parameters
    ----------
    b : int
        Block index: row ``b`` of the partial statistics.
    per_block : int
        Paths per block, a multiple of ``LANES``.
    seed, path0, energization, switches ... region_phase_index
        As in :func:`engine.blocks.market_statistics`.
    b_hist, b_sums : numpy.ndarray
        Partial statistics by block, month-major: ``int16[n_blocks, T + 1, n_out, B]``
        paths by value bin and ``int64[n_blocks, T + 1, n_out]`` fixed-point sums;
        row ``b`` is added to.
    b_squeeze, b_curtail, b_curtailed, b_site_hist, b_site_sums : numpy.ndarray
        Partial statistics by block: the totals' shapes with a leading block axis
        (``int64``); row ``b`` is added to.
    trace, factor_paths : numpy.ndarray
        As in :func:`engine.blocks.market_statistics`.
    slots : numpy.ndarray
        ``float64[n_blocks, channels, T + 1, LANES]``: the current group's series,
        one slot per block, when ``factor_paths`` is not kept whole; else empty.
    demand_side : bool
        Run each group's demand side and finance right after its months.
    dem_in, fin_inputs : tuple
        The demand side's and the finance's inputs.
    b_dem, b_fin : tuple
        Their partial statistics by block
        (:func:`engine.kernels.demand_blocks.demand_blocks`).
    constants : tuple
        The month constants (:func:`engine.kernels.market_scratch.block_constants`).
    scratch, dem_scratch : tuple
        This block's own scratch arrays
        (:func:`engine.kernels.market_scratch.block_scratch`,
        :func:`engine.kernels.demand_blocks.demand_scratch`).

    Notes
    -----
    Compiled without reference counting (``_nrt=False``): it allocates nothing,
    and no array it passes on or views costs an atomic increment and decrement.
    """
    n_paths = energization.shape[0]
    horizon = b_sums.shape[1] - 1
    n_out, n_bins = b_hist.shape[2], b_hist.shape[3]
    n_regions, n_gens = region.shape[0], gpu.shape[0]
    n_factors = copula_factor.shape[0]
    shock0 = 4 + n_regions + n_gens  # stream of the first factor's shock
    demand_on, elec_on, copper_on, gpu_on, student = (
        switches[0],
        switches[1],
        switches[2],
        switches[3],
        switches[4],
    )
    phi = scalars[S_PHI]
    demand_b = math.sqrt(1.0 - phi * phi) if demand_on else 0.0
    nu = scalars[S_NU]
    cu_a, xi_drift = scalars[S_CU_A], scalars[S_XI_DRIFT]
    sq_premium = scalars[S_SQ_PREMIUM]
    gpu_regimes = scalars[S_GPU_REGIMES] > 0.5
    # the month constants and this block's scratch (engine/kernels/market_scratch.py)
    bin_map, energy_base, fixed_cost, rent_trend, resale_base = constants[0:5]
    resale_log_factor, resale_factor, unit_elasticity, step_factor = constants[5:9]
    unhedged, spike_p0, no_series = constants[9:12]
    tracing = trace.shape[0] > 0
    keeping = factor_paths.shape[1] > 0
    full = factor_paths.shape[0] > 0
    finance = keeping and factor_paths.shape[1] > 1 + n_gens
    ch_energy = 1 + 2 * n_gens
    n_ops = (factor_paths.shape[1] - ch_energy) // 2 if finance else 0
    copper_p0 = math.exp(-scalars[S_CU_JUMP_MEAN])
    rng, eps, z, scale, demand, x_ou, y_spike, charge, log_charge = scratch[0:9]
    cum, spent, curtailed, n_curtailed, event, spikes, chi, xi, own = scratch[9:18]
    jumps, squeeze, switch, copper, gpu_regime, y_gpu, launch = scratch[18:25]
    log_v, value, price, uniform, fixed, bins, months_lanes, bits = scratch[25:33]
    recs = (bins, fixed, fixed.view(np.int64))
    pow2 = bits.view(np.float64)
    first, last = b * per_block, min(n_paths, (b + 1) * per_block)
    for i0 in range(first, last, LANES):
        n_active = min(LANES, last - i0)
        # the series kept for the demand side and the finance, lanes innermost
        # (contiguous lane stores): the group's slice of factor_paths, or the
        # block's slot (a run: the demand side reads it right after the months)
        if full:
            series = factor_paths[i0 // LANES]
        elif keeping:
            series = slots[b]
        else:
            series = no_series
        for c in range(series.shape[0]):
            for lane in range(LANES):
                series[c, 0, lane] = 0.0
        start_lanes(rng, seed, path0 + np.uint64(i0), n_active, streams, scalars, region, gpu,
            copper_on, gpu_on, horizon, eps, demand, chi, xi, gpu_regime, squeeze, switch,
            n_curtailed, x_ou, y_spike, charge, log_charge, y_gpu, launch)  # fmt: skip
        group_months(energization, i0, n_active, horizon, months_lanes)  # > T: never
        for t in range(1, horizon + 1):
            # the month's histogram rows, requested now: counted after the draws
            for row in range(n_out):
                for line in range(0, n_bins, COUNTS_PER_LINE):
                    prefetch_row(b_hist, (b, t, row, line))
            # -- copula shocks
            for f in range(n_factors):
                for lane in range(n_active):
                    eps[f, lane] = next_normal(rng, (shock0 + f) * LANES + lane)
            if student:
                for lane in range(n_active):
                    scale[lane] = math.sqrt(nu / chi_square(rng, ST_COPULA * LANES + lane, nu))
            for f in range(n_factors):
                for lane in range(LANES):
                    z[f, lane] = 0.0
                for k in range(f + 1):
                    coef = copula_factor[f, k]
                    for lane in range(LANES):
                        z[f, lane] += coef * eps[k, lane]
                if student:
                    for lane in range(n_active):
                        z[f, lane] = t_to_normal(z[f, lane] * scale[lane], t_table)
            # -- AI demand
            for lane in range(LANES):
                demand[lane] = phi * demand[lane] + demand_b * z[0, lane]
            if keeping:
                for lane in range(LANES):
                    series[0, t, lane] = demand[lane]
            # -- electricity
            new_year = t > 1 and (t - 1) % 12 == 0
            for r in range(n_regions):
                for lane in range(LANES):
                    event[lane] = False
                if elec_on:
                    electricity_draws(rng, (4 + r) * LANES, r, region, spike_p0[r], new_year,
                        n_active, z, 1 + r, x_ou, y_spike, log_charge, charge, spikes, event,
                        uniform)  # fmt: skip
                elif new_year:
                    for lane in range(LANES):
                        log_charge[r, lane] += region[r, R_CAP_MU]
                        charge[r, lane] = math.exp(log_charge[r, lane])
                base = energy_base[r, t]
                for lane in range(LANES):
                    log_v[lane] = base + x_ou[r, lane] + y_spike[r, lane]
                exp_lanes(log_v, price, bits, pow2)
                hedged, open_share = fixed_cost[r, t], unhedged[r]
                for lane in range(LANES):
                    value[lane] = hedged + open_share * price[lane]
                # binned in ln energy price: all-in is increasing in it (no log needed)
                row = report[2 * r]
                record_lanes(b_hist, b_sums, b, row, t, log_v, value, n_active, bin_map, recs)
                row = report[2 * r + 1]
                record_lanes(b_hist, b_sums, b, row, t, log_charge[r], charge[r], n_active,
                    bin_map, recs)  # fmt: skip
                for lane in range(n_active):
                    if event[lane]:
                        b_curtail[b, r, t] += 1
                        curtailed[r, lane, n_curtailed[r, lane]] = t
                        n_curtailed[r, lane] += 1
                kept = 1.0 - region[r, R_CURTAIL_SHARE]
                for lane in range(LANES):
                    available = kept if event[lane] else 1.0
                    cum[r, t, lane] = cum[r, t - 1, lane] + (
                        HOURS_PER_MONTH * value[lane] * available + DAYS_PER_MONTH * charge[r, lane]
                    )
                if finance:  # the month's cost, once per region (not per phase)
                    for lane in range(LANES):
                        spent[r, lane] = cum[r, t, lane] - cum[r, t - 1, lane]
                if tracing:
                    c = TRACE_FIXED + n_factors + TRACE_PER_REGION * r
                    for lane in range(n_active):
                        trace[i0 + lane, c, t] = math.log(value[lane])
                        trace[i0 + lane, c + 1, t] = log_v[lane]
                        trace[i0 + lane, c + 2, t] = charge[r, lane]
                        trace[i0 + lane, c + 3, t] = event[lane]
                        trace[i0 + lane, c + 4, t] = spikes[lane] if elec_on else 0
            if finance:  # the operators' energy cost in t, while it is in L1
                operator_energy(series, ch_energy, n_ops, t, months_lanes, spent, site_region,
                    site_pue, site_operator, site_phase_start, site_phase_end,
                    phase_mw)  # fmt: skip
            # -- copper
            if copper_on:
                copper_draws(rng, t, n_active, scalars, copper_p0, z, 1 + n_regions, chi, xi, own,
                    jumps, squeeze, switch, uniform)  # fmt: skip
            else:
                for lane in range(LANES):
                    chi[lane] = cu_a * chi[lane]
                    xi[lane] += xi_drift
            for lane in range(LANES):
                log_v[lane] = chi[lane] + xi[lane]
                if squeeze[lane] == REGIME_SQUEEZE:
                    log_v[lane] += sq_premium
            for lane in range(n_active):
                b_squeeze[b, t] += squeeze[lane]
            exp_lanes(log_v, value, bits, pow2)
            for lane in range(LANES):
                copper[t, lane] = value[lane]
            row = report[2 * n_regions]
            record_lanes(b_hist, b_sums, b, row, t, log_v, value, n_active, bin_map, recs)
            if tracing:
                for lane in range(n_active):
                    trace[i0 + lane, 0, t] = demand[lane]
                    trace[i0 + lane, 1, t] = squeeze[lane]
                    trace[i0 + lane, 3, t] = jumps[lane] if copper_on else 0
                    trace[i0 + lane, 4, t] = log_v[lane]
                    for f in range(n_factors):
                        trace[i0 + lane, TRACE_FIXED + f, t] = z[f, lane]
            # -- GPU market
            if gpu_regimes:
                for lane in range(n_active):
                    gpu_regime[lane] = markov_step(
                        rng, ST_GPU_REGIME * LANES + lane, gpu_regime[lane], regime_transition
                    )
            for g in range(n_gens):
                ou_a = gpu[g, G_OU_A]
                ou_b = gpu[g, G_OU_B] if gpu_on else 0.0
                zg = 2 + n_regions + g
                trend, beta = rent_trend[g, t], gpu[g, G_BETA]
                for lane in range(LANES):
                    y_gpu[g, lane] = ou_a * y_gpu[g, lane] + ou_b * z[zg, lane]
                    log_v[lane] = trend + beta * demand[lane] + y_gpu[g, lane]
                if gpu_regimes:
                    for lane in range(LANES):
                        log_v[lane] += regime_offset[gpu_regime[lane]]
                exp_lanes(log_v, value, bits, pow2)
                if keeping:
                    for lane in range(LANES):
                        series[1 + g, t, lane] = value[lane]
                row = report[2 * n_regions + 1 + 2 * g]
                record_lanes(b_hist, b_sums, b, row, t, log_v, value, n_active, bin_map, recs)
                if tracing:
                    c = TRACE_FIXED + n_factors + TRACE_PER_REGION * n_regions + 2 * g
                    for lane in range(n_active):
                        trace[i0 + lane, c, t] = log_v[lane]
                resale_lanes(t, g, gpu, launch, trend, resale_base, resale_log_factor,
                    resale_factor, step_factor, unit_elasticity, log_v, value, bits,
                    pow2)  # fmt: skip
                if finance:
                    for lane in range(LANES):
                        series[1 + n_gens + g, t, lane] = value[lane]
                row = report[2 * n_regions + 2 + 2 * g]
                record_lanes(b_hist, b_sums, b, row, t, log_v, value, n_active, bin_map, recs)
                if tracing:
                    for lane in range(n_active):
                        trace[i0 + lane, c + 1, t] = log_v[lane]
            if tracing:
                for lane in range(n_active):
                    trace[i0 + lane, 2, t] = gpu_regime[lane]
        # -- what each path's markets cost each site, and its curtailed MW
        for lane in range(n_active):
            path_costs(b, lane, months_lanes, copper, cum, curtailed, n_curtailed,
                scalars[S_CU_INTENSITY], scalars[S_FACILITY_EX_CU], site_region, site_pue,
                site_phase_start, site_phase_end, site_center, phase_mw, phase_curtail_w,
                phase_scopes, region_phase_start, region_phase_index, b_site_hist, b_site_sums,
                b_curtailed)  # fmt: skip
        if finance:
            operator_capex(series, ch_energy + n_ops, n_ops, months_lanes, copper,
                scalars[S_CU_INTENSITY], scalars[S_FACILITY_EX_CU], site_operator, site_phase_start,
                site_phase_end, phase_mw)  # fmt: skip
        if demand_side:
            demand_group(b, i0, n_active, seed, path0, months_lanes, series, dem_in,
                         fin_inputs, dem_scratch, b_dem, b_fin)  # fmt: skip
