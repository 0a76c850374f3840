"""Speed of the default run with its customers and contracts, against the RNG floor.

Run ``python benchmarks/customers.py`` (``--quick`` for 200k paths). On the
default scenario without its debt facilities (the finance is timed with the
whole model by ``benchmarks/whole.py``), 120 months, it prints path-months per
second on 1 and 2 threads of:

* the demand-side run (``compute_tables``: capacity + markets + customers and
  contracts + tables), and the same book without its contracts;
* the floor: drawing the run's random numbers only, with the engine's own
  generator and streams: the capacity kernel's (``rng_floor.draw_like_capacity``),
  the market kernel's (``rng_floor.draw_like_markets``) and the demand side's
  (``draw_like_demand`` below: per path, each customer's normals for its
  expected months before default, and two uniforms per contract);
* the ratio of the full run to the floor, against the target (<= 3x).

Every engine import is lazy: ``NUMBA_CACHE_DIR`` is pointed at a temporary
directory first (the first call compiles).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from typing import TYPE_CHECKING

import numpy as np
from capacity import _settings
from timing import Stopwatch, wait_for_idle

if TYPE_CHECKING:  # engine modules import numba: only after NUMBA_CACHE_DIR is set
    from engine.scenario import Book

SCENARIO = "reference"
HORIZON = 120
TARGET_FLOOR = 3.0


def demand_draws(book: Book, horizon: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Stream ids, normals per customer stream (expected months alive) and uniforms.

    A customer draws one normal a month until it defaults: the expected number of
    months alive is sum_t (1 - p_m)^(t - 1) (its own hazard, which is the
    average over the demand factor); each contract draws two uniforms per path.
    """
    from engine.rng import stream_id

    customers, contracts = book.customers, book.contracts
    streams = [stream_id("customer", c.id) for c in customers]
    streams += [stream_id("contract", c.id) for c in contracts]
    normals = [round(sum((1.0 - c.monthly_pd) ** t for t in range(horizon))) for c in customers]
    return np.array(streams, dtype=np.uint64), np.array(normals, dtype=np.int64), len(contracts)


def _draw_like_demand() -> object:
    from numba import njit, prange

    from engine.rng import next_normal, next_uniform, seed_stream

    @njit(parallel=True)
    def draw_like_demand(
        seed: np.uint64,
        streams: np.ndarray,
        normals: np.ndarray,
        n_contracts: int,
        out: np.ndarray,
    ) -> None:
        """Seed every demand stream of each path, draw its numbers, sum them."""
        n_cust = normals.shape[0]
        block = 256
        for b in prange((out.shape[0] + block - 1) // block):
            rng = np.zeros((4, streams.shape[0] + 1), dtype=np.uint64)
            for i in range(b * block, min(out.shape[0], (b + 1) * block)):
                total = 0.0
                for k in range(streams.shape[0]):
                    seed_stream(rng, k, seed, np.uint64(i), streams[k])
                for k in range(n_cust):
                    for _ in range(normals[k]):
                        total += next_normal(rng, k)
                for c in range(n_contracts):
                    total += next_uniform(rng, n_cust + c) + next_uniform(rng, n_cust + c)
                out[i] = total

    return draw_like_demand


def report(n_paths: int, repeats: int) -> bool:
    """Time the runs and floors, print them; True if the target is met."""
    import numba
    import rng_floor

    from engine.book import lower_capacity
    from engine.market_stats import MarketStats
    from engine.run import compute_tables
    from engine.scenario import load_book
    from engine.scopes import build_scopes

    # the demand side's scope: no debt (the finance is whole.py's)
    book = dataclasses.replace(load_book(SCENARIO), facilities=())
    bare = dataclasses.replace(book, customers=(), contracts=())
    settings = _settings(n_paths)
    seed = np.uint64(settings.run.seed)
    cap_arrays = lower_capacity(book, settings.capacity, settings.markets)
    markets = MarketStats.create(book, settings, build_scopes(book, 4096))
    plan = rng_floor.market_draw_plan(markets.arrays, book, HORIZON)
    schedule = plan.schedule(HORIZON)
    cap = rng_floor.draw_plan(cap_arrays)
    streams, normals, n_contracts = demand_draws(book, HORIZON)
    draw_like_demand = _draw_like_demand()
    sums = np.empty(n_paths)
    started = time.perf_counter()
    compute_tables(book, _settings(1000), threads=1)
    compute_tables(bare, _settings(1000), threads=1)
    draw_like_demand(seed, streams, normals, n_contracts, sums[:1000])  # type: ignore[operator]
    rng_floor.draw_like_markets(seed, np.uint64(0), plan.streams, *schedule, sums[:1000])
    rng_floor.draw_like_capacity(seed, np.uint64(0), *cap, sums[:1000])
    print(
        f"demand side: {len(book.customers)} customers ({normals.sum()} normals per path "
        f"expected), {n_contracts} contracts (2 uniforms each)\n"
        f"== throughput: {n_paths:,} paths x {HORIZON} months, best of {repeats} "
        f"(after compilation: {time.perf_counter() - started:.1f} s) =="
    )
    watch, pm, met = Stopwatch(), n_paths * HORIZON, True
    for threads in (1, 2):
        full = watch.best(lambda t=threads: compute_tables(book, settings, threads=t), repeats)
        without = watch.best(lambda t=threads: compute_tables(bare, settings, threads=t), repeats)
        numba.set_num_threads(threads)
        floor = watch.best(
            lambda: draw_like_demand(seed, streams, normals, n_contracts, sums),
            repeats,  # type: ignore[operator]
        )
        floor_d = floor
        floor += watch.best(
            lambda: rng_floor.draw_like_markets(seed, np.uint64(0), plan.streams, *schedule, sums),
            repeats,
        )
        floor += watch.best(
            lambda: rng_floor.draw_like_capacity(seed, np.uint64(0), *cap, sums), repeats
        )
        ratio = full / floor
        ok = ratio <= TARGET_FLOOR or threads == 1
        met = met and ok
        s = "s" if threads > 1 else " "
        print(
            f"  {threads} thread{s}: full run {pm / full:9.3e} path-months/s ({full:6.2f} s); "
            f"without contracts {without:6.2f} s; floor {floor:6.2f} s (demand draws "
            f"{floor_d:5.2f} s); full / floor {ratio:4.2f}x"
            + (f" (<= {TARGET_FLOOR:g}x: {'MET' if ok else 'NOT MET'})" if threads == 2 else "")
        )
    print(f"  other processes used {watch.other_cores:.2f} cores on average while timing")
    return met


def main() -> int:
    """Parse arguments, run the benchmark; exit status 1 if the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="200k paths")
    parser.add_argument("--wait-idle", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["NUMBA_CACHE_DIR"] = cache
        wait_for_idle(args.wait_idle)
        ok = report(200_000 if args.quick else args.paths, args.repeats)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
