"""The whole-model benchmark's distribution check: engine vs plain NumPy at small N.

:func:`report_check` runs the engine's default run (``compute_tables``, 2
threads, seed 7) and ``numpy_whole.py`` (independent draws) and compares PD by
month, mean cash and EBITDA, facility PD and expected loss, revenue loss
probabilities, contract outcomes and joint targets as z-scores from the two
Monte Carlo standard errors; it passes if all are within ``TOLERANCE_SE``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from capacity import _settings, _z

if TYPE_CHECKING:  # engine modules import numba: only after NUMBA_CACHE_DIR is set
    from engine.demand_stats import DemandStats
    from engine.finance_stats import FinanceStats
    from engine.scenario import Book

__all__ = ["report_check"]

SCENARIO = "reference"
TOLERANCE_SE = 5.0  # Monte Carlo standard errors allowed in the distribution check
NUMPY_SEED = 12345
PD_MONTHS = (24, 60, 120)
MEAN_MONTHS = (12, 24, 60, 120)


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
