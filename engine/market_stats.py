"""Market statistics of a run, accumulated chunk by chunk, and their tables.

The tables are ``market_by_month``, ``site_costs`` and the curtailment columns
of ``capacity_by_month``.

Factor quantiles come from histograms of ln(value / central value) with
``MARKET_BINS`` bins spanning about +-6 log standard deviations of the factor at
that month; inside a bin the quantile is interpolated linearly in ln value, so it
is within one bin of the exact sample quantile (``bin_width_log`` in the table).
Means are exact up to the fixed-point unit (2^-20 of the factor's month-0
central value).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.blocks import market_statistics
from engine.config import Settings
from engine.demand_stats import DemandStats
from engine.errors import InputError
from engine.histograms import QUANTILES, mean_se_from_log_histogram, quantiles_from_log_histogram
from engine.kernels.lanes import LANES
from engine.kernels.market_records import N_SITE_SUMS, SITE_CAPEX, SITE_ENERGY
from engine.market_arrays import lower_markets, trace_channels
from engine.market_bins import central_paths
from engine.market_layout import (
    DAYS_PER_MONTH,
    HOURS_PER_MONTH,
    MARKET_BINS,
    R_CAP0,
    R_CURTAIL_SHARE,
    SITE_HALF_WIDTH,
    MarketArrays,
)
from engine.scenario import Book
from engine.scopes import Scopes, build_scopes

__all__ = ["SITE_BINS", "MarketStats", "trace_markets"]

SITE_BINS = 2048


@dataclass
class MarketStats:
    """Integer statistics of the market model, merged by addition (see the kernel)."""

    arrays: MarketArrays
    n_paths: int
    horizon: int
    seed: int
    layout: dict[str, np.ndarray]
    hist: np.ndarray
    sums: np.ndarray
    squeeze_months: np.ndarray
    curtail_months: np.ndarray
    curtailed_w: np.ndarray
    site_hist: np.ndarray
    site_sums: np.ndarray

    @classmethod
    def create(cls, book: Book, settings: Settings, scopes: Scopes) -> MarketStats:
        """Lower the markets of a book and allocate empty statistics."""
        horizon = settings.run.horizon_months
        arrays = lower_markets(book, settings.markets, horizon)
        layout = _layout(book, arrays, settings)
        n_out = len(arrays.names)
        # fixed-point sums hold values up to 1e4 x the month-0 central value per path
        biggest = float(np.max(np.exp(arrays.center - arrays.center[:, :1]))) if n_out else 1.0
        limit = int(2.0**62 / (max(biggest, 1.0) * 1e4 * 2.0**20))
        if settings.run.n_paths > limit:
            raise InputError(
                "command line",
                "run.n_paths",
                settings.run.n_paths,
                f"at most {limit:,} paths (exact fixed-point market sums)",
            )
        width = horizon + 1
        return cls(
            arrays=arrays,
            n_paths=settings.run.n_paths,
            horizon=horizon,
            seed=settings.run.seed,
            layout=layout,
            hist=np.zeros((n_out, width, MARKET_BINS), dtype=np.int64),
            sums=np.zeros((n_out, width), dtype=np.int64),
            squeeze_months=np.zeros(width, dtype=np.int64),
            curtail_months=np.zeros((len(book.regions), width), dtype=np.int64),
            curtailed_w=np.zeros((len(scopes.kind), horizon + 2), dtype=np.int64),
            site_hist=np.zeros((len(book.sites), 2, SITE_BINS), dtype=np.int64),
            site_sums=np.zeros((len(book.sites), N_SITE_SUMS), dtype=np.int64),
        )

    def add(
        self,
        energization: np.ndarray,
        path0: int,
        n_blocks: int,
        trace: np.ndarray | None = None,
        factor_paths: np.ndarray | None = None,
        demand: DemandStats | None = None,
    ) -> None:
        """Simulate the markets of one chunk's paths and add their statistics.

        Parameters
        ----------
        energization : numpy.ndarray
            ``float64[n, P]`` the chunk's energization times (months).
        path0 : int
            Global id of the chunk's first path.
        n_blocks : int
            Parallel partial results (any value gives the same statistics).
        trace : numpy.ndarray, optional
            ``float64[n, K, T + 1]`` filled with the paths' factor channels
            (:func:`engine.market_arrays.trace_channels`).
        factor_paths : numpy.ndarray, optional
            ``float64[ceil(n / LANES), channels, T + 1, LANES]`` filled with the
            paths' AI-demand factor and rents by month (and, with finance, resale
            values, energy cost and capex), for the demand side: path ``i`` in
            group ``i // LANES``, lane ``i % LANES``; or ``float64[0, channels, T + 1,
            LANES]``: each block keeps only its current group's series, in L2 (a run
            with a demand side).
        demand : DemandStats, optional
            The demand side (and finance), run on each group of 64 paths right after
            its markets, on the series above, into these statistics.

        Raises
        ------
        ValueError
            With ``demand``, if ``factor_paths`` does not hold the channels it reads
            (:meth:`engine.demand_stats.DemandStats.series_channels`) for every
            group or for a slot per block.
        """
        a = self.arrays
        if demand is not None:  # the demand side reads the series: all of them, every group
            channels = demand.series_channels(a.gpu.shape[0])
            groups = (energization.shape[0] + LANES - 1) // LANES
            if factor_paths is None or factor_paths.shape[1:] != (
                channels,
                self.horizon + 1,
                LANES,
            ):
                raise ValueError(
                    f"the demand side needs factor_paths [.., {channels}, T + 1, {LANES}]"
                )
            if factor_paths.shape[0] not in (0, groups):
                raise ValueError(f"factor_paths holds {groups} groups, or 0 (a slot per block)")
        fields = [
            getattr(a, f.name)
            for f in dataclasses.fields(a)
            if f.name not in ("names", "units", "value_offset", "value_slope")
        ]
        lay = self.layout
        market_statistics(
            np.uint64(self.seed),
            np.uint64(path0),
            energization,
            *fields,
            lay["site_region"],
            lay["site_pue"],
            lay["site_operator"],
            lay["site_phase_start"],
            lay["site_phase_end"],
            lay["site_center"],
            lay["phase_mw"],
            lay["phase_curtail_w"],
            lay["phase_scopes"],
            lay["region_phase_start"],
            lay["region_phase_index"],
            n_blocks,
            self.hist,
            self.sums,
            self.squeeze_months,
            self.curtail_months,
            self.curtailed_w,
            self.site_hist,
            self.site_sums,
            trace if trace is not None else np.zeros((0, 0, 0)),
            factor_paths if factor_paths is not None else np.zeros((0, 0, 0, 0)),
            demand is not None,
            *(demand.kernel_args() if demand is not None else DemandStats.absent()),
        )

    def market_by_month(self, book: Book) -> pl.DataFrame:
        """Mean and quantiles of every reported factor by month, and event probabilities."""
        a, n, months = self.arrays, self.n_paths, np.arange(1, self.horizon + 1)
        frames = []
        for row, (name, unit) in enumerate(zip(a.names, a.units, strict=True)):
            half = MARKET_BINS / (2.0 * a.bin_scale[row, 1:])
            data = {
                "month": months,
                "factor": [name] * len(months),
                "unit": [unit] * len(months),
                "mean": self.sums[row, 1:] * a.unit[row] / n,
                "mean_se": a.value_slope[row]
                * mean_se_from_log_histogram(self.hist[row, 1:], a.center[row, 1:], half),
            }
            for label, q in QUANTILES.items():
                data[label] = a.value_offset[row, 1:] + a.value_slope[row] * (
                    quantiles_from_log_histogram(self.hist[row, 1:], a.center[row, 1:], q, half)
                )
            data["bin_width_log"] = 2.0 * half / MARKET_BINS
            frames.append(data)
        events = [("copper_squeeze", self.squeeze_months)]
        events += [
            (f"curtailment_event:{r.id}", self.curtail_months[k])
            for k, r in enumerate(book.regions)
        ]
        for name, counts in events:
            p = counts[1:] / n
            frames.append(
                {
                    "month": months,
                    "factor": [name] * len(months),
                    "unit": ["probability"] * len(months),
                    "mean": p,
                    "mean_se": np.sqrt(p * (1.0 - p) / n),
                    **{label: np.full(len(months), np.nan) for label in QUANTILES},
                    "bin_width_log": np.full(len(months), np.nan),
                }
            )
        schema = {"month": pl.Int32, "factor": pl.String, "unit": pl.String}
        schema |= {"mean": pl.Float64, "mean_se": pl.Float64}
        schema |= dict.fromkeys([*QUANTILES, "bin_width_log"], pl.Float64)
        table = pl.concat([pl.DataFrame(f, schema=schema) for f in frames])
        return table.with_columns(pl.col([*QUANTILES, "bin_width_log"]).fill_nan(None))

    def site_costs(self, book: Book) -> pl.DataFrame:
        """Each site's facility capex (incl. copper) and energy cost distributions."""
        lay = self.layout
        built = self.site_sums[:, 4]
        n_built = np.maximum(built, 1)
        p_built = built / self.n_paths
        data: dict[str, object] = {
            "site": [s.id for s in book.sites],
            "operator": [s.operator for s in book.sites],
            "region": [s.region for s in book.sites],
            "it_mw": [sum(p.it_mw for p in s.phases) for s in book.sites],
            "prob_built_within_horizon": p_built,
            "prob_built_within_horizon_se": np.sqrt(p_built * (1 - p_built) / self.n_paths),
            "facility_capex_musd_mean": self.site_sums[:, 0] / n_built / 1e3,
            "facility_capex_musd_mean_se": mean_se_from_log_histogram(
                self.site_hist[:, SITE_CAPEX], lay["site_center"][:, SITE_CAPEX], SITE_HALF_WIDTH
            )
            / 1e6,
        }
        for label, q in QUANTILES.items():
            if label in ("p10", "p90"):
                continue
            v = quantiles_from_log_histogram(
                self.site_hist[:, SITE_CAPEX], lay["site_center"][:, SITE_CAPEX], q, SITE_HALF_WIDTH
            )
            data[f"facility_capex_musd_{label}"] = v / 1e6
        data["copper_cost_musd_mean"] = self.site_sums[:, 1] / n_built / 1e3
        data["energy_cost_musd_per_month_mean"] = self.site_sums[:, 3] / n_built / 1e6
        data["energy_cost_musd_per_month_mean_se"] = (
            mean_se_from_log_histogram(
                self.site_hist[:, SITE_ENERGY], lay["site_center"][:, SITE_ENERGY], SITE_HALF_WIDTH
            )
            / 1e6
        )
        for label, q in QUANTILES.items():
            if label in ("p10", "p90"):
                continue
            v = quantiles_from_log_histogram(
                self.site_hist[:, SITE_ENERGY],
                lay["site_center"][:, SITE_ENERGY],
                q,
                SITE_HALF_WIDTH,
            )
            data[f"energy_cost_musd_per_month_{label}"] = v / 1e6
        data["energy_cost_musd_horizon_mean"] = self.site_sums[:, 2] / n_built / 1e3
        table = pl.DataFrame(data).with_columns(pl.col(pl.Float64).fill_nan(None))
        unbuilt = pl.col("prob_built_within_horizon") == 0
        money = [c for c in table.columns if c.endswith(("_mean", "_p5", "_p50", "_p95"))]
        return table.with_columns(
            [pl.when(unbuilt).then(None).otherwise(pl.col(c)).alias(c) for c in money]
        )

    def curtailment(self, scopes: Scopes) -> pl.DataFrame:
        """Mean MW taken offline by curtailment, by scope and month (to join capacity)."""
        months = np.arange(1, self.horizon + 1)
        rows = []
        for s in range(len(scopes.kind)):
            rows.append(
                pl.DataFrame(
                    {
                        "scope_type": [scopes.kind[s]] * len(months),
                        "scope": [scopes.name[s]] * len(months),
                        "month": months,
                        "mw_curtailed_mean": self.curtailed_w[s, 1 : self.horizon + 1]
                        / 1e6
                        / self.n_paths,
                    },
                    schema={
                        "scope_type": pl.String,
                        "scope": pl.String,
                        "month": pl.Int32,
                        "mw_curtailed_mean": pl.Float64,
                    },
                )
            )
        return pl.concat(rows)


