"""The command line end to end: default run, run directories, atomic writes, wheel layout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import polars as pl
import pytest

from engine.resources import scenarios_dir

ROOT = Path(__file__).resolve().parent.parent
TABLES = {
    "capacity_by_month.parquet",
    "site_energization.parquet",
    "market_by_month.parquet",
    "site_costs.parquet",
    "contracts.parquet",
    "revenue_by_month.parquet",
    "concentration.parquet",
    "customer_risk.parquet",
    "revenue_risk.parquet",
    "finance_by_month.parquet",
    "risk_summary.parquet",
    "joint_confidence.parquet",
    "manifest.json",
}


#: Run from the unpacked wheel: where the engine and its configuration come from, and
#: the default book read from the wheel's scenarios, validated and lowered.
WHEEL_PROBE = """
import engine
from engine.config import Settings
from engine.resources import conf_dir
from engine.run import lower_statistics
from engine.scenario import load_book
print("engine", engine.__file__)
print("conf", conf_dir())
book = load_book("reference")
markets, demand = lower_statistics(book, Settings())
assert demand is not None and demand.finance is not None
print(f"lowered {book.name}: {len(book.sites)} sites, {len(book.facilities)} facilities")
"""


def ncrisk(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_default_run_writes_results_under_the_working_directory(tmp_path: Path) -> None:
    done = ncrisk(["run.n_paths=3000"], tmp_path)
    assert done.returncode == 0, done.stderr
    runs = list((tmp_path / "results" / "reference").iterdir())
    assert len(runs) == 1
    run = runs[0]
    assert {p.name for p in run.iterdir()} == TABLES
    assert not [p for p in run.parent.iterdir() if p.name.startswith(".")]  # no staging left
    assert "IT MW online" in done.stdout and str(run) in done.stdout
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["seed"] == 20261122 and manifest["n_paths"] == 3000
    assert manifest["config"]["scenario"] == "reference"
    assert set(manifest["tables"]) == {p.removesuffix(".parquet") for p in TABLES} - {
        "manifest.json"
    }
    for key in ("versions", "timings_s", "chunks", "threads", "headline", "git_commit"):
        assert key in manifest
    assert set(manifest["timings_s"]) == {"simulate", "compile", "tables"}


def test_run_dir_override_and_table_schemas(tmp_path: Path) -> None:
    target = tmp_path / "my run"
    done = ncrisk(
        [f"hydra.run.dir={target}", "run.n_paths=2000", "run.horizon_months=48"], tmp_path
    )
    assert done.returncode == 0, done.stderr
    capacity = pl.read_parquet(target / "capacity_by_month.parquet")
    assert capacity.schema["scope_type"] == pl.Enum(["total", "operator", "site"])
    assert capacity.schema["month"] == pl.Int32
    for column in (
        "mw_online_mean",
        "mw_online_p5",
        "mw_online_p95",
        "gpus_online_p50",
        "h100e_online_mean",
    ):
        assert capacity.schema[column] == pl.Float64
    # sorted: total, operators, sites; months ascending inside each scope
    assert capacity["scope_type"].to_list()[0] == "total"
    assert capacity.filter(pl.col("scope") == "total")["month"].to_list() == list(range(1, 49))
    assert capacity["scope_type"].to_physical().is_sorted()
    # quantiles are ordered and MW never exceeds the book
    assert (capacity["mw_online_p5"] <= capacity["mw_online_p50"]).all()
    assert (capacity["mw_online_p50"] <= capacity["mw_online_p95"]).all()
    total = capacity.filter(pl.col("scope") == "total")
    assert total["mw_online_p95"].max() <= 400.0
    sites = pl.read_parquet(target / "site_energization.parquet")
    assert sites.height == 8 and sites.schema["p90_energization_month"] == pl.Int32
    assert ((sites["prob_on_time"] >= 0) & (sites["prob_on_time"] <= 1)).all()
    units = pl.read_parquet_metadata(target / "capacity_by_month.parquet")
    assert "MW" in units["units"]


def test_existing_run_directory_is_never_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    done = ncrisk([f"hydra.run.dir={target}", "run.n_paths=1000"], tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "hydra.run.dir" in done.stderr
    assert [p.name for p in target.iterdir()] == ["precious.txt"]


def test_help_is_fast_and_lists_groups(tmp_path: Path) -> None:
    done = ncrisk(["--help"], tmp_path)
    assert done.returncode == 0
    assert "ncrisk -m" in done.stdout and "run: default" in done.stdout
    assert "n_paths:" in done.stdout


def test_wheel_ships_conf_and_scenarios_and_runs_from_anywhere(tmp_path: Path) -> None:
    """Build the wheel, unpack it alone on PYTHONPATH, and use it from an unrelated directory.

    From the unpacked wheel: the CLI finds its configuration (``--help``), rejects a bad
    override with exit status 2 before any work, and the default book loads and lowers
    to the kernels' arrays from the wheel's own scenario and configuration files. The
    kernels themselves are the same source files that every other test runs; running
    them from the wheel would compile all of them again in a cache of their own (over
    ten minutes on a slow 2-core machine), which tests nothing more.
    """
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if build.returncode != 0:
        pytest.fail(f"wheel build failed: {build.stderr[-2000:]}")
    (wheel,) = wheels.glob("*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    assert "engine/_data/conf/config.yaml" in names
    assert "engine/_data/scenarios/reference.yaml" in names
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    probe = subprocess.run(
        [sys.executable, "-c", WHEEL_PROBE],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert f"engine {site}" in probe.stdout and f"conf {site}" in probe.stdout
    assert "lowered reference: 7 sites, 3 facilities" in probe.stdout
    helped = ncrisk(["--help"], elsewhere, env=env)
    assert helped.returncode == 0 and "run: default" in helped.stdout
    refused = ncrisk(["run.n_paths=0"], elsewhere, env=env)
    assert refused.returncode == 2
    assert "run.n_paths" in refused.stderr and "Traceback" not in refused.stderr
    assert not (elsewhere / "results").exists()
    assert (scenarios_dir() / "reference.yaml").read_text() == (
        site / "engine/_data/scenarios/reference.yaml"
    ).read_text()
