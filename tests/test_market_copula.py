"""The factor copula (MODEL.md section 2): Kendall's tau = 2/pi arcsin(rho), standard normal
scores, and the Student-t copula's upper tail dependence against its closed form, at
``Z_TOL`` standard errors and a fixed seed.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from conftest import P_MIN, Z_TOL, assert_within
from market_cases import (
    bivariate_normal_equal_cdf,
    bivariate_t_joint_upper,
    market_book,
    market_settings,
    t_upper_tail_dependence,
)
from scipy import stats

from engine.market_config import CopulaConfig, MarketsConfig
from engine.market_stats import trace_markets

# ----------------------------------------------------------------------------- copula

RHO_REGIONS, NU = 0.5, 4.0


@pytest.fixture(scope="module")
def copula_scores() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Normal scores z of two regions' electricity shocks, pooled over paths and months
    (each month draws fresh shocks, so the pairs are independent), for both copulas."""
    book = market_book({"r1": {}, "r2": {}})
    n, horizon = 20_000, 24
    out = {}
    for family in ("gaussian", "student_t"):
        cop = CopulaConfig(family=family, nu=NU, electricity_between_regions=RHO_REGIONS)
        tr = trace_markets(book, market_settings(n, horizon, 107, MarketsConfig(copula=cop)))
        out[family] = (
            tr["z:electricity:r1"][:, 1:].ravel(),
            tr["z:electricity:r2"][:, 1:].ravel(),
        )
    return out


@pytest.mark.parametrize("family", ["gaussian", "student_t"])
def test_copula_kendall_tau_is_two_over_pi_arcsin_rho(
    family: str, copula_scores: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    """Both elliptical copulas: tau = 2/pi arcsin(rho) (Lindskog, McNeil, Schmock 2003).
    tau-hat is unbiased; SE from 48 independent batches of 10,000 pairs."""
    z1, z2 = copula_scores[family]
    batches = 48
    taus = [
        stats.kendalltau(a, b).statistic
        for a, b in zip(np.array_split(z1, batches), np.array_split(z2, batches), strict=True)
    ]
    se = float(np.std(taus, ddof=1)) / math.sqrt(batches)
    expected = 2.0 / math.pi * math.asin(RHO_REGIONS)
    assert_within(float(np.mean(taus)), expected, se, f"{family} Kendall tau")


@pytest.mark.parametrize("family", ["gaussian", "student_t"])
def test_copula_scores_are_standard_normal(
    family: str, copula_scores: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    """Every factor's z is N(0, 1) whatever the copula (the t copula maps T to
    Phi^-1(F_nu(T))): KS test against scipy's normal on 480,000 scores, at which the raw
    t_4 or a map with nu = 6 would be rejected (KS distance 0.037, 0.012)."""
    for z in copula_scores[family]:
        assert stats.kstest(z, stats.norm.cdf).pvalue > P_MIN


def test_t_copula_upper_tail_dependence() -> None:
    """lambda(u) = P(U1 > u, U2 > u)/(1 - u), U = Phi(z). Exact at u = 0.99 by scipy (the
    bivariate t integrated over its chi-square mixing with Owen's T; Phi2 for the
    Gaussian), MC within the binomial SE sqrt(p (1 - p)/N)/(1 - u) for both copulas.
    The exact lambda(u) tends to the closed form lambda_U = 2 t_{nu+1}(-sqrt((nu+1)(1-rho)
    /(1+rho))) (0.2532 here) and the Gaussian copula's estimate is clearly lower (its
    lambda_U = 0)."""
    book = market_book({"r1": {}, "r2": {}})
    n, horizon, u = 20_000, 60, 0.99
    limit = t_upper_tail_dependence(RHO_REGIONS, NU)
    q_t = float(stats.t.isf(1 - u, NU))
    exact = {
        "student_t": bivariate_t_joint_upper(q_t, RHO_REGIONS, NU),
        "gaussian": bivariate_normal_equal_cdf(float(stats.norm.ppf(1 - u)), RHO_REGIONS),
    }
    lam_exact = {k: v / (1 - u) for k, v in exact.items()}
    # the helpers against scipy's own (numerical) multivariate CDFs
    cov = [[1.0, RHO_REGIONS], [RHO_REGIONS, 1.0]]
    zq = -float(stats.norm.isf(1 - u))
    assert math.isclose(
        exact["gaussian"], stats.multivariate_normal([0, 0], cov).cdf([zq, zq]), rel_tol=1e-6
    )
    mt = stats.multivariate_t([0, 0], cov, df=NU, seed=1)
    assert math.isclose(exact["student_t"], mt.cdf([-q_t, -q_t], maxpts=400_000), rel_tol=1e-3)
    lams = [
        bivariate_t_joint_upper(float(stats.t.isf(1 - v, NU)), RHO_REGIONS, NU) / (1 - v)
        for v in (0.99, 0.999, 0.9999, 1 - 1e-7)
    ]
    assert all(a > b > limit for a, b in itertools.pairwise(lams))
    assert abs(lams[-1] - limit) < 1e-3 and abs(lam_exact["student_t"] - limit) < 0.05
    estimate, se = {}, {}
    for family in ("gaussian", "student_t"):
        cop = CopulaConfig(family=family, nu=NU, electricity_between_regions=RHO_REGIONS)
        tr = trace_markets(book, market_settings(n, horizon, 108, MarketsConfig(copula=cop)))
        z1 = tr["z:electricity:r1"][:, 1:].ravel()
        z2 = tr["z:electricity:r2"][:, 1:].ravel()
        zu = float(stats.norm.ppf(u))
        p = exact[family]
        estimate[family] = float(np.mean((z1 > zu) & (z2 > zu))) / (1 - u)
        se[family] = math.sqrt(p * (1 - p) / z1.size) / (1 - u)
        assert_within(estimate[family], lam_exact[family], se[family], f"{family} lambda({u})")
    gap = estimate["student_t"] - estimate["gaussian"]
    assert gap > Z_TOL * math.hypot(se["student_t"], se["gaussian"])
