"""Frozen dataclass pytrees with static fields and dotted-path access.

A design point is a tree of frozen dataclasses. Fields annotated ``int``/``float`` are array
leaves (``int64``/``float64``: exact cycle counts need x64); fields created with
:func:`static_field` are pytree metadata. Changing a static field changes the compiled
program (it selects Python control flow or array shapes), so every distinct combination of
static values compiles once. Nested dataclass fields are sub-trees.

Dotted paths (``"hw.pim.tRCD_mac"``) name leaves and static fields; the same strings are the
column names of result tables.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Iterator
from typing import Any, TypeVar

import jax
import numpy as np

__all__ = [
    "pytree_dataclass",
    "static_field",
    "leaf",
    "is_static",
    "leaf_dtype",
    "iter_fields",
    "leaf_paths",
    "static_paths",
    "get_path",
    "replace_paths",
]

T = TypeVar("T")

_DTYPES = {int: np.dtype(np.int64), float: np.dtype(np.float64), bool: np.dtype(np.bool_)}


def static_field(
    default: Any = dataclasses.MISSING, doc: str = "", choices: tuple[str, ...] = ()
) -> Any:
    """A static (metadata) field: changing it recompiles. ``choices`` lists allowed values."""
    return dataclasses.field(
        default=default, metadata={"static": True, "doc": doc, "choices": tuple(choices)}
    )


def leaf(
    doc: str = "",
    *,
    low: float | None = None,
    low_open: bool = False,
    high: float | None = None,
    choices: type | None = None,
    default: Any = dataclasses.MISSING,
) -> Any:
    """An array-leaf field with a docstring and the range a config value must lie in.

    ``low`` is inclusive unless ``low_open``; ``choices`` is an ``IntEnum`` whose member
    names are what configs say and whose values are the integer codes the model sees.
    ``default`` (a config-level value: an enum member name for ``choices``) is used when a
    config leaves the key out.
    """
    return dataclasses.field(
        default=default,
        metadata={"doc": doc, "low": low, "low_open": low_open, "high": high, "choices": choices},
    )


def pytree_dataclass(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen dataclass registered as a JAX pytree."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    return jax.tree_util.register_dataclass(cls)


def is_static(field: dataclasses.Field) -> bool:
    return bool(field.metadata.get("static", False))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A class's resolved annotations (cached: ``get_type_hints`` costs ~0.5 ms a call, and
    the dtype of a leaf is asked for once per value of an axis)."""
    return typing.get_type_hints(cls)


def leaf_dtype(cls: type, name: str) -> np.dtype:
    """The numpy dtype of leaf ``name`` of dataclass ``cls`` (from its annotation)."""
    hint = _hints(cls)[name]
    if hint not in _DTYPES:
        raise TypeError(f"{cls.__name__}.{name}: leaf annotation must be int, float or bool")
    return _DTYPES[hint]


def iter_fields(cls: type, prefix: str = "") -> Iterator[tuple[str, type, dataclasses.Field]]:
    """Yield ``(dotted_path, owner_class, field)`` for every non-subtree field, depth first."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            yield from iter_fields(hint, path + ".")
        else:
            yield path, cls, f


def leaf_paths(cls: type) -> dict[str, np.dtype]:
    """Dotted path → dtype for every array leaf of ``cls``."""
    return {p: leaf_dtype(owner, f.name) for p, owner, f in iter_fields(cls) if not is_static(f)}


def static_paths(cls: type) -> dict[str, Any]:
    """Dotted path → annotation for every static field of ``cls``."""
    return {p: _hints(owner)[f.name] for p, owner, f in iter_fields(cls) if is_static(f)}


def get_path(tree: Any, path: str) -> Any:
    for part in path.split("."):
        tree = getattr(tree, part)
    return tree


def replace_paths(tree: T, values: dict[str, Any]) -> T:
    """Return ``tree`` with the fields at the given dotted paths replaced."""
    if not values:
        return tree
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in values.items():
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, sub in nested.items():
        direct[head] = replace_paths(getattr(tree, head), sub)
    return dataclasses.replace(tree, **direct)
