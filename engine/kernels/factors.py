"""Building blocks of the market factors: inline numba functions on one path.

Each function advances a generator state passed in (row ``k`` of the path's
stream states, see engine/rng.py) and returns a draw or a new factor value. They are shared
by the market kernel and, for the copper squeeze regime, by the capacity
kernel, which replays the same stream to stretch equipment lead times.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.rng import next_normal, next_uniform, seed_stream

__all__ = [
    "REGIME_NORMAL",
    "REGIME_SQUEEZE",
    "T_GRID_MAX",
    "T_GRID_POINTS",
    "chi_square",
    "markov_step",
    "poisson_count",
    "replayed_stretch",
    "squeeze_next",
    "squeeze_start",
    "stretched_duration",
    "t_to_normal",
]

REGIME_NORMAL = 0
REGIME_SQUEEZE = 1
#: Grid of the Student-t -> normal score table, in w = asinh(x), on [-T_GRID_MAX, T_GRID_MAX].
T_GRID_MAX = 20.0
T_GRID_POINTS = 8193
_T_DW = 2.0 * T_GRID_MAX / (T_GRID_POINTS - 1)


@njit(cache=True, inline="always")
def poisson_count(state: np.ndarray, k: int, mean: float, p0: float) -> int:
    """Poisson(mean) count by inversion of one uniform; ``p0`` = exp(-mean)."""
    if mean <= 0.0:
        return 0
    u = next_uniform(state, k)
    p = p0
    cdf = p
    count = 0
    while u > cdf and count < 10_000:
        count += 1
        p *= mean / count
        cdf += p
        if p == 0.0:
            break
    return count


@njit(cache=True, inline="always")
def markov_step(state: np.ndarray, k: int, regime: int, transition: np.ndarray) -> int:
    """Next regime of a Markov chain: row ``regime`` of ``transition`` by one uniform."""
    u = next_uniform(state, k)
    n = transition.shape[1]
    cdf = 0.0
    for j in range(n - 1):
        cdf += transition[regime, j]
        if u < cdf:
            return j
    return n - 1


@njit(cache=True, inline="always")
def squeeze_start(state: np.ndarray, k: int, initial: int, enter: float, leave: float) -> int:
    """Regime before month 1: 0 normal, 1 squeeze, 2 drawn from the stationary law."""
    if initial != 2:
        return initial
    stationary = enter / (enter + leave)
    return REGIME_SQUEEZE if next_uniform(state, k) < stationary else REGIME_NORMAL


@njit(cache=True, inline="always")
def squeeze_next(state: np.ndarray, k: int, regime: int, enter: float, leave: float) -> int:
    """Regime of the next month of the two-state squeeze chain (one uniform)."""
    u = next_uniform(state, k)
    if regime == REGIME_NORMAL:
        return REGIME_SQUEEZE if u < enter else REGIME_NORMAL
    return REGIME_NORMAL if u < leave else REGIME_SQUEEZE


@njit(cache=True)
def stretched_duration(
    work: float,
    rng: np.ndarray,
    row: int,
    seed: np.uint64,
    path: np.uint64,
    stream: np.uint64,
    initial: int,
    enter: float,
    leave: float,
    factor: float,
) -> float:
    """Calendar months to finish ``work`` months of equipment lead time.

    In a squeeze month the work progresses at 1/factor of its pace. The regime
    path is replayed from its stream (the same one the market kernel draws), so
    the capacity and market models see one squeeze history per path.

    Parameters
    ----------
    work : float
        Lead time in months if no squeeze occurs.
    rng : numpy.ndarray
        ``uint64[n, 4]`` generator states; row ``row`` is overwritten (scratch).
    row : int
        Row of ``rng`` to use.
    seed, path, stream : numpy.uint64
        Run seed, global path id and the squeeze regime's stream id.
    initial : int
        0 normal, 1 squeeze, 2 stationary draw.
    enter, leave : float
        Monthly transition probabilities normal -> squeeze and squeeze -> normal.
    factor : float
        Slow-down in squeeze months (>= 1); 1 returns ``work`` unchanged.

    Returns
    -------
    float
        Months from the start until the equipment is delivered (``inf`` stays ``inf``).
    """
    if factor == 1.0 or not work < math.inf:
        return work
    seed_stream(rng, row, seed, path, stream)
    regime = squeeze_start(rng, row, initial, enter, leave)
    done = 0.0
    month = 0
    while True:
        regime = squeeze_next(rng, row, regime, enter, leave)
        rate = 1.0 / factor if regime == REGIME_SQUEEZE else 1.0
        if done + rate >= work:
            return month + (work - done) / rate
        done += rate
        month += 1


@njit(cache=True, inline="always")
def chi_square(state: np.ndarray, k: int, nu: float) -> float:
    """chi^2 with ``nu`` > 2 degrees of freedom: 2 Gamma(nu / 2) (Marsaglia-Tsang 2000)."""
    d = nu / 2.0 - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = next_normal(state, k)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = next_uniform(state, k)
        if math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v):
            return 2.0 * d * v


@njit(cache=True, inline="always")
def t_to_normal(x: float, table: np.ndarray) -> float:
    """Map a Student-t value to its normal score Phi^-1(F_nu(x)) (table in asinh(x))."""
    w = (math.asinh(x) + T_GRID_MAX) / _T_DW
    if w <= 0.0:
        return table[0]
    j = int(w)
    if j >= T_GRID_POINTS - 1:
        return table[T_GRID_POINTS - 1]
    frac = w - j
    return table[j] + frac * (table[j + 1] - table[j])


@njit(cache=True, inline="always")
def replayed_stretch(
    work: float,
    rng: np.ndarray,
    row: int,
    seed: np.uint64,
    path: np.uint64,
    stream: np.uint64,
    squeeze: np.ndarray,
    replay: np.ndarray,
    cum: np.ndarray,
    rates: np.ndarray,
) -> float:
    """:func:`stretched_duration` for many items of one path, replaying the regime once.

    The path's squeeze months are drawn once, as far as the longest item needs,
    and kept with their cumulative progress; every item then reads them. Same
    result, bit for bit, as :func:`stretched_duration`.

    Parameters
    ----------
    work : float
        Lead time in months if no squeeze occurs.
    rng : numpy.ndarray
        ``uint64[n, 4]`` generator states; row ``row`` holds the replayed stream.
    row : int
        Row of ``rng`` to use.
    seed, path, stream : numpy.uint64
        Run seed, global path id and the squeeze regime's stream id.
    squeeze : numpy.ndarray
        ``float64[4]``: initial state (0 normal, 1 squeeze, 2 stationary), P(enter),
        P(exit) per month, slow-down factor (1 = no effect).
    replay : numpy.ndarray
        ``int64[2]``: months replayed so far for this path (-1 before the first
        item: set it so for every new path) and the regime of the last one.
    cum, rates : numpy.ndarray
        ``float64[M]`` scratch: progress after k months, and the pace in month k.

    Returns
    -------
    float
        Months from the start until the equipment is delivered.
    """
    factor = squeeze[3]
    if factor == 1.0 or not work < math.inf or work <= 0.0:
        return work
    enter, leave = squeeze[1], squeeze[2]
    if replay[0] < 0:
        seed_stream(rng, row, seed, path, stream)
        replay[1] = squeeze_start(rng, row, int(squeeze[0]), enter, leave)
        replay[0] = 0
        cum[0] = 0.0
    n = replay[0]
    while cum[n] < work:
        if n + 1 >= cum.shape[0]:  # beyond the scratch: the slow path, same numbers
            scratch = np.empty((1, 4), dtype=np.uint64)
            return stretched_duration(
                work, scratch, 0, seed, path, stream, int(squeeze[0]), enter, leave, factor
            )
        regime = squeeze_next(rng, row, replay[1], enter, leave)
        replay[1] = regime
        rates[n + 1] = 1.0 / factor if regime == REGIME_SQUEEZE else 1.0
        cum[n + 1] = cum[n] + rates[n + 1]
        n += 1
    replay[0] = n
    lo, hi = 1, n  # smallest k with cum[k] >= work (cum increases with k)
    while lo < hi:
        mid = (lo + hi) // 2
        if cum[mid] < work:
            lo = mid + 1
        else:
            hi = mid
    return (lo - 1) + (work - cum[lo - 1]) / rates[lo]
