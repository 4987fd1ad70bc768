"""Errors for bad input.

Bad input (a config typo, a malformed INI, an impossible axis) is rejected before any
evaluation with a :class:`ConfigError` that names the file, the key and what was expected.
The command-line faces print it as one line and exit with status 2. Infeasible design points
are not errors: they are status bits in the results.
"""

from __future__ import annotations

__all__ = ["ConfigError", "EXIT_BAD_INPUT"]

EXIT_BAD_INPUT = 2


class ConfigError(ValueError):
    """Bad input: ``source`` (file or command line), ``key``, what was ``expected``, ``got``."""

    def __init__(self, source: str, key: str, expected: str, got: object = None) -> None:
        self.source = str(source)
        self.key = str(key)
        self.expected = expected
        self.got = got
        super().__init__(self.oneline())

    def oneline(self) -> str:
        got = "" if self.got is None else f", got {self.got!r}"
        where = f"{self.source}: " if self.source else ""
        key = f"key '{self.key}'" if self.key else "input"
        return f"{where}{key}: expected {self.expected}{got}".replace("\n", " ")
