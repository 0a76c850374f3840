"""A block's partial statistics and scratch arrays for the demand side and finance.

A block (one thread's share of a chunk, at most ``BLOCK_PATHS`` paths) adds its
paths' statistics into partial results of its own, which are added to the
totals after every block is done (:func:`demand_blocks`, :func:`merge_blocks`);
its groups of ``GROUP`` paths reuse one set of scratch arrays
(:func:`demand_scratch`). Both the market kernel (engine/kernels/market_block.py),
which runs each group's demand side right after the group's markets, and the
demand-side kernel alone (engine/kernels/demand_kernel.py) use them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.aggregate import add_block
from engine.kernels.contract_records import latent_scales
from engine.kernels.contracts import C_CUSTOMER, C_OPERATOR, C_RATE, GROUP, N_LANE_F, N_LANE_I
from engine.kernels.finance_fields import N_FAC_STATE, N_FAN, N_OP_STATE, N_TMP

__all__ = ["demand_blocks", "demand_scratch", "merge_blocks"]


@njit(cache=True)
def demand_blocks(n_blocks: int, outputs: tuple, fin_outputs: tuple) -> tuple:
    """Zero partial statistics of ``n_blocks`` blocks, one leading block axis each.

    Parameters
    ----------
    n_blocks : int
        Blocks (each holds at most ``BLOCK_PATHS`` paths: histograms count in int16).
    outputs, fin_outputs : tuple
        The demand side's and the finance's statistics (their shapes are used).

    Returns
    -------
    tuple
        ``(b_dem, b_fin)``: the eight demand-side arrays (``ct_sums`` ..
        ``lost_counts``) and the seven finance arrays, as the block functions take them.
    """
    ct_sums, ct_hist, rev_sums, rev_hist, conc_sums, conc_hist, cust_sums, lost = outputs
    month_sums, fan_hist, op_sums, min_dscr_hist, loss_hist, fac_sums, joint = fin_outputs
    n, i8, i16 = (n_blocks,), np.int64, np.int16
    b_dem = (
        np.zeros(n + ct_sums.shape, dtype=i8), np.zeros(n + ct_hist.shape, dtype=i16),
        np.zeros(n + rev_sums.shape, dtype=i8), np.zeros(n + rev_hist.shape, dtype=i16),
        np.zeros(n + conc_sums.shape, dtype=i8), np.zeros(n + conc_hist.shape, dtype=i16),
        np.zeros(n + cust_sums.shape, dtype=i8), np.zeros(n + lost.shape, dtype=i8),
    )  # fmt: skip
    b_fin = (
        np.zeros(n + month_sums.shape, dtype=i8), np.zeros(n + fan_hist.shape, dtype=i16),
        np.zeros(n + op_sums.shape, dtype=i8), np.zeros(n + min_dscr_hist.shape, dtype=i8),
        np.zeros(n + loss_hist.shape, dtype=i8), np.zeros(n + fac_sums.shape, dtype=i8),
        np.zeros(n + joint.shape, dtype=i8),
    )  # fmt: skip
    return b_dem, b_fin


@njit(cache=True)
def merge_blocks(b_dem: tuple, b_fin: tuple, outputs: tuple, fin_outputs: tuple) -> None:
    """Add every block's partial statistics to the totals (integers: any order, same bits).

    Parameters
    ----------
    b_dem, b_fin : tuple
        The blocks' partial statistics of the demand side and of the finance
        (:func:`demand_blocks`, leading block axis).
    outputs, fin_outputs : tuple
        The totals (:meth:`engine.demand_stats.DemandStats.kernel_args`), accumulated.
    """
    for b in range(b_dem[0].shape[0]):
        add_block(outputs[0], b_dem[0][b])
        add_block(outputs[1], b_dem[1][b])
        add_block(outputs[2], b_dem[2][b])
        add_block(outputs[3], b_dem[3][b])
        add_block(outputs[4], b_dem[4][b])
        add_block(outputs[5], b_dem[5][b])
        add_block(outputs[6], b_dem[6][b])
        add_block(outputs[7], b_dem[7][b])
        add_block(fin_outputs[0], b_fin[0][b])
        add_block(fin_outputs[1], b_fin[1][b])
        add_block(fin_outputs[2], b_fin[2][b])
        add_block(fin_outputs[3], b_fin[3][b])
        add_block(fin_outputs[4], b_fin[4][b])
        add_block(fin_outputs[5], b_fin[5][b])
        add_block(fin_outputs[6], b_fin[6][b])


@njit(cache=True)
def demand_scratch(horizon: int, inputs: tuple, fin_inputs: tuple, b_dem: tuple) -> tuple:
    """Allocate a block's scratch arrays for :func:`engine.kernels.demand_kernel.demand_group`.

    Allocated by the Python side, one set per thread, which the market kernel's
    blocks borrow in turn (engine/blocks.py ``market_statistics``: that kernel
    allocates nothing), and by the demand kernel alone once per block
    (``contract_block``). When the blocks ran in a ``prange`` loop, numba's
    parfor pass mishandled scratch arrays allocated in its body directly and
    written through views. Group buffers keep the lanes innermost.

    Parameters
    ----------
    horizon : int
        Months simulated.
    inputs, fin_inputs : tuple
        The demand side's inputs (:class:`engine.demand_arrays.DemandArrays`, in
        order) and the finance's (:meth:`engine.finance_stats.FinanceStats.inputs`).
    b_dem : tuple
        The blocks' demand-side statistics (:func:`demand_blocks`: the operators).

    Returns
    -------
    tuple
        The 42 arrays (and tuples of arrays) that ``demand_group`` unpacks, in its order.
    """
    customers, contracts, phase_start, _, phase_gpus, dsc, streams = inputs[:7]
    n_cust, n_ctr = customers.shape[0], contracts.shape[0]
    n_ops = b_dem[4].shape[1]  # conc_sums: [block, operator, ...]
    pair_fac, facilities, gens = fin_inputs[2], fin_inputs[4], fin_inputs[5]
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
    fixed = np.zeros((4, GROUP))  # a month's fixed-point records (revenue, finance)
    lost = np.zeros(fin_inputs[0].shape[0])  # lenders' loss by operator on a path, $
    return (
        rng, default_month, scales, c_op, c_cust, c_value, g_tau, g_u, gpus, lane_f,
        lane_i, earned_out, relet_out, credit_out, state, revenue, cash, realised, backlog,
        hhi_l, top_l, rev_bins, conc_bins, g_ebitda, g_other, g_draw, g_value, g_crev, u_refi,
        g_mw, g_units, merchant, online, op_state, fac_state, impact, cum, tmp, fan_bins,
        demand, fixed, lost,
    )  # fmt: skip
