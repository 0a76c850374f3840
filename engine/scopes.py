"""Reporting scopes of a run: the total, each operator, each site, and their value bins.

:func:`build_scopes` lists the scopes of a book with the phases each holds and
the value bins (IT kW, GPUs, milli-H100e) of their histograms. A multi-site scope
is counted by state (docs/architecture.md, "Multi-site scopes count states"): a
mixed-radix code of how many phases of each site are energized, each state
mapped once to its value bin of every measure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.kernels.aggregate import N_MEASURES
from engine.scenario import Book

__all__ = ["MAX_SCOPE_STATES", "MEASURE_SCALE", "Scopes", "build_scopes"]

#: Base units of the capacity measures: IT kW, GPUs, milli-H100-equivalents.
MEASURE_SCALE = (1000.0, 1.0, 1000.0)


@dataclass(frozen=True)
class Scopes:
    """Reporting scopes (each site, each operator, the total) and their value bins.

    Attributes
    ----------
    kind, name, operator : list of str
        Scope type (``total``, ``operator``, ``site``), its id, and its operator
        (empty for the total).
    phase_start, phase_index : numpy.ndarray
        CSR list of the phases of each scope.
    phase_amount : numpy.ndarray
        ``int64[P, 3]`` IT kW, GPUs and milli-H100e added by each phase.
    bin_width, bin_offset, bin_count : numpy.ndarray
        ``int64[n_scopes, 3]`` bin width in base units, first bin in the flat bin
        axis, and number of bins of each scope and measure.
    n_bins : int
        Bins in all.
    exact : numpy.ndarray
        ``bool[n_scopes, 3]`` whether every reachable value sits on the bin lattice
        (then quantiles are exact; otherwise within one bin width).
    per_path : numpy.ndarray
        ``bool[n_scopes]`` scopes spanning several sites, whose histograms need a
        pass per path; a site's follow from its phases' energization months.
    state_offset : numpy.ndarray
        ``int64[n_scopes]`` first state of a scope counted by state (phases
        energized at each of its sites), -1 if counted by value bins.
    entry_state_step : numpy.ndarray
        ``int64[len(phase_index)]`` rise of the scope's state code when the phase
        of that entry is energized (the stride of the phase's site).
    state_bin : numpy.ndarray
        ``int64[n_states, 3]`` flat value bin of each state and measure.
    """

    kind: list[str]
    name: list[str]
    operator: list[str]
    phase_start: np.ndarray
    phase_index: np.ndarray
    phase_amount: np.ndarray
    bin_width: np.ndarray
    bin_offset: np.ndarray
    bin_count: np.ndarray
    n_bins: int
    exact: np.ndarray
    per_path: np.ndarray
    state_offset: np.ndarray
    entry_state_step: np.ndarray
    state_bin: np.ndarray

    @property
    def n_states(self) -> int:
        """States in all (rows of the state histogram)."""
        return int(self.state_bin.shape[0])


#: Largest number of states of a scope counted by state rather than by value bins.
MAX_SCOPE_STATES = 4096


def build_scopes(book: Book, max_bins: int, max_states: int = MAX_SCOPE_STATES) -> Scopes:
    """Build the reporting scopes of a book and choose their value bins.

    Parameters
    ----------
    book : Book
        The validated book.
    max_bins : int
        Upper bound of bins per scope and measure.
    max_states : int
        Largest scope counted per path by state (see :func:`_state_coding`);
        larger ones are counted by value bins. Either gives the same counts.

    Returns
    -------
    Scopes
        Scopes in the order total, operators, sites (book order).
    """
    generations = {g.id: g for g in book.gpu_generations}
    amounts: list[tuple[int, int, int]] = []
    site_phases: list[list[int]] = []
    for site in book.sites:
        ratio = generations[site.gpu_generation].h100_equivalents
        indices = []
        for phase in site.phases:
            indices.append(len(amounts))
            amounts.append(
                (round(phase.it_mw * 1000.0), phase.gpus, round(phase.gpus * ratio * 1000.0))
            )
        site_phases.append(indices)
    kind, name, operator, members = ["total"], ["total"], [""], [list(range(len(amounts)))]
    for op in book.operators:
        kind.append("operator")
        name.append(op.id)
        operator.append(op.id)
        members.append(
            [
                p
                for s, ph in zip(book.sites, site_phases, strict=True)
                if s.operator == op.id
                for p in ph
            ]
        )
    for site, phases in zip(book.sites, site_phases, strict=True):
        kind.append("site")
        name.append(site.id)
        operator.append(site.operator)
        members.append(phases)
    phase_amount = np.array(amounts, dtype=np.int64).reshape(-1, N_MEASURES)
    n_scopes = len(members)
    width = np.ones((n_scopes, N_MEASURES), dtype=np.int64)
    offset = np.zeros((n_scopes, N_MEASURES), dtype=np.int64)
    count = np.zeros((n_scopes, N_MEASURES), dtype=np.int64)
    exact = np.ones((n_scopes, N_MEASURES), dtype=bool)
    n_bins = 0
    for s, phases in enumerate(members):
        for m in range(N_MEASURES):
            values = [int(phase_amount[p, m]) for p in phases]
            total = sum(values)
            step = max(1, math.gcd(*values)) if values else 1
            if total // step + 1 > max_bins:
                step = step * math.ceil(total / step / (max_bins - 1))
                exact[s, m] = False
            width[s, m] = step
            offset[s, m] = n_bins
            count[s, m] = total // step + 1
            n_bins += total // step + 1
    starts = np.cumsum([0] + [len(m) for m in members]).astype(np.int64)
    index = np.array([p for m in members for p in m], dtype=np.int64)
    per_path = np.array([k != "site" for k in kind], dtype=np.bool_)
    state_offset, entry_step, state_bin = _state_coding(
        members, per_path, site_phases, phase_amount, width, offset, max_states
    )
    return Scopes(
        kind,
        name,
        operator,
        starts,
        index,
        phase_amount,
        width,
        offset,
        count,
        n_bins,
        exact,
        per_path,
        state_offset,
        entry_step,
        state_bin,
    )


def _state_coding(
    members: list[list[int]],
    per_path: np.ndarray,
    site_phases: list[list[int]],
    phase_amount: np.ndarray,
    bin_width: np.ndarray,
    bin_offset: np.ndarray,
    max_states: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mixed-radix state codes of the per-path scopes small enough to count by state.

    A scope's state is the number of phases energized at each of its sites; the
    site's digit has radix (its phases + 1) and rises by one, in the site's
    stride, as each phase is energized. A scope with more than ``max_states``
    states is counted by value bins instead.

    Returns
    -------
    tuple of numpy.ndarray
        ``state_offset[n_scopes]``, ``entry_state_step[len(phase_index)]`` and
        ``state_bin[n_states, 3]``.
    """
    site_of = {p: s for s, phases in enumerate(site_phases) for p in phases}
    state_offset = np.full(len(members), -1, dtype=np.int64)
    steps: list[int] = []
    bins: list[np.ndarray] = []
    n_states = 0
    for s, phases in enumerate(members):
        sites = sorted({site_of[p] for p in phases})
        radix = [sum(1 for p in phases if site_of[p] == t) + 1 for t in sites]
        size = math.prod(radix)
        if not per_path[s] or size > max_states:
            steps.extend(0 for _ in phases)
            continue
        stride = {t: math.prod(radix[:k]) for k, t in enumerate(sites)}
        steps.extend(stride[site_of[p]] for p in phases)
        # value of every state: each site's digit k counts its first k phases
        value = np.zeros((size, N_MEASURES), dtype=np.int64)
        code = np.arange(size)
        for t, r in zip(sites, radix, strict=True):
            digit = code // stride[t] % r
            own = [p for p in phases if site_of[p] == t]
            prefix = np.vstack([np.zeros(N_MEASURES, dtype=np.int64), phase_amount[own]])
            value += np.cumsum(prefix, axis=0)[digit]
        bins.append(value // bin_width[s] + bin_offset[s])
        state_offset[s] = n_states
        n_states += size
    state_bin = np.vstack(bins) if bins else np.zeros((0, N_MEASURES), dtype=np.int64)
    return state_offset, np.array(steps, dtype=np.int64), state_bin.astype(np.int64)
