"""The cost floor of the capacity kernel: drawing its random numbers and nothing else.

The kernel in :mod:`engine.kernels.capacity` seeds one stream per operator,
campus and site on every path and draws a fixed number of normals (and one
uniform per site) from each. :func:`draw_like_capacity` does exactly that with
the engine's own generator (:mod:`engine.rng`), the same stream ids, the same
block-wise ``prange`` over paths, and only sums the draws (so that the compiler
cannot drop them). A kernel cannot be faster than this without a faster
generator.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine.book import CapacityArrays
from engine.rng import next_normal, next_uniform, seed_stream

__all__ = ["DrawPlan", "draw_like_capacity", "draw_plan"]

_BLOCK = 256
_N_FACTOR_KINDS = 4

#: Stream ids and, per stream, normals and uniforms drawn on every path.
DrawPlan = tuple[np.ndarray, np.ndarray, np.ndarray]


def draw_plan(arrays: CapacityArrays) -> DrawPlan:
    """Streams and draws per path of the capacity kernel.

    Parameters
    ----------
    arrays : CapacityArrays
        Lowered book.

    Returns
    -------
    tuple of numpy.ndarray
        ``uint64`` stream ids (operators, campuses, sites), ``int64`` normals
        and ``int64`` uniforms drawn from each stream on one path.
    """
    n_factors = arrays.operator_stream.shape[0] + arrays.campus_stream.shape[0]
    last_item = arrays.phase_item_end[arrays.site_phase_end - 1]
    site_normals = 1 + last_item - arrays.site_item_start  # overrun noise + items
    streams = np.concatenate([arrays.operator_stream, arrays.campus_stream, arrays.site_stream])
    normals = np.concatenate([np.full(n_factors, _N_FACTOR_KINDS), site_normals])
    uniforms = np.concatenate([np.zeros(n_factors), np.ones(arrays.site_stream.shape[0])])
    return streams.astype(np.uint64), normals.astype(np.int64), uniforms.astype(np.int64)


@njit(parallel=True)
def draw_like_capacity(
    seed: np.uint64,
    path0: np.uint64,
    streams: np.ndarray,
    normals: np.ndarray,
    uniforms: np.ndarray,
    out: np.ndarray,
) -> None:
    """Draw every path's random numbers as the capacity kernel does, and sum them.

    Parameters
    ----------
    seed, path0 : numpy.uint64
        Run seed and global id of the first path.
    streams, normals, uniforms : numpy.ndarray
        The :func:`draw_plan` of the book.
    out : numpy.ndarray
        ``float64[n]`` written in place: sum of the draws of each path (unitless).
    """
    n_paths = out.shape[0]
    for block in prange((n_paths + _BLOCK - 1) // _BLOCK):
        state = np.empty(4, dtype=np.uint64)
        for i in range(block * _BLOCK, min(n_paths, (block + 1) * _BLOCK)):
            total = 0.0
            for j in range(streams.shape[0]):
                seed_stream(state, seed, path0 + np.uint64(i), streams[j])
                for _ in range(normals[j]):
                    total += next_normal(state)
                for _ in range(uniforms[j]):
                    total += next_uniform(state)
            out[i] = total
