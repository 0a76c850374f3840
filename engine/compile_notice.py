"""Tell the user when a run compiles the kernels, and how long it took.

The first run on a machine compiles every numba kernel (about 3 minutes on 2
cores, docs/architecture.md "Compilation time"); later runs load them from
numba's on-disk cache in about a second. Without a word, the first run looks
hung. :func:`watch_compilation` listens to numba's ``numba:compile`` event,
which numba raises only when it really compiles (not when it loads a kernel
from the cache), logs one line when the first compilation starts and one when
the run's compilations are done, and adds up their wall time for the manifest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from numba.core import event

__all__ = ["CompileClock", "watch_compilation"]

log = logging.getLogger(__name__)

#: What the first compilation's log line says.
NOTICE = (
    "compiling numba kernels for this machine (a first run compiles them all: about "
    "3 minutes on 2 cores; later runs load them from numba's cache)"
)


@dataclass
class CompileClock:
    """Wall time spent compiling during a run.

    Attributes
    ----------
    seconds : float
        Wall time of the outermost compilations (a kernel with everything it
        calls), s; a compilation that fails counts too.
    kernels : int
        Outermost compilations.
    """

    seconds: float = 0.0
    kernels: int = 0


class _Listener(event.Listener):
    """Times the outermost ``numba:compile`` events (nested ones are callees)."""

    def __init__(self, clock: CompileClock, announce: bool) -> None:
        self.clock = clock
        self.announce = announce
        self.depth = 0
        self.started = 0.0
        # numba compiles under its global lock, but the events of one compilation
        # may come from a block's worker thread: guard the counters anyway
        self.lock = threading.Lock()

    def on_start(self, ev: event.Event) -> None:
        with self.lock:
            if self.depth == 0:
                if self.clock.kernels == 0 and self.announce:
                    log.info(NOTICE)
                self.started = time.perf_counter()
            self.depth += 1

    def on_end(self, ev: event.Event) -> None:
        with self.lock:
            if self.depth == 0:  # a compilation already under way when installed
                return
            self.depth -= 1
            if self.depth == 0:
                self.clock.seconds += time.perf_counter() - self.started
                self.clock.kernels += 1


@contextmanager
def watch_compilation(announce: bool) -> Iterator[CompileClock]:
    """Time numba compilations inside the ``with`` block; log the first and the total.

    Parameters
    ----------
    announce : bool
        Log a line when the first compilation starts and one with the total
        compilation time (s) when the block ends (the run's ``run.progress``).

    Yields
    ------
    CompileClock
        Filled in as kernels compile; final when the block ends.
    """
    clock = CompileClock()
    listener = _Listener(clock, announce)
    with event.install_listener("numba:compile", listener):
        yield clock
    if announce and clock.kernels:
        log.info(
            "compiled %d kernels in %.0f s (cached for later runs)", clock.kernels, clock.seconds
        )
