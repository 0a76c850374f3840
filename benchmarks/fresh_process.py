"""Measurements that need a fresh Python process: numba start-up and peak memory.

The parent calls :func:`spawn`, which runs this file as a script in a new process
with ``NUMBA_CACHE_DIR`` set, and reads one JSON line back. Two probes:

``startup``
    Import the engine, then call ``compute_tables`` twice: the first call
    compiles the kernels (empty cache) or loads them (warm cache).
``memory``
    Import, warm up on 1,000 paths, reset the peak-RSS counter
    (``/proc/self/clear_refs``, Linux), run ``compute_tables`` on N paths, and
    report the peak RSS of the run alone (``VmHWM``) and of the whole process
    (``getrusage`` max RSS before and after the reset).

``ru_maxrss`` is preserved across ``execve``: a child spawned by a large parent
reports at least the parent's size, so spawn memory probes while the parent is
still small (before it imports the engine).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

__all__ = ["spawn"]

SCENARIO = "reference"
HORIZON = 120


def _max_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _status_mb(key: str) -> float:
    """A memory line of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter of this process; False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def probe(mode: str, n_paths: int, threads: int) -> dict[str, Any]:
    """Run one probe in this process.

    Parameters
    ----------
    mode : {"startup", "memory"}
        Which measurement.
    n_paths : int
        Paths of the measured ``compute_tables`` call.
    threads : int
        Numba threads.

    Returns
    -------
    dict
        Seconds (``*_s``) and megabytes (``*_mb``) measured.
    """
    started = time.perf_counter()
    from engine.config import RunConfig, Settings
    from engine.run import compute_tables
    from engine.scenario import load_book

    book = load_book(SCENARIO)

    def settings(n: int) -> Settings:
        return Settings(
            scenario=SCENARIO, run=RunConfig(n_paths=n, horizon_months=HORIZON, progress=False)
        )

    imported = time.perf_counter()
    facts: dict[str, Any] = {"import_s": imported - started, "chunk_size": RunConfig().chunk_size}
    if mode == "startup":
        compute_tables(book, settings(n_paths), threads=threads)
        first = time.perf_counter()
        compute_tables(book, settings(n_paths), threads=threads)
        facts["first_call_s"] = first - imported
        facts["second_call_s"] = time.perf_counter() - first
        return facts
    compute_tables(book, settings(1_000), threads=threads)  # load compiled code
    facts["rss_before_mb"] = _status_mb("VmRSS")
    peak_before = _max_rss_mb()
    facts["reset"] = _reset_peak()
    run_started = time.perf_counter()
    compute_tables(book, settings(n_paths), threads=threads)
    facts["run_s"] = time.perf_counter() - run_started
    facts["run_peak_mb"] = _status_mb("VmHWM")
    facts["process_peak_mb"] = max(peak_before, _max_rss_mb())
    return facts


def spawn(mode: str, n_paths: int, threads: int, cache_dir: str) -> dict[str, Any]:
    """Run :func:`probe` in a fresh process using numba cache ``cache_dir``.

    Returns
    -------
    dict
        The probe's facts plus ``process_s``, the wall time of the whole process.
    """
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    command = [sys.executable, __file__, mode, str(n_paths), str(threads)]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"probe {mode} {n_paths} failed:\n{done.stderr[-3000:]}")
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    facts["process_s"] = time.perf_counter() - started
    return facts


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
