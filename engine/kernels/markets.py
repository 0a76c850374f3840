"""The market kernel: blocks of paths in parallel, their statistics merged.

``market_statistics`` splits a chunk's paths into blocks that start on a group
boundary, runs the blocks' months in parallel
(engine/kernels/market_block.py ``market_block``: factors month by month,
their statistics, site costs and, with a demand side, each group's contracts
and finance), each into partial statistics of its own, and adds the blocks' partial
statistics to the totals in block order.

The ``prange`` body is one call, with an ``int64`` block index: numba's
parallel passes then work on a short loop, and the block is compiled once, not
also for the parallel loop's ``uint64`` index (docs/architecture.md,
"Compilation time").

Everything accumulated is an integer (counts, fixed-point sums), so per-thread
partial results merge to the same bits in any order.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine.kernels.aggregate import add_block
from engine.kernels.demand_blocks import demand_blocks, merge_blocks
from engine.kernels.lanes import BLOCK_PATHS, LANES
from engine.kernels.market_block import market_block
from engine.kernels.market_records import (
    N_SITE_SUMS,
    SITE_CAPEX,
    SITE_ENERGY,
)

__all__ = ["N_SITE_SUMS", "SITE_CAPEX", "SITE_ENERGY", "market_statistics"]


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
    horizon = sums.shape[1] - 1
    n_out, n_bins = hist.shape[0], hist.shape[2]
    n_regions = region.shape[0]
    n_scopes, width = curtailed_w.shape
    keeping = factor_paths.shape[1] > 0
    full = factor_paths.shape[0] > 0
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
    # the series of each block's current group (kept only for the demand side)
    slots = np.zeros((n_blocks if keeping and not full else 0, factor_paths.shape[1],
                      horizon + 1, LANES))  # fmt: skip
    d = demand_blocks(n_blocks if demand_side else 0, dem_out, fin_outputs)
    # flat tuples built here: a tuple returned by a call fails in the prange body
    b_dem = (d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7])
    b_fin = (d[8], d[9], d[10], d[11], d[12], d[13], d[14])
    for b in prange(n_blocks):
        market_block(
            np.int64(b), per_block, seed, path0, energization, switches, scalars,
            copula_factor, t_table, region, season, ppa_price, gpu, fire_sale_keep,
            regime_transition, regime_offset, streams, center, bin_scale, unit, report,
            site_region, site_pue, site_operator, site_phase_start, site_phase_end,
            site_center, phase_mw, phase_curtail_w, phase_scopes, region_phase_start,
            region_phase_index, b_hist, b_sums, b_squeeze, b_curtail, b_curtailed,
            b_site_hist, b_site_sums, trace, factor_paths, slots, demand_side, dem_in,
            fin_inputs, b_dem, b_fin,
        )  # fmt: skip
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
