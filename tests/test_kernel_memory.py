"""The blocks' scratch sets, and no array left behind by kernels that count no references.

The market kernel's block function is compiled with ``_nrt=False`` (no
reference counts, docs/architecture.md): it only borrows arrays that the Python
side allocates for it, one scratch set per thread (``run_blocks(..., scratch=...)``).
numba's own allocation statistics tell whether every array a run's kernels
allocate is freed again.
"""

from __future__ import annotations

import gc
import threading
import time

import numba
import numpy as np
import pytest
from conftest import numba_threads
from numba.core.runtime import _nrt_python, rtsys

import engine.blocks
from engine.config import RunConfig, Settings
from engine.kernels.market_block import market_block
from engine.run import compute_tables
from engine.scenario import load_book


@numba.njit(nogil=True)
def _mark(b: int, out: np.ndarray, mine: np.ndarray) -> None:
    out[b] = mine[0]


@pytest.mark.parametrize("threads", [1, 2])
def test_every_block_runs_with_one_of_the_scratch_sets(threads: int) -> None:
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    out = np.full(9, -1.0)
    sets = [(np.array([float(k)]),) for k in range(threads)]
    with numba_threads(threads):
        engine.blocks.run_blocks(_mark, 9, out, scratch=sets)
        with pytest.raises(ValueError, match="scratch tuples"):
            engine.blocks.run_blocks(_mark, 9, out, scratch=sets[:-1])
    assert set(out.tolist()) <= set(range(threads)) and -1.0 not in out.tolist()


class _Borrowing:
    """A stand-in block function that records which scratch set each running block holds."""

    def __init__(self) -> None:
        self.targetoptions = {"nogil": True}
        self.lock = threading.Lock()
        self.held: set[str] = set()
        self.clashes = 0
        self.blocks: list[int] = []

    def __call__(self, b: np.int64, tag: str) -> None:
        with self.lock:
            self.clashes += tag in self.held
            self.held.add(tag)
            self.blocks.append(int(b))
        time.sleep(0.02 * (1 + int(b) % 3))
        with self.lock:
            self.held.discard(tag)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads")
def test_no_two_running_blocks_share_a_scratch_set() -> None:
    blocks = _Borrowing()
    with numba_threads(2):
        engine.blocks.run_blocks(blocks, 12, scratch=[("a",), ("b",)])
    assert sorted(blocks.blocks) == list(range(12))
    assert blocks.clashes == 0


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
            result = compute_tables(book, s, threads=2)
            del result
            gc.collect()
            after = rtsys.get_allocation_stats()
            assert after.mi_alloc > before.mi_alloc  # the kernels did allocate (counted)
            leaked.append((after.mi_alloc - before.mi_alloc) - (after.mi_free - before.mi_free))
    finally:
        _nrt_python.memsys_disable_stats()
    assert leaked == [0, 0]
