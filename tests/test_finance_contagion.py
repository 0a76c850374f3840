"""Contagion through one GPU generation's fire-sale impact (engine/kernels/finance.py):
an operator's defaults spread to another sharing the generation, monotonically in the
impact lambda, and not at all with ``finance.contagion = false``; and the finance
statistics are bit-identical on any threads and chunks, and with the demand kernel run apart.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import polars as pl
import pytest
from conftest import Z_TOL
from finance_books import TARGETS, contagion_book, fin_settings, run_finance, separate_kernels
from polars.testing import assert_frame_equal

import engine.blocks
import engine.run
from engine.finance_config import JointTarget
from engine.kernels.finance_fields import MS_DEFAULT

# -- contagion over lambda and the contagion switch -------------------------------------------


def test_fire_sales_spread_defaults_to_an_operator_sharing_the_generation() -> None:
    """Common random numbers: B's defaults (a) at lambda 0 are exactly those of the book
    where A has no debt (nothing is dumped), (b) by every month never fewer as lambda
    grows (a larger impact only lowers B's collateral value, pathwise), (c) strictly
    more at lambda 3 than at 0, by more than Z_TOL binomial SEs of the paired difference
    (the difference counts the paths where only the fire sale made B default); and
    ``finance.contagion = false`` at lambda 3 gives B exactly its lambda-0 statistics."""
    n, horizon, relet = 10_000, 48, 0.3
    s = fin_settings(n, horizon, seed=5, relet=relet)
    b = 1  # operator B
    no_debt = run_finance(contagion_book(0.0, a_has_debt=False), s).finance
    runs = {lam: run_finance(contagion_book(lam), s) for lam in (0.0, 0.5, 1.5, 3.0)}
    base = runs[0.0].finance
    assert base.month_sums[0, :, MS_DEFAULT].sum() > n // 4, "A must default often"
    np.testing.assert_array_equal(base.month_sums[b], no_debt.month_sums[b])
    np.testing.assert_array_equal(base.op_sums[b], no_debt.op_sums[b])
    np.testing.assert_array_equal(base.fac_sums[1], no_debt.fac_sums[0])
    curves = [np.cumsum(r.finance.month_sums[b, :, MS_DEFAULT]) for r in runs.values()]
    for lower, higher in pairwise(curves):
        assert np.all(higher >= lower), (lower[-1], higher[-1])
    for run, curve in zip(runs.values(), curves, strict=True):
        pd = (
            run.tables["risk_summary"]
            .filter((pl.col("operator") == "op_b") & (pl.col("metric") == "pd_horizon"))["value"]
            .item()
        )
        assert pd == curve[-1] / n
    switched_off = fin_settings(n, horizon, seed=5, relet=relet, contagion=False)
    off = run_finance(contagion_book(3.0), switched_off).finance
    np.testing.assert_array_equal(off.month_sums[b], base.month_sums[b])
    np.testing.assert_array_equal(off.fac_sums, base.fac_sums)
    diff = int(curves[-1][-1] - curves[0][-1])
    p = diff / n
    se = math.sqrt(n * p * (1.0 - p))
    assert diff > 0 and diff > Z_TOL * se, (diff, se)


# -- reproducibility --------------------------------------------------------------------------

FINANCE_TABLES = ("finance_by_month", "risk_summary", "joint_confidence")
STAT_ARRAYS = (
    "month_sums",
    "fan_hist",
    "op_sums",
    "min_dscr_hist",
    "loss_hist",
    "fac_sums",
    "joint",
)


def test_finance_is_bit_identical_on_any_threads_chunks_and_kernels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Contagion (fire sales of one operator marking down the other's collateral) on 1
    and 2 threads, in one chunk, in uneven chunks, and with the demand kernel run apart
    (also in many small blocks queued on the threads)."""
    n = 12_007  # prime: uneven blocks
    both = JointTarget("both", no_operator_default=True, min_dscr=1.0)
    s = fin_settings(n, 48, seed=3, relet=0.3, targets=[TARGETS[0], both])
    book = contagion_book(1.5)
    one = run_finance(book, s, threads=1)
    two = run_finance(book, s, threads=2)
    uneven = run_finance(book, s, threads=2, chunk_sizes=[1, 7, 4_999, 3, n - 5_010])
    monkeypatch.setattr(engine.run, "_markets_and_demand", separate_kernels)
    apart = run_finance(book, s, threads=2)
    monkeypatch.setattr(engine.blocks, "BLOCK_PATHS", 256)  # 47 blocks queued on 2 threads
    queued = run_finance(book, s, threads=2)
    assert one.finance.month_sums[:, :, MS_DEFAULT].sum() > 0
    for other in (two, uneven, apart, queued):
        for name in FINANCE_TABLES:
            assert_frame_equal(one.tables[name], other.tables[name], check_exact=True)
        for name in STAT_ARRAYS:
            np.testing.assert_array_equal(getattr(one.finance, name), getattr(other.finance, name))
