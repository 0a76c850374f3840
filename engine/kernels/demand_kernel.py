"""The demand side and the finance of a group of paths, and their kernel on given markets.

``demand_group`` runs one group of ``GROUP`` (64) paths, lanes innermost: each
path's draws (engine/kernels/contracts.py ``path_draws``), then for the whole
group, month by month across the lanes, its contracts (``contract_group``),
revenue and concentration records, and with debt in the book its finance
inputs (engine/kernels/finance_inputs.py), finance month loop
(engine/kernels/finance.py) and records; histogram bins are added month by
month. A run calls it from the market kernel (engine/kernels/market_block.py),
right after each group's markets, while the group's series are in L2.
``contract_block`` runs it on market series given for every path (tests
that set the markets by hand, and the comparison of the two), a block of paths
at a time (engine/blocks.py ``contract_statistics``). Every statistic
is an integer: per-block partial results merge to the same bits in any order,
so the tables do not depend on the blocks.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.aggregate import group_months
from engine.kernels.contract_records import concentration, scatter_group, scope_revenue
from engine.kernels.contracts import GROUP, contract_group, path_draws
from engine.kernels.demand_blocks import demand_scratch
from engine.kernels.finance import finance_lanes
from engine.kernels.finance_fields import FS_ENABLED
from engine.kernels.finance_inputs import clear_draws, gather_group, gather_path
from engine.kernels.finance_records import record_group, scatter_fans
from engine.rng import next_uniform

__all__ = ["contract_block", "demand_group"]


@njit(cache=True, nogil=True)
def contract_block(
    b: int,
    per_block: int,
    seed: np.uint64,
    path0: np.uint64,
    energization: np.ndarray,
    factor_paths: np.ndarray,
    horizon: int,
    inputs: tuple,
    fin_inputs: tuple,
    b_dem: tuple,
    b_fin: tuple,
) -> None:
    """Block ``b`` of a chunk's paths, group by group, into block ``b``'s statistics.

    The demand side alone, on market series given for every path
    (:func:`engine.blocks.contract_statistics` runs the blocks on the run's threads).

    Parameters
    ----------
    b : int
        Block index: row ``b`` of the partial statistics ``b_dem`` and ``b_fin``.
    per_block : int
        Paths per block, a multiple of ``GROUP``: block ``b`` holds paths
        ``b * per_block .. min(n, (b + 1) * per_block) - 1`` of the chunk.
    seed, path0 : numpy.uint64
        Run seed and global id of the chunk's first path.
    energization : numpy.ndarray
        ``float64[n, P]`` energization times (months) of the chunk's paths.
    factor_paths : numpy.ndarray
        ``float64[ceil(n / GROUP), channels, T + 1, GROUP]`` the paths' market series.
    horizon : int
        Months simulated.
    inputs, fin_inputs : tuple
        The demand side's and the finance's inputs.
    b_dem, b_fin : tuple
        Partial statistics by block (:func:`engine.kernels.demand_blocks.demand_blocks`).
    """
    scratch = demand_scratch(horizon, inputs, fin_inputs, b_dem)
    g_months = np.empty((energization.shape[1], GROUP), dtype=np.int64)
    first, last = b * per_block, min(energization.shape[0], (b + 1) * per_block)
    for i0 in range(first, last, GROUP):
        n_active = min(GROUP, last - i0)
        group_months(energization, i0, n_active, horizon, g_months)
        demand_group(b, i0, n_active, seed, path0, g_months, factor_paths[i0 // GROUP],
                     inputs, fin_inputs, scratch, b_dem, b_fin)  # fmt: skip


@njit(cache=True)
def demand_group(
    b: int,
    i0: int,
    n_active: int,
    seed: np.uint64,
    path0: np.uint64,
    g_months: np.ndarray,
    group_paths: np.ndarray,
    inputs: tuple,
    fin_inputs: tuple,
    scratch: tuple,
    b_dem: tuple,
    b_fin: tuple,
) -> None:
    """Add the demand side and finance of one group's paths to block ``b``'s statistics.

    Parameters
    ----------
    b : int
        Block (first axis of the partial statistics).
    i0, n_active : int
        First path of the group (within the chunk) and paths in it (<= ``GROUP``).
    seed, path0 : numpy.uint64
        Run seed and global id of the chunk's first path.
    g_months : numpy.ndarray
        ``int64[P, GROUP]`` the energization month of each phase on each lane
        (> T: never, or no path; :func:`engine.kernels.aggregate.group_months`).
    group_paths : numpy.ndarray
        ``float64[channels, T + 1, GROUP]`` the group's market series: AI-demand
        factor and each generation's rent ($/GPU-hr) by month; with finance also
        resale values ($/GPU), energy cost and facility capex by operator ($/month).
    inputs, fin_inputs : tuple
        The demand side's inputs (:class:`engine.demand_arrays.DemandArrays`, in
        order) and the finance's (:meth:`engine.finance_stats.FinanceStats.inputs`);
        finance runs when ``fsc[FS_ENABLED]`` is set.
    scratch : tuple
        The block's scratch (:func:`engine.kernels.demand_blocks.demand_scratch`).
    b_dem, b_fin : tuple
        The block partial statistics of the demand side and of the finance
        (:func:`engine.kernels.demand_blocks.demand_blocks`), accumulated.
    """
    customers, contracts, phase_start, phase_index, phase_gpus, dsc, streams, caps = inputs[:8]
    planned_value = inputs[8]
    b_ct_sums, b_ct_hist, b_rev_sums, b_rev_hist, b_conc_sums, b_conc_hist = b_dem[:6]
    b_cust_sums, b_lost_counts = b_dem[6:]
    month_sums, fan_hist, op_sums, min_dscr_hist, loss_hist, fac_sums, joint = b_fin
    horizon = group_paths.shape[1] - 1
    width = horizon + 1
    n_cust, n_ctr = customers.shape[0], contracts.shape[0]
    ops, f_phases, pair_fac, pair_gen, facilities, gens, keep, base_rate, fsc = fin_inputs[:9]
    targets, t_ops, t_cust = fin_inputs[9:]
    finance = fsc[FS_ENABLED] > 0.5
    n_fac = facilities.shape[0]
    first_facility = n_cust + n_ctr + 1
    rng, default_month, scales, c_op, c_cust, c_value, g_tau, g_u = scratch[0:8]
    gpus, lane_f, lane_i, earned_out, relet_out, credit_out, state, revenue = scratch[8:16]
    cash, realised, backlog, hhi_l, top_l, rev_bins, conc_bins, g_ebitda = scratch[16:24]
    g_other, g_draw, g_value, g_crev, u_refi, g_mw, g_units, merchant = scratch[24:32]
    online, op_state, fac_state, impact, cum, tmp, fan_bins, demand = scratch[32:40]
    fixed, lost = scratch[40:42]
    # transposed once per group: each path's draws then read a contiguous row
    for t in range(width):
        for lane in range(GROUP):
            demand[lane, t] = group_paths[0, t, lane]
    for lane in range(n_active):
        path_draws(
            seed, path0 + np.uint64(i0 + lane), demand[lane], rng, customers, n_ctr, dsc,
            streams, scales, default_month, g_tau, g_u, lane,
        )  # fmt: skip
        if finance:
            for f in range(n_fac):
                u_refi[f, lane] = next_uniform(rng, first_facility + f)
    contract_group(
        b, n_active, g_months, g_tau, g_u, group_paths, customers, contracts, phase_start,
        phase_index, phase_gpus, dsc, caps, planned_value, b_ct_sums, b_ct_hist, b_cust_sums,
        gpus, lane_f, lane_i, earned_out, relet_out, credit_out, state, revenue, cash,
    )  # fmt: skip
    scope_revenue(
        b, n_active, revenue, n_ctr, caps, b_rev_sums, rev_bins, b_rev_hist.shape[4],
        b_lost_counts, realised, fixed,
    )  # fmt: skip
    concentration(
        b, n_active, c_op, c_cust, c_value, state, b_conc_sums, conc_bins,
        b_conc_hist.shape[4], backlog, realised, hhi_l, top_l,
    )  # fmt: skip
    if finance:
        for lane in range(n_active):  # g_draw is zero here
            gather_path(lane, f_phases, facilities, g_months, g_draw, g_mw, g_units)
        gather_group(
            n_active, group_paths, revenue, cash, ops, f_phases, pair_gen, fsc, merchant,
            online, g_ebitda, g_other, g_mw, g_units, g_value, g_months, g_crev,
        )  # fmt: skip
        finance_lanes(
            b, n_active, g_ebitda, g_other, g_draw, g_value, group_paths, g_months,
            u_refi, ops, f_phases, pair_fac, pair_gen, facilities, gens, keep, base_rate, fsc,
            op_state, fac_state, impact, cum, tmp, month_sums, fan_bins, fac_sums, fixed,
        )  # fmt: skip
        record_group(
            b, n_active, horizon, op_state, fac_state, g_months, g_tau, g_crev, f_phases,
            facilities, ops, fsc, targets, t_ops, t_cust, op_sums, min_dscr_hist, loss_hist,
            fac_sums, joint, lost,
        )  # fmt: skip
        scatter_fans(b, n_active, fan_bins, fan_hist)
        clear_draws(n_active, f_phases, facilities, g_months, g_draw)
    scatter_group(b, n_active, rev_bins, conc_bins, b_rev_hist, b_conc_hist)
