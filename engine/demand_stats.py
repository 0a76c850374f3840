"""Demand-side statistics of a run, accumulated chunk by chunk, and their tables.

Tables: ``contracts`` (one row per contract), ``revenue_by_month`` (per scope,
month, with and without re-letting), ``concentration`` (per operator and
month: HHI, effective number of customers and top-1 share of backlog),
``customer_risk`` (per customer: revenue at risk from its loss) and
``revenue_risk`` (per scope: probability of losing more than a share of the
planned revenue).

Quantiles come from histograms with linear bins over [0, cap] (``caps`` of
:class:`engine.demand_arrays.DemandArrays`; over [0, 1] for shares),
interpolated linearly inside the bin: within one bin width of the sample
quantile (``bin_width`` columns). Means are exact sums (whole dollars, or
shares in units of 1e-6).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.blocks import contract_statistics
from engine.config import Settings
from engine.demand_arrays import DemandArrays, lower_demand
from engine.errors import InputError
from engine.finance_stats import FinanceStats
from engine.histograms import QUANTILES, binomial_se, quantiles_from_linear_histogram
from engine.kernels.contract_records import LOST_SHARES, N_DSC
from engine.kernels.contracts import (
    C_RATE,
    C_TERM,
    N_CONTRACT_SUMS,
    S_DEFAULTED,
    S_LATE,
    S_LOST_DEFAULT,
    S_LOST_LATE,
    S_LOST_NONRENEWAL,
    S_LOST_TERMINATION,
    S_RECOVERY,
    S_REFUND,
    S_RELET,
    S_RENEWED,
    S_REVENUE,
    S_REVENUE_SQ,
    S_TERMINATED,
)
from engine.scenario import Book

__all__ = ["DemandStats"]

CONTRACT_BINS = 1024
REVENUE_BINS = 256
SHARE_BINS = 200


@dataclass
class DemandStats:
    """Integer statistics of the demand side (merged by addition, any chunking)."""

    arrays: DemandArrays
    n_paths: int
    horizon: int
    seed: int
    ct_sums: np.ndarray
    ct_hist: np.ndarray
    rev_sums: np.ndarray
    rev_hist: np.ndarray
    conc_sums: np.ndarray
    conc_hist: np.ndarray
    cust_sums: np.ndarray
    lost_counts: np.ndarray
    finance: FinanceStats | None = None

    @classmethod
    def create(cls, book: Book, settings: Settings) -> DemandStats:
        """Lower the customers and contracts of a book and allocate empty statistics."""
        horizon = settings.run.horizon_months
        n_ctr, n_cust, n_ops = len(book.contracts), len(book.customers), len(book.operators)
        width = horizon + 1
        arrays = lower_demand(book, settings)
        # whole-dollar int64 sums over paths: a path adds at most about twice the
        # book's contracted revenue over the horizon (re-letting above the price aside)
        biggest = 2.0 * float(arrays.caps[:n_ctr].sum()) if n_ctr else 1.0
        limit = int(2.0**62 / max(biggest, 1.0))
        if settings.run.n_paths > limit:
            raise InputError(
                "command line",
                "run.n_paths",
                settings.run.n_paths,
                f"at most {limit:,} paths for this book (exact whole-dollar revenue sums)",
            )
        return cls(
            arrays=arrays,
            n_paths=settings.run.n_paths,
            horizon=horizon,
            seed=settings.run.seed,
            ct_sums=np.zeros((n_ctr, N_CONTRACT_SUMS), dtype=np.int64),
            ct_hist=np.zeros((n_ctr, CONTRACT_BINS), dtype=np.int64),
            rev_sums=np.zeros((n_ops + 1, 2, width), dtype=np.int64),
            rev_hist=np.zeros((n_ops + 1, 2, width, REVENUE_BINS), dtype=np.int64),
            conc_sums=np.zeros((n_ops, 4, width), dtype=np.int64),
            conc_hist=np.zeros((n_ops, 2, width, SHARE_BINS), dtype=np.int64),
            cust_sums=np.zeros((n_cust, n_ops), dtype=np.int64),
            lost_counts=np.zeros((n_ops + 1, len(LOST_SHARES)), dtype=np.int64),
        )

    def add(
        self, energization: np.ndarray, factor_paths: np.ndarray, path0: int, n_blocks: int
    ) -> None:
        """Simulate the demand side of paths ``path0 ..`` on given market series.

        A run does not call this: the market kernel runs each group's demand side
        right after its markets (:meth:`engine.market_stats.MarketStats.add` with
        ``demand``). Tests call it on series set by hand, and to check that both
        give the same bits.

        Parameters
        ----------
        energization : numpy.ndarray
            ``float64[n, P]`` the paths' energization times (months).
        factor_paths : numpy.ndarray
            ``float64[ceil(n / 64), channels, T + 1, 64]`` (groups of 64 paths,
            lanes innermost) their AI-demand factor and rents
            (and, with finance, the channels it needs: engine/kernels/finance.py).
        path0 : int
            Global id of the first path.
        n_blocks : int
            Parallel partial results (any value gives the same statistics).
        """
        dem_in, fin_in, dem_out, fin_out = self.kernel_args()
        contract_statistics(
            np.uint64(self.seed),
            np.uint64(path0),
            energization,
            factor_paths,
            dem_in,
            fin_in,
            n_blocks,
            dem_out,
            fin_out,
        )

    def kernel_args(self) -> tuple[tuple, tuple, tuple, tuple]:
        """Return the kernels' demand-side inputs, finance inputs, statistics and finance's.

        Returns
        -------
        tuple
            ``(inputs, fin_inputs, outputs, fin_outputs)``: the fields of
            :class:`engine.demand_arrays.DemandArrays` in order, the finance's inputs
            (:meth:`FinanceStats.inputs`, or :meth:`FinanceStats.disabled` without
            debt), ``ct_sums`` .. ``lost_counts`` (accumulated in place) and the
            finance's statistics.
        """
        a = self.arrays
        dem_in = tuple(getattr(a, f.name) for f in dataclasses.fields(a))
        if self.finance is not None:
            fin_in, fin_out = self.finance.inputs(), self.finance.outputs()
        else:
            fin_in, fin_out = FinanceStats.disabled()
        dem_out = (self.ct_sums, self.ct_hist, self.rev_sums, self.rev_hist, self.conc_sums,
                   self.conc_hist, self.cust_sums, self.lost_counts)  # fmt: skip
        return dem_in, fin_in, dem_out, fin_out

    def series_channels(self, n_gens: int) -> int:
        """Market series per path the demand side reads: 1 + G, with finance 1 + 2 G + 2 O.

        Parameters
        ----------
        n_gens : int
            GPU generations of the book (G).
        """
        return self.finance.arrays.n_channels if self.finance is not None else 1 + n_gens

    @staticmethod
    def absent() -> tuple[tuple, tuple, tuple, tuple]:
        """Return :meth:`kernel_args` of a book without a demand side (same array types)."""
        f1, f2 = np.zeros(0), np.zeros((0, 0))
        i1 = np.zeros(0, dtype=np.int64)
        dsc = np.zeros(N_DSC)  # read by the block scratch (latent_scales): every field
        dem_in = (f2, f2, i1, i1, f1, dsc, np.zeros(0, dtype=np.uint64), f1, f1)
        i2, i3, i4 = (np.zeros((0,) * k, dtype=np.int64) for k in (2, 3, 4))
        fin_in, fin_out = FinanceStats.disabled()
        return dem_in, fin_in, (i2, i2, i3, i4, i3, i4, i2, i2), fin_out

    def contracts(self, book: Book) -> pl.DataFrame:
        """One row per contract (book order): delivery, termination, default, revenue."""
        n, s = self.n_paths, self.ct_sums
        caps = self.arrays.caps[: len(book.contracts)]
        sites = {x.id: x for x in book.sites}
        a = self.arrays
        gpus = np.add.reduceat(a.phase_gpus, a.phase_start[:-1])  # every contract has a phase
        value = gpus * a.contracts[:, C_RATE] * a.contracts[:, C_TERM]
        mean = s[:, S_REVENUE] / n
        unit = np.where(caps > 0, caps * 1e-5, 1.0)  # S_REVENUE_SQ: (revenue - planned)^2
        deviation = mean - self.arrays.planned_value
        var = np.maximum(s[:, S_REVENUE_SQ] * unit**2 / n - deviation**2, 0.0)
        data: dict[str, object] = {
            "contract": [c.id for c in book.contracts],
            "customer": [c.customer for c in book.contracts],
            "operator": [sites[c.sites[0]].operator for c in book.contracts],
            "sites": [",".join(c.sites) for c in book.contracts],
            "gpus": gpus,
            "price_usd_per_gpu_hour": [c.price_usd_per_gpu_hour for c in book.contracts],
            "contracted_value_usd": value,
        }
        for name, col in (
            ("p_late_beyond_grace", S_LATE),
            ("p_terminated", S_TERMINATED),
            ("p_customer_default", S_DEFAULTED),
            ("p_renewed", S_RENEWED),
        ):
            data[name] = s[:, col] / n
            data[f"{name}_se"] = binomial_se(s[:, col], n)
        data["revenue_mean_usd"] = mean
        data["revenue_mean_se_usd"] = np.sqrt(var / n)
        for label in ("p5", "p50", "p95"):
            data[f"revenue_{label}_usd"] = quantiles_from_linear_histogram(
                self.ct_hist, caps, QUANTILES[label]
            )
        data["revenue_bin_width_usd"] = caps / CONTRACT_BINS
        for name, col in (
            ("lost_late_delivery_mean_usd", S_LOST_LATE),
            ("lost_termination_mean_usd", S_LOST_TERMINATION),
            ("lost_default_mean_usd", S_LOST_DEFAULT),
            ("lost_nonrenewal_mean_usd", S_LOST_NONRENEWAL),
            ("default_recovery_mean_usd", S_RECOVERY),
            ("prepayment_refund_mean_usd", S_REFUND),
            ("relet_revenue_mean_usd", S_RELET),
        ):
            data[name] = s[:, col] / n
        return pl.DataFrame(data).with_columns(pl.selectors.numeric().cast(pl.Float64))

    def _scopes(self, book: Book) -> list[tuple[str, str]]:
        return [("total", "all")] + [("operator", o.id) for o in book.operators]

    def revenue_by_month(self, book: Book) -> pl.DataFrame:
        """Revenue per scope and month, without and with re-letting (mean, quantiles)."""
        n, months = self.n_paths, np.arange(1, self.horizon + 1)
        n_ctr = len(book.contracts)
        frames = []
        for s, (kind, name) in enumerate(self._scopes(book)):
            cap = self.arrays.caps[n_ctr + s]
            for v, relet in enumerate((False, True)):
                data: dict[str, object] = {
                    "scope_type": kind,
                    "scope": name,
                    "with_relet": relet,
                    "month": months,
                    "revenue_mean_usd": self.rev_sums[s, v, 1:] / n,
                }
                for label, q in QUANTILES.items():
                    data[f"revenue_{label}_usd"] = quantiles_from_linear_histogram(
                        self.rev_hist[s, v, 1:], np.full(len(months), cap), q
                    )
                data["bin_width_usd"] = cap / REVENUE_BINS
                frames.append(pl.DataFrame(data))
        return pl.concat(frames).with_columns(
            pl.col("month").cast(pl.Int32), pl.selectors.float().cast(pl.Float64)
        )

    def concentration(self, book: Book) -> pl.DataFrame:
        """Per operator and month: HHI, effective customers, top-1 share of backlog."""
        months = np.arange(1, self.horizon + 1)
        frames = []
        for o, op in enumerate(book.operators):
            m = self.conc_sums[o, 3, 1:]
            with np.errstate(invalid="ignore", divide="ignore"):
                hhi = self.conc_sums[o, 0, 1:] * 1e-6 / m
                top1 = self.conc_sums[o, 1, 1:] * 1e-6 / m
                eff = self.conc_sums[o, 2, 1:] * 1e-6 / m
            data: dict[str, object] = {
                "operator": op.id,
                "month": months,
                "p_backlog": m / self.n_paths,
                "hhi_mean": hhi,
                "effective_customers_mean": eff,
                "top1_share_mean": top1,
            }
            for label in ("p5", "p50", "p95"):
                h = quantiles_from_linear_histogram(
                    self.conc_hist[o, 0, 1:], np.ones(len(months)), QUANTILES[label]
                )
                data[f"hhi_{label}"] = h
                data[f"top1_share_{label}"] = quantiles_from_linear_histogram(
                    self.conc_hist[o, 1, 1:], np.ones(len(months)), QUANTILES[label]
                )
            for label, other in (("p5", "p95"), ("p50", "p50"), ("p95", "p5")):
                with np.errstate(divide="ignore"):
                    data[f"effective_customers_{label}"] = 1.0 / np.asarray(data[f"hhi_{other}"])
            frames.append(pl.DataFrame(data))
        if not frames:
            return pl.DataFrame(schema={"operator": pl.String, "month": pl.Int32})
        return pl.concat(frames).with_columns(
            pl.col("month").cast(pl.Int32), pl.selectors.float().cast(pl.Float64)
        )

    def customer_risk(self, book: Book) -> pl.DataFrame:
        """Per customer and operator it buys from: revenue at risk if it is lost.

        That is its expected revenue over the horizon (before re-letting) and its
        share of the operator's.
        """
        n = self.n_paths
        sites = {x.id: x for x in book.sites}
        ops = [o.id for o in book.operators]
        pairs = {(c.customer, sites[c.sites[0]].operator) for c in book.contracts}
        by_op = self.cust_sums.sum(axis=0) / n
        rows: dict[str, list[object]] = {
            k: []
            for k in (
                "customer",
                "operator",
                "annual_pd",
                "demand_loading",
                "revenue_at_risk_usd",
                "share_of_operator_revenue",
            )
        }
        for k, c in enumerate(book.customers):
            for o, op in enumerate(ops):
                if (c.id, op) not in pairs:
                    continue
                value = self.cust_sums[k, o] / n
                rows["customer"].append(c.id)
                rows["operator"].append(op)
                rows["annual_pd"].append(c.annual_pd)
                rows["demand_loading"].append(c.demand_loading)
                rows["revenue_at_risk_usd"].append(value)
                rows["share_of_operator_revenue"].append(value / by_op[o] if by_op[o] > 0 else 0.0)
        return pl.DataFrame(rows).with_columns(pl.selectors.numeric().cast(pl.Float64))

    def revenue_risk(self, book: Book) -> pl.DataFrame:
        """Per scope: planned revenue and the probability of losing more than a share of it."""
        n, n_ctr = self.n_paths, len(book.contracts)
        n_scopes = len(book.operators) + 1
        planned = self.arrays.caps[n_ctr + n_scopes :]
        data: dict[str, object] = {
            "scope_type": [k for k, _ in self._scopes(book)],
            "scope": [s for _, s in self._scopes(book)],
            "planned_revenue_usd": planned,
            "revenue_mean_usd": self.rev_sums[:, 0, 1:].sum(axis=1) / n,
        }
        for j, share in enumerate(LOST_SHARES):
            count = self.lost_counts[:, j]
            key = f"p_lose_more_than_{int(share * 100)}pct"
            data[key] = count / n
            data[f"{key}_se"] = binomial_se(count, n)
        return pl.DataFrame(data).with_columns(pl.selectors.float().cast(pl.Float64))
