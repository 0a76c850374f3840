"""Checking command-line overrides and composed configs before anything runs.

``ncrisk`` validates every override against the schemas, then composes the
config for every combination a sweep would run and validates each, including
its book, so that a typo anywhere is one clear message and exit status 2 before
any job starts or any directory is written.
"""

from __future__ import annotations

import dataclasses
import itertools
import typing
from collections.abc import Sequence
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from engine.config import Settings, register_schemas
from engine.errors import InputError
from engine.market_stats import MarketStats
from engine.resources import conf_dir
from engine.scenario import load_book
from engine.scopes import build_scopes

__all__ = ["GROUPS", "expand_sweep", "parse_overrides", "to_settings", "validate_command_line"]

GROUPS: tuple[str, ...] = (
    "run",
    "paths",
    "capacity",
    "output",
    "markets",
    "customers",
    "finance",
)
_MAX_CHECKED_COMBINATIONS = 512


def _source(override: str) -> str:
    return f"command-line override '{override}'"


def parse_overrides(overrides: Sequence[str]) -> list[Override]:
    """Parse override strings with Hydra's grammar, as one clear error on failure."""
    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed.extend(parser.parse_overrides([text]))
        except HydraException as exc:
            key = text.split("=", 1)[0]
            value = text.split("=", 1)[1] if "=" in text else ""
            raise InputError(
                _source(text), key, value, f"KEY=VALUE in Hydra override syntax ({exc})"
            ) from None
    return parsed


def _field_type(key: str) -> tuple[Any, list[str]] | None:
    """Return the schema type of a dotted key of :class:`Settings`, or None with the known keys."""
    node: Any = Settings
    parts = key.split(".")
    for depth, part in enumerate(parts):
        hints = typing.get_type_hints(node)
        names = [f.name for f in dataclasses.fields(node)]
        if part not in names:
            prefix = ".".join(parts[:depth])
            return None, [f"{prefix}.{n}" if prefix else n for n in names]
        node = hints[part]
        if depth < len(parts) - 1 and not dataclasses.is_dataclass(node):
            return None, [".".join(parts[: depth + 1])]
    return node, []


def _type_ok(expected: Any, value: Any) -> bool:
    if dataclasses.is_dataclass(expected):
        return False
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is str:
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    if typing.get_origin(expected) is list:
        (inner,) = typing.get_args(expected)
        if dataclasses.is_dataclass(inner):  # mappings, checked by the schema itself
            return isinstance(value, list) and all(isinstance(v, dict) for v in value)
        return isinstance(value, list) and all(_type_ok(inner, v) for v in value)
    return True


