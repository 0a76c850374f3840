"""The ``risk_summary`` table: per operator and facility, every risk figure with its error.

Long format (scope_type, operator, facility, metric, unit, value, se, ci95_low,
ci95_high) built from :class:`engine.finance_stats.FinanceStats`: probabilities
of default by horizon and cause, expected loss and LGD to lenders, revenue at
risk (VaR and CVaR of the contract-revenue shortfall) and minimum-DSCR
quantiles (docs/model.md §10.5).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from engine.finance_arrays import DSCR_RANGE
from engine.histograms import Z95, binomial_se, histogram_value_at_rank
from engine.kernels.finance_fields import (
    F_LOSS_UNIT,
    FAN_BINS,
    FR_DEFAULTS,
    FR_EAD,
    FR_LGD,
    FR_LGD_SQ,
    FR_LOSS,
    FR_LOSS_SQ,
    FR_RECOVERED,
    FR_REFINANCED,
    MS_DEFAULT,
    MS_FIRST_BREACH,
    O_EL_UNIT,
    O_LOSS_LO,
    O_LOSS_SCALE,
    O_LOSS_UNIT,
    O_PLANNED,
    R_DEF_COVENANT,
    R_DEF_LIQUIDITY,
    R_DEF_REFINANCING,
    R_EL_SQ,
    R_EL_SUM,
    R_LOSS_SQ,
    R_LOSS_SUM,
    R_TESTED,
    RATIO_UNIT,
    USD_UNIT,
)
from engine.kernels.finance_records import LGD_SQ_UNIT
from engine.scenario import Book

if TYPE_CHECKING:
    from engine.finance_stats import FinanceStats

__all__ = ["risk_summary"]

PD_MONTHS = (12, 24, 36)
#: Metrics that cannot be negative: their confidence intervals are clipped at 0.
NON_NEGATIVE = ("expected_loss", "expected_loss_share_of_principal", "lgd")


def risk_summary(stats: FinanceStats, book: Book) -> pl.DataFrame:
    """Per operator and facility (long format): every risk figure with its error."""
    rows: dict[str, list] = {
        "scope_type": [],
        "operator": [],
        "facility": [],
        "metric": [],
        "unit": [],
        "value": [],
        "se": [],
        "ci95_low": [],
        "ci95_high": [],
    }

    def add(
        kind: str,
        op: str,
        fac: str | None,
        metric: str,
        unit: str,
        value: float,
        se: float | None,
        lo: float | None = None,
        hi: float | None = None,
    ) -> None:
        if se is not None and lo is None and math.isfinite(value):
            lo, hi = value - Z95 * se, value + Z95 * se
            if unit == "probability":
                lo, hi = max(lo, 0.0), min(hi, 1.0)
            elif metric in NON_NEGATIVE:
                lo = max(lo, 0.0)
        for key, x in zip(
            rows,
            (kind, op, fac, metric, unit, value, se, lo, hi),
            strict=True,
        ):
            rows[key].append(x)

    n, a = stats.n_paths, stats.arrays
    for o, op in enumerate(book.operators):
        by_month = np.cumsum(stats.month_sums[o, 1:, MS_DEFAULT])
        for m in PD_MONTHS:
            if m <= stats.horizon:
                c = by_month[m - 1]
                add(
                    "operator",
                    op.id,
                    None,
                    f"pd_{m}m",
                    "probability",
                    c / n,
                    float(binomial_se(c, n)),
                )
        c = by_month[-1]
        add("operator", op.id, None, "pd_horizon", "probability", c / n, float(binomial_se(c, n)))
        for metric, k in (
            ("pd_covenant", R_DEF_COVENANT),
            ("pd_liquidity", R_DEF_LIQUIDITY),
            ("pd_refinancing", R_DEF_REFINANCING),
        ):
            c = stats.op_sums[o, k]
            add("operator", op.id, None, metric, "probability", c / n, float(binomial_se(c, n)))
        c = stats.month_sums[o, 1:, MS_FIRST_BREACH].sum()
        add(
            "operator",
            op.id,
            None,
            "prob_covenant_breach",
            "probability",
            c / n,
            float(binomial_se(c, n)),
        )
        el, el_se = _operator_expected_loss(stats, o)
        add("operator", op.id, None, "expected_loss", "USD", el, el_se)
        _revenue_at_risk(stats, add, op.id, o)
        tested = int(stats.op_sums[o, R_TESTED])
        add(
            "operator",
            op.id,
            None,
            "min_dscr_tested_share",
            "probability",
            tested / n,
            float(binomial_se(tested, n)),
        )
        lo_d, hi_d = DSCR_RANGE
        width = (hi_d - lo_d) / FAN_BINS
        for q in (0.05, 0.10, 0.50):
            value, lo, hi = _quantile_ci(stats.min_dscr_hist[o], lo_d, width, q)
            add(
                "operator",
                op.id,
                None,
                f"min_dscr_p{round(q * 100)}",
                "ratio",
                value,
                None,
                lo,
                hi,
            )
    for f, fac in enumerate(book.facilities):
        s = stats.fac_sums[f]
        d = int(s[FR_DEFAULTS])
        add("facility", fac.operator, fac.id, "pd", "probability", d / n, float(binomial_se(d, n)))
        unit = a.facilities[f, F_LOSS_UNIT]
        mean = s[FR_LOSS] * USD_UNIT / n
        var = max(s[FR_LOSS_SQ] * unit * unit / n - mean * mean, 0.0)
        add("facility", fac.operator, fac.id, "expected_loss", "USD", mean, math.sqrt(var / n))
        add(
            "facility",
            fac.operator,
            fac.id,
            "expected_loss_share_of_principal",
            "share",
            mean / fac.principal_usd,
            math.sqrt(var / n) / fac.principal_usd,
        )
        if d > 0:
            lgd = s[FR_LGD] * RATIO_UNIT / d
            lgd_var = max(s[FR_LGD_SQ] * LGD_SQ_UNIT / d - lgd * lgd, 0.0)
            lgd_se = math.sqrt(lgd_var / d)
            ead = s[FR_EAD] * USD_UNIT / d
            recovered = s[FR_RECOVERED] * USD_UNIT / d
            weighted = s[FR_LOSS] / s[FR_EAD] if s[FR_EAD] > 0 else math.nan
        else:
            lgd, lgd_se, ead, recovered, weighted = math.nan, None, math.nan, math.nan, math.nan
        add("facility", fac.operator, fac.id, "lgd", "share", lgd, lgd_se)
        add("facility", fac.operator, fac.id, "lgd_exposure_weighted", "share", weighted, None)
        add("facility", fac.operator, fac.id, "ead_given_default", "USD", ead, None)
        add("facility", fac.operator, fac.id, "recovered_given_default", "USD", recovered, None)
        r = int(s[FR_REFINANCED])
        add(
            "facility",
            fac.operator,
            fac.id,
            "prob_refinanced",
            "probability",
            r / n,
            float(binomial_se(r, n)),
        )
    return pl.DataFrame(
        rows,
        schema={
            "scope_type": pl.String,
            "operator": pl.String,
            "facility": pl.String,
            "metric": pl.String,
            "unit": pl.String,
            "value": pl.Float64,
            "se": pl.Float64,
            "ci95_low": pl.Float64,
            "ci95_high": pl.Float64,
        },
    ).fill_nan(None)


def _operator_expected_loss(stats: FinanceStats, o: int) -> tuple[float, float]:
    """Return the expected loss to the operator's lenders ($, facilities summed) and its SE."""
    n = stats.n_paths
    unit = stats.arrays.ops[o, O_EL_UNIT]
    mean = stats.op_sums[o, R_EL_SUM] * USD_UNIT / n
    var = max(stats.op_sums[o, R_EL_SQ] * unit * unit / n - mean * mean, 0.0)
    return mean, math.sqrt(var / n)


