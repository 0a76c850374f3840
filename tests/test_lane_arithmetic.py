"""Lane arithmetic: ``exp_lanes`` against NumPy's exp (within 2 ulp, and at the ends), and
fixed-point records without float to int64 conversions: the same integers as converting.

The market, revenue and finance records round each lane's value as a double and read the
integer from the bits of ``y + 1.5 x 2**52`` (``engine.kernels.lanes.fixed_sum``),
and convert bins through int32, so that their lane loops vectorise on AVX2. The
reference here is the plain conversion, computed by NumPy: ``int64(v x unit +
0.5)`` for the market sums, ``int64(v + 0.5)`` for the revenue (whole dollars),
``floor(x + 0.5)`` for the finance sums, and the clamped truncated bins; values
beyond 2**51 units and nan take the fallback.
A prefetch (``engine.kernels.prefetch``) changes no value, even past an array's end.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.kernels.contract_records import LOST_SHARES, scope_revenue
from engine.kernels.finance_fields import (
    DSCR_CAP,
    FAN_BINS,
    FS_DSCR_LO,
    FS_DSCR_SCALE,
    FS_LTV_SCALE,
    LTV_CAP,
    MS_ALIVE,
    MS_BREACH,
    MS_CASH,
    MS_DEFAULT,
    MS_DSCR,
    MS_DSCR_N,
    MS_EBITDA,
    MS_FIRST_BREACH,
    MS_LTV,
    MS_LTV_N,
    N_FAN,
    N_MONTH_SUMS,
    N_OP_FIELDS,
    N_OP_STATE,
    N_SCALARS,
    O_CASH_LO,
    O_CASH_SCALE,
    O_EBITDA_LO,
    O_EBITDA_SCALE,
    RATIO_UNIT,
    S_CASH,
    S_DEFAULT,
    S_FIRST_BREACH,
    USD_UNIT,
    V_CASH,
    V_DSCR,
    V_EBITDA,
    V_LTV,
)
from engine.kernels.finance_records import record_lanes_month
from engine.kernels.lanes import FIXED_MAGIC, LANES, fixed_sum
from engine.kernels.market_records import record_lanes
from engine.kernels.prefetch import prefetch_row


def held(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``y + FIXED_MAGIC`` and their int64 view, as the kernels hold them."""
    fixed = np.asarray(y, dtype=np.float64).reshape(1, -1) + FIXED_MAGIC
    return fixed, fixed.view(np.int64)


def test_fixed_sum_is_the_exact_integer_sum() -> None:
    rng = np.random.default_rng(7)
    y = np.floor(rng.uniform(-(2.0**50), 2.0**50, LANES))
    _, bits = held(y)
    total, outside = fixed_sum(bits, 0, LANES)
    assert outside == 0
    assert total == int(y.astype(np.int64).sum())
    total, outside = fixed_sum(bits, 0, 17)  # only the first lanes
    assert (total, outside) == (int(y[:17].astype(np.int64).sum()), 0)


def test_fixed_sum_flags_values_it_cannot_hold() -> None:
    negative_nan = np.array([0xFFF8000000000000], dtype=np.uint64).view(np.float64)[0]
    for bad in (2.0**51 + 2, -(2.0**51) - 2, 3.0e18, -3.0e18, np.inf, -np.inf, np.nan,
                negative_nan):  # fmt: skip
        y = np.zeros(LANES)
        y[5] = bad
        _, bits = held(y)
        assert fixed_sum(bits, 0, LANES)[1] >= 1, bad
    for edge in (2.0**51 - 1, -(2.0**51) + 1):  # the largest values held exactly
        y = np.zeros(LANES)
        y[5] = edge
        _, bits = held(y)
        assert fixed_sum(bits, 0, LANES) == (int(edge), 0), edge


def market_reference(
    log_v: np.ndarray, value: np.ndarray, n: int, shift: float, scale: float, unit: float, top: int
) -> tuple[np.ndarray, int]:
    """Bin counts and fixed-point sum of the first n lanes, by plain conversion."""
    x = np.maximum(log_v * scale + shift, 0.0)
    bins = np.minimum(x, float(top)).astype(np.int64)[:n]
    total = int((value[:n] * unit + 0.5).astype(np.int64).sum())
    return np.bincount(bins, minlength=top + 1), total