def _type_name(expected: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if typing.get_origin(expected) is list:
        (inner,) = typing.get_args(expected)
        if dataclasses.is_dataclass(inner):
            keys = ", ".join(f.name for f in dataclasses.fields(inner))
            return f"a list of mappings with the keys {keys}"
        return f"a list of {_type_name(inner)}s, like [12, 24]"
    return names.get(expected, str(expected))


def _check_override(override: Override, multirun: bool) -> None:
    text = override.input_line or ""
    key = override.key_or_group
    if override.is_add() or override.is_delete() or override.is_force_add():
        raise InputError(_source(text), key, text, "KEY=VALUE for a key the config already has")
    if override.is_sweep_override() and not multirun:
        raise InputError(
            _source(text),
            key,
            text.split("=", 1)[-1],
            "a single value (add -m to sweep over several)",
        )
    values = list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
    if key in GROUPS:
        options = sorted(p.stem for p in (conf_dir() / key).glob("*.yaml"))
        for value in values:
            if value not in options:
                raise InputError(_source(text), key, value, f"one of the {key} configs: {options}")
        return
    expected, known = _field_type(key)
    if expected is None:
        raise InputError(_source(text), key, override.value(), f"a known key: {', '.join(known)}")
    for value in values:
        if not _type_ok(expected, value):
            raise InputError(_source(text), key, value, _type_name(expected))
        _check_item_keys(expected, value, text, key)


def _check_item_keys(expected: Any, value: Any, text: str, key: str) -> None:
    """Reject unknown keys in the mappings of a list of dataclasses (joint targets)."""
    if typing.get_origin(expected) is not list:
        return
    (inner,) = typing.get_args(expected)
    if not dataclasses.is_dataclass(inner):
        return
    known = [f.name for f in dataclasses.fields(inner)]
    for i, item in enumerate(value):
        for name in item:
            if name not in known:
                raise InputError(
                    _source(text),
                    f"{key}[{i}].{name}",
                    item[name],
                    f"a known key: {', '.join(known)}",
                )


def expand_sweep(parsed: Sequence[Override]) -> list[list[str]]:
    """Every combination of a sweep's overrides, as lists of ``key=value`` strings."""
    axes = []
    for override in parsed:
        key = override.get_key_element()
        if override.is_sweep_override():
            axes.append([f"{key}={v}" for v in override.sweep_string_iterator()])
        else:
            axes.append([override.input_line or f"{key}={override.value()}"])
    return [list(combo) for combo in itertools.product(*axes)]


def _origin(path: str, overrides: Sequence[str], choices: dict[str, str]) -> str:
    """File or override a dotted key's value came from."""
    bare = path.split("[", 1)[0]
    for text in overrides:
        if text.split("=", 1)[0].lstrip("+~") in (path, bare):
            return _source(text)
    group = path.split(".", 1)[0]
    if group in GROUPS:
        return str(conf_dir() / group / f"{choices.get(group, 'default')}.yaml")
    return str(conf_dir() / "config.yaml")


def to_settings(
    cfg: DictConfig, overrides: Sequence[str] = (), choices: dict[str, str] | None = None
) -> Settings:
    """Turn a composed config into validated :class:`Settings` objects.

    Parameters
    ----------
    cfg : omegaconf.DictConfig
        The composed config (without the ``hydra`` node).
    overrides : sequence of str
        The overrides of this run, to attribute errors to them.
    choices : dict, optional
        Group choices (``run`` -> ``default``), to name the file of a bad value.

    Returns
    -------
    Settings
        Validated settings.

    Raises
    ------
    InputError
        Naming the file or override, the key, the value and what is allowed.
    """
    choices = choices or {}
    try:
        settings = OmegaConf.to_object(cfg)
    except InputError as exc:
        raise exc.with_source(_origin(exc.key, overrides, choices)) from None
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "") or "<config>"
        value = getattr(exc, "value", None)
        raise InputError(
            _origin(key, overrides, choices), key, value, str(exc).splitlines()[0]
        ) from None
    if not isinstance(settings, Settings):
        raise InputError(str(conf_dir() / "config.yaml"), "<config>", type(settings), "Settings")
    return settings


def validate_command_line(overrides: Sequence[str], multirun: bool) -> list[Settings]:
    """Validate overrides and every run they describe (config and book).

    Parameters
    ----------
    overrides : sequence of str
        The command line's ``key=value`` arguments.
    multirun : bool
        Whether ``-m`` was given (sweep syntax allowed).

    Returns
    -------
    list of Settings
        The validated settings of every job (the first 512 of a larger sweep).

    Raises
    ------
    InputError
        On the first invalid override, value or book.
    """
    app = [o for o in overrides if not o.lstrip("+~").startswith(("hydra.", "hydra/"))]
    parsed = parse_overrides(app)
    for override in parsed:
        _check_override(override, multirun)
    combos = expand_sweep(parsed)
    checked: list[Settings] = []
    register_schemas()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            for combo in combos[:_MAX_CHECKED_COMBINATIONS]:
                try:
                    cfg = compose(config_name="config", overrides=combo)
                except (HydraException, OmegaConfBaseException) as exc:
                    text = " ".join(combo)
                    message = str(exc).strip().splitlines()
                    raise InputError(_source(text), "<overrides>", text, message[-1]) from None
                choices = {
                    o.split("=", 1)[0]: o.split("=", 1)[1]
                    for o in combo
                    if o.split("=", 1)[0] in GROUPS
                }
                settings = to_settings(cfg, combo, choices)
                try:
                    book = load_book(settings.scenario)
                except InputError as exc:
                    if exc.key != "scenario":
                        raise
                    raise exc.with_source(_origin("scenario", combo, choices)) from None
                try:  # what needs the book: the assembled factor correlation, path limits
                    MarketStats.create(book, settings, build_scopes(book, 16))
                except InputError as exc:
                    if exc.key.startswith("markets."):
                        raise exc.with_source(_origin(exc.key, combo, choices)) from None
                    raise
                checked.append(settings)
    finally:
        GlobalHydra.instance().clear()
    return checked
