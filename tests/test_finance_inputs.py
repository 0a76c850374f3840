"""Bad finance input: each bad facility, covenant, refinancing or base-rate entry of a
book names its exact key and value; joint targets naming unknown operators or customers
fail when the tables are computed, and bad joint targets are rejected by the config.
"""

from __future__ import annotations

from typing import Any

import pytest
from finance_books import contagion_book, facility, fin_book, fin_settings, fin_site, phase

from engine.errors import InputError
from engine.finance_config import FinanceConfig, JointTarget
from engine.run import compute_tables


def two_operator_data() -> dict[str, Any]:
    """A valid book's arguments: op_a owns site a pledged to fa, op_b site b to fb."""
    ops = [{"id": "op_a"}, {"id": "op_b"}]
    sites = [
        fin_site("a", "op_a", [phase(40.0, 2, "ha")]),
        fin_site("b", "op_b", [phase(40.0, 2, "hb")]),
    ]
    facilities = [facility("fa", "op_a", ["a"]), facility("fb", "op_b", ["b"])]
    return {"operators": ops, "sites": sites, "facilities": facilities}


def edit_facility(k: int, **changes: Any) -> Any:
    """An edit of facility k: set the given keys (None: remove the key)."""

    def edit(data: dict[str, Any]) -> None:
        for key, value in changes.items():
            if value is None:
                data["facilities"][k].pop(key, None)
            else:
                data["facilities"][k][key] = value

    return edit


def add_facility(**fields: Any) -> Any:
    def edit(data: dict[str, Any]) -> None:
        data["facilities"].append(facility("fc", "op_a", ["a"]) | fields)

    return edit


def set_base_rate(value: Any) -> Any:
    def edit(data: dict[str, Any]) -> None:
        data["base_rate"] = value

    return edit


BAD_FINANCE = [
    pytest.param(
        edit_facility(0, collateral_sites=["nowhere"]),
        "facilities[0].collateral_sites",
        "nowhere",
        id="unknown-collateral-site",
    ),
    pytest.param(
        edit_facility(0, collateral_sites=["b"]),
        "facilities[0].collateral_sites",
        "b",
        id="collateral-of-another-operator",
    ),
    pytest.param(
        edit_facility(0, collateral_sites=["a", "a"]),
        "facilities[0].collateral_sites",
        ["a", "a"],
        id="collateral-site-twice",
    ),
    pytest.param(
        add_facility(id="fc"), "facilities[2].collateral_sites", "a", id="site-pledged-twice"
    ),
    pytest.param(
        add_facility(id="fa", collateral_sites=["a"], operator="op_b"),
        "facilities[2].collateral_sites",
        "a",
        id="collateral-of-another-operator-2",
    ),
    pytest.param(
        edit_facility(1, ltv_at_origination=0.6),
        "facilities[1].principal_usd",
        2.0e8,
        id="principal-and-ltv",
    ),
    pytest.param(
        edit_facility(1, principal_usd=None),
        "facilities[1].principal_usd",
        None,
        id="neither-principal-nor-ltv",
    ),
    pytest.param(
        edit_facility(0, fixed_rate=None),
        "facilities[0].fixed_rate",
        None,
        id="neither-fixed-nor-floating",
    ),
    pytest.param(
        edit_facility(0, floating_spread=0.02),
        "facilities[0].fixed_rate",
        0.08,
        id="fixed-and-floating",
    ),
    pytest.param(
        edit_facility(0, operator="op_z"), "facilities[0].operator", "op_z", id="unknown-operator"
    ),
    pytest.param(
        edit_facility(0, draw="monthly"), "facilities[0].draw", "monthly", id="unknown-draw"
    ),
    pytest.param(
        edit_facility(0, amortisation_start_month=49),
        "facilities[0].amortisation_start_month",
        49,
        id="amortisation-after-maturity",
    ),
    pytest.param(
        edit_facility(0, covenants={"min_dcsr": 1.2}),
        "facilities[0].covenants.min_dcsr",
        1.2,
        id="covenant-typo",
    ),
    pytest.param(
        edit_facility(1, refinancing={"failure_probability": 0.0}),
        "facilities[1].refinancing.failure_probability",
        0.0,
        id="refi-probability-0",
    ),
    pytest.param(
        add_facility(id="fa", collateral_sites=["b"], operator="op_b"),
        "facilities[2].id",
        "fa",
        id="duplicate-facility-id",
    ),
    pytest.param(
        set_base_rate({"steps": [[1, 0.04], [1, 0.05]]}),
        "base_rate.steps[1]",
        [1, 0.05],
        id="base-rate-months-not-increasing",
    ),
    pytest.param(
        set_base_rate({"steps": [[3, 0.04], [12, 0.05]]}),
        "base_rate.steps",
        3,
        id="base-rate-first-step-not-month-1",
    ),
    pytest.param(
        set_base_rate({"steps": [[1, 0.04], [12, 1.5]]}),
        "base_rate.steps[1]",
        [12, 1.5],
        id="base-rate-out-of-range",
    ),
    pytest.param(
        set_base_rate({"steps": [[1, 0.04, 0.05]]}),
        "base_rate.steps[0]",
        [1, 0.04, 0.05],
        id="base-rate-step-shape",
    ),
    pytest.param(
        set_base_rate({"rate": 0.04, "steps": [[1, 0.04]]}),
        "base_rate.rate",
        0.04,
        id="base-rate-both",
    ),
]


@pytest.mark.parametrize(("edit", "key", "value"), BAD_FINANCE)
def test_bad_finance_entries_name_the_exact_key(edit: Any, key: str, value: Any) -> None:
    data = two_operator_data()
    edit(data)
    with pytest.raises(InputError) as err:
        fin_book(
            data["operators"], data["sites"], data["facilities"], base_rate=data.get("base_rate")
        )
    assert err.value.key == key, err.value.message()
    assert err.value.value == value, err.value.message()
    assert err.value.source == "finance-test"


@pytest.mark.parametrize("kind", ["operators", "customers"])
def test_a_joint_target_naming_an_unknown_id_fails_when_the_tables_are_computed(kind: str) -> None:
    """The config is checked against the book when a run starts (check_targets)."""
    book = contagion_book(1.0)
    known = {"operators": "op_a", "customers": "weak"}[kind]
    target = JointTarget("t", no_operator_default=True, **{kind: [known, "nobody"]})
    s = fin_settings(10, 12, targets=[target])
    with pytest.raises(InputError) as err:
        compute_tables(book, s, threads=1)
    assert err.value.key == f"finance.joint_targets[0].{kind}"
    assert err.value.value == "nobody"


def test_bad_joint_targets_are_rejected_by_the_config() -> None:
    with pytest.raises(InputError) as err:
        FinanceConfig(
            joint_targets=[
                JointTarget("t", no_operator_default=True),
                JointTarget("t", min_dscr=1.0),
            ]
        )
    assert err.value.key == "finance.joint_targets[1].name"
    with pytest.raises(InputError) as err:
        FinanceConfig(joint_targets=[JointTarget("empty")])
    assert err.value.key == "finance.joint_targets[0]"
    with pytest.raises(InputError) as err:
        FinanceConfig(joint_targets=[JointTarget("t", mw_online_share=1.5)])
    assert err.value.key == "finance.joint_targets[0].mw_online_share"
