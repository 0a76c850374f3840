"""What a block of the market kernel needs before its groups: constants and scratch arrays.

The market kernel's block function (engine/kernels/market_block.py
``market_block``) runs without numba's reference counting (``_nrt=False``): an
array it passes to an inlined helper, or a view it takes, would otherwise cost
an atomic increment and decrement (in the default book about 266 such calls per
group and month, docs/architecture.md). Such a function cannot allocate, so
everything it needs is allocated here, by plain functions that the Python side
(engine/blocks.py ``market_statistics``) calls once per chunk: the constants
(:func:`block_constants`) and one scratch set per thread (:func:`block_scratch`),
which the blocks borrow in turn; the arrays live as long as that call.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.kernels.lanes import LANES
from engine.kernels.market_steps import month_constants
from engine.market_layout import R_PPA_SHARE, R_SPIKE_MEAN, S_FIRST_MOY

__all__ = ["block_constants", "block_scratch"]


@njit(cache=True, error_model="numpy")
def block_constants(
    scalars: np.ndarray,
    region: np.ndarray,
    season: np.ndarray,
    ppa_price: np.ndarray,
    gpu: np.ndarray,
    fire_sale_keep: np.ndarray,
    center: np.ndarray,
    bin_scale: np.ndarray,
    unit: np.ndarray,
    n_bins: int,
    horizon: int,
) -> tuple:
    """Compute the market kernel's deterministic arrays by month, the same for every block.

    Parameters
    ----------
    scalars, region, season, ppa_price, gpu, fire_sale_keep : numpy.ndarray
        As in :func:`engine.blocks.market_statistics`.
    center, bin_scale, unit : numpy.ndarray
        ``float64[n_out, T + 1]`` bin centres (ln value) and bins per ln unit of
        each reported factor by month, and ``float64[n_out]`` its fixed-point unit.
    n_bins : int
        Value bins of a histogram row.
    horizon : int
        Months simulated.

    Returns
    -------
    tuple
        ``bin_map[T + 1, n_out, 3]`` (bin = ln v x ``[.., 1]`` + ``[.., 0]``;
        ``[.., 2]`` fixed-point units per value unit), the eight arrays of
        :func:`engine.kernels.market_steps.month_constants`, ``unhedged[R]`` (1 -
        PPA share), ``spike_p0[R]`` (probability of no spike in a month) and an
        empty ``float64[0, 0, LANES]`` series (no series kept).
    """
    n_out = center.shape[0]
    bin_map = np.empty((horizon + 1, n_out, 3))
    for t in range(horizon + 1):
        for row in range(n_out):
            bin_map[t, row, 1] = bin_scale[row, t]
            bin_map[t, row, 0] = 0.5 * n_bins - center[row, t] * bin_scale[row, t]
            bin_map[t, row, 2] = 1.0 / unit[row]
    first_moy = int(scalars[S_FIRST_MOY])
    n_regions = region.shape[0]
    unhedged = np.empty(n_regions)
    spike_p0 = np.empty(n_regions)
    for r in range(n_regions):
        unhedged[r] = 1.0 - region[r, R_PPA_SHARE]
        spike_p0[r] = math.exp(-region[r, R_SPIKE_MEAN])
    months = month_constants(region, season, ppa_price, gpu, fire_sale_keep, first_moy, horizon)
    # (numba builds a tuple with * as a list: heterogeneous items need +)
    return (bin_map,) + months + (unhedged, spike_p0, np.zeros((0, 0, LANES)))  # noqa: RUF005


@njit(cache=True)
def block_scratch(
    n_streams: int, n_factors: int, n_regions: int, n_gens: int, n_phases: int, horizon: int
) -> tuple:
    """Allocate a block's scratch: generator states and a group's factor state, lanes innermost.

    Parameters
    ----------
    n_streams : int
        Streams of a path (columns ``stream x LANES + lane`` of the states).
    n_factors, n_regions, n_gens, n_phases : int
        Copula factors, regions, GPU generations and capacity phases.
    horizon : int
        Months simulated.

    Returns
    -------
    tuple
        The 33 arrays that :func:`engine.kernels.market_block.market_block`
        unpacks, in its order (zeros, but ones for the Student-t scale and the
        GPU regime).
    """
    rng = np.zeros((4, n_streams * LANES), dtype=np.uint64)
    eps = np.zeros((n_factors, LANES))
    z = np.zeros((n_factors, LANES))
    scale = np.ones(LANES)
    demand = np.zeros(LANES)
    x_ou = np.zeros((n_regions, LANES))
    y_spike = np.zeros((n_regions, LANES))
    charge = np.zeros((n_regions, LANES))
    log_charge = np.zeros((n_regions, LANES))
    cum = np.zeros((n_regions, horizon + 1, LANES))  # $ per utility MW, months 1..t
    spent = np.zeros((n_regions, LANES))  # $ per utility MW in month t
    curtailed = np.zeros((n_regions, LANES, horizon + 1), dtype=np.int64)  # event months
    n_curtailed = np.zeros((n_regions, LANES), dtype=np.int64)
    event = np.zeros(LANES, dtype=np.bool_)
    spikes = np.zeros(LANES, dtype=np.int64)
    chi = np.zeros(LANES)
    xi = np.zeros(LANES)
    own = np.zeros(LANES)
    jumps = np.zeros(LANES, dtype=np.int64)
    squeeze = np.zeros(LANES, dtype=np.int64)
    switch = np.zeros(LANES, dtype=np.int64)  # month of the squeeze regime's next switch
    copper = np.zeros((horizon + 1, LANES))
    gpu_regime = np.ones(LANES, dtype=np.int64)
    y_gpu = np.zeros((n_gens, LANES))
    launch = np.zeros((n_gens, LANES), dtype=np.int64)
    log_v = np.zeros(LANES)  # lane scratch: ln values and values recorded
    value = np.zeros(LANES)
    price = np.zeros(LANES)
    uniform = np.zeros(LANES)
    fixed = np.zeros((1, LANES))  # fixed-point values + FIXED_MAGIC (lanes.fixed_sum)
    bins = np.zeros((1, LANES), dtype=np.int64)
    months_lanes = np.zeros((n_phases, LANES), dtype=np.int64)  # energization
    bits = np.zeros(LANES, dtype=np.int64)  # exp_lanes' 2^k
    return (
        rng, eps, z, scale, demand, x_ou, y_spike, charge, log_charge, cum, spent, curtailed,
        n_curtailed, event, spikes, chi, xi, own, jumps, squeeze, switch, copper, gpu_regime,
        y_gpu, launch, log_v, value, price, uniform, fixed, bins, months_lanes, bits,
    )  # fmt: skip
