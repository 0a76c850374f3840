"""``ncrisk``: the Hydra entry point, kept thin.

``ncrisk`` with no arguments runs the default scenario. Arguments are Hydra
overrides (``run.n_paths=1000000 scenario=NAME``); ``-m`` sweeps through Hydra's
joblib launcher. Before Hydra starts, every override and every run a sweep
describes is validated, so bad input is one message and exit status 2.
Numba is imported only when a run starts, so ``--help`` and ``--cfg`` are fast.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from engine.config import register_schemas
from engine.errors import InputError
from engine.resources import conf_dir, scenario_label

__all__ = ["main"]

log = logging.getLogger("engine")

_INFO_FLAGS = (
    "--help",
    "-h",
    "--hydra-help",
    "--version",
    "--cfg",
    "-c",
    "--info",
    "-i",
    "--shell-completion",
    "-sc",
    "--resolve",
    "--package",
    "-p",
)
_FAILED_DIR = ".failed"

register_schemas()
if not OmegaConf.has_resolver("ncrisk.scenario_name"):
    OmegaConf.register_new_resolver("ncrisk.scenario_name", scenario_label)


def _report(exc: InputError) -> None:
    print(f"ncrisk: {exc.message()}", file=sys.stderr)


def _job_threads(requested: int, hc: DictConfig) -> int:
    """Numba threads of one job so that jobs x threads never exceeds the cores."""
    from engine.simulate import available_cores

    cores = available_cores()
    threads = min(requested or cores, cores)
    if hc.mode == RunMode.MULTIRUN:
        n_jobs = int(hc.launcher.get("n_jobs", 1) or 1)
        n_jobs = cores + 1 + n_jobs if n_jobs < 0 else n_jobs  # joblib: -1 = all cores
        threads = min(threads, max(1, cores // max(1, min(n_jobs, cores))))
    return threads


def _task(cfg: DictConfig) -> None:
    """Run one job (called by Hydra in run mode and by each sweep job)."""
    from engine.overrides import to_settings
    from engine.results import remove_if_empty
    from engine.run import run_scenario
    from engine.summary import format_summary

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    multirun = hc.mode == RunMode.MULTIRUN
    job = {"job_num": int(hc.job.num) if multirun else None, "overrides": overrides}
    try:
        settings = to_settings(cfg, overrides, dict(hc.runtime.choices))
        threads = _job_threads(settings.run.threads, hc)
        resolved = OmegaConf.to_container(cfg, resolve=True)
        output = run_scenario(
            settings,
            run_dir,
            threads=threads,
            resolved_config=resolved,
            extra=job,  # type: ignore[arg-type]
        )
    except Exception as exc:  # every failure leaves no results behind
        remove_if_empty(run_dir, run_dir.parent if multirun else Path.cwd())
        if multirun:
            failed = Path(hc.sweep.dir) / _FAILED_DIR
            failed.mkdir(parents=True, exist_ok=True)
            reason = exc.message() if isinstance(exc, InputError) else traceback.format_exc()
            record = {**job, "error": reason}
            (failed / f"{hc.job.num}.json").write_text(json.dumps(record, indent=2))
            log.error("job %s failed: %s", hc.job.num, reason.splitlines()[-1])
            return
        if isinstance(exc, InputError):
            _report(exc)
            sys.exit(2)
        raise
    print(format_summary(output.tables, settings, output.book))
    print(f"\nresults: {run_dir}")


@hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")
def _hydra_app(cfg: DictConfig) -> None:
    _task(cfg)


def main(argv: list[str] | None = None) -> None:
    """Console entry point of ``ncrisk``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).
    """
    from engine.overrides import validate_command_line

    args = list(sys.argv[1:] if argv is None else argv)
    multirun = "-m" in args or "--multirun" in args
    informational = any(a.split("=", 1)[0] in _INFO_FLAGS for a in args)
    overrides = [a for a in args if not a.startswith("-")]
    sweep_dir: Path | None = None
    if not informational:
        try:
            jobs = validate_command_line(overrides, multirun)
        except InputError as exc:
            _report(exc)
            sys.exit(2)
        if multirun:
            given = [o for o in overrides if o.startswith("hydra.sweep.dir=")]
            if given:
                sweep_dir = Path(given[-1].split("=", 1)[1].strip("'\""))
            else:
                root = jobs[0].paths.results_dir
                stamp = dt.datetime.now().strftime("%Y-%m-%dT%H-%M-%S_%f")
                sweep_dir = Path(root) / "multirun" / stamp
                args.append(f"hydra.sweep.dir='{sweep_dir}'")
    sys.argv = [sys.argv[0], *args]
    code: int | str | None = 0
    try:
        _hydra_app()
    except SystemExit as exc:
        code = exc.code
    if sweep_dir is not None and sweep_dir.is_dir():
        from engine.sweeps import collect, format_sweep

        summary = collect(sweep_dir)
        print(format_sweep(summary, sweep_dir))
        if code in (0, None) and (summary["status"] != "ok").any():
            code = 1
    sys.exit(code)
