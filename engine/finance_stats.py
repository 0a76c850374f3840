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

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.config import Settings
from engine.demand_arrays import DemandArrays
from engine.errors import InputError
from engine.finance_arrays import DSCR_RANGE, LTV_TOP, FinanceArrays, lower_finance
from engine.finance_risk import risk_summary
from engine.histograms import QUANTILES, binomial_se, histogram_values_at_ranks
from engine.kernels.finance_fields import (
    FAN_BINS,
    FS_ENABLED,
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
    N_FAC_SUMS,
    N_FAN,
    N_JOINT,
    N_MONTH_SUMS,
    N_OP_SUMS,
    N_SCALARS,
    O_CASH_LO,
    O_CASH_SCALE,
    O_EBITDA_LO,
    O_EBITDA_SCALE,
    PATH_BINS,
    RATIO_UNIT,
    USD_UNIT,
)
from engine.scenario import Book

__all__ = ["FinanceStats"]


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
        # a path adds at most about 2e10 to the int64 sums of squares (losses in units of
        # 1e-5 of their scale, squared): exact sums need fewer than 2^62 / 2e10 paths
        limit = int(2.0**62 / 2e10)
        if settings.run.n_paths > limit:
            raise InputError(
                "command line",
                "run.n_paths",
                settings.run.n_paths,
                f"at most {limit:,} paths for a book with debt (exact integer loss sums)",
            )
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
        fsc = np.zeros(N_SCALARS)
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
            alive = s[:, MS_ALIVE].astype(float)
            per = np.maximum(alive, 1.0)
            data: dict[str, object] = {
                "operator": [op.id] * horizon,
                "month": months,
                "prob_not_in_default": alive / n,
                "prob_not_in_default_se": binomial_se(alive, n),
                "prob_default_by_month": np.cumsum(s[:, MS_DEFAULT]) / n,
                "prob_default_by_month_se": binomial_se(np.cumsum(s[:, MS_DEFAULT]), n),
                "prob_covenant_breach_by_month": np.cumsum(s[:, MS_FIRST_BREACH]) / n,
                "prob_covenant_breach_by_month_se": binomial_se(
                    np.cumsum(s[:, MS_FIRST_BREACH]), n
                ),
                "prob_in_breach": s[:, MS_BREACH] / n,
                "prob_in_breach_se": binomial_se(s[:, MS_BREACH], n),
                "cash_usd_mean": np.where(alive > 0, s[:, MS_CASH] * USD_UNIT / per, np.nan),
                "ebitda_usd_mean": np.where(alive > 0, s[:, MS_EBITDA] * USD_UNIT / per, np.nan),
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
                    defined = s[:, MS_DSCR_N].astype(float)
                    data["dscr_mean"] = np.where(
                        defined > 0, s[:, MS_DSCR] * RATIO_UNIT / np.maximum(defined, 1), np.nan
                    )
                    data["dscr_defined_share"] = np.where(alive > 0, defined / per, np.nan)
                if name == "ltv":
                    defined = s[:, MS_LTV_N].astype(float)
                    data["ltv_mean"] = np.where(
                        defined > 0, s[:, MS_LTV] * RATIO_UNIT / np.maximum(defined, 1), np.nan
                    )
                    data["ltv_defined_share"] = np.where(alive > 0, defined / per, np.nan)
                for label, q in QUANTILES.items():
                    data[f"{name}_{label}"] = histogram_values_at_ranks(
                        counts, lo, width, q * counts.sum(axis=-1)
                    )
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
        return risk_summary(self, book)

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
            rows["prob_all_se"].append(float(binomial_se(c[0], n)))
            rows["prob_mw_online"].append(c[1] / n if t.mw_online_share is not None else None)
            rows["prob_no_customer_default"].append(c[2] / n if t.no_customer_default else None)
            rows["prob_min_dscr"].append(c[3] / n if t.min_dscr is not None else None)
            rows["prob_no_operator_default"].append(c[4] / n if t.no_operator_default else None)
            rows["prob_if_independent"].append(float(np.prod(tested)))
        schema = {k: pl.Float64 for k in rows}
        schema["target"] = pl.String
        schema["conditions"] = pl.String
        return pl.DataFrame(rows, schema=schema)
