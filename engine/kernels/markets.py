"""The market path loop: factors month by month, their statistics and site costs.

Per path and month, in this order: the copula's factor shocks (one normal per
factor, mixed by L; for the Student-t copula a chi-square scale and the map back
to normal scores), the AI-demand factor, each region's electricity (OU, spikes,
capacity charge at each new year, curtailment event), copper (squeeze regime,
short- and long-term factors, jumps), the GPU market regime and each
generation's rent and resale value. A disabled market draws nothing from its own
streams and ignores its copula shocks, so the other factors keep their draws.

Everything accumulated is an integer (counts, fixed-point sums), so per-thread
partial results merge to the same bits in any order.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from engine.kernels.aggregate import _month
from engine.kernels.factors import (
    NEVER,
    REGIME_SQUEEZE,
    chi_square,
    markov_step,
    poisson_count,
    squeeze_spell,
    squeeze_start,
    t_to_normal,
)
from engine.market_arrays import (
    DAYS_PER_MONTH,
    G_AGE0,
    G_BETA,
    G_DRIFT,
    G_ELASTICITY,
    G_LN_KEEP,
    G_LN_NEW,
    G_LN_RENT,
    G_LN_STEP,
    G_OU_A,
    G_OU_B,
    G_SUCC_HI,
    G_SUCC_LO,
    HOURS_PER_MONTH,
    R_ADDER,
    R_CAP0,
    R_CAP_MU,
    R_CAP_SIGMA,
    R_CURTAIL_P,
    R_CURTAIL_SHARE,
    R_LN_PRICE,
    R_OU_A,
    R_OU_B,
    R_PPA_SHARE,
    R_SPIKE_DECAY,
    R_SPIKE_MEAN,
    R_SPIKE_MU,
    R_SPIKE_SD,
    S_CHI0,
    S_CU_A,
    S_CU_B,
    S_CU_INTENSITY,
    S_CU_JUMP_MEAN,
    S_CU_JUMP_MU,
    S_CU_JUMP_SD,
    S_CU_RHO,
    S_D0,
    S_FACILITY_EX_CU,
    S_FIRST_MOY,
    S_GPU_REGIMES,
    S_NU,
    S_PHI,
    S_SQ_ENTER,
    S_SQ_EXIT,
    S_SQ_INITIAL,
    S_SQ_PREMIUM,
    S_XI0,
    S_XI_DRIFT,
    S_XI_SD,
    SITE_HALF_WIDTH,
)
from engine.rng import next_normal, next_uniform, seed_stream

__all__ = ["market_statistics"]

ST_COPULA, ST_COPPER, ST_SQUEEZE, ST_GPU_REGIME = 0, 1, 2, 3
#: Trace channels before the copula shocks, and per region (see trace_channels).
TRACE_FIXED, TRACE_PER_REGION = 5, 5
#: Site statistics: histograms of capex and of energy cost per month in service.
SITE_CAPEX, SITE_ENERGY = 0, 1
#: Site sums: capex ($k), copper cost ($k), energy cost over the horizon ($k),
#: energy cost per month in service ($), paths built within the horizon.
N_SITE_SUMS = 5


@njit(cache=True, inline="always")
def _bin(log_value: float, shift: float, scale: float, n_bins: int) -> int:
    x = log_value * scale + shift
    if not x >= 0.0:  # also -inf (a value of 0) and nan
        return 0
    if x >= n_bins - 1:
        return n_bins - 1
    return int(x)


@njit(cache=True, inline="always")
def _record(
    hist: np.ndarray,
    sums: np.ndarray,
    b: int,
    row: int,
    t: int,
    log_value: float,
    value: float,
    shifts: np.ndarray,
    scales: np.ndarray,
    per_unit: np.ndarray,
) -> None:
    if row < 0:
        return
    # month-major partial results: one path's records walk memory in order
    hist[b, t, row, _bin(log_value, shifts[t, row], scales[t, row], hist.shape[3])] += 1
    sums[b, t, row] += np.int64(value * per_unit[row] + 0.5)


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
) -> None:
    """Simulate the markets of paths ``path0 .. path0 + n - 1`` and add their statistics.

    Parameters
    ----------
    seed, path0 : numpy.uint64
        Run seed and global id of the first path of the chunk.
    energization : numpy.ndarray
        ``float64[n, P]`` the same paths' energization times (months).
    switches ... report
        The fields of :class:`engine.market_arrays.MarketArrays`, in that order.
    site_region, site_pue, site_phase_start, site_phase_end : numpy.ndarray
        Region index, PUE and phase range of each site.
    site_center : numpy.ndarray
        ``float64[S, 2]`` ln central capex ($) and energy cost per month ($): bin centres.
    phase_mw, phase_curtail_w : numpy.ndarray
        IT MW of each phase, and the W a curtailment event takes from it (integer).
    phase_scopes : numpy.ndarray
        ``int64[P, 3]`` the reporting scopes holding each phase (total, operator, site).
    region_phase_start, region_phase_index : numpy.ndarray
        CSR list of the phases of each region.
    n_blocks : int
        Independent partial results computed in parallel (any value: same result).
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
    """
    n_paths = energization.shape[0]
    n_phases = energization.shape[1]
    horizon = sums.shape[1] - 1
    n_out, n_bins = hist.shape[0], hist.shape[2]
    n_regions, n_gens, n_sites = region.shape[0], gpu.shape[0], site_region.shape[0]
    n_factors = copula_factor.shape[0]
    shock0 = 4 + n_regions + n_gens  # stream row of the first factor's shock
    n_scopes, width = curtailed_w.shape
    demand_on, elec_on, copper_on, gpu_on, student = (
        switches[0],
        switches[1],
        switches[2],
        switches[3],
        switches[4],
    )
    phi = scalars[S_PHI]
    demand_b = math.sqrt(1.0 - phi * phi)
    nu = scalars[S_NU]
    cu_rho = scalars[S_CU_RHO]
    cu_own = math.sqrt(1.0 - cu_rho * cu_rho)
    sq_initial = int(scalars[S_SQ_INITIAL])
    sq_enter, sq_exit = scalars[S_SQ_ENTER], scalars[S_SQ_EXIT]
    gpu_regimes = scalars[S_GPU_REGIMES] > 0.5
    first_moy = int(scalars[S_FIRST_MOY])
    per_unit = 1.0 / unit
    site_scale = site_hist.shape[2] / (2.0 * SITE_HALF_WIDTH)
    scales = np.ascontiguousarray(bin_scale.T)  # [T + 1, n_out]
    shifts = 0.5 * n_bins - np.ascontiguousarray(center.T) * scales  # bin = ln v x scale + shift
    # per month: ln(level) + seasonality, the hedged and delivery part of the all-in
    # price; the unhedged share; each generation's ln rent trend
    energy_base = np.empty((n_regions, horizon + 1))
    fixed_cost = np.empty((n_regions, horizon + 1))
    unhedged = 1.0 - region[:, R_PPA_SHARE]
    for r in range(n_regions):
        for t in range(horizon + 1):
            moy = (max(t, 1) - 1 + first_moy) % 12
            year = max(t - 1, 0) // 12
            energy_base[r, t] = region[r, R_LN_PRICE] + season[r, moy]
            fixed_cost[r, t] = region[r, R_PPA_SHARE] * ppa_price[r, year] + region[r, R_ADDER]
    rent_trend = np.empty((n_gens, horizon + 1))
    for g in range(n_gens):
        for t in range(horizon + 1):
            rent_trend[g, t] = gpu[g, G_LN_RENT] + gpu[g, G_DRIFT] * t
    tracing = trace.shape[0] > 0
    # resale: ln new + age x ln(1 - decay) + ln(1 - fire-sale impact), by generation and
    # month; with elasticity 1, resale = rent x exp(that - ln trend) (one product per month)
    resale_base = np.empty((n_gens, horizon + 1))
    resale_log_factor = np.empty((n_gens, horizon + 1))
    resale_factor = np.empty((n_gens, horizon + 1))
    unit_elasticity = np.empty(n_gens, dtype=np.bool_)
    step_factor = np.empty(n_gens)
    for g in range(n_gens):
        unit_elasticity[g] = gpu[g, G_ELASTICITY] == 1.0
        step_factor[g] = math.exp(gpu[g, G_LN_STEP])
        for t in range(horizon + 1):
            keep = fire_sale_keep[g, t]
            base = gpu[g, G_LN_NEW] + (gpu[g, G_AGE0] + t / 12.0) * gpu[g, G_LN_KEEP]
            base += math.log(keep) if keep > 0.0 else -math.inf
            resale_base[g, t] = base
            resale_log_factor[g, t] = base - (gpu[g, G_LN_RENT] + gpu[g, G_DRIFT] * t)
            resale_factor[g, t] = math.exp(resale_log_factor[g, t])
    spike_p0 = np.exp(-region[:, R_SPIKE_MEAN])
    copper_p0 = math.exp(-scalars[S_CU_JUMP_MEAN])
    # int32 partial counts (a chunk holds < 2**31 paths): the histogram stays in L2
    b_hist = np.zeros((n_blocks, horizon + 1, n_out, n_bins), dtype=np.int32)
    b_sums = np.zeros((n_blocks, horizon + 1, n_out), dtype=np.int64)
    b_squeeze = np.zeros((n_blocks, horizon + 1), dtype=np.int64)
    b_curtail = np.zeros((n_blocks, n_regions, horizon + 1), dtype=np.int64)
    b_curtailed = np.zeros((n_blocks, n_scopes, width), dtype=np.int64)
    b_site_hist = np.zeros(
        (n_blocks, site_hist.shape[0], site_hist.shape[1], site_hist.shape[2]), dtype=np.int64
    )
    b_site_sums = np.zeros((n_blocks, site_sums.shape[0], site_sums.shape[1]), dtype=np.int64)
    per_block = (n_paths + n_blocks - 1) // n_blocks
    for b in prange(n_blocks):
        rng = np.empty((streams.shape[0], 4), dtype=np.uint64)
        eps = np.empty(n_factors)
        z = np.empty(n_factors)
        x_ou = np.empty(n_regions)
        y_spike = np.empty(n_regions)
        charge = np.empty(n_regions)
        log_charge = np.empty(n_regions)
        cum = np.zeros((n_regions, horizon + 1))  # $ per utility MW, months 1..t
        curtailed = np.zeros((n_regions, horizon + 1), dtype=np.int64)  # months of events
        n_curtailed = np.zeros(n_regions, dtype=np.int64)
        copper = np.empty(horizon + 1)
        y_gpu = np.empty(n_gens)
        launch = np.empty(n_gens, dtype=np.int64)
        months = np.empty(n_phases, dtype=np.int64)
        for i in range(b * per_block, min(n_paths, (b + 1) * per_block)):
            path = path0 + np.uint64(i)
            for k in range(streams.shape[0]):
                seed_stream(rng, k, seed, path, streams[k])
            demand = scalars[S_D0]
            for r in range(n_regions):
                n_curtailed[r] = 0
                x_ou[r] = 0.0
                y_spike[r] = 0.0
                charge[r] = region[r, R_CAP0]
                log_charge[r] = math.log(charge[r]) if charge[r] > 0.0 else -math.inf
            chi, xi = scalars[S_CHI0], scalars[S_XI0]
            squeeze = 0
            switch = NEVER  # month of the squeeze regime's next switch
            if copper_on:
                squeeze = squeeze_start(rng, ST_SQUEEZE, sq_initial, sq_enter, sq_exit)
                switch = squeeze_spell(rng, ST_SQUEEZE, squeeze, sq_enter, sq_exit)
            gpu_regime = 1
            for g in range(n_gens):
                y_gpu[g] = 0.0
                lo, hi = gpu[g, G_SUCC_LO], gpu[g, G_SUCC_HI]
                if lo < 0:
                    launch[g] = horizon + 1
                elif gpu_on:
                    u = next_uniform(rng, 4 + n_regions + g)
                    launch[g] = int(lo) + int(u * (hi - lo + 1.0))
                else:
                    launch[g] = int((lo + hi) // 2)
            for t in range(1, horizon + 1):
                # -- copula shocks
                for f in range(n_factors):
                    eps[f] = next_normal(rng, shock0 + f)
                scale = 1.0
                if student:
                    scale = math.sqrt(nu / chi_square(rng, ST_COPULA, nu))
                for f in range(n_factors):
                    acc = 0.0
                    for k in range(f + 1):
                        acc += copula_factor[f, k] * eps[k]
                    z[f] = t_to_normal(acc * scale, t_table) if student else acc
                # -- AI demand
                demand = phi * demand + (demand_b * z[0] if demand_on else 0.0)
                # -- electricity
                for r in range(n_regions):
                    event = False
                    spikes = 0
                    new_year = t > 1 and (t - 1) % 12 == 0
                    if elec_on:
                        st = 4 + r
                        x_ou[r] = region[r, R_OU_A] * x_ou[r] + region[r, R_OU_B] * z[1 + r]
                        y_spike[r] *= region[r, R_SPIKE_DECAY]
                        spikes = poisson_count(rng, st, region[r, R_SPIKE_MEAN], spike_p0[r])
                        for _ in range(spikes):
                            y_spike[r] += region[r, R_SPIKE_MU] + region[
                                r, R_SPIKE_SD
                            ] * next_normal(rng, st)
                        if new_year:
                            step = region[r, R_CAP_MU]
                            if region[r, R_CAP_SIGMA] > 0.0:
                                step += region[r, R_CAP_SIGMA] * next_normal(rng, st)
                            log_charge[r] += step
                            charge[r] = math.exp(log_charge[r])
                        if region[r, R_CURTAIL_P] > 0.0:
                            event = next_uniform(rng, st) < region[r, R_CURTAIL_P]
                    elif new_year:
                        log_charge[r] += region[r, R_CAP_MU]
                        charge[r] = math.exp(log_charge[r])
                    log_energy = energy_base[r, t] + x_ou[r] + y_spike[r]
                    all_in = fixed_cost[r, t] + unhedged[r] * math.exp(log_energy)
                    # binned in ln energy price: all-in is increasing in it (no log needed)
                    row = report[2 * r]
                    _record(b_hist, b_sums, b, row, t, log_energy, all_in, shifts, scales, per_unit)
                    row = report[2 * r + 1]
                    _record(
                        b_hist,
                        b_sums,
                        b,
                        row,
                        t,
                        log_charge[r],
                        charge[r],
                        shifts,
                        scales,
                        per_unit,
                    )
                    if event:
                        b_curtail[b, r, t] += 1
                        curtailed[r, n_curtailed[r]] = t
                        n_curtailed[r] += 1
                    available = 1.0 - region[r, R_CURTAIL_SHARE] if event else 1.0
                    cum[r, t] = cum[r, t - 1] + (
                        HOURS_PER_MONTH * all_in * available + DAYS_PER_MONTH * charge[r]
                    )
                    if tracing:
                        c = TRACE_FIXED + n_factors + TRACE_PER_REGION * r
                        trace[i, c, t] = math.log(all_in)
                        trace[i, c + 1, t] = log_energy
                        trace[i, c + 2, t] = charge[r]
                        trace[i, c + 3, t] = event
                        trace[i, c + 4, t] = spikes
                # -- copper
                chi = scalars[S_CU_A] * chi
                xi += scalars[S_XI_DRIFT]
                jumps = 0
                if copper_on:
                    if t == switch:  # spells drawn as geometric months (factors.py)
                        squeeze = 1 - squeeze
                        switch = t + squeeze_spell(rng, ST_SQUEEZE, squeeze, sq_enter, sq_exit)
                    chi += scalars[S_CU_B] * z[1 + n_regions]
                    own = next_normal(rng, ST_COPPER)
                    xi += scalars[S_XI_SD] * (cu_rho * z[1 + n_regions] + cu_own * own)
                    jumps = poisson_count(rng, ST_COPPER, scalars[S_CU_JUMP_MEAN], copper_p0)
                    for _ in range(jumps):
                        xi += scalars[S_CU_JUMP_MU] + scalars[S_CU_JUMP_SD] * next_normal(
                            rng, ST_COPPER
                        )
                log_copper = chi + xi
                if squeeze == REGIME_SQUEEZE:
                    log_copper += scalars[S_SQ_PREMIUM]
                    b_squeeze[b, t] += 1
                copper[t] = math.exp(log_copper)
                row = report[2 * n_regions]
                _record(b_hist, b_sums, b, row, t, log_copper, copper[t], shifts, scales, per_unit)
                # -- GPU market
                if gpu_regimes:
                    gpu_regime = markov_step(rng, ST_GPU_REGIME, gpu_regime, regime_transition)
                for g in range(n_gens):
                    y_gpu[g] = gpu[g, G_OU_A] * y_gpu[g]
                    if gpu_on:
                        y_gpu[g] += gpu[g, G_OU_B] * z[2 + n_regions + g]
                    trend = rent_trend[g, t]
                    log_rent = trend + gpu[g, G_BETA] * demand + y_gpu[g]
                    if gpu_regimes:
                        log_rent += regime_offset[gpu_regime]
                    rent = math.exp(log_rent)
                    row = report[2 * n_regions + 1 + 2 * g]
                    _record(b_hist, b_sums, b, row, t, log_rent, rent, shifts, scales, per_unit)
                    after = t >= launch[g]
                    if unit_elasticity[g]:  # resale = rent x a deterministic factor: no exp
                        log_resale = log_rent + resale_log_factor[g, t]
                        resale = rent * resale_factor[g, t]
                        if after:
                            log_resale += gpu[g, G_LN_STEP]
                            resale *= step_factor[g]
                    else:
                        log_resale = (
                            resale_base[g, t]
                            + gpu[g, G_ELASTICITY] * (log_rent - trend)
                            + (gpu[g, G_LN_STEP] if after else 0.0)
                        )
                        resale = math.exp(log_resale)
                    row = report[2 * n_regions + 2 + 2 * g]
                    _record(b_hist, b_sums, b, row, t, log_resale, resale, shifts, scales, per_unit)
                    if tracing:
                        c = TRACE_FIXED + n_factors + TRACE_PER_REGION * n_regions + 2 * g
                        trace[i, c, t] = log_rent
                        trace[i, c + 1, t] = log_resale
                if tracing:
                    trace[i, 0, t] = demand
                    trace[i, 1, t] = squeeze
                    trace[i, 2, t] = gpu_regime
                    trace[i, 3, t] = jumps
                    trace[i, 4, t] = log_copper
                    for f in range(n_factors):
                        trace[i, TRACE_FIXED + f, t] = z[f]
            # -- what the path's markets cost each site
            for p in range(n_phases):
                months[p] = _month(energization[i, p], horizon)
            for s in range(n_sites):
                first = months[site_phase_start[s]]
                if first > horizon:
                    continue
                r = site_region[s]
                capex = 0.0
                copper_cost = 0.0
                energy = 0.0
                for p in range(site_phase_start[s], site_phase_end[s]):
                    m = months[p]
                    if m > horizon:
                        continue
                    cu_cost = phase_mw[p] * scalars[S_CU_INTENSITY] * copper[m]
                    capex += phase_mw[p] * scalars[S_FACILITY_EX_CU] + cu_cost
                    copper_cost += cu_cost
                    energy += phase_mw[p] * site_pue[s] * (cum[r, horizon] - cum[r, m - 1])
                per_month = energy / (horizon - first + 1)
                n_site_bins = site_hist.shape[2]
                shift = 0.5 * n_site_bins - site_center[s, SITE_CAPEX] * site_scale
                k = _bin(math.log(capex), shift, site_scale, n_site_bins)
                b_site_hist[b, s, SITE_CAPEX, k] += 1
                shift = 0.5 * n_site_bins - site_center[s, SITE_ENERGY] * site_scale
                k = _bin(math.log(per_month), shift, site_scale, n_site_bins)
                b_site_hist[b, s, SITE_ENERGY, k] += 1
                b_site_sums[b, s, 0] += np.int64(capex / 1000.0 + 0.5)
                b_site_sums[b, s, 1] += np.int64(copper_cost / 1000.0 + 0.5)
                b_site_sums[b, s, 2] += np.int64(energy / 1000.0 + 0.5)
                b_site_sums[b, s, 3] += np.int64(per_month + 0.5)
                b_site_sums[b, s, 4] += 1
            # -- MW taken offline by curtailment events
            for r in range(n_regions):
                for e in range(n_curtailed[r]):
                    t = curtailed[r, e]
                    for j in range(region_phase_start[r], region_phase_start[r + 1]):
                        p = region_phase_index[j]
                        if months[p] <= t:
                            for k in range(3):
                                b_curtailed[b, phase_scopes[p, k], t] += phase_curtail_w[p]
    for b in range(n_blocks):
        for t in range(horizon + 1):
            for row in range(n_out):
                sums[row, t] += b_sums[b, t, row]
                for k in range(n_bins):
                    hist[row, t, k] += b_hist[b, t, row, k]
        squeeze_months += b_squeeze[b]
        curtail_months += b_curtail[b]
        curtailed_w += b_curtailed[b]
        site_hist += b_site_hist[b]
        site_sums += b_site_sums[b]