def _layout(book: Book, arrays: MarketArrays, settings: Settings) -> dict[str, np.ndarray]:
    """Site, phase and region arrays the market kernel needs for costs and curtailment.

    The scopes of a phase are those of :func:`engine.scopes.build_scopes`, in its
    order: the total (0), then each operator, then each site.
    """
    regions = {r.id: k for k, r in enumerate(book.regions)}
    operators = {o.id: k for k, o in enumerate(book.operators)}
    n_ops = len(book.operators)
    slots = central_paths(arrays, settings.run.horizon_months)
    copper = settings.markets.copper
    site_region, site_pue, starts, ends, centers = [], [], [], [], []
    phase_mw, curtail_w, phase_scopes = [], [], []
    region_phases: list[list[int]] = [[] for _ in book.regions]
    for s, site in enumerate(book.sites):
        r = regions[site.region]
        site_region.append(r)
        site_pue.append(site.pue)
        starts.append(len(phase_mw))
        share = arrays.region[r, R_CURTAIL_SHARE]
        for phase in site.phases:
            region_phases[r].append(len(phase_mw))
            phase_scopes.append((0, 1 + operators[site.operator], 1 + n_ops + s))
            phase_mw.append(phase.it_mw)
            curtail_w.append(round(phase.it_mw * 1e6 * share))
        ends.append(len(phase_mw))
        mw = sum(p.it_mw for p in site.phases)
        all_in = float(np.exp(slots[2 * r, 1]))
        per_mw = HOURS_PER_MONTH * all_in + DAYS_PER_MONTH * arrays.region[r, R_CAP0]
        centers.append(
            (np.log(mw * copper.facility_capex_usd_per_mw), np.log(mw * site.pue * per_mw))
        )
    return {
        "site_region": np.array(site_region, dtype=np.int64),
        "site_pue": np.array(site_pue, dtype=np.float64),
        "site_operator": np.array(
            [operators[site.operator] for site in book.sites], dtype=np.int64
        ),
        "site_phase_start": np.array(starts, dtype=np.int64),
        "site_phase_end": np.array(ends, dtype=np.int64),
        "site_center": np.array(centers, dtype=np.float64).reshape(-1, 2),
        "phase_mw": np.array(phase_mw, dtype=np.float64),
        "phase_curtail_w": np.array(curtail_w, dtype=np.int64),
        "phase_scopes": np.array(phase_scopes, dtype=np.int64).reshape(-1, 3),
        "region_phase_start": np.cumsum([0] + [len(p) for p in region_phases]).astype(np.int64),
        "region_phase_index": np.array([p for ph in region_phases for p in ph], dtype=np.int64),
    }


def trace_markets(
    book: Book, settings: Settings, energization: np.ndarray | None = None, path0: int = 0
) -> dict[str, np.ndarray]:
    """Per-path factor channels of ``settings.run.n_paths`` paths (tests, diagnostics).

    Parameters
    ----------
    book : Book
        The validated book.
    settings : Settings
        Run settings and market parameters.
    energization : numpy.ndarray, optional
        ``float64[n, P]`` energization times; default: every phase at month 1.
    path0 : int
        Global id of the first path.

    Returns
    -------
    dict of str to numpy.ndarray
        ``float64[n, T + 1]`` per channel name (month 0 unused).
    """
    n = settings.run.n_paths
    scopes = build_scopes(book, settings.output.max_histogram_bins)
    stats = MarketStats.create(book, settings, scopes)
    names = trace_channels(book)
    trace = np.zeros((n, len(names), settings.run.horizon_months + 1))
    phases = sum(len(s.phases) for s in book.sites)
    times = energization if energization is not None else np.full((n, phases), 0.5)
    stats.add(np.ascontiguousarray(times, dtype=np.float64), path0, 2, trace)
    return {name: trace[:, k] for k, name in enumerate(names)}
