"""Design spaces: named axes → batches of design points (DESIGN.md §3).

An axis is a dotted parameter path (``hw.pim.tCCD_mac``) with a spec:

=================================  ==============================================
``[4, 8, 16]`` or ``{values: …}``  explicit values (names for integer-coded choices)
``{range: [low, high]}``           integers low..high (inclusive) on a grid; uniform
                                   in [low, high] under random samplers
``{range: [low, high, step]}``     low, low+step, … ≤ high on a grid
``{linspace: [start, stop, n]}``   ``numpy.linspace``
``{logspace: [a, b, n], base: 10}`` ``numpy.logspace`` (exponents a..b)
``{geomspace: [start, stop, n]}``  ``numpy.geomspace``
``7``                              a single value
=================================  ==============================================

Samplers: ``grid`` (cartesian product of discrete axes), ``random`` (uniform),
``sobol`` and ``lhs`` (``scipy.stats.qmc``), all seeded. Under the random samplers a
``values`` axis is sampled as a categorical, the others continuously over their hull
(log-uniformly for ``logspace``/``geomspace``), rounded for integer parameters.

Static parameters (those that recompile, e.g. ``workload.dtype``) are never sampled: their
values form an outer cartesian product, each combination evaluated by one compiled call with
``n`` (or the full grid of) points. Constraints are boolean expressions over parameter paths
(``hw.pim.banks * hw.pim.lanes <= 256``) that drop points before evaluation.

Points are produced chunk by chunk (:meth:`Space.raw_chunk`) so that 10⁷-point spaces never
exist in memory at once; chunk ``i`` is the same whatever was evaluated before it.

Sharding (``space.shard=i space.num_shards=n``, one cluster job per shard): the ``P`` raw
points of every static combination (before constraints) are split into ``n`` contiguous
ranges whose sizes differ by at most one, shard ``i`` owning ``[i·P // n, (i+1)·P // n)``.
Every shard holds every static combination, so the shards cost about the same even when the
combinations do not. A shard's points are the very points of the unsharded space (the
samplers are indexed by the global point number), so their ids are unchanged and the union
of the shards is exactly the whole space.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import qmc

from dse._pytree import get_path
from dse.errors import ConfigError
from dse.point import DesignPoint, FieldInfo, field_info

__all__ = ["Axis", "Space", "parse_axes", "build_space", "shard_bounds", "SAMPLERS"]

SAMPLERS = ("grid", "random", "sobol", "lhs")
_SPEC_KEYS = {"values", "range", "linspace", "logspace", "geomspace", "base"}
_MAX_AXIS_VALUES = 10_000_000
#: the most design points a space may hold (2**48: ~3e14, days of evaluation at 1e9/s)
MAX_POINTS = 1 << 48
_KINDS = ("values", "range", "linspace", "logspace", "geomspace")
_DOTTED = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)")


@dataclasses.dataclass(frozen=True)
class Axis:
    """One swept parameter. ``values`` is the discrete set (None for a float range)."""

    path: str
    kind: str
    info: FieldInfo
    values: np.ndarray | None
    low: float = 0.0
    high: float = 0.0
    log: bool = False

    @property
    def static(self) -> bool:
        return self.info.static

    def grid_values(self, source: str) -> np.ndarray:
        if self.values is None:
            raise ConfigError(
                source,
                f"space.axes.{self.path}",
                "discrete values for the grid sampler: [low, high, step], linspace or values",
                f"range [{self.low:g}, {self.high:g}] without a step",
            )
        return self.values

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Map ``u`` in [0, 1) to this axis (random samplers)."""
        if self.kind == "values":
            idx = np.minimum((u * len(self.values)).astype(np.int64), len(self.values) - 1)
            return self.values[idx]
        lo, hi = self.low, self.high
        integer = self.info.dtype.kind == "i"
        if self.log:
            x = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
            return np.rint(x).astype(np.int64) if integer else x
        if integer:
            return np.minimum(np.floor(lo + u * (hi - lo + 1)), hi).astype(np.int64)
        return lo + u * (hi - lo)


