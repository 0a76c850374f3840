"""What the NumPy finance records: the integer statistics of :mod:`engine.kernels.finance_records`.

Counts and fixed-point sums ($ in units of ``USD_UNIT``, ratios in ``RATIO_UNIT``)
added into the engine's own :class:`engine.finance_stats.FinanceStats` arrays,
with the kernel's linear bins, for all of a chunk's paths at once.
"""

from __future__ import annotations

import numpy as np

from engine.finance_stats import FinanceStats
from engine.kernels.finance_fields import (
    CAUSE_COVENANT,
    CAUSE_LIQUIDITY,
    CAUSE_REFINANCING,
    DSCR_CAP,
    F_LOSS_UNIT,
    FAN_BINS,
    FLAG_CUSTOMERS,
    FLAG_DSCR,
    FLAG_MW,
    FLAG_OPERATORS,
    FR_DEFAULTS,
    FR_EAD,
    FR_LGD,
    FR_LGD_SQ,
    FR_LOSS,
    FR_LOSS_SQ,
    FR_RECOVERED,
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
    O_CASH_LO,
    O_CASH_SCALE,
    O_EBITDA_LO,
    O_EBITDA_SCALE,
    O_LOSS_LO,
    O_LOSS_SCALE,
    O_LOSS_UNIT,
    O_PLANNED,
    PH_MW,
    PH_OP,
    R_DEF_COVENANT,
    R_DEF_LIQUIDITY,
    R_DEF_REFINANCING,
    R_LOSS_SQ,
    R_LOSS_SUM,
    R_TESTED,
    RATIO_UNIT,
    T_DSCR,
    T_FLAGS,
    T_MONTH,
    T_MW,
    USD_UNIT,
    V_CASH,
    V_DSCR,
    V_EBITDA,
    V_LTV,
)
from engine.kernels.finance_records import LGD_SQ_UNIT

__all__ = ["linear_bin", "record_facilities", "record_fans", "record_month", "record_paths"]


def _whole(x: np.ndarray) -> np.ndarray:
    """Nearest integers (half up), as ``int64``."""
    return np.floor(x + 0.5).astype(np.int64)


def linear_bin(x: np.ndarray, lo: float, scale: float, n_bins: int) -> np.ndarray:
    """Bins ``(x - lo) x scale`` clamped to ``0 .. n_bins - 1`` (nan: 0, +inf: the last)."""
    y = (x - lo) * scale
    return np.where(y >= 0.0, np.minimum(y, n_bins - 1.0), 0.0).astype(np.intp)


