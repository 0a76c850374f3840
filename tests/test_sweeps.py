"""Sweeps: joblib jobs within the core budget, one summary table, failures listed and kept apart."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl

from engine.simulate import available_cores
from engine.sweeps import collect


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=900)


def sweep(cwd: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "engine", "-m", *overrides], cwd)


def test_sweep_writes_one_row_per_job_within_the_core_budget(tmp_path: Path) -> None:
    done = sweep(
        tmp_path,
        "run.seed=1,2",
        "capacity.delay_correlation.operator=0.2,0.4",
        "run.n_paths=2000",
        "run.horizon_months=36",
        "hydra.sweep.dir=sw",
    )
    assert done.returncode == 0, done.stderr
    table = pl.read_parquet(tmp_path / "sw" / "sweep_summary.parquet")
    assert table.height == 4 and (table["status"] == "ok").all()
    assert table["job"].to_list() == [0, 1, 2, 3]
    pairs = set(zip(table["run.seed"], table["capacity.delay_correlation.operator"], strict=True))
    assert pairs == {("1", "0.2"), ("1", "0.4"), ("2", "0.2"), ("2", "0.4")}
    assert table["total_mw_online_mean_m24"].is_not_null().all()
    cores = available_cores()
    for job in range(4):
        manifest = json.loads((tmp_path / "sw" / str(job) / "manifest.json").read_text())
        jobs_at_once = min(4, cores)
        assert manifest["threads"] * jobs_at_once <= cores
    # seeds differ -> figures differ; same seed, other correlation -> same mean MW at month 1
    assert table["total_mw_online_mean_m24"].n_unique() > 1


def test_failed_job_is_listed_and_the_others_are_kept(tmp_path: Path) -> None:
    """Job 1's directory is taken, so it fails at run time; job 0 is kept and the sweep says so."""
    (tmp_path / "sw" / "1").mkdir(parents=True)
    (tmp_path / "sw" / "1" / "occupied.txt").write_text("not a run")
    done = sweep(
        tmp_path, "run.seed=1,2", "run.n_paths=1000", "run.horizon_months=24", "hydra.sweep.dir=sw"
    )
    assert done.returncode == 1
    assert "job 1 failed" in done.stdout
    table = pl.read_parquet(tmp_path / "sw" / "sweep_summary.parquet")
    rows = {r["run.seed"]: r for r in table.iter_rows(named=True)}
    assert rows["1"]["status"] == "ok" and rows["2"]["status"] == "failed"
    assert "hydra.run.dir" in rows["2"]["error"] or "directory" in rows["2"]["error"]
    assert (tmp_path / "sw" / "0" / "manifest.json").is_file()
    assert [p.name for p in (tmp_path / "sw" / "1").iterdir()] == ["occupied.txt"]


def test_collect_rebuilds_the_summary_and_reports_missing_jobs(tmp_path: Path) -> None:
    done = sweep(
        tmp_path,
        "run.seed=1,2,3",
        "run.n_paths=1000",
        "run.horizon_months=24",
        "hydra.sweep.dir=sw",
    )
    assert done.returncode == 0, done.stderr
    sweep_dir = tmp_path / "sw"
    first = pl.read_parquet(sweep_dir / "sweep_summary.parquet")
    (sweep_dir / "sweep_summary.parquet").unlink()
    shutil.rmtree(sweep_dir / "2")  # as if job 2 had been killed
    cli = run([str(Path(sys.executable).parent / "ncrisk-collect"), str(sweep_dir)], tmp_path)
    assert cli.returncode == 0, cli.stderr
    table = pl.read_parquet(sweep_dir / "sweep_summary.parquet")
    assert table.filter(pl.col("status") == "ok")["run.seed"].to_list() == ["1", "2"]
    assert table.filter(pl.col("status") == "missing")["run.seed"].to_list() == ["3"]
    kept = first.filter(pl.col("run.seed") != "3").drop("run_dir")
    assert kept.equals(table.filter(pl.col("status") == "ok").drop("run_dir"))
    assert collect(sweep_dir).equals(table)
