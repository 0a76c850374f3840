"""Where the shipped config tree and books live, installed or not.

In a wheel they are package data under ``engine/_data/``; in a source checkout
or an editable install they are the top-level ``conf/`` and ``scenarios/``.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import InputError

__all__ = ["available_scenarios", "conf_dir", "scenario_path", "scenarios_dir"]

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"neocloud-risk is installed without its {name}/ directory")


def conf_dir() -> Path:
    """Absolute path of the config tree (``conf/``)."""
    return _data_dir("conf")


def scenarios_dir() -> Path:
    """Absolute path of the shipped books (``scenarios/``)."""
    return _data_dir("scenarios")


def available_scenarios() -> list[str]:
    """Names of the shipped books, sorted."""
    return sorted(p.stem for p in scenarios_dir().glob("*.yaml"))


def scenario_path(scenario: str) -> Path:
    """Resolve a scenario name (``scenarios/NAME.yaml``) or a path to a YAML file.

    Parameters
    ----------
    scenario : str
        Name of a shipped book, or a path ending in ``.yaml``/``.yml``.

    Returns
    -------
    pathlib.Path
        An existing file.

    Raises
    ------
    InputError
        If no such scenario exists.
    """
    if scenario.endswith((".yaml", ".yml")) or "/" in scenario:
        path = Path(scenario).expanduser()
        if path.is_file():
            return path.resolve()
        raise InputError("command line", "scenario", scenario, "an existing .yaml file")
    path = scenarios_dir() / f"{scenario}.yaml"
    if path.is_file():
        return path
    names = ", ".join(available_scenarios())
    raise InputError(
        "command line",
        "scenario",
        scenario,
        f"one of the shipped scenarios ({names}) or a path to a .yaml file",
    )


def scenario_label(scenario: str) -> str:
    """Short name of a scenario for directory names (the file stem for a path)."""
    return Path(scenario).stem if scenario.endswith((".yaml", ".yml")) else scenario
