"""Config group ``customers``: how the demand side of a book is simulated.

The customers and contracts themselves are in the book (docs/scenarios.md);
this group holds model switches that apply to every book.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.errors import InputError

__all__ = ["CustomersConfig"]

_SOURCE = "conf/customers/default.yaml"
FAMILIES = ("gaussian", "student_t")


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise InputError(_SOURCE, f"customers.{key}", value, allowed)


@dataclass
class CustomersConfig:
    """Customer defaults, re-letting and switches (docs/model.md section 9).

    Attributes
    ----------
    enabled : bool
        False: no customer defaults and no terminations; renewals happen with
        their probability at par (the market rent does not matter); delivery
        delays still move revenue.
    family : str
        Copula of the customers' latent credit variables: ``gaussian`` (one
        factor, the AI-demand factor) or ``student_t`` (the same, scaled each
        month by one chi-square draw shared by all customers of a path).
    nu : float
        Degrees of freedom of the Student-t option, > 2.
    relet_utilisation : float
        Utilisation of capacity re-let at the market rent after a contract
        ends, is terminated or its customer defaults.
    """

    enabled: bool = True
    family: str = "gaussian"
    nu: float = 6.0
    relet_utilisation: float = 0.7

    def __post_init__(self) -> None:
        _check(isinstance(self.enabled, bool), "enabled", self.enabled, "true or false")
        _check(self.family in FAMILIES, "family", self.family, f"one of {', '.join(FAMILIES)}")
        ok = isinstance(self.nu, int | float) and not isinstance(self.nu, bool)
        _check(
            ok and math.isfinite(self.nu) and 2.0 < self.nu <= 1000.0,
            "nu",
            self.nu,
            "a number in (2, 1000]",
        )
        u = self.relet_utilisation
        ok = isinstance(u, int | float) and not isinstance(u, bool) and 0.0 <= u <= 1.0
        _check(ok, "relet_utilisation", u, "a number in [0, 1]")
