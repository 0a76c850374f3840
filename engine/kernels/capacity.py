"""Capacity delivery: when each phase of each site is energized, path by path.

For site s and phase p on one path::

    E_p = max(E_{p-1}, max(M_s D_k for the site's items and the phase's items))

with D_k = F_k^-1(Phi(z_k)) each item's duration (PERT, lognormal or fixed, in
months from the start) and M_s = exp(ln median + sigma z_M) the project overrun
multiplier. Each z is a nested one-factor Gaussian copula::

    z = sqrt(rho_op) F_{operator, kind} + sqrt(rho_campus - rho_op) F_{campus, kind}
        + sqrt(1 - rho_campus) eps

so draws of one kind are correlated rho_op across an operator's sites and
rho_campus within a campus. An equipment item's M_s D_k months of lead time
progress at 1/f of their pace in months of copper squeeze (the squeeze regime's
stream is replayed here, see engine/kernels/factors.py). With probability
``site_withdrawal`` grid power never comes and every phase of the site stays dark (E = +inf).

Draw order per path is fixed: each operator's stream gives its four factor
normals (overrun, construction, equipment, interconnection), then each campus's;
each site's stream gives the overrun noise, the withdrawal uniform and one
normal per item (site items, then each phase's items), whatever their family.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from engine.book import DIST_FIXED, DIST_LOGNORMAL, PERT_GRID_POINTS, PERT_Z_MAX
from engine.kernels.factors import replayed_stretch
from engine.rng import next_normal, next_uniform, seed_stream

__all__ = ["energization_times"]

_N_FACTOR_KINDS = 4
_EQUIPMENT = 2  # FACTOR_KINDS index of long-lead electrical equipment
_REPLAY_SEGMENTS = 1024  # squeeze segments kept per path (more: the slow path)
_BLOCK = 256
_DZ = 2.0 * PERT_Z_MAX / (PERT_GRID_POINTS - 1)


@njit(cache=True, inline="always")
def _duration(dist: int, p1: float, p2: float, row: int, tables: np.ndarray, z: float) -> float:
    """Duration in months of one item at copula normal ``z``."""
    if dist == DIST_FIXED:
        return p1
    if dist == DIST_LOGNORMAL:
        return math.exp(p1 + p2 * z)
    x = (z + PERT_Z_MAX) / _DZ
    if x <= 0.0:
        return tables[row, 0]
    j = int(x)
    if j >= PERT_GRID_POINTS - 1:
        return tables[row, PERT_GRID_POINTS - 1]
    frac = x - j
    return tables[row, j] + frac * (tables[row, j + 1] - tables[row, j])


@njit(cache=True, inline="always")
def _latest_item(
    first: int,
    last: int,
    longest: float,
    state: np.ndarray,
    seed: np.uint64,
    path: np.uint64,
    o: int,
    c: int,
    overrun: float,
    f_operator: np.ndarray,
    f_campus: np.ndarray,
    item_kind: np.ndarray,
    item_dist: np.ndarray,
    item_table: np.ndarray,
    item_p1: np.ndarray,
    item_p2: np.ndarray,
    pert_tables: np.ndarray,
    weight_operator: float,
    weight_campus: float,
    weight_own: float,
    squeeze: np.ndarray,
    squeeze_stream: np.uint64,
    replay: np.ndarray,
    starts: np.ndarray,
    done: np.ndarray,
    rates: np.ndarray,
) -> float:
    """Max of ``longest`` and the finish times (months) of items ``first .. last - 1``.

    Each item draws its own normal from column 0 of ``state`` (in item order), mixes
    it with its kind's operator and campus factors, is scaled by the overrun and,
    for equipment, stretched by the path's copper squeeze months.
    """
    for k in range(first, last):
        kind = item_kind[k]
        z = (
            weight_operator * f_operator[o, kind]
            + weight_campus * f_campus[c, kind]
            + weight_own * next_normal(state, 0)
        )
        d = overrun * _duration(item_dist[k], item_p1[k], item_p2[k], item_table[k], pert_tables, z)
        if kind == _EQUIPMENT:
            d = replayed_stretch(
                d, state, 1, seed, path, squeeze_stream, squeeze, replay, starts, done, rates
            )
        longest = max(longest, d)
    return longest


@njit(cache=True, parallel=True)
def energization_times(
    seed: np.uint64,
    path0: np.uint64,
    site_operator: np.ndarray,
    site_campus: np.ndarray,
    site_stream: np.ndarray,
    site_withdrawal: np.ndarray,
    site_item_start: np.ndarray,
    site_item_end: np.ndarray,
    site_phase_start: np.ndarray,
    site_phase_end: np.ndarray,
    phase_item_start: np.ndarray,
    phase_item_end: np.ndarray,
    item_kind: np.ndarray,
    item_dist: np.ndarray,
    item_table: np.ndarray,
    item_p1: np.ndarray,
    item_p2: np.ndarray,
    pert_tables: np.ndarray,
    operator_stream: np.ndarray,
    campus_stream: np.ndarray,
    weight_operator: float,
    weight_campus: float,
    weight_own: float,
    overrun_ln_median: float,
    overrun_sigma_ln: float,
    squeeze: np.ndarray,
    squeeze_stream: np.uint64,
    out: np.ndarray,
) -> None:
    """Energization time of every phase on paths ``path0 .. path0 + n - 1``.

    Parameters
    ----------
    seed, path0 : numpy.uint64
        Run seed and global id of the first path of this chunk.
    site_operator ... squeeze_stream
        The fields of :class:`engine.book.CapacityArrays`, in that order.
    out : numpy.ndarray
        ``float64[n, P]`` written in place: months from the start of the
        simulation until the phase is energized; ``inf`` if grid power never comes.
    """
    n_paths = out.shape[0]
    n_sites = site_stream.shape[0]
    n_operators = operator_stream.shape[0]
    n_campuses = campus_stream.shape[0]
    n_blocks = (n_paths + _BLOCK - 1) // _BLOCK
    # the operators' factor streams, then the campuses': drawn by one loop (one
    # call site of the inlined normal draws to compile)
    factor_stream = np.empty(n_operators + n_campuses, dtype=np.uint64)
    for o in range(n_operators):
        factor_stream[o] = operator_stream[o]
    for c in range(n_campuses):
        factor_stream[n_operators + c] = campus_stream[c]
    for block in prange(n_blocks):
        state = np.empty((4, 2), dtype=np.uint64)  # stream 0: draws; 1: squeeze replay
        replay = np.empty(2, dtype=np.int64)
        starts = np.empty(_REPLAY_SEGMENTS, dtype=np.int64)
        done = np.empty(_REPLAY_SEGMENTS)
        rates = np.empty(_REPLAY_SEGMENTS)
        factors = np.empty((n_operators + n_campuses, _N_FACTOR_KINDS))
        f_operator, f_campus = factors[:n_operators], factors[n_operators:]
        for i in range(block * _BLOCK, min(n_paths, (block + 1) * _BLOCK)):
            path = path0 + np.uint64(i)
            replay[0] = -1
            for q in range(factor_stream.shape[0]):
                seed_stream(state, 0, seed, path, factor_stream[q])
                for k in range(_N_FACTOR_KINDS):
                    factors[q, k] = next_normal(state, 0)
            for s in range(n_sites):
                seed_stream(state, 0, seed, path, site_stream[s])
                o = site_operator[s]
                c = site_campus[s]
                z = (
                    weight_operator * f_operator[o, 0]
                    + weight_campus * f_campus[c, 0]
                    + weight_own * next_normal(state, 0)
                )
                overrun = math.exp(overrun_ln_median + overrun_sigma_ln * z)
                withdrawn = next_uniform(state, 0) < site_withdrawal[s]
                # the site's own items (p = -1), then each phase's after them: one
                # call site of the inlined _latest_item (half the code to compile)
                site_longest = 0.0
                previous = 0.0
                for p in range(site_phase_start[s] - 1, site_phase_end[s]):
                    own = p < site_phase_start[s]
                    first = site_item_start[s] if own else phase_item_start[p]
                    last = site_item_end[s] if own else phase_item_end[p]
                    longest = _latest_item(
                        first, last, site_longest,
                        state, seed, path, o, c, overrun, f_operator, f_campus, item_kind,
                        item_dist, item_table, item_p1, item_p2, pert_tables, weight_operator,
                        weight_campus, weight_own, squeeze, squeeze_stream, replay, starts,
                        done, rates,
                    )  # fmt: skip
                    if own:
                        site_longest = longest
                        continue
                    energized = longest
                    if withdrawn:
                        energized = math.inf
                    energized = max(energized, previous)
                    out[i, p] = energized
                    previous = energized
