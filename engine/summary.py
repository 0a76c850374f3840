"""What an analyst reads first: the headline figures of a run and the printed summary.

:func:`headline` flattens a run's tables into the figures a sweep collects (and
the manifest records); :func:`format_summary` is the plain-text summary the
command line prints after a run: MW online at the summary months, energization
by site phase, contract revenue at risk, and each operator's probability of
default, expected loss to lenders and revenue at risk.
"""

from __future__ import annotations

import polars as pl

from engine.config import Settings
from engine.scenario import Book

__all__ = ["HEADLINE_RISK", "format_summary", "headline"]

#: Operator risk figures copied to the headline (and the sweep summary).
HEADLINE_RISK = ("pd_36m", "pd_horizon", "expected_loss", "revenue_var_95", "revenue_cvar_95")


def headline(tables: dict[str, pl.DataFrame], settings: Settings) -> dict[str, float]:
    """Return the figures an analyst reads first, as a flat mapping (also used by sweeps).

    Parameters
    ----------
    tables : dict of str to polars.DataFrame
        Result tables of a run.
    settings : Settings
        Its settings (summary months, horizon).

    Returns
    -------
    dict of str to float
        Total MW online (mean, P10, P50) at each summary month, the MW-weighted
        probability of on-time energization and the MW not energized in the horizon;
        with contracts, each scope's expected revenue over the horizon and the
        probability of losing more than 25% and 50% of its planned revenue.
    """
    cap = tables["capacity_by_month"].filter(pl.col("scope_type") == "total")
    out: dict[str, float] = {}
    for month in settings.output.summary_months:
        if month > settings.run.horizon_months:
            continue
        row = cap.filter(pl.col("month") == month).row(0, named=True)
        for stat in ("mean", "p10", "p50"):
            out[f"total_mw_online_{stat}_m{month}"] = float(row[f"mw_online_{stat}"])
    sites = tables["site_energization"].filter(pl.col("prob_on_time").is_not_null())
    mw = max(sites["it_mw"].sum(), 1e-12)
    out["mw_weighted_prob_on_time"] = float((sites["it_mw"] * sites["prob_on_time"]).sum() / mw)
    every = tables["site_energization"]
    out["expected_mw_not_energized"] = float((every["it_mw"] * every["prob_not_energized"]).sum())
    if "revenue_risk" in tables:
        for row in tables["revenue_risk"].iter_rows(named=True):
            out[f"revenue_mean_usd_{row['scope']}"] = float(row["revenue_mean_usd"])
            for share in (25, 50):
                key = f"p_lose_more_than_{share}pct"
                out[f"{key}_{row['scope']}"] = float(row[key])
    if "risk_summary" in tables:
        risk = tables["risk_summary"].filter(pl.col("scope_type") == "operator")
        for row in risk.iter_rows(named=True):
            if row["metric"] in HEADLINE_RISK and row["value"] is not None:
                out[f"{row['metric']}_{row['operator']}"] = float(row["value"])
        for row in tables["joint_confidence"].iter_rows(named=True):
            out[f"joint_{row['target']}"] = float(row["prob_all"])
    return out