def test_market_records_equal_plain_conversion() -> None:
    rng = np.random.default_rng(11)
    n_bins, horizon, n_out = 256, 3, 2
    bin_map = np.zeros((horizon + 1, n_out, 3))
    bin_map[:, :, 0], bin_map[:, :, 1], bin_map[:, :, 2] = 128.0, 40.0, 2.0**20
    for n_active, top_value in ((LANES, 1.0e3), (37, 1.0e3), (LANES, 5.0e10)):
        log_v = rng.normal(0.0, 1.5, LANES)
        # negative values round toward zero as int64() does; 5e10 x 2**20 > 2**51: fallback
        value = rng.uniform(-top_value, top_value, LANES)
        hist = np.zeros((1, horizon + 1, n_out, n_bins), dtype=np.int16)
        sums = np.zeros((1, horizon + 1, n_out), dtype=np.int64)
        fixed = np.zeros((1, LANES))
        recs = (np.zeros((1, LANES), dtype=np.int64), fixed, fixed.view(np.int64))
        record_lanes(hist, sums, 0, 1, 2, log_v, value, n_active, bin_map, recs)
        counts, total = market_reference(log_v, value, n_active, 128.0, 40.0, 2.0**20, n_bins - 1)
        assert np.array_equal(hist[0, 2, 1], counts)
        assert sums[0, 2, 1] == total
        assert hist[0, 2, 0].sum() == 0 and sums[0, 2, 0] == 0


def finance_case(rng: np.random.Generator, huge: bool) -> tuple:
    """Inputs of record_lanes_month for one operator, month 3, with every lane kind."""
    t, n_ops, width = 3, 1, 5
    op_state = tuple(np.zeros((n_ops, LANES)) for _ in range(N_OP_STATE))
    op_state[S_CASH][0] = rng.normal(2.0e8, 3.0e8, LANES)
    if huge:
        op_state[S_CASH][0, 9] = 4.0e18  # beyond 2**51 fixed-point units
    op_state[S_DEFAULT][0] = np.where(rng.random(LANES) < 0.2, 2.0, 1.0e9)  # 20% in default
    op_state[S_DEFAULT][0, [9, 10, 11]] = 1.0e9  # alive: the huge cash, nan and inf lanes
    op_state[S_FIRST_BREACH][0] = np.where(rng.random(LANES) < 0.3, float(t), 1.0e9)
    g_ebitda = rng.normal(1.0e7, 2.0e7, (width, n_ops, LANES))
    if huge:  # else every sum is held exactly (no fallback)
        op_state[S_CASH][0, 10] = np.nan  # bin 0 as before, and the fallback's sum
        g_ebitda[t, 0, 11] = -np.inf  # bin 0
    dscr_now = rng.normal(1.2, 3.0, (n_ops, LANES))
    dscr_now[0, rng.random(LANES) < 0.3] = np.nan
    breach_any = (rng.random((n_ops, LANES)) < 0.4).astype(np.float64)
    fails = (rng.random((n_ops, LANES)) < 0.1).astype(np.float64)
    out_total = np.where(
        rng.random((n_ops, LANES)) < 0.7, rng.uniform(1e8, 1e9, (n_ops, LANES)), 0.0
    )
    value_total = rng.uniform(0.0, 1e9, (n_ops, LANES))
    value_total[0, 3] = 0.0  # a balance on no collateral: LTV +inf, capped
    ops = np.zeros((n_ops, N_OP_FIELDS))
    ops[0, O_CASH_LO], ops[0, O_CASH_SCALE] = -5.0e8, FAN_BINS / 2.0e9
    ops[0, O_EBITDA_LO], ops[0, O_EBITDA_SCALE] = -5.0e7, FAN_BINS / 1.0e8
    fsc = np.zeros(N_SCALARS)
    fsc[FS_DSCR_LO], fsc[FS_DSCR_SCALE], fsc[FS_LTV_SCALE] = -2.0, FAN_BINS / 8.0, FAN_BINS / 4.0
    return t, op_state, g_ebitda, dscr_now, breach_any, fails, out_total, value_total, ops, fsc


