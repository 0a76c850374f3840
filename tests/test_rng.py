"""Random streams: reference vectors of the generators, independence of streams, and
the distribution of the normal and uniform samplers against scipy's closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import P_MIN, Z_TOL, assert_within
from numba import njit
from scipy import stats

from engine import rng

GOLDEN = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1
ZIGGURAT_R = 3.442619855899  # start of the ziggurat's tail region
N_NORMALS = 2_000_000  # a 1% scale error or a t(30) is rejected at this size (see below)


def normals(seed: int, path0: int, stream: int, n_paths: int, n_draws: int) -> np.ndarray:
    """``float64[n_paths, n_draws]``: normals of stream ``stream`` on paths path0, path0 + 1, ..."""
    out = np.empty((n_paths, n_draws))
    rng.fill_normals(out, np.uint64(seed), np.uint64(path0), np.uint64(stream))
    return out


@njit
def _uniforms(seed: np.uint64, path: np.uint64, stream: np.uint64, n: int) -> np.ndarray:
    state = np.empty((4, 1), dtype=np.uint64)
    rng.seed_stream(state, 0, seed, path, stream)
    out = np.empty(n)
    for j in range(n):
        out[j] = rng.next_uniform(state, 0)
    return out


@njit
def _first_outputs(seeds: np.ndarray, paths: np.ndarray, stream: np.uint64) -> np.ndarray:
    state = np.empty((4, 1), dtype=np.uint64)
    out = np.empty((seeds.shape[0], paths.shape[0]), dtype=np.uint64)
    for i in range(seeds.shape[0]):
        for j in range(paths.shape[0]):
            rng.seed_stream(state, 0, seeds[i], paths[j], stream)
            out[i, j] = rng.next_u64(state, 0)
    return out


# --- reference vectors -------------------------------------------------------------


def test_xoshiro256starstar_reference_vector() -> None:
    """xoshiro256** from state (1, 2, 3, 4): the published first ten outputs (Vigna's C code)."""
    state = np.array([[1], [2], [3], [4]], dtype=np.uint64)
    expected = [
        11520,
        0,
        1509978240,
        1215971899390074240,
        1216172134540287360,
        607988272756665600,
        16172922978634559625,
        8476171486693032832,
        10595114339597558777,
        2904607092377533576,
    ]
    assert [int(rng.next_u64(state, 0)) for _ in expected] == expected


def test_splitmix64_reference_vector() -> None:
    """SplitMix64 seeded with 1234567: the published first five outputs (state += golden)."""
    expected = [
        6457827717110365317,
        3203168211198807973,
        9817491932198370423,
        4593380528125082431,
        16408922859458223821,
    ]
    x, got = 1234567, []
    for _ in expected:
        got.append(int(rng.splitmix64(np.uint64(x))))
        x = (x + GOLDEN) & MASK64
    assert got == expected


def _splitmix(x: int) -> int:
    """SM(x) = mix(x + golden), in Python integers (checked by the reference vector above)."""
    z = (x + GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _xoshiro(state: list[int]) -> int:
    """One xoshiro256** step in Python integers (Blackman & Vigna's C code)."""

    def rotl(x: int, k: int) -> int:
        return ((x << k) | (x >> (64 - k))) & MASK64

    s0, s1, s2, s3 = state
    result = (rotl((s1 * 5) & MASK64, 7) * 9) & MASK64
    t = (s1 << 17) & MASK64
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    state[:] = [s0, s1, s2, rotl(s3, 45)]
    return result


@pytest.mark.parametrize(
    "seed, path, stream",
    [(0, 0, 0), (1, 0, 0), (0, 1, 0), (20261122, 12345, 7), (2**63 - 1, 2**40 + 3, 2**64 - 1)],
)
def test_seeding_follows_the_documented_splitmix_chain(seed: int, path: int, stream: int) -> None:
    """docs/model.md section 4: h = SM(SM(SM(seed) ^ path) ^ (stream * 0xBF58476D1CE4E5B9)),
    state = SM(h), SM(h + golden), ...; uniforms ((u >> 11) + 0.5) 2^-53 (Python integers)."""
    h = _splitmix(_splitmix(_splitmix(seed) ^ path) ^ ((stream * 0xBF58476D1CE4E5B9) & MASK64))
    expected = [_splitmix((h + k * GOLDEN) & MASK64) for k in range(4)]
    state = np.empty((4, 1), dtype=np.uint64)
    rng.seed_stream(state, 0, np.uint64(seed), np.uint64(path), np.uint64(stream))
    assert [int(w) for w in state[:, 0]] == expected
    assert int(rng.next_u64(state, 0)) == _xoshiro(expected)
    assert rng.next_uniform(state, 0) == ((_xoshiro(expected) >> 11) + 0.5) * 2.0**-53


# --- stream identity and independence ------------------------------------------------


def test_stream_id_is_stable_and_distinct() -> None:
    """Ids depend only on names (pinned value: changing it breaks common random numbers)."""
    assert rng.stream_id("site", "a") == 3994322119815693822
    assert rng.stream_id("site", "a") == rng.stream_id("site", "a")
    pairs = [
        (("site", "a"), ("site", "b")),
        (("site", "ab"), ("site", "a", "b")),
        (("site", "a"), ("customer", "a")),
        (("capacity_factor", "operator", "x"), ("capacity_factor", "campus", "x")),
    ]
    for left, right in pairs:
        assert rng.stream_id(*left) != rng.stream_id(*right), (left, right)
    ids = [rng.stream_id("site", f"s{i}") for i in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(0 <= i < 2**64 for i in ids)


def test_streams_are_a_pure_function_of_seed_path_stream() -> None:
    """Path 7's numbers do not depend on which chunk (path0) produced them."""
    whole = normals(3, 0, 99, 16, 50)
    assert np.array_equal(normals(3, 7, 99, 1, 50)[0], whole[7])
    assert np.array_equal(normals(3, 5, 99, 11, 50), whole[5:])


def test_nearby_keys_give_distinct_states() -> None:
    """No collisions among the first outputs of 1000 seeds x 1000 paths (incl. seed+path traps)."""
    keys = np.arange(1000, dtype=np.uint64)
    first = _first_outputs(keys, keys, np.uint64(0))
    assert np.unique(first).size == first.size


def _assert_uncorrelated(a: np.ndarray, b: np.ndarray, what: str) -> None:
    """Pearson r of independent normals has SE 1/sqrt(n); also no draw repeats."""
    assert not np.any(a == b), f"{what}: identical draws"
    r = np.corrcoef(a, b)[0, 1]
    assert_within(r, 0.0, 1.0 / math.sqrt(a.size), f"{what}: correlation")


def test_seeds_paths_and_streams_give_uncorrelated_normals() -> None:
    """Seeds 0/1, paths i/i+1, (seed 0, path i+1)/(seed 1, path i), streams s/s+1, lag 1."""
    n_paths, n_draws = 100_000, 4
    seed0 = normals(0, 0, 5, n_paths, n_draws)
    seed1 = normals(1, 0, 5, n_paths, n_draws)
    _assert_uncorrelated(seed0.ravel(), seed1.ravel(), "seed 0 vs seed 1")
    _assert_uncorrelated(seed0[:-1].ravel(), seed0[1:].ravel(), "path i vs path i+1")
    _assert_uncorrelated(seed0[1:].ravel(), seed1[:-1].ravel(), "(seed 0, path i+1) vs (1, i)")
    stream6 = normals(0, 0, 6, n_paths, n_draws)
    _assert_uncorrelated(seed0.ravel(), stream6.ravel(), "stream 5 vs stream 6")
    named = [normals(0, 0, rng.stream_id("site", s), n_paths, n_draws) for s in ("a", "b")]
    _assert_uncorrelated(named[0].ravel(), named[1].ravel(), "site a vs site b")
    _assert_uncorrelated(seed0[:, :-1].ravel(), seed0[:, 1:].ravel(), "draw j vs draw j+1")


# --- the normal sampler --------------------------------------------------------------


def normal_battery(x: np.ndarray) -> dict[str, float]:
    """Deviation of each check, in units of its rejection threshold (> 1 = rejected).

    KS against scipy's normal CDF; mean, variance, skewness and excess kurtosis
    against 0, 1, 0, 0 with SEs sqrt(1/n), sqrt(2/n), sqrt(6/n), sqrt(24/n); tail
    frequencies P(|Z| > r_ziggurat), P(Z > 4), P(Z < -4) against scipy's
    survival function with binomial SE sqrt(p (1 - p) / n).
    """
    n = x.size
    p_ks = max(stats.kstest(x, stats.norm.cdf).pvalue, 1e-300)
    out = {"ks": math.log(p_ks) / math.log(P_MIN)}
    moments = {
        "mean": (x.mean(), 0.0, math.sqrt(1.0 / n)),
        "variance": (x.var(), 1.0, math.sqrt(2.0 / n)),
        "skewness": (stats.skew(x), 0.0, math.sqrt(6.0 / n)),
        "kurtosis": (stats.kurtosis(x), 0.0, math.sqrt(24.0 / n)),
    }
    p_zig, p4 = 2.0 * stats.norm.sf(ZIGGURAT_R), stats.norm.sf(4.0)
    tails = {
        "tail |Z|>r": (np.mean(np.abs(x) > ZIGGURAT_R), p_zig),
        "tail Z>4": (np.mean(x > 4.0), p4),
        "tail Z<-4": (np.mean(x < -4.0), p4),
    }
    for name, (value, expected, se) in moments.items():
        out[name] = abs(value - expected) / se / Z_TOL
    for name, (freq, p) in tails.items():
        out[name] = abs(freq - p) / math.sqrt(p * (1.0 - p) / n) / Z_TOL
    return out


@pytest.fixture(scope="module")
def engine_normals() -> np.ndarray:
    return normals(20261122, 0, rng.stream_id("test", "normals"), 1000, N_NORMALS // 1000).ravel()


def test_normal_sampler_matches_the_normal_distribution(engine_normals: np.ndarray) -> None:
    """Ziggurat normals pass KS, four moments and the tail frequencies (4.5 sigma each)."""
    battery = normal_battery(engine_normals)
    rejected = {k: round(v, 2) for k, v in battery.items() if v > 1.0}
    assert not rejected, rejected


def test_battery_rejects_slightly_wrong_samplers() -> None:
    """The battery has power at this size: 1.01 x N(0,1), t(30) and a thin tail are rejected."""
    gen = np.random.Generator(np.random.PCG64(12345))
    z = gen.standard_normal(N_NORMALS)
    assert max(normal_battery(z).values()) <= 1.0  # a correct sampler passes
    scaled = normal_battery(1.01 * z)
    assert scaled["ks"] > 1.0 and scaled["variance"] > 1.0
    assert normal_battery(gen.standard_t(30, N_NORMALS))["kurtosis"] > 1.0
    # a ziggurat whose tail region were redrawn from the body (tail 20% too light):
    thin = np.where((np.abs(z) > ZIGGURAT_R) & (gen.random(N_NORMALS) < 0.2), z / 2.0, z)
    assert normal_battery(thin)["tail |Z|>r"] > 1.0


# --- the uniform sampler --------------------------------------------------------------


def test_uniforms_are_in_the_open_unit_interval_with_uniform_moments() -> None:
    """Uniform(0, 1): mean 1/2 (SE sqrt(1/12n)), variance 1/12 (SE sqrt((1/80-1/144)/n)), KS."""
    n = 1_000_000
    u = _uniforms(np.uint64(7), np.uint64(3), np.uint64(rng.stream_id("test", "uniform")), n)
    assert u.min() > 0.0 and u.max() < 1.0
    assert_within(u.mean(), 0.5, math.sqrt(1.0 / 12.0 / n), "uniform mean")
    assert_within(u.var(), 1.0 / 12.0, math.sqrt((1.0 / 80.0 - 1.0 / 144.0) / n), "uniform var")
    assert stats.kstest(u, "uniform").pvalue > P_MIN
    assert_within(np.corrcoef(u[:-1], u[1:])[0, 1], 0.0, 1.0 / math.sqrt(n), "uniform lag 1")


@njit
def _lane_and_scalar_uniforms(n_lanes: int, n_months: int) -> tuple[np.ndarray, np.ndarray]:
    """The same streams drawn by ``uniforms_lanes`` and by ``next_uniform``, interleaved
    with normals (as the market kernel does), and the final states of both."""
    a = np.zeros((4, 3 * n_lanes), dtype=np.uint64)
    for k in range(3 * n_lanes):
        rng.seed_stream(a, k, np.uint64(11), np.uint64(1000 + k), np.uint64(7 + k % 3))
    b = a.copy()
    out_a = np.empty((n_months, n_lanes))
    out_b = np.empty((n_months, n_lanes))
    row = np.empty(n_lanes)
    for t in range(n_months):
        for lane in range(n_lanes):
            rng.next_normal(a, n_lanes + lane)
            rng.next_normal(b, n_lanes + lane)
        rng.uniforms_lanes(a, n_lanes, row)
        out_a[t] = row
        for lane in range(n_lanes):
            out_b[t, lane] = rng.next_uniform(b, n_lanes + lane)
    return np.concatenate((out_a.ravel(), a.ravel().view(np.float64))), np.concatenate(
        (out_b.ravel(), b.ravel().view(np.float64))
    )


def test_uniforms_lanes_draw_exactly_what_next_uniform_draws() -> None:
    """The vectorised uniforms of 64 lanes are bit-identical to one call per stream, and
    leave the same generator states (the market kernel's streams do not depend on lanes)."""
    lanes, scalar = _lane_and_scalar_uniforms(64, 500)
    assert np.array_equal(lanes.view(np.uint64), scalar.view(np.uint64))
