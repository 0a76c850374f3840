"""The blocks' own arguments, and no array left behind by kernels that count no references.

The market kernel's block function is compiled with ``_nrt=False`` (no
reference counts, docs/architecture.md): it only borrows arrays that the Python
side allocates for it (``run_blocks(..., own=...)``). numba's own allocation
statistics tell whether every array a run's kernels allocate is freed again.
"""

from __future__ import annotations

import dataclasses
import gc

import numba
import numpy as np
import pytest
from numba.core.runtime import _nrt_python, rtsys

import engine.blocks
from engine.config import RunConfig, Settings
from engine.kernels.market_block import market_block
from engine.run import compute_tables
from engine.scenario import load_book


@numba.njit(nogil=True)
def _copy_own(b: int, out: np.ndarray, mine: np.ndarray) -> None:
    out[b] = mine[0]


@pytest.mark.parametrize("threads", [1, 2])
def test_each_block_gets_its_own_arguments(threads: int) -> None:
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        out = np.zeros(7)
        own = [(np.array([10.0 * b]),) for b in range(7)]
        engine.blocks.run_blocks(_copy_own, 7, out, own=own)
    finally:
        numba.set_num_threads(previous)
    assert out.tolist() == [10.0 * b for b in range(7)]


def test_the_market_block_counts_no_references() -> None:
    assert market_block.targetoptions.get("_nrt") is False


def test_a_run_frees_every_array_its_kernels_allocate() -> None:
    book = load_book("reference")  # every component: markets, contracts, finance
    s = Settings(run=RunConfig(n_paths=2_000, horizon_months=36, seed=3, progress=False))
    compute_tables(book, s, threads=2)  # compiled or loaded before counting
    _nrt_python.memsys_enable_stats()
    try:
        leaked = []
        for _ in range(2):
            gc.collect()
            before = rtsys.get_allocation_stats()
            result = compute_tables(book, dataclasses.replace(s), threads=2)
            del result
            gc.collect()
            after = rtsys.get_allocation_stats()
            assert after.mi_alloc > before.mi_alloc  # the kernels did allocate (counted)
            leaked.append((after.mi_alloc - before.mi_alloc) - (after.mi_free - before.mi_free))
    finally:
        _nrt_python.memsys_disable_stats()
    assert leaked == [0, 0]
