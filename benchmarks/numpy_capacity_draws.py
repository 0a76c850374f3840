"""Schedule draws of the plain-NumPy capacity model: durations, copula, copper squeeze.

``numpy_capacity.py`` draws each item's duration from the engine's PERT quantile
tables (or its lognormal or fixed form) at a normal score mixed by the nested
one-factor copula (operator, campus, own noise), and stretches equipment lead
times by the months of copper squeeze on the path (:class:`SqueezePaths`, the
same two-state chain as the market model).
"""

from __future__ import annotations

import numpy as np

from engine.book import DIST_FIXED, DIST_LOGNORMAL, PERT_GRID_POINTS, PERT_Z_MAX, CapacityArrays

__all__ = ["SqueezePaths", "copula", "duration"]

#: Normal-score step of the PERT quantile tables.
_DZ = 2.0 * PERT_Z_MAX / (PERT_GRID_POINTS - 1)


def duration(arrays: CapacityArrays, item: int, z: np.ndarray) -> np.ndarray:
    """Durations in months of one item at copula normals ``z`` (``float64[n]``)."""
    dist = arrays.item_dist[item]
    if dist == DIST_FIXED:
        return np.full(z.shape, arrays.item_p1[item])
    if dist == DIST_LOGNORMAL:
        return np.exp(arrays.item_p1[item] + arrays.item_p2[item] * z)
    # linear interpolation on the uniform z grid of the PERT quantile table
    table = arrays.pert_tables[arrays.item_table[item]]
    x = z + PERT_Z_MAX
    x *= 1.0 / _DZ
    np.clip(x, 0.0, PERT_GRID_POINTS - 1.0, out=x)
    j = x.astype(np.intp)
    np.minimum(j, PERT_GRID_POINTS - 2, out=j)
    x -= j
    low = table[j]
    high = table[j + 1]
    high -= low
    high *= x
    high += low
    return high


def copula(own: np.ndarray, operator: np.ndarray, campus: np.ndarray) -> np.ndarray:
    """Copula normals z = own + operator + campus terms (weights already applied).

    ``own`` is overwritten with the result and returned.
    """
    own += operator
    own += campus
    return own


class SqueezePaths:
    """Copper squeeze history of a chunk's paths, as segments of constant regime.

    As the engine (engine/kernels/factors.py): the month of the next switch,
    counted from the last, is geometric, K = floor(ln u / ln(1 - p)) + 1 with p the
    probability of leaving the current regime; segments are drawn, for all paths
    at once, until every path's history covers the longest lead time asked for.
    Equipment work w progresses at 1/f in squeeze months and ends at
    (start - 1) + (w - work done before the segment) / pace in the segment where
    the work done reaches w.
    """

    def __init__(self, squeeze: np.ndarray, rng: np.random.Generator, n_paths: int) -> None:
        self.initial, self.enter, self.leave, self.factor = squeeze
        self.rng = rng
        if self.initial == 2:
            p = self.enter / (self.enter + self.leave)
            regime = rng.random(n_paths) < p
        else:
            regime = np.full(n_paths, bool(self.initial))
        self.regime = regime
        self.first = regime  # the regime of the first segment (from month 1)
        self.start = [np.ones(n_paths)]
        self.end = [self._spell(regime)]  # from month 0: first month of the next segment
        self.pace = [np.where(regime, 1.0 / self.factor, 1.0)]
        self.done = [np.zeros(n_paths)]
        self._stacked: tuple[np.ndarray, ...] | None = None

    def _spell(self, regime: np.ndarray) -> np.ndarray:
        p = np.where(regime, self.leave, self.enter)
        with np.errstate(divide="ignore"):
            months = np.log(self.rng.random(regime.size)) / np.log1p(-np.minimum(p, 1.0))
        months = np.where(p >= 1.0, 0.0, months)
        return np.where(p > 0.0, np.floor(np.minimum(months, 2.0**40)) + 1.0, 2.0**40)

    def _covered(self) -> np.ndarray:
        return self.done[-1] + (self.end[-1] - self.start[-1]) * self.pace[-1]

    def _extend(self) -> None:
        self.done.append(self._covered())
        self.regime = ~self.regime
        self.start.append(self.end[-1])
        self.end.append(self.start[-1] + self._spell(self.regime))
        self.pace.append(np.where(self.regime, 1.0 / self.factor, 1.0))

    def by_month(self, horizon: int) -> np.ndarray:
        """``bool[T + 1, n]`` True in the squeeze months 1..T (row 0: the regime before month 1).

        Segments are drawn on until every path's history covers month T; the
        regime of month m is the first one switched once per segment end <= m.
        """
        while np.min(self.end[-1]) <= horizon:
            self._extend()
        n = self.first.shape[0]
        path = np.arange(n)
        switches = np.zeros((horizon + 2, n), dtype=np.int16)
        for end in self.end:
            at = np.minimum(end, horizon + 1).astype(np.intp)
            switches[at, path] += 1
        np.cumsum(switches, axis=0, out=switches)
        return (switches[: horizon + 1] % 2 == 1) ^ self.first

    def stretch(self, work: np.ndarray) -> np.ndarray:
        """Calendar months to finish ``work`` months of equipment lead time."""
        if self.factor == 1.0:
            return work
        finite = np.isfinite(work)
        w = np.where(finite, work, 0.0)
        while np.any(self._covered() < w):
            self._extend()
        if self._stacked is None or self._stacked[0].shape[0] != len(self.start):
            start, end = np.stack(self.start), np.stack(self.end)
            pace, done = np.stack(self.pace), np.stack(self.done)
            self._stacked = (start, pace, done, done + (end - start) * pace)
        start, pace, done, covered = self._stacked
        j = np.argmax(covered >= w, axis=0)  # first segment reaching w
        rows = np.arange(w.size)
        out = (start[j, rows] - 1.0) + (w - done[j, rows]) / pace[j, rows]
        return np.where(finite, np.where(w > 0, out, w), work)
