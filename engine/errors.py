"""The one error type a user can cause: bad input in a scenario, config or override."""

from __future__ import annotations

from typing import Any

__all__ = ["InputError"]


class InputError(Exception):
    """Invalid user input, reported as one message and exit status 2.

    Parameters
    ----------
    source : str
        Where the value came from: a file path or ``command line``.
    key : str
        Dotted key of the value, with list indices (``sites[2].phases[0].it_mw``).
    value : Any
        The offending value as read.
    allowed : str
        What would have been accepted.
    """

    def __init__(self, source: str, key: str, value: Any, allowed: str) -> None:
        self.source = source
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(self.message())

    def message(self) -> str:
        """Return the user-facing message (no traceback, one block of text)."""
        return (
            f"invalid input in {self.source}\n"
            f"  key:     {self.key}\n"
            f"  value:   {self.value!r}\n"
            f"  allowed: {self.allowed}"
        )

    def with_source(self, source: str) -> InputError:
        """Return the same error attributed to another source."""
        return InputError(source, self.key, self.value, self.allowed)