def finance_reference(case: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Month sums and fan bins of the case as the int64 conversions of the old kernel gave."""
    t, op_state, g_ebitda, dscr_now, breach_any, fails, out_total, value_total, ops, fsc = case
    alive = op_state[S_DEFAULT][0] >= t
    cash, ebitda, dscr = op_state[S_CASH][0], g_ebitda[t, 0], dscr_now[0]
    has_dscr = ~np.isnan(dscr)
    has_ltv = alive & (out_total[0] > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ltv = np.where(has_ltv, out_total[0] / value_total[0], 0.0)
    dscr0 = np.where(has_dscr, dscr, 0.0)

    def whole(x: np.ndarray, keep: np.ndarray) -> np.int64:
        # int64 conversion as the old kernel (nan, +-inf: INT64_MIN on x86), int64 sums
        with np.errstate(invalid="ignore"):
            return np.floor(x[keep] + 0.5).astype(np.int64).sum(dtype=np.int64)

    def fan(x: np.ndarray, lo: float, scale: float, keep: np.ndarray) -> np.ndarray:
        # the old kernel's int64 bin stored as int32 (nan: INT64_MIN, whose low 32 bits are 0)
        with np.errstate(invalid="ignore"):
            y = np.minimum(np.maximum((x - lo) * scale, 0.0), FAN_BINS - 1.0)
            b = y.astype(np.int64).astype(np.int32)
        return np.where(keep, b, -1)

    sums = np.zeros(N_MONTH_SUMS, dtype=np.int64)
    sums[MS_ALIVE] = alive.sum()
    per_usd, per_ratio = 1.0 / USD_UNIT, 1.0 / RATIO_UNIT  # as the kernel: a product
    sums[MS_CASH] = whole(cash * per_usd, alive)
    sums[MS_EBITDA] = whole(ebitda * per_usd, alive)
    sums[MS_DSCR] = whole(np.clip(dscr0, -DSCR_CAP, DSCR_CAP) * per_ratio, has_dscr)
    sums[MS_DSCR_N] = has_dscr.sum()
    sums[MS_LTV] = whole(np.minimum(ltv, LTV_CAP) * per_ratio, has_ltv)
    sums[MS_LTV_N] = has_ltv.sum()
    sums[MS_BREACH] = (alive & (breach_any[0] > 0.0)).sum()
    sums[MS_FIRST_BREACH] = (alive & (op_state[S_FIRST_BREACH][0] == t)).sum()
    sums[MS_DEFAULT] = (alive & (fails[0] > 0.0)).sum()
    bins = np.zeros((N_FAN, LANES), dtype=np.int32)
    bins[V_CASH] = fan(cash, ops[0, O_CASH_LO], ops[0, O_CASH_SCALE], alive)
    bins[V_EBITDA] = fan(ebitda, ops[0, O_EBITDA_LO], ops[0, O_EBITDA_SCALE], alive)
    bins[V_DSCR] = fan(dscr0, fsc[FS_DSCR_LO], fsc[FS_DSCR_SCALE], has_dscr)
    bins[V_LTV] = fan(ltv, 0.0, fsc[FS_LTV_SCALE], has_ltv)
    return sums, bins


def test_finance_month_records_equal_plain_conversion() -> None:
    rng = np.random.default_rng(3)
    for huge in (False, True):  # True: cash beyond 2**51 units, nan, -inf (the fallback)
        case = finance_case(rng, huge)
        t, op_state, g_ebitda, dscr_now, breach_any, fails, out_total, value_total, ops, fsc = case
        month_sums = np.zeros((1, 1, g_ebitda.shape[0], N_MONTH_SUMS), dtype=np.int64)
        fan_bins = np.full((1, N_FAN, g_ebitda.shape[0], LANES), -7, dtype=np.int32)
        fixed = np.zeros((4, LANES))
        record_lanes_month(
            0, 0, t, op_state, g_ebitda, dscr_now, breach_any, fails, out_total, value_total,
            ops, fsc, month_sums, fan_bins, fixed, fixed.view(np.int64),
        )  # fmt: skip
        sums, bins = finance_reference(case)
        assert np.array_equal(month_sums[0, 0, t], sums), (huge, month_sums[0, 0, t], sums)
        assert np.array_equal(fan_bins[0, :, t], bins), huge


@njit(cache=False)
def _prefetch_everywhere(a: np.ndarray) -> None:
    """Prefetch every line of ``a`` and past its end (the last month's next row)."""
    for i in range(a.shape[0] + 2):
        for j in range(0, a.shape[1] + 64, 32):
            prefetch_row(a, (i, j))


def test_prefetch_changes_nothing() -> None:
    a = np.arange(3 * 256, dtype=np.int16).reshape(3, 256)
    before = a.copy()
    _prefetch_everywhere(a)
    assert np.array_equal(a, before)


def test_exp_lanes_agrees_with_numpy_exp() -> None:
    """The kernel's vectorised exp against NumPy's exp (each within about 1 ulp of the exact
    value, so at most 2 ulp apart), over prices' ln range and beyond, and at the ends."""
    from engine.kernels.lanes import LANES, exp_lanes

    x = np.concatenate(
        [
            np.random.default_rng(3).uniform(-30.0, 30.0, 64 * LANES),
            np.linspace(-708.0, 709.0, 8 * LANES),
            np.array([0.0, 1e-300, -1e-300, 0.5 * math.log(2.0), -0.5 * math.log(2.0)] * 2),
        ]
    )
    x = x[: x.size // LANES * LANES]
    out = np.empty(LANES)
    bits = np.empty(LANES, dtype=np.int64)
    got = np.empty_like(x)
    for i in range(0, x.size, LANES):
        exp_lanes(x[i : i + LANES], out, bits, bits.view(np.float64))
        got[i : i + LANES] = out
    want = np.exp(x)
    assert np.all(np.abs(got - want) <= 2.0 * np.spacing(want))  # each within ~1 ulp
    ends = np.array([-np.inf, -800.0, np.inf, 710.0, np.nan] + [0.0] * (LANES - 5))
    exp_lanes(ends, out, bits, bits.view(np.float64))
    assert out[0] == 0.0 and out[1] == 0.0 and out[2] == np.inf and out[3] == np.inf
    assert np.isnan(out[4]) and out[5] == 1.0


def test_revenue_records_equal_plain_conversion() -> None:
    """``scope_revenue``: whole-dollar sums and bins as ``int64(v + 0.5)`` and clamped
    truncation give them, also for negative months and beyond $2**51 (the fallback)."""
    rng = np.random.default_rng(5)
    n_scopes, width, n_bins = 2, 4, 64
    for n_active, top_value in ((LANES, 1.0e9), (29, 1.0e9), (LANES, 4.0e15)):
        revenue = rng.uniform(-0.05 * top_value, top_value, (n_scopes, 2, width, LANES))
        caps = np.array([top_value / 2.0, 0.0, top_value, top_value])  # caps, then planned
        rev_sums = np.zeros((1, n_scopes, 2, width), dtype=np.int64)
        rev_bins = np.full((n_scopes, 2, width, LANES), -7, dtype=np.int32)
        lost = np.zeros((1, n_scopes, len(LOST_SHARES)), dtype=np.int64)
        scope_revenue(
            0, n_active, revenue, 0, caps, rev_sums, rev_bins, n_bins, lost, np.zeros(LANES),
            np.zeros((4, LANES)),
        )  # fmt: skip
        active = revenue[..., :n_active]
        whole = (active + 0.5).astype(np.int64).sum(axis=-1)
        assert np.array_equal(rev_sums[0, :, :, 1:], whole[:, :, 1:]), top_value
        scale = np.array([n_bins / caps[0], 0.0])[:, None, None, None]
        bins = np.clip(np.trunc(active * scale), 0, n_bins - 1).astype(np.int32)
        assert np.array_equal(rev_bins[:, :, 1:, :n_active], bins[:, :, 1:])
        realised = active[:, 0, 1:].sum(axis=1)
        for j, share in enumerate(LOST_SHARES):
            expected = (realised < (1.0 - share) * caps[2:, None]).sum(axis=1)
            assert np.array_equal(lost[0, :, j], expected)
