"""The market kernel's blocks merged: each block's partial statistics added to the totals.

A chunk's market paths run in blocks that start on a group boundary
(engine/kernels/market_block.py ``market_block``: factors month by month, their
statistics, site costs and, with a demand side, each group's contracts and
finance), each into partial statistics of its own; engine/blocks.py runs the
blocks on the run's threads and then calls :func:`merge_markets`, which adds
the blocks' partial statistics to the totals in block order.

Everything accumulated is an integer (counts, fixed-point sums), so per-block
partial results merge to the same bits in any order and on any thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.aggregate import add_block

__all__ = ["merge_markets"]


@njit(cache=True)
def merge_markets(
    b_hist: np.ndarray,
    b_sums: np.ndarray,
    b_squeeze: np.ndarray,
    b_curtail: np.ndarray,
    b_curtailed: np.ndarray,
    b_site_hist: np.ndarray,
    b_site_sums: np.ndarray,
    hist: np.ndarray,
    sums: np.ndarray,
    squeeze_months: np.ndarray,
    curtail_months: np.ndarray,
    curtailed_w: np.ndarray,
    site_hist: np.ndarray,
    site_sums: np.ndarray,
) -> None:
    """Add every block's partial market statistics to the totals, block by block.

    Parameters
    ----------
    b_hist, b_sums : numpy.ndarray
        ``int16[n_blocks, T + 1, n_out, B]`` paths by value bin and
        ``int64[n_blocks, T + 1, n_out]`` fixed-point sums, month-major.
    b_squeeze, b_curtail, b_curtailed, b_site_hist, b_site_sums : numpy.ndarray
        The totals' shapes with a leading block axis (``int64``).
    hist, sums : numpy.ndarray
        ``int64[n_out, T + 1, B]`` and ``int64[n_out, T + 1]`` (accumulated).
    squeeze_months, curtail_months, curtailed_w, site_hist, site_sums : numpy.ndarray
        Paths in squeeze by month, paths with a curtailment event by region and
        month, W curtailed by scope and month, site cost histograms and sums
        (accumulated).
    """
    n_blocks, width, n_out, n_bins = b_hist.shape
    for b in range(n_blocks):
        for t in range(width):
            for row in range(n_out):
                sums[row, t] += b_sums[b, t, row]
                for k in range(n_bins):
                    hist[row, t, k] += b_hist[b, t, row, k]
        add_block(squeeze_months, b_squeeze[b])
        add_block(curtail_months, b_curtail[b])
        add_block(curtailed_w, b_curtailed[b])
        add_block(site_hist, b_site_hist[b])
        add_block(site_sums, b_site_sums[b])
