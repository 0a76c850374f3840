"""Mergeable statistics of capacity delivery: integer counts only.

Per path, the capacity of a scope (a site, an operator, the whole book) is a
step function of the month: it rises by a phase's amount in the month the phase
is energized. Its histogram over (month, value) is built with a difference
array: +1 at the month a value starts and -1 at the month it stops, summed over
months afterwards. Counts and value sums are integers (kW, GPUs, milli-H100e),
so merging blocks, threads or chunks in any order gives the same bits.

Energization month of a phase = ceil(E) (at least 1); month ``T + 1`` collects
phases not energized within the horizon, withdrawn ones included.

Only scopes that span several sites (the total, each operator) need a pass per
path. Where the book is small enough, such a scope counts paths by *state*, the
number of phases energized at each of its sites (a mixed-radix code that each
phase's energization raises by a fixed step), and the states are mapped to value
bins of all three measures once at the end: one compact histogram instead of
three wide ones. A site's phases energize in order, so its value is the amount of its first
k phases and the paths at each (month, value) follow from the phases'
energization-month counts alone; the value sums of every scope are likewise
sums of phase amounts times those counts. :func:`phase_chain_counts` adds both
once the run's counts are merged; the result is the same integers a pass per
path gives.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["add_block", "capacity_counts", "group_months", "phase_chain_counts"]

N_MEASURES = 3  # IT kW, GPUs, milli-H100-equivalents


@njit(cache=True, inline="always")
def _whole(x: float) -> np.int64:
    """Nearest integer (half up), also for negative values: fixed-point sums."""
    return np.int64(math.floor(x + 0.5))


@njit(cache=True)
def add_block(total: np.ndarray, part: np.ndarray) -> None:
    """``total += part`` element by element (same shapes, both C-contiguous).

    A plain loop over flat views: numba compiles an in-place array expression
    (``total += part``) into a broadcasting loop nest for every shape and dtype,
    which took over a minute of the first run's compilation for the fifteen of
    :func:`engine.kernels.demand_blocks.merge_blocks`; the capacity and market
    kernels merge their blocks with it too.
    """
    flat, add = total.reshape(total.size), part.reshape(part.size)
    for i in range(flat.size):
        flat[i] += add[i]


@njit(cache=True)
def _zero_counts(shape: tuple) -> np.ndarray:
    """``int64`` zeros of ``shape``: blocks' partial counts (see :func:`capacity_counts`)."""
    return np.zeros(shape, dtype=np.int64)


@njit(cache=True)
def _month(energized: float, horizon: int) -> int:
    if not energized <= horizon:  # also catches inf and nan
        return horizon + 1
    return max(1, math.ceil(energized))


@njit(cache=True)
def group_months(
    energization: np.ndarray, i0: int, n_active: int, horizon: int, months: np.ndarray
) -> None:
    """Write the energization month of each phase of a group's lanes into ``months``.

    Parameters
    ----------
    energization : numpy.ndarray
        ``float64[n, P]`` energization times (months) of the chunk's paths.
    i0, n_active : int
        The group's first path and its number of paths (lanes beyond: no path).
    horizon : int
        Months simulated (T).
    months : numpy.ndarray
        ``int64[P, lanes]`` written: month 1..T, or T + 1 (never, or no path).
    """
    for p in range(months.shape[0]):
        for lane in range(months.shape[1]):
            months[p, lane] = (
                _month(energization[i0 + lane, p], horizon) if lane < n_active else horizon + 1
            )