def _quantile_ci(
    counts: np.ndarray, lo: float, width: float, q: float
) -> tuple[float, float, float]:
    """Quantile q of a histogram and its 95% order-statistic confidence interval."""
    m = float(counts.sum())
    if m == 0:
        return math.nan, math.nan, math.nan
    half = Z95 * math.sqrt(m * q * (1.0 - q))
    return (
        histogram_value_at_rank(counts, lo, width, q * m),
        histogram_value_at_rank(counts, lo, width, math.floor(q * m - half)),
        histogram_value_at_rank(counts, lo, width, math.ceil(q * m + half)),
    )


def _revenue_at_risk(stats: FinanceStats, add, op: str, o: int) -> None:
    """VaR and CVaR of the contract revenue shortfall against plan, at 95% and 99%."""
    a, n = stats.arrays, stats.n_paths
    if a.ops[o, O_PLANNED] <= 0.0:
        return
    counts = stats.loss_hist[o, :, 0]
    sums = stats.loss_hist[o, :, 1] * USD_UNIT
    unit = a.ops[o, O_LOSS_UNIT]
    squares = stats.loss_hist[o, :, 2] * unit * unit
    lo, width = a.ops[o, O_LOSS_LO], 1.0 / a.ops[o, O_LOSS_SCALE]
    mean = stats.op_sums[o, R_LOSS_SUM] * USD_UNIT / n
    var = max(stats.op_sums[o, R_LOSS_SQ] * unit * unit / n - mean * mean, 0.0)
    add("operator", op, None, "revenue_shortfall_mean", "USD", mean, math.sqrt(var / n))
    for alpha in (0.95, 0.99):
        var_a, var_lo, var_hi = _quantile_ci(counts, lo, width, alpha)
        # CVaR: mean of the worst (1 - alpha) n paths; the VaR bin counted in part
        tail_n = (1.0 - alpha) * n
        cum_above = np.cumsum(counts[::-1])[::-1]  # paths in bins >= k
        k = min(int((var_a - lo) / width), counts.size - 1)
        above = float(cum_above[k + 1]) if k + 1 < counts.size else 0.0
        take = max(tail_n - above, 0.0)
        inside = float(counts[k])
        share = min(take / inside, 1.0) if inside > 0 else 0.0
        tail_sum = float(sums[k + 1 :].sum()) + share * float(sums[k])
        tail_sq = float(squares[k + 1 :].sum()) + share * float(squares[k])
        taken = above + share * inside
        cvar = tail_sum / taken if taken > 0 else math.nan
        tail_var = max(tail_sq / taken - cvar * cvar, 0.0) if taken > 0 else 0.0
        # the VaR is interpolated inside its bin, the CVaR uses the paths' own sums:
        # keep VaR <= CVaR (true of the exact figures; both within one bin width)
        if taken > 0:
            var_a = min(var_a, cvar)
        # Var(CVaR estimate) ~ [Var(L | tail) + alpha (CVaR - VaR)^2] / (n (1 - alpha))
        se = math.sqrt((tail_var + alpha * (cvar - var_a) ** 2) / max(tail_n, 1.0))
        name = f"revenue_var_{round(alpha * 100)}"
        add("operator", op, None, name, "USD", var_a, None, var_lo, var_hi)
        add("operator", op, None, f"revenue_cvar_{round(alpha * 100)}", "USD", cvar, se)
