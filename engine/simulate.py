"""The driver: chunks of paths, threads, seeds and progress around the kernels.

A run is a sequence of chunks ``[path0, path0 + n)``. Each chunk's kernel writes
per-path energization times; they are reduced at once to integer statistics
that merge exactly, so the tables do not depend on the chunking or on the
number of threads, and memory does not grow with the number of paths unless
the user asks to keep per-path results.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numba
import numpy as np

from engine.book import CapacityArrays, lower_capacity
from engine.config import Settings
from engine.errors import InputError
from engine.kernels.aggregate import N_MEASURES, capacity_counts
from engine.kernels.capacity import energization_times
from engine.scenario import Book

__all__ = ["CapacityStats", "Scopes", "available_cores", "build_scopes", "simulate_capacity"]

log = logging.getLogger(__name__)

#: Base units of the capacity measures: IT kW, GPUs, milli-H100-equivalents.
MEASURE_SCALE = (1000.0, 1.0, 1000.0)


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Scopes:
    """Reporting scopes (each site, each operator, the total) and their value bins.

    Attributes
    ----------
    kind, name, operator : list of str
        Scope type (``total``, ``operator``, ``site``), its id, and its operator
        (empty for the total).
    phase_start, phase_index : numpy.ndarray
        CSR list of the phases of each scope.
    phase_amount : numpy.ndarray
        ``int64[P, 3]`` IT kW, GPUs and milli-H100e added by each phase.
    bin_width, bin_offset, bin_count : numpy.ndarray
        ``int64[n_scopes, 3]`` bin width in base units, first bin in the flat bin
        axis, and number of bins of each scope and measure.
    n_bins : int
        Bins in all.
    exact : numpy.ndarray
        ``bool[n_scopes, 3]`` whether every reachable value sits on the bin lattice
        (then quantiles are exact; otherwise within one bin width).
    """

    kind: list[str]
    name: list[str]
    operator: list[str]
    phase_start: np.ndarray
    phase_index: np.ndarray
    phase_amount: np.ndarray
    bin_width: np.ndarray
    bin_offset: np.ndarray
    bin_count: np.ndarray
    n_bins: int
    exact: np.ndarray


def build_scopes(book: Book, max_bins: int) -> Scopes:
    """Build the reporting scopes of a book and choose their value bins.

    Parameters
    ----------
    book : Book
        The validated book.
    max_bins : int
        Upper bound of bins per scope and measure.

    Returns
    -------
    Scopes
        Scopes in the order total, operators, sites (book order).
    """
    generations = {g.id: g for g in book.gpu_generations}
    amounts: list[tuple[int, int, int]] = []
    site_phases: list[list[int]] = []
    for site in book.sites:
        ratio = generations[site.gpu_generation].h100_equivalents
        indices = []
        for phase in site.phases:
            indices.append(len(amounts))
            amounts.append(
                (round(phase.it_mw * 1000.0), phase.gpus, round(phase.gpus * ratio * 1000.0))
            )
        site_phases.append(indices)
    kind, name, operator, members = ["total"], ["total"], [""], [list(range(len(amounts)))]
    for op in book.operators:
        kind.append("operator")
        name.append(op.id)
        operator.append(op.id)
        members.append(
            [
                p
                for s, ph in zip(book.sites, site_phases, strict=True)
                if s.operator == op.id
                for p in ph
            ]
        )
    for site, phases in zip(book.sites, site_phases, strict=True):
        kind.append("site")
        name.append(site.id)
        operator.append(site.operator)
        members.append(phases)
    phase_amount = np.array(amounts, dtype=np.int64).reshape(-1, N_MEASURES)
    n_scopes = len(members)
    width = np.ones((n_scopes, N_MEASURES), dtype=np.int64)
    offset = np.zeros((n_scopes, N_MEASURES), dtype=np.int64)
    count = np.zeros((n_scopes, N_MEASURES), dtype=np.int64)
    exact = np.ones((n_scopes, N_MEASURES), dtype=bool)
    n_bins = 0
    for s, phases in enumerate(members):
        for m in range(N_MEASURES):
            values = [int(phase_amount[p, m]) for p in phases]
            total = sum(values)
            step = max(1, math.gcd(*values)) if values else 1
            if total // step + 1 > max_bins:
                step = step * math.ceil(total / step / (max_bins - 1))
                exact[s, m] = False
            width[s, m] = step
            offset[s, m] = n_bins
            count[s, m] = total // step + 1
            n_bins += total // step + 1
    starts = np.cumsum([0] + [len(m) for m in members]).astype(np.int64)
    index = np.array([p for m in members for p in m], dtype=np.int64)
    return Scopes(
        kind, name, operator, starts, index, phase_amount, width, offset, count, n_bins, exact
    )


@dataclass
class CapacityStats:
    """Integer statistics of a capacity run; they merge by addition.

    Attributes
    ----------
    n_paths : int
        Paths simulated.
    horizon : int
        Months simulated.
    phase_months : numpy.ndarray
        ``int64[P, T + 2]`` paths by energization month (index T + 1: not within horizon).
    withdrawn : numpy.ndarray
        ``int64[P]`` paths on which grid power never comes.
    value_counts : numpy.ndarray
        ``int64[n_bins, T + 2]`` paths by value bin and month (after :meth:`finish`).
    value_sums : numpy.ndarray
        ``int64[n_scopes, 3, T + 2]`` summed values by month (after :meth:`finish`).
    kept_months : numpy.ndarray or None
        ``int16[n_paths, P]`` energization month per path when asked to keep paths.
    """

    n_paths: int
    horizon: int
    phase_months: np.ndarray
    withdrawn: np.ndarray
    value_counts: np.ndarray
    value_sums: np.ndarray
    kept_months: np.ndarray | None = None
    chunks: list[int] = field(default_factory=list)

    def finish(self) -> None:
        """Turn month-to-month changes into levels (cumulative sum over months)."""
        np.cumsum(self.value_counts, axis=1, out=self.value_counts)
        np.cumsum(self.value_sums, axis=2, out=self.value_sums)


def _chunk_plan(n_paths: int, chunk_size: int, chunk_sizes: Sequence[int] | None) -> list[int]:
    if chunk_sizes is not None:
        if sum(chunk_sizes) != n_paths or min(chunk_sizes) < 1:
            raise ValueError("chunk_sizes must be positive and add up to n_paths")
        return list(chunk_sizes)
    full, rest = divmod(n_paths, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def simulate_capacity(
    book: Book,
    settings: Settings,
    *,
    threads: int | None = None,
    chunk_sizes: Sequence[int] | None = None,
    arrays: CapacityArrays | None = None,
) -> tuple[CapacityStats, Scopes]:
    """Simulate capacity delivery of a book and reduce it to mergeable statistics.

    Parameters
    ----------
    book : Book
        The validated book.
    settings : Settings
        Run settings and model parameters.
    threads : int, optional
        Numba threads (default: ``settings.run.threads``, 0 = all cores).
    chunk_sizes : sequence of int, optional
        Explicit chunking (must add up to ``n_paths``); default: ``run.chunk_size``.
    arrays : CapacityArrays, optional
        Pre-lowered kernel inputs (default: lowered from ``book``).

    Returns
    -------
    tuple
        The :class:`CapacityStats` and the :class:`Scopes` they refer to.
    """
    run = settings.run
    n_threads = threads if threads is not None else run.threads
    n_threads = min(n_threads or available_cores(), numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(n_threads)
    arrays = arrays or lower_capacity(book, settings.capacity)
    scopes = build_scopes(book, settings.output.max_histogram_bins)
    horizon = run.horizon_months
    n_phases = arrays.n_phases
    stats = CapacityStats(
        n_paths=run.n_paths,
        horizon=horizon,
        phase_months=np.zeros((n_phases, horizon + 2), dtype=np.int64),
        withdrawn=np.zeros(n_phases, dtype=np.int64),
        value_counts=np.zeros((scopes.n_bins, horizon + 2), dtype=np.int64),
        value_sums=np.zeros((len(scopes.kind), N_MEASURES, horizon + 2), dtype=np.int64),
        kept_months=(
            np.empty((run.n_paths, n_phases), dtype=np.int16)
            if settings.output.keep_paths
            else None
        ),
    )
    largest = int(scopes.phase_amount.sum(axis=0).max()) if n_phases else 0
    if largest * run.n_paths >= 2**63:
        raise InputError(
            "command line",
            "run.n_paths",
            run.n_paths,
            f"at most {(2**63 - 1) // largest:,} paths for this book (exact integer sums)",
        )
    kernel_args = [getattr(arrays, f.name) for f in dataclasses.fields(arrays)]
    plan = _chunk_plan(run.n_paths, run.chunk_size, chunk_sizes)
    stats.chunks = plan
    path0 = 0
    started = time.perf_counter()
    for number, size in enumerate(plan, start=1):
        times = np.empty((size, n_phases), dtype=np.float64)
        energization_times(np.uint64(run.seed), np.uint64(path0), *kernel_args, times)
        capacity_counts(
            times,
            horizon,
            scopes.phase_start,
            scopes.phase_index,
            scopes.phase_amount,
            scopes.bin_width,
            scopes.bin_offset,
            scopes.n_bins,
            max(1, n_threads),
            stats.phase_months,
            stats.withdrawn,
            stats.value_counts,
            stats.value_sums,
        )
        if stats.kept_months is not None:
            months = np.ceil(np.minimum(times, horizon + 1)).clip(1, horizon + 1)
            stats.kept_months[path0 : path0 + size] = months.astype(np.int16)
        path0 += size
        if run.progress:
            elapsed = time.perf_counter() - started
            log.info(
                "chunk %d/%d: %d of %d paths in %.1f s (%.2e path-months/s)",
                number,
                len(plan),
                path0,
                run.n_paths,
                elapsed,
                path0 * horizon / max(elapsed, 1e-9),
            )
    stats.finish()
    return stats, scopes
