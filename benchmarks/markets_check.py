"""The market benchmark's engine runs and its distribution check against NumPy.

:func:`engine_energization` and :func:`engine_markets` run the engine's capacity
kernel and its market kernel alone (``MarketStats.add``, chunk by chunk, as a run
calls it) on given energization times. :func:`report_check` compares the engine's
market statistics with ``numpy_markets.py`` on the same energization times
(independent market draws): means and P50 of every factor at every month, event
probabilities, site costs and curtailed MW, within ``TOLERANCE_SE`` standard
errors, for the default Gaussian copula and a Student-t copula with GPU regimes.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
from capacity import _settings, _z

if TYPE_CHECKING:  # engine modules import numba: only after NUMBA_CACHE_DIR is set
    from engine.config import Settings
    from engine.market_stats import MarketStats
    from engine.scenario import Book

__all__ = ["engine_energization", "engine_markets", "report_check"]

SCENARIO = "reference"
HORIZON = 120
TOLERANCE_SE = 5.0  # Monte Carlo standard errors allowed in the distribution check
NUMPY_SEED = 12345


def engine_energization(book: Book, settings: Settings, threads: int) -> np.ndarray:
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


def engine_markets(book: Book, settings: Settings, times: np.ndarray, threads: int) -> MarketStats:
    """The market kernel alone: MarketStats.add chunk by chunk, as a run calls it."""
    import numba

    from engine.market_stats import MarketStats
    from engine.scopes import build_scopes

    numba.set_num_threads(threads)
    scopes = build_scopes(book, settings.output.max_histogram_bins)
    stats = MarketStats.create(book, settings, scopes)
    chunk = settings.run.chunk_size
    for start in range(0, times.shape[0], chunk):
        stats.add(times[start : start + chunk], start, threads)
    return stats


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

    from engine.histograms import QUANTILES, quantiles_from_log_histogram
    from engine.market_layout import MARKET_BINS, SITE_HALF_WIDTH
    from engine.scopes import build_scopes

    n = settings.run.n_paths
    times = engine_energization(book, settings, 2)
    engine = engine_markets(book, settings, times, 2)
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
