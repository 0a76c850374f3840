"""Reproducible random streams: a pure function of (seed, path, stream, draw index).

Every random source of the model reads its numbers from its own stream. A stream is
a xoshiro256** generator (Blackman & Vigna 2018) whose 256-bit state is derived
from ``(seed, global path id, stream id)`` through the SplitMix64 finaliser
(Steele, Lea & Flood 2014). The numbers a path sees therefore never depend on
the thread that runs it, the chunk it sits in, or the order of calls, and
adding a new stream (a site, a customer, a factor) leaves every other stream's
numbers unchanged: two scenarios of a sweep share common random numbers.

Normals come from Doornik's (2005) 128-layer ziggurat (ZIGNOR) fed with one
64-bit output per attempt: the top 53 bits give the uniform, the low 7 bits the
layer. The tail beyond r = 3.4426 uses Marsaglia's (1964) exact method.

The kernels here take the generator states as a ``uint64[4, n]`` array that
the caller owns (word-major: column k holds one stream's state, so the same word
of neighbouring streams is contiguous for vector code) and the column to use, so
that no allocation and no array view is made in a hot loop. The ziggurat tables are
mathematical constants computed once at import; numba freezes them into the
compiled code.
"""

from __future__ import annotations

import hashlib

import numpy as np
from numba import njit

__all__ = [
    "next_normal",
    "next_u64",
    "next_uniform",
    "seed_stream",
    "splitmix64",
    "stream_id",
    "uniforms_lanes",
]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TWO_POW_M53 = 1.0 / 9007199254740992.0  # 2**-53

# --- ziggurat tables (Doornik 2005, ZIGNOR with 128 layers) -----------------
_ZIG_LAYERS = 128
_ZIG_R = 3.442619855899
_ZIG_V = 9.91256303526217e-3


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray]:
    """Layer edges x_i and ratios x_{i+1}/x_i of the 128-layer normal ziggurat.

    Returns
    -------
    tuple of numpy.ndarray
        ``x`` (129 edges, ``x[128] = 0``) and ``ratio`` (128 acceptance ratios).
    """
    x = np.zeros(_ZIG_LAYERS + 1)
    f = np.exp(-0.5 * _ZIG_R * _ZIG_R)
    x[0] = _ZIG_V / f
    x[1] = _ZIG_R
    for i in range(2, _ZIG_LAYERS):
        x[i] = np.sqrt(-2.0 * np.log(_ZIG_V / x[i - 1] + f))
        f = np.exp(-0.5 * x[i] * x[i])
    x[_ZIG_LAYERS] = 0.0
    ratio = x[1:] / x[:-1]
    return x, ratio


_ZIG_X, _ZIG_RATIO = _ziggurat_tables()


@njit(cache=True, inline="always")
def _rotl(x: np.uint64, k: int) -> np.uint64:
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def splitmix64(x: np.uint64) -> np.uint64:
    """Return the SplitMix64 output for state ``x`` (the state is advanced first).

    Parameters
    ----------
    x : numpy.uint64
        Generator state before the call.

    Returns
    -------
    numpy.uint64
        ``mix(x + 0x9E3779B97F4A7C15)``; the caller advances its own state.
    """
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def seed_stream(
    states: np.ndarray, k: int, seed: np.uint64, path: np.uint64, stream: np.uint64
) -> None:
    """Fill ``states[:, k]`` with the xoshiro256** state of one (seed, path, stream).

    The key is hashed by chained SplitMix64 finalisers, which makes nearby keys
    (seed 0 and 1, path i and i+1) give unrelated states; the four state words
    are then the first four outputs of a SplitMix64 generator started at the
    hash, as Vigna recommends for seeding xoshiro.

    Parameters
    ----------
    states : numpy.ndarray
        ``uint64[4, n]`` generator states (column ``k``: one stream of a path).
    k : int
        Column (stream) written in place.
    seed, path, stream : numpy.uint64
        The run seed, the global path id and the stream id.
    """
    h = splitmix64(seed)
    h = splitmix64(h ^ path)
    h = splitmix64(h ^ (stream * _MIX1))
    for w in range(4):
        states[w, k] = splitmix64(h)
        h = h + _GOLDEN
    if states[0, k] == 0 and states[1, k] == 0 and states[2, k] == 0 and states[3, k] == 0:
        states[0, k] = _GOLDEN  # unreachable in practice; xoshiro needs a non-zero state


