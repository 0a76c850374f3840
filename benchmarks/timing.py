"""Timing helpers of the benchmarks: best-of-N wall times and waiting for idle cores.

On a 2-core machine another process's load makes a 2-thread timing meaningless,
so :class:`Stopwatch` also measures the CPU other processes took while timing
(``/proc/stat``), and :func:`wait_for_idle` waits for the machine to be quiet.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

__all__ = ["Stopwatch", "wait_for_idle"]


def _busy_cpu_s() -> float:
    """CPU seconds all processes of the machine have used since boot (``/proc/stat``)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class Stopwatch:
    """Best-of-N wall times, and how much CPU other processes took meanwhile.

    Other processes competing for the 2 cores make 2-thread timings meaningless;
    ``other_cores`` (average cores used by others while timing) says how much.
    """

    def __init__(self) -> None:
        self.wall_s = 0.0
        self.other_cpu_s = 0.0

    def best(self, call: Callable[[], object], repeats: int) -> float:
        """Best wall time in seconds of ``repeats`` calls of ``call``."""
        best = float("inf")
        for _ in range(repeats):
            busy, own = _busy_cpu_s(), time.process_time()
            started = time.perf_counter()
            call()
            wall = time.perf_counter() - started
            best = min(best, wall)
            self.wall_s += wall
            self.other_cpu_s += (_busy_cpu_s() - busy) - (time.process_time() - own)
        return best

    @property
    def other_cores(self) -> float:
        """Average number of cores other processes used while timing."""
        return max(0.0, self.other_cpu_s) / max(self.wall_s, 1e-9)


def wait_for_idle(max_wait_s: float, idle_below: float = 0.25) -> float:
    """Wait until other processes use fewer than ``idle_below`` cores (1 s samples).

    Parameters
    ----------
    max_wait_s : float
        Give up after this many seconds.
    idle_below : float
        Cores used by others that count as idle.

    Returns
    -------
    float
        Cores used by others in the last 1-second sample.
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        busy, own = _busy_cpu_s(), time.process_time()
        time.sleep(1.0)
        others = (_busy_cpu_s() - busy) - (time.process_time() - own)
        if others < idle_below or time.monotonic() >= deadline:
            return others