def _flatten(node: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(node, Mapping) and not (set(node) & _SPEC_KEYS):
        for k, v in node.items():
            _flatten(v, f"{prefix}{k}.", out)
    else:
        out[prefix[:-1]] = node


def _number(x: Any, source: str, key: str, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise ConfigError(source, key, what, x)
    if not math.isfinite(float(x)):
        raise ConfigError(source, key, what, x)
    return float(x)


def _cast_values(info: FieldInfo, raw: Sequence[Any], source: str, key: str) -> np.ndarray:
    out = []
    for v in raw:
        if info.dtype.kind == "i" and isinstance(v, (float, np.floating)) and not info.choices:
            if math.isfinite(v) and abs(v - round(v)) < 1e-9 * max(1.0, abs(v)):
                v = round(v)
        try:
            out.append(info.check(v, source))
        except ConfigError as err:
            raise ConfigError(source, key, err.expected, v) from None
    if info.static:
        return np.array(out, dtype=object)
    arr = np.array(out, dtype=info.dtype)
    return arr


def parse_axes(axes: Mapping[str, Any], source: str = "space.axes") -> list[Axis]:
    """Parse a (possibly nested) ``space.axes`` mapping into :class:`Axis` objects."""
    flat: dict[str, Any] = {}
    _flatten(axes or {}, "", flat)
    infos = field_info(DesignPoint)
    result = []
    for path, spec in flat.items():
        key = f"space.axes.{path}"
        if path not in infos:
            close = difflib.get_close_matches(path, list(infos), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(source, key, "a design-point parameter path" + hint, path)
        result.append(_parse_axis(infos[path], spec, source, key))
    return result


def _parse_axis(info: FieldInfo, spec: Any, source: str, key: str) -> Axis:
    if isinstance(spec, Mapping):
        kinds = [k for k in _KINDS if k in spec]
        unknown = set(spec) - _SPEC_KEYS
        if len(kinds) != 1 or unknown or ("base" in spec and kinds != ["logspace"]):
            raise ConfigError(
                source,
                key,
                "exactly one of values/range/linspace/logspace/geomspace (base only with logspace)",
                dict(spec),
            )
        kind, arg = kinds[0], spec[kinds[0]]
    elif isinstance(spec, (list, tuple)):
        kind, arg = "values", list(spec)
    else:
        kind, arg = "values", [spec]
    if kind == "values":
        if not isinstance(arg, (list, tuple)) or len(arg) == 0:
            raise ConfigError(source, key, "a non-empty list of values", arg)
        vals = _cast_values(info, list(arg), source, key)
        if info.static:
            vals = np.array(list(dict.fromkeys(vals.tolist())), dtype=object)
        return Axis(info.path, kind, info, vals)
    if info.static or info.choices:
        raise ConfigError(source, key, f"a list of values ({info.expected()})", {kind: arg})
    if not isinstance(arg, (list, tuple)):
        raise ConfigError(source, key, f"{kind}: a list of numbers", arg)
    what = f"{kind}: numbers"
    nums = [_number(a, source, key, what) for a in arg]
    integer = info.dtype.kind == "i"
    if kind == "range":
        if len(nums) not in (2, 3):
            raise ConfigError(source, key, "range: [low, high] or [low, high, step]", arg)
        lo, hi = nums[0], nums[1]
        if lo > hi:
            raise ConfigError(source, key, "range with low <= high", arg)
        for v in (lo, hi):
            _cast_values(info, [v], source, key)
        step = nums[2] if len(nums) == 3 else (1.0 if integer else None)
        if step is not None and step <= 0:
            raise ConfigError(source, key, "range step > 0", arg)
        vals = None
        count = int(math.floor((hi - lo) / step + 1e-9)) + 1 if step is not None else 0
        if step is not None and count > _MAX_AXIS_VALUES:
            if len(nums) == 3:
                raise ConfigError(
                    source,
                    key,
                    f"at most {_MAX_AXIS_VALUES:,} values per axis",
                    f"{count:,} values",
                )
            step = None  # a wide integer range: sampled continuously, not enumerated
        if step is not None:
            vals = _cast_values(info, [lo + i * step for i in range(count)], source, key)
        return Axis(info.path, kind, info, vals, lo, hi)
    if len(nums) != 3 or nums[2] < 1 or nums[2] != int(nums[2]):
        raise ConfigError(source, key, f"{kind}: [start, stop, num] with integer num >= 1", arg)
    start, stop, num = nums[0], nums[1], int(nums[2])
    if num > _MAX_AXIS_VALUES:
        raise ConfigError(
            source, key, f"{kind} of at most {_MAX_AXIS_VALUES:,} values per axis", f"{num:,}"
        )
    if kind == "linspace":
        raw, lo, hi, log = np.linspace(start, stop, num), start, stop, False
    elif kind == "logspace":
        base = _number(spec.get("base", 10.0), source, key, "logspace base > 0")
        if base <= 0 or base == 1:
            raise ConfigError(source, key, "logspace base > 0 and != 1", base)
        with np.errstate(over="ignore", under="ignore"):
            raw = np.logspace(start, stop, num, base=base)
        lo, hi, log = float(raw.min()), float(raw.max()), True
    else:
        if start <= 0 or stop <= 0:
            raise ConfigError(source, key, "geomspace: positive start and stop", arg)
        raw, lo, hi, log = np.geomspace(start, stop, num), start, stop, True
    if not np.isfinite(raw).all():
        raise ConfigError(source, key, f"{kind} values within the float range", arg)
    vals = _cast_values(info, raw.tolist(), source, key)
    return Axis(info.path, kind, info, np.unique(vals), min(lo, hi), max(lo, hi), log)


@dataclasses.dataclass
class Space:
    """A design space around ``base``: static combinations × swept points, with constraints."""

    base: DesignPoint
    axes: list[Axis]
    sampler: str = "grid"
    n: int = 1024
    seed: int = 0
    constraints: tuple[str, ...] = ()
    source: str = "space"
    shard: int = 0
    num_shards: int = 1

    def __post_init__(self) -> None:
        if not _is_int(self.num_shards) or self.num_shards < 1:
            raise ConfigError(self.source, "space.num_shards", "an integer >= 1", self.num_shards)
        if not _is_int(self.shard) or not 0 <= self.shard < self.num_shards:
            raise ConfigError(
                self.source,
                "space.shard",
                f"an integer with 0 <= space.shard < space.num_shards ({self.num_shards})",
                self.shard,
            )
        if self.sampler not in SAMPLERS:
            raise ConfigError(
                self.source, "space.sampler", f"one of {list(SAMPLERS)}", self.sampler
            )
        if self.sampler != "grid" and not (_is_int(self.n) and 1 <= self.n <= MAX_POINTS):
            raise ConfigError(self.source, "space.n", "an integer in [1, 2**48]", self.n)
        if self.sampler == "grid":
            for ax in self.swept:
                ax.grid_values(self.source)
            n = math.prod(len(a.values) for a in self.swept)  # Python ints: no wrap-around
            if n * max(self.num_combos, 1) > MAX_POINTS:
                raise ConfigError(
                    self.source,
                    "space.axes",
                    "a grid of at most 2**48 design points (sample it instead: "
                    "space.sampler=sobol space.n=...)",
                    f"{n * max(self.num_combos, 1):,} points",
                )
        self._compiled_constraints = [self._compile(i, c) for i, c in enumerate(self.constraints)]
        # Evaluate constraints once on a few points so a bad expression fails before any work.
        if self.num_combos and self.total_points_per_combo:
            probe = self._raw(0, 0, min(8, self.total_points_per_combo))
            self.accept(probe, self.combos[0])

    # --- structure --------------------------------------------------------------------
    @property
    def swept(self) -> list[Axis]:
        return [a for a in self.axes if not a.static]

    @property
    def static_axes(self) -> list[Axis]:
        return [a for a in self.axes if a.static]

    @property
    def swept_paths(self) -> tuple[str, ...]:
        return tuple(a.path for a in self.swept)

    @cached_property
    def combos(self) -> list[dict[str, Any]]:
        """Static combinations (dotted path → value), in a fixed order."""
        axes = self.static_axes
        return [
            dict(zip([a.path for a in axes], vals, strict=True))
            for vals in itertools.product(*[a.values.tolist() for a in axes])
        ]

    @property
    def num_combos(self) -> int:
        return len(self.combos)

    @cached_property
    def _grid_shape(self) -> tuple[int, ...]:
        return tuple(len(a.values) for a in self.swept)

    @property
    def total_points_per_combo(self) -> int:
        """Raw points per static combination of the whole space (all shards), before
        constraints."""
        if self.sampler == "grid":
            return math.prod(self._grid_shape)
        return int(self.n) if self.swept else 1

    @property
    def shard_range(self) -> tuple[int, int]:
        """``(start, stop)``: this shard's raw points of every static combination, as
        indices into that combination's points of the whole space."""
        return shard_bounds(self.total_points_per_combo, self.shard, self.num_shards)

    @property
    def points_per_combo(self) -> int:
        """Raw points per static combination in this shard, before constraints."""
        start, stop = self.shard_range
        return stop - start

    @property
    def num_points(self) -> int:
        """Raw points of this shard (the whole space when unsharded), before constraints."""
        return self.points_per_combo * self.num_combos

    @property
    def total_points(self) -> int:
        """Raw points of the whole space (all shards), before constraints."""
        return self.total_points_per_combo * self.num_combos

    # --- points -----------------------------------------------------------------------
    def raw_chunk(self, combo: int, start: int, stop: int) -> dict[str, np.ndarray]:
        """Swept values of this shard's raw points ``start:stop`` of static combination
        ``combo`` (indices local to the shard: 0 is the shard's first point)."""
        if not 0 <= start <= stop <= self.points_per_combo:
            raise IndexError(f"points {start}:{stop} of a shard of {self.points_per_combo}")
        offset = self.shard_range[0]
        return self._raw(combo, offset + start, offset + stop)

    def _raw(self, combo: int, start: int, stop: int) -> dict[str, np.ndarray]:
        """Swept values of raw points ``start:stop`` of the whole space's combination."""
        axes = self.swept
        if not axes:
            return {}
        if self.sampler == "grid":
            idx = np.arange(start, stop, dtype=np.int64)
            digits = np.unravel_index(idx, self._grid_shape)
            return {a.path: a.values[d] for a, d in zip(axes, digits, strict=True)}
        u = self._unit(combo, start, stop)
        return {a.path: a.from_unit(u[:, j]) for j, a in enumerate(axes)}

    def _unit(self, combo: int, start: int, stop: int) -> np.ndarray:
        d = len(self.swept)
        seed = np.random.SeedSequence([self.seed, combo])
        if self.sampler == "random":
            bitgen = np.random.PCG64(seed)
            bitgen.advance(start * d)  # one 64-bit draw per double
            return np.random.Generator(bitgen).random((stop - start, d))
        if self.sampler == "sobol":
            eng = qmc.Sobol(d, scramble=True, seed=np.random.default_rng(seed))
            if start:
                eng.fast_forward(start)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # balance needs 2^m points
                return eng.random(stop - start)
        return self._lhs(combo)[start:stop]

    def _lhs(self, combo: int) -> np.ndarray:
        cache = self.__dict__.setdefault("_lhs_cache", {})
        if combo not in cache:
            seed = np.random.default_rng(np.random.SeedSequence([self.seed, combo]))
            cache[combo] = qmc.LatinHypercube(len(self.swept), seed=seed).random(self.n)
        return cache[combo]

    # --- constraints ------------------------------------------------------------------
    def _compile(self, i: int, expr: Any) -> tuple[str, str, list[str]]:
        key = f"space.constraints[{i}]"
        if not isinstance(expr, str) or not expr.strip():
            raise ConfigError(self.source, key, "a boolean expression over parameter paths", expr)
        infos = field_info(DesignPoint)
        names = _DOTTED.findall(expr)
        for name in names:
            if name not in infos:
                close = difflib.get_close_matches(name, list(infos), n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise ConfigError(self.source, key, "parameter paths only" + hint, name)
        mangled = _DOTTED.sub(lambda m: m.group(1).replace(".", "__"), expr)
        return key, mangled, sorted(set(names))

    def accept(self, cols: Mapping[str, np.ndarray], combo: Mapping[str, Any]) -> np.ndarray:
        """Boolean mask of the points in ``cols`` that satisfy every constraint."""
        n = len(next(iter(cols.values()))) if cols else 1
        mask = np.ones(n, dtype=bool)
        for key, mangled, names in self._compiled_constraints:
            env = {}
            for name in names:
                if name in cols:
                    env[name.replace(".", "__")] = cols[name]
                elif name in combo:
                    env[name.replace(".", "__")] = combo[name]
                else:
                    env[name.replace(".", "__")] = np.asarray(get_path(self.base, name))
            try:
                res = pd.eval(mangled, local_dict=env, engine="python")
            except Exception as exc:  # pandas raises many types for bad syntax
                raise ConfigError(
                    self.source,
                    key,
                    "a valid boolean expression",
                    f"{mangled.replace('__', '.')} ({type(exc).__name__}: {exc})",
                ) from None
            res = np.asarray(res)
            if res.dtype != bool:
                raise ConfigError(
                    self.source,
                    key,
                    "a boolean (comparison) expression",
                    mangled.replace("__", "."),
                )
            mask &= np.broadcast_to(res, (n,))
        return mask


def shard_bounds(points: int, shard: int, num_shards: int) -> tuple[int, int]:
    """``(start, stop)`` of shard ``shard`` of ``num_shards`` over ``points`` items: contiguous
    ranges whose sizes differ by at most one and that cover ``0..points`` exactly."""
    return shard * points // num_shards, (shard + 1) * points // num_shards


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def build_space(space_cfg: Mapping[str, Any], base: DesignPoint, source: str = "space") -> Space:
    """A :class:`Space` from a composed ``space`` config node around the point ``base``."""
    sampler = space_cfg.get("sampler", "grid")
    sampler = getattr(sampler, "name", sampler)
    constraints = space_cfg.get("constraints") or []
    if isinstance(constraints, str):
        constraints = [constraints]
    n = space_cfg.get("n", 1024)
    seed = space_cfg.get("seed", 0)
    for key, val in (("space.n", n), ("space.seed", seed)):
        if isinstance(val, bool) or not isinstance(val, int) or val < 0:
            raise ConfigError(source, key, "an integer >= 0", val)
    return Space(
        shard=space_cfg.get("shard", 0),
        num_shards=space_cfg.get("num_shards", 1),
        base=base,
        axes=parse_axes(space_cfg.get("axes") or {}, source),
        sampler=sampler,
        n=int(n),
        seed=int(seed),
        constraints=tuple(constraints),
        source=source,
    )
