"""Writing a run: Parquet tables and a manifest, whole or absent.

Everything is written into a hidden sibling directory and renamed onto the run
directory in one ``rename(2)`` when complete, so a run directory is either
complete or absent. An existing non-empty run directory is never overwritten.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from engine.errors import InputError

__all__ = ["TABLE_UNITS", "claim_run_dir", "package_versions", "write_run"]

#: Units of columns whose name does not say them, stored in each file's metadata.
TABLE_UNITS: dict[str, dict[str, str]] = {
    "capacity_by_month": {
        "month": "month (1 = first simulated month)",
        "mw_online_*": "MW of critical IT load energized",
        "gpus_online_*": "GPUs in service (installed x availability)",
        "h100e_online_*": "H100-equivalent GPUs in service",
        "*_mean_se": "standard error of the mean, same unit",
    },
    "site_energization": {
        "it_mw": "MW of critical IT load",
        "gpus": "GPUs installed",
        "*_month*": "month (1 = first simulated month); null = not within the horizon",
        "mean_delay_months": "months late vs planned, mean over paths energized in the horizon",
        "prob_*": "probability; *_se its binomial standard error",
    },
    "market_by_month": {
        "month": "month (1 = first simulated month)",
        "unit": "unit of mean and quantiles of the row's factor ($/MWh, $/MW-day, $/t, "
        "$/GPU-hr, $/GPU, or probability for event rows)",
        "mean_se": "standard error of the mean (binomial for probabilities; from the "
        "histogram otherwise)",
        "p*": "quantile, within one bin of the exact sample quantile",
        "bin_width_log": "histogram bin width in ln(value): the quantiles' resolution",
    },
    "site_costs": {
        "it_mw": "MW of critical IT load",
        "prob_*": "probability; *_se its binomial standard error",
        "*_musd*": "million $, over the paths on which the site is built within the horizon",
        "*_per_month*": "million $ per month in service (energy at the all-in price x IT MW "
        "x PUE, plus the capacity charge)",
        "*_mean_se": "standard error of the mean, same unit (from the histogram)",
    },
}
TABLE_UNITS |= {
    "contracts": {
        "gpus": "GPUs taken (share x the sites' GPUs)",
        "contracted_value_usd": "$ over the term at full delivery",
        "p_*": "probability within the horizon (with *_se its standard error)",
        "revenue_*_usd": "$ realised over the horizon (quantiles within one bin width)",
        "lost_*_mean_usd": "$ of revenue lost by cause, mean over paths",
    },
    "revenue_by_month": {
        "month": "month (1 = first simulated month)",
        "revenue_*_usd": "$ in the month (with_relet: plus freed capacity re-let)",
    },
    "concentration": {
        "hhi_*": "Herfindahl index of customers' shares of remaining contracted value",
        "effective_customers_*": "1 / HHI",
        "top1_share_*": "largest customer's share of remaining contracted value",
        "p_backlog": "share of paths with contracted value remaining",
    },
    "customer_risk": {"revenue_at_risk_usd": "$ expected revenue from the customer"},
    "revenue_risk": {"p_lose_more_than_*pct": "probability realised < (1 - x) x planned"},
}
TABLE_UNITS |= {
    "finance_by_month": {
        "month": "month (1 = first simulated month)",
        "prob_*": "probability over all paths (with *_se its binomial standard error)",
        "cash_usd_*": "$ of cash at the end of the month (negative: revolver drawn), over "
        "paths where the operator is not in default at the start of the month",
        "ebitda_usd_*": "$ of EBITDA in the month, same paths",
        "dscr_*": "trailing-window EBITDA / debt service (paths with debt service; mean of "
        "values clipped to +-10)",
        "ltv_*": "outstanding debt / collateral value (paths with debt; mean clipped at 10)",
        "*_defined_share": "share of the month's paths on which the ratio is defined",
        "*_bin_width": "histogram bin width, same unit: the quantiles' resolution",
    },
    "risk_summary": {
        "unit": "unit of value, se and the interval: probability, USD, share or ratio",
        "se": "Monte Carlo standard error (null where the interval comes from order statistics)",
        "ci95_*": "95% confidence interval (normal from se, or order statistics for quantiles)",
    },
    "joint_confidence": {
        "prob_all": "probability that every condition of the target holds on the same path",
        "prob_*": "probability of one condition alone (null: not part of the target)",
        "prob_if_independent": "product of the conditions' probabilities",
    },
}
TABLE_UNITS["capacity_by_month"] |= {
    "mw_curtailed_mean": "MW of IT load taken offline by curtailment events, mean",
    "mw_available_mean": "MW online minus MW curtailed, mean",
}


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a run depends on."""
    versions = {"python": platform.python_version()}
    for name in ("neocloud-risk", "numpy", "scipy", "polars", "numba", "hydra-core", "omegaconf"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str | None:
    """Commit of the source tree the engine runs from, if it is a git checkout."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def claim_run_dir(run_dir: Path) -> None:
    """Refuse a run directory that already holds files (never overwrite a run).

    Parameters
    ----------
    run_dir : pathlib.Path
        Target directory; it may not exist or may be empty (Hydra creates it).

    Raises
    ------
    InputError
        If the directory exists and is not empty.
    """
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise InputError(
            "command line",
            "hydra.run.dir",
            str(run_dir),
            "a directory that does not exist or is empty",
        )


def write_run(run_dir: Path, tables: Mapping[str, pl.DataFrame], manifest: dict[str, Any]) -> Path:
    """Write tables and manifest under a temporary name, then rename into place.

    Parameters
    ----------
    run_dir : pathlib.Path
        Final run directory (absent or empty).
    tables : mapping of str to polars.DataFrame
        Table name to frame; each becomes ``<name>.parquet``.
    manifest : dict
        Run description; the list of tables is added.

    Returns
    -------
    pathlib.Path
        The run directory.
    """
    claim_run_dir(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = run_dir.parent / f".{run_dir.name}.incomplete-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        listing = {}
        for name, frame in tables.items():
            units = json.dumps(TABLE_UNITS.get(name, {}))
            frame.write_parquet(staging / f"{name}.parquet", metadata={"units": units})
            listing[name] = {
                "file": f"{name}.parquet",
                "rows": frame.height,
                "columns": {c: str(t) for c, t in frame.schema.items()},
                "units": TABLE_UNITS.get(name, {}),
            }
        manifest = {**manifest, "tables": listing}
        text = json.dumps(manifest, indent=2, sort_keys=False, default=str)
        (staging / "manifest.json").write_text(text + "\n", encoding="utf-8")
        if run_dir.exists():
            run_dir.rmdir()  # empty (checked above): rename(2) needs the name free or empty
        staging.rename(run_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return run_dir


def remove_if_empty(run_dir: Path, stop: Path) -> None:
    """Remove an empty run directory and its empty parents up to ``stop``."""
    path = run_dir
    try:
        stop = stop.resolve()
        while path.resolve() != stop and path.is_dir() and not any(path.iterdir()):
            path.rmdir()
            path = path.parent
    except OSError:
        pass


def command_line() -> list[str]:
    """Return the command line of this process, for the manifest."""
    return [Path(sys.argv[0]).name, *sys.argv[1:]]
