"""Speed and memory of the whole default run: engine vs plain NumPy vs the RNG floor.

Run ``python benchmarks/whole.py`` (``--quick``: 200k paths, NumPy at 100k and
50k, check on 20k). On the default scenario (``reference``) with every
component on (capacity, markets, customers and contracts, finance), 120
months, it prints:

* peak resident memory of the full run (``compute_tables``, 2 threads) in a
  fresh process spawned before this one imports the engine (``fresh_process.py``);
  that process also compiles the kernels into this run's numba cache;
* path-months per second of the full run on 1 and 2 threads (best of
  ``--repeats`` after compilation);
* the whole model in plain vectorised NumPy on 1 core (``numpy_whole.py``),
  timed at ``--numpy-paths`` and half as many paths (to show it is linear in
  the paths) and scaled linearly to ``--paths``;
* the floor: drawing every random number of the run with the engine's own
  generator and streams, nothing else: the capacity and market kernels'
  (``rng_floor.py``), the demand side's (``customers.py``) and one uniform per
  debt facility per path (refinancing, stream ``facility/<id>``);
* targets, MET or NOT MET: full run at 1e6 paths <= 20 s on 2 cores, >= 5x
  NumPy and <= 3x the floor (both on 2 threads);
* a distribution check at small N: engine vs NumPy (independent draws) on
  PD by month, mean cash and EBITDA, facility PD and expected loss, revenue
  loss probabilities, contract outcomes and joint targets, as z-scores from
  the two Monte Carlo standard errors; PASS if all within 5; exit status 1 if not.

Every engine import is lazy: ``NUMBA_CACHE_DIR`` is pointed at a temporary
directory first (the first call compiles, some 3 minutes).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import TYPE_CHECKING

import numpy as np
from capacity import _settings, report_memory
from timing import Stopwatch, wait_for_idle
from whole_check import NUMPY_SEED, SCENARIO, report_check

if TYPE_CHECKING:  # engine modules import numba: only after NUMBA_CACHE_DIR is set
    from engine.scenario import Book

HORIZON = 120
TARGET_SECONDS = 20.0  # 1e6 paths x 120 months on 2 cores, after compilation
TARGET_SPEEDUP = 5.0  # engine vs NumPy, 2 threads
TARGET_FLOOR = 3.0  # engine time / RNG floor time, 2 threads


def _draw_like_refinancing() -> Callable[..., None]:
    """Compile the refinancing floor: seed each facility's stream, draw one uniform."""
    from numba import njit, prange

    from engine.rng import next_uniform, seed_stream

    @njit(parallel=True)
    def draw_like_refinancing(seed: np.uint64, streams: np.ndarray, out: np.ndarray) -> None:
        block = 256
        for b in prange((out.shape[0] + block - 1) // block):
            rng = np.zeros((4, 1), dtype=np.uint64)
            for i in range(b * block, min(out.shape[0], (b + 1) * block)):
                total = 0.0
                for k in range(streams.shape[0]):
                    seed_stream(rng, 0, seed, np.uint64(i), streams[k])
                    total += next_uniform(rng, 0)
                out[i] = total

    return draw_like_refinancing


def _floors(book: Book, n_paths: int) -> dict[str, Callable[[], object]]:
    """The floor's parts, each a call drawing ``n_paths`` paths' numbers (compiled here)."""
    import rng_floor
    from customers import _draw_like_demand, demand_draws

    from engine.book import lower_capacity
    from engine.market_stats import MarketStats
    from engine.rng import stream_id
    from engine.scopes import build_scopes

    settings = _settings(n_paths)
    seed = np.uint64(settings.run.seed)
    cap = rng_floor.draw_plan(lower_capacity(book, settings.capacity, settings.markets))
    markets = MarketStats.create(book, settings, build_scopes(book, 4096))
    plan = rng_floor.market_draw_plan(markets.arrays, book, HORIZON)
    schedule = plan.schedule(HORIZON)
    streams, normals, n_contracts = demand_draws(book, HORIZON)
    facilities = np.array([stream_id("facility", f.id) for f in book.facilities], dtype=np.uint64)
    demand, refinancing = _draw_like_demand(), _draw_like_refinancing()
    sums = np.empty(n_paths)
    parts: dict[str, Callable[[], object]] = {
        "capacity": lambda: rng_floor.draw_like_capacity(seed, np.uint64(0), *cap, sums),
        "markets": lambda: rng_floor.draw_like_markets(
            seed, np.uint64(0), plan.streams, *schedule, sums
        ),
        "demand": lambda: demand(seed, streams, normals, n_contracts, sums),  # type: ignore[operator]
        "refinancing": lambda: refinancing(seed, facilities, sums),
    }
    small = sums[:1000]
    rng_floor.draw_like_capacity(seed, np.uint64(0), *cap, small)  # compile
    rng_floor.draw_like_markets(seed, np.uint64(0), plan.streams, *schedule, small)
    demand(seed, streams, normals, n_contracts, small)  # type: ignore[operator]
    refinancing(seed, facilities, small)
    print(
        f"  floor draws per path: capacity {cap[0].size} streams, {cap[1].sum()} normals, "
        f"{cap[2].sum()} uniforms; markets {plan.streams.size} streams, "
        f"{schedule[0][-1]} draws; demand {streams.size} streams, ~{normals.sum()} normals, "
        f"{2 * n_contracts} uniforms; refinancing {facilities.size} streams, 1 uniform each"
    )
    return parts


def _numpy_run(book: Book, n_paths: int) -> None:
    """The whole NumPy model on ``n_paths`` paths, with its tables."""
    import numpy_whole

    settings = _settings(n_paths)
    stats = numpy_whole.simulate_whole(book, settings, NUMPY_SEED)
    numpy_whole.whole_tables(stats, book, settings)


def report_speed(n_paths: int, numpy_paths: int, repeats: int) -> dict[str, float]:
    """Time the engine, NumPy and the floor; print them; return seconds by label."""
    import numba

    from engine.run import compute_tables
    from engine.scenario import load_book

    book = load_book(SCENARIO)
    settings = _settings(n_paths)
    started = time.perf_counter()
    compute_tables(book, _settings(1000), threads=1)  # loads (or compiles) the kernels
    print(f"\n== throughput: {n_paths:,} paths x {HORIZON} months, best of {repeats} ==")
    floors = _floors(book, n_paths)
    _numpy_run(book, 1000)
    print(f"  (compilation and warm-up {time.perf_counter() - started:.1f} s)")
    watch, seconds = Stopwatch(), {}
    for threads in (1, 2):
        seconds[f"engine_{threads}"] = watch.best(
            lambda t=threads: compute_tables(book, settings, threads=t), repeats
        )
        numba.set_num_threads(threads)
        seconds[f"floor_{threads}"] = 0.0
        for name, call in floors.items():
            seconds[f"floor_{name}_{threads}"] = watch.best(call, repeats)
            seconds[f"floor_{threads}"] += seconds[f"floor_{name}_{threads}"]
    cpu, wall = time.process_time(), watch.wall_s
    half = numpy_paths // 2
    seconds["numpy_half"] = watch.best(lambda: _numpy_run(book, half), repeats)
    seconds["numpy_measured"] = watch.best(lambda: _numpy_run(book, numpy_paths), repeats)
    numpy_cores = (time.process_time() - cpu) / max(watch.wall_s - wall, 1e-9)
    seconds["numpy"] = seconds["numpy_measured"] * n_paths / numpy_paths
    pm = n_paths * HORIZON
    for threads in (1, 2):
        s = "s" if threads > 1 else " "
        full, floor = seconds[f"engine_{threads}"], seconds[f"floor_{threads}"]
        parts = ", ".join(f"{name} {seconds[f'floor_{name}_{threads}']:.2f} s" for name in floors)
        print(
            f"  engine compute_tables, {threads} thread{s}: {pm / full:9.3e} path-months/s "
            f"({full:7.2f} s)\n"
            f"  RNG floor,             {threads} thread{s}: {pm / floor:9.3e} path-months/s "
            f"({floor:7.2f} s: {parts})"
        )
    per_path = (seconds["numpy_half"] / half, seconds["numpy_measured"] / numpy_paths)
    print(
        f"  NumPy whole model, 1 core:      {pm / seconds['numpy']:9.3e} path-months/s "
        f"({seconds['numpy']:7.2f} s) -- timed at {numpy_paths:,} paths "
        f"({seconds['numpy_measured']:.2f} s) and SCALED LINEARLY to {n_paths:,}\n"
        f"  linearity: {per_path[0] * 1e6:.2f} s per 1e6 paths at {half:,} paths, "
        f"{per_path[1] * 1e6:.2f} s at {numpy_paths:,} (ratio {per_path[1] / per_path[0]:.3f}; "
        f"1 = linear); NumPy used {numpy_cores:.2f} CPU-s per wall-s\n"
        f"  other processes used {watch.other_cores:.2f} cores on average while timing"
        + ("  (WARNING: 2-thread figures need both cores)" if watch.other_cores > 0.25 else "")
    )
    return seconds


def report_targets(seconds: dict[str, float], n_paths: int, peak_gb: float) -> bool:
    """Print ratios and the targets; True if all are met."""
    met = True

    def verdict(ok: bool) -> str:
        nonlocal met
        met = met and ok
        return "MET" if ok else "NOT MET"

    print("\n== ratios and targets (targets on 2 threads: all the cores) ==")
    for threads in (1, 2):
        full = seconds[f"engine_{threads}"]
        print(
            f"  {threads} thread{'s' if threads > 1 else ' '}: engine speed-up over NumPy "
            f"{seconds['numpy'] / full:6.2f}x; full run / RNG floor "
            f"{full / seconds[f'floor_{threads}']:5.2f}x"
        )
    per_million = seconds["engine_2"] * 1e6 / n_paths
    scaled = "" if n_paths == 1_000_000 else f" (scaled from {n_paths:,} paths)"
    speedup = seconds["numpy"] / seconds["engine_2"]
    floor = seconds["engine_2"] / seconds["floor_2"]
    print(
        f"  full run, 1e6 paths x {HORIZON} months, 2 cores: {per_million:.2f} s{scaled} "
        f"(<= {TARGET_SECONDS:g} s: {verdict(per_million <= TARGET_SECONDS)})\n"
        f"  speed-up over NumPy: {speedup:.2f}x (>= {TARGET_SPEEDUP:g}x: "
        f"{verdict(speedup >= TARGET_SPEEDUP)})\n"
        f"  full run / floor: {floor:.2f}x (<= {TARGET_FLOOR:g}x: {verdict(floor <= TARGET_FLOOR)})"
        f"\n  peak RSS of the full run at {n_paths:,} paths: {peak_gb:.2f} GB (information)"
    )
    return met


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=1_000_000, help="paths of the timed runs")
    parser.add_argument(
        "--numpy-paths", type=int, default=200_000, help="paths of the NumPy timing (scaled)"
    )
    parser.add_argument("--check-paths", type=int, default=50_000, help="paths, check")
    parser.add_argument("--repeats", type=int, default=2, help="timings: best of this many")
    parser.add_argument(
        "--quick", action="store_true", help="200k paths (NumPy 100k, check 20k), best of 1"
    )
    parser.add_argument(
        "--wait-idle", type=float, default=60.0, help="max seconds to wait for idle cores"
    )
    parser.add_argument("--check-only", action="store_true", help="only the distribution check")
    args = parser.parse_args(argv)
    if args.quick:
        args.paths, args.numpy_paths, args.check_paths, args.repeats = 200_000, 100_000, 20_000, 1
    args.numpy_paths = min(args.numpy_paths, args.paths)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its report; 1 if the distribution check fails."""
    args = _parse(argv)
    with tempfile.TemporaryDirectory(prefix="ncrisk-numba-cache-") as cache_dir:
        os.environ["NUMBA_CACHE_DIR"] = cache_dir  # before numba is imported
        print(
            f"whole-model benchmark: scenario {SCENARIO} (capacity, markets, customers and "
            f"contracts, finance), {HORIZON} months; {platform.processor() or platform.machine()}"
            f", {os.cpu_count()} cores; python {platform.python_version()}, numpy "
            f"{np.__version__}, numba {version('numba')}"
        )
        load = os.getloadavg()[0]
        met = True
        if not args.check_only:
            # memory first, in a fresh process (it also compiles into cache_dir)
            started = time.perf_counter()
            peak_gb = report_memory([args.paths], cache_dir)
            print(
                f"  (probe process incl. numba compilation: {time.perf_counter() - started:.0f} s)"
            )
            others = wait_for_idle(args.wait_idle)
            print(
                f"(waited up to {args.wait_idle:g} s for idle cores: "
                f"other processes use {max(others, 0.0):.2f} cores)"
            )
            seconds = report_speed(args.paths, args.numpy_paths, args.repeats)
            met = report_targets(seconds, args.paths, peak_gb)
        ok = report_check(args.check_paths)
    print(
        f"\n  targets {'all MET' if met else 'NOT all met'}; load average (1 min) at start "
        f"{load:.2f}, at end {os.getloadavg()[0]:.2f}"
    )
    if not ok:
        print("FAILED: NumPy and engine disagree (see the distribution check)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
