"""Market processes (MODEL.md section 2) against closed forms and scipy.

Electricity OU moments and autocorrelation, the lognormal capacity charge, Poisson spike
and jump counts, the Schwartz-Smith copper log-price, the Markov squeeze regime, binomial
curtailment counts and the GPU market's fire-sale impact, from the per-path channels of
:func:`engine.market_stats.trace_markets`. Every Monte Carlo tolerance is ``Z_TOL``
standard errors at a fixed seed.
"""

from __future__ import annotations

import math

import numpy as np
from conftest import assert_within
from market_cases import NO_REGIME, market_book, market_settings, moment_checks, pmf_checks
from scipy import stats

from engine.market_config import (
    CopperConfig,
    DemandConfig,
    GpuMarketConfig,
    MarketsConfig,
    SqueezeConfig,
)
from engine.market_stats import trace_markets

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
