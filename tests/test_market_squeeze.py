"""The copper squeeze's stretch of equipment lead times: the closed form in a permanent
squeeze, only equipment stretched in the capacity model, and the capacity kernel's replay
of the market kernel's squeeze path.
"""

from __future__ import annotations

import math

import numpy as np
from conftest import assert_within, capacity_config, energization, fixed, item, site
from market_cases import market_book, market_settings

from engine.kernels.factors import stretched_duration
from engine.market_config import CopperConfig, MarketsConfig, SqueezeConfig
from engine.market_stats import trace_markets
from engine.rng import stream_id

# ----------------------------------------------------------------------------- equipment


def test_stretched_duration_in_a_permanent_squeeze() -> None:
    """Always squeezed (start in squeeze, P(exit) = 0): the work proceeds at 1/f of its pace,
    so it takes work x f months; never squeezed or f = 1: exactly work."""
    rng = np.empty((4, 1), dtype=np.uint64)
    stream = np.uint64(stream_id("market", "copper_squeeze"))
    for path in range(20):
        for work, factor in ((7.0, 2.0), (5.3, 1.5), (0.4, 3.0)):
            args = (rng, 0, np.uint64(9), np.uint64(path), stream)
            always = stretched_duration(work, *args, 1, 0.3, 0.0, factor)
            assert math.isclose(always, work * factor, rel_tol=1e-12)
            assert stretched_duration(work, *args, 0, 0.0, 0.4, factor) == work
            assert stretched_duration(work, *args, 2, 0.3, 0.2, 1.0) == work


def test_squeeze_stretches_only_equipment_in_the_capacity_model() -> None:
    """Permanent squeeze, no overrun noise (median M = 1.25, sigma 0): a site gated by a
    fixed-D equipment item energizes at D M f; one gated by a construction item at D M."""
    d, m, f = 6.0, 1.25, 1.5
    book = market_book(
        {"r1": {}},
        sites=[
            {
                **site("eq", schedule=[item("xfmr", "equipment", fixed(d))]),
                "region": "r1",
                "gpu_generation": "g1",
            },
            {
                **site("co", schedule=[item("hall", "construction", fixed(d))]),
                "region": "r1",
                "gpu_generation": "g1",
            },
        ],
    )
    sq = SqueezeConfig(
        enter_probability=0.0, exit_probability=0.0, initial="squeeze", equipment_lead_factor=f
    )
    e = energization(
        book,
        capacity_config(overrun_median=m),
        1000,
        seed=12,
        markets=MarketsConfig(copper=CopperConfig(squeeze=sq)),
    )
    np.testing.assert_allclose(e[:, 0], d * m * f, rtol=1e-12)
    np.testing.assert_allclose(e[:, 1], d * m, rtol=1e-12)


def test_equipment_stretch_replays_the_market_squeeze_path() -> None:
    """Capacity and market models see one squeeze history per path: the energization time of
    a fixed-D equipment item equals the time to accumulate D months of work at pace
    1/f in the squeeze months and 1 otherwise of the traced regime (computed here from the
    market trace). Closed forms of the stationary chain (pi = e/(e+x)): P(E = D) = P(no
    squeeze in months 1..D) = (1 - pi)(1 - e)^{D-1}; P(E = D f) = pi (1 - x)^{D f - 1}."""
    d, f, enter, leave = 6.0, 1.5, 0.2, 0.3
    n, horizon, seed = 20_000, 12, 13
    book = market_book(
        {"r1": {}},
        sites=[
            {
                **site("eq", schedule=[item("xfmr", "equipment", fixed(d))]),
                "region": "r1",
                "gpu_generation": "g1",
            }
        ],
    )
    sq = SqueezeConfig(
        enter_probability=enter,
        exit_probability=leave,
        initial="stationary",
        equipment_lead_factor=f,
    )
    markets = MarketsConfig(copper=CopperConfig(squeeze=sq))
    e = energization(book, capacity_config(), n, seed, markets=markets)[:, 0]
    squeezed = trace_markets(book, market_settings(n, horizon, seed, markets))["copper_squeeze"]
    pace = np.where(squeezed[:, 1:] == 1, 1.0 / f, 1.0)  # month m + 1 at column m
    done = np.cumsum(pace, axis=1)
    month = np.argmax(done >= d, axis=1)  # the month in which the work completes
    before = np.where(month > 0, done[np.arange(n), month - 1], 0.0)
    by_hand = month + (d - before) / pace[np.arange(n), month]
    assert np.all(done[:, -1] >= d)
    np.testing.assert_allclose(e, by_hand, rtol=1e-12)
    pi = enter / (enter + leave)
    for value, p in (
        (d, (1 - pi) * (1 - enter) ** (d - 1)),
        (d * f, pi * (1 - leave) ** (d * f - 1)),
    ):
        share = float(np.mean(np.isclose(e, value, rtol=1e-12)))
        assert_within(share, p, math.sqrt(p * (1 - p) / n), f"P(E = {value})")
