"""A chunk's paths in blocks on the run's threads: the market and demand kernels' entry points.

A chunk is split into blocks that start on a group boundary (``LANES`` paths);
each block runs its groups one after the other into partial statistics of its
own (a leading block axis), and the blocks' partial statistics are added to the
totals in block order after all of them are done. Every statistic is an
integer (counts, fixed-point sums), so the totals are the same bits whatever
the number of blocks, the threads and the order in which blocks finish.

The blocks run on ``numba.get_num_threads()`` Python threads (the driver,
engine/simulate.py, sets it from ``run.threads``), each calling the compiled
block function, which releases the GIL (``nogil=True``). A ``prange`` loop over
the blocks did the same work, but numba compiles a parallel loop's body into a
function of its own and optimises and generates machine code for everything it
calls again at each level (the block, the parallel body, the kernel around it):
more than a third of the default run's compilation (docs/architecture.md,
"Compilation time").
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from queue import SimpleQueue
from typing import Any

import numba
import numpy as np

from engine.kernels.contracts import GROUP
from engine.kernels.demand_blocks import demand_blocks, demand_scratch, merge_blocks
from engine.kernels.demand_kernel import contract_block
from engine.kernels.lanes import BLOCK_PATHS, LANES
from engine.kernels.market_block import market_block
from engine.kernels.market_scratch import block_constants, block_scratch
from engine.kernels.markets import merge_markets

__all__ = [
    "block_layout",
    "block_threads",
    "contract_statistics",
    "market_statistics",
    "run_blocks",
]


def block_layout(n_paths: int, n_blocks: int, group: int) -> tuple[int, int]:
    """Blocks of a chunk and paths per block.

    Parameters
    ----------
    n_paths : int
        Paths of the chunk.
    n_blocks : int
        Blocks asked for (usually the thread count); raised so that no block holds
        more than ``BLOCK_PATHS`` paths (its histograms count in int16).
    group : int
        Paths of a group: ``per_block`` is a multiple of it (the last blocks may
        hold fewer paths, or none).

    Returns
    -------
    tuple of int
        ``(n_blocks, per_block)``: block ``b`` holds paths
        ``b * per_block .. min(n_paths, (b + 1) * per_block) - 1``.
    """
    n_blocks = max(n_blocks, 1, (n_paths + BLOCK_PATHS - 1) // BLOCK_PATHS)
    per_block = ((n_paths + n_blocks - 1) // n_blocks + group - 1) // group * group
    return n_blocks, per_block


def block_threads(n_blocks: int) -> int:
    """Threads that run ``n_blocks`` blocks: ``numba.get_num_threads()``, at most one per block."""
    return max(1, min(numba.get_num_threads(), n_blocks))


def run_blocks(
    block: Callable[..., None],
    n_blocks: int,
    *args: Any,
    scratch: list[tuple[Any, ...]] | None = None,
) -> None:
    """Call ``block(np.int64(b), *args, *scratch[k])`` for every block ``b``, on the run's threads.

    The threads are ``numba.get_num_threads()`` of the calling thread, at most one
    per block (:func:`block_threads`): the driver (engine/simulate.py) sets it from
    ``run.threads`` on the thread that then runs the chunks, and a sweep's jobs are
    processes of their own. numba keeps that number per thread, so a caller on
    another thread must call ``numba.set_num_threads`` there first. Blocks are
    handed to the threads in block order as they become free; which thread runs a
    block changes no result.

    Parameters
    ----------
    block : numba dispatcher
        A compiled block function with ``nogil=True``; it writes only the rows of
        block ``b`` of its partial statistics and the rows of its own paths.
    n_blocks : int
        Blocks.
    *args
        The block function's other arguments, the same for every block.
    scratch : list of tuple, optional
        Scratch arguments, appended after ``args``: at least one tuple per thread.
        A block borrows a tuple that no running block holds and returns it when it
        ends, so that the next block on that thread reuses it (a block function
        must therefore give the same results whatever its scratch holds on entry,
        as it does for its own groups). None if not given.

    Raises
    ------
    ValueError
        If ``block`` does not release the GIL (its threads would run one at a
        time), or if there are fewer scratch tuples than threads.
    Exception
        The error of the first block (in block order) found failed: blocks not yet
        started are dropped, those running finish first, nothing is merged.
    """
    if not getattr(block, "targetoptions", {}).get("nogil", False):
        raise ValueError(f"{block} must be compiled with nogil=True to run on threads")
    threads = block_threads(n_blocks)
    sets = scratch if scratch is not None else [()] * threads
    if len(sets) < threads:
        raise ValueError(f"{len(sets)} scratch tuples for {threads} threads")
    if threads == 1:
        for b in range(n_blocks):
            block(np.int64(b), *args, *sets[0])
        return
    free: SimpleQueue[tuple[Any, ...]] = SimpleQueue()
    for k in range(threads):
        free.put(sets[k])

    def borrowing(b: int) -> None:
        mine = free.get()  # one is free: each of the threads holds at most one
        try:
            block(np.int64(b), *args, *mine)
        finally:
            free.put(mine)

    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ncrisk-block")
    try:
        futures = [pool.submit(borrowing, b) for b in range(n_blocks)]
        # a failed block stops the queue at once (not after the blocks before it);
        # its error is raised when the blocks already running have finished
        wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in futures if f.done() and f.exception() is not None]
        for future in failed[:1] + futures:
            future.result()
    finally:
        # on an error or Ctrl-C, blocks not started are dropped; running ones finish
        pool.shutdown(wait=True, cancel_futures=True)


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
        Independent partial results (any value: same result; raised so that no
        block holds more than ``BLOCK_PATHS`` paths).
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
    width = sums.shape[1]  # T + 1
    n_blocks, per_block = block_layout(n_paths, n_blocks, LANES)
    i8 = np.int64
    # int16 partial counts (at most BLOCK_PATHS paths a block): the histogram stays in L2
    b_hist = np.zeros((n_blocks, width, hist.shape[0], hist.shape[2]), dtype=np.int16)
    b_sums = np.zeros((n_blocks, width, sums.shape[0]), dtype=i8)
    b_squeeze = np.zeros((n_blocks, *squeeze_months.shape), dtype=i8)
    b_curtail = np.zeros((n_blocks, *curtail_months.shape), dtype=i8)
    b_curtailed = np.zeros((n_blocks, *curtailed_w.shape), dtype=i8)
    b_site_hist = np.zeros((n_blocks, *site_hist.shape), dtype=i8)
    b_site_sums = np.zeros((n_blocks, *site_sums.shape), dtype=i8)
    # the series of each block's current group (kept only for the demand side)
    keeping, full = factor_paths.shape[1] > 0, factor_paths.shape[0] > 0
    slots = np.zeros((n_blocks if keeping and not full else 0, factor_paths.shape[1], width, LANES))
    b_dem, b_fin = demand_blocks(n_blocks if demand_side else 0, dem_out, fin_outputs)
    # the kernel allocates nothing (no reference counting, engine/kernels/market_scratch.py):
    # its constants, and scratch for each thread (a block borrows one for its call)
    horizon = width - 1
    constants = block_constants(scalars, region, season, ppa_price, gpu, fire_sale_keep, center,
        bin_scale, unit, hist.shape[2], horizon)  # fmt: skip
    dims = (streams.shape[0], copula_factor.shape[0], region.shape[0], gpu.shape[0])
    scratch = [
        (
            block_scratch(*dims, energization.shape[1], horizon),
            demand_scratch(horizon, dem_in, fin_inputs, b_dem),
        )
        for _ in range(block_threads(n_blocks))
    ]
    run_blocks(market_block, n_blocks, per_block, seed, path0, energization, switches, scalars,
        copula_factor, t_table, region, gpu, regime_transition, regime_offset, streams, report,
        site_region, site_pue, site_operator, site_phase_start, site_phase_end, site_center,
        phase_mw, phase_curtail_w, phase_scopes, region_phase_start, region_phase_index,
        b_hist, b_sums, b_squeeze, b_curtail, b_curtailed, b_site_hist, b_site_sums, trace,
        factor_paths, slots, demand_side, dem_in, fin_inputs, b_dem, b_fin, constants,
        scratch=scratch)  # fmt: skip
    if demand_side:
        merge_blocks(b_dem, b_fin, dem_out, fin_outputs)
    merge_markets(b_hist, b_sums, b_squeeze, b_curtail, b_curtailed, b_site_hist, b_site_sums,
        hist, sums, squeeze_months, curtail_months, curtailed_w, site_hist, site_sums)  # fmt: skip


def contract_statistics(
    seed: np.uint64,
    path0: np.uint64,
    energization: np.ndarray,
    factor_paths: np.ndarray,
    inputs: tuple,
    fin_inputs: tuple,
    n_blocks: int,
    outputs: tuple,
    fin_outputs: tuple,
) -> None:
    """Add the demand-side (and finance) statistics of paths ``path0 .. path0 + n - 1``.

    The demand side alone, on market series given for every path (a run calls
    :func:`engine.kernels.demand_kernel.demand_group` from the market block instead).

    Parameters
    ----------
    seed, path0 : numpy.uint64
        Run seed and global id of the first path.
    energization : numpy.ndarray
        ``float64[n, P]`` energization times (months) of the paths.
    factor_paths : numpy.ndarray
        ``float64[ceil(n / GROUP), channels, T + 1, GROUP]`` the paths' market
        series (path ``i`` in group ``i // GROUP``, lane ``i % GROUP``).
    inputs, fin_inputs : tuple
        The fields of :class:`engine.demand_arrays.DemandArrays` in order, and the
        finance's inputs (:meth:`engine.finance_stats.FinanceStats.inputs`, or
        :meth:`engine.finance_stats.FinanceStats.disabled`).
    n_blocks : int
        Independent partial results (any value: the same statistics).
    outputs, fin_outputs : tuple
        Statistics ``ct_sums`` .. ``lost_counts`` and the finance's, accumulated.
    """
    n_paths = energization.shape[0]
    horizon = factor_paths.shape[2] - 1  # [group, channel, month, lane]
    n_blocks, per_block = block_layout(n_paths, n_blocks, GROUP)
    b_dem, b_fin = demand_blocks(n_blocks, outputs, fin_outputs)
    run_blocks(contract_block, n_blocks, per_block, seed, path0, energization, factor_paths,
        horizon, inputs, fin_inputs, b_dem, b_fin)  # fmt: skip
    merge_blocks(b_dem, b_fin, outputs, fin_outputs)
