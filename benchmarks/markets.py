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
from capacity import Stopwatch, _settings, _z, wait_for_idle

if TYPE_CHECKING:  # engine modules import numba: only after NUMBA_CACHE_DIR is set
    from rng_floor import DrawPlan, MarketDrawPlan

    from engine.config import Settings
    from engine.market_layout import MarketArrays
    from engine.market_stats import MarketStats
    from engine.scenario import Book

SCENARIO = "reference"
HORIZON = 120
TARGET_SPEEDUP = 5.0  # engine vs NumPy
TARGET_FLOOR = 3.0  # engine time / RNG floor time
TOLERANCE_SE = 5.0  # Monte Carlo standard errors allowed in the distribution check
NUMPY_SEED = 12345


def _rate(n_paths: int, seconds: float) -> str:
    return f"{n_paths * HORIZON / seconds:9.3e} path-months/s  ({seconds:7.3f} s)"


def _energization(book: Book, settings: Settings, threads: int) -> np.ndarray:
    """``float64[n, P]`` the engine's energization times of the run's paths."""
    import numba

    from engine.book import lower_capacity
    from engine.kernels.capacity import energization_times

    numba.set_num_threads(threads)
    arrays = lower_capacity(book, settings.capacity, settings.markets)
    times = np.empty((settings.run.n_paths, arrays.n_phases))
    fields = [getattr(arrays, f.name) for f in dataclasses.fields(arrays)]
    energization_times(np.uint64(settings.run.seed), np.uint64(0), *fields, times)
    return times


def _engine_markets(book: Book, settings: Settings, times: np.ndarray, threads: int) -> MarketStats:
    """The market kernel alone: MarketStats.add chunk by chunk, as a run calls it."""
    import numba

    from engine.market_stats import MarketStats
    from engine.simulate import build_scopes

    numba.set_num_threads(threads)
    scopes = build_scopes(book, settings.output.max_histogram_bins)
    stats = MarketStats.create(book, settings, scopes)
    chunk = settings.run.chunk_size
    for start in range(0, times.shape[0], chunk):
        stats.add(times[start : start + chunk], start, threads)
    return stats


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
    from engine.simulate import build_scopes, simulate_capacity

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
    times = _energization(book, settings, 2)
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
            lambda t=threads: _engine_markets(book, settings, times, t), repeats
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


