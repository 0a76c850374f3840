"""Capacity delivery against closed forms (scipy): PERT/Beta and lognormal marginals, the
CDF of the max of items, the Gaussian copula's Kendall tau, withdrawal odds, phase order,
draw order, and the consistency of the month histograms with the per-path times."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import (
    NO_SQUEEZE,
    P_MIN,
    assert_within,
    capacity_config,
    energization,
    energization_months,
    fixed,
    item,
    lognormal,
    make_book,
    make_settings,
    pert,
    pert_beta,
    site,
)
from scipy import stats

from engine.simulate import simulate_capacity


def cdf_checks(sample: np.ndarray, cdf, points: list[float], what: str) -> None:
    """Empirical CDF at each point vs the closed form, binomial SE sqrt(P (1 - P) / N)."""
    n = sample.size
    for t in points:
        p = float(cdf(t))
        assert_within(np.mean(sample <= t), p, math.sqrt(p * (1.0 - p) / n), f"{what} F({t})")


@pytest.mark.parametrize("lo, mode, hi", [(3.0, 5.0, 12.0), (2.0, 2.0, 10.0)])
def test_single_pert_item_follows_the_pert_beta(lo: float, mode: float, hi: float) -> None:
    """E = D ~ PERT(a, m, b) = a + (b - a) Beta(1 + 4(m-a)/(b-a), 1 + 4(b-m)/(b-a)).

    Mean (a + 4m + b)/6 with SE sd/sqrt(N); sd with SE sd/2 sqrt((kurt + 2)/N);
    KS against scipy's Beta. Default copula correlations: the marginal must stay PERT.
    """
    book = make_book([site("s", schedule=[item("build", "construction", pert(lo, mode, hi))])])
    n = 1_000_000
    e = energization(book, capacity_config(0.4, 0.6), n, seed=1)[:, 0]
    dist = pert_beta(lo, mode, hi)
    sd, kurt = math.sqrt(dist.var()), float(dist.stats(moments="k"))
    assert_within(e.mean(), (lo + 4.0 * mode + hi) / 6.0, sd / math.sqrt(n), "PERT mean")
    assert_within(e.std(), sd, sd / 2.0 * math.sqrt((kurt + 2.0) / n), "PERT sd")
    assert stats.kstest(e, dist.cdf).pvalue > P_MIN
    assert e.min() >= lo and e.max() <= hi


@pytest.mark.parametrize("rho", [(0.0, 0.0), (0.4, 0.6)])
def test_max_of_items_has_the_copula_cdf(rho: tuple[float, float]) -> None:
    """P(max_k D_k <= t) = F_grid(t) F_equipment(t) Phi2(z_1(t), z_2(t); rho_campus), with
    z_i(t) = Phi^-1(F_i(t)) for the two construction items (one kind, one site: correlated
    rho_campus, docs/model.md 3.3); items of different kinds are independent. With
    correlations 0 this is the product of the four scipy CDFs. No copper squeeze here
    (its stretch of equipment lead times is tested in test_market_squeeze.py).
    """
    book = make_book(
        [
            site(
                "s",
                interconnection=lognormal(6.0, 0.4),
                schedule=[
                    item("build", "construction", pert(3.0, 5.0, 12.0)),
                    item("switchgear", "equipment", pert(4.0, 6.0, 9.0)),
                ],
                phases=[
                    {
                        "it_mw": 10.0,
                        "planned_month": 12,
                        "schedule": [item("fitout", "construction", pert(2.0, 7.0, 10.0))],
                    }
                ],
            )
        ]
    )
    grid, equipment = stats.lognorm(0.4, scale=6.0), pert_beta(4, 6, 9)
    build, fitout = pert_beta(3, 5, 12), pert_beta(2, 7, 10)
    both = stats.multivariate_normal([0.0, 0.0], [[1.0, rho[1]], [rho[1], 1.0]])
    n = 400_000
    e = energization(book, capacity_config(*rho), n, seed=2, markets=NO_SQUEEZE)[:, 0]

    def copula_cdf(t: float) -> float:
        z = stats.norm.ppf([build.cdf(t), fitout.cdf(t)])
        construction = both.cdf(z) if np.all(np.isfinite(z)) else min(build.cdf(t), fitout.cdf(t))
        return float(grid.cdf(t) * equipment.cdf(t) * construction)

    cdf_checks(e, copula_cdf, [5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0, 15.0], "max of items")


def test_an_items_family_does_not_shift_later_draws() -> None:
    """docs/model.md 3.2: every item consumes one normal whatever its family, so replacing
    a short first item (PERT, fixed, lognormal) leaves the second item's draw unchanged;
    removing it shifts the draws (the check is sensitive)."""
    second = item("switchgear", "equipment", pert(3.0, 5.0, 12.0))
    firsts = [pert(0.0, 0.05, 0.1), fixed(0.05), lognormal(0.01, 0.1)]
    runs = [
        energization(
            make_book([site("s", schedule=[item("early", "construction", f), second])]),
            capacity_config(0.4, 0.6),
            4096,
            seed=8,
        )
        for f in firsts
    ]
    assert np.array_equal(runs[0], runs[1]) and np.array_equal(runs[0], runs[2])
    alone = energization(
        make_book([site("s", schedule=[second])]), capacity_config(0.4, 0.6), 4096, 8
    )
    assert not np.array_equal(runs[0], alone)


def test_lognormal_item_times_overrun_is_lognormal_with_summed_variance() -> None:
    """E = M D, ln M ~ N(ln 1.31, 0.211^2), ln D ~ N(ln 20, 0.3^2) independent (different kinds):
    ln E ~ N(ln 1.31 + ln 20, 0.211^2 + 0.3^2). Mean SE s/sqrt(N), variance SE s^2 sqrt(2/N), KS.
    """
    book = make_book([site("s", interconnection=lognormal(20.0, 0.3))])
    n = 1_000_000
    cap = capacity_config(0.4, 0.6, overrun_median=1.31, overrun_sigma_ln=0.211)
    log_e = np.log(energization(book, cap, n, seed=3)[:, 0])
    mu, var = math.log(1.31) + math.log(20.0), 0.211**2 + 0.3**2
    assert_within(log_e.mean(), mu, math.sqrt(var / n), "mean of ln E")
    assert_within(log_e.var(), var, var * math.sqrt(2.0 / n), "variance of ln E")
    assert stats.kstest(log_e, stats.norm(mu, math.sqrt(var)).cdf).pvalue > P_MIN


def test_copula_gives_kendall_tau_of_the_gaussian_copula() -> None:
    """Gaussian copula: tau = 2/pi arcsin(rho), rho = rho_campus (same campus), rho_op (same
    operator, other campus), 0 (other operator), rho_campus - rho_op (other operator, shared
    campus name; docs/model.md 3.3). One PERT item per site and no overrun make
    each E a monotone function of one latent normal. SE of tau from 100 batches; the latent
    normals recovered through scipy (Phi^-1 of the Beta CDF) have Pearson r = rho, SE
    (1 - rho^2)/sqrt(N).
    """
    rho_op, rho_campus = 0.3, 0.7
    durations = [(3.0, 5.0, 12.0), (4.0, 8.0, 10.0), (1.0, 2.0, 9.0), (2.0, 3.0, 4.0), (1, 5, 6)]
    places = [("op_a", "c1"), ("op_a", "c1"), ("op_a", "c2"), ("op_b", "c3"), ("op_b", "c1")]
    book = make_book(
        [
            site(f"s{k}", operator=op, campus=c, schedule=[item("b", "construction", pert(*d))])
            for k, ((op, c), d) in enumerate(zip(places, durations, strict=True))
        ]
    )
    n_batches, batch = 100, 1000
    e = energization(book, capacity_config(rho_op, rho_campus), n_batches * batch, seed=4)
    latent = np.column_stack(
        [stats.norm.ppf(pert_beta(*d).cdf(e[:, k])) for k, d in enumerate(durations)]
    )
    pairs = {
        (0, 1): rho_campus,  # one operator, one campus
        (0, 2): rho_op,  # one operator, two campuses
        (1, 2): rho_op,
        (3, 4): rho_op,
        (0, 3): 0.0,  # two operators, two campuses
        (0, 4): rho_campus - rho_op,  # two operators sharing a campus name
    }
    for (i, j), rho in pairs.items():
        taus = [
            stats.kendalltau(e[b : b + batch, i], e[b : b + batch, j]).statistic
            for b in range(0, e.shape[0], batch)
        ]
        se = np.std(taus, ddof=1) / math.sqrt(n_batches)
        tau = 2.0 / math.pi * math.asin(rho)
        assert_within(float(np.mean(taus)), tau, se, f"Kendall tau of sites {i},{j}")
        r = np.corrcoef(latent[:, i], latent[:, j])[0, 1]
        assert_within(r, rho, (1.0 - rho**2) / math.sqrt(e.shape[0]), f"latent r of {i},{j}")


def test_withdrawal_count_is_binomial_and_independent_across_sites() -> None:
    """#withdrawn ~ Binomial(N, p) per site (binomtest), both ~ Binomial(N, p1 p2); a withdrawn
    site has every phase at +inf; p = 0 never withdraws."""
    two_phases = [{"it_mw": 10.0, "planned_month": 12}, {"it_mw": 5.0, "planned_month": 20}]
    book = make_book(
        [
            site("a", withdrawal=0.15, phases=two_phases),
            site("b", withdrawal=0.5, interconnection=pert(1.0, 2.0, 6.0)),
            site("c", withdrawal=0.0),
        ]
    )
    n = 100_000
    never = np.isinf(energization(book, capacity_config(0.4, 0.6), n, seed=5))
    assert np.array_equal(never[:, 0], never[:, 1])
    for column, p in ((0, 0.15), (2, 0.5)):
        assert stats.binomtest(int(never[:, column].sum()), n, p).pvalue > P_MIN
    assert stats.binomtest(int((never[:, 0] & never[:, 2]).sum()), n, 0.15 * 0.5).pvalue > P_MIN
    assert not never[:, 3].any()


def test_phases_energize_in_order() -> None:
    """E_2 = max(E_1, M max(site items, phase-2 items)) >= E_1 on every path; with independent
    items and no overrun, P(E_2 <= t) = F_grid F_1 F_2 (product of scipy CDFs)."""
    phases = [
        {
            "it_mw": 10.0,
            "planned_month": 8,
            "schedule": [item("p1", "construction", pert(5, 8, 20))],
        },
        {
            "it_mw": 10.0,
            "planned_month": 9,
            "schedule": [item("p2", "construction", pert(3, 6, 10))],
        },
        {"it_mw": 10.0, "planned_month": 9},
    ]
    book = make_book([site("s", interconnection=pert(1.0, 2.0, 6.0), phases=phases)])
    n = 400_000
    e = energization(book, capacity_config(), n, seed=6)
    assert np.all(e[:, 1] >= e[:, 0]) and np.array_equal(e[:, 2], e[:, 1])
    assert np.mean(e[:, 1] == e[:, 0]) > 0.3  # the order constraint binds on many paths
    grid, first, second = pert_beta(1, 2, 6), pert_beta(5, 8, 20), pert_beta(3, 6, 10)
    points = [6.0, 7.0, 8.0, 9.0, 10.0, 12.0]
    cdf_checks(e[:, 0], lambda t: grid.cdf(t) * first.cdf(t), points, "phase 1")
    cdf_checks(e[:, 1], lambda t: grid.cdf(t) * first.cdf(t) * second.cdf(t), points, "phase 2")


def test_month_histograms_match_the_per_path_times() -> None:
    """simulate_capacity's per-phase month counts, withdrawn counts and kept months equal
    max(1, ceil(E)) (T + 1 beyond the horizon) of the kernel's per-path times, uneven chunks;
    no overrun, so the fixed 4-month site sits exactly on a month boundary."""
    book = make_book(
        [
            site("a", schedule=[item("b", "construction", pert(0.2, 3.0, 30.0))], withdrawal=0.1),
            site(
                "b",
                operator="op_b",
                interconnection=lognormal(14.0, 0.5),
                phases=[{"it_mw": 20.0, "planned_month": 12}, {"it_mw": 7.5, "planned_month": 18}],
            ),
            site("c", interconnection=fixed(4.0)),
        ]
    )
    n, horizon, seed = 10_007, 24, 7
    settings = make_settings(n, horizon, seed, capacity_config(0.4, 0.6), keep_paths=True)
    stats_, _ = simulate_capacity(book, settings, chunk_sizes=[1000, 3, 9004])
    e = energization(book, settings.capacity, n, seed)
    months = energization_months(e, horizon)
    expected = np.stack([np.bincount(m, minlength=horizon + 2) for m in months.T])
    assert np.array_equal(stats_.phase_months, expected)
    assert np.array_equal(stats_.withdrawn, np.isinf(e).sum(axis=0))
    assert np.array_equal(stats_.kept_months, months)
    assert expected[:3, horizon + 1].min() > 0 and expected[0, 1] > 0  # beyond T; E < 1
    assert np.all(months[:, 3] == 4)  # E = 4.0 exactly is month 4
