"""The demand side and the finance of a chunk of paths, in parallel blocks.

``contract_statistics`` splits the paths into blocks (one per thread); a block
runs its paths in groups of ``GROUP`` (64): each path's customers and contracts
(engine/kernels/contracts.py) and, with debt in the book, its finance inputs
(engine/kernels/finance_inputs.py); then the group's finance month loop over
SIMD lanes (engine/kernels/finance.py) and the group's histogram bins, added
month by month. Every statistic is an integer: per-block partial results merge
to the same bits in any order, so the tables do not depend on the blocks.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine.kernels.aggregate import _month
from engine.kernels.contract_records import scatter_group
from engine.kernels.contracts import GROUP, contract_path
from engine.kernels.finance import finance_lanes
from engine.kernels.finance_fields import FS_ENABLED, N_FAC_STATE, N_FAN, N_OP_STATE, N_TMP
from engine.kernels.finance_inputs import gather_path
from engine.kernels.finance_records import record_group, scatter_fans
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
        ``float64[n, channels, T + 1]`` the paths' AI-demand factor and each
        generation's rent ($/GPU-hr) by month, from the market kernel; with
        finance, also the channels of :func:`engine.kernels.finance.finance_lanes`.
    customers ... planned_value
        Lowered demand side (:class:`engine.demand_arrays.DemandArrays`).
    fin_inputs : tuple
        The arrays of :class:`engine.finance_arrays.FinanceArrays` (ops, phases,
        pair_facility, pair_gen, facilities, gens, keep, base_rate, fsc, targets,
        target_ops, target_customers); finance runs when ``fsc[FS_ENABLED]`` is set.
    n_blocks : int
        Independent partial results (any value: the same statistics).
    ct_sums ... lost_counts
        Statistics (:class:`engine.demand_stats.DemandStats`), accumulated.
    fin_outputs : tuple
        Finance statistics (:class:`engine.finance_stats.FinanceStats`): month
        sums, fan histograms, operator sums, minimum-DSCR and loss histograms,
        facility sums, joint counts; accumulated.
    """
    n_paths = energization.shape[0]
    b_ct_sums = np.zeros((n_blocks,) + ct_sums.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_ct_hist = np.zeros((n_blocks,) + ct_hist.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_rev_sums = np.zeros((n_blocks,) + rev_sums.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_rev_hist = np.zeros((n_blocks,) + rev_hist.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_conc_sums = np.zeros((n_blocks,) + conc_sums.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_conc_hist = np.zeros((n_blocks,) + conc_hist.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_cust_sums = np.zeros((n_blocks,) + cust_sums.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    b_lost_counts = np.zeros((n_blocks,) + lost_counts.shape, dtype=np.int64)  # noqa: RUF005 (numba)
    month_sums, fan_hist, op_sums, min_dscr_hist, loss_hist, fac_sums, joint = fin_outputs
    b_month_sums = np.zeros((n_blocks,) + month_sums.shape, dtype=np.int64)  # noqa: RUF005
    b_fan_hist = np.zeros((n_blocks,) + fan_hist.shape, dtype=np.int64)  # noqa: RUF005
    b_op_sums = np.zeros((n_blocks,) + op_sums.shape, dtype=np.int64)  # noqa: RUF005
    b_min_dscr = np.zeros((n_blocks,) + min_dscr_hist.shape, dtype=np.int64)  # noqa: RUF005
    b_loss_hist = np.zeros((n_blocks,) + loss_hist.shape, dtype=np.int64)  # noqa: RUF005
    b_fac_sums = np.zeros((n_blocks,) + fac_sums.shape, dtype=np.int64)  # noqa: RUF005
    b_joint = np.zeros((n_blocks,) + joint.shape, dtype=np.int64)  # noqa: RUF005
    # built outside the prange body: writes through a tuple made inside it were lost
    b_fin = (b_month_sums, b_fan_hist, b_op_sums, b_min_dscr, b_loss_hist, b_fac_sums, b_joint)
    per_block = (n_paths + n_blocks - 1) // n_blocks
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
    horizon = factor_paths.shape[2] - 1
    n_phases = energization.shape[1]
    n_cust, n_ctr = customers.shape[0], contracts.shape[0]
    n_ops = b_conc_sums.shape[1]
    ops, f_phases, pair_fac, pair_gen, facilities, gens, keep, base_rate, fsc = fin_inputs[:9]
    targets, t_ops, t_cust = fin_inputs[9:]
    month_sums, fan_hist, op_sums, min_dscr_hist, loss_hist, fac_sums, joint = fin_outputs
    finance = fsc[FS_ENABLED] > 0.5
    n_fac, n_gens, n_pairs = facilities.shape[0], gens.shape[0], pair_fac.shape[0]
    rng = np.zeros((4, streams.shape[0]), dtype=np.uint64)
    work = np.zeros((n_ctr + 2 * (n_ops + 1) + n_cust + n_ops, horizon + 2))
    iwork = np.zeros((n_ctr + n_cust, 6), dtype=np.int64)
    months = np.empty(n_phases, dtype=np.int64)
    rev_bins = np.zeros((GROUP, n_ops + 1, 2, horizon + 1), dtype=np.int32)
    conc_bins = np.zeros((GROUP, n_ops, 2, horizon + 1), dtype=np.int32)
    # finance: the group's inputs and state, lanes innermost (GROUP == LANES)
    width = horizon + 1
    g_ebitda = np.zeros((width, n_ops, GROUP))
    g_other = np.zeros((width, n_ops, GROUP))
    g_draw = np.zeros((width, n_fac, GROUP))
    g_value = np.zeros((width, n_pairs, GROUP))
    g_months = np.zeros((n_phases, GROUP), dtype=np.int64)
    g_cdef = np.zeros((n_cust, GROUP), dtype=np.int64)
    g_crev = np.zeros((n_ops, GROUP))
    u_refi = np.zeros((n_fac, GROUP))
    scratch = np.zeros((2 * n_ops + n_pairs, width))
    op_state = np.zeros((N_OP_STATE, n_ops, GROUP))
    fac_state = np.zeros((N_FAC_STATE, n_fac, GROUP))
    impact = np.zeros((2, n_gens, GROUP))
    cum = np.zeros((2, width, n_ops, GROUP))
    tmp = np.zeros((N_TMP, max(n_ops, n_fac), GROUP))
    fan_bins = np.full((n_ops, N_FAN, width, GROUP), -1, dtype=np.int32)
    scope_row = n_ctr
    cash_row = scope_row + 2 * (n_ops + 1) + n_cust
    first_facility = n_cust + n_ctr + 1
    for i0 in range(first, last, GROUP):
        n_active = min(GROUP, last - i0)
        if finance:
            g_draw[:, :, :] = 0.0  # contiguous; each path then adds its draws
        for lane in range(n_active):
            i = i0 + lane
            for p in range(n_phases):
                months[p] = _month(energization[i, p], horizon)
            contract_path(
                b,
                seed,
                path0 + np.uint64(i),
                months,
                factor_paths[i, 0],
                factor_paths[i, 1:],
                rng,
                work,
                iwork,
                customers,
                contracts,
                phase_start,
                phase_index,
                phase_gpus,
                dsc,
                streams,
                caps,
                planned_value,
                b_ct_sums,
                b_ct_hist,
                b_rev_sums,
                b_rev_hist,
                b_conc_sums,
                b_conc_hist,
                b_cust_sums,
                b_lost_counts,
                rev_bins,
                conc_bins,
                lane,
            )
            if finance:
                for f in range(n_fac):
                    u_refi[f, lane] = next_uniform(rng, first_facility + f)
                gather_path(
                    lane,
                    months,
                    factor_paths[i],
                    work[scope_row + 3 : scope_row + 2 * (n_ops + 1) : 2],
                    work[scope_row + 2 : scope_row + 2 * (n_ops + 1) : 2],
                    work[cash_row : cash_row + n_ops],
                    iwork[n_ctr:, 0],
                    ops,
                    f_phases,
                    pair_gen,
                    facilities,
                    fsc,
                    scratch,
                    g_ebitda,
                    g_other,
                    g_draw,
                    g_value,
                    g_months,
                    g_cdef,
                    g_crev,
                )
        if finance:
            group_paths = factor_paths[i0 : i0 + n_active]
            finance_lanes(
                b, n_active, g_ebitda, g_other, g_draw, g_value, group_paths, g_months,
                u_refi, ops, f_phases, pair_fac, pair_gen, facilities, gens, keep, base_rate, fsc,
                op_state, fac_state, impact, cum, tmp, month_sums, fan_bins, fac_sums,
            )  # fmt: skip
            record_group(
                b, n_active, horizon, op_state, fac_state, g_months, g_cdef, g_crev, f_phases,
                facilities, ops, fsc, targets, t_ops, t_cust, op_sums, min_dscr_hist, loss_hist,
                fac_sums, joint,
            )  # fmt: skip
            scatter_fans(b, n_active, fan_bins, fan_hist)
        scatter_group(b, n_active, rev_bins, conc_bins, b_rev_hist, b_conc_hist)
