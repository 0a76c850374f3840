"""Single-thread time of the market and demand kernels on one sub-chunk: a low-noise A/B.

Run ``python benchmarks/kernel_split.py`` (``--repeats N``, ``--cache``). Whole
runs of the default book vary by about ±3% from one process to the next on the
2-core machine, which hides most single changes worth 0.1-0.3 s; this script
times the two kernels that take nearly all of a run's time on their own, on one
thread, on the same inputs, and varies by about ±1-2%. It:

* runs ``compute_tables`` on ``DEMAND_SUBCHUNK`` x 2 paths of the default book and
  keeps the arguments of the first full sub-chunk's ``market_statistics`` and
  ``contract_statistics`` calls (the same paths every time);
* times each kernel on them with fresh (zero) statistics, one block, one thread,
  ``--repeats`` times, with and without the finance (the market kernel then keeps
  only the demand side's ``1 + G`` series, the demand kernel runs no finance);
* prints the best and median time in ms and ns per path-month, and a SHA-1 of the
  statistics, so that a variant can be checked to give the same bits.

Compare two engine trees by running it with ``PYTHONPATH`` set to each, in
alternating processes. The series buffer is written once before timing, so no
page faults are timed (a run reuses its buffer in the same way). Engine imports
are lazy: ``NUMBA_CACHE_DIR`` is pointed at a temporary directory first unless
``--cache`` is given (then the tree's own cache is used: fast, but stale after
editing only a callee's module, see docs/architecture.md).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np

HORIZON = 120
#: Arguments of contract_statistics: fin_inputs, n_blocks, first statistic, fin_outputs.
D_FIN_INPUTS, D_BLOCKS, D_FIRST_STAT, D_FIN_OUTPUTS = 13, 14, 15, 23
#: Arguments of market_statistics: n_blocks, first and last statistic, trace, factor_paths.
M_BLOCKS, M_FIRST_STAT, M_TRACE, M_PATHS = 30, 31, 38, 39


def _capture() -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Arguments of the first full sub-chunk's market and demand kernel calls."""
    from capacity import _settings

    import engine.demand_stats as demand_stats
    import engine.market_stats as market_stats
    from engine.run import DEMAND_SUBCHUNK, compute_tables
    from engine.scenario import load_book

    def keep(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            return x.copy()
        return tuple(keep(y) for y in x) if isinstance(x, tuple) else x

    saved: dict[str, tuple[Any, ...]] = {}

    def spy(name: str, kernel: Any) -> Any:
        def call(*args: Any) -> None:
            if name not in saved and args[2].shape[0] == DEMAND_SUBCHUNK:
                saved[name] = keep(args)
            kernel(*args)

        return call

    market_stats.market_statistics = spy("market", market_stats.market_statistics)
    demand_stats.contract_statistics = spy("demand", demand_stats.contract_statistics)
    settings = _settings(2 * DEMAND_SUBCHUNK)
    compute_tables(load_book(settings.scenario), settings, threads=1)
    return saved["market"], saved["demand"]


def _digest(arrays: list[np.ndarray]) -> str:
    sha = hashlib.sha1()
    for a in arrays:
        sha.update(np.ascontiguousarray(a).tobytes())
    return sha.hexdigest()[:16]


def _time(kernel: Any, make_args: Any, repeats: int) -> tuple[list[float], list[Any]]:
    times, args = [], make_args()
    for _ in range(repeats):
        args = make_args()
        start = time.perf_counter()
        kernel(*args)
        times.append(time.perf_counter() - start)
    return times, args


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per kernel")
    parser.add_argument("--cache", action="store_true", help="use the engine's numba cache")
    opts = parser.parse_args()
    if not opts.cache:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="ncrisk-kernels-")
    import numba

    from engine.kernels.demand_kernel import contract_statistics
    from engine.kernels.finance_fields import FS_ENABLED
    from engine.kernels.markets import market_statistics

    market, demand = _capture()
    numba.set_num_threads(1)
    n_paths = demand[2].shape[0]
    full = market[M_PATHS]
    n_gens = demand[D_FIN_INPUTS][5].shape[0]  # FinanceArrays.gens: one row per generation
    demand_only = (full.shape[0], 1 + n_gens, *full.shape[2:])
    buffers = {True: np.ones(full.shape), False: np.ones(demand_only)}
    fin_off = list(demand[D_FIN_INPUTS])
    fin_off[8] = fin_off[8].copy()
    fin_off[8][FS_ENABLED] = 0.0

    def market_args(finance: bool) -> list[Any]:
        args = list(market)
        args[M_BLOCKS] = 1
        for i in range(M_FIRST_STAT, M_TRACE):
            args[i] = np.zeros_like(market[i])
        args[M_PATHS] = buffers[finance]
        return args

    def demand_args(finance: bool) -> list[Any]:
        args = list(demand)
        args[D_BLOCKS] = 1
        for i in range(D_FIRST_STAT, D_FIN_OUTPUTS):
            args[i] = np.zeros_like(demand[i])
        args[D_FIN_OUTPUTS] = tuple(np.zeros_like(a) for a in demand[D_FIN_OUTPUTS])
        if not finance:
            args[D_FIN_INPUTS] = tuple(fin_off)
        return args

    print(f"{n_paths:,} paths x {HORIZON} months, 1 thread, {opts.repeats} calls each")
    for name, kernel, make in (
        ("market", market_statistics, market_args),
        ("demand", contract_statistics, demand_args),
    ):
        for finance in (True, False):
            kernel(*make(finance))  # compiled, and the series buffer touched
            times, args = _time(kernel, lambda f=finance, m=make: m(f), opts.repeats)
            stats = [a for a in args if isinstance(a, np.ndarray)]
            stats += [a for t in args if isinstance(t, tuple) for a in t]
            best, median = min(times), float(np.median(times))
            per = best / (n_paths * HORIZON) * 1e9
            label = f"{name} {'with' if finance else 'without'} finance"
            print(
                f"{label:<26} best {best * 1e3:7.1f} ms  median {median * 1e3:7.1f} ms  "
                f"{per:5.2f} ns/path-month  sha1 {_digest(stats)}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