def record_month(
    stats: FinanceStats,
    o: int,
    t: int,
    alive: np.ndarray,
    values: dict[str, np.ndarray],
    fan: np.ndarray,
) -> None:
    """Add operator o's month t on the paths where it is not yet in default.

    Parameters
    ----------
    stats : FinanceStats
        Accumulated in place (``month_sums``).
    o, t : int
        Operator and month.
    alive : numpy.ndarray
        ``bool[n]`` paths on which the operator is not in default before month t.
    values : dict of str to numpy.ndarray
        ``float64[n]`` ``cash`` and ``ebitda`` ($), ``dscr`` and ``ltv``; and
        ``bool[n]`` ``has_dscr``, ``has_ltv`` (already and-ed with ``alive``),
        ``breach``, ``first_breach`` and ``default`` (this month).
    fan : numpy.ndarray
        ``intp[N_FAN, n]`` the operator's fan bins this month, written where recorded.
    """
    a = stats.arrays
    ops, fsc = a.ops, a.fsc
    cash, ebitda, dscr, ltv = values["cash"], values["ebitda"], values["dscr"], values["ltv"]
    has_dscr, has_ltv = values["has_dscr"], values["has_ltv"]
    s = stats.month_sums[o, t]
    s[MS_ALIVE] += np.count_nonzero(alive)
    s[MS_CASH] += _whole(cash[alive] / USD_UNIT).sum()
    s[MS_EBITDA] += _whole(ebitda[alive] / USD_UNIT).sum()
    s[MS_DSCR] += _whole(np.clip(dscr[has_dscr], -DSCR_CAP, DSCR_CAP) / RATIO_UNIT).sum()
    s[MS_DSCR_N] += np.count_nonzero(has_dscr)
    s[MS_LTV] += _whole(np.minimum(ltv[has_ltv], LTV_CAP) / RATIO_UNIT).sum()
    s[MS_LTV_N] += np.count_nonzero(has_ltv)
    s[MS_BREACH] += np.count_nonzero(alive & values["breach"])
    s[MS_FIRST_BREACH] += np.count_nonzero(alive & values["first_breach"])
    s[MS_DEFAULT] += np.count_nonzero(alive & values["default"])
    fan[V_CASH, alive] = linear_bin(cash[alive], ops[o, O_CASH_LO], ops[o, O_CASH_SCALE], FAN_BINS)
    lo, scale = ops[o, O_EBITDA_LO], ops[o, O_EBITDA_SCALE]
    fan[V_EBITDA, alive] = linear_bin(ebitda[alive], lo, scale, FAN_BINS)
    lo, scale = fsc[FS_DSCR_LO], fsc[FS_DSCR_SCALE]
    fan[V_DSCR, has_dscr] = linear_bin(dscr[has_dscr], lo, scale, FAN_BINS)
    fan[V_LTV, has_ltv] = linear_bin(ltv[has_ltv], 0.0, fsc[FS_LTV_SCALE], FAN_BINS)


def record_fans(stats: FinanceStats, t: int, fan: np.ndarray) -> None:
    """Add month t's fan bins to the histograms.

    ``fan`` is ``intp[O, N_FAN, n]``, bin ``FAN_BINS`` meaning "not recorded"
    (operator in default, ratio undefined); one ``bincount`` per month.
    """
    n_ops, width = fan.shape[0], FAN_BINS + 1
    offset = (np.arange(n_ops * N_FAN) * width).reshape(n_ops, N_FAN, 1)
    counts = np.bincount((fan + offset).ravel(), minlength=n_ops * N_FAN * width)
    stats.fan_hist[t] += counts.reshape(n_ops, N_FAN, width)[..., :FAN_BINS]


