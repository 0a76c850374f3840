"""The cost floors of the capacity and market kernels: drawing their random numbers only.

The kernel in :mod:`engine.kernels.capacity` seeds one stream per operator,
campus and site on every path and draws a fixed number of normals (and one
uniform per site) from each. :func:`draw_like_capacity` does exactly that with
the engine's own generator (:mod:`engine.rng`), the same stream ids, the same
block-wise ``prange`` over paths, and only sums the draws (so that the compiler
cannot drop them). A kernel cannot be faster than this without a faster
generator.

:func:`draw_like_markets` does the same for the market kernel
(:mod:`engine.kernels.market_block`): it seeds the kernel's streams on every path and
draws, month by month, the normals and uniforms that :func:`market_draw_plan`
counts (Poisson-distributed jumps at their expected rate, spread evenly over
the months), from a precomputed schedule so the loop does nothing but draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from engine.book import CapacityArrays
from engine.kernels.lanes import LANES
from engine.market_arrays import factor_matrix_names
from engine.market_layout import (
    G_SUCC_LO,
    R_CAP_SIGMA,
    R_CURTAIL_P,
    R_SPIKE_MEAN,
    S_CU_JUMP_MEAN,
    S_GPU_REGIMES,
    S_SQ_ENTER,
    S_SQ_EXIT,
    S_SQ_INITIAL,
    MarketArrays,
)
from engine.rng import next_normal, next_uniform, seed_stream, stream_id, uniforms_lanes
from engine.scenario import Book

__all__ = [
    "DrawPlan",
    "MarketDrawPlan",
    "draw_like_capacity",
    "draw_like_markets",
    "draw_plan",
    "market_draw_plan",
]

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
        state = np.empty((4, 1), dtype=np.uint64)
        for i in range(block * _BLOCK, min(n_paths, (block + 1) * _BLOCK)):
            total = 0.0
            for j in range(streams.shape[0]):
                seed_stream(state, 0, seed, path0 + np.uint64(i), streams[j])
                for _ in range(normals[j]):
                    total += next_normal(state, 0)
                for _ in range(uniforms[j]):
                    total += next_uniform(state, 0)
            out[i] = total


@dataclass(frozen=True)
class MarketDrawPlan:
    """Streams of the market kernel and the draws from each, per path and per month.

    Attributes
    ----------
    streams : numpy.ndarray
        ``uint64[K]`` stream ids, in the kernel's order (``MarketArrays.streams``).
    names : tuple of str
        Name of each stream.
    month_normals, month_uniforms : numpy.ndarray
        ``float64[K]`` expected normals / uniforms per month (jumps at their rate).
    path_normals, path_uniforms : numpy.ndarray
        ``int64[K]`` drawn once per path, before month 1 (squeeze start, successor launch).
    """

    streams: np.ndarray
    names: tuple[str, ...]
    month_normals: np.ndarray
    month_uniforms: np.ndarray
    path_normals: np.ndarray
    path_uniforms: np.ndarray

    def per_path_month(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Normals and uniforms per path-month of each stream (path draws spread over T)."""
        return (
            self.month_normals + self.path_normals / horizon,
            self.month_uniforms + self.path_uniforms / horizon,
        )

    def schedule(self, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every draw of a path in order: month 0 (path draws), then months 1..T.

        A fractional rate r draws ``int(r t) - int(r (t - 1))`` times in month t.

        Returns
        -------
        tuple of numpy.ndarray
            ``int64[T + 2]`` start of each month's draws, then per draw its stream
            (``int64``) and kind (``int64``: 0 normal, 1 uniform).
        """
        start, stream, kind = [0], [], []
        for t in range(horizon + 1):
            for j in range(self.streams.shape[0]):
                if t == 0:
                    normals, uniforms = self.path_normals[j], self.path_uniforms[j]
                else:
                    rate_n, rate_u = self.month_normals[j], self.month_uniforms[j]
                    normals = int(rate_n * t) - int(rate_n * (t - 1))
                    uniforms = int(rate_u * t) - int(rate_u * (t - 1))
                stream += [j] * (normals + uniforms)
                kind += [0] * normals + [1] * uniforms
            start.append(len(stream))
        return (
            np.array(start, dtype=np.int64),
            np.array(stream, dtype=np.int64),
            np.array(kind, dtype=np.int64),
        )


def market_draw_plan(arrays: MarketArrays, book: Book, horizon: int) -> MarketDrawPlan:
    """Count the draws of :func:`engine.blocks.market_statistics` (rejections aside).

    Streams, in the kernel's order: copula (the Student-t chi-square), copper,
    copper squeeze, GPU regime, each region's electricity, each generation, then
    one shock stream per copula factor. Per month: one normal per factor from its
    shock stream (Student-t: plus one chi-square draw, counted as one normal and
    one uniform); per region with stochastic electricity one uniform for the
    spike count, spike normals at the spike rate, a capacity-charge normal each
    new year (if its sigma > 0) and one uniform for the curtailment event (if its
    probability > 0); copper its own normal, one uniform for the jump count, jump
    normals at the jump rate, one uniform per switch of the squeeze regime (at its
    stationary switching rate); one uniform for the GPU regime (if enabled). Per
    path: one uniform for the squeeze start (stationary start), one for its first
    spell, and one per generation with a successor window.

    Raises
    ------
    ValueError
        If the kernel's stream layout is not the one counted here.
    """
    sc = arrays.scalars
    _, elec_on, copper_on, gpu_on, student = (bool(x) for x in arrays.switches)
    n_regions, n_gens = arrays.region.shape[0], arrays.gpu.shape[0]
    n_factors = arrays.copula_factor.shape[0]
    shock0 = 4 + n_regions + n_gens
    k = arrays.streams.shape[0]
    if k != shock0 + n_factors or arrays.streams[shock0] != stream_id(
        "market", "shock", factor_matrix_names(book)[0]
    ):
        raise ValueError(f"unexpected market stream layout ({k} streams): update the floor")
    month_n, month_u = np.zeros(k), np.zeros(k)
    path_n, path_u = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
    month_n[shock0:] = 1.0
    month_n[0] = 1.0 if student else 0.0
    month_u[0] = 1.0 if student else 0.0
    if copper_on:
        month_n[1] = 1.0 + sc[S_CU_JUMP_MEAN]
        month_u[1] = 1.0 if sc[S_CU_JUMP_MEAN] > 0.0 else 0.0
        # squeeze: one uniform per switch (geometric spells), at the stationary
        # switching rate 2 p_in p_out / (p_in + p_out) a month, plus the first spell
        enter, leave = sc[S_SQ_ENTER], sc[S_SQ_EXIT]
        month_u[2] = 2.0 * enter * leave / (enter + leave) if enter + leave > 0 else 0.0
        path_u[2] = 1 + (1 if int(sc[S_SQ_INITIAL]) == 2 else 0)
    if sc[S_GPU_REGIMES] > 0.5:
        month_u[3] = 1.0
    new_years = (horizon - 1) // 12
    for r in range(n_regions):
        if not elec_on:
            continue
        reg = arrays.region[r]
        month_n[4 + r] = reg[R_SPIKE_MEAN]
        month_n[4 + r] += new_years / horizon if reg[R_CAP_SIGMA] > 0.0 else 0.0
        month_u[4 + r] = float(reg[R_SPIKE_MEAN] > 0.0) + float(reg[R_CURTAIL_P] > 0.0)
    for g in range(n_gens):
        path_u[4 + n_regions + g] = 1 if gpu_on and arrays.gpu[g, G_SUCC_LO] >= 0 else 0
    names = ("copula (chi-square)", "copper", "copper_squeeze", "gpu_regime")
    names += tuple(f"electricity:{r.id}" for r in book.regions)
    names += tuple(f"gpu:{g.id}" for g in book.gpu_generations)
    names += tuple(f"shock:{name}" for name in factor_matrix_names(book))
    return MarketDrawPlan(arrays.streams.astype(np.uint64), names, month_n, month_u, path_n, path_u)


@njit(parallel=True)
def draw_like_markets(
    seed: np.uint64,
    path0: np.uint64,
    streams: np.ndarray,
    start: np.ndarray,
    stream: np.ndarray,
    kind: np.ndarray,
    out: np.ndarray,
) -> None:
    """Draw every path's market random numbers (:meth:`MarketDrawPlan.schedule`), sum them.

    As the market kernel: paths run in groups of ``LANES`` with every stream of
    every lane seeded first (one state column each); then each draw of the
    schedule is made for all lanes, normals lane by lane and uniforms with the
    vectorised :func:`engine.rng.uniforms_lanes`, as the kernel draws its
    Poisson and curtailment uniforms (its few other uniforms, squeeze spells,
    successor launches, GPU regimes, go lane by lane: the floor is the cheaper).

    Parameters
    ----------
    seed, path0 : numpy.uint64
        Run seed and global id of the first path.
    streams : numpy.ndarray
        ``uint64[K]`` stream ids.
    start, stream, kind : numpy.ndarray
        The schedule (all months of a path run in one sequence).
    out : numpy.ndarray
        ``float64[n]`` written in place: sum of the draws of each path (unitless).
    """
    n_paths = out.shape[0]
    n_streams = streams.shape[0]
    n_draws = start[-1]
    for block in prange((n_paths + _BLOCK - 1) // _BLOCK):
        rng = np.zeros((4, n_streams * LANES), dtype=np.uint64)
        total = np.zeros(LANES)
        uniform = np.zeros(LANES)
        last = min(n_paths, (block + 1) * _BLOCK)
        for i0 in range(block * _BLOCK, last, LANES):
            n_active = min(LANES, last - i0)
            for lane in range(n_active):
                path = path0 + np.uint64(i0 + lane)
                total[lane] = 0.0
                for j in range(n_streams):
                    seed_stream(rng, j * LANES + lane, seed, path, streams[j])
            for e in range(n_draws):
                row0 = stream[e] * LANES
                if kind[e] == 0:
                    for lane in range(n_active):
                        total[lane] += next_normal(rng, row0 + lane)
                else:
                    uniforms_lanes(rng, row0, uniform)
                    for lane in range(LANES):
                        total[lane] += uniform[lane]
            for lane in range(n_active):
                out[i0 + lane] = total[lane]
