"""Field and record indices of the finance kernel (docs/model.md §10).

Plain integer constants shared by the kernel (engine/kernels/finance.py), the
lowering (engine/finance_arrays.py) and the statistics (engine/finance_stats.py).
"""

from __future__ import annotations

# operator fields: ops[O, N_OP_FIELDS]
(
    O_CASH0,
    O_FIXED_OPEX,
    O_OPEX_MW,
    O_LIQUIDITY,
    O_LIQ_SPREAD,
    O_WINDOW,
    O_CASH_LO,
    O_CASH_SCALE,
    O_EBITDA_LO,
    O_EBITDA_SCALE,
    O_PLANNED,
    O_LOSS_LO,
    O_LOSS_SCALE,
    O_LOSS_UNIT,
    O_EL_UNIT,
) = range(15)
N_OP_FIELDS = 15

# phase fields: phases[P, N_PHASE_FIELDS]; PH_PAIR: the phase's (facility, generation)
# collateral pair (-1: not pledged)
(
    PH_OP,
    PH_GEN,
    PH_MW,
    PH_GPUS,
    PH_GPU_CAPEX,
    PH_FREE_GPUS,
    PH_FACILITY,
    PH_DRAW,
    PH_PAIR,
) = range(9)
N_PHASE_FIELDS = 9

# facility fields: facilities[F, N_FACILITY_FIELDS]
(
    F_OP,
    F_PRINCIPAL,
    F_UPFRONT,
    F_FIXED,
    F_RATE,
    F_AMORT_START,
    F_MATURITY,
    F_BALLOON,
    F_MIN_DSCR,
    F_MAX_LTV,
    F_CURE,
    F_FIRST_TEST,
    F_WINDOW,
    F_REFI_A,
    F_REFI_B,
    F_REFI_C,
    F_STRESS,
    F_REFI_TERM,
    F_DISCOUNT,
    F_LIQ_MONTHS,
    F_LOSS_UNIT,
) = range(21)
N_FACILITY_FIELDS = 21

# generation fields: gens[G, N_GEN_FIELDS]: impact decay per month, lambda / installed base
G_DECAY, G_IMPACT = 0, 1
N_GEN_FIELDS = 2

# scalars: fsc[N_SCALARS]
(
    FS_ENABLED,
    FS_MERCHANT_U,
    FS_CH_RENT,
    FS_CH_RESALE,
    FS_CH_ENERGY,
    FS_CH_CAPEX,
    FS_DSCR_LO,
    FS_DSCR_SCALE,
    FS_LTV_SCALE,
) = range(9)
N_SCALARS = 9

# joint targets: targets[J, N_TARGET_FIELDS]; flags
T_MW, T_MONTH, T_DSCR, T_FLAGS = range(4)
N_TARGET_FIELDS = 4
FLAG_MW, FLAG_CUSTOMERS, FLAG_DSCR, FLAG_OPERATORS = 1, 2, 4, 8
#: joint counts: all conditions, then each condition alone (MW, customers, DSCR, operators)
N_JOINT = 5

# monthly sums per operator: month_sums[O, T + 1, N_MONTH_SUMS]
(
    MS_ALIVE,
    MS_CASH,
    MS_EBITDA,
    MS_DSCR,
    MS_DSCR_N,
    MS_LTV,
    MS_LTV_N,
    MS_BREACH,
    MS_FIRST_BREACH,
    MS_DEFAULT,
) = range(10)
N_MONTH_SUMS = 10
#: monthly fan variables (histograms): cash, EBITDA, DSCR, LTV
V_CASH, V_EBITDA, V_DSCR, V_LTV = range(4)
N_FAN = 4

# per-operator path records: op_sums[O, N_OP_SUMS]: defaults by cause, paths with a
# tested DSCR, revenue shortfall (sum, squares), lenders' loss over the operator's
# facilities (sum in USD_UNIT, squares in O_EL_UNIT^2)
(
    R_DEF_COVENANT,
    R_DEF_LIQUIDITY,
    R_DEF_REFINANCING,
    R_TESTED,
    R_LOSS_SUM,
    R_LOSS_SQ,
    R_EL_SUM,
    R_EL_SQ,
) = range(8)
N_OP_SUMS = 8

# per-facility path records: fac_sums[F, N_FAC_SUMS]
(
    FR_DEFAULTS,
    FR_EAD,
    FR_LOSS,
    FR_LOSS_SQ,
    FR_RECOVERED,
    FR_LGD,
    FR_LGD_SQ,
    FR_REFINANCED,
) = range(8)
N_FAC_SUMS = 8

# lane state of the month loop: tuples of N_OP_STATE arrays [O, LANES] and N_FAC_STATE
# arrays [F, LANES] (built in demand_blocks.demand_scratch, one array per field; it
# checks the counts)
# (S_MIN_DSCR stays +inf until a DSCR is tested)
S_CASH, S_MIN_DSCR, S_DEFAULT, S_CAUSE, S_FIRST_BREACH = range(5)
N_OP_STATE = 5
(
    SF_OUT,
    SF_DRAWN,
    SF_BALLOON,
    SF_MATURITY,
    SF_RUN,
    SF_EAD,
    SF_PROCEEDS,
    SF_SELL_FROM,
) = range(8)
N_FAC_STATE = 8
#: Rows of the month loop's lane scratch ``tmp``.
N_TMP = 11
#: A month after every horizon (no default, no breach, no sale).
NEVER = float(1 << 30)

#: Default causes (per operator): covenant, liquidity, refinancing. Several in one month
#: count once, as refinancing, else covenant, else liquidity (docs/model.md §10.2).
CAUSE_COVENANT, CAUSE_LIQUIDITY, CAUSE_REFINANCING = 1, 2, 3
#: Bins of the monthly fans (cash, EBITDA, DSCR, LTV).
FAN_BINS = 512
#: Bins of the revenue-loss histograms (per operator); the minimum DSCR uses FAN_BINS.
PATH_BINS = 2048
#: Caps of the DSCR and LTV summed for the means (the bins clamp at their ends).
DSCR_CAP, LTV_CAP = 10.0, 10.0
#: Fixed-point units: $ per unit of cash/EBITDA/loss sums; ratio units.
USD_UNIT, RATIO_UNIT = 1000.0, 1e-6
