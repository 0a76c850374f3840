"""The market path loop: factors month by month, their statistics and site costs.

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

Everything accumulated is an integer (counts, fixed-point sums), so per-thread
partial results merge to the same bits in any order.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from engine.kernels.aggregate import add_block, group_months
from engine.kernels.demand_blocks import demand_blocks, demand_scratch, merge_blocks
from engine.kernels.demand_kernel import demand_group
from engine.kernels.factors import (
    REGIME_SQUEEZE,
    chi_square,
    markov_step,
    t_to_normal,
)
from engine.kernels.lanes import BLOCK_PATHS, LANES, exp_lanes
from engine.kernels.market_records import (
    N_SITE_SUMS,
    SITE_CAPEX,
    SITE_ENERGY,
    operator_capex,
    operator_energy,
    path_costs,
    record_lanes,
)
from engine.kernels.market_steps import (
    copper_draws,
    electricity_draws,
    month_constants,
    resale_lanes,
    start_lanes,
)
from engine.market_layout import (
    DAYS_PER_MONTH,
    G_BETA,
    G_OU_A,
    G_OU_B,
    HOURS_PER_MONTH,
    R_CAP_MU,
    R_CURTAIL_SHARE,
    R_PPA_SHARE,
    R_SPIKE_MEAN,
    S_CU_A,
    S_CU_INTENSITY,
    S_CU_JUMP_MEAN,
    S_FACILITY_EX_CU,
    S_FIRST_MOY,
    S_GPU_REGIMES,
    S_NU,
    S_PHI,
    S_SQ_PREMIUM,
    S_XI_DRIFT,
)
from engine.rng import next_normal

__all__ = ["N_SITE_SUMS", "SITE_CAPEX", "SITE_ENERGY", "market_statistics"]

#: Stream columns (x LANES) of the Student-t scale and the GPU regime (copper: market_steps).
ST_COPULA, ST_GPU_REGIME = 0, 3
#: Trace channels before the copula shocks, and per region (see trace_channels).
TRACE_FIXED, TRACE_PER_REGION = 5, 5


@njit(cache=True, parallel=True)
def market_statistics(
    seed: np.uint64,
    path0: np.uint64,
    energization: np.ndarray,
    switches: np.ndarray,
    scalars: np.ndarray,
    copula_factor: np.ndarray,
    t_table: np.ndarray,
    region: np.ndarray,
    season: np.ndarray,
    ppa_price: np.ndarray,
    gpu: np.ndarray,
    fire_sale_keep: np.ndarray,
    regime_transition: np.ndarray,
    regime_offset: np.ndarray,
    streams: np.ndarray,
    center: np.ndarray,
    bin_scale: np.ndarray,
    unit: np.ndarray,
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
    n_blocks: int,
    hist: np.ndarray,
    sums: np.ndarray,
    squeeze_months: np.ndarray,
    curtail_months: np.ndarray,
    curtailed_w: np.ndarray,
    site_hist: np.ndarray,
    site_sums: np.ndarray,
    trace: np.ndarray,
    factor_paths: np.ndarray,
    demand_side: bool,
    dem_in: tuple,
    fin_inputs: tuple,
    dem_out: tuple,
    fin_outputs: tuple,
) -> None:
    """Simulate the markets of paths ``path0 .. path0 + n - 1`` and add their statistics.

    Paths run in groups of ``LANES`` (engine/kernels/lanes.py): the month's
    arithmetic is vectorised across the group, while every draw comes from the
    path's own streams in the same order as for a path run alone, so the
    statistics do not depend on the grouping, the blocks or the thread count.

    Parameters
    ----------
    seed, path0 : numpy.uint64
        Run seed and global id of the first path of the chunk.
    energization : numpy.ndarray
        ``float64[n, P]`` the same paths' energization times (months).
    switches ... report
        The fields of :class:`engine.market_layout.MarketArrays`, in that order.
    site_region, site_pue, site_operator, site_phase_start, site_phase_end : numpy.ndarray
        Region index, PUE, operator index and phase range of each site.
    site_center : numpy.ndarray
        ``float64[S, 2]`` ln central capex ($) and energy cost per month ($): bin centres.
    phase_mw, phase_curtail_w : numpy.ndarray
        IT MW of each phase, and the W a curtailment event takes from it (integer).
    phase_scopes : numpy.ndarray
        ``int64[P, 3]`` the reporting scopes holding each phase (total, operator, site).
    region_phase_start, region_phase_index : numpy.ndarray
        CSR list of the phases of each region.
    n_blocks : int
        Independent partial results computed in parallel (any value: same result;
        raised so that no block holds more than ``BLOCK_PATHS`` paths).
    hist, sums : numpy.ndarray
        ``int64[n_out, T + 1, B]`` paths by value bin and ``int64[n_out, T + 1]``
        fixed-point sums of each reported factor by month (accumulated).
    squeeze_months, curtail_months : numpy.ndarray
        ``int64[T + 1]`` paths in squeeze, ``int64[R, T + 1]`` paths with a
        curtailment event, by month (accumulated).
    curtailed_w : numpy.ndarray
        ``int64[n_scopes, T + 2]`` summed W curtailed by scope and month (accumulated).
    site_hist, site_sums : numpy.ndarray
        ``int64[S, 2, B_site]`` and ``int64[S, N_SITE_SUMS]`` (accumulated).
    trace : numpy.ndarray
        ``float64[n, K, T + 1]`` written with per-path factor paths (channels of
        :func:`engine.market_arrays.trace_channels`), or ``float64[0, 0, 0]``.
    factor_paths : numpy.ndarray
        ``float64[ceil(n / LANES), 1 + G, T + 1, LANES]`` written with each
        path's AI-demand factor and each generation's rent ($/GPU-hr) by month
        (for the demand side), path ``i`` in group ``i // LANES``, lane
        ``i % LANES``; or ``float64[.., 1 + 2 G + 2 O, T + 1, LANES]``: also each
        generation's resale value ($/GPU), each operator's energy cost and
        facility capex ($/month, :func:`engine.kernels.market_records.operator_energy`
        and :func:`engine.kernels.market_records.operator_capex`)
        for the finance; or ``float64[0, channels, T + 1, LANES]``: the same
        series, but only the current group's, in one slot per block (in L2);
        or ``float64[0, 0, 0, 0]``. Month 0 is 0.
    demand_side : bool
        Run each group's demand side and finance right after its markets
        (:func:`engine.kernels.demand_kernel.demand_group`, on its series).
    dem_in, fin_inputs, dem_out, fin_outputs : tuple
        The demand side's and the finance's inputs and statistics
        (:meth:`engine.demand_stats.DemandStats.kernel_args`; with ``demand_side``
        off, :meth:`engine.demand_stats.DemandStats.absent`); accumulated.
    """
    n_paths = energization.shape[0]
    n_phases = energization.shape[1]
    horizon = sums.shape[1] - 1
    n_out, n_bins = hist.shape[0], hist.shape[2]
    n_regions, n_gens = region.shape[0], gpu.shape[0]
    n_factors = copula_factor.shape[0]
    n_streams = streams.shape[0]
    shock0 = 4 + n_regions + n_gens  # stream of the first factor's shock
    n_scopes, width = curtailed_w.shape
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
    first_moy = int(scalars[S_FIRST_MOY])
    # by month and factor: bin = ln v x scale + shift; fixed-point units per value unit
    bin_map = np.empty((horizon + 1, n_out, 3))
    for t in range(horizon + 1):
        for row in range(n_out):
            bin_map[t, row, 1] = bin_scale[row, t]
            bin_map[t, row, 0] = 0.5 * n_bins - center[row, t] * bin_scale[row, t]
            bin_map[t, row, 2] = 1.0 / unit[row]
    (
        energy_base,
        fixed_cost,
        rent_trend,
        resale_base,
        resale_log_factor,
        resale_factor,
        unit_elasticity,
        step_factor,
    ) = month_constants(region, season, ppa_price, gpu, fire_sale_keep, first_moy, horizon)
    unhedged = 1.0 - region[:, R_PPA_SHARE]
    tracing = trace.shape[0] > 0
    keeping = factor_paths.shape[1] > 0
    full = factor_paths.shape[0] > 0
    finance = keeping and factor_paths.shape[1] > 1 + n_gens
    ch_energy = 1 + 2 * n_gens
    n_ops = (factor_paths.shape[1] - ch_energy) // 2 if finance else 0
    spike_p0 = np.exp(-region[:, R_SPIKE_MEAN])
    copper_p0 = math.exp(-scalars[S_CU_JUMP_MEAN])
    # int16 partial counts (at most BLOCK_PATHS paths a block): the histogram stays in L2
    n_blocks = max(n_blocks, (n_paths + BLOCK_PATHS - 1) // BLOCK_PATHS)
    b_hist = np.zeros((n_blocks, horizon + 1, n_out, n_bins), dtype=np.int16)
    b_sums = np.zeros((n_blocks, horizon + 1, n_out), dtype=np.int64)
    b_squeeze = np.zeros((n_blocks, horizon + 1), dtype=np.int64)
    b_curtail = np.zeros((n_blocks, n_regions, horizon + 1), dtype=np.int64)
    b_curtailed = np.zeros((n_blocks, n_scopes, width), dtype=np.int64)
    b_site_hist = np.zeros(
        (n_blocks, site_hist.shape[0], site_hist.shape[1], site_hist.shape[2]), dtype=np.int64
    )
    b_site_sums = np.zeros((n_blocks, site_sums.shape[0], site_sums.shape[1]), dtype=np.int64)
    # blocks start on a group boundary: group i0 // LANES of factor_paths is lanes i0 ..
    per_block = ((n_paths + n_blocks - 1) // n_blocks + LANES - 1) // LANES * LANES
    no_series = np.zeros((0, 0, LANES))
    # the series of each block's current group (kept only for the demand side)
    slots = np.zeros((n_blocks if keeping and not full else 0, factor_paths.shape[1],
                      horizon + 1, LANES))  # fmt: skip
    d = demand_blocks(n_blocks if demand_side else 0, dem_out, fin_outputs)
    # flat tuples built here: a tuple returned by a call fails in the prange body
    b_dem = (d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7])
    b_fin = (d[8], d[9], d[10], d[11], d[12], d[13], d[14])
    for b in prange(n_blocks):
        # generator states: column stream x LANES + lane
        rng = np.zeros((4, n_streams * LANES), dtype=np.uint64)
        eps = np.zeros((n_factors, LANES))
        z = np.zeros((n_factors, LANES))
        scale = np.ones(LANES)
        demand = np.empty(LANES)
        x_ou = np.empty((n_regions, LANES))
        y_spike = np.empty((n_regions, LANES))
        charge = np.empty((n_regions, LANES))
        log_charge = np.empty((n_regions, LANES))
        cum = np.zeros((n_regions, horizon + 1, LANES))  # $ per utility MW, months 1..t
        spent = np.zeros((n_regions, LANES))  # $ per utility MW in month t (cum difference)
        curtailed = np.zeros((n_regions, LANES, horizon + 1), dtype=np.int64)  # event months
        n_curtailed = np.zeros((n_regions, LANES), dtype=np.int64)
        event = np.zeros(LANES, dtype=np.bool_)
        spikes = np.zeros(LANES, dtype=np.int64)
        chi = np.empty(LANES)
        xi = np.empty(LANES)
        own = np.zeros(LANES)
        jumps = np.zeros(LANES, dtype=np.int64)
        squeeze = np.zeros(LANES, dtype=np.int64)
        switch = np.empty(LANES, dtype=np.int64)  # month of the squeeze regime's next switch
        copper = np.empty((horizon + 1, LANES))
        gpu_regime = np.ones(LANES, dtype=np.int64)
        y_gpu = np.empty((n_gens, LANES))
        launch = np.empty((n_gens, LANES), dtype=np.int64)
        # lane scratch: ln values and values recorded, bins, fixed-point values, exp
        log_v = np.zeros(LANES)
        value = np.zeros(LANES)
        price = np.zeros(LANES)
        uniform = np.zeros(LANES)  # uniforms of the lanes
        scratch = np.zeros((2, LANES), dtype=np.int64)  # bins, fixed-point values
        months_lanes = np.empty((n_phases, LANES), dtype=np.int64)  # energization
        bits = np.zeros(LANES, dtype=np.int64)
        pow2 = bits.view(np.float64)
        dem_scratch = demand_scratch(horizon, dem_in, fin_inputs, b_dem)
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
            start_lanes(
                rng,
                seed,
                path0 + np.uint64(i0),
                n_active,
                streams,
                scalars,
                region,
                gpu,
                copper_on,
                gpu_on,
                horizon,
                eps,
                demand,
                chi,
                xi,
                gpu_regime,
                squeeze,
                switch,
                n_curtailed,
                x_ou,
                y_spike,
                charge,
                log_charge,
                y_gpu,
                launch,
            )
            group_months(energization, i0, n_active, horizon, months_lanes)  # > T: never
            for t in range(1, horizon + 1):
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
                        electricity_draws(
                            rng,
                            (4 + r) * LANES,
                            r,
                            region,
                            spike_p0[r],
                            new_year,
                            n_active,
                            z,
                            1 + r,
                            x_ou,
                            y_spike,
                            log_charge,
                            charge,
                            spikes,
                            event,
                            uniform,
                        )
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
                    record_lanes(
                        b_hist, b_sums, b, row, t, log_v, value, n_active, bin_map, scratch
                    )
                    row = report[2 * r + 1]
                    record_lanes(
                        b_hist,
                        b_sums,
                        b,
                        row,
                        t,
                        log_charge[r],
                        charge[r],
                        n_active,
                        bin_map,
                        scratch,
                    )
                    for lane in range(n_active):
                        if event[lane]:
                            b_curtail[b, r, t] += 1
                            curtailed[r, lane, n_curtailed[r, lane]] = t
                            n_curtailed[r, lane] += 1
                    kept = 1.0 - region[r, R_CURTAIL_SHARE]
                    for lane in range(LANES):
                        available = kept if event[lane] else 1.0
                        cum[r, t, lane] = cum[r, t - 1, lane] + (
                            HOURS_PER_MONTH * value[lane] * available
                            + DAYS_PER_MONTH * charge[r, lane]
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
                    operator_energy(
                        series,
                        ch_energy,
                        n_ops,
                        t,
                        months_lanes,
                        spent,
                        site_region,
                        site_pue,
                        site_operator,
                        site_phase_start,
                        site_phase_end,
                        phase_mw,
                    )
                # -- copper
                if copper_on:
                    copper_draws(
                        rng,
                        t,
                        n_active,
                        scalars,
                        copper_p0,
                        z,
                        1 + n_regions,
                        chi,
                        xi,
                        own,
                        jumps,
                        squeeze,
                        switch,
                        uniform,
                    )
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
                record_lanes(b_hist, b_sums, b, row, t, log_v, value, n_active, bin_map, scratch)
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
                    record_lanes(
                        b_hist, b_sums, b, row, t, log_v, value, n_active, bin_map, scratch
                    )
                    if tracing:
                        c = TRACE_FIXED + n_factors + TRACE_PER_REGION * n_regions + 2 * g
                        for lane in range(n_active):
                            trace[i0 + lane, c, t] = log_v[lane]
                    resale_lanes(
                        t,
                        g,
                        gpu,
                        launch,
                        trend,
                        resale_base,
                        resale_log_factor,
                        resale_factor,
                        step_factor,
                        unit_elasticity,
                        log_v,
                        value,
                        bits,
                        pow2,
                    )
                    if finance:
                        for lane in range(LANES):
                            series[1 + n_gens + g, t, lane] = value[lane]
                    row = report[2 * n_regions + 2 + 2 * g]
                    record_lanes(
                        b_hist, b_sums, b, row, t, log_v, value, n_active, bin_map, scratch
                    )
                    if tracing:
                        for lane in range(n_active):
                            trace[i0 + lane, c + 1, t] = log_v[lane]
                if tracing:
                    for lane in range(n_active):
                        trace[i0 + lane, 2, t] = gpu_regime[lane]
            # -- what each path's markets cost each site, and its curtailed MW
            for lane in range(n_active):
                path_costs(
                    b,
                    lane,
                    months_lanes,
                    copper,
                    cum,
                    curtailed,
                    n_curtailed,
                    scalars[S_CU_INTENSITY],
                    scalars[S_FACILITY_EX_CU],
                    site_region,
                    site_pue,
                    site_phase_start,
                    site_phase_end,
                    site_center,
                    phase_mw,
                    phase_curtail_w,
                    phase_scopes,
                    region_phase_start,
                    region_phase_index,
                    b_site_hist,
                    b_site_sums,
                    b_curtailed,
                )
            if finance:
                operator_capex(
                    series,
                    ch_energy + n_ops,
                    n_ops,
                    months_lanes,
                    copper,
                    scalars[S_CU_INTENSITY],
                    scalars[S_FACILITY_EX_CU],
                    site_operator,
                    site_phase_start,
                    site_phase_end,
                    phase_mw,
                )
            if demand_side:
                demand_group(b, i0, n_active, seed, path0, months_lanes, series, dem_in,
                             fin_inputs, dem_scratch, b_dem, b_fin)  # fmt: skip
    if demand_side:
        merge_blocks(b_dem, b_fin, dem_out, fin_outputs)
    for b in range(n_blocks):
        for t in range(horizon + 1):
            for row in range(n_out):
                sums[row, t] += b_sums[b, t, row]
                for k in range(n_bins):
                    hist[row, t, k] += b_hist[b, t, row, k]
        add_block(squeeze_months, b_squeeze[b])
        add_block(curtail_months, b_curtail[b])
        add_block(curtailed_w, b_curtailed[b])
        add_block(site_hist, b_site_hist[b])
        add_block(site_sums, b_site_sums[b])
