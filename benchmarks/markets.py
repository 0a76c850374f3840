"""Speed of the capacity + market model: engine vs NumPy vs the RNG floor.

Run ``python benchmarks/markets.py`` (``--quick`` for 200k paths). On the default
scenario without its contracts and debt (capacity + markets; ``customers.py`` times
the demand side, ``whole.py`` the finance), 120 months, it prints:

* path-months per second on 1 and 2 threads (best of ``--repeats`` after
  compilation) of the engine's full run (``compute_tables``: capacity + markets +
  tables), of the capacity model alone (``simulate_capacity``) and of the market
  kernel alone (``MarketStats.add`` on precomputed energization times);
* the same model in vectorised NumPy on 1 core (``numpy_markets.py`` on the same
  energization times; and ``numpy_capacity.py`` + ``numpy_markets.py`` + tables);
* the floor: drawing the same random numbers per path-month with the engine's
  own generator and streams, and nothing else (``rng_floor.py``), with the count;
* ratios: engine speed-up over NumPy and engine time / floor time, against the
  targets (>= 5x NumPy, <= 3x the floor), MET or NOT MET;
* a distribution check: engine vs NumPy market statistics of the same
  energization times (independent market draws), means and P50 of every factor
  at every month, event probabilities, site costs and curtailed MW, within 5
  standard errors, for the default Gaussian copula and for a Student-t copula
  with GPU regimes; exit status 1 if it fails.

Every engine import is lazy: ``NUMBA_CACHE_DIR`` is pointed at a temporary
directory first (the first call compiles). Timings are best-of-N wall times;
the report says how many cores other processes used meanwhile.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import tempfile
import time
from importlib.metadata import version
from typing import TYPE_CHECKING

import numpy as np
from capacity import _settings
from markets_check import (
    HORIZON,
    NUMPY_SEED,
    SCENARIO,
    engine_energization,
    engine_markets,
    report_check,
)
from timing import Stopwatch, wait_for_idle

if TYPE_CHECKING:  # engine modules import numba: only after NUMBA_CACHE_DIR is set
    from rng_floor import DrawPlan, MarketDrawPlan

    from engine.market_layout import MarketArrays

TARGET_SPEEDUP = 5.0  # engine vs NumPy
TARGET_FLOOR = 3.0  # engine time / RNG floor time


def _rate(n_paths: int, seconds: float) -> str:
    return f"{n_paths * HORIZON / seconds:9.3e} path-months/s  ({seconds:7.3f} s)"


def report_draws(plan: MarketDrawPlan, arrays: MarketArrays, capacity: DrawPlan) -> None:
    """Print the draws per path-month of the market kernel (the floor's count)."""
    normals, uniforms = plan.per_path_month(HORIZON)
    print(
        f"\n== draws of the market kernel (default scenario: {arrays.region.shape[0]} regions, "
        f"{arrays.gpu.shape[0]} generations, {arrays.copula_factor.shape[0]} copula factors) =="
    )
    print(f"  {'stream':<34}{'normals':>10}{'uniforms':>10}   per path-month")
    for k, name in enumerate(plan.names):
        print(f"  {name:<34}{normals[k]:>10.4f}{uniforms[k]:>10.4f}")
    streams, cap_normals, cap_uniforms = capacity
    print(
        f"  {'total':<34}{normals.sum():>10.4f}{uniforms.sum():>10.4f}   = "
        f"{normals.sum() + uniforms.sum():.4f} draws per path-month; "
        f"{plan.streams.size} streams seeded per path\n"
        f"  (the {plan.path_uniforms.sum()} uniforms drawn once per path count as "
        f"{plan.path_uniforms.sum()}/{HORIZON}; Poisson jumps at their expected rate; "
        f"ziggurat rejections not counted)\n"
        f"  capacity kernel per path: {streams.size} streams, {cap_normals.sum()} normals, "
        f"{cap_uniforms.sum()} uniforms (its replays of the squeeze stream for equipment "
        f"lead times not counted)"
    )


def report_speed(n_paths: int, numpy_paths: int, repeats: int) -> dict[str, float]:
    """Throughput of the engine, NumPy and the RNG floors; returns seconds by label."""
    import numba
    import numpy_capacity
    import numpy_markets
    import rng_floor

    from engine.book import lower_capacity
    from engine.market_stats import MarketStats
    from engine.run import compute_tables
    from engine.scenario import load_book
    from engine.scopes import build_scopes
    from engine.simulate import simulate_capacity

    book = dataclasses.replace(  # markets only: no contracts, no debt
        load_book(SCENARIO), customers=(), contracts=(), facilities=()
    )
    settings = _settings(n_paths)
    seed = np.uint64(settings.run.seed)
    scopes = build_scopes(book, settings.output.max_histogram_bins)
    cap_arrays = lower_capacity(book, settings.capacity, settings.markets)
    markets = MarketStats.create(book, settings, scopes)
    plan = rng_floor.market_draw_plan(markets.arrays, book, HORIZON)
    schedule = plan.schedule(HORIZON)
    cap_streams, cap_normals, cap_uniforms = rng_floor.draw_plan(cap_arrays)
    planned = np.array([p.planned_month for s in book.sites for p in s.phases])
    sums = np.empty(n_paths)

    started = time.perf_counter()
    compute_tables(book, _settings(1000), threads=1)  # compiles (empty cache)
    rng_floor.draw_like_markets(seed, np.uint64(0), plan.streams, *schedule, sums[:1000])
    rng_floor.draw_like_capacity(
        seed, np.uint64(0), cap_streams, cap_normals, cap_uniforms, sums[:1000]
    )
    compiled = time.perf_counter() - started
    times = engine_energization(book, settings, 2)
    report_draws(plan, markets.arrays, (cap_streams, cap_normals, cap_uniforms))
    print(
        f"\n== throughput: {n_paths:,} paths x {HORIZON} months, best of {repeats} "
        f"(after compilation: {compiled:.1f} s) =="
    )
    watch = Stopwatch()
    seconds: dict[str, float] = {"compile": compiled}
    for threads in (1, 2):
        seconds[f"tables_{threads}"] = watch.best(
            lambda t=threads: compute_tables(book, settings, threads=t), repeats
        )
        seconds[f"capacity_{threads}"] = watch.best(
            lambda t=threads: simulate_capacity(book, settings, threads=t), repeats
        )
        seconds[f"markets_{threads}"] = watch.best(
            lambda t=threads: engine_markets(book, settings, times, t), repeats
        )
        numba.set_num_threads(threads)
        seconds[f"floor_m_{threads}"] = watch.best(
            lambda: rng_floor.draw_like_markets(seed, np.uint64(0), plan.streams, *schedule, sums),
            repeats,
        )
        seconds[f"floor_c_{threads}"] = watch.best(
            lambda: rng_floor.draw_like_capacity(
                seed, np.uint64(0), cap_streams, cap_normals, cap_uniforms, sums
            ),
            repeats,
        )
        seconds[f"floor_{threads}"] = seconds[f"floor_m_{threads}"] + seconds[f"floor_c_{threads}"]

    subset = times[:numpy_paths].T  # phase-major view

    def numpy_markets_only() -> None:
        numpy_markets.simulate_markets(
            markets.arrays, markets.layout, subset, len(scopes.kind), NUMPY_SEED
        )

    def numpy_full() -> None:
        rng = np.random.Generator(np.random.SFC64(NUMPY_SEED))
        cap = numpy_capacity.empty_stats(numpy_paths, HORIZON, cap_arrays.n_phases, scopes)
        mkt = numpy_markets.empty_stats(markets.arrays, markets.layout, HORIZON, len(scopes.kind))
        chunk = settings.run.chunk_size
        for start in range(0, numpy_paths, chunk):
            size = min(chunk, numpy_paths - start)
            # one copper squeeze history per path for both models, as in the engine
            energized, squeeze = numpy_capacity.energization_and_squeeze(
                cap_arrays, rng, size, HORIZON
            )
            numpy_capacity.accumulate_counts(energized, scopes, cap)
            numpy_markets.add(mkt, markets.arrays, markets.layout, energized, rng, squeeze=squeeze)
        numpy_capacity.finish(cap, scopes)
        numpy_capacity.capacity_tables(cap, scopes, planned)
        numpy_markets.factor_table(mkt, markets.arrays)

    cpu = time.process_time()
    wall = watch.wall_s
    seconds["numpy_markets"] = watch.best(numpy_markets_only, repeats) * n_paths / numpy_paths
    seconds["numpy_full"] = watch.best(numpy_full, repeats) * n_paths / numpy_paths
    numpy_cores = (time.process_time() - cpu) / max(watch.wall_s - wall, 1e-9)

    rows = []
    for t in (1, 2):
        s = "s" if t > 1 else ""
        rows += [
            (f"engine compute_tables (capacity + markets + tables), {t} thread{s}", f"tables_{t}"),
            (f"engine simulate_capacity alone, {t} thread{s}", f"capacity_{t}"),
            (f"engine market kernel alone (MarketStats.add), {t} thread{s}", f"markets_{t}"),
            (f"RNG floor, market draws, {t} thread{s}", f"floor_m_{t}"),
            (f"RNG floor, capacity + market draws, {t} thread{s}", f"floor_{t}"),
        ]
    rows += [
        ("NumPy markets (same energization), 1 core", "numpy_markets"),
        ("NumPy capacity + markets + tables, 1 core", "numpy_full"),
    ]
    for label, key in rows:
        print(f"  {label:<66}{_rate(n_paths, seconds[key])}")
    print(
        f"  (NumPy timed on {numpy_paths:,} paths and scaled to {n_paths:,}; it used "
        f"{numpy_cores:.2f} CPU-s per wall-s; both stretch equipment lead times in copper\n"
        f"   squeezes)\n"
        f"  other processes used {watch.other_cores:.2f} cores on average while timing"
        + ("  (WARNING: 2-thread figures need both cores)" if watch.other_cores > 0.25 else "")
    )
    return seconds


def report_ratios(seconds: dict[str, float]) -> bool:
    """Print speed-ups over NumPy and times over the floor with the targets; True if all met."""
    print("\n== ratios and targets ==")
    met = True

    def verdict(ok: bool) -> str:
        nonlocal met
        met = met and ok
        return "MET" if ok else "NOT MET"

    for threads in (1, 2):
        full, kernel = seconds[f"tables_{threads}"], seconds[f"markets_{threads}"]
        s = "s" if threads > 1 else " "
        for what, engine, numpy_key, floor_key in (
            ("full run (compute_tables)", full, "numpy_full", f"floor_{threads}"),
            ("market kernel alone     ", kernel, "numpy_markets", f"floor_m_{threads}"),
        ):
            speedup = seconds[numpy_key] / engine
            over_floor = engine / seconds[floor_key]
            if threads == 1:  # information: the targets are for the whole machine
                print(
                    f"  {threads} thread{s} {what}: speed-up over NumPy {speedup:6.2f}x "
                    f"{'':17}; time / RNG floor {over_floor:5.2f}x"
                )
                continue
            print(
                f"  {threads} thread{s} {what}: speed-up over NumPy {speedup:6.2f}x "
                f"(>= {TARGET_SPEEDUP:g}x: {verdict(speedup >= TARGET_SPEEDUP):<7}); "
                f"time / RNG floor {over_floor:5.2f}x "
                f"(<= {TARGET_FLOOR:g}x: {verdict(over_floor <= TARGET_FLOOR)})"
            )
    print(
        "  (targets on 2 threads, all the cores of the machine; NumPy's element-wise "
        "work runs on one core)"
    )
    return met


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=1_000_000, help="paths for throughput")
    parser.add_argument(
        "--numpy-paths", type=int, default=250_000, help="paths of the NumPy timings (scaled)"
    )
    parser.add_argument("--check-paths", type=int, default=50_000, help="paths, check")
    parser.add_argument("--repeats", type=int, default=2, help="timings: best of this many")
    parser.add_argument("--quick", action="store_true", help="200k paths (NumPy 100k)")
    parser.add_argument(
        "--wait-idle", type=float, default=60.0, help="max seconds to wait for idle cores"
    )
    parser.add_argument("--check-only", action="store_true", help="only the distribution check")
    args = parser.parse_args(argv)
    if args.quick:
        args.paths, args.numpy_paths = 200_000, 100_000
    args.numpy_paths = min(args.numpy_paths, args.paths)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its report; 1 if the distribution check fails."""
    args = _parse(argv)
    with tempfile.TemporaryDirectory(prefix="ncrisk-numba-cache-") as cache_dir:
        os.environ["NUMBA_CACHE_DIR"] = cache_dir  # before numba is imported
        print(
            f"capacity + market benchmark: scenario {SCENARIO}, {HORIZON} months; "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
            f"python {platform.python_version()}, numpy {np.__version__}, numba {version('numba')}"
        )
        load = os.getloadavg()[0]
        met = True
        if not args.check_only:
            others = wait_for_idle(args.wait_idle)
            print(
                f"(waited up to {args.wait_idle:g} s for idle cores: "
                f"other processes use {max(others, 0.0):.2f} cores)"
            )
            seconds = report_speed(args.paths, args.numpy_paths, args.repeats)
            met = report_ratios(seconds)
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
