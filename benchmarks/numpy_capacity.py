"""The capacity-delivery model in plain vectorised NumPy: the benchmark's baseline.

Same model as :mod:`engine.kernels.capacity` (nested Gaussian copula of schedule
draws, PERT / lognormal / fixed durations, lognormal overrun, withdrawn grid
power), same mergeable integer statistics as :mod:`engine.kernels.aggregate`
and the same tables as :mod:`engine.tables` (inverted-CDF quantiles), written
the way one would write it without numba: loops run over the book's sites,
items and scopes (tens of iterations), every operation runs on arrays of all
the paths of a chunk at once, and chunks bound memory.

The random numbers come from a ``numpy.random.Generator`` (SFC64, the fastest
bit generator NumPy ships), so the results agree with the engine in
distribution, not bit for bit. Inputs are the engine's lowered arrays
(:class:`engine.book.CapacityArrays`, same PERT quantile tables) and reporting
scopes (:class:`engine.scopes.Scopes`, same value bins).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy_capacity_draws import SqueezePaths, copula, duration

from engine.book import CapacityArrays
from engine.scopes import MEASURE_SCALE, Scopes

__all__ = [
    "NumpyCapacityStats",
    "accumulate_counts",
    "capacity_tables",
    "empty_stats",
    "energization_and_squeeze",
    "energization_times",
    "finish",
    "simulate_capacity",
]

N_FACTOR_KINDS = 4
EQUIPMENT = 2  # FACTOR_KINDS index of long-lead electrical equipment
N_MEASURES = 3
#: Quantiles of capacity online, in per mille (as the engine's tables).
_CAPACITY_PER_MILLE = (50, 100, 500, 900, 950)


@dataclass
class NumpyCapacityStats:
    """Integer statistics of a NumPy capacity run (same layout as the engine's).

    Attributes
    ----------
    n_paths, horizon : int
        Paths simulated and months simulated (T).
    phase_months : numpy.ndarray
        ``int64[P, T + 2]`` paths by energization month (index T + 1: not within T).
    withdrawn : numpy.ndarray
        ``int64[P]`` paths on which grid power never comes.
    value_counts : numpy.ndarray
        ``int64[n_bins, T + 2]`` paths by value bin (base units) and month, as levels.
    value_sums : numpy.ndarray
        ``int64[n_scopes, 3, T + 2]`` sum over paths of the value online by month.
    """

    n_paths: int
    horizon: int
    phase_months: np.ndarray
    withdrawn: np.ndarray
    value_counts: np.ndarray
    value_sums: np.ndarray


def energization_times(
    arrays: CapacityArrays, rng: np.random.Generator, n_paths: int, squeeze: bool = True
) -> np.ndarray:
    """Energization time of every phase on ``n_paths`` new paths.

    Parameters
    ----------
    arrays : CapacityArrays
        Lowered book and model parameters.
    rng : numpy.random.Generator
        Source of the normals and uniforms.
    n_paths : int
        Paths in this chunk.
    squeeze : bool
        Stretch equipment lead times by the copper squeeze (``arrays.squeeze``);
        False leaves that work out (the speed comparison does, see capacity.py).

    Returns
    -------
    numpy.ndarray
        ``float64[P, n_paths]`` (phase-major) months until each phase is
        energized; ``inf`` when grid power never comes.
    """
    factor = arrays.squeeze if squeeze else np.array([0.0, 0.0, 0.0, 1.0])
    return _times(arrays, rng, n_paths, SqueezePaths(factor, rng, n_paths))


def energization_and_squeeze(
    arrays: CapacityArrays, rng: np.random.Generator, n_paths: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Energization times and the copper squeeze history that stretched them.

    As in the engine, the market model sees the same squeeze history as the
    capacity model (docs/model.md §7.7): pass it to ``numpy_markets.add_paths``.

    Parameters
    ----------
    arrays : CapacityArrays
        Lowered book and model parameters.
    rng : numpy.random.Generator
        Source of the normals and uniforms.
    n_paths, horizon : int
        Paths in this chunk, months T of the history.

    Returns
    -------
    tuple of numpy.ndarray
        ``float64[P, n_paths]`` energization times (months, as
        :func:`energization_times`) and ``bool[T + 1, n_paths]`` the squeeze
        regime by month (:meth:`SqueezePaths.by_month`).
    """
    squeeze = SqueezePaths(arrays.squeeze, rng, n_paths)
    times = _times(arrays, rng, n_paths, squeeze)
    return times, squeeze.by_month(horizon)


def _times(
    arrays: CapacityArrays, rng: np.random.Generator, n_paths: int, squeeze_paths: SqueezePaths
) -> np.ndarray:
    """Energization times of ``n_paths`` new paths, stretched by ``squeeze_paths``."""
    n_operators = arrays.operator_stream.shape[0]
    n_campuses = arrays.campus_stream.shape[0]
    f_operator = rng.standard_normal((n_operators, N_FACTOR_KINDS, n_paths))
    f_campus = rng.standard_normal((n_campuses, N_FACTOR_KINDS, n_paths))
    f_operator *= arrays.weight_operator
    f_campus *= arrays.weight_campus
    out = np.empty((arrays.n_phases, n_paths))
    for s in range(arrays.site_stream.shape[0]):
        o, c = arrays.site_operator[s], arrays.site_campus[s]
        phases = range(arrays.site_phase_start[s], arrays.site_phase_end[s])
        n_items = arrays.phase_item_end[phases[-1]] - arrays.site_item_start[s]
        # the site's own normals: overrun noise, then one per item in kernel order
        own = rng.standard_normal((1 + n_items, n_paths))
        own *= arrays.weight_own
        withdrawn = rng.random(n_paths) < arrays.site_withdrawal[s]
        first_item = arrays.site_item_start[s]
        kind = arrays.item_kind
        z = copula(own[0], f_operator[o, 0], f_campus[c, 0])
        z *= arrays.overrun_sigma_ln
        z += arrays.overrun_ln_median
        overrun = np.exp(z, out=z)
        site_longest = np.zeros(n_paths)
        for k in range(first_item, arrays.site_item_end[s]):
            z = copula(own[1 + k - first_item], f_operator[o, kind[k]], f_campus[c, kind[k]])
            d = duration(arrays, k, z)
            if kind[k] == EQUIPMENT:  # lead time stretched by squeeze months
                d = squeeze_paths.stretch(d * overrun) / overrun
            np.maximum(site_longest, d, out=site_longest)
        site_longest[withdrawn] = np.inf  # grid power never comes: every phase dark
        previous = np.zeros(n_paths)
        for p in phases:
            longest = site_longest.copy()
            for k in range(arrays.phase_item_start[p], arrays.phase_item_end[p]):
                z = copula(own[1 + k - first_item], f_operator[o, kind[k]], f_campus[c, kind[k]])
                d = duration(arrays, k, z)
                if kind[k] == EQUIPMENT:
                    d = squeeze_paths.stretch(d * overrun) / overrun
                np.maximum(longest, d, out=longest)
            longest *= overrun
            np.maximum(longest, previous, out=out[p])
            previous = out[p]
    return out


def _scope_layout(scopes: Scopes) -> list[tuple[np.ndarray, bool]]:
    """Phases of each scope and whether they can energize out of list order."""
    layout = []
    for s in range(len(scopes.kind)):
        phases = scopes.phase_index[scopes.phase_start[s] : scopes.phase_start[s + 1]]
        # a site's phases are energized in order already (E_p >= E_{p-1})
        layout.append((phases, scopes.kind[s] != "site" and phases.shape[0] > 1))
    return layout


def accumulate_counts(energization: np.ndarray, scopes: Scopes, stats: NumpyCapacityStats) -> None:
    """Add one chunk's energization times to the run's integer statistics.

    Parameters
    ----------
    energization : numpy.ndarray
        ``float64[P, n]`` months until each phase is energized (``inf`` = never).
    scopes : Scopes
        Reporting scopes and their value bins.
    stats : NumpyCapacityStats
        Accumulated in place (``value_counts`` as month-to-month changes).
    """
    horizon = stats.horizon
    width = horizon + 2
    n_phases, n_paths = energization.shape
    # energization month: ceil(E) >= 1; month T + 1 collects later and never
    months = np.ceil(np.minimum(energization, horizon + 1.0)).astype(np.int64)
    np.maximum(months, 1, out=months)
    flat = months + (np.arange(n_phases) * width)[:, None]
    stats.phase_months += np.bincount(flat.ravel(), minlength=n_phases * width).reshape(
        n_phases, width
    )
    stats.withdrawn += np.isinf(energization).sum(axis=1)
    path_major = None
    for s, (phases, must_sort) in enumerate(_scope_layout(scopes)):
        n_local = phases.shape[0]
        order = None
        if scopes.kind[s] == "site":
            continue  # follows from the phases' month counts: see finish()
        local_months = months[phases]  # [L, n]
        if must_sort:  # sort (month, local phase) keys per path: one integer sort
            if path_major is None:
                path_major = np.ascontiguousarray(months.T)  # [n, P]: one row per path
            key = path_major[:, phases] * n_local + np.arange(n_local)
            key.sort(axis=1)
            local_months, order = np.divmod(np.ascontiguousarray(key.T), n_local)
        first = scopes.bin_offset[s]
        for m in range(N_MEASURES):
            amount = scopes.phase_amount[phases, m]
            bin_width = scopes.bin_width[s, m]
            # in a phase's month the value steps from `before` to `after` (base units)
            if order is None:  # phases in energization order: fixed steps
                after = np.cumsum(amount)
                up = local_months + (after // bin_width * width)[:, None]
                down = local_months + ((after - amount) // bin_width * width)[:, None]
            else:
                step = amount[order]
                up = step.copy()
                for row in range(1, n_local):  # running sum over the sorted phases
                    up[row] += up[row - 1]
                down = up - step
                for bound in (up, down):
                    bound //= bin_width
                    bound *= width
                    bound += local_months
            size = scopes.bin_count[s, m] * width
            changes = np.bincount(up.ravel(), minlength=size)
            changes -= np.bincount(down.ravel(), minlength=size)
            levels = stats.value_counts[first[m] : first[m] + scopes.bin_count[s, m]]
            levels += changes.reshape(-1, width)
            levels[0, 1] += n_paths


def simulate_capacity(
    arrays: CapacityArrays,
    scopes: Scopes,
    n_paths: int,
    horizon: int,
    seed: int,
    chunk_size: int = 250_000,
    squeeze: bool = True,
) -> NumpyCapacityStats:
    """Simulate capacity delivery chunk by chunk and reduce it to integer statistics.

    Parameters
    ----------
    arrays : CapacityArrays
        Lowered book and model parameters.
    scopes : Scopes
        Reporting scopes and their value bins.
    n_paths, horizon : int
        Paths and months (T) to simulate.
    seed : int
        Seed of the ``numpy.random.Generator``.
    chunk_size : int
        Paths simulated at once; bounds memory.
    squeeze : bool
        Stretch equipment lead times by copper squeezes (see :func:`energization_times`).

    Returns
    -------
    NumpyCapacityStats
        Finished statistics (value counts and sums as levels by month).
    """
    rng = np.random.Generator(np.random.SFC64(seed))
    stats = empty_stats(n_paths, horizon, arrays.n_phases, scopes)
    for start in range(0, n_paths, chunk_size):
        size = min(chunk_size, n_paths - start)
        accumulate_counts(energization_times(arrays, rng, size, squeeze), scopes, stats)
    finish(stats, scopes)
    return stats


def finish(stats: NumpyCapacityStats, scopes: Scopes) -> None:
    """Fill the site histograms and value sums, then turn changes into levels (in place).

    The sum over paths of a scope's value online in month t needs no per-path
    work: it is the sum over the scope's phases of amount x paths energized by t.

    Parameters
    ----------
    stats : NumpyCapacityStats
        Statistics after the last :func:`accumulate_counts`.
    scopes : Scopes
        The scopes the statistics refer to.
    """
    within = stats.phase_months.copy()
    within[:, stats.horizon + 1] = 0
    for s, (phases, _) in enumerate(_scope_layout(scopes)):
        stats.value_sums[s] = scopes.phase_amount[phases].T @ within[phases]
        if scopes.kind[s] != "site":
            continue
        # a site's phases energize in order: the paths stepping from the value of
        # its first k - 1 phases to its first k in month t energize phase k then
        for m in range(N_MEASURES):
            amount = scopes.phase_amount[phases, m]
            after = np.cumsum(amount) // scopes.bin_width[s, m] + scopes.bin_offset[s, m]
            before = (np.cumsum(amount) - amount) // scopes.bin_width[s, m]
            before += scopes.bin_offset[s, m]
            np.add.at(stats.value_counts, after, within[phases])
            np.subtract.at(stats.value_counts, before, within[phases])
            stats.value_counts[scopes.bin_offset[s, m], 1] += stats.n_paths
    np.cumsum(stats.value_counts, axis=1, out=stats.value_counts)
    np.cumsum(stats.value_sums, axis=2, out=stats.value_sums)


def empty_stats(n_paths: int, horizon: int, n_phases: int, scopes: Scopes) -> NumpyCapacityStats:
    """Zeroed statistics for ``n_paths`` paths of ``horizon`` months."""
    width = horizon + 2
    return NumpyCapacityStats(
        n_paths=n_paths,
        horizon=horizon,
        phase_months=np.zeros((n_phases, width), dtype=np.int64),
        withdrawn=np.zeros(n_phases, dtype=np.int64),
        value_counts=np.zeros((scopes.n_bins, width), dtype=np.int64),
        value_sums=np.zeros((len(scopes.kind), N_MEASURES, width), dtype=np.int64),
    )


def _first_reaching(cumulative: np.ndarray, rank: int) -> np.ndarray:
    """Index along axis 0 where a cumulative count first reaches ``rank``."""
    return np.argmax(cumulative >= rank, axis=0)


def capacity_tables(
    stats: NumpyCapacityStats, scopes: Scopes, planned_month: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-phase energization and per-scope capacity tables, as arrays.

    Quantiles are inverted-CDF (smallest value v with F(v) >= q), as in the engine.

    Parameters
    ----------
    stats : NumpyCapacityStats
        Finished statistics.
    scopes : Scopes
        The scopes the statistics refer to.
    planned_month : numpy.ndarray
        ``int64[P]`` planned energization month of each phase.

    Returns
    -------
    dict of str to numpy.ndarray
        ``phase_months`` (``int64[P, T + 2]`` histogram); ``prob_on_time`` (``[P]``,
        NaN if planned beyond T); ``p50_month``, ``p80_month``, ``p90_month``
        (``[P]``, T + 1 = beyond the horizon); for each measure (``mw``, ``gpus``,
        ``h100e``) ``{measure}_mean`` and ``{measure}_p{5,10,50,90,95}``
        (``[n_scopes, T]``, MW, GPUs, H100-equivalents; no GPU availability haircut).
    """
    n, horizon = stats.n_paths, stats.horizon
    energized_by = np.cumsum(stats.phase_months, axis=1)  # [P, T + 2] paths by month
    tables: dict[str, np.ndarray] = {"phase_months": stats.phase_months}
    on_time = np.minimum(planned_month, horizon)
    prob = energized_by[np.arange(on_time.shape[0]), on_time] / n
    # as in the engine: on time cannot be judged for a plan beyond the horizon
    tables["prob_on_time"] = np.where(planned_month > horizon, np.nan, prob)
    for q in (500, 800, 900):
        tables[f"p{q // 10}_month"] = _first_reaching(energized_by.T, -(-q * n // 1000))
    n_scopes = len(scopes.kind)
    for m, label in enumerate(("mw", "gpus", "h100e")):
        scale = 1.0 / MEASURE_SCALE[m]
        tables[f"{label}_mean"] = stats.value_sums[:, m, 1 : horizon + 1] * (scale / n)
        quantiles = np.empty((len(_CAPACITY_PER_MILLE), n_scopes, horizon))
        for s in range(n_scopes):
            first = scopes.bin_offset[s, m]
            counts = stats.value_counts[first : first + scopes.bin_count[s, m], 1:-1]
            at_most = np.cumsum(counts, axis=0)  # paths with value <= bin, by month
            for j, q in enumerate(_CAPACITY_PER_MILLE):
                index = _first_reaching(at_most, max(1, -(-q * n // 1000)))
                quantiles[j, s] = index * scopes.bin_width[s, m] * scale
        for j, q in enumerate(_CAPACITY_PER_MILLE):
            tables[f"{label}_p{q // 10}"] = quantiles[j]
    return tables
