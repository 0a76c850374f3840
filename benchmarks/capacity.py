"""Speed and memory of the capacity-delivery model: engine vs NumPy vs the RNG floor.

Run ``python benchmarks/capacity.py`` (``--quick`` for a fast pass). It prints:

* numba compile time (fresh process, empty cache) and cached start-up time;
* path-months per second of ``simulate_capacity`` (kernel + aggregation) and of
  the capacity model with its two tables on 1 and 2 threads (best of ``--repeats``
  after compilation; the market model is measured by ``markets.py``);
* the same for the vectorised NumPy implementation (``numpy_capacity.py``);
* the cost floor: drawing the kernel's random numbers with the engine's generator;
* peak resident memory of full ``compute_tables`` runs (every component of the
  default book, kernels loaded from the cache) at two path counts (subprocesses,
  spawned before this process imports the engine, see ``fresh_process.py``);
* a check that NumPy and the engine agree: in distribution (independent draws,
  within 5 standard errors) and exactly (NumPy's statistics of the engine's own
  energization times); exit status 1 if not.

Helpers: ``numpy_capacity.py`` (the NumPy model), ``rng_floor.py`` (the floor
kernel), ``fresh_process.py`` (probes run in new processes). Every engine import
is lazy: ``NUMBA_CACHE_DIR`` is pointed at a temporary directory first, so the
benchmark neither reads nor writes ``engine/__pycache__``. Speed-ups are NumPy
time / engine time; timings are best of N wall times, and the report says how
many cores other processes used meanwhile (2-thread figures need both cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import tempfile
from importlib.metadata import version
from typing import TYPE_CHECKING

import numpy as np
from fresh_process import spawn
from timing import Stopwatch, wait_for_idle

if TYPE_CHECKING:  # engine modules import numba: only after NUMBA_CACHE_DIR is set
    from numpy_capacity import NumpyCapacityStats

    from engine.book import CapacityArrays
    from engine.config import Settings
    from engine.scenario import Book
    from engine.scopes import Scopes
    from engine.simulate import CapacityStats

SCENARIO = "reference"
HORIZON = 120
TARGET_SECONDS = 2.0  # 1e6 paths x 120 months on 2 cores
TARGET_SPEEDUP = 5.0  # engine vs NumPy
TARGET_PEAK_GB = 3.0  # at 1e7 paths
TOLERANCE_SE = 5.0  # Monte Carlo standard errors allowed in the distribution check


def _settings(n_paths: int, seed: int = 20261122) -> Settings:
    from engine.config import RunConfig, Settings

    return Settings(
        scenario=SCENARIO,
        run=RunConfig(n_paths=n_paths, horizon_months=HORIZON, seed=seed, progress=False),
    )


def _rate(n_paths: int, seconds: float) -> str:
    return f"{n_paths * HORIZON / seconds:9.3e} path-months/s  ({seconds:6.3f} s)"


def report_startup(cache_dir: str) -> None:
    """Compile time in a fresh process with an empty cache, then start-up from the cache."""
    print("\n== numba compilation: fresh processes, compute_tables on 10,000 paths, 2 threads ==")
    for label in ("empty cache (compiles)", "warm cache (loads)"):
        f = spawn("startup", 10_000, 2, cache_dir)
        print(
            f"  {label:<23} first call - second call = "
            f"{f['first_call_s'] - f['second_call_s']:5.2f} s  (first {f['first_call_s']:5.2f} s,"
            f" second {f['second_call_s']:5.3f} s; imports {f['import_s']:4.2f} s;"
            f" whole process {f['process_s']:5.2f} s)"
        )


def report_memory(path_counts: list[int], cache_dir: str) -> float:
    """Peak RSS of full compute_tables runs (default chunk size); returns the last, in GB."""
    print("\n== peak memory: compute_tables, 2 threads, default chunk_size, fresh processes ==")
    peak_gb = 0.0
    for n_paths in path_counts:
        f = spawn("memory", n_paths, 2, cache_dir)
        if n_paths == path_counts[0]:
            print(f"  (chunk_size {f['chunk_size']:,} paths)")
        peak_gb = f["process_peak_mb"] / 1024.0
        run = "run peak" if f["reset"] else "process peak (no reset)"
        print(
            f"  {n_paths:>12,} paths: max RSS (getrusage) {f['process_peak_mb']:6.1f} MB; "
            f"RSS before the run {f['rss_before_mb']:6.1f} MB, {run} {f['run_peak_mb']:6.1f} MB "
            f"(+{f['run_peak_mb'] - f['rss_before_mb']:5.1f}); run {f['run_s']:5.1f} s"
        )
    return peak_gb


def capacity_tables(book: Book, settings: Settings, threads: int) -> None:
    """The capacity model and its two tables (compute_tables without the markets)."""
    from engine.simulate import simulate_capacity
    from engine.tables import capacity_by_month, site_energization

    stats, scopes = simulate_capacity(book, settings, threads=threads)
    capacity_by_month(stats, scopes, settings.capacity.gpu_availability)
    site_energization(stats, book)


def report_speed(n_paths: int, repeats: int) -> dict[str, float]:
    """Throughput of the engine, NumPy and the RNG floor; returns seconds by label."""
    import numba
    import numpy_capacity
    import rng_floor

    from engine.book import lower_capacity
    from engine.rng import fill_normals
    from engine.run import compute_tables
    from engine.scenario import load_book
    from engine.scopes import build_scopes
    from engine.simulate import simulate_capacity

    book = load_book(SCENARIO)
    settings = _settings(n_paths)
    arrays = lower_capacity(book, settings.capacity, settings.markets)
    scopes = build_scopes(book, settings.output.max_histogram_bins)
    streams, normals, uniforms = rng_floor.draw_plan(arrays)
    sums = np.empty(n_paths)
    seed = np.uint64(settings.run.seed)
    planned = np.array([p.planned_month for s in book.sites for p in s.phases])
    rng_floor.draw_like_capacity(seed, np.uint64(0), streams, normals, uniforms, sums[:1000])
    fill_normals(np.empty((10, 5)), seed, np.uint64(0), streams[0])
    compute_tables(book, _settings(1000), threads=1)  # compile (or load) once
    print(
        f"\n== throughput: {n_paths:,} paths x {HORIZON} months, best of {repeats} "
        f"(after compilation) ==\n  per path: {streams.size} streams, {normals.sum()} normals, "
        f"{uniforms.sum()} uniforms, {arrays.n_phases} phases, {len(scopes.kind)} scopes"
    )
    watch = Stopwatch()
    seconds: dict[str, float] = {}
    for threads in (1, 2):
        seconds[f"engine_{threads}"] = watch.best(
            lambda t=threads: simulate_capacity(book, settings, threads=t), repeats
        )
        seconds[f"tables_{threads}"] = watch.best(
            lambda t=threads: capacity_tables(book, settings, t), repeats
        )
        numba.set_num_threads(threads)
        seconds[f"floor_{threads}"] = watch.best(
            lambda: rng_floor.draw_like_capacity(
                seed, np.uint64(0), streams, normals, uniforms, sums
            ),
            repeats,
        )

    def numpy_run(with_tables: bool) -> None:
        stats = numpy_capacity.simulate_capacity(arrays, scopes, n_paths, HORIZON, 1)
        if with_tables:
            numpy_capacity.capacity_tables(stats, scopes, planned)

    seconds["numpy_sim"] = watch.best(lambda: numpy_run(False), repeats)
    seconds["numpy_tables"] = watch.best(lambda: numpy_run(True), repeats)
    block = np.empty((min(n_paths, 200_000), 50))
    rng_fill = watch.best(lambda: fill_normals(block, seed, np.uint64(0), streams[0]), repeats)
    seconds["lower"] = watch.best(
        lambda: lower_capacity(book, settings.capacity, settings.markets), repeats
    )
    rows = [
        (f"{what}, {t} thread{'s' if t > 1 else ''}", f"{key}_{t}")
        for t in (1, 2)
        for what, key in (
            ("engine simulate_capacity", "engine"),
            ("engine capacity + its tables", "tables"),
            ("RNG floor (same draws)", "floor"),
        )
    ]
    rows += [
        ("NumPy simulate, 1 core", "numpy_sim"),
        ("NumPy + tables, 1 core", "numpy_tables"),
    ]
    for label, key in rows:
        print(f"  {label:<37}{_rate(n_paths, seconds[key])}")
    print(
        f"  of which a fixed cost per run: lower_capacity (PERT tables) {seconds['lower']:.3f} s\n"
        f"  engine.rng.fill_normals, one stream, 1 thread: "
        f"{rng_fill / block.size * 1e9:.2f} ns per normal\n"
        f"  other processes used {watch.other_cores:.2f} cores on average while timing"
    )
    print("\n== ratios ==")
    for threads in (1, 2):
        sim, floor = seconds[f"engine_{threads}"], seconds[f"floor_{threads}"]
        print(
            f"  {threads} thread{'s' if threads > 1 else ' '}: engine speed-up over NumPy "
            f"{seconds['numpy_sim'] / sim:5.2f}x (with tables "
            f"{seconds['numpy_tables'] / seconds[f'tables_{threads}']:5.2f}x); "
            f"engine time / RNG floor time {sim / floor:5.2f}"
        )
    return seconds


def _z(diff: np.ndarray, se: np.ndarray) -> np.ndarray:
    """|diff| / se, with 0/0 = 0 and x/0 = inf."""
    diff, se = np.abs(diff), np.asarray(se, dtype=float)
    return np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.where(diff > 0, np.inf, 0.0))


def _mean_mw(
    stats: CapacityStats | NumpyCapacityStats, scopes: Scopes, scope: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean MW online by month of one scope and its standard error (MW)."""
    n, first = stats.n_paths, scopes.bin_offset[scope, 0]
    counts = stats.value_counts[first : first + scopes.bin_count[scope, 0], 1 : HORIZON + 1]
    values = np.arange(counts.shape[0]) * scopes.bin_width[scope, 0] / 1000.0
    mean = stats.value_sums[scope, 0, 1 : HORIZON + 1] / 1000.0 / n
    spread = (counts * values[:, None] ** 2).sum(axis=0) / n - mean**2
    return mean, np.sqrt(np.maximum(spread, 0.0) / n)


