"""Paths as SIMD lanes: a block of ``LANES`` paths advanced month by month together.

The market kernel keeps each factor of ``LANES`` consecutive paths side by side
(``float64[..., LANES]``) so that the arithmetic of a month (copula mixing, OU
steps, log prices, exponentials, histogram bins) is one loop over lanes that
LLVM turns into vector instructions. Random draws stay per path and per stream
(each lane reads its own generator states), so a path's numbers do not depend
on which lane or block it runs in.

``exp_lanes`` is a branch-free exponential for that purpose, because numba's
``math.exp`` calls the C library one value at a time. Cody & Waite (1980)
range reduction, x = k ln 2 + r with |r| <= ln 2 / 2 (ln 2 split in a high and
a low part as in fdlibm), then exp(r) by its Taylor series to degree 13
(truncation below 1e-17 relative) and 2**k built in the exponent bits. The
result is within 1 unit in the last place of libm's exp on the tested ranges
for -708 <= x <= 709 (tests/test_lane_arithmetic.py); below -708 it returns 0 (libm:
a subnormal, or 0 below -745), between 709 and 709.78 exp(709), above it inf,
and nan stays nan. No market value comes near these ends.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["BLOCK_PATHS", "FIXED_MAGIC", "LANES", "exp_lanes", "fixed_sum", "fixed_total"]

#: Paths advanced together: a multiple of the vector width, and long enough that
#: LLVM vectorises the lane loops (at 8 they were left scalar).
LANES = 64
#: Most paths in one parallel block of a kernel call: block histograms count in int16
#: (exact up to 32,767) so that they stay in L2; a multiple of LANES.
BLOCK_PATHS = 32_704

#: 1.5 x 2**52: for an integer-valued double |y| < 2**51, y + FIXED_MAGIC is exact and
#: its bits are FIXED_MAGIC_BITS + y (fixed_sum), a float to int64 conversion that
#: vectorises without AVX-512 (AVX2 has no packed one).
FIXED_MAGIC = 6755399441055744.0
FIXED_MAGIC_BITS = np.int64(np.float64(FIXED_MAGIC).view(np.int64))
FIXED_LIMIT = np.int64(2**51)

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # fdlibm: high bits of ln 2, exact k x LN2_HI
_LN2_LO = 1.90821492927058770002e-10
_X_MIN, _X_MAX = -708.0, 709.0
_OVERFLOW = 709.782712893384  # ln(largest float64)
_ROUND = 6755399441055744.0  # 1.5 x 2**52: adding it rounds to an integer
# 1/n! for n = 13 .. 2 (Horner from the highest degree)
_C13 = 1.0 / 6227020800.0
_C12 = 1.0 / 479001600.0
_C11 = 1.0 / 39916800.0
_C10 = 1.0 / 3628800.0
_C9 = 1.0 / 362880.0
_C8 = 1.0 / 40320.0
_C7 = 1.0 / 5040.0
_C6 = 1.0 / 720.0
_C5 = 1.0 / 120.0
_C4 = 1.0 / 24.0
_C3 = 1.0 / 6.0
_C2 = 0.5


@njit(cache=True, fastmath={"contract"})
def exp_lanes(x: np.ndarray, out: np.ndarray, bits: np.ndarray, pow2: np.ndarray) -> None:
    """Write ``out[l] = exp(x[l])`` for every lane, vectorisable.

    Parameters
    ----------
    x : numpy.ndarray
        ``float64[LANES]`` arguments (ln of a price, dimensionless).
    out : numpy.ndarray
        ``float64[LANES]`` results (written).
    bits, pow2 : numpy.ndarray
        Scratch: ``int64[LANES]`` and its ``float64`` view (``bits.view(np.float64)``),
        through which 2**k is assembled.
    """
    for lane in range(LANES):
        v = min(max(x[lane], _X_MIN), _X_MAX)
        k = (v * _LOG2E + _ROUND) - _ROUND  # nearest integer, |k| <= 1023
        r = (v - k * _LN2_HI) - k * _LN2_LO
        p = _C13 * r + _C12
        p = p * r + _C11
        p = p * r + _C10
        p = p * r + _C9
        p = p * r + _C8
        p = p * r + _C7
        p = p * r + _C6
        p = p * r + _C5
        p = p * r + _C4
        p = p * r + _C3
        p = p * r + _C2
        p = p * r + 1.0
        out[lane] = p * r + 1.0
        bits[lane] = (np.int64(k) + 1023) << 52
    for lane in range(LANES):
        v = out[lane] * pow2[lane]
        v = 0.0 if x[lane] < _X_MIN else v
        out[lane] = math.inf if x[lane] > _OVERFLOW else v


@njit(cache=True, error_model="numpy", inline="always")
def fixed_sum(fixed_bits: np.ndarray, row: int, n: int) -> tuple[np.int64, np.int64]:
    """Sum the integers y held as ``y + FIXED_MAGIC`` in lanes ``0 .. n - 1`` of a row.

    Parameters
    ----------
    fixed_bits : numpy.ndarray
        ``int64[rows, LANES]``: the ``int64`` view of the doubles ``y + FIXED_MAGIC``
        (``y`` integer-valued: a fixed-point value already rounded).
    row, n : int
        Row summed and lanes summed.

    Returns
    -------
    total, outside : numpy.int64
        The sum, exact when ``outside`` is 0; lanes with ``|y| >= 2**51`` (or
        nan), for which the caller sums again through int64 conversions.
    """
    total, outside = np.int64(0), np.int64(0)
    for lane in range(n):
        y = fixed_bits[row, lane] - FIXED_MAGIC_BITS
        total += y
        outside += 1 if y >= FIXED_LIMIT or y <= -FIXED_LIMIT else 0
    return total, outside


@njit(cache=True, error_model="numpy", inline="always")
def fixed_total(
    fixed_bits: np.ndarray, row: int, value: np.ndarray, unit: float, n: int
) -> np.int64:
    """Sum of ``int64(value[lane] x unit + 0.5)`` over lanes ``0 .. n - 1``.

    Read from row ``row`` of the fixed-point records (:func:`fixed_sum`), which
    must hold ``trunc(value x unit + 0.5) + FIXED_MAGIC``; when a lane is beyond
    2**51 units (or nan) the sum is made again through int64 conversions, so
    that it is always the plain conversion's.
    """
    total, outside = fixed_sum(fixed_bits, row, n)
    if outside > 0:
        total = np.int64(0)
        for lane in range(n):
            total += np.int64(value[lane] * unit + 0.5)
    return total
