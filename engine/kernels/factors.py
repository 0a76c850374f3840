"""Building blocks of the market factors: inline numba functions on one path.

Each function advances a generator state passed in (column ``k`` of the path's
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
    "NEVER",
    "REGIME_NORMAL",
    "REGIME_SQUEEZE",
    "T_GRID_MAX",
    "T_GRID_POINTS",
    "chi_square",
    "markov_step",
    "poisson_count",
    "poisson_inverse",
    "replayed_stretch",
    "squeeze_spell",
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
    return poisson_inverse(next_uniform(state, k), mean, p0)


@njit(cache=True, inline="always")
def poisson_inverse(u: float, mean: float, p0: float) -> int:
    """Poisson(mean) quantile of the uniform ``u`` (inversion); ``p0`` = exp(-mean)."""
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


#: Months to the next switch of a regime that never leaves its state.
NEVER = 1 << 40


@njit(cache=True, inline="always")
def squeeze_spell(state: np.ndarray, k: int, regime: int, enter: float, leave: float) -> int:
    """Months from a squeeze switch (or from month 0) to the next one, by one uniform.

    In the monthly chain the regime leaves its state each month with probability
    p (``leave`` in squeeze, ``enter`` otherwise), so the month of the next
    switch, counted from the last, is geometric: K = floor(ln u / ln(1 - p)) + 1,
    P(K > m) = (1 - p)^m. Drawing spells rather than months gives the same chain
    with one uniform per switch.
    """
    p = leave if regime == REGIME_SQUEEZE else enter
    if p <= 0.0:
        return NEVER
    if p >= 1.0:
        return 1
    months = math.log(next_uniform(state, k)) / math.log1p(-p)
    return NEVER if months >= NEVER else int(months) + 1


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
    the capacity and market models see one squeeze history per path. It is a
    sequence of segments of constant regime: the first starts at month 1, each
    next one at the month of a switch (:func:`squeeze_spell`).

    Parameters
    ----------
    work : float
        Lead time in months if no squeeze occurs.
    rng : numpy.ndarray
        ``uint64[4, n]`` generator states; column ``row`` is overwritten (scratch).
    row : int
        Column of ``rng`` to use.
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
    if factor == 1.0 or not work < math.inf or work <= 0.0:
        return work
    seed_stream(rng, row, seed, path, stream)
    regime = squeeze_start(rng, row, initial, enter, leave)
    start = 1  # first month of the current segment
    end = squeeze_spell(rng, row, regime, enter, leave)  # first month of the next
    done = 0.0  # work done before the segment
    while True:
        rate = 1.0 / factor if regime == REGIME_SQUEEZE else 1.0
        if done + (end - start) * rate >= work:
            return (start - 1) + (work - done) / rate
        done += (end - start) * rate
        regime = 1 - regime
        start = end
        end = start + squeeze_spell(rng, row, regime, enter, leave)


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
    starts: np.ndarray,
    done: np.ndarray,
    rates: np.ndarray,
) -> float:
    """:func:`stretched_duration` for many items of one path, replaying the regime once.

    The path's squeeze segments are drawn once, as far as the longest item needs,
    and kept with the work done before each; every item then reads them. Same
    result, bit for bit, as :func:`stretched_duration`.

    Parameters
    ----------
    work : float
        Lead time in months if no squeeze occurs.
    rng : numpy.ndarray
        ``uint64[4, n]`` generator states; column ``row`` holds the replayed stream.
    row : int
        Column of ``rng`` to use.
    seed, path, stream : numpy.uint64
        Run seed, global path id and the squeeze regime's stream id.
    squeeze : numpy.ndarray
        ``float64[4]``: initial state (0 normal, 1 squeeze, 2 stationary), P(enter),
        P(exit) per month, slow-down factor (1 = no effect).
    replay : numpy.ndarray
        ``int64[2]``: segments drawn so far for this path (-1 before the first
        item: set it so for every new path) and the regime of the last one.
    starts, done, rates : numpy.ndarray
        Scratch ``int64[M]``, ``float64[M]``, ``float64[M]``: first month of each
        segment (and of the next), work done before it, its pace.

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
        regime = squeeze_start(rng, row, int(squeeze[0]), enter, leave)
        starts[0] = 1
        done[0] = 0.0
        rates[0] = 1.0 / factor if regime == REGIME_SQUEEZE else 1.0
        starts[1] = squeeze_spell(rng, row, regime, enter, leave)
        replay[0] = 1
        replay[1] = regime
    n = replay[0]
    while done[n - 1] + (starts[n] - starts[n - 1]) * rates[n - 1] < work:
        if n + 1 >= starts.shape[0]:  # beyond the scratch: the slow path, same numbers
            scratch = np.empty((4, 1), dtype=np.uint64)
            return stretched_duration(
                work, scratch, 0, seed, path, stream, int(squeeze[0]), enter, leave, factor
            )
        regime = 1 - replay[1]
        replay[1] = regime
        done[n] = done[n - 1] + (starts[n] - starts[n - 1]) * rates[n - 1]
        rates[n] = 1.0 / factor if regime == REGIME_SQUEEZE else 1.0
        starts[n + 1] = starts[n] + squeeze_spell(rng, row, regime, enter, leave)
        n += 1
    replay[0] = n
    j = 0
    while done[j] + (starts[j + 1] - starts[j]) * rates[j] < work:
        j += 1
    return (starts[j] - 1) + (work - done[j]) / rates[j]