@njit(cache=True, parallel=True)
def capacity_counts(
    energization: np.ndarray,
    horizon: int,
    scope_phase_start: np.ndarray,
    scope_phase_index: np.ndarray,
    scope_per_path: np.ndarray,
    scope_state_offset: np.ndarray,
    entry_state_step: np.ndarray,
    phase_amount: np.ndarray,
    bin_width: np.ndarray,
    bin_offset: np.ndarray,
    n_bins: int,
    n_states: int,
    n_blocks: int,
    phase_months: np.ndarray,
    withdrawn: np.ndarray,
    value_counts: np.ndarray,
    state_counts: np.ndarray,
) -> None:
    """Add one chunk's energization times to the run's integer statistics.

    Parameters
    ----------
    energization : numpy.ndarray
        ``float64[n, P]`` months until each phase is energized (``inf`` = never).
    horizon : int
        T, months simulated.
    scope_phase_start, scope_phase_index : numpy.ndarray
        CSR list of the phases of each scope (``int64[n_scopes + 1]``, ``int64[.]``).
    scope_per_path : numpy.ndarray
        ``bool[n_scopes]`` scopes whose value histogram needs a pass per path
        (the others are filled by :func:`phase_chain_counts`).
    scope_state_offset : numpy.ndarray
        ``int64[n_scopes]`` first state of a state-coded scope, -1 for a scope
        counted by value bins.
    entry_state_step : numpy.ndarray
        ``int64[len(scope_phase_index)]`` rise of the scope's state code when the
        phase of that entry is energized.
    phase_amount : numpy.ndarray
        ``int64[P, 3]`` capacity a phase adds: IT kW, GPUs, milli-H100e.
    bin_width, bin_offset : numpy.ndarray
        ``int64[n_scopes, 3]`` value-bin width (base units) and first bin of each
        scope and measure in the flat bin axis.
    n_bins, n_states : int
        Length of the flat bin axis and of the flat state axis.
    n_blocks : int
        Independent partial sums computed in parallel (any value gives the same result).
    phase_months : numpy.ndarray
        ``int64[P, T + 2]`` accumulated: paths by energization month of each phase.
    withdrawn : numpy.ndarray
        ``int64[P]`` accumulated: paths on which the phase's grid power never comes.
    value_counts : numpy.ndarray
        ``int64[n_bins, T + 2]`` accumulated month-to-month changes of the paths
        by value bin of the per-path scopes counted by value.
    state_counts : numpy.ndarray
        ``int64[n_states, T + 2]`` accumulated month-to-month changes of the
        paths by state of the state-coded scopes.
    """
    n_paths, n_phases = energization.shape
    n_scopes = scope_phase_start.shape[0] - 1
    width = horizon + 2
    by_value = False  # any scope counted per path by value bins?
    for s in range(n_scopes):
        by_value = by_value or (scope_per_path[s] and scope_state_offset[s] < 0)
    # allocated by a plain function: in a parallel one each np.zeros becomes a
    # parallel loop of its own, which the parfor passes then try to fuse (compile time)
    block_months = _zero_counts((n_blocks, n_phases, width))
    block_withdrawn = _zero_counts((n_blocks, n_phases))
    block_counts = _zero_counts((n_blocks, n_bins if by_value else 0, width))
    block_states = _zero_counts((n_blocks, n_states, width))
    per_block = (n_paths + n_blocks - 1) // n_blocks
    for b in prange(n_blocks):
        months = np.empty(n_phases, dtype=np.int64)
        order = np.empty(n_phases, dtype=np.int64)  # entries of a scope, by month
        first = b * per_block
        last = min(n_paths, (b + 1) * per_block)
        in_block = max(0, last - first)
        for s in range(n_scopes):
            if scope_per_path[s] and scope_state_offset[s] >= 0:
                block_states[b, scope_state_offset[s], 1] += in_block
            elif scope_per_path[s]:
                for m in range(N_MEASURES):
                    block_counts[b, bin_offset[s, m], 1] += in_block
        for i in range(first, last):
            for p in range(n_phases):
                months[p] = _month(energization[i, p], horizon)
                block_months[b, p, months[p]] += 1
                if math.isinf(energization[i, p]):
                    block_withdrawn[b, p] += 1
            for s in range(n_scopes):
                if not scope_per_path[s]:
                    continue
                n = 0
                for j in range(scope_phase_start[s], scope_phase_start[s + 1]):
                    p = scope_phase_index[j]
                    if months[p] > horizon:
                        continue
                    # insertion sort by month (scopes hold few phases)
                    k = n
                    while k > 0 and months[scope_phase_index[order[k - 1]]] > months[p]:
                        order[k] = order[k - 1]
                        k -= 1
                    order[k] = j
                    n += 1
                if scope_state_offset[s] >= 0:
                    state = scope_state_offset[s]
                    for k in range(n):
                        month = months[scope_phase_index[order[k]]]
                        block_states[b, state, month] -= 1
                        state += entry_state_step[order[k]]
                        block_states[b, state, month] += 1
                    continue
                for m in range(N_MEASURES):
                    w = bin_width[s, m]
                    base = bin_offset[s, m]
                    value = 0
                    for k in range(n):
                        p = scope_phase_index[order[k]]
                        month = months[p]
                        block_counts[b, base + value // w, month] -= 1
                        value += phase_amount[p, m]
                        block_counts[b, base + value // w, month] += 1
    for b in range(n_blocks):
        add_block(phase_months, block_months[b])
        add_block(withdrawn, block_withdrawn[b])
        if by_value:
            add_block(value_counts, block_counts[b])
        add_block(state_counts, block_states[b])


@njit(cache=True)
def phase_chain_counts(
    n_paths: int,
    horizon: int,
    scope_phase_start: np.ndarray,
    scope_phase_index: np.ndarray,
    scope_per_path: np.ndarray,
    phase_amount: np.ndarray,
    bin_width: np.ndarray,
    bin_offset: np.ndarray,
    phase_months: np.ndarray,
    value_counts: np.ndarray,
    value_sums: np.ndarray,
) -> None:
    """Fill what follows from the merged energization-month counts alone.

    For every scope, the month-to-month change of the summed value is the sum of
    its phases' amounts times the paths energizing them that month. For a scope
    whose phases energize in the listed order on every path (one site), the
    paths moving from the value of its first k - 1 phases to that of its first
    k in month t are those energizing phase k in month t.

    Parameters
    ----------
    n_paths, horizon : int
        Paths simulated and T, months simulated.
    scope_phase_start, scope_phase_index, scope_per_path, phase_amount, bin_width, bin_offset
        As in :func:`capacity_counts`.
    phase_months : numpy.ndarray
        ``int64[P, T + 2]`` paths by energization month of each phase (whole run).
    value_counts : numpy.ndarray
        ``int64[n_bins, T + 2]`` month-to-month changes; rows of the scopes not
        counted per path are added here.
    value_sums : numpy.ndarray
        ``int64[n_scopes, 3, T + 2]`` written: month-to-month change of the
        summed value of each scope and measure.
    """
    n_scopes = scope_phase_start.shape[0] - 1
    for s in range(n_scopes):
        for m in range(N_MEASURES):
            w = bin_width[s, m]
            base = bin_offset[s, m]
            if not scope_per_path[s]:
                value_counts[base, 1] += n_paths
            value = 0
            for j in range(scope_phase_start[s], scope_phase_start[s + 1]):
                p = scope_phase_index[j]
                amount = phase_amount[p, m]
                for t in range(1, horizon + 1):
                    moved = phase_months[p, t]
                    value_sums[s, m, t] += amount * moved
                    if not scope_per_path[s]:
                        value_counts[base + value // w, t] -= moved
                        value_counts[base + (value + amount) // w, t] += moved
                value += amount
