"""The parameters a search moves: continuous, integer and categorical design-point leaves.

A search config names each parameter by its dotted path with its domain::

    params:
      hw.pim.lanes: {type: int, values: [4, 8, 16, 32, 64]}   # explicit levels
      hw.pim.tCCD_mac: {type: int, low: 1, high: 8}
      hw.host.mem_GBps: {type: float, low: 800, high: 3200, log: true}
      policy.sched: {type: cat, choices: [static, pingpong, dynamic]}

Every parameter maps the unit interval onto its domain (:meth:`Param.from_unit`), which is
what random sampling, differential evolution and the gradient search move in; CMA-ES works
on the domain itself (continuous bounds, integer levels, category counts).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dse._pytree import get_path
from dse.errors import ConfigError
from dse.point import DesignPoint, field_info

__all__ = ["Param", "parse_params"]

KINDS = ("float", "int", "cat")


@dataclasses.dataclass(frozen=True)
class Param:
    """One searched leaf. ``kind``: ``float`` (continuous in ``[low, high]``), ``int``
    (ordered levels ``values``: an integer range, or explicit levels of any leaf) or ``cat``
    (``values`` the code each category is stored as, ``labels`` their names)."""

    path: str
    kind: str
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    values: tuple = ()
    labels: tuple = ()

    @property
    def discrete(self) -> bool:
        return self.kind != "float"

    def levels(self, num: int = 8) -> np.ndarray:
        """Grid levels: every integer level / category, or ``num`` continuous values."""
        if self.discrete:
            return np.asarray(self.values)
        if self.log:
            return np.geomspace(self.low, self.high, num)
        return np.linspace(self.low, self.high, num)

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Values for points ``u`` in [0, 1]: continuous (log-)linearly; discrete levels in
        equal shares of the interval."""
        u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
        if self.discrete:
            idx = np.minimum((u * len(self.values)).astype(np.int64), len(self.values) - 1)
            return np.asarray(self.values)[idx]
        if self.log:
            return np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        return self.low + u * (self.high - self.low)

    def to_unit(self, v: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`from_unit` (a discrete level to the middle of its share)."""
        v = np.asarray(v, dtype=np.float64)
        if self.discrete:
            idx = np.searchsorted(np.asarray(self.values, dtype=np.float64), v)
            return (idx + 0.5) / len(self.values)
        if self.log:
            return (np.log(v) - np.log(self.low)) / (np.log(self.high) - np.log(self.low))
        return (v - self.low) / (self.high - self.low)

    def label(self, v: Any) -> Any:
        """A value as a person reads it (a category's name)."""
        if self.kind == "cat" and self.labels:
            return self.labels[list(self.values).index(int(v))]
        return v


def _enum_codes(choices: Any) -> dict[str, int] | None:
    if isinstance(choices, type) and issubclass(choices, enum.Enum):
        return {m.name: int(m.value) for m in choices}
    return None


#: the most values an integer parameter's range may hold without ``log: true``
MAX_INT_LEVELS = 1 << 20


def parse_params(node: Mapping[str, Any], source: str = "search") -> list[Param]:
    """The ``search.params`` mapping as :class:`Param` s; every problem is a
    :class:`~dse.errors.ConfigError` naming ``search.params.<path>``."""
    infos = field_info(DesignPoint)
    if not isinstance(node, Mapping) or not node:
        raise ConfigError(source, "search.params", "a mapping of parameter paths to domains", node)
    out = []
    for path, spec in node.items():
        key = f"search.params.{path}"
        info = infos.get(path)
        if info is None:
            close = difflib.get_close_matches(str(path), list(infos), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(source, key, "a design-point parameter path" + hint, path)
        if info.static:
            raise ConfigError(
                source, key, "a non-static parameter (static ones change shapes)", path
            )
        if not isinstance(spec, Mapping):
            raise ConfigError(
                source, key, "{type: float|int|cat, low/high, values or choices}", spec
            )
        spec = dict(spec)
        unknown = set(spec) - {"type", "low", "high", "log", "values", "choices"}
        if unknown:
            raise ConfigError(
                source, f"{key}.{sorted(unknown)[0]}", "type, low, high, log, values, choices"
            )
        codes = _enum_codes(info.field.metadata.get("choices"))
        kind = spec.get("type") or ("cat" if codes or "choices" in spec else info.field.type)
        if kind not in KINDS:
            raise ConfigError(source, f"{key}.type", "one of " + ", ".join(KINDS), kind)
        if kind == "cat":
            out.append(_categorical(path, spec, codes, source, key))
            continue
        if kind == "float" and info.field.type == "int":
            raise ConfigError(source, f"{key}.type", "int or cat (the leaf holds integers)", kind)
        log = bool(spec.get("log", False))
        if "values" in spec:
            vals = spec["values"]
            if not isinstance(vals, Sequence) or isinstance(vals, str) or not vals:
                raise ConfigError(source, f"{key}.values", "a non-empty list of numbers", vals)
            try:
                arr = np.asarray(sorted(set(float(v) for v in vals)))
            except (TypeError, ValueError):
                raise ConfigError(source, f"{key}.values", "numbers", vals) from None
            if kind == "int" and np.any(arr != np.round(arr)):
                raise ConfigError(source, f"{key}.values", "integers", vals)
            vals_t = tuple(int(v) for v in arr) if kind == "int" else tuple(float(v) for v in arr)
            # explicit values are ordered levels, whatever the leaf's type
            out.append(Param(path, "int", float(arr[0]), float(arr[-1]), log, vals_t))
            continue
        try:
            low, high = float(spec["low"]), float(spec["high"])
        except KeyError as err:
            raise ConfigError(source, f"{key}.{err.args[0]}", "a number (or give values)") from None
        except (TypeError, ValueError):
            raise ConfigError(source, key, "numeric low and high", spec) from None
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ConfigError(source, key, "finite low and high", (low, high))
        if not low < high:
            raise ConfigError(source, key, "low < high", (low, high))
        if log and low <= 0:
            raise ConfigError(source, f"{key}.low", "> 0 with log: true", low)
        bound = info.field.metadata.get("low")
        if bound is not None and low < bound:
            raise ConfigError(
                source, f"{key}.low", f">= {bound} ({info.field.metadata['doc']})", low
            )
        if kind == "int":
            if not (-(2**62) <= low and high <= 2**62):
                raise ConfigError(source, key, "integer bounds within +-2**62", (low, high))
            lo, hi = int(np.ceil(low)), int(np.floor(high))
            if not log and hi - lo + 1 > MAX_INT_LEVELS:
                raise ConfigError(
                    source,
                    key,
                    f"an integer range of at most {MAX_INT_LEVELS:,} values (or log: true)",
                    (low, high),
                )
            if log:
                vals_t = tuple(sorted({int(round(v)) for v in np.geomspace(lo, hi, 64)}))
            else:
                vals_t = tuple(range(lo, hi + 1))
            out.append(Param(path, "int", float(lo), float(hi), log, vals_t))
        else:
            out.append(Param(path, "float", low, high, log))
    return out


def _categorical(path, spec, codes, source, key) -> Param:
    choices = spec.get("choices", spec.get("values"))
    if choices is None and codes:
        choices = list(codes)
    if not isinstance(choices, Sequence) or isinstance(choices, str) or len(choices) < 2:
        raise ConfigError(source, f"{key}.choices", "a list of at least two choices", choices)
    vals, labels = [], []
    for c in choices:
        if codes is not None and isinstance(c, str):
            if c not in codes:
                raise ConfigError(source, f"{key}.choices", "one of " + ", ".join(codes), c)
            vals.append(codes[c])
        else:
            try:
                vals.append(int(c))
            except (TypeError, ValueError):
                raise ConfigError(source, f"{key}.choices", "integer codes or names", c) from None
        labels.append(str(c))
    return Param(path, "cat", 0.0, float(len(vals) - 1), False, tuple(vals), tuple(labels))


def base_values(params: Sequence[Param], base: DesignPoint) -> dict[str, Any]:
    """The base point's value of every searched path."""
    return {q.path: np.asarray(get_path(base, q.path)).item() for q in params}
