"""The demand side and the finance of a chunk of paths, in parallel blocks.

``contract_statistics`` splits the paths into blocks (one per thread, each
starting on a group boundary); a block runs its paths in groups of ``GROUP``
(64), the groups of the market kernel's ``factor_paths``: each path's draws
(engine/kernels/contracts.py ``path_draws``), then for the whole group, month
by month across the lanes, its contracts (``contract_group``), revenue and
concentration records, and with debt in the book its finance inputs
(engine/kernels/finance_inputs.py), finance month loop
(engine/kernels/finance.py) and records; histogram bins are added month by
month. Every statistic is an integer: per-block partial results merge to the
same bits in any order, so the tables do not depend on the blocks.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine.kernels.aggregate import _month
from engine.kernels.contract_records import (
    concentration,
    latent_scales,
    scatter_group,
    scope_revenue,
)
from engine.kernels.contracts import (
    C_CUSTOMER,
    C_OPERATOR,
    C_RATE,
    GROUP,
    N_LANE_F,
    N_LANE_I,
    contract_group,
    path_draws,
)
from engine.kernels.finance import finance_lanes
from engine.kernels.finance_fields import FS_ENABLED, N_FAC_STATE, N_FAN, N_OP_STATE, N_TMP
from engine.kernels.finance_inputs import clear_draws, gather_group, gather_path
from engine.kernels.finance_records import record_group, scatter_fans
from engine.kernels.lanes import BLOCK_PATHS
from engine.rng import next_uniform

__all__ = ["contract_statistics"]


@njit(cache=True, parallel=True)
def contract_statistics(
    seed: np.uint64,
    path0: np.uint64,
    energization: np.ndarray,
    factor_paths: np.ndarray,
    customers: np.ndarray,
    contracts: np.ndarray,
    phase_start: np.ndarray,
    phase_index: np.ndarray,
    phase_gpus: np.ndarray,
    dsc: np.ndarray,
    streams: np.ndarray,
    caps: np.ndarray,
    planned_value: np.ndarray,
    fin_inputs: tuple,
    n_blocks: int,
    ct_sums: np.ndarray,
    ct_hist: np.ndarray,
    rev_sums: np.ndarray,
    rev_hist: np.ndarray,
    conc_sums: np.ndarray,
    conc_hist: np.ndarray,
    cust_sums: np.ndarray,
    lost_counts: np.ndarray,
    fin_outputs: tuple,
) -> None:
    """Add the demand-side (and finance) statistics of paths ``path0 .. path0 + n - 1``.

    Parameters
    ----------
    seed, path0 : numpy.uint64
        Run seed and global id of the first path.
    energization : numpy.ndarray
        ``float64[n, P]`` energization times (months) of the paths.
    factor_paths : numpy.ndarray
        ``float64[ceil(n / GROUP), channels, T + 1, GROUP]`` the paths' AI-demand
        factor and each generation's rent ($/GPU-hr) by month, from the market
        kernel (path ``i`` in group ``i // GROUP``, lane ``i % GROUP``); with
        finance, also the channels of :func:`engine.kernels.finance.finance_lanes`.
    customers ... planned_value
        Lowered demand side (:class:`engine.demand_arrays.DemandArrays`).
    fin_inputs : tuple
        The arrays of :class:`engine.finance_arrays.FinanceArrays` (ops, phases,
        pair_facility, pair_gen, facilities, gens, keep, base_rate, fsc, targets,
        target_ops, target_customers); finance runs when ``fsc[FS_ENABLED]`` is set.
    n_blocks : int
        Independent partial results (any value: the same statistics; raised so
        that no block holds more than ``BLOCK_PATHS`` paths).
    ct_sums ... lost_counts
        Statistics (:class:`engine.demand_stats.DemandStats`), accumulated.
    fin_outputs : tuple
        Finance statistics (:class:`engine.finance_stats.FinanceStats`): month
        sums, fan histograms, operator sums, minimum-DSCR and loss histograms,
        facility sums, joint counts; accumulated.
    """
    n_paths = energization.shape[0]
    # int16 block histograms (they stay in L2): at most BLOCK_PATHS paths per block
    n_blocks = max(n_blocks, (n_paths + BLOCK_PATHS - 1) // BLOCK_PATHS)
    b_ct_sums = np.zeros((n_blocks,) + ct_sums.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_ct_hist = np.zeros((n_blocks,) + ct_hist.shape, dtype=np.int16)  # noqa: RUF005 (numba)
    b_rev_sums = np.zeros((n_blocks,) + rev_sums.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_rev_hist = np.zeros((n_blocks,) + rev_hist.shape, dtype=np.int16)  # noqa: RUF005 (numba)
    b_conc_sums = np.zeros((n_blocks,) + conc_sums.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_conc_hist = np.zeros((n_blocks,) + conc_hist.shape, dtype=np.int16)  # noqa: RUF005 (numba)
    b_cust_sums = np.zeros((n_blocks,) + cust_sums.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_lost_counts = np.zeros((n_blocks,) + lost_counts.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    month_sums, fan_hist, op_sums, min_dscr_hist, loss_hist, fac_sums, joint = fin_outputs
    b_month_sums = np.zeros((n_blocks,) + month_sums.shape, dtype=np.int64)  # noqa: RUF005
    b_fan_hist = np.zeros((n_blocks,) + fan_hist.shape, dtype=np.int16)  # noqa: RUF005
    b_op_sums = np.zeros((n_blocks,) + op_sums.shape, dtype=np.int64)  # noqa: RUF005
    b_min_dscr = np.zeros((n_blocks,) + min_dscr_hist.shape, dtype=np.int64)  # noqa: RUF005
    b_loss_hist = np.zeros((n_blocks,) + loss_hist.shape, dtype=np.int64)  # noqa: RUF005
    b_fac_sums = np.zeros((n_blocks,) + fac_sums.shape, dtype=np.int64)  # noqa: RUF005
    b_joint = np.zeros((n_blocks,) + joint.shape, dtype=np.int64)  # noqa: RUF005
    # built outside the prange body: writes through a tuple made inside it were lost
    b_fin = (b_month_sums, b_fan_hist, b_op_sums, b_min_dscr, b_loss_hist, b_fac_sums, b_joint)
    # blocks start on a group boundary: group i0 // GROUP of factor_paths is paths i0 ..
    per_block = ((n_paths + n_blocks - 1) // n_blocks + GROUP - 1) // GROUP * GROUP
    for b in prange(n_blocks):
        # the block's work runs in a plain function: numba's parfor pass mishandled
        # scratch arrays allocated here and written through views (wrong statistics)
        _block(
            b,
            b * per_block,
            min(n_paths, (b + 1) * per_block),
            seed,
            path0,
            energization,
            factor_paths,
            customers,
            contracts,
            phase_start,
            phase_index,
            phase_gpus,
            dsc,
            streams,
            caps,
            planned_value,
            fin_inputs,
            b_ct_sums,
            b_ct_hist,
            b_rev_sums,
            b_rev_hist,
            b_conc_sums,
            b_conc_hist,
            b_cust_sums,
            b_lost_counts,
            b_fin,
        )
    for b in range(n_blocks):
        ct_sums += b_ct_sums[b]
        ct_hist += b_ct_hist[b]
        rev_sums += b_rev_sums[b]
        rev_hist += b_rev_hist[b]
        conc_sums += b_conc_sums[b]
        conc_hist += b_conc_hist[b]
        cust_sums += b_cust_sums[b]
        lost_counts += b_lost_counts[b]
        month_sums += b_month_sums[b]
        fan_hist += b_fan_hist[b]
        op_sums += b_op_sums[b]
        min_dscr_hist += b_min_dscr[b]
        loss_hist += b_loss_hist[b]
        fac_sums += b_fac_sums[b]
        joint += b_joint[b]


@njit(cache=True)
def _block(
    b: int,
    first: int,
    last: int,
    seed: np.uint64,
    path0: np.uint64,
    energization: np.ndarray,
    factor_paths: np.ndarray,
    customers: np.ndarray,
    contracts: np.ndarray,
    phase_start: np.ndarray,
    phase_index: np.ndarray,
    phase_gpus: np.ndarray,
    dsc: np.ndarray,
    streams: np.ndarray,
    caps: np.ndarray,
    planned_value: np.ndarray,
    fin_inputs: tuple,
    b_ct_sums: np.ndarray,
    b_ct_hist: np.ndarray,
    b_rev_sums: np.ndarray,
    b_rev_hist: np.ndarray,
    b_conc_sums: np.ndarray,
    b_conc_hist: np.ndarray,
    b_cust_sums: np.ndarray,
    b_lost_counts: np.ndarray,
    fin_outputs: tuple,
) -> None:
    """Paths ``first .. last - 1`` of a chunk into block ``b``'s partial statistics."""
    horizon = factor_paths.shape[2] - 1  # [group, channel, month, lane]
    n_phases = energization.shape[1]
    n_cust, n_ctr = customers.shape[0], contracts.shape[0]
    n_ops = b_conc_sums.shape[1]
    ops, f_phases, pair_fac, pair_gen, facilities, gens, keep, base_rate, fsc = fin_inputs[:9]
    targets, t_ops, t_cust = fin_inputs[9:]
    month_sums, fan_hist, op_sums, min_dscr_hist, loss_hist, fac_sums, joint = fin_outputs
    finance = fsc[FS_ENABLED] > 0.5
    n_fac, n_gens, n_pairs = facilities.shape[0], gens.shape[0], pair_fac.shape[0]
    width = horizon + 1
    rng = np.zeros((4, streams.shape[0]), dtype=np.uint64)
    default_month = np.zeros(n_cust, dtype=np.int64)
    scales = latent_scales(customers, dsc, horizon)
    # each contract's operator, customer and value per month of service (backlog)
    c_op = np.zeros(n_ctr, dtype=np.int64)
    c_cust = np.zeros(n_ctr, dtype=np.int64)
    c_value = np.zeros(n_ctr)
    for c in range(n_ctr):
        c_op[c], c_cust[c] = int(contracts[c, C_OPERATOR]), int(contracts[c, C_CUSTOMER])
        gpus_total = 0.0
        for j in range(phase_start[c], phase_start[c + 1]):
            gpus_total += phase_gpus[j]
        c_value[c] = gpus_total * contracts[c, C_RATE]
    # the group's draws, contracts and statistics, lanes innermost
    g_months = np.full((n_phases, GROUP), horizon + 1, dtype=np.int64)
    g_tau = np.zeros((n_cust, GROUP), dtype=np.int64)
    g_u = np.zeros((n_ctr, 2, GROUP))
    gpus = np.zeros((width + 1, GROUP))
    lane_f = np.zeros(N_LANE_F * GROUP)
    lane_i = np.zeros(N_LANE_I * GROUP, dtype=np.int64)
    earned_out = np.zeros((width, GROUP))
    relet_out = np.zeros((width, GROUP))
    credit_out = np.zeros((width, GROUP))
    state = np.zeros((4, n_ctr, GROUP), dtype=np.int64)
    revenue = np.zeros((n_ops + 1, 2, width, GROUP))
    cash = np.zeros((n_ops, width + 1, GROUP))
    realised = np.zeros(GROUP)
    backlog = np.zeros((n_cust, GROUP))
    hhi_l = np.zeros(GROUP)
    top_l = np.zeros(GROUP)
    rev_bins = np.zeros((n_ops + 1, 2, width, GROUP), dtype=np.int32)
    conc_bins = np.zeros((n_ops, 2, width, GROUP), dtype=np.int32)
    # finance: the group's inputs and state (GROUP == LANES)
    g_ebitda = np.zeros((width, n_ops, GROUP))
    g_other = np.zeros((width, n_ops, GROUP))
    g_draw = np.zeros((width, n_fac, GROUP))
    g_value = np.zeros((width, n_pairs, GROUP))
    g_crev = np.zeros((n_ops, GROUP))
    u_refi = np.zeros((n_fac, GROUP))
    g_mw = np.zeros((width, n_ops, GROUP))  # zero between groups (gather_group clears)
    g_units = np.zeros((width, n_pairs, GROUP))
    merchant = np.zeros((width, GROUP))
    online = np.zeros(GROUP)
    # lane state: a tuple of separate arrays, one per field (stores to rows of one
    # array at run-time offsets keep LLVM from vectorising the month loop)
    op_state = (
        np.zeros((n_ops, GROUP)),
        np.zeros((n_ops, GROUP)),
        np.zeros((n_ops, GROUP)),
        np.zeros((n_ops, GROUP)),
        np.zeros((n_ops, GROUP)),
    )
    fac_state = (
        np.zeros((n_fac, GROUP)),
        np.zeros((n_fac, GROUP)),
        np.zeros((n_fac, GROUP)),
        np.zeros((n_fac, GROUP)),
        np.zeros((n_fac, GROUP)),
        np.zeros((n_fac, GROUP)),
        np.zeros((n_fac, GROUP)),
        np.zeros((n_fac, GROUP)),
    )
    impact = (np.zeros((n_gens, GROUP)), np.zeros((n_gens, GROUP)))
    cum = (np.zeros((width, n_ops, GROUP)), np.zeros((width, n_ops, GROUP)))
    n_tmp = max(n_ops, n_fac)
    tmp = (
        np.zeros((n_tmp, GROUP)),
        np.zeros((n_tmp, GROUP)),
        np.zeros((n_tmp, GROUP)),
        np.zeros((n_tmp, GROUP)),
        np.zeros((n_tmp, GROUP)),
        np.zeros((n_tmp, GROUP)),
        np.zeros((n_tmp, GROUP)),
        np.zeros((n_tmp, GROUP)),
        np.zeros((n_tmp, GROUP)),
        np.zeros((n_tmp, GROUP)),
        np.zeros((n_tmp, GROUP)),
    )
    if len(op_state) != N_OP_STATE or len(fac_state) != N_FAC_STATE or len(tmp) != N_TMP:
        raise ValueError("finance lane state: one array per field of finance_fields")
    fan_bins = np.full((n_ops, N_FAN, width, GROUP), -1, dtype=np.int32)
    demand = np.zeros((GROUP, width))  # the group's AI-demand factor, one row per path
    first_facility = n_cust + n_ctr + 1
    for i0 in range(first, last, GROUP):
        n_active = min(GROUP, last - i0)
        group_paths = factor_paths[i0 // GROUP]
        # transposed once per group: each path's draws then read a contiguous row
        for t in range(width):
            for lane in range(GROUP):
                demand[lane, t] = group_paths[0, t, lane]
        for lane in range(n_active):
            i = i0 + lane
            for p in range(n_phases):
                g_months[p, lane] = _month(energization[i, p], horizon)
            path_draws(
                seed, path0 + np.uint64(i), demand[lane], rng, customers, n_ctr, dsc,
                streams, scales, default_month, g_tau, g_u, lane,
            )  # fmt: skip
            if finance:
                for f in range(n_fac):
                    u_refi[f, lane] = next_uniform(rng, first_facility + f)
        for lane in range(n_active, GROUP):
            for p in range(n_phases):
                g_months[p, lane] = horizon + 1
        contract_group(
            b, n_active, g_months, g_tau, g_u, group_paths, customers, contracts, phase_start,
            phase_index, phase_gpus, dsc, caps, planned_value, b_ct_sums, b_ct_hist, b_cust_sums,
            gpus, lane_f, lane_i, earned_out, relet_out, credit_out, state, revenue, cash,
        )  # fmt: skip
        scope_revenue(
            b, n_active, revenue, n_ctr, caps, b_rev_sums, rev_bins, b_rev_hist.shape[4],
            b_lost_counts, realised,
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
                op_state, fac_state, impact, cum, tmp, month_sums, fan_bins, fac_sums,
            )  # fmt: skip
            record_group(
                b, n_active, horizon, op_state, fac_state, g_months, g_tau, g_crev, f_phases,
                facilities, ops, fsc, targets, t_ops, t_cust, op_sums, min_dscr_hist, loss_hist,
                fac_sums, joint,
            )  # fmt: skip
            scatter_fans(b, n_active, fan_bins, fan_hist)
            clear_draws(n_active, f_phases, facilities, g_months, g_draw)
        scatter_group(b, n_active, rev_bins, conc_bins, b_rev_hist, b_conc_hist)
