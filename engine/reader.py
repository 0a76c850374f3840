"""Reading user YAML as plain data, with one clear error per bad value.

A book is data: it is parsed with PyYAML's safe loader (no tags, no object
construction, no interpolation), duplicate keys are rejected, and each value is
taken through a :class:`Reader` that knows the file and the dotted key, so an
error names the file, the key, the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from engine.errors import InputError

__all__ = ["Reader", "load_yaml"]


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe loader that refuses a mapping with the same key twice."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # ``<<: *anchor`` merges; explicit keys may override merged ones
        key = loader.construct_object(key_node)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise InputError(
                f"{loader.name} (line {line})",
                str(key),
                f"{key} (given twice in one mapping)",
                "each key once per mapping",
            )
        seen.add(key)
    loader.flatten_mapping(node)
    return {
        loader.construct_object(k, deep=True): loader.construct_object(v, deep=True)
        for k, v in node.value
    }


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)
# YAML 1.2 numbers: 3.3e9 and 1e6 are floats (PyYAML's YAML 1.1 reads them as strings).
# The resolver table is copied first so that PyYAML's own SafeLoader is unchanged.
_UniqueKeyLoader.yaml_implicit_resolvers = {
    key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file as plain data (mappings, lists, strings, numbers, booleans).

    Parameters
    ----------
    path : pathlib.Path
        File to read.

    Returns
    -------
    Any
        The parsed document.

    Raises
    ------
    InputError
        If the file is not valid YAML or repeats a key.
    """
    text = path.read_text(encoding="utf-8")
    loader = _UniqueKeyLoader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(
            f"{path}{where}", "<document>", problem, "valid YAML (plain data only)"
        ) from None
    finally:
        loader.dispose()


class Reader:
    """Typed, range-checked access to one YAML mapping of a user file.

    Parameters
    ----------
    data : Any
        The mapping read from YAML.
    source : str
        File name, for messages.
    key : str
        Dotted key of this mapping (empty at the top of the file).
    """

    def __init__(self, data: Any, source: str, key: str = "") -> None:
        self.source = source
        self.key = key
        if not isinstance(data, dict):
            raise InputError(source, key or "<document>", data, "a mapping of keys to values")
        self.data: dict[str, Any] = data
        self._used: set[str] = set()

    def _full(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def error(self, name: str, value: Any, allowed: str) -> InputError:
        """Build the error for key ``name`` of this mapping."""
        return InputError(self.source, self._full(name), value, allowed)

    def has(self, name: str) -> bool:
        """Whether the mapping gives ``name``."""
        return name in self.data

    def raw(self, name: str, default: Any = None, required: bool = False) -> Any:
        """Return the raw value of ``name`` (marking it as known)."""
        self._used.add(name)
        if name not in self.data:
            if required:
                close = difflib.get_close_matches(name, [str(k) for k in self.data], n=1)
                hint = f" (is '{close[0]}' a misspelling of it?)" if close else ""
                raise self.error(name, "<missing>", f"a value is required{hint}")
            return default
        return self.data[name]

    def string(self, name: str, default: str | None = None, required: bool = False) -> str:
        """Return a non-empty string."""
        value = self.raw(name, default, required)
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, value, "a non-empty string")
        return value

    def reference(self, name: str, known: Mapping[str, Any], what: str) -> str:
        """Return the string of ``name``, which must be a key of ``known`` (named ``what``)."""
        value = self.string(name, required=True)
        if value not in known:
            raise self.error(name, value, f"one of the {what}: {', '.join(known)}")
        return value

    def references(self, name: str, known: Mapping[str, Any], what: str) -> tuple[str, ...]:
        """Return the list ``name``: keys of ``known`` (named ``what``), at least one, each once."""
        value = self.raw(name, required=True)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.error(name, value, f"a non-empty list of {what}")
        for item in value:
            if item not in known:
                raise self.error(name, item, f"one of the {what}: {', '.join(known)}")
        if len(set(value)) != len(value):
            raise self.error(name, value, f"each of the {what} once")
        return tuple(value)

    def number(
        self,
        name: str,
        default: float | None = None,
        *,
        required: bool = False,
        lo: float = -math.inf,
        hi: float = math.inf,
        lo_open: bool = False,
        allowed: str | None = None,
    ) -> float:
        """Return a finite number within [lo, hi] (or (lo, hi] when ``lo_open``)."""
        value = self.raw(name, default, required)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and value <= hi
        ok = ok and (value > lo if lo_open else value >= lo)
        if not ok:
            bracket = "(" if lo_open else "["
            raise self.error(name, value, allowed or f"a number in {bracket}{lo}, {hi}]")
        return float(value)

    def integer(
        self,
        name: str,
        default: int | None = None,
        *,
        required: bool = False,
        lo: int | None = None,
        hi: int | None = None,
        allowed: str | None = None,
    ) -> int:
        """Return an integer within [lo, hi]."""
        value = self.raw(name, default, required)
        ok = isinstance(value, int) and not isinstance(value, bool)
        ok = ok and (lo is None or value >= lo) and (hi is None or value <= hi)
        if not ok:
            raise self.error(name, value, allowed or f"an integer in [{lo}, {hi}]")
        return int(value)

    def sequence(self, name: str, required: bool = False) -> Iterator[tuple[str, Any]]:
        """Yield ``(key, item)`` for each item of a list value."""
        value = self.raw(name, [] if not required else None, required)
        if not isinstance(value, list) or (required and not value):
            raise self.error(name, value, "a non-empty list" if required else "a list")
        for index, item in enumerate(value):
            yield f"{self._full(name)}[{index}]", item

    def child(self, name: str, required: bool = False) -> Reader | None:
        """Return a Reader for a nested mapping, or None when absent and optional."""
        value = self.raw(name, None, required)
        if value is None:
            return None
        return Reader(value, self.source, self._full(name))

    def finish(self) -> None:
        """Reject keys the schema does not know (typos must not pass silently)."""
        unknown = sorted(set(self.data) - self._used, key=str)
        if unknown:
            name = unknown[0]
            known = ", ".join(sorted(self._used))
            raise self.error(str(name), self.data[name], f"a known key: {known}")
