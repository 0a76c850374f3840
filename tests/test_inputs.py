"""Bad input: one message naming file, key, value and what is allowed; exit 2; nothing written."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.resources import scenarios_dir

REFERENCE: dict[str, Any] = yaml.safe_load((scenarios_dir() / "reference.yaml").read_text())


def ncrisk(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m engine`` (the ``ncrisk`` console script) in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_rejected(done: subprocess.CompletedProcess[str], cwd: Path, *expected: str) -> None:
    """Exit 2, one message with every expected fragment, no traceback, no results."""
    assert done.returncode == 2, done.stdout + done.stderr
    message = done.stderr
    assert "Traceback" not in message + done.stdout
    assert message.startswith("ncrisk: invalid input in ")
    for fragment in ("key:", "value:", "allowed:", *expected):
        assert fragment in message, message
    leftovers = [p for p in cwd.rglob("*") if p.is_file() and p.suffix != ".yaml"]
    assert leftovers == [], leftovers


def write_book(tmp_path: Path, edit: Any) -> Path:
    book = copy.deepcopy(REFERENCE)
    edit(book)
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(book, sort_keys=False))
    return path


def set_value(path: list[Any], value: Any) -> Any:
    def edit(book: dict[str, Any]) -> None:
        node: Any = book
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return edit


BOOK_ERRORS = [
    pytest.param(
        set_value(["sites", 0, "phases", 0, "it_mw"], -50),
        "sites[0].phases[0].it_mw",
        "-50",
        "MW > 0",
        id="negative-mw",
    ),
    pytest.param(
        set_value(["sites", 1, "phases", 0, "it_mw"], 0),
        "sites[1].phases[0].it_mw",
        "0",
        "MW > 0",
        id="zero-mw",
    ),
    pytest.param(
        set_value(["sites", 0, "schedule", 0, "min"], 5),
        "sites[0].schedule[0].min",
        "5",
        "min <= mode",
        id="pert-min-above-mode",
    ),
    pytest.param(
        set_value(["sites", 0, "phases", 0, "schedule", 0, "mode"], 99),
        "sites[0].phases[0].schedule[0].mode",
        "99",
        "mode <= max",
        id="pert-mode-above-max",
    ),
    pytest.param(
        set_value(["sites", 1, "id"], "horizon_h1"),
        "sites[1].id",
        "horizon_h1",
        "an id not used by another site",
        id="duplicate-site-id",
    ),
    pytest.param(
        set_value(["sites", 2, "region"], "caiso"),
        "sites[2].region",
        "caiso",
        "one of the regions: ercot_west, pjm_east",
        id="unknown-region",
    ),
    pytest.param(
        set_value(["sites", 2, "operator"], "acme"),
        "sites[2].operator",
        "acme",
        "one of the operators",
        id="unknown-operator",
    ),
    pytest.param(
        set_value(["sites", 2, "gpu_generation"], "rubin"),
        "sites[2].gpu_generation",
        "rubin",
        "one of the GPU generations: gb300, b200, h100",
        id="unknown-gpu-generation",
    ),
    pytest.param(
        set_value(["sites", 0, "phases", 0, "it_mv"], 50),
        "sites[0].phases[0].it_mv",
        "50",
        "a known key",
        id="unknown-key-in-book",
    ),
    pytest.param(
        set_value(["sites", 0, "pue"], "high"),
        "sites[0].pue",
        "high",
        "a number in [1.0, 3.0]",
        id="wrong-type-in-book",
    ),
    pytest.param(
        set_value(["regions", 0, "withdrawal_probability"], 1.5),
        "regions[0].withdrawal_probability",
        "1.5",
        "[0.0, 1.0]",
        id="probability-above-one",
    ),
    pytest.param(
        set_value(["sites", 0, "schedule", 0, "dist"], "weibull"),
        "sites[0].schedule[0].dist",
        "weibull",
        "one of: pert, lognormal, fixed",
        id="unknown-distribution",
    ),
]


@pytest.mark.parametrize(("edit", "key", "value", "allowed"), BOOK_ERRORS)
def test_bad_book_is_rejected(
    tmp_path: Path, edit: Any, key: str, value: str, allowed: str
) -> None:
    book = write_book(tmp_path, edit)
    done = ncrisk([f"scenario={book}", "run.n_paths=100"], tmp_path)
    assert_rejected(done, tmp_path, str(book), key, value, allowed)


CONFIG_ERRORS = [
    pytest.param(
        ["scenario=no_such_book"], "scenario", "no_such_book", "reference", id="unknown-scenario"
    ),
    pytest.param(["run.sed=1"], "run.sed", "1", "run.seed", id="unknown-key"),
    pytest.param(["run.seed=abc"], "run.seed", "abc", "an integer", id="wrong-type"),
    pytest.param(["run.n_paths=0"], "run.n_paths", "0", ">= 1", id="zero-paths"),
    pytest.param(
        ["run.horizon_months=0"], "run.horizon_months", "0", "from 1 to 600", id="horizon-zero"
    ),
    pytest.param(
        ["capacity.delay_correlation.operator=1.5"],
        "capacity.delay_correlation.operator",
        "1.5",
        "[-1, 1]",
        id="correlation-above-one",
    ),
    pytest.param(
        ["capacity.delay_correlation.campus=-1.2"],
        "capacity.delay_correlation.campus",
        "-1.2",
        "[-1, 1]",
        id="correlation-below-minus-one",
    ),
    pytest.param(
        ["capacity.delay_correlation.operator=0.7"],
        "capacity.delay_correlation.campus",
        "0.6",
        ">= capacity.delay_correlation.operator",
        id="campus-below-operator",
    ),
    pytest.param(["run=fast"], "run", "fast", "one of the run configs", id="unknown-group-option"),
    pytest.param(
        ["+run.extra=1"], "run.extra", "+run.extra=1", "a key the config already has", id="append"
    ),
    pytest.param(["run.seed=1,2"], "run.seed", "1,2", "add -m to sweep", id="sweep-without-m"),
    pytest.param(
        ["finance.contagion=maybe"], "finance.contagion", "maybe", "true or false", id="contagion"
    ),
    pytest.param(
        ["finance.joint_targets=[{name: x, by_month: 0, no_operator_default: true}]"],
        "finance.joint_targets[0].by_month",
        "0",
        "1..1200",
        id="joint-target-month",
    ),
    pytest.param(
        ["finance.joint_targets=[{nme: x}]"],
        "finance.joint_targets[0].nme",
        "x",
        "a known key: name",
        id="joint-target-key",
    ),
]


@pytest.mark.parametrize(("args", "key", "value", "allowed"), CONFIG_ERRORS)
def test_bad_config_is_rejected(
    tmp_path: Path, args: list[str], key: str, value: str, allowed: str
) -> None:
    done = ncrisk(args, tmp_path)
    assert_rejected(done, tmp_path, key, value, allowed)


def test_error_in_conf_file_names_the_file(tmp_path: Path) -> None:
    """A bad value that no override set is attributed to the config file it came from."""
    done = ncrisk(["capacity.delay_correlation.operator=0.7"], tmp_path)
    assert str(Path("conf") / "capacity" / "default.yaml") in done.stderr
    assert "(0.7)" in done.stderr


def test_bad_value_in_a_sweep_is_caught_before_any_job(tmp_path: Path) -> None:
    done = ncrisk(["-m", "run.n_paths=100,0", "paths.results_dir=out"], tmp_path)
    assert_rejected(done, tmp_path, "run.n_paths", "0")
    assert not (tmp_path / "out").exists()


def test_duplicate_yaml_key_is_rejected(tmp_path: Path) -> None:
    text = (scenarios_dir() / "reference.yaml").read_text()
    book = tmp_path / "dup.yaml"
    book.write_text(text.replace("name: reference\n", "name: reference\nname: again\n", 1))
    assert_rejected(
        ncrisk([f"scenario={book}"], tmp_path), tmp_path, "given twice", "name", "line 5"
    )


def test_yaml_tags_cannot_run_code(tmp_path: Path) -> None:
    """A book is data: a Python object tag is a YAML error, never an import."""
    book = tmp_path / "evil.yaml"
    marker = tmp_path / "pwned"
    book.write_text(f"!!python/object/apply:os.system ['touch {marker}']\n")
    done = ncrisk([f"scenario={book}"], tmp_path)
    assert_rejected(done, tmp_path, "valid YAML")
    assert not marker.exists()


def test_target_key_in_a_book_is_just_an_unknown_key(tmp_path: Path) -> None:
    """``_target_`` in a book is never instantiated: it is rejected as an unknown key."""
    book = write_book(tmp_path, set_value(["_target_"], "os.system"))
    done = ncrisk([f"scenario={book}"], tmp_path)
    assert_rejected(done, tmp_path, "_target_", "a known key")


def test_misspelled_required_key_is_pointed_out(tmp_path: Path) -> None:
    def edit(book: dict[str, Any]) -> None:
        phase = book["sites"][0]["phases"][0]
        phase["it_mv"] = phase.pop("it_mw")

    done = ncrisk([f"scenario={write_book(tmp_path, edit)}"], tmp_path)
    assert_rejected(done, tmp_path, "sites[0].phases[0].it_mw", "<missing>", "'it_mv'")


def test_phase_too_small_for_one_gpu_names_its_mw(tmp_path: Path) -> None:
    book = write_book(tmp_path, set_value(["sites", 0, "phases", 0, "it_mw"], 0.001))
    done = ncrisk([f"scenario={book}"], tmp_path)
    assert_rejected(done, tmp_path, "sites[0].phases[0].it_mw", "0.001", "at least one GPU")


def test_yaml_anchors_and_merge_keys_are_plain_data(tmp_path: Path) -> None:
    """``<<: *anchor`` merges and explicit keys override merged ones; the run goes through."""
    from engine.scenario import load_book

    text = (scenarios_dir() / "reference.yaml").read_text()
    text = text.replace(
        "  - id: horizon_h2\n    operator: horizon_cloud\n    region: ercot_west\n",
        "  - &hall\n    id: horizon_h2\n    operator: horizon_cloud\n    region: ercot_west\n",
    )
    marker = "  # --- Operator 2"
    assert marker in text
    text = text.replace(marker, "  - <<: *hall\n    id: horizon_h5\n    pue: 1.3\n" + marker)
    path = tmp_path / "merged.yaml"
    path.write_text(text)
    book = load_book(str(path))
    h2, h5 = book.sites[1], book.sites[4]
    assert (h5.id, h5.pue, h5.phases) == ("horizon_h5", 1.3, h2.phases)
