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
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numba
import numpy as np

from engine.book import CapacityArrays, lower_capacity
from engine.config import Settings
from engine.errors import InputError
from engine.kernels.aggregate import N_MEASURES, capacity_counts, phase_chain_counts
from engine.kernels.capacity import energization_times
from engine.scenario import Book
from engine.scopes import Scopes, build_scopes

__all__ = ["CapacityStats", "available_cores", "simulate_capacity"]

log = logging.getLogger(__name__)


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


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
    state_counts : numpy.ndarray
        ``int64[n_states, T + 2]`` month-to-month changes of the paths by state
        of the state-coded scopes (folded into ``value_counts`` by :meth:`finish`).
    kept_months : numpy.ndarray or None
        ``int16[n_paths, P]`` energization month per path when asked to keep paths.
    """

    n_paths: int
    horizon: int
    phase_months: np.ndarray
    withdrawn: np.ndarray
    value_counts: np.ndarray
    value_sums: np.ndarray
    state_counts: np.ndarray
    kept_months: np.ndarray | None = None
    chunks: list[int] = field(default_factory=list)

    @classmethod
    def empty(cls, n_paths: int, horizon: int, scopes: Scopes) -> CapacityStats:
        """Zero statistics of ``n_paths`` paths over ``horizon`` months for ``scopes``."""
        width = horizon + 2
        n_phases = scopes.phase_amount.shape[0]
        return cls(
            n_paths=n_paths,
            horizon=horizon,
            phase_months=np.zeros((n_phases, width), dtype=np.int64),
            withdrawn=np.zeros(n_phases, dtype=np.int64),
            value_counts=np.zeros((scopes.n_bins, width), dtype=np.int64),
            value_sums=np.zeros((len(scopes.kind), N_MEASURES, width), dtype=np.int64),
            state_counts=np.zeros((scopes.n_states, width), dtype=np.int64),
        )

    def add(self, energization: np.ndarray, scopes: Scopes, n_blocks: int) -> None:
        """Count one chunk's energization times (``float64[n, P]``, months) in place."""
        capacity_counts(
            energization,
            self.horizon,
            scopes.phase_start,
            scopes.phase_index,
            scopes.per_path,
            scopes.state_offset,
            scopes.entry_state_step,
            scopes.phase_amount,
            scopes.bin_width,
            scopes.bin_offset,
            scopes.n_bins,
            scopes.n_states,
            n_blocks,
            self.phase_months,
            self.withdrawn,
            self.value_counts,
            self.state_counts,
        )

    def finish(self, scopes: Scopes) -> None:
        """Complete the counts from the phases' months and turn changes into levels.

        Parameters
        ----------
        scopes : Scopes
            The scopes the statistics were counted for.
        """
        phase_chain_counts(
            self.n_paths,
            self.horizon,
            scopes.phase_start,
            scopes.phase_index,
            scopes.per_path,
            scopes.phase_amount,
            scopes.bin_width,
            scopes.bin_offset,
            self.phase_months,
            self.value_counts,
            self.value_sums,
        )
        for m in range(N_MEASURES):
            np.add.at(self.value_counts, scopes.state_bin[:, m], self.state_counts)
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
    chunk_hooks: Sequence[Callable[[np.ndarray, int, int], None]] = (),
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
    chunk_hooks : sequence of callables
        Called as ``hook(energization, path0, n_blocks)`` after each chunk's
        energization times are drawn (the market model adds its statistics).

    Returns
    -------
    tuple
        The :class:`CapacityStats` and the :class:`Scopes` they refer to.
    """
    run = settings.run
    n_threads = threads if threads is not None else run.threads
    n_threads = min(n_threads or available_cores(), numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(n_threads)
    arrays = arrays or lower_capacity(book, settings.capacity, settings.markets)
    scopes = build_scopes(book, settings.output.max_histogram_bins)
    horizon = run.horizon_months
    n_phases = arrays.n_phases
    stats = CapacityStats.empty(run.n_paths, horizon, scopes)
    if settings.output.keep_paths:
        stats.kept_months = np.empty((run.n_paths, n_phases), dtype=np.int16)
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
    buffer = np.empty((max(plan, default=0), n_phases), dtype=np.float64)
    for number, size in enumerate(plan, start=1):
        times = buffer[:size]
        energization_times(np.uint64(run.seed), np.uint64(path0), *kernel_args, times)
        stats.add(times, scopes, max(1, n_threads))
        for hook in chunk_hooks:
            hook(times, path0, max(1, n_threads))
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
    stats.finish(scopes)
    return stats, scopes
