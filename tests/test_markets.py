"""Market risk factors (MODEL.md section 2) against closed forms and scipy.

Electricity OU moments and autocorrelation, the Schwartz-Smith copper log-price, the
lognormal capacity charge, Poisson jump counts, the copulas' Kendall tau and tail
dependence, the Markov squeeze regime, binomial curtailment counts, the squeeze's stretch
of equipment lead times, the fire-sale impact, central paths and common random numbers,
the market tables against the traced per-path values, correlation validation and
reproducibility across threads and chunks. Every Monte Carlo tolerance is ``Z_TOL``
standard errors at a fixed seed; the per-path channels come from
:func:`engine.market_stats.trace_markets`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import (
    P_MIN,
    Z_TOL,
    assert_within,
    capacity_config,
    energization,
    energization_months,
    fixed,
    item,
    lognormal,
    make_settings,
    site,
)
from polars.testing import assert_frame_equal
from scipy import integrate, special, stats
from test_cli import ncrisk

from engine.config import Settings
from engine.errors import InputError
from engine.kernels.factors import stretched_duration
from engine.market_arrays import lower_markets
from engine.market_bins import central_paths
from engine.market_config import (
    CopperConfig,
    CopulaConfig,
    DemandConfig,
    GpuMarketConfig,
    MarketsConfig,
    MarketSwitch,
    SqueezeConfig,
)
from engine.market_stats import SITE_BINS, trace_markets
from engine.rng import stream_id
from engine.run import compute_tables
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


# ----------------------------------------------------------------------------- electricity


def test_electricity_ou_has_the_exact_discretisation_moments() -> None:
    """X_t = ln E_t - ln price (no spikes, no seasonality) is the exact monthly OU step
    X_t = a X_{t-1} + b z, X_0 = 0, a = exp(-kappa/12), b^2 = sigma^2 (1 - a^2)/(2 kappa):
    E X_t = 0, Var X_t = sigma^2/(2 kappa) (1 - a^{2t}) and
    corr(X_t, X_{t+k}) = a^k sqrt(Var X_t / Var X_{t+k}). SEs: mean sqrt(V/n), variance
    V sqrt(2/(n-1)) (Gaussian), correlation (1 - r^2)/sqrt(n)."""
    kappa, sigma, price = 2.0, 0.6, 40.0
    book = market_book(
        {
            "r1": {
                "price_usd_per_mwh": price,
                "kappa_per_year": kappa,
                "sigma": sigma,
                "spike_rate_per_year": 0.0,
            }
        }
    )
    n, horizon = 50_000, 30
    x = trace_markets(book, market_settings(n, horizon, seed=101))["r1:log_energy"]
    x = x - math.log(price)
    a = math.exp(-kappa / 12.0)

    def var(t: int) -> float:
        return sigma**2 / (2.0 * kappa) * (1.0 - a ** (2 * t))

    for t in (1, 3, 24):
        v = var(t)
        moment_checks(x[:, t], 0.0, v, 3.0, f"X_{t}")
    t = 6
    for k in (1, 3, 6, 12):
        rho = a**k * math.sqrt(var(t) / var(t + k))
        r = float(np.corrcoef(x[:, t], x[:, t + k])[0, 1])
        assert_within(r, rho, (1.0 - rho**2) / math.sqrt(n), f"corr(X_{t}, X_{t + k})")


def test_capacity_charge_steps_yearly_by_lognormal_factors() -> None:
    """C in year y (months 12y+1..12y+12) is C0 exp(y mu + sigma sqrt(y) Z): C0 exactly in
    year 0, constant within a year, and lognormal(s = sigma sqrt(y), scale C0 e^{y mu}) with
    E = C0 exp(y mu + y sigma^2/2); mean, variance (SE from the lognormal kurtosis) and the
    CDF at five scipy quantiles (binomial SE)."""
    c0, mu, sigma = 300.0, 0.05, 0.3
    book = market_book(
        {
            "r1": {
                "capacity_charge_usd_per_mw_day": c0,
                "capacity_charge_drift": mu,
                "capacity_charge_sigma": sigma,
                "spike_rate_per_year": 0.0,
            }
        }
    )
    n, horizon = 50_000, 48
    charge = trace_markets(book, market_settings(n, horizon, seed=102))["r1:capacity_charge"]
    assert np.all(charge[:, 1:13] == c0)
    for y in range(horizon // 12):
        year = charge[:, 12 * y + 1 : 12 * y + 13]
        assert np.all(year == year[:, :1]), f"charge changes inside year {y}"
    for y in (1, 2, 3):
        c = charge[:, 12 * y + 1]
        dist = stats.lognorm(sigma * math.sqrt(y), scale=c0 * math.exp(y * mu))
        mean, var, _, excess = (float(v) for v in dist.stats(moments="mvsk"))
        assert math.isclose(mean, c0 * math.exp(y * mu + y * sigma**2 / 2.0), rel_tol=1e-12)
        moment_checks(c, mean, var, excess + 3.0, f"capacity charge year {y}")
        for q in (0.05, 0.25, 0.5, 0.75, 0.95):
            x = float(dist.ppf(q))
            se = math.sqrt(q * (1 - q) / n)
            assert_within(float(np.mean(c <= x)), q, se, f"P(C_{y} <= {x:.1f})")


def test_spike_counts_are_poisson() -> None:
    """Spikes over T months ~ Poisson(rate T/12) (scipy): mean (SE sqrt(m/n)), variance
    (Poisson kurtosis 3 + 1/m) and P(N = k) for k = 0..8; spikes per month Poisson(rate/12)."""
    rate, horizon, n = 4.0, 24, 40_000
    book = market_book({"r1": {"spike_rate_per_year": rate}})
    spikes = trace_markets(book, market_settings(n, horizon, seed=103))["r1:spikes"][:, 1:]
    m = rate * horizon / 12.0
    counts = spikes.sum(axis=1)
    moment_checks(counts, m, m, 3.0 + 1.0 / m, "spikes over T")
    pmf_checks(counts, stats.poisson(m), range(9), "spikes over T")
    pmf_checks(spikes.ravel(), stats.poisson(rate / 12.0), range(3), "spikes per month")


# ----------------------------------------------------------------------------- copper


def test_copper_log_price_has_schwartz_smith_moments() -> None:
    """No jumps, no squeeze: ln S_t = chi_t + xi_t is Gaussian with (t in months, tau = t/12 years)
    E = chi0 e^{-kappa tau} + xi0 + mu tau, xi0 = ln S0 - chi0, and
    Var = sigma_c^2 (1 - e^{-2 kappa tau})/(2 kappa) + sigma_l^2 tau
          + 2 rho sigma_c sigma_l (1 - e^{-kappa tau})/kappa
    (continuous-time Schwartz-Smith 2000, sampled monthly). SEs: sqrt(V/n), V sqrt(2/(n-1))."""
    kappa, s_c, s_l, rho, mu, chi0, spot = 1.5, 0.3, 0.15, 0.5, 0.05, 0.09, 12_500.0
    copper = CopperConfig(
        spot_usd_per_t=spot,
        short_term_start=chi0,
        short_kappa_per_year=kappa,
        short_sigma=s_c,
        long_drift_per_year=mu,
        long_sigma=s_l,
        short_long_correlation=rho,
        jump_rate_per_year=0.0,
        squeeze=NO_REGIME,
    )
    n, horizon = 50_000, 36
    book = market_book({"r1": {}})
    log_s = trace_markets(book, market_settings(n, horizon, 104, MarketsConfig(copper=copper)))[
        "copper_log_price"
    ]
    for t in (1, 6, 36):
        tau = t / 12.0
        mean = chi0 * math.exp(-kappa * tau) + math.log(spot) - chi0 + mu * tau
        var = (
            s_c**2 * (1 - math.exp(-2 * kappa * tau)) / (2 * kappa)
            + s_l**2 * tau
            + 2 * rho * s_c * s_l * (1 - math.exp(-kappa * tau)) / kappa
        )
        moment_checks(log_s[:, t], mean, var, 3.0, f"ln S_{t}")


def test_copper_jump_counts_are_poisson() -> None:
    """Copper jumps over T months ~ Poisson(rate T/12) (scipy): mean, variance and P(N = k),
    k = 0..3 and 6, as in the spike test."""
    rate, horizon, n = 1.5, 24, 40_000
    copper = CopperConfig(jump_rate_per_year=rate, squeeze=NO_REGIME)
    tr = trace_markets(
        market_book({"r1": {}}), market_settings(n, horizon, 105, MarketsConfig(copper=copper))
    )
    counts = tr["copper_jumps"][:, 1:].sum(axis=1)
    m = rate * horizon / 12.0
    moment_checks(counts, m, m, 3.0 + 1.0 / m, "copper jumps over T")
    pmf_checks(counts, stats.poisson(m), range(4), "copper jumps over T")
    pmf_checks(counts, stats.poisson(m), range(6, 7), "copper jumps over T")


def test_squeeze_regime_follows_its_markov_chain() -> None:
    """Two-state chain, P(enter) = e, P(exit) = x, pi = e/(e + x).
    Started stationary: P(squeeze at t) = pi for every t (one month per path, so the
    paths are independent Bernoulli(pi); binomial SE). Started normal:
    P(squeeze at t) = pi (1 - (1 - e - x)^t). The copper log-price carries the premium:
    E[ln S_t | squeeze] - E[ln S_t | normal] = log_premium (regime and prices use separate
    streams; SE from the two sample variances)."""
    enter, leave, premium = 0.05, 0.15, 0.3
    pi = enter / (enter + leave)
    n, horizon = 40_000, 24
    book = market_book({"r1": {}})

    def squeeze(initial: str) -> tuple[np.ndarray, np.ndarray]:
        sq = SqueezeConfig(
            enter_probability=enter, exit_probability=leave, initial=initial, log_premium=premium
        )
        markets = MarketsConfig(copper=CopperConfig(squeeze=sq))
        tr = trace_markets(book, market_settings(n, horizon, 106, markets))
        return tr["copper_squeeze"], tr["copper_log_price"]

    s, log_s = squeeze("stationary")
    se = math.sqrt(pi * (1 - pi) / n)
    one_month = s[np.arange(n), 1 + np.arange(n) % horizon]
    assert_within(float(one_month.mean()), pi, se, "stationary share, one month per path")
    for t in (1, horizon):
        assert_within(float(s[:, t].mean()), pi, se, f"stationary P(squeeze at {t})")
    t = 12
    on, off = log_s[s[:, t] == 1, t], log_s[s[:, t] == 0, t]
    se_diff = math.sqrt(on.var(ddof=1) / on.size + off.var(ddof=1) / off.size)
    assert_within(float(on.mean() - off.mean()), premium, se_diff, "squeeze log premium")
    s, _ = squeeze("normal")
    for t in (1, 2, 6, 12, 24):
        p = pi * (1.0 - (1.0 - enter - leave) ** t)
        assert_within(float(s[:, t].mean()), p, math.sqrt(p * (1 - p) / n), f"P(squeeze at {t})")


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


# ----------------------------------------------------------------------------- curtailment


def test_curtailed_months_are_binomial_and_regions_independent() -> None:
    """Curtailed months over T per region ~ Binomial(T, p) (scipy): mean, variance (binomial
    kurtosis) and P(N = k); events of two regions in one month: P = p1 p2 (binomial SE
    over path-months, which are independent)."""
    p1, p2, horizon, n = 0.1, 0.3, 24, 40_000
    book = market_book(
        {
            "r1": {"curtailment_probability": p1, "curtailment_share": 0.2},
            "r2": {"curtailment_probability": p2, "curtailment_share": 0.5},
        }
    )
    tr = trace_markets(book, market_settings(n, horizon, 109))
    for rid, p in (("r1", p1), ("r2", p2)):
        counts = tr[f"{rid}:curtailed"][:, 1:].sum(axis=1)
        dist = stats.binom(horizon, p)
        mean, var, _, excess = (float(v) for v in dist.stats(moments="mvsk"))
        moment_checks(counts, mean, var, excess + 3.0, f"{rid} curtailed months")
        pmf_checks(counts, dist, range(int(mean) - 2, int(mean) + 3), f"{rid} curtailed months")
    both = (tr["r1:curtailed"][:, 1:] * tr["r2:curtailed"][:, 1:]).ravel()
    p = p1 * p2
    assert_within(float(both.mean()), p, math.sqrt(p * (1 - p) / both.size), "P(both curtailed)")


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


# ----------------------------------------------------------------------------- GPU market


def test_fire_sale_impact_by_hand() -> None:
    """Deterministic market (GPU and demand off): ln V_t = ln new + (age0 + t/12) ln(1 - d)
    + ln(1 - I_t), I_t = lambda/B sum_j U_j 2^{-(t - m_j)/h} over dumps at months m_j <= t."""
    new, age0, decay, lam, base, h = 30_000.0, 1.0, 0.25, 0.5, 1e6, 2.0
    dumps = [(3, 100_000.0), (5, 40_000.0)]
    book = market_book(
        {"r1": {}},
        {
            "g1": {
                "new_price_usd": new,
                "age_at_start_years": age0,
                "residual_decay_per_year": decay,
                "demand_loading": 0.3,
                "fire_sale": {
                    "impact_lambda": lam,
                    "half_life_months": h,
                    "installed_base_units": base,
                    "dumped_units": [{"month": m, "units": u} for m, u in dumps],
                },
            }
        },
    )
    markets = MarketsConfig(demand=DemandConfig(enabled=False), gpu=GpuMarketConfig(enabled=False))
    horizon = 10
    resale = trace_markets(book, market_settings(16, horizon, 14, markets))["g1:log_resale"]
    for t in range(1, horizon + 1):
        impact = sum(lam * u / base * 2.0 ** (-(t - m) / h) for m, u in dumps if m <= t)
        expected = math.log(new) + (age0 + t / 12.0) * math.log(1 - decay) + math.log(1 - impact)
        np.testing.assert_allclose(resale[:, t], expected, rtol=1e-12, err_msg=f"month {t}")


# ----------------------------------------------------------------------------- switches


def switched_off_book() -> Book:
    """A book with seasonality, a PPA, a drifting capacity charge, curtailment and a GPU
    successor, so that every term of the central path is exercised."""
    season = [0.1 * math.sin(k) for k in range(12)]
    return market_book(
        {
            "r1": {
                "price_usd_per_mwh": 45.0,
                "seasonality": season,
                "ppa_share": 0.3,
                "ppa_price_usd_per_mwh": 60.0,
                "ppa_escalator_per_year": 0.03,
                "adder_usd_per_mwh": 20.0,
                "capacity_charge_usd_per_mw_day": 200.0,
                "capacity_charge_drift": 0.1,
                "capacity_charge_sigma": 0.3,
                "curtailment_probability": 0.2,
                "curtailment_share": 0.3,
            }
        },
        {
            "g1": {
                "rent_usd_per_gpu_hour": 2.5,
                "rent_drift_per_year": -0.2,
                "demand_loading": 0.2,
                "new_price_usd": 40_000.0,
                "age_at_start_years": 0.5,
                "residual_decay_per_year": 0.2,
                "successor_launch_min": 6,
                "successor_launch_max": 10,
                "successor_step_down": 0.25,
            }
        },
    )


def test_markets_off_every_path_is_the_central_path() -> None:
    """Every market disabled: all paths are equal (the copula scores are still drawn, and
    ignored), no events, and each channel is its
    central path, by hand: ln(share ppa (1+g)^y + (1-share) P e^{s(moy)} + adder),
    C0 e^{y mu}, chi0 e^{-kappa t/12} + ln S0 - chi0 + mu_cu t/12,
    ln R0 + drift t/12 + beta D0 phi^t, ln new + (age0 + t/12) ln(1 - d) + beta D0 phi^t
    + ln(1 - step) from the middle of the successor window; and engine's central_paths."""
    book = switched_off_book()
    copper = CopperConfig(
        enabled=False, long_drift_per_year=0.04, squeeze=SqueezeConfig(initial="squeeze")
    )
    markets = MarketsConfig(
        first_calendar_month=4,
        demand=DemandConfig(enabled=False, initial=0.7),
        electricity=MarketSwitch(enabled=False),
        copper=copper,
        gpu=GpuMarketConfig(enabled=False),
    )
    horizon = 30
    tr = trace_markets(book, market_settings(64, horizon, 15, markets))
    for name, values in tr.items():
        if not name.startswith("z:"):  # the copula scores are drawn, and ignored
            assert np.all(values == values[:1]), f"{name} differs between paths"
    assert not tr["r1:curtailed"].any() and not tr["r1:spikes"].any()
    assert not tr["copper_squeeze"].any() and not tr["copper_jumps"].any()
    t = np.arange(1, horizon + 1)
    year = (t - 1) // 12
    e = book.regions[0].electricity
    g = book.gpu_generations[0].market
    season = np.array(e.seasonality)[(t - 1 + 3) % 12]
    all_in = (
        e.ppa_share * e.ppa_price_usd_per_mwh * (1 + e.ppa_escalator_per_year) ** year
        + (1 - e.ppa_share) * e.price_usd_per_mwh * np.exp(season)
        + e.adder_usd_per_mwh
    )
    demand = 0.7 * 0.95**t
    log_rent = math.log(g.rent_usd_per_gpu_hour) + g.rent_drift_per_year * t / 12 + 0.2 * demand
    log_resale = (
        math.log(g.new_price_usd)
        + (g.age_at_start_years + t / 12) * math.log(1 - g.residual_decay_per_year)
        + 0.2 * demand
        + np.where(t >= 8, math.log(1 - g.successor_step_down), 0.0)
    )
    expected = {
        "r1:log_all_in": np.log(all_in),
        "r1:log_energy": math.log(e.price_usd_per_mwh) + season,
        "r1:capacity_charge": 200.0 * np.exp(0.1 * year),
        "copper_log_price": 0.09 * np.exp(-t / 12) + math.log(12_500.0) - 0.09 + 0.04 * t / 12,
        "demand": demand,
        "g1:log_rent": log_rent,
        "g1:log_resale": log_resale,
    }
    for name, values in expected.items():
        np.testing.assert_allclose(tr[name][0, 1:], values, rtol=1e-12, atol=1e-12, err_msg=name)
    central = central_paths(lower_markets(book, markets, horizon), horizon)[:, 1:]
    engine_rows = {"r1:log_all_in": 0, "copper_log_price": 2, "g1:log_rent": 3, "g1:log_resale": 4}
    for name, row in engine_rows.items():
        np.testing.assert_allclose(tr[name][0, 1:], central[row], rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(tr["r1:capacity_charge"][0, 1:], np.exp(central[1]), rtol=1e-12)


@pytest.mark.parametrize(
    "off, changed",
    [
        ("copper", ("copper_squeeze", "copper_jumps", "copper_log_price")),
        ("electricity", ("r1:",)),
        ("gpu", ("g1:",)),
        ("demand", ("demand", "g1:")),
    ],
)
def test_switching_one_market_off_keeps_the_others_draws(
    off: str, changed: tuple[str, ...]
) -> None:
    """Common random numbers: with one market disabled, every channel of the other markets
    (and every copula score) is bit-identical for the same seed; the disabled market's
    channels do change."""
    book = switched_off_book()
    on = MarketsConfig(copper=CopperConfig(jump_rate_per_year=2.0))
    switch = {
        "copper": {"copper": CopperConfig(enabled=False, jump_rate_per_year=2.0)},
        "electricity": {"electricity": MarketSwitch(enabled=False)},
        "gpu": {"gpu": GpuMarketConfig(enabled=False)},
        "demand": {"demand": DemandConfig(enabled=False)},
    }[off]
    n, horizon = 2000, 24
    a = trace_markets(book, market_settings(n, horizon, 16, on))
    b = trace_markets(book, market_settings(n, horizon, 16, dataclasses.replace(on, **switch)))
    moved = [k for k in a if k.startswith(changed)]
    assert moved and all(not np.array_equal(a[k], b[k]) for k in moved)
    for name in a:
        if name not in moved:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


# ----------------------------------------------------------------------------- tables


def table_book() -> Book:
    """A small book with every reported factor: one region with a capacity charge and
    curtailment, two generations, three sites (one with two phases, one equipment item)."""
    gen = {"successor_launch_min": 6, "successor_launch_max": 12}
    return market_book(
        {
            "r1": {
                "capacity_charge_usd_per_mw_day": 300.0,
                "capacity_charge_sigma": 0.3,
                "ppa_share": 0.3,
                "curtailment_probability": 0.05,
                "curtailment_share": 0.2,
            },
            "r2": {"spike_rate_per_year": 2.0},
        },
        {"g1": gen, "g2": {}},
        sites=[
            {
                **site(
                    "a",
                    interconnection=lognormal(8.0, 0.5),
                    phases=[
                        {"it_mw": 10.0, "planned_month": 8},
                        {
                            "it_mw": 5.0,
                            "planned_month": 14,
                            "schedule": [item("fit", "construction", fixed(13.0))],
                        },
                    ],
                ),
                "region": "r1",
                "gpu_generation": "g1",
                "pue": 1.3,
            },
            {
                **site("b", operator="op_b", schedule=[item("x", "equipment", fixed(9.0))]),
                "region": "r1",
                "gpu_generation": "g2",
            },
            {
                **site("c", interconnection=lognormal(20.0, 0.3)),
                "region": "r2",
                "gpu_generation": "g1",
            },
        ],
    )


def test_market_tables_match_the_traced_paths() -> None:
    """compute_tables vs the per-path trace of the same seed (numpy, by hand):
    market_by_month mean within 1e-5 relative and P5/P50/P95 within one bin of numpy's
    inverted-CDF quantiles; event probabilities exactly; site_costs means from the traced
    copper price, all-in price, capacity charge and curtailment at each phase's
    energization month (max(1, ceil E)); curtailed MW in capacity_by_month."""
    book = table_book()
    n, horizon, seed = 20_000, 24, 17
    markets = MarketsConfig()
    settings = market_settings(n, horizon, seed, markets)
    tables, _ = compute_tables(book, settings, threads=2)
    e = energization(book, settings.capacity, n, seed, markets=markets)
    tr = trace_markets(book, settings, energization=e)
    values = {
        "electricity_all_in:r1": np.exp(tr["r1:log_all_in"]),
        "capacity_charge:r1": tr["r1:capacity_charge"],
        "electricity_all_in:r2": np.exp(tr["r2:log_all_in"]),
        "copper": np.exp(tr["copper_log_price"]),
        "gpu_rent:g1": np.exp(tr["g1:log_rent"]),
        "gpu_resale:g1": np.exp(tr["g1:log_resale"]),
        "gpu_rent:g2": np.exp(tr["g2:log_rent"]),
        "gpu_resale:g2": np.exp(tr["g2:log_resale"]),
    }
    mbm = tables["market_by_month"]
    assert set(mbm["factor"].unique()) == {
        *values,
        "copper_squeeze",
        "curtailment_event:r1",
        "curtailment_event:r2",
    }
    for factor, v in values.items():
        rows = mbm.filter(pl.col("factor") == factor).sort("month")
        assert rows["month"].to_list() == list(range(1, horizon + 1))
        for t in (1, 7, 13, 24):
            row = rows.row(t - 1, named=True)
            assert math.isclose(row["mean"], float(v[:, t].mean()), rel_tol=1e-5), (factor, t)
            for label, q in (("p5", 0.05), ("p50", 0.5), ("p95", 0.95)):
                exact = float(np.quantile(v[:, t], q, method="inverted_cdf"))
                gap = abs(math.log(row[label]) - math.log(exact))
                assert gap <= row["bin_width_log"] * (1 + 1e-9), (factor, t, label, gap)
    events = {
        "copper_squeeze": tr["copper_squeeze"],
        "curtailment_event:r1": tr["r1:curtailed"],
        "curtailment_event:r2": tr["r2:curtailed"],
    }
    for factor, v in events.items():
        rows = mbm.filter(pl.col("factor") == factor).sort("month")
        expected = [np.count_nonzero(v[:, t]) / n for t in range(1, horizon + 1)]
        assert rows["mean"].to_list() == expected, factor
    assert tr["copper_squeeze"][:, 1:].any() and tr["r1:curtailed"][:, 1:].any()

    # site costs by hand
    months = energization_months(e, horizon)
    copper_cfg = markets.copper
    ex_copper = copper_cfg.facility_capex_usd_per_mw - (
        copper_cfg.intensity_t_per_mw * copper_cfg.reference_price_usd_per_t
    )
    costs = tables["site_costs"]
    rows_p = np.arange(n)
    phase = 0
    curtailed_mw = np.zeros(horizon + 1)
    for s in book.sites:
        rid = s.region
        share = next(r for r in book.regions if r.id == rid).electricity.curtailment_share
        curtailed = tr[f"{rid}:curtailed"]
        monthly = (
            HOURS_PER_MONTH
            * np.exp(tr[f"{rid}:log_all_in"])
            * np.where(curtailed == 1, 1.0 - share, 1.0)
            + DAYS_PER_MONTH * tr[f"{rid}:capacity_charge"]
        )
        monthly[:, 0] = 0.0
        cum = np.cumsum(monthly, axis=1)
        first = months[:, phase]
        built = first <= horizon
        capex = np.zeros(n)
        copper_cost = np.zeros(n)
        energy = np.zeros(n)
        for p in s.phases:
            m = months[:, phase]
            on = m <= horizon
            mc = np.minimum(m, horizon)
            cu = (
                p.it_mw * copper_cfg.intensity_t_per_mw * np.exp(tr["copper_log_price"][rows_p, mc])
            )
            capex += np.where(on, p.it_mw * ex_copper + cu, 0.0)
            copper_cost += np.where(on, cu, 0.0)
            energy += np.where(on, p.it_mw * s.pue * (cum[:, horizon] - cum[rows_p, mc - 1]), 0.0)
            w = round(p.it_mw * 1e6 * share)
            for t in range(1, horizon + 1):
                curtailed_mw[t] += w * np.count_nonzero((curtailed[:, t] == 1) & (m <= t))
            phase += 1
        per_month = energy / (horizon - np.minimum(first, horizon) + 1)
        row = costs.filter(pl.col("site") == s.id).row(0, named=True)
        assert row["prob_built_within_horizon"] == np.count_nonzero(built) / n
        assert 0.05 < row["prob_built_within_horizon"] <= 1.0
        expected = {
            "facility_capex_musd_mean": capex[built].mean() / 1e6,
            "copper_cost_musd_mean": copper_cost[built].mean() / 1e6,
            "energy_cost_musd_per_month_mean": per_month[built].mean() / 1e6,
            "energy_cost_musd_horizon_mean": energy[built].mean() / 1e6,
        }
        for column, value in expected.items():
            # per path the engine sums $k (per month: $) rounded: mean within half a unit
            unit = 1e-6 if column == "energy_cost_musd_per_month_mean" else 1e-3
            assert abs(row[column] - value) <= 0.5 * unit * (1 + 1e-9), (s.id, column)
        site_bin = 6.0 / SITE_BINS  # +-3 in ln value over SITE_BINS bins
        for label, q in (("p5", 0.05), ("p50", 0.5), ("p95", 0.95)):
            for column, v in (
                ("facility_capex_musd", capex),
                ("energy_cost_musd_per_month", per_month),
            ):
                exact = float(np.quantile(v[built], q, method="inverted_cdf")) / 1e6
                gap = abs(math.log(row[f"{column}_{label}"]) - math.log(exact))
                assert gap <= site_bin * (1 + 1e-9), (s.id, column, label, gap)
    total = tables["capacity_by_month"].filter(pl.col("scope_type") == "total").sort("month")
    np.testing.assert_allclose(
        total["mw_curtailed_mean"].to_numpy(), curtailed_mw[1:] / 1e6 / n, rtol=1e-12
    )


def test_market_tables_are_identical_on_threads_and_chunks() -> None:
    """market_by_month, site_costs and capacity_by_month are bit-identical on 1 and 2
    threads and with uneven chunks (integer statistics merge in any order)."""
    book = table_book()
    n = 10_007
    settings = market_settings(n, 24, 18)
    names = ("market_by_month", "site_costs", "capacity_by_month")
    one = compute_tables(book, settings, threads=1)[0]
    two = compute_tables(book, settings, threads=2)[0]
    uneven = compute_tables(book, settings, threads=2, chunk_sizes=[1, 4000, 3, 6003])[0]
    for name in names:
        assert_frame_equal(one[name], two[name], check_exact=True)
        assert_frame_equal(one[name], uneven[name], check_exact=True)


# ----------------------------------------------------------------------------- validation

NON_PSD = [[1.0, 0.9, 0.9, 0.0], [0.9, 1.0, -0.9, 0.0], [0.9, -0.9, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]


@pytest.mark.parametrize(
    "matrix, key, words",
    [
        (
            [[1.0, 0.5, 0, 0], [0.4, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]],
            "markets.copula.correlation[0][1]",
            "symmetric",
        ),
        (
            [[1.0, 1.2, 0, 0], [1.2, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]],
            "markets.copula.correlation[0][1]",
            "[-1, 1]",
        ),
        (
            [[1.0, 0, 0, 0], [0, 0.9, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]],
            "markets.copula.correlation[1][1]",
            "itself",
        ),
        (NON_PSD, "markets.copula.correlation", "positive semi-definite"),
    ],
)
def test_bad_correlation_matrix_is_rejected(
    matrix: list[list[float]], key: str, words: str
) -> None:
    """Not symmetric, |rho| > 1, a diagonal other than 1, and not PSD (eigenvalue of the
    example by numpy < 0): an InputError naming the key; never repaired."""
    if key == "markets.copula.correlation":
        assert np.linalg.eigvalsh(np.array(matrix)).min() < -0.1
    with pytest.raises(InputError) as info:
        CopulaConfig(correlation=matrix)
    assert info.value.key == key and words in info.value.allowed


def test_conflicting_within_type_correlation_is_rejected() -> None:
    """Three regions pairwise -0.9 cannot be (eigenvalue 1 - 2 x 0.9 < 0): the assembled
    factor matrix is checked when the markets are lowered."""
    book = market_book({"r1": {}, "r2": {}, "r3": {}})
    markets = MarketsConfig(copula=CopulaConfig(electricity_between_regions=-0.9))
    with pytest.raises(InputError) as info:
        lower_markets(book, markets, 12)
    assert info.value.key.startswith("markets.copula")
    assert "positive semi-definite" in info.value.allowed


def test_cli_rejects_an_asymmetric_correlation_override(tmp_path: Path) -> None:
    """Exit status 2, one message naming the entry, no traceback, nothing written."""
    matrix = "[[1.0,0.5,0.0,0.0],[0.4,1.0,0.0,0.0],[0.0,0.0,1.0,0.0],[0.0,0.0,0.0,1.0]]"
    done = ncrisk([f"markets.copula.correlation={matrix}", "run.n_paths=100"], tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.count("invalid input") == 1
    assert "markets.copula.correlation[0][1]" in done.stderr and "symmetric" in done.stderr
    assert not (tmp_path / "results").exists()


def test_cli_names_the_entry_of_an_integer_written_correlation_override(
    tmp_path: Path,
) -> None:
    """The override as a user types it, ``[[1,0.5,0,0],[0.4,1,0,0],...]``: exit 2 with one
    message naming ``markets.copula.correlation[0][1]`` (the asymmetric entry)."""
    matrix = "[[1,0.5,0,0],[0.4,1,0,0],[0,0,1,0],[0,0,0,1]]"
    done = ncrisk([f"markets.copula.correlation={matrix}", "run.n_paths=100"], tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.count("invalid input") == 1
    assert "markets.copula.correlation[0][1]" in done.stderr


def test_correlation_error_shows_the_value_as_written() -> None:
    """The message of an asymmetric entry shows 0.5, as the user wrote it."""
    matrix = [[1.0, 0.5, 0, 0], [0.4, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]
    with pytest.raises(InputError) as info:
        CopulaConfig(correlation=matrix)
    assert "value:   0.5\n" in info.value.message()


def test_exp_lanes_agrees_with_numpy_exp() -> None:
    """The kernel's vectorised exp against NumPy's exp (each within about 1 ulp of the exact
    value, so at most 2 ulp apart), over prices' ln range and beyond, and at the ends."""
    from engine.kernels.lanes import LANES, exp_lanes

    x = np.concatenate(
        [
            np.random.default_rng(3).uniform(-30.0, 30.0, 64 * LANES),
            np.linspace(-708.0, 709.0, 8 * LANES),
            np.array([0.0, 1e-300, -1e-300, 0.5 * math.log(2.0), -0.5 * math.log(2.0)] * 2),
        ]
    )
    x = x[: x.size // LANES * LANES]
    out = np.empty(LANES)
    bits = np.empty(LANES, dtype=np.int64)
    got = np.empty_like(x)
    for i in range(0, x.size, LANES):
        exp_lanes(x[i : i + LANES], out, bits, bits.view(np.float64))
        got[i : i + LANES] = out
    want = np.exp(x)
    assert np.all(np.abs(got - want) <= 2.0 * np.spacing(want))  # each within ~1 ulp
    ends = np.array([-np.inf, -800.0, np.inf, 710.0, np.nan] + [0.0] * (LANES - 5))
    exp_lanes(ends, out, bits, bits.view(np.float64))
    assert out[0] == 0.0 and out[1] == 0.0 and out[2] == np.inf and out[3] == np.inf
    assert np.isnan(out[4]) and out[5] == 1.0