@njit(cache=True, inline="always")
def next_u64(states: np.ndarray, k: int) -> np.uint64:
    """Advance a xoshiro256** state and return its next 64-bit output.

    Parameters
    ----------
    states : numpy.ndarray
        ``uint64[4, n]`` generator states.
    k : int
        Column of the stream drawn from (advanced in place).

    Returns
    -------
    numpy.uint64
        The next output, ``rotl(s1 * 5, 7) * 9``.
    """
    s0 = states[0, k]
    s1 = states[1, k]
    s2 = states[2, k]
    s3 = states[3, k]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    states[0, k] = s0
    states[1, k] = s1
    states[2, k] = s2
    states[3, k] = s3
    return result


@njit(cache=True, inline="always")
def next_uniform(states: np.ndarray, k: int) -> float:
    """Return a uniform draw on the open interval (0, 1) with 53 random bits.

    Parameters
    ----------
    states : numpy.ndarray
        ``uint64[4, n]`` generator states.
    k : int
        Column of the stream drawn from (advanced in place).

    Returns
    -------
    float
        ``((u >> 11) + 0.5) * 2**-53``, never exactly 0 or 1.
    """
    return (float(next_u64(states, k) >> np.uint64(11)) + 0.5) * _TWO_POW_M53


@njit(cache=True)
def _normal_tail(states: np.ndarray, k: int, negative: bool) -> float:
    """Draw from the normal tail beyond ``_ZIG_R`` (Marsaglia 1964)."""
    while True:
        x = np.log(next_uniform(states, k)) / _ZIG_R
        y = np.log(next_uniform(states, k))
        if -2.0 * y >= x * x:
            break
    if negative:
        return x - _ZIG_R
    return _ZIG_R - x


@njit(cache=True, inline="always")
def next_normal(states: np.ndarray, k: int) -> float:
    """Return a standard normal draw (128-layer ziggurat, Doornik 2005).

    Parameters
    ----------
    states : numpy.ndarray
        ``uint64[4, n]`` generator states.
    k : int
        Column of the stream drawn from (advanced in place).

    Returns
    -------
    float
        A N(0, 1) variate.
    """
    while True:
        bits = next_u64(states, k)
        u = 2.0 * (float(bits >> np.uint64(11)) * _TWO_POW_M53) - 1.0
        i = np.int64(bits & np.uint64(0x7F))
        if abs(u) < _ZIG_RATIO[i]:
            return u * _ZIG_X[i]
        if i == 0:
            return _normal_tail(states, k, u < 0.0)
        x = u * _ZIG_X[i]
        f0 = np.exp(-0.5 * (_ZIG_X[i] * _ZIG_X[i] - x * x))
        f1 = np.exp(-0.5 * (_ZIG_X[i + 1] * _ZIG_X[i + 1] - x * x))
        if f1 + next_uniform(states, k) * (f0 - f1) < 1.0:
            return x


def stream_id(*parts: str) -> int:
    """Stable 64-bit stream id of a named random source.

    The id depends only on the names (for example ``("site", "childress_h1")``),
    never on the position of the entity in the book, so adding or reordering
    entities does not change any other entity's random numbers.

    Parameters
    ----------
    *parts : str
        Domain tag and entity names.

    Returns
    -------
    int
        An unsigned 64-bit integer.
    """
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@njit(cache=True)
def fill_normals(out: np.ndarray, seed: np.uint64, path0: np.uint64, stream: np.uint64) -> None:
    """Fill ``out[i, :]`` with normals from stream ``stream`` of path ``path0 + i``.

    Used by tests and benchmarks (the cost floor of drawing random numbers).

    Parameters
    ----------
    out : numpy.ndarray
        ``float64[n_paths, n_draws]`` written in place.
    seed, path0, stream : numpy.uint64
        Run seed, first global path id, stream id.
    """
    state = np.empty((4, 1), dtype=np.uint64)
    for i in range(out.shape[0]):
        seed_stream(state, 0, seed, path0 + np.uint64(i), stream)
        for j in range(out.shape[1]):
            out[i, j] = next_normal(state, 0)


@njit(cache=True, inline="always")
def uniforms_lanes(states: np.ndarray, row0: int, out: np.ndarray) -> None:
    """Draw one uniform for each of ``out.shape[0]`` consecutive streams, vectorised.

    Lane ``l`` draws ``next_uniform(states, row0 + l)``: the same number, and the
    same state afterwards, as a call per stream. The lanes' states are advanced
    side by side, so that LLVM runs the generator in vector registers.

    Parameters
    ----------
    states : numpy.ndarray
        ``uint64[4, n]`` generator states.
    row0 : int
        Column of the first lane's stream.
    out : numpy.ndarray
        ``float64[lanes]`` written with the uniforms on (0, 1).
    """
    for lane in range(out.shape[0]):  # next_u64 inlined: LLVM vectorises the loop
        bits = next_u64(states, row0 + lane)
        out[lane] = (float(np.int64(bits >> np.uint64(11))) + 0.5) * _TWO_POW_M53
