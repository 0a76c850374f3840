"""Shared cases of the market tests: small books, settings and closed-form helpers.

``market_book`` validates a book with given regions' electricity and generations' market
blocks; ``moment_checks`` and ``pmf_checks`` compare samples with closed forms at
``Z_TOL`` standard errors; the bivariate normal and t helpers give the copulas' joint
tails (Owen 1956; a chi-square mixture integrated with scipy).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from conftest import assert_within, fixed, make_settings, site
from scipy import integrate, special, stats

from engine.config import Settings
from engine.market_config import MarketsConfig, SqueezeConfig
from engine.scenario import Book, parse_book

#: Hours and days of a month of a 365.25-day year (docs: energy and capacity charge per month).
HOURS_PER_MONTH = 8766.0 / 12.0
DAYS_PER_MONTH = 365.25 / 12.0
#: No squeeze regime at all: never enters, starts normal.
NO_REGIME = SqueezeConfig(enter_probability=0.0, exit_probability=0.5, initial="normal")


# ----------------------------------------------------------------------------- helpers


def market_book(
    regions: dict[str, dict[str, Any]],
    generations: dict[str, dict[str, Any]] | None = None,
    sites: list[dict[str, Any]] | None = None,
) -> Book:
    """Validate a book with the given regions' ``electricity`` and generations' ``market``
    blocks (plain data, as in scenarios/reference.yaml); by default one site in the first
    region and generation."""
    generations = generations if generations is not None else {"g1": {}}
    first_region, first_gen = next(iter(regions)), next(iter(generations))
    data = {
        "name": "market-test-book",
        "regions": [
            {"id": rid, "time_to_power": fixed(0.0), "electricity": block}
            for rid, block in regions.items()
        ],
        "gpu_generations": [
            {"id": gid, "it_kw_per_gpu": 2.0, "h100_equivalents": 1.0, "market": block}
            for gid, block in generations.items()
        ],
        "operators": [{"id": "op_a"}, {"id": "op_b"}],
        "sites": sites or [{**site("s"), "region": first_region, "gpu_generation": first_gen}],
    }
    return parse_book(data, "market-test-book")


def market_settings(
    n_paths: int, horizon: int, seed: int, markets: MarketsConfig | None = None
) -> Settings:
    """Test settings (conftest.make_settings) with the given market parameters."""
    return dataclasses.replace(
        make_settings(n_paths, horizon, seed), markets=markets or MarketsConfig()
    )


def moment_checks(sample: np.ndarray, mean: float, var: float, kurtosis: float, what: str) -> None:
    """Sample mean and variance vs closed forms; SEs sqrt(var / n) and
    var sqrt((kurtosis - 1) / n) (kurtosis = mu4 / var^2, not the excess)."""
    n = sample.size
    assert_within(float(sample.mean()), mean, math.sqrt(var / n), f"{what} mean")
    s2 = float(sample.var(ddof=1))
    assert_within(s2, var, var * math.sqrt((kurtosis - 1.0) / n), f"{what} variance")


def pmf_checks(counts: np.ndarray, dist: Any, ks: range, what: str) -> None:
    """Share of paths with count k vs the scipy pmf, binomial SE sqrt(p (1 - p) / n)."""
    n = counts.size
    for k in ks:
        p = float(dist.pmf(k))
        assert_within(float(np.mean(counts == k)), p, math.sqrt(p * (1 - p) / n), f"{what} P(={k})")


def bivariate_normal_equal_cdf(h: float, rho: float) -> float:
    """Phi2(h, h; rho) = Phi(h) - 2 T(h, sqrt((1 - rho)/(1 + rho))) (Owen 1956; h <= 0)."""
    return float(stats.norm.cdf(h) - 2.0 * special.owens_t(h, math.sqrt((1 - rho) / (1 + rho))))


def bivariate_t_joint_upper(q: float, rho: float, nu: float) -> float:
    """P(T1 > q, T2 > q) of a standard bivariate t (rho, nu) = P(T1 < -q, T2 < -q):
    the bivariate normal Phi2(-q s, -q s; rho) mixed over s = sqrt(W / nu), W ~ chi2(nu)."""

    def integrand(w: float) -> float:
        return float(stats.chi2.pdf(w, nu)) * bivariate_normal_equal_cdf(
            -q * math.sqrt(w / nu), rho
        )

    value, _ = integrate.quad(integrand, 0.0, np.inf, epsabs=1e-14, epsrel=1e-11, limit=200)
    return value


def t_upper_tail_dependence(rho: float, nu: float) -> float:
    """lambda_U = 2 t_{nu+1}(-sqrt((nu + 1)(1 - rho)/(1 + rho))) of the Student-t copula."""
    return float(2.0 * stats.t.cdf(-math.sqrt((nu + 1) * (1 - rho) / (1 + rho)), nu + 1))
