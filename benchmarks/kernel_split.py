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
import inspect
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np


def _positions(kernel: Any) -> dict[str, int]:
    """Position of each argument of a numba kernel, by name (from its Python source)."""
    return {name: k for k, name in enumerate(inspect.signature(kernel.py_func).parameters)}


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
    times: list[float] = []
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

    from engine.finance_stats import FinanceStats
    from engine.kernels.demand_kernel import contract_statistics
    from engine.kernels.markets import market_statistics

    market, demand = _capture()
    numba.set_num_threads(1)
    m_at, d_at = _positions(market_statistics), _positions(contract_statistics)
    full = market[m_at["factor_paths"]]  # [groups, channels, T + 1, LANES]
    n_paths, horizon = demand[d_at["energization"]].shape[0], full.shape[2] - 1
    # without the finance the market kernel keeps the demand factor and each rent only
    demand_only = (full.shape[0], 1 + market[m_at["gpu"]].shape[0], *full.shape[2:])
    buffers = {True: np.ones(full.shape), False: np.ones(demand_only)}
    finance_off = FinanceStats.disabled()  # what a run without debt passes

    def market_args(finance: bool) -> list[Any]:
        args = list(market)
        args[m_at["n_blocks"]] = 1
        for i in range(m_at["hist"], m_at["trace"]):  # the statistics, fresh
            args[i] = np.zeros_like(market[i])
        args[m_at["factor_paths"]] = buffers[finance]
        return args

    def demand_args(finance: bool) -> list[Any]:
        args = list(demand)
        args[d_at["n_blocks"]] = 1
        for i in range(d_at["ct_sums"], d_at["fin_outputs"]):  # the statistics, fresh
            args[i] = np.zeros_like(demand[i])
        outputs = demand[d_at["fin_outputs"]]
        args[d_at["fin_outputs"]] = tuple(np.zeros_like(a) for a in outputs)
        if not finance:
            args[d_at["fin_inputs"]], args[d_at["fin_outputs"]] = finance_off
        return args

    print(f"{n_paths:,} paths x {horizon} months, 1 thread, {opts.repeats} calls each")
    for name, kernel, make, first, last in (  # statistics: args[first:last]
        ("market", market_statistics, market_args, m_at["hist"], len(m_at)),
        ("demand", contract_statistics, demand_args, d_at["ct_sums"], len(d_at)),
    ):
        for finance in (True, False):
            kernel(*make(finance))  # compiled, and the series buffer touched
            times, args = _time(kernel, lambda f=finance, m=make: m(f), opts.repeats)
            stats = [a for a in args[first:last] if isinstance(a, np.ndarray)]
            stats += [a for t in args[first:last] if isinstance(t, tuple) for a in t]
            best, median = min(times), float(np.median(times))
            per = best / (n_paths * horizon) * 1e9
            label = f"{name} {'with' if finance else 'without'} finance"
            print(
                f"{label:<26} best {best * 1e3:7.1f} ms  median {median * 1e3:7.1f} ms  "
                f"{per:5.2f} ns/path-month  sha1 {_digest(stats)}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