def record_paths(
    stats: FinanceStats,
    months: np.ndarray,
    default_month: np.ndarray,
    cause: np.ndarray,
    tested: np.ndarray,
    min_dscr: np.ndarray,
    contract_revenue: np.ndarray,
    customer_default: np.ndarray,
) -> None:
    """Per-operator records (default causes, minimum DSCR, revenue shortfall) and joint targets.

    Parameters
    ----------
    stats : FinanceStats
        Accumulated in place.
    months : numpy.ndarray
        ``int64[P, n]`` energization months.
    default_month, cause : numpy.ndarray
        ``int64[O, n]`` each operator's default month (> T: none) and its cause.
    tested, min_dscr : numpy.ndarray
        ``bool[O, n]`` whether a DSCR was tested, ``float64[O, n]`` the lowest.
    contract_revenue : numpy.ndarray
        ``float64[O, T, n]`` contract revenue by month (without re-letting), $.
    customer_default : numpy.ndarray
        ``int64[K, n]`` each customer's default month.
    """
    a = stats.arrays
    ops, fsc, horizon = a.ops, a.fsc, stats.horizon
    defaulted = default_month <= horizon
    for o in range(ops.shape[0]):
        for k, c in (
            (R_DEF_COVENANT, CAUSE_COVENANT),
            (R_DEF_LIQUIDITY, CAUSE_LIQUIDITY),
            (R_DEF_REFINANCING, CAUSE_REFINANCING),
        ):
            stats.op_sums[o, k] += np.count_nonzero(defaulted[o] & (cause[o] == c))
        stats.op_sums[o, R_TESTED] += np.count_nonzero(tested[o])
        n_bins = stats.min_dscr_hist.shape[1]
        low = linear_bin(min_dscr[o, tested[o]], fsc[FS_DSCR_LO], fsc[FS_DSCR_SCALE], n_bins)
        stats.min_dscr_hist[o] += np.bincount(low, minlength=n_bins)
        loss = ops[o, O_PLANNED] - contract_revenue[o].sum(axis=0)
        n_bins = stats.loss_hist.shape[1]
        k = linear_bin(loss, ops[o, O_LOSS_LO], ops[o, O_LOSS_SCALE], n_bins)
        whole = _whole(loss / USD_UNIT)
        square = _whole((loss / ops[o, O_LOSS_UNIT]) ** 2)
        stats.loss_hist[o, :, 0] += np.bincount(k, minlength=n_bins)
        stats.loss_hist[o, :, 1] += np.rint(np.bincount(k, whole, n_bins)).astype(np.int64)
        stats.loss_hist[o, :, 2] += np.rint(np.bincount(k, square, n_bins)).astype(np.int64)
        stats.op_sums[o, R_LOSS_SUM] += whole.sum()
        stats.op_sums[o, R_LOSS_SQ] += square.sum()
    ph = a.phases
    lost_customer = customer_default <= horizon
    for j in range(a.targets.shape[0]):
        flags = int(a.targets[j, T_FLAGS])
        named = a.target_ops[j] > 0.5
        ok = np.ones((4, months.shape[1]), dtype=np.bool_)  # MW, customers, DSCR, operators
        if flags & FLAG_MW:
            own = named[ph[:, PH_OP].astype(np.intp)]
            by = min(a.targets[j, T_MONTH], horizon)  # months > T: not energized
            online = ph[own, PH_MW] @ (months[own] <= by)
            ok[0] = online >= a.targets[j, T_MW] - 1e-9
        if flags & FLAG_CUSTOMERS:
            ok[1] = ~lost_customer[a.target_customers[j] > 0.5].any(axis=0)
        if flags & FLAG_DSCR:
            ok[2] = ~(tested[named] & (min_dscr[named] < a.targets[j, T_DSCR])).any(axis=0)
        if flags & FLAG_OPERATORS:
            ok[3] = ~defaulted[named].any(axis=0)
        stats.joint[j, 0] += np.count_nonzero(ok.all(axis=0))
        stats.joint[j, 1:] += ok.sum(axis=1)


def record_facilities(
    stats: FinanceStats, ead: np.ndarray, proceeds: np.ndarray, sell_from: np.ndarray
) -> None:
    """Per-facility records of the defaults within the horizon: EAD, loss, recovery, LGD.

    ``ead``, ``proceeds`` (``float64[F, n]``, $) and ``sell_from`` (``int64[F, n]``,
    the month after the default) are each facility's at the end of the path.
    """
    fac = stats.arrays.facilities
    for f in range(fac.shape[0]):
        hit = (sell_from[f] <= stats.horizon + 1) & (ead[f] > 0.0)
        exposure = ead[f, hit]
        recovered = np.minimum(proceeds[f, hit], exposure)
        loss = exposure - recovered
        lgd = loss / exposure
        s = stats.fac_sums[f]
        s[FR_DEFAULTS] += exposure.size
        s[FR_EAD] += _whole(exposure / USD_UNIT).sum()
        s[FR_LOSS] += _whole(loss / USD_UNIT).sum()
        s[FR_LOSS_SQ] += _whole((loss / fac[f, F_LOSS_UNIT]) ** 2).sum()
        s[FR_RECOVERED] += _whole(recovered / USD_UNIT).sum()
        s[FR_LGD] += _whole(lgd / RATIO_UNIT).sum()
        s[FR_LGD_SQ] += _whole(lgd * lgd / LGD_SQ_UNIT).sum()
