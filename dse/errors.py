"""Errors for bad input.

Bad input (a config typo, a malformed INI, an impossible axis) is rejected before any
evaluation with a :class:`ConfigError` that names the file, the key and what was expected.
The command-line faces print it as one line and exit with status 2. Infeasible design points
are not errors: they are status bits in the results.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

__all__ = [
    "EXIT_BAD_INPUT",
    "MAX_INPUT_BYTES",
    "MAX_INPUT_INT",
    "ConfigError",
    "make_dir",
    "parse_json",
    "read_input",
]

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


#: the largest input file read whole (traces, configs): a larger one is refused, not read
MAX_INPUT_BYTES = 1 << 30
#: integers in input files: counts and times stay below 2**62 so that sums do not wrap
MAX_INPUT_INT = 1 << 62


def read_input(path: str | os.PathLike, what: str, key: str = "") -> str:
    """The text of an input file, or one :class:`ConfigError` naming it: missing, a
    directory, a FIFO or device (never opened, so never a hang), unreadable, larger than
    :data:`MAX_INPUT_BYTES`, binary or not UTF-8."""
    p = Path(path)
    src = str(p)
    try:
        st = p.stat()
    except OSError as e:
        raise ConfigError(src, key, f"an existing {what}", e.strerror or "no such file") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise ConfigError(src, key, f"a regular {what}", kind)
    if st.st_size > MAX_INPUT_BYTES:
        raise ConfigError(src, key, f"a {what} of at most 1 GiB", f"{st.st_size:,} bytes")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ConfigError(src, key, f"a readable {what}", e.strerror) from None
    if b"\x00" in data:
        raise ConfigError(src, key, f"a text {what}", "binary data (NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            src, key, f"a UTF-8 {what}", f"byte 0x{data[e.start]:02x} at offset {e.start}"
        ) from None


def parse_json(text: str, where: str, what: str = "JSON") -> Any:
    """``json.loads`` with every failure as one :class:`ConfigError`: syntax, nesting too
    deep to decode, and numbers beyond float range."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise ConfigError(
            where, "", f"valid {what} ({e.msg} at line {e.lineno}, column {e.colno})"
        ) from None
    except RecursionError:
        raise ConfigError(where, "", f"valid {what}", "nesting too deep to decode") from None
    except ValueError as e:  # NaN/Infinity (parse_constant) or an int too long to convert
        raise ConfigError(where, "", f"valid {what}", str(e).splitlines()[0]) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def make_dir(path: str | os.PathLike, source: str, key: str) -> Path:
    """Create the output directory ``path`` (and its parents), or one :class:`ConfigError`:
    a file in the way, no permission, a read-only file system."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(source, key, "a directory to write into (it is a file)", str(p))
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            source, key, "a directory that can be created", f"{p}: {e.strerror}"
        ) from None
    return p
