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
from capacity import Stopwatch, _settings, _z, report_memory, wait_for_idle

if TYPE_CHECKING:  # engine modules import numba: only after NUMBA_CACHE_DIR is set
    from engine.demand_stats import DemandStats
    from engine.finance_stats import FinanceStats
    from engine.scenario import Book

SCENARIO = "reference"
HORIZON = 120
TARGET_SECONDS = 20.0  # 1e6 paths x 120 months on 2 cores, after compilation
TARGET_SPEEDUP = 5.0  # engine vs NumPy, 2 threads
TARGET_FLOOR = 3.0  # engine time / RNG floor time, 2 threads
TOLERANCE_SE = 5.0  # Monte Carlo standard errors allowed in the distribution check
NUMPY_SEED = 12345
PD_MONTHS = (24, 60, 120)
MEAN_MONTHS = (12, 24, 60, 120)


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
    from engine.simulate import build_scopes

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


def _engine_stats(book: Book, n_paths: int) -> tuple[DemandStats, FinanceStats]:
    """Run ``compute_tables`` (2 threads, seed 7) and keep its demand and finance statistics."""
    from unittest import mock

    from engine.demand_stats import DemandStats
    from engine.run import compute_tables

    original, made = DemandStats.create, []

    def create(*args: object, **kwargs: object) -> DemandStats:
        made.append(original(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    with mock.patch.object(DemandStats, "create", side_effect=create):
        compute_tables(book, _settings(n_paths, seed=7), threads=2)
    demand = made[-1]
    assert demand.finance is not None
    return demand, demand.finance


def _hist_mean_se(counts: np.ndarray, lo: float, width: float) -> float:
    """Standard error of the mean of values in a linear histogram (bin midpoints)."""
    n = counts.sum()
    if n < 2:
        return float("nan")
    mid = lo + (np.arange(counts.size) + 0.5) * width
    mean = (counts * mid).sum() / n
    return float(np.sqrt(max((counts * (mid - mean) ** 2).sum() / (n - 1), 0.0) / n))


def _figures(book: Book, d: DemandStats, f: FinanceStats) -> dict[str, tuple[float, float]]:
    """The checked figures of one run: (value, standard error) by label."""
    from engine.kernels.contracts import S_REVENUE, S_REVENUE_SQ, S_TERMINATED
    from engine.kernels.finance_fields import (
        F_LOSS_UNIT,
        FR_DEFAULTS,
        FR_LOSS,
        FR_LOSS_SQ,
        MS_ALIVE,
        MS_CASH,
        MS_DEFAULT,
        MS_EBITDA,
        O_CASH_LO,
        O_CASH_SCALE,
        O_EBITDA_LO,
        O_EBITDA_SCALE,
        USD_UNIT,
        V_CASH,
        V_EBITDA,
    )

    n, a = d.n_paths, f.arrays

    def share(count: float) -> tuple[float, float]:
        p = count / n
        return p, float(np.sqrt(p * (1.0 - p) / n))

    out: dict[str, tuple[float, float]] = {}
    for o, op in enumerate(book.operators):
        defaults = np.cumsum(f.month_sums[o, :, MS_DEFAULT])
        for m in PD_MONTHS:
            out[f"{op.id}: PD by month {m}"] = share(defaults[m])
        for name, col, v, lo, scale in (
            ("cash", MS_CASH, V_CASH, O_CASH_LO, O_CASH_SCALE),
            ("EBITDA", MS_EBITDA, V_EBITDA, O_EBITDA_LO, O_EBITDA_SCALE),
        ):
            for m in MEAN_MONTHS:
                alive = f.month_sums[o, m, MS_ALIVE]
                mean = f.month_sums[o, m, col] * USD_UNIT / alive if alive else float("nan")
                se = _hist_mean_se(f.fan_hist[m, o, v], a.ops[o, lo], 1.0 / a.ops[o, scale])
                out[f"{op.id}: mean {name} m{m} (if not in default), $M"] = (mean / 1e6, se / 1e6)
    for k, fac in enumerate(book.facilities):
        s = f.fac_sums[k]
        out[f"{fac.id}: PD"] = share(s[FR_DEFAULTS])
        mean = s[FR_LOSS] * USD_UNIT / n
        unit = a.facilities[k, F_LOSS_UNIT]
        var = max(s[FR_LOSS_SQ] * unit * unit / n - mean * mean, 0.0)
        out[f"{fac.id}: expected loss, $M"] = (mean / 1e6, np.sqrt(var / n) / 1e6)
    scopes = ["total"] + [op.id for op in book.operators]
    for s, scope in enumerate(scopes):
        out[f"{scope}: P(lose > 25% of planned revenue)"] = share(d.lost_counts[s, 0])
    for c, ct in enumerate(book.contracts):
        out[f"{ct.id}: P(terminated)"] = share(d.ct_sums[c, S_TERMINATED])
        mean = d.ct_sums[c, S_REVENUE] / n
        unit = d.arrays.caps[c] * 1e-5 if d.arrays.caps[c] > 0 else 1.0
        dev = mean - d.arrays.planned_value[c]
        var = max(d.ct_sums[c, S_REVENUE_SQ] * unit * unit / n - dev * dev, 0.0)
        out[f"{ct.id}: mean revenue, $M"] = (mean / 1e6, np.sqrt(var / n) / 1e6)
    for j in range(f.joint.shape[0]):
        out[f"joint target {j + 1}: P(all)"] = share(f.joint[j, 0])
    return out


def report_check(n_paths: int) -> bool:
    """Distribution check of the NumPy whole model against the engine; True if it passes."""
    import numpy_whole

    from engine.scenario import load_book

    book = load_book(SCENARIO)
    print(
        f"\n== distribution check: engine vs NumPy, {n_paths:,} paths each (independent "
        f"draws); z = |diff| / sqrt(SE_engine^2 + SE_numpy^2), limit {TOLERANCE_SE:g} =="
    )
    engine = _figures(book, *_engine_stats(book, n_paths))
    mine = numpy_whole.simulate_whole(book, _settings(n_paths), NUMPY_SEED)
    numpy_figures = _figures(book, mine.demand, mine.finance)
    print(f"  {'figure':<62}{'engine':>12}{'NumPy':>12}{'SE eng':>10}{'SE NumPy':>10}{'z':>7}")
    worst, label, over3 = 0.0, "", 0
    for name, (value, se) in engine.items():
        other, other_se = numpy_figures[name]
        if not (np.isfinite(value) and np.isfinite(other)):
            print(f"  {name:<62}{value:>12.5g}{other:>12.5g}  (not compared: no paths)")
            continue
        z = float(_z(np.array(value - other), np.array(np.hypot(se, other_se))))
        over3 += z > 3.0
        if z > worst:
            worst, label = z, name
        flag = "  <--" if z > TOLERANCE_SE else ""
        print(
            f"  {name:<62}{value:>12.5g}{other:>12.5g}{se:>10.3g}{other_se:>10.3g}{z:>7.2f}{flag}"
        )
    ok = worst <= TOLERANCE_SE
    print(
        f"  {'PASS' if ok else 'FAIL'}: largest |z| {worst:.2f} ({label}); {over3} of "
        f"{len(engine)} figures beyond 3 SE (means of cash and EBITDA: SE from the fan "
        f"histograms' bin midpoints)"
    )
    return ok


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
