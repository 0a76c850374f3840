"""One month of a market for a group of lanes (paths), and the month-indexed constants.

The market kernel (engine/kernels/market_block.py) calls these inline functions
once per month for its ``LANES`` paths. Factor states are ``float64[..., LANES]``;
vector loops run over all lanes, draws only for the first ``n_active`` lanes,
each from its own stream column ``row0 + lane`` of the generator states, in the
order docs/model.md §7.1 gives for a single path.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.kernels.factors import NEVER, poisson_inverse, squeeze_spell, squeeze_start
from engine.kernels.lanes import LANES, exp_lanes
from engine.market_layout import (
    G_AGE0,
    G_DRIFT,
    G_ELASTICITY,
    G_LN_KEEP,
    G_LN_NEW,
    G_LN_RENT,
    G_LN_STEP,
    G_SUCC_HI,
    G_SUCC_LO,
    R_ADDER,
    R_CAP0,
    R_CAP_MU,
    R_CAP_SIGMA,
    R_CURTAIL_P,
    R_LN_PRICE,
    R_OU_A,
    R_OU_B,
    R_PPA_SHARE,
    R_SPIKE_DECAY,
    R_SPIKE_MEAN,
    R_SPIKE_MU,
    R_SPIKE_SD,
    S_CHI0,
    S_CU_A,
    S_CU_B,
    S_CU_JUMP_MEAN,
    S_CU_JUMP_MU,
    S_CU_JUMP_SD,
    S_CU_RHO,
    S_D0,
    S_SQ_ENTER,
    S_SQ_EXIT,
    S_SQ_INITIAL,
    S_XI0,
    S_XI_DRIFT,
    S_XI_SD,
)
from engine.rng import next_normal, next_uniform, seed_stream, uniforms_lanes

__all__ = [
    "ST_COPPER",
    "ST_SQUEEZE",
    "copper_draws",
    "electricity_draws",
    "month_constants",
    "resale_lanes",
    "start_lanes",
]

#: Stream columns (x LANES) of the copper factor's own draws and of its squeeze regime.
ST_COPPER, ST_SQUEEZE = 1, 2


@njit(cache=True)
def month_constants(
    region: np.ndarray,
    season: np.ndarray,
    ppa_price: np.ndarray,
    gpu: np.ndarray,
    fire_sale_keep: np.ndarray,
    first_moy: int,
    horizon: int,
) -> tuple:
    """Deterministic parts of the factors by month ``0 .. horizon``.

    Returns
    -------
    tuple
        ``energy_base[R, T+1]`` ln level + seasonality of the energy price
        (ln $/MWh); ``fixed_cost[R, T+1]`` the hedged and delivery part of the
        all-in price ($/MWh); ``rent_trend[G, T+1]`` ln rent trend (ln
        $/GPU-hr); ``resale_base[G, T+1]`` ln new price + age x ln(1 - decay) +
        ln(1 - fire-sale impact) (ln $/GPU); ``resale_log_factor`` and
        ``resale_factor`` = that - ln trend and its exp (resale = rent x factor
        when the elasticity is 1); ``unit_elasticity[G]``; ``step_factor[G]``
        exp of the successor step-down.
    """
    n_regions, n_gens = region.shape[0], gpu.shape[0]
    energy_base = np.empty((n_regions, horizon + 1))
    fixed_cost = np.empty((n_regions, horizon + 1))
    for r in range(n_regions):
        for t in range(horizon + 1):
            moy = (max(t, 1) - 1 + first_moy) % 12
            year = max(t - 1, 0) // 12
            energy_base[r, t] = region[r, R_LN_PRICE] + season[r, moy]
            fixed_cost[r, t] = region[r, R_PPA_SHARE] * ppa_price[r, year] + region[r, R_ADDER]
    rent_trend = np.empty((n_gens, horizon + 1))
    resale_base = np.empty((n_gens, horizon + 1))
    resale_log_factor = np.empty((n_gens, horizon + 1))
    resale_factor = np.empty((n_gens, horizon + 1))
    unit_elasticity = np.empty(n_gens, dtype=np.bool_)
    step_factor = np.empty(n_gens)
    for g in range(n_gens):
        unit_elasticity[g] = gpu[g, G_ELASTICITY] == 1.0
        step_factor[g] = math.exp(gpu[g, G_LN_STEP])
        for t in range(horizon + 1):
            rent_trend[g, t] = gpu[g, G_LN_RENT] + gpu[g, G_DRIFT] * t
            keep = fire_sale_keep[g, t]
            base = gpu[g, G_LN_NEW] + (gpu[g, G_AGE0] + t / 12.0) * gpu[g, G_LN_KEEP]
            base += math.log(keep) if keep > 0.0 else -math.inf
            resale_base[g, t] = base
            resale_log_factor[g, t] = base - (gpu[g, G_LN_RENT] + gpu[g, G_DRIFT] * t)
            resale_factor[g, t] = math.exp(resale_log_factor[g, t])
    return (
        energy_base,
        fixed_cost,
        rent_trend,
        resale_base,
        resale_log_factor,
        resale_factor,
        unit_elasticity,
        step_factor,
    )


@njit(cache=True, inline="always")
def electricity_draws(
    rng: np.ndarray,
    row0: int,
    r: int,
    region: np.ndarray,
    spike_p0: float,
    new_year: bool,
    n_active: int,
    z: np.ndarray,
    z_row: int,
    x_ou: np.ndarray,
    y_spike: np.ndarray,
    log_charge: np.ndarray,
    charge: np.ndarray,
    spikes: np.ndarray,
    event: np.ndarray,
    uniform: np.ndarray,
) -> None:
    """Advance region ``r``'s stochastic electricity by one month for every lane.

    OU step on the copula score ``z[z_row]``, spike decay, the month's spike
    count (one uniform) and sizes (one normal each), at a new year the
    lognormal capacity-charge step (one normal if its sigma > 0, in $/MW-day),
    and the curtailment event (one uniform). ``event`` must hold False on entry.
    """
    ou_a, ou_b = region[r, R_OU_A], region[r, R_OU_B]
    decay = region[r, R_SPIKE_DECAY]
    for lane in range(LANES):
        x_ou[r, lane] = ou_a * x_ou[r, lane] + ou_b * z[z_row, lane]
        y_spike[r, lane] *= decay
    mean, mu, sd = region[r, R_SPIKE_MEAN], region[r, R_SPIKE_MU], region[r, R_SPIKE_SD]
    if mean > 0.0:
        uniforms_lanes(rng, row0, uniform)
        for lane in range(n_active):
            spikes[lane] = poisson_inverse(uniform[lane], mean, spike_p0)
            for _ in range(spikes[lane]):
                y_spike[r, lane] += mu + sd * next_normal(rng, row0 + lane)
    else:
        spikes[:] = 0
    if new_year:
        cap_mu, cap_sigma = region[r, R_CAP_MU], region[r, R_CAP_SIGMA]
        for lane in range(n_active):
            step = cap_mu
            if cap_sigma > 0.0:
                step += cap_sigma * next_normal(rng, row0 + lane)
            log_charge[r, lane] += step
            charge[r, lane] = math.exp(log_charge[r, lane])
    p_event = region[r, R_CURTAIL_P]
    if p_event > 0.0:
        uniforms_lanes(rng, row0, uniform)
        for lane in range(LANES):
            event[lane] = uniform[lane] < p_event


@njit(cache=True, inline="always")
def copper_draws(
    rng: np.ndarray,
    t: int,
    n_active: int,
    scalars: np.ndarray,
    jump_p0: float,
    z: np.ndarray,
    z_row: int,
    chi: np.ndarray,
    xi: np.ndarray,
    own: np.ndarray,
    jumps: np.ndarray,
    squeeze: np.ndarray,
    switch: np.ndarray,
    uniform: np.ndarray,
) -> None:
    """Advance the stochastic copper factors by one month for every lane.

    Squeeze switches due in month ``t`` (a new geometric spell drawn at each),
    the short-term OU ``chi`` on the copula score ``z[z_row]``, the long-term
    level ``xi`` with drift, its own normal correlated with the short-term
    shock, and the month's jumps (one uniform for the count, one normal each).
    """
    enter, leave = scalars[S_SQ_ENTER], scalars[S_SQ_EXIT]
    for lane in range(n_active):
        if t == switch[lane]:  # spells drawn as geometric months (factors.py)
            squeeze[lane] = 1 - squeeze[lane]
            switch[lane] = t + squeeze_spell(
                rng, ST_SQUEEZE * LANES + lane, squeeze[lane], enter, leave
            )
        own[lane] = next_normal(rng, ST_COPPER * LANES + lane)
    cu_a, cu_b, rho = scalars[S_CU_A], scalars[S_CU_B], scalars[S_CU_RHO]
    rho_own = math.sqrt(1.0 - rho * rho)
    drift, sd = scalars[S_XI_DRIFT], scalars[S_XI_SD]
    for lane in range(LANES):
        chi[lane] = cu_a * chi[lane] + cu_b * z[z_row, lane]
        xi[lane] = (xi[lane] + drift) + sd * (rho * z[z_row, lane] + rho_own * own[lane])
    j_mean, j_mu, j_sd = scalars[S_CU_JUMP_MEAN], scalars[S_CU_JUMP_MU], scalars[S_CU_JUMP_SD]
    if j_mean > 0.0:
        uniforms_lanes(rng, ST_COPPER * LANES, uniform)
        for lane in range(n_active):
            jumps[lane] = poisson_inverse(uniform[lane], j_mean, jump_p0)
            for _ in range(jumps[lane]):
                xi[lane] += j_mu + j_sd * next_normal(rng, ST_COPPER * LANES + lane)
    else:
        jumps[:] = 0


@njit(cache=True, inline="always")
def start_lanes(
    rng: np.ndarray,
    seed: np.uint64,
    first_path: np.uint64,
    n_active: int,
    streams: np.ndarray,
    scalars: np.ndarray,
    region: np.ndarray,
    gpu: np.ndarray,
    copper_on: bool,
    gpu_on: bool,
    horizon: int,
    eps: np.ndarray,
    demand: np.ndarray,
    chi: np.ndarray,
    xi: np.ndarray,
    gpu_regime: np.ndarray,
    squeeze: np.ndarray,
    switch: np.ndarray,
    n_curtailed: np.ndarray,
    x_ou: np.ndarray,
    y_spike: np.ndarray,
    charge: np.ndarray,
    log_charge: np.ndarray,
    y_gpu: np.ndarray,
    launch: np.ndarray,
) -> None:
    """Seed the lanes' streams (paths ``first_path ..``) and set every factor to month 0.

    Per path: the squeeze regime before month 1 and its first spell (copper
    squeeze stream), and each generation's successor launch month, uniform on
    its window (one uniform from the generation's stream; the window's middle
    when the GPU market is off). Idle lanes (``>= n_active``) get zero shocks.
    """
    n_regions = region.shape[0]
    for lane in range(n_active):
        path = first_path + np.uint64(lane)
        for k in range(streams.shape[0]):
            seed_stream(rng, k * LANES + lane, seed, path, streams[k])
    eps[:, n_active:] = 0.0  # idle lanes compute finite nonsense, never recorded
    for lane in range(LANES):
        demand[lane] = scalars[S_D0]
        chi[lane] = scalars[S_CHI0]
        xi[lane] = scalars[S_XI0]
        gpu_regime[lane] = 1
        squeeze[lane] = 0
        switch[lane] = NEVER
    for r in range(n_regions):
        c0 = region[r, R_CAP0]
        for lane in range(LANES):
            n_curtailed[r, lane] = 0
            x_ou[r, lane] = 0.0
            y_spike[r, lane] = 0.0
            charge[r, lane] = c0
            log_charge[r, lane] = math.log(c0) if c0 > 0.0 else -math.inf
    if copper_on:
        initial = int(scalars[S_SQ_INITIAL])
        enter, leave = scalars[S_SQ_ENTER], scalars[S_SQ_EXIT]
        for lane in range(n_active):
            row = ST_SQUEEZE * LANES + lane
            squeeze[lane] = squeeze_start(rng, row, initial, enter, leave)
            switch[lane] = squeeze_spell(rng, row, squeeze[lane], enter, leave)
    for g in range(gpu.shape[0]):
        lo, hi = gpu[g, G_SUCC_LO], gpu[g, G_SUCC_HI]
        for lane in range(LANES):
            y_gpu[g, lane] = 0.0
            if lo < 0:
                launch[g, lane] = horizon + 1
            elif gpu_on and lane < n_active:
                u = next_uniform(rng, (4 + n_regions + g) * LANES + lane)
                launch[g, lane] = int(lo) + int(u * (hi - lo + 1.0))
            else:
                launch[g, lane] = int((lo + hi) // 2)


@njit(cache=True, inline="always")
def resale_lanes(
    t: int,
    g: int,
    gpu: np.ndarray,
    launch: np.ndarray,
    trend: float,
    resale_base: np.ndarray,
    resale_log_factor: np.ndarray,
    resale_factor: np.ndarray,
    step_factor: np.ndarray,
    unit_elasticity: np.ndarray,
    log_value: np.ndarray,
    value: np.ndarray,
    bits: np.ndarray,
    pow2: np.ndarray,
) -> None:
    """Turn generation ``g``'s ln rent and rent (in place) into ln resale and resale ($/GPU).

    ln resale = resale_base + elasticity x (ln rent - ln trend) + the successor
    step-down from the launch month on. With elasticity 1 that is rent x a
    factor of the month, so no exponential is needed.
    """
    ln_step, step = gpu[g, G_LN_STEP], step_factor[g]
    if unit_elasticity[g]:
        ln_f, f_resale = resale_log_factor[g, t], resale_factor[g, t]
        for lane in range(LANES):
            after = t >= launch[g, lane]
            log_value[lane] = log_value[lane] + ln_f + (ln_step if after else 0.0)
            value[lane] = value[lane] * f_resale * (step if after else 1.0)
    else:
        base, elasticity = resale_base[g, t], gpu[g, G_ELASTICITY]
        for lane in range(LANES):
            after = t >= launch[g, lane]
            log_value[lane] = (
                base + elasticity * (log_value[lane] - trend) + (ln_step if after else 0.0)
            )
        exp_lanes(log_value, value, bits, pow2)