def check_aggregation(arrays: CapacityArrays, scopes: Scopes, n_paths: int) -> bool:
    """True if NumPy's statistics of the engine's own energization times equal the engine's."""
    import numpy_capacity

    from engine.kernels.capacity import energization_times
    from engine.simulate import CapacityStats

    times = np.empty((n_paths, arrays.n_phases))
    fields = [getattr(arrays, f.name) for f in dataclasses.fields(arrays)]
    energization_times(np.uint64(7), np.uint64(0), *fields, times)
    mine = numpy_capacity.empty_stats(n_paths, HORIZON, arrays.n_phases, scopes)
    theirs = CapacityStats.empty(n_paths, HORIZON, scopes)
    theirs.add(times, scopes, 2)
    theirs.finish(scopes)
    numpy_capacity.accumulate_counts(np.ascontiguousarray(times.T), scopes, mine)
    numpy_capacity.finish(mine, scopes)
    months = slice(0, HORIZON + 1)  # month T + 1 is bookkeeping, never reported
    return (
        np.array_equal(mine.phase_months, theirs.phase_months)
        and np.array_equal(mine.withdrawn, theirs.withdrawn)
        and np.array_equal(mine.value_counts[:, months], theirs.value_counts[:, months])
        and np.array_equal(mine.value_sums[..., months], theirs.value_sums[..., months])
    )


