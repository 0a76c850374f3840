"""Collecting a sweep: one table keyed by the swept parameters.

``ncrisk -m`` collects after its jobs; ``ncrisk-collect SWEEP_DIR`` does the same
on its own, also after some jobs failed (Hydra skips its end-of-sweep callback
then). A job is ``ok`` when its run directory holds a manifest, ``failed`` when
it left a failure record, and ``missing`` when the sweep planned it (Hydra's
``multirun.yaml``) but it left neither (killed, or still running).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import polars as pl
import yaml

__all__ = ["collect", "collect_main", "format_sweep"]

STATUS = pl.Enum(["ok", "failed", "missing"])
_FAILED_DIR = ".failed"
_SHOWN_FIGURES = (
    "total_mw_online_p50_m24",
    "total_mw_online_mean_m24",
    "mw_weighted_prob_on_time",
    "expected_mw_not_energized",
)


def _canonical(value: Any) -> str:
    """One spelling per value: ``false``/``False`` -> ``false``, ``0.20`` -> ``0.2``."""
    return value if isinstance(value, str) else json.dumps(value)


def _key_values(overrides: list[str]) -> dict[str, str]:
    """Override ``key=value`` strings as key -> canonical value (Hydra keys left out)."""
    from engine.overrides import parse_overrides

    app = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    return {o.key_or_group: _canonical(o.value()) for o in parse_overrides(app)}


def _planned(sweep_dir: Path) -> list[dict[str, str]]:
    """Every job the sweep planned, from Hydra's ``multirun.yaml`` (empty if absent)."""
    from engine.overrides import expand_sweep, parse_overrides

    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return []
    data = yaml.safe_load(path.read_text()) or {}
    task = (((data.get("hydra") or {}).get("overrides") or {}).get("task")) or []
    task = [t for t in task if not t.startswith("hydra")]
    return [_key_values(combo) for combo in expand_sweep(parse_overrides(task))]


def collect(sweep_dir: Path) -> pl.DataFrame:
    """Build and write ``sweep_summary.parquet`` for a sweep directory.

    Parameters
    ----------
    sweep_dir : pathlib.Path
        Directory of a Hydra multirun (job subdirectories ``0``, ``1``, ...).

    Returns
    -------
    polars.DataFrame
        One row per job: job number, status, one column per swept override,
        run directory, the headline figures, and the error of a failed job.
    """
    rows: list[dict[str, Any]] = []
    for manifest_path in sorted(sweep_dir.glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        rows.append(
            {
                "job": manifest.get("job_num"),
                "status": "ok",
                "params": _key_values(manifest.get("overrides", [])),
                "run_dir": str(manifest_path.parent),
                "headline": manifest.get("headline", {}),
                "error": None,
            }
        )
    for record_path in sorted((sweep_dir / _FAILED_DIR).glob("*.json")):
        record = json.loads(record_path.read_text())
        rows.append(
            {
                "job": record.get("job_num"),
                "status": "failed",
                "params": _key_values(record.get("overrides", [])),
                "run_dir": None,
                "headline": {},
                "error": record.get("error", "").strip().splitlines()[-1:] or [""],
            }
        )
        rows[-1]["error"] = rows[-1]["error"][0]
    seen = [r["params"] for r in rows]
    for params in _planned(sweep_dir):
        if params not in seen:
            rows.append(
                {
                    "job": None,
                    "status": "missing",
                    "params": params,
                    "run_dir": None,
                    "headline": {},
                    "error": "no manifest and no failure record",
                }
            )
    keys = sorted({k for r in rows for k in r["params"]})
    figures = sorted({k for r in rows for k in r["headline"]})
    table = pl.DataFrame(
        {
            "job": pl.Series([r["job"] for r in rows], dtype=pl.Int32),
            "status": pl.Series([r["status"] for r in rows], dtype=STATUS),
            **{k: pl.Series([r["params"].get(k) for r in rows], dtype=pl.String) for k in keys},
            **{
                f: pl.Series([r["headline"].get(f) for r in rows], dtype=pl.Float64)
                for f in figures
            },
            "run_dir": pl.Series([r["run_dir"] for r in rows], dtype=pl.String),
            "error": pl.Series([r["error"] for r in rows], dtype=pl.String),
        }
    ).sort(["job", *keys], nulls_last=True)
    target = sweep_dir / "sweep_summary.parquet"
    staging = sweep_dir / f".sweep_summary.parquet.incomplete-{os.getpid()}"
    table.write_parquet(staging)
    os.replace(staging, target)
    return table


def format_sweep(table: pl.DataFrame, sweep_dir: Path) -> str:
    """Plain-text view of a sweep summary: swept values and a few headline figures."""
    failed = table.filter(pl.col("status") != "ok")
    fixed = {"job", "status", "run_dir", "error"}
    params = [
        c
        for c, t in table.schema.items()
        if c not in fixed and t == pl.String and table[c].n_unique() > 1
    ]
    figures = [c for c in _SHOWN_FIGURES if c in table.columns]
    shown = table.select("job", "status", *params, *figures)
    with pl.Config(tbl_rows=50, tbl_hide_dataframe_shape=True, tbl_width_chars=160):
        lines = [f"sweep {sweep_dir}: {table.height} jobs, {failed.height} not ok", str(shown)]
    for row in failed.iter_rows(named=True):
        lines.append(f"  job {row['job']} {row['status']}: {row['error']}")
    lines.append(f"summary: {sweep_dir / 'sweep_summary.parquet'}")
    return "\n".join(lines)


def collect_main(argv: list[str] | None = None) -> None:
    """Console entry point of ``ncrisk-collect SWEEP_DIR``."""
    parser = argparse.ArgumentParser(
        prog="ncrisk-collect",
        description="Rebuild sweep_summary.parquet of an ncrisk sweep directory.",
    )
    parser.add_argument("sweep_dir", type=Path, help="directory of an ncrisk -m sweep")
    args = parser.parse_args(argv)
    sweep_dir: Path = args.sweep_dir
    if not sweep_dir.is_dir():
        print(
            f"ncrisk-collect: invalid input on the command line\n  key:     SWEEP_DIR\n"
            f"  value:   {str(sweep_dir)!r}\n  allowed: an existing sweep directory",
            file=sys.stderr,
        )
        sys.exit(2)
    table = collect(sweep_dir)
    print(format_sweep(table, sweep_dir))
    sys.exit(0)