def format_summary(tables: dict[str, pl.DataFrame], settings: Settings, book: Book) -> str:
    """Plain-text summary printed after a run."""
    months = [m for m in settings.output.summary_months if m <= settings.run.horizon_months]
    cap = tables["capacity_by_month"].filter(pl.col("scope_type").is_in(["total", "operator"]))
    lines = [
        f"scenario {book.name}: {settings.run.n_paths:,} paths x "
        f"{settings.run.horizon_months} months, seed {settings.run.seed}",
        "",
        "IT MW online, P50 [P10, P90] (mean):",
        f"  {'scope':<22}" + "".join(f"{'month ' + str(m):>24}" for m in months),
    ]
    for scope in cap["scope"].unique(maintain_order=True):
        rows = cap.filter(pl.col("scope") == scope)
        cells = []
        for m in months:
            r = rows.filter(pl.col("month") == m).row(0, named=True)
            cells.append(
                f"{r['mw_online_p50']:.0f} [{r['mw_online_p10']:.0f}, {r['mw_online_p90']:.0f}] "
                f"({r['mw_online_mean']:.1f})"
            )
        lines.append(f"  {scope:<22}" + "".join(f"{c:>24}" for c in cells))
    lines += [
        "",
        "Energization by site phase (months):",
        f"  {'site#phase':<16}{'planned':>8}{'P(on time)':>12}{'P50':>6}{'P80':>6}"
        f"{'P90':>6}{'P(never)':>10}",
    ]
    for r in tables["site_energization"].iter_rows(named=True):

        def cell(value: int | None) -> str:
            return f"{value:>6}" if value is not None else f"{'>T':>6}"

        def on_time(value: float | None) -> str:
            return f"{value:>12.3f}" if value is not None else f"{'n/a':>12}"

        lines.append(
            f"  {r['site'] + '#' + str(r['phase']):<16}{r['planned_month']:>8}"
            f"{on_time(r['prob_on_time'])}{cell(r['p50_energization_month'])}"
            f"{cell(r['p80_energization_month'])}{cell(r['p90_energization_month'])}"
            f"{r['prob_not_energized']:>10.3f}"
        )
    if "revenue_risk" in tables:
        lines += [
            "",
            f"Contract revenue over {settings.run.horizon_months} months ($M):",
            f"  {'scope':<22}{'planned':>10}{'expected':>10}{'P(lose >25%)':>14}"
            f"{'P(lose >50%)':>14}",
        ]
        for r in tables["revenue_risk"].iter_rows(named=True):
            lines.append(
                f"  {r['scope']:<22}{r['planned_revenue_usd'] / 1e6:>10.0f}"
                f"{r['revenue_mean_usd'] / 1e6:>10.0f}{r['p_lose_more_than_25pct']:>14.4f}"
                f"{r['p_lose_more_than_50pct']:>14.4f}"
            )
    if "risk_summary" in tables:
        lines += _finance_summary(tables, settings)
    return "\n".join(lines)


def _finance_summary(tables: dict[str, pl.DataFrame], settings: Settings) -> list[str]:
    """Lines of the printed summary on debt: defaults, lenders' loss, revenue at risk."""
    risk = tables["risk_summary"]

    def value(op: str, metric: str) -> float:
        rows = risk.filter(
            (pl.col("operator") == op) & (pl.col("metric") == metric) & pl.col("facility").is_null()
        )
        x = rows["value"][0] if rows.height else None
        return float(x) if x is not None else float("nan")

    horizon = settings.run.horizon_months
    lines = [
        "",
        f"Finance by operator ($M; probabilities within {horizon} months):",
        f"  {'operator':<22}{'P(def) 12m':>11}{'36m':>8}{'horizon':>9}{'E[loss]':>9}"
        f"{'rev VaR95':>11}{'CVaR95':>9}{'min DSCR P10':>14}",
    ]
    for op in risk.filter(pl.col("scope_type") == "operator")["operator"].unique(
        maintain_order=True
    ):
        lines.append(
            f"  {op:<22}{value(op, 'pd_12m'):>11.4f}{value(op, 'pd_36m'):>8.4f}"
            f"{value(op, 'pd_horizon'):>9.4f}{value(op, 'expected_loss') / 1e6:>9.0f}"
            f"{value(op, 'revenue_var_95') / 1e6:>11.0f}"
            f"{value(op, 'revenue_cvar_95') / 1e6:>9.0f}{value(op, 'min_dscr_p10'):>14.2f}"
        )
    joint = tables["joint_confidence"]
    if joint.height:
        lines += ["", "Joint targets (all on the same path; P if independent):"]
        for r in joint.iter_rows(named=True):
            lines.append(
                f"  {r['target']:<28}{r['prob_all']:>8.4f}  ({r['prob_if_independent']:.4f})"
                f"  {r['conditions']}"
            )
    return lines