def report_check(n_paths: int) -> bool:
    """Compare NumPy and engine distributions (independent draws); True if they agree."""
    import numpy_capacity

    from engine.book import lower_capacity
    from engine.scenario import load_book
    from engine.simulate import simulate_capacity

    book = load_book(SCENARIO)
    settings = _settings(n_paths)
    engine_stats, scopes = simulate_capacity(book, settings, threads=2)
    arrays = lower_capacity(book, settings.capacity, settings.markets)
    numpy_stats = numpy_capacity.simulate_capacity(arrays, scopes, n_paths, HORIZON, 12345)
    planned = np.array([p.planned_month for s in book.sites for p in s.phases])
    labels = [f"{s.id}#{k}" for s in book.sites for k in range(1, len(s.phases) + 1)]
    eng = numpy_capacity.capacity_tables(engine_stats, scopes, planned)
    ref = numpy_capacity.capacity_tables(numpy_stats, scopes, planned)
    n = n_paths
    p_e, p_n = eng["prob_on_time"], ref["prob_on_time"]
    # (NaN for a plan beyond the horizon: z = 0 there)
    z_on_time = _z(p_e - p_n, np.sqrt((p_e * (1 - p_e) + p_n * (1 - p_n)) / n))
    cdf_e = np.cumsum(engine_stats.phase_months, axis=1)[:, 1 : HORIZON + 1] / n
    cdf_n = np.cumsum(numpy_stats.phase_months, axis=1)[:, 1 : HORIZON + 1] / n
    z_cdf = _z(cdf_e - cdf_n, np.sqrt((cdf_e * (1 - cdf_e) + cdf_n * (1 - cdf_n)) / n))
    p50_gap = np.abs(eng["p50_month"] - ref["p50_month"])
    z_mean = 0.0
    for scope in (s for s, kind in enumerate(scopes.kind) if kind != "site"):
        (m_e, se_e), (m_n, se_n) = (
            _mean_mw(engine_stats, scopes, scope),
            _mean_mw(numpy_stats, scopes, scope),
        )
        z_mean = max(z_mean, float(_z(m_e - m_n, np.hypot(se_e, se_n)).max()))
    print(f"\n== distribution check: engine vs NumPy, {n:,} paths each (independent draws) ==")
    print(
        f"  {'site#phase':<16}{'P(on time) engine':>18}{'NumPy':>8}{'z':>6}"
        f"{'P50 month':>11}{'NumPy':>6}"
    )
    for j, label in enumerate(labels):
        print(
            f"  {label:<16}{p_e[j]:>18.4f}{p_n[j]:>8.4f}{z_on_time[j]:>6.2f}"
            f"{eng['p50_month'][j]:>11}{ref['p50_month'][j]:>6}"
        )
    gap_on_time = np.nanmax(np.abs(p_e - p_n), initial=0.0)
    print(
        f"  max |diff| P(on time) {gap_on_time:.4f} (max z {z_on_time.max():.2f}); "
        f"max |diff| P50 month {p50_gap.max()} months\n"
        f"  max z over months: energization CDF of every phase {z_cdf.max():.2f}, "
        f"mean MW online of total and operators {z_mean:.2f}"
    )
    same = check_aggregation(arrays, scopes, 20_000)
    print(f"  NumPy statistics of the engine's own energization times (20,000 paths) equal: {same}")
    worst = max(float(z_on_time.max()), float(z_cdf.max()), z_mean)
    ok = worst <= TOLERANCE_SE and p50_gap.max() <= 1 and same
    print(
        f"  {'PASS' if ok else 'FAIL'}: largest gap {worst:.2f} standard errors "
        f"(limit {TOLERANCE_SE:g}), P50 months within 1 month: {p50_gap.max() <= 1}"
    )
    return ok


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=1_000_000, help="paths for throughput")
    parser.add_argument("--big-paths", type=int, default=10_000_000, help="paths, memory run")
    parser.add_argument("--check-paths", type=int, default=200_000, help="paths, check")
    parser.add_argument("--repeats", type=int, default=3, help="timings: best of this many")
    parser.add_argument("--quick", action="store_true", help="250k / 1M / 100k paths, best of 2")
    parser.add_argument(
        "--wait-idle", type=float, default=60.0, help="max seconds to wait for idle cores"
    )
    parser.add_argument(
        "--skip-startup",
        action="store_true",
        help="no compile-time probe (the first memory probe then compiles)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.paths, args.big_paths = 250_000, 1_000_000
        args.check_paths, args.repeats = 100_000, 2
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its report; 1 if the distribution check fails."""
    args = _parse(argv)
    with tempfile.TemporaryDirectory(prefix="ncrisk-numba-cache-") as cache_dir:
        os.environ["NUMBA_CACHE_DIR"] = cache_dir  # before numba is imported
        print(
            f"capacity benchmark: scenario {SCENARIO}, {HORIZON} months; "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
            f"python {platform.python_version()}, numpy {np.__version__}, numba {version('numba')}"
        )
        load = os.getloadavg()[0]
        if args.skip_startup:
            print("\n(compile-time probe skipped; the first in-process call compiles)")
        else:
            report_startup(cache_dir)
        # memory first: a child's ru_maxrss includes this process's size at spawn
        peak_gb = report_memory([args.paths, args.big_paths], cache_dir)
        others = wait_for_idle(args.wait_idle)
        print(
            f"\n(waited up to {args.wait_idle:g} s for idle cores: "
            f"other processes use {max(others, 0.0):.2f} cores)"
        )
        seconds = report_speed(args.paths, args.repeats)
        ok = report_check(args.check_paths)
    per_million = seconds["engine_2"] * 1e6 / args.paths
    tables_per_million = seconds["tables_2"] * 1e6 / args.paths
    speedup = seconds["numpy_sim"] / seconds["engine_2"]
    print("\n== targets ==")
    print(
        f"  1e6 paths x 120 months <= {TARGET_SECONDS:g} s on 2 cores: simulate "
        f"{per_million:.2f} s, with its tables {tables_per_million:.2f} s "
        f"-> {'MET' if tables_per_million <= TARGET_SECONDS else 'NOT MET'}"
    )
    print(
        f"  >= {TARGET_SPEEDUP:g}x NumPy: {speedup:.2f}x on 2 threads "
        f"({seconds['numpy_sim'] / seconds['engine_1']:.2f}x on 1) "
        f"-> {'MET' if speedup >= TARGET_SPEEDUP else 'NOT MET'}"
    )
    print(
        f"  peak RSS at {args.big_paths:,} paths < {TARGET_PEAK_GB:g} GB: {peak_gb:.2f} GB "
        f"-> {'MET' if peak_gb < TARGET_PEAK_GB else 'NOT MET'}"
    )
    print(f"  load average (1 min) at start {load:.2f}, at end {os.getloadavg()[0]:.2f}")
    if not ok:
        print("FAILED: NumPy and engine disagree (see the distribution check)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
