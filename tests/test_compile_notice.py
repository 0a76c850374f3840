"""The first run's compilation is announced and timed; kernels loaded or compiled before are not."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from numba import njit

from engine.compile_notice import NOTICE, watch_compilation


def _fresh_kernels() -> tuple[Callable[..., float], Callable[..., float]]:
    """A kernel and its callee, new dispatchers each call (numba has compiled neither)."""

    @njit
    def spread(x: np.ndarray) -> float:
        return float(x.max() - x.min())

    @njit
    def twice_spread(x: np.ndarray) -> float:
        return 2.0 * spread(x)

    return twice_spread, spread


def test_a_compilation_is_announced_once_and_timed(caplog: pytest.LogCaptureFixture) -> None:
    kernel, _ = _fresh_kernels()
    x = np.array([1.0, 4.0, 2.0])
    with caplog.at_level(logging.INFO, logger="engine.compile_notice"):
        with watch_compilation(announce=True) as clock:
            assert kernel(x) == 6.0
            assert kernel(x) == 6.0  # compiled already: no event
            other, _ = _fresh_kernels()
            assert other(x) == 6.0
    # the callee compiles inside its caller: two outermost compilations, not four
    assert clock.kernels == 2
    assert clock.seconds > 0.0
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count(NOTICE) == 1
    assert messages[-1].startswith("compiled 2 kernels in ")


def test_nothing_compiled_nothing_said(caplog: pytest.LogCaptureFixture) -> None:
    kernel, _ = _fresh_kernels()
    x = np.array([1.0, 4.0, 2.0])
    kernel(x)
    with caplog.at_level(logging.INFO, logger="engine.compile_notice"):
        with watch_compilation(announce=True) as clock:
            assert kernel(x) == 6.0
    assert (clock.kernels, clock.seconds) == (0, 0.0)
    assert not caplog.records


def test_silent_without_progress(caplog: pytest.LogCaptureFixture) -> None:
    kernel, _ = _fresh_kernels()
    with caplog.at_level(logging.INFO, logger="engine.compile_notice"):
        with watch_compilation(announce=False) as clock:
            kernel(np.zeros(2))
    assert clock.kernels == 1
    assert not caplog.records


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_kernel_loaded_from_the_cache_is_not_counted(tmp_path: Path) -> None:
    source = tmp_path / "cached_kernel.py"
    source.write_text(
        "from numba import njit\n\n\n@njit(cache=True)\ndef plus_one(x):\n    return x + 1.0\n"
    )
    with watch_compilation(announce=False) as first:
        assert _load(source, "cached_kernel_first").plus_one(1.0) == 2.0
    again = _load(source, "cached_kernel_again")  # a new dispatcher: numba's disk cache
    with watch_compilation(announce=False) as second:
        assert again.plus_one(1.0) == 2.0
    assert first.kernels == 1
    assert second.kernels == 0 and sum(again.plus_one.stats.cache_hits.values()) == 1