def _hist_se(counts: np.ndarray, center: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Standard error of the mean of binned ln values (bin midpoints), over the last axis."""
    n_bins = counts.shape[-1]
    mid = (np.arange(n_bins) + 0.5) / n_bins * 2.0 - 1.0
    value = np.exp(center[..., None] + half[..., None] * mid)
    n = counts.sum(axis=-1)
    mean = (counts * value).sum(axis=-1) / n
    var = (counts * value**2).sum(axis=-1) / n - mean**2
    return np.sqrt(np.maximum(var, 0.0) / n)


def _cdf_at(counts: np.ndarray, center: np.ndarray, half: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Share of paths at or below value x, linear in ln value inside a bin."""
    n_bins = counts.shape[-1]
    pos = (np.log(x) - center + half) / (2.0 * half) * n_bins
    k = np.clip(np.floor(pos), 0, n_bins - 1).astype(np.intp)
    frac = np.clip(pos - k, 0.0, 1.0)
    cum = np.cumsum(counts, axis=-1)
    inside = np.take_along_axis(counts, k[..., None], axis=-1)[..., 0]
    before = np.take_along_axis(cum, k[..., None], axis=-1)[..., 0] - inside
    return (before + frac * inside) / cum[..., -1]


def _check_variant(label: str, settings: Settings, book: Book) -> tuple[bool, float]:
    """Engine vs NumPy market statistics of the same energization times; (ok, largest z)."""
    import numpy_markets

    from engine.market_layout import MARKET_BINS, SITE_HALF_WIDTH
    from engine.market_stats import QUANTILES, quantiles_from_log_histogram
    from engine.simulate import build_scopes

    n = settings.run.n_paths
    times = _energization(book, settings, 2)
    engine = _engine_markets(book, settings, times, 2)
    a, lay = engine.arrays, engine.layout
    scopes = build_scopes(book, settings.output.max_histogram_bins)
    mine = numpy_markets.simulate_markets(a, lay, times.T, len(scopes.kind), NUMPY_SEED)
    ref = numpy_markets.factor_table(mine, a)
    half = MARKET_BINS / (2.0 * a.bin_scale[:, 1:])
    center = a.center[:, 1:]
    mean_e = engine.sums[:, 1:] * a.unit[:, None] / n
    mean_n = ref["mean"]
    se = np.hypot(
        _hist_se(engine.hist[:, 1:], center, half), _hist_se(mine.hist[:, 1:], center, half)
    )
    z_mean = _z(mean_e - mean_n, se + 1e-12 * np.abs(mean_e))
    p50_e = quantiles_from_log_histogram(engine.hist[:, 1:], center, QUANTILES["p50"], half)
    cdf_n = _cdf_at(mine.hist[:, 1:], center, half, p50_e)
    z_p50 = _z(cdf_n - 0.5, np.sqrt(0.5 / n))
    print(f"\n  -- {label}: {n:,} paths --")
    print(
        f"  {'factor':<30}{'mean m12 eng':>13}{'NumPy':>11}{'mean m120 eng':>14}{'NumPy':>11}"
        f"{'P50 m120 eng':>13}{'NumPy':>11}{'max z mean':>11}{'max z P50':>10}"
    )
    p50_n = ref["p50"]
    p50_value = a.value_offset[:, 1:] + a.value_slope[:, None] * p50_e  # in the factor's unit
    for row, name in enumerate(a.names):
        print(
            f"  {name:<30}{mean_e[row, 11]:>13.5g}{mean_n[row, 11]:>11.5g}"
            f"{mean_e[row, -1]:>14.5g}{mean_n[row, -1]:>11.5g}{p50_value[row, -1]:>13.5g}"
            f"{p50_n[row, -1]:>11.5g}{z_mean[row].max():>11.2f}{z_p50[row].max():>10.2f}"
        )
    # event probabilities by month (binomial)
    events = [("copper_squeeze", engine.squeeze_months[1:], mine.squeeze_months[1:])]
    events += [
        (f"curtailment:{r.id}", engine.curtail_months[k, 1:], mine.curtail_months[k, 1:])
        for k, r in enumerate(book.regions)
    ]
    z_events = 0.0
    for name, e, m in events:
        pe, pm = e / n, m / n
        z = _z(pe - pm, np.sqrt((pe * (1 - pe) + pm * (1 - pm)) / n)).max()
        z_events = max(z_events, float(z))
        print(f"  P({name}) mean over months: engine {pe.mean():.5f}, NumPy {pm.mean():.5f}")
    # site costs: mean capex and energy cost per month in service (SE from the histograms)
    z_sites = 0.0
    site_half = np.asarray(SITE_HALF_WIDTH)
    for s in range(len(book.sites)):
        built_e, built_n = engine.site_sums[s, 4], mine.site_sums[s, 4]
        if built_e == 0 or built_n == 0:
            continue
        for kind, col, scale in ((0, 0, 1e3), (1, 3, 1.0)):
            c = np.asarray(lay["site_center"][s, kind])
            me, mn = (
                engine.site_sums[s, col] * scale / built_e,
                mine.site_sums[s, col] * scale / built_n,
            )
            se_e = _hist_se(engine.site_hist[s, kind], c, site_half)
            se_n = _hist_se(mine.site_hist[s, kind], c, site_half)
            z_sites = max(z_sites, float(_z(me - mn, np.hypot(se_e, se_n) + 1e-12 * me)))
    # curtailed MW by scope and month: X in [0, W_max] per path, so Var X <= E[X] W_max
    w_max = np.zeros(len(scopes.kind))
    for p in range(lay["phase_mw"].shape[0]):
        for scope in lay["phase_scopes"][p]:
            w_max[scope] += lay["phase_curtail_w"][p]
    cw_e = engine.curtailed_w[:, 1 : HORIZON + 1] / n
    cw_n = mine.curtailed_w[:, 1 : HORIZON + 1] / n
    bound = np.sqrt((np.maximum(cw_e, 0) + np.maximum(cw_n, 0)) * w_max[:, None] / n)
    z_curtailed = float(_z(cw_e - cw_n, bound).max())
    worst = max(float(z_mean.max()), float(z_p50.max()), z_events, z_sites, z_curtailed)
    print(
        f"  max z over all months: factor means {z_mean.max():.2f}, P50s {z_p50.max():.2f}, "
        f"event probabilities {z_events:.2f}; site capex / energy means {z_sites:.2f}; "
        f"curtailed MW by scope {z_curtailed:.2f} (SE upper bound)"
    )
    return worst <= TOLERANCE_SE, worst


def report_check(n_paths: int) -> bool:
    """Distribution check of the NumPy market model against the engine; True if it passes."""
    from engine.scenario import load_book

    book = dataclasses.replace(  # markets only: no contracts, no debt
        load_book(SCENARIO), customers=(), contracts=(), facilities=()
    )
    print(
        f"\n== distribution check: engine vs NumPy market statistics of the engine's "
        f"energization times (independent market draws); limit {TOLERANCE_SE:g} SE =="
    )
    settings = _settings(n_paths, seed=7)
    markets = settings.markets
    fat = dataclasses.replace(
        settings,
        markets=dataclasses.replace(
            markets,
            copula=dataclasses.replace(markets.copula, family="student_t"),
            gpu=dataclasses.replace(
                markets.gpu, regimes=dataclasses.replace(markets.gpu.regimes, enabled=True)
            ),
        ),
    )
    ok = True
    for label, variant in (
        ("default: Gaussian copula", settings),
        (f"Student-t copula (nu {markets.copula.nu:g}) and GPU regimes", fat),
    ):
        passed, worst = _check_variant(label, variant, book)
        ok = ok and passed
        print(f"  {'PASS' if passed else 'FAIL'}: largest gap {worst:.2f} standard errors")
    return ok


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
