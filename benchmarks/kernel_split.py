"""Single-thread time of the market kernel with and without its demand side: a low-noise A/B.

Run ``python benchmarks/kernel_split.py`` (``--repeats N``, ``--cache``). Whole
runs of the default book vary by about ±3% from one process to the next on the
2-core machine, which hides most single changes worth 0.1-0.3 s; this script
times the kernel that takes nearly all of a run's time on its own, on one
thread, on the same inputs, and varies by about ±1-2%. It:

* runs ``compute_tables`` on ``PATHS`` (32,768) paths of the default book and
  keeps the arguments of its one ``market_statistics`` call (the same paths
  every time);
* times the kernel on them with fresh (zero) statistics, one thread,
  ``--repeats`` times, in three ways: as a run calls it (markets, then each
  group's demand side and finance), without the finance (the demand side keeps
  the ``1 + G`` series it needs), and the markets alone (no demand side, no
  series kept: a book without contracts). The differences are the demand
  side's and the finance's cost;
* prints the best and median time in ms and ns per path-month, and a SHA-1 of the
  statistics, so that a variant can be checked to give the same bits.

Compare two engine trees by running it with ``PYTHONPATH`` set to each, in
alternating processes. Engine imports are lazy: ``NUMBA_CACHE_DIR`` is pointed
at a temporary directory first unless ``--cache`` is given (then the tree's own
cache is used: fast, but stale after editing only a callee's module, see
docs/architecture.md).
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

#: Paths of the captured call (one chunk of the run).
PATHS = 32_768


def _positions(kernel: Any) -> dict[str, int]:
    """Position of each argument of a function or numba kernel, by name (from its source)."""
    function = getattr(kernel, "py_func", kernel)
    return {name: k for k, name in enumerate(inspect.signature(function).parameters)}


def _capture() -> tuple[Any, ...]:
    """Arguments of the run's market kernel call on ``PATHS`` paths of the default book."""
    from capacity import _settings

    import engine.market_stats as market_stats
    from engine.run import compute_tables
    from engine.scenario import load_book

    def keep(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            return x.copy()
        return tuple(keep(y) for y in x) if isinstance(x, tuple) else x

    saved: list[tuple[Any, ...]] = []
    kernel = market_stats.market_statistics

    def call(*args: Any) -> None:
        if not saved:
            saved.append(keep(args))
        kernel(*args)

    market_stats.market_statistics = call
    settings = _settings(PATHS)
    compute_tables(load_book(settings.scenario), settings, threads=1)
    market_stats.market_statistics = kernel
    return saved[0]


def _fresh(x: Any) -> Any:
    """Zero statistics of the same shapes (arrays, or tuples of arrays)."""
    return tuple(np.zeros_like(a) for a in x) if isinstance(x, tuple) else np.zeros_like(x)


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
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per variant")
    parser.add_argument("--cache", action="store_true", help="use the engine's numba cache")
    opts = parser.parse_args()
    if not opts.cache:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="ncrisk-kernels-")
    import numba

    from engine.blocks import market_statistics
    from engine.demand_stats import DemandStats
    from engine.finance_stats import FinanceStats

    captured = _capture()
    numba.set_num_threads(1)
    at = _positions(market_statistics)
    series = captured[at["factor_paths"]]  # [0, channels, T + 1, LANES]: a slot per block
    n_paths, horizon = captured[at["energization"]].shape[0], series.shape[2] - 1
    n_gens = captured[at["gpu"]].shape[0]
    stats = [*range(at["hist"], at["trace"]), at["dem_out"], at["fin_outputs"]]
    fin_in_off, fin_out_off = FinanceStats.disabled()  # what a run without debt passes

    def args_for(variant: str) -> list[Any]:
        args = list(captured)
        args[at["n_blocks"]] = 1
        for i in stats:
            args[i] = _fresh(captured[i])
        if variant == "no finance":
            args[at["factor_paths"]] = np.empty((0, 1 + n_gens, *series.shape[2:]))
            args[at["fin_inputs"]], args[at["fin_outputs"]] = fin_in_off, fin_out_off
        elif variant == "markets alone":
            args[at["factor_paths"]] = np.zeros((0, 0, 0, 0))
            args[at["demand_side"]] = False
            names = ("dem_in", "fin_inputs", "dem_out", "fin_outputs")
            for name, value in zip(names, DemandStats.absent(), strict=True):
                args[at[name]] = value
        return args

    print(f"{n_paths:,} paths x {horizon} months, 1 thread, {opts.repeats} calls each")
    for variant in ("as a run", "no finance", "markets alone"):
        market_statistics(*args_for(variant))  # compiled
        times, args = _time(market_statistics, lambda v=variant: args_for(v), opts.repeats)
        arrays = [a for i in stats for a in (args[i] if isinstance(args[i], tuple) else [args[i]])]
        best, median = min(times), float(np.median(times))
        per = best / (n_paths * horizon) * 1e9
        print(
            f"{variant:<14} best {best * 1e3:7.1f} ms  median {median * 1e3:7.1f} ms  "
            f"{per:5.2f} ns/path-month  sha1 {_digest(arrays)}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
