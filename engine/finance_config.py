"""Config group ``finance``: the finance switch and the joint targets of a run.

Debt facilities and operators' cash are in the book (docs/scenarios.md); this
group holds what applies to every book: whether finance is simulated, and the
targets whose joint probability ``joint_confidence.parquet`` reports. Targets
may name operators or customers; those names are checked against the book when
a run starts (:func:`check_targets`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InputError

__all__ = ["FinanceConfig", "JointTarget", "check_targets"]

_SOURCE = "conf/finance/default.yaml"


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise InputError(_SOURCE, f"finance.{key}", value, allowed)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


@dataclass
class JointTarget:
    """Targets that must all hold on the same path (unset conditions are not tested).

    Attributes
    ----------
    name : str
        Label of the row in ``joint_confidence``.
    mw_online_share : float or None
        At least this share of the IT MW of the named operators' sites (all
        operators when none is named) energized ...
    by_month : int
        ... by this month.
    no_customer_default : bool
        None of the named customers (all when none is named) defaults within the horizon.
    min_dscr : float or None
        The DSCR of each named operator stays at or above this in every tested month.
    no_operator_default : bool
        None of the named operators defaults within the horizon.
    operators, customers : list of str
        Ids the conditions apply to (empty: all of the book's).
    """

    name: str = "target"
    mw_online_share: float | None = None
    by_month: int = 24
    no_customer_default: bool = False
    min_dscr: float | None = None
    no_operator_default: bool = False
    operators: list[str] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)


def _default_targets() -> list[JointTarget]:
    return [
        JointTarget("delivered_m36", mw_online_share=0.9, by_month=36),
        JointTarget("no_default", no_customer_default=True, no_operator_default=True),
        JointTarget(
            "delivered_solvent_covered",
            mw_online_share=0.9,
            by_month=36,
            no_customer_default=True,
            min_dscr=1.2,
            no_operator_default=True,
        ),
    ]


@dataclass
class FinanceConfig:
    """Finance switch and joint targets (docs/model.md section 10).

    Attributes
    ----------
    enabled : bool
        False: no operator cash flows, debt or fire sales are simulated (the
        finance tables are not written).
    contagion : bool
        False: GPUs sold by lenders after a default do not move the resale price
        (no fire-sale impact within the book); a sweep over true/false measures
        contagion with common random numbers.
    joint_targets : list of JointTarget
        Targets reported in ``joint_confidence.parquet``.
    """

    enabled: bool = True
    contagion: bool = True
    joint_targets: list[JointTarget] = field(default_factory=_default_targets)

    def __post_init__(self) -> None:
        _check(isinstance(self.enabled, bool), "enabled", self.enabled, "true or false")
        _check(isinstance(self.contagion, bool), "contagion", self.contagion, "true or false")
        names: set[str] = set()
        for i, t in enumerate(self.joint_targets):
            key = f"joint_targets[{i}]"
            if isinstance(t, dict):  # plain data from a command-line override
                _check(False, key, t, "a mapping with the keys of JointTarget")
            _check(
                isinstance(t.name, str) and bool(t.name.strip()) and t.name not in names,
                f"{key}.name",
                t.name,
                "a non-empty name, unique among the targets",
            )
            names.add(t.name)
            share = t.mw_online_share
            _check(
                share is None or (_is_number(share) and 0.0 <= share <= 1.0),
                f"{key}.mw_online_share",
                share,
                "null or a share in [0, 1]",
            )
            ok = isinstance(t.by_month, int) and not isinstance(t.by_month, bool)
            _check(ok and 1 <= t.by_month <= 1200, f"{key}.by_month", t.by_month, "1..1200")
            for flag in ("no_customer_default", "no_operator_default"):
                value = getattr(t, flag)
                _check(isinstance(value, bool), f"{key}.{flag}", value, "true or false")
            _check(
                t.min_dscr is None or (_is_number(t.min_dscr) and -100.0 <= t.min_dscr <= 100.0),
                f"{key}.min_dscr",
                t.min_dscr,
                "null or a number in [-100, 100]",
            )
            conditions = (
                share is not None,
                t.no_customer_default,
                t.min_dscr is not None,
                t.no_operator_default,
            )
            _check(
                any(conditions),
                key,
                t.name,
                "at least one condition: mw_online_share, no_customer_default, min_dscr, "
                "no_operator_default",
            )


def check_targets(config: FinanceConfig, operators: list[str], customers: list[str]) -> None:
    """Check that every operator and customer a target names is in the book."""
    for i, t in enumerate(config.joint_targets):
        for kind, names, known in (
            ("operators", t.operators, operators),
            ("customers", t.customers, customers),
        ):
            for name in names:
                _check(
                    name in known,
                    f"joint_targets[{i}].{kind}",
                    name,
                    f"ids of the book's {kind} ({', '.join(known) or 'none'})",
                )
