"""Mergeable statistics of capacity delivery: integer counts only.

Per path, the capacity of a scope (a site, an operator, the whole book) is a
step function of the month: it rises by a phase's amount in the month the phase
is energized. Its histogram over (month, value) is built with a difference
array: +1 at the month a value starts and -1 at the month it stops, summed over
months afterwards. Counts and value sums are integers (kW, GPUs, milli-H100e),
so merging blocks, threads or chunks in any order gives the same bits.

Energization month of a phase = ceil(E) (at least 1); month ``T + 1`` collects
phases not energized within the horizon, withdrawn ones included.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["capacity_counts"]

N_MEASURES = 3  # IT kW, GPUs, milli-H100-equivalents


@njit(cache=True)
def _month(energized: float, horizon: int) -> int:
    if not energized <= horizon:  # also catches inf and nan
        return horizon + 1
    return max(1, math.ceil(energized))


@njit(cache=True, parallel=True)
def capacity_counts(
    energization: np.ndarray,
    horizon: int,
    scope_phase_start: np.ndarray,
    scope_phase_index: np.ndarray,
    phase_amount: np.ndarray,
    bin_width: np.ndarray,
    bin_offset: np.ndarray,
    n_bins: int,
    n_blocks: int,
    phase_months: np.ndarray,
    withdrawn: np.ndarray,
    value_counts: np.ndarray,
    value_sums: np.ndarray,
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
    phase_amount : numpy.ndarray
        ``int64[P, 3]`` capacity a phase adds: IT kW, GPUs, milli-H100e.
    bin_width, bin_offset : numpy.ndarray
        ``int64[n_scopes, 3]`` value-bin width (base units) and first bin of each
        scope and measure in the flat bin axis.
    n_bins : int
        Length of the flat bin axis.
    n_blocks : int
        Independent partial sums computed in parallel (any value gives the same result).
    phase_months : numpy.ndarray
        ``int64[P, T + 2]`` accumulated: paths by energization month of each phase.
    withdrawn : numpy.ndarray
        ``int64[P]`` accumulated: paths on which the phase's grid power never comes.
    value_counts : numpy.ndarray
        ``int64[n_bins, T + 2]`` accumulated: paths by value bin at each month.
    value_sums : numpy.ndarray
        ``int64[n_scopes, 3, T + 2]`` accumulated: sum over paths of the value at each month.
    """
    n_paths, n_phases = energization.shape
    n_scopes = scope_phase_start.shape[0] - 1
    width = horizon + 2
    block_months = np.zeros((n_blocks, n_phases, width), dtype=np.int64)
    block_withdrawn = np.zeros((n_blocks, n_phases), dtype=np.int64)
    block_counts = np.zeros((n_blocks, n_bins, width), dtype=np.int64)
    block_sums = np.zeros((n_blocks, n_scopes, N_MEASURES, width), dtype=np.int64)
    per_block = (n_paths + n_blocks - 1) // n_blocks
    for b in prange(n_blocks):
        months = np.empty(n_phases, dtype=np.int64)
        order = np.empty(n_phases, dtype=np.int64)
        for i in range(b * per_block, min(n_paths, (b + 1) * per_block)):
            for p in range(n_phases):
                months[p] = _month(energization[i, p], horizon)
                block_months[b, p, months[p]] += 1
                if math.isinf(energization[i, p]):
                    block_withdrawn[b, p] += 1
            for s in range(n_scopes):
                n = 0
                for j in range(scope_phase_start[s], scope_phase_start[s + 1]):
                    p = scope_phase_index[j]
                    if months[p] > horizon:
                        continue
                    # insertion sort by month (scopes hold few phases)
                    k = n
                    while k > 0 and months[order[k - 1]] > months[p]:
                        order[k] = order[k - 1]
                        k -= 1
                    order[k] = p
                    n += 1
                for m in range(N_MEASURES):
                    w = bin_width[s, m]
                    base = bin_offset[s, m]
                    block_counts[b, base, 1] += 1
                    value = 0
                    for k in range(n):
                        p = order[k]
                        month = months[p]
                        amount = phase_amount[p, m]
                        block_counts[b, base + value // w, month] -= 1
                        value += amount
                        block_counts[b, base + value // w, month] += 1
                        block_sums[b, s, m, month] += amount
    for b in range(n_blocks):
        phase_months += block_months[b]
        withdrawn += block_withdrawn[b]
        value_sums += block_sums[b]
        value_counts += block_counts[b]
