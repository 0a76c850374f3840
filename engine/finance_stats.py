"""Finance statistics of a run, accumulated chunk by chunk, and their tables.

Tables: ``finance_by_month`` (per operator and month: cash, EBITDA, DSCR and
LTV fans, probabilities of covenant breach and default by month),
``risk_summary`` (per operator and facility, long format: probabilities of
default, expected loss, LGD, revenue at risk, minimum DSCR, each with its Monte
Carlo error) and ``joint_confidence`` (per joint target: the probability that
all its conditions hold on one path, and each alone).

Quantiles come from histograms with linear bins, interpolated linearly inside
the bin (within one bin width of the sample quantile; the ``*_bin_width``
columns). Means are exact fixed-point sums ($1,000 for money, 1e-6 for ratios).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.config import Settings
from engine.demand_arrays import DemandArrays
from engine.finance_arrays import DSCR_RANGE, LTV_TOP, FinanceArrays, lower_finance
from engine.kernels.finance_fields import (
    F_LOSS_UNIT,
    FAN_BINS,
    FR_DEFAULTS,
    FR_EAD,
    FR_LGD,
    FR_LGD_SQ,
    FR_LOSS,
    FR_LOSS_SQ,
    FR_REFINANCED,
    FS_ENABLED,
    N_FAC_SUMS,
    N_FAN,
    N_JOINT,
    N_MONTH_SUMS,
    N_OP_SUMS,
    O_CASH_LO,
    O_CASH_SCALE,
    O_EBITDA_LO,
    O_EBITDA_SCALE,
    O_EL_UNIT,
    O_LOSS_LO,
    O_LOSS_SCALE,
    O_LOSS_UNIT,
    O_PLANNED,
    PATH_BINS,
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

__all__ = ["FinanceStats", "histogram_value_at_rank"]

FAN_QUANTILES = {"p5": 0.05, "p10": 0.10, "p50": 0.50, "p90": 0.90, "p95": 0.95}
#: Normal quantile of the two-sided 95% confidence intervals.
Z95 = 1.959963984540054
PD_MONTHS = (12, 24, 36)
#: Metrics that cannot be negative: their confidence intervals are clipped at 0.
NON_NEGATIVE = ("expected_loss", "expected_loss_share_of_principal", "lgd")


def histogram_value_at_rank(counts: np.ndarray, lo: float, width: float, rank: float) -> float:
    """Value of the ``rank``-th smallest path (1-based, fractional) of a linear histogram.

    Bins are ``[lo + k width, lo + (k + 1) width)``; inside a bin the values are
    taken as evenly spread (linear interpolation of the empirical CDF).
    """
    cum = np.cumsum(counts)
    n = int(cum[-1]) if cum.size else 0
    if n == 0:
        return math.nan
    rank = min(max(rank, 0.0), float(n))
    k = int(np.searchsorted(cum, rank, side="left"))
    k = min(k, counts.size - 1)
    below = float(cum[k - 1]) if k > 0 else 0.0
    inside = float(counts[k])
    frac = (rank - below) / inside if inside > 0 else 0.0
    return lo + (k + min(max(frac, 0.0), 1.0)) * width


def _se(count: np.ndarray | float, n: int | np.ndarray) -> np.ndarray:
    n_arr = np.maximum(np.asarray(n, dtype=float), 1.0)
    p = np.asarray(count, dtype=float) / n_arr
    return np.sqrt(p * (1.0 - p) / n_arr)


@dataclass
class FinanceStats:
    """Integer statistics of the finance side (merged by addition, any chunking)."""

    arrays: FinanceArrays
    n_paths: int
    horizon: int
    month_sums: np.ndarray
    fan_hist: np.ndarray
    op_sums: np.ndarray
    min_dscr_hist: np.ndarray
    loss_hist: np.ndarray
    fac_sums: np.ndarray
    joint: np.ndarray

    @classmethod
    def create(
        cls, book: Book, settings: Settings, demand: DemandArrays, keep: np.ndarray
    ) -> FinanceStats:
        """Lower the finance side of a book and allocate empty statistics."""
        horizon = settings.run.horizon_months
        arrays = lower_finance(book, settings, demand, keep)
        n_ops, n_fac = len(book.operators), len(book.facilities)
        width = horizon + 1
        return cls(
            arrays=arrays,
            n_paths=settings.run.n_paths,
            horizon=horizon,
            month_sums=np.zeros((n_ops, width, N_MONTH_SUMS), dtype=np.int64),
            fan_hist=np.zeros((width, n_ops, N_FAN, FAN_BINS), dtype=np.int64),
            op_sums=np.zeros((n_ops, N_OP_SUMS), dtype=np.int64),
            min_dscr_hist=np.zeros((n_ops, FAN_BINS), dtype=np.int64),
            loss_hist=np.zeros((n_ops, PATH_BINS, 3), dtype=np.int64),
            fac_sums=np.zeros((n_fac, N_FAC_SUMS), dtype=np.int64),
            joint=np.zeros((len(settings.finance.joint_targets), N_JOINT), dtype=np.int64),
        )

    @staticmethod
    def disabled() -> tuple[tuple, tuple]:
        """Kernel inputs and outputs that switch finance off (same array types)."""
        z1, z2, i1 = np.zeros(0), np.zeros((0, 0)), np.zeros(0, dtype=np.int64)
        fsc = np.zeros(16)
        fsc[FS_ENABLED] = 0.0
        inputs = (z2, z2, i1, i1, z2, z2, z2, z1, fsc, z2, z2, z2)
        i64 = np.int64
        outputs = (
            np.zeros((0, 0, 0), dtype=i64),
            np.zeros((0, 0, 0, 0), dtype=i64),
            np.zeros((0, 0), dtype=i64),
            np.zeros((0, 0), dtype=i64),
            np.zeros((0, 0, 0), dtype=i64),
            np.zeros((0, 0), dtype=i64),
            np.zeros((0, 0), dtype=i64),
        )
        return inputs, outputs

    def inputs(self) -> tuple:
        """Return the kernel's finance inputs, in its order."""
        a = self.arrays
        return (
            a.ops,
            a.phases,
            a.pair_facility,
            a.pair_gen,
            a.facilities,
            a.gens,
            a.keep,
            a.base_rate,
            a.fsc,
            a.targets,
            a.target_ops,
            a.target_customers,
        )

    def outputs(self) -> tuple:
        """Return the kernel's finance statistics, in its order (accumulated in place)."""
        return (
            self.month_sums,
            self.fan_hist,
            self.op_sums,
            self.min_dscr_hist,
            self.loss_hist,
            self.fac_sums,
            self.joint,
        )

    # -- tables -------------------------------------------------------------------------

    def finance_by_month(self, book: Book) -> pl.DataFrame:
        """Per operator and month: cash, EBITDA, DSCR and LTV fans; breach and default."""
        n, a, horizon = self.n_paths, self.arrays, self.horizon
        months = np.arange(1, horizon + 1)
        frames = []
        lo_d, hi_d = DSCR_RANGE
        for o, op in enumerate(book.operators):
            s = self.month_sums[o, 1:]
            alive = s[:, 0].astype(float)
            per = np.maximum(alive, 1.0)
            data: dict[str, object] = {
                "operator": [op.id] * horizon,
                "month": months,
                "prob_not_in_default": alive / n,
                "prob_default_by_month": np.cumsum(s[:, 9]) / n,
                "prob_default_by_month_se": _se(np.cumsum(s[:, 9]), n),
                "prob_covenant_breach_by_month": np.cumsum(s[:, 8]) / n,
                "prob_covenant_breach_by_month_se": _se(np.cumsum(s[:, 8]), n),
                "prob_in_breach": s[:, 7] / n,
                "cash_usd_mean": np.where(alive > 0, s[:, 1] * USD_UNIT / per, np.nan),
                "ebitda_usd_mean": np.where(alive > 0, s[:, 2] * USD_UNIT / per, np.nan),
            }
            ranges = (
                ("cash_usd", a.ops[o, O_CASH_LO], 1.0 / a.ops[o, O_CASH_SCALE]),
                ("ebitda_usd", a.ops[o, O_EBITDA_LO], 1.0 / a.ops[o, O_EBITDA_SCALE]),
                ("dscr", lo_d, (hi_d - lo_d) / FAN_BINS),
                ("ltv", 0.0, LTV_TOP / FAN_BINS),
            )
            for v, (name, lo, width) in enumerate(ranges):
                counts = self.fan_hist[1:, o, v, :]
                if name == "dscr":
                    defined = s[:, 4].astype(float)
                    data["dscr_mean"] = np.where(
                        defined > 0, s[:, 3] * RATIO_UNIT / np.maximum(defined, 1), np.nan
                    )
                    data["dscr_defined_share"] = np.where(alive > 0, defined / per, np.nan)
                if name == "ltv":
                    defined = s[:, 6].astype(float)
                    data["ltv_mean"] = np.where(
                        defined > 0, s[:, 5] * RATIO_UNIT / np.maximum(defined, 1), np.nan
                    )
                    data["ltv_defined_share"] = np.where(alive > 0, defined / per, np.nan)
                for label, q in FAN_QUANTILES.items():
                    data[f"{name}_{label}"] = [
                        histogram_value_at_rank(row, lo, width, q * row.sum())
                        if row.sum() > 0
                        else math.nan
                        for row in counts
                    ]
                data[f"{name}_bin_width"] = [width] * horizon
            frames.append(pl.DataFrame(data))
        if not frames:
            return pl.DataFrame()
        return (
            pl.concat(frames)
            .with_columns(pl.col("month").cast(pl.Int32), pl.selectors.float().cast(pl.Float64))
            .fill_nan(None)
        )

    def risk_summary(self, book: Book) -> pl.DataFrame:
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

        n, a = self.n_paths, self.arrays
        for o, op in enumerate(book.operators):
            by_month = np.cumsum(self.month_sums[o, 1:, 9])
            for m in PD_MONTHS:
                if m <= self.horizon:
                    c = by_month[m - 1]
                    add("operator", op.id, None, f"pd_{m}m", "probability", c / n, float(_se(c, n)))
            c = by_month[-1]
            add("operator", op.id, None, "pd_horizon", "probability", c / n, float(_se(c, n)))
            for metric, k in (
                ("pd_covenant", R_DEF_COVENANT),
                ("pd_liquidity", R_DEF_LIQUIDITY),
                ("pd_refinancing", R_DEF_REFINANCING),
            ):
                c = self.op_sums[o, k]
                add("operator", op.id, None, metric, "probability", c / n, float(_se(c, n)))
            c = self.month_sums[o, 1:, 8].sum()
            add(
                "operator",
                op.id,
                None,
                "prob_covenant_breach",
                "probability",
                c / n,
                float(_se(c, n)),
            )
            el, el_se = self._operator_expected_loss(o)
            add("operator", op.id, None, "expected_loss", "USD", el, el_se)
            self._revenue_at_risk(add, op.id, o)
            tested = int(self.op_sums[o, R_TESTED])
            add(
                "operator",
                op.id,
                None,
                "min_dscr_tested_share",
                "probability",
                tested / n,
                float(_se(tested, n)),
            )
            lo_d, hi_d = DSCR_RANGE
            width = (hi_d - lo_d) / FAN_BINS
            for q in (0.05, 0.10, 0.50):
                value, lo, hi = self._quantile_ci(self.min_dscr_hist[o], lo_d, width, q)
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
            s = self.fac_sums[f]
            d = int(s[FR_DEFAULTS])
            add("facility", fac.operator, fac.id, "pd", "probability", d / n, float(_se(d, n)))
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
                weighted = s[FR_LOSS] / s[FR_EAD] if s[FR_EAD] > 0 else math.nan
            else:
                lgd, lgd_se, ead, weighted = math.nan, None, math.nan, math.nan
            add("facility", fac.operator, fac.id, "lgd", "share", lgd, lgd_se)
            add("facility", fac.operator, fac.id, "lgd_exposure_weighted", "share", weighted, None)
            add("facility", fac.operator, fac.id, "ead_given_default", "USD", ead, None)
            r = int(s[FR_REFINANCED])
            add(
                "facility",
                fac.operator,
                fac.id,
                "prob_refinanced",
                "probability",
                r / n,
                float(_se(r, n)),
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

    def _operator_expected_loss(self, o: int) -> tuple[float, float]:
        """Return the expected loss to the operator's lenders ($, facilities summed) and its SE."""
        n = self.n_paths
        unit = self.arrays.ops[o, O_EL_UNIT]
        mean = self.op_sums[o, R_EL_SUM] * USD_UNIT / n
        var = max(self.op_sums[o, R_EL_SQ] * unit * unit / n - mean * mean, 0.0)
        return mean, math.sqrt(var / n)

    def _quantile_ci(
        self, counts: np.ndarray, lo: float, width: float, q: float
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

    def _revenue_at_risk(self, add, op: str, o: int) -> None:
        """VaR and CVaR of the contract revenue shortfall against plan, at 95% and 99%."""
        a, n = self.arrays, self.n_paths
        if a.ops[o, O_PLANNED] <= 0.0:
            return
        counts = self.loss_hist[o, :, 0]
        sums = self.loss_hist[o, :, 1] * USD_UNIT
        unit = a.ops[o, O_LOSS_UNIT]
        squares = self.loss_hist[o, :, 2] * unit * unit
        lo, width = a.ops[o, O_LOSS_LO], 1.0 / a.ops[o, O_LOSS_SCALE]
        mean = self.op_sums[o, R_LOSS_SUM] * USD_UNIT / n
        var = max(self.op_sums[o, R_LOSS_SQ] * unit * unit / n - mean * mean, 0.0)
        add("operator", op, None, "revenue_shortfall_mean", "USD", mean, math.sqrt(var / n))
        for alpha in (0.95, 0.99):
            var_a, var_lo, var_hi = self._quantile_ci(counts, lo, width, alpha)
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

    def joint_confidence(self, settings: Settings) -> pl.DataFrame:
        """Per joint target: P(all conditions on one path), each alone, and under independence."""
        n = self.n_paths
        rows: dict[str, list] = {
            k: []
            for k in (
                "target",
                "conditions",
                "prob_all",
                "prob_all_se",
                "prob_mw_online",
                "prob_no_customer_default",
                "prob_min_dscr",
                "prob_no_operator_default",
                "prob_if_independent",
            )
        }
        for j, t in enumerate(settings.finance.joint_targets):
            c = self.joint[j]
            parts, tested = [], []
            if t.mw_online_share is not None:
                parts.append(f"MW online >= {t.mw_online_share:.0%} by month {t.by_month}")
                tested.append(c[1] / n)
            if t.no_customer_default:
                parts.append("no customer default")
                tested.append(c[2] / n)
            if t.min_dscr is not None:
                parts.append(f"DSCR >= {t.min_dscr:g} throughout")
                tested.append(c[3] / n)
            if t.no_operator_default:
                parts.append("no operator default")
                tested.append(c[4] / n)
            who = []
            if t.operators:
                who.append("operators " + ", ".join(t.operators))
            if t.customers:
                who.append("customers " + ", ".join(t.customers))
            text = "; ".join(parts) + (f" ({'; '.join(who)})" if who else "")
            rows["target"].append(t.name)
            rows["conditions"].append(text)
            rows["prob_all"].append(c[0] / n)
            rows["prob_all_se"].append(float(_se(c[0], n)))
            rows["prob_mw_online"].append(c[1] / n if t.mw_online_share is not None else None)
            rows["prob_no_customer_default"].append(c[2] / n if t.no_customer_default else None)
            rows["prob_min_dscr"].append(c[3] / n if t.min_dscr is not None else None)
            rows["prob_no_operator_default"].append(c[4] / n if t.no_operator_default else None)
            rows["prob_if_independent"].append(float(np.prod(tested)))
        schema = {k: pl.Float64 for k in rows}
        schema["target"] = pl.String
        schema["conditions"] = pl.String
        return pl.DataFrame(rows, schema=schema)
