"""Same seed and config -> bitwise-identical tables, whatever the threads or chunks."""

from __future__ import annotations

import copy
import dataclasses
import threading
import time

import numba
import numpy as np
import polars as pl
import pytest
from conftest import numba_threads
from polars.testing import assert_frame_equal

import engine.blocks
from engine.book import lower_capacity
from engine.config import CapacityConfig, OutputConfig, RunConfig, Settings
from engine.kernels.capacity import energization_times
from engine.run import compute_tables
from engine.scenario import Book, Site, load_book

N_PATHS = 30_011  # prime: uneven chunks and blocks


def settings(seed: int = 7, keep_paths: bool = False) -> Settings:
    return Settings(
        run=RunConfig(n_paths=N_PATHS, horizon_months=60, seed=seed, progress=False),
        output=OutputConfig(keep_paths=keep_paths),
    )


def tables(
    book: Book, s: Settings, threads: int, chunks: list[int] | None = None
) -> dict[str, pl.DataFrame]:
    return compute_tables(book, s, threads=threads, chunk_sizes=chunks)[0]


def assert_same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert_frame_equal(a[name], b[name], check_exact=True)


def test_one_and_two_threads_give_identical_tables() -> None:
    book = load_book("reference")
    assert_same(
        tables(book, settings(keep_paths=True), 1), tables(book, settings(keep_paths=True), 2)
    )


def test_one_chunk_and_uneven_chunks_give_identical_tables() -> None:
    book = load_book("reference")
    uneven = [1, 7, 9_999, 3, 12_345, N_PATHS - 1 - 7 - 9_999 - 3 - 12_345]
    assert_same(
        tables(book, settings(keep_paths=True), 2),
        tables(book, settings(keep_paths=True), 2, uneven),
    )


def test_different_seeds_give_different_tables() -> None:
    book = load_book("reference")
    a = tables(book, settings(seed=0), 2)["capacity_by_month"]
    b = tables(book, settings(seed=1), 2)["capacity_by_month"]
    assert not a.equals(b)
    assert (a["mw_online_mean"] - b["mw_online_mean"]).abs().max() > 0


def per_path_times(book: Book, seed: int, n: int = 4096) -> np.ndarray:
    arrays = lower_capacity(book, CapacityConfig())
    out = np.empty((n, arrays.n_phases))
    args = [getattr(arrays, f.name) for f in dataclasses.fields(arrays)]
    energization_times(np.uint64(seed), np.uint64(0), *args, out)
    return out


def test_adding_a_site_leaves_other_sites_draws_unchanged() -> None:
    """Common random numbers: a new site (new campus) does not move any other site's path."""
    book = load_book("reference")
    extra = copy.deepcopy(book.sites[4])
    extra = dataclasses.replace(extra, id="meridian_new", campus="new_campus")
    assert isinstance(extra, Site)
    bigger = dataclasses.replace(book, sites=(*book.sites[:2], extra, *book.sites[2:]))
    before = per_path_times(book, seed=3)
    after = per_path_times(bigger, seed=3)
    n_extra = len(extra.phases)
    kept = np.delete(after, np.s_[2 : 2 + n_extra], axis=1)
    np.testing.assert_array_equal(before, kept)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads")
def test_many_small_blocks_on_two_threads_give_identical_tables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Blocks queued on the threads (more blocks than threads, finishing in any order)."""
    book = load_book("reference")
    s = dataclasses.replace(
        settings(), run=dataclasses.replace(settings().run, n_paths=4_099, horizon_months=36)
    )
    whole = tables(book, s, 1)
    monkeypatch.setattr(engine.blocks, "BLOCK_PATHS", 192)  # 22 blocks a chunk, 3 groups each
    assert engine.blocks.block_layout(4_099, 2, 64) == (22, 192)
    assert_same(whole, tables(book, s, 2))


def test_a_block_function_that_holds_the_gil_is_refused() -> None:
    @numba.njit
    def block(b: int, out: np.ndarray) -> None:
        out[b] = b

    with pytest.raises(ValueError, match="nogil"):
        engine.blocks.run_blocks(block, 2, np.zeros(2))


class _FailingBlocks:
    """A stand-in block function: block 0 takes 1.5 s, block 1 fails, the others 0.5 s.

    It passes ``run_blocks``' ``nogil`` check (its waits release the GIL), and
    records which blocks started.
    """

    def __init__(self) -> None:
        self.targetoptions = {"nogil": True}
        self.started: set[int] = set()
        self.never = threading.Event()

    def __call__(self, b: np.int64) -> None:
        self.started.add(int(b))
        if b == 0:
            self.never.wait(1.5)
        elif b == 1:
            raise RuntimeError("block 1 failed")
        else:
            time.sleep(0.5)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads")
def test_a_failed_block_stops_the_blocks_not_started() -> None:
    blocks = _FailingBlocks()
    with numba_threads(2), pytest.raises(RuntimeError, match="block 1 failed"):
        engine.blocks.run_blocks(blocks, 12)
    # block 2 may start as block 1 fails; waiting for block 0's result first (as run_blocks
    # did before) starts blocks 2 to 4 or 5 meanwhile
    assert {0, 1} <= blocks.started <= {0, 1, 2, 3}
