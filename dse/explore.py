"""The evaluator: the project's only ``jax.jit(jax.vmap(model))`` site (DESIGN.md §7).

Points are evaluated in fixed-size chunks; the last chunk of a static combination is padded
by repeating its last point, so every chunk of a run reuses one compiled executable. Constant
parameters are passed unbatched (``in_axes=None``): only swept axes occupy per-point memory.
Each distinct (model, static values, swept paths, chunk size, mesh) compiles once per process;
later processes load the traced program (:mod:`dse.trace_cache`) and JAX's persistent
compilation cache answers its compile.

The design-point axis is sharded over the local devices (DESIGN.md §7): a 1-D mesh
``("points",)``, the swept arrays split along it, the base point replicated and every output
split like the points. Elementwise models go through the partitioner as they are; models
that loop over blocks of points (``spec.block``) run under ``shard_map`` so that each device
sorts and maps its own share. One device is the plain ``jit(vmap)`` path.

Each model is traced and run in its own precision (:attr:`dse.models.ModelSpec.x64`, a
:func:`dse.precision.x64` scope around the call): cycle counts are exact int64 (a 1M-token
context at a 0.5 ns clock overflows int32). The process-wide JAX configuration is left as the
caller set it.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from dse._pytree import replace_paths  # noqa: E402
from dse.errors import ConfigError  # noqa: E402
from dse.models import MODELS  # noqa: E402
from dse.point import (  # noqa: E402
    DesignPoint,
    decode_status,
    field_info,
    flag_invalid,
    is_feasible,
)
from dse.precision import x64  # noqa: E402
from dse.process import AXIS, points_mesh  # noqa: E402
from dse.space import Space  # noqa: E402
from dse.trace_cache import compile_cached  # noqa: E402

__all__ = [
    "ChunkResult",
    "enable_compilation_cache",
    "evaluate",
    "evaluate_points",
    "point_mesh",
    "trace_count",
]

_TRACES: dict[str, int] = {}
_EXECUTABLES: dict[tuple, Any] = {}
_MIN_CHUNK = 256


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path:
    """Turn on JAX's persistent compilation cache (``$DSE_CACHE_DIR`` or ~/.cache/dse/jax)."""
    cache = Path(path or os.environ.get("DSE_CACHE_DIR") or Path.home() / ".cache/dse/jax")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(cache))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    except OSError:
        pass  # a read-only home only costs compile time
    return cache


def trace_count(model: str = "pim_gemv") -> int:
    """How many executables of ``model`` this process has built (traced, or loaded from the
    trace cache, and compiled): one per structure, chunk size and mesh."""
    return _TRACES.get(model, 0)


def point_mesh(devices: int = 0) -> Mesh | None:
    """The 1-D mesh ``("points",)`` over the first ``devices`` local devices (0: all), or
    None where that is one device (the unsharded code path).

    Raises :class:`~dse.errors.ConfigError` for a negative or non-integer count; a count above
    the devices present uses them all.
    """
    if isinstance(devices, bool) or not isinstance(devices, (int, np.integer)) or devices < 0:
        raise ConfigError("config", "devices", "an integer >= 0 (0: all local devices)", devices)
    local = jax.local_devices()
    n = len(local) if devices == 0 else min(int(devices), len(local))
    return points_mesh(n) if n > 1 else None


def _batched(model: str, mesh: Mesh | None = None) -> tuple[Callable, dict[str, Any]]:
    """``vmap(model)`` over the swept arrays and the shardings to ``jit`` it with: with
    ``mesh``, the design-point axis is sharded over its devices (the base point replicated,
    every output sharded)."""
    spec = MODELS[model]
    fn, block = spec.fn, spec.block

    def one(base: DesignPoint, swept: dict[str, jax.Array]) -> dict[str, jax.Array]:
        return fn(replace_paths(base, swept))

    batched = jax.vmap(one, in_axes=(None, 0))
    if not block:
        if mesh is None:
            return batched, {}
        # elementwise over points: the partitioner splits the vmapped program as it is
        return batched, _shardings(mesh)

    def blocks(base: DesignPoint, swept: dict[str, jax.Array]) -> dict[str, jax.Array]:
        if spec.cost is None:
            return jax.lax.map(lambda s: one(base, s), swept, batch_size=block)
        # a block loops until its slowest point is done: group points of similar trip count
        steps = jax.vmap(lambda s: spec.cost(replace_paths(base, s)))(swept)
        order = jnp.argsort(steps)
        out = jax.lax.map(
            lambda s: one(base, s), jax.tree.map(lambda v: v[order], swept), batch_size=block
        )
        back = jnp.zeros_like(order).at[order].set(jnp.arange(order.size))
        return jax.tree.map(lambda v: v[back], out)

    if mesh is None:
        return blocks, {}
    # A sequential loop over blocks of a sharded axis (after a global sort) is not split by
    # the partitioner: every device would gather all points and run every block. Each
    # device instead sorts and maps its own share.
    local = jax.shard_map(
        blocks, mesh=mesh, in_specs=(P(), P(AXIS)), out_specs=P(AXIS), check_vma=False
    )
    return local, _shardings(mesh)


def _shardings(mesh: Mesh) -> dict[str, Any]:
    points = NamedSharding(mesh, P(AXIS))
    return {"in_shardings": (NamedSharding(mesh, P()), points), "out_shardings": points}


def _executable(
    model: str, base: DesignPoint, swept: dict[str, np.ndarray], mesh: Mesh | None = None
) -> tuple[Any, float]:
    """The compiled executable for this structure (and mesh), and the seconds spent
    compiling it."""
    treedef = jax.tree_util.tree_structure(base)
    shapes = tuple((k, v.shape, v.dtype.str) for k, v in sorted(swept.items()))
    key = (model, MODELS[model].key, treedef, shapes, mesh)
    if key in _EXECUTABLES:
        return _EXECUTABLES[key], 0.0
    t0 = time.perf_counter()
    _TRACES[model] = _TRACES.get(model, 0) + 1
    if MODELS[model].batched is not None:
        exe = MODELS[model].batched(base, swept)
    else:
        fn, shardings = _batched(model, mesh)
        exe = compile_cached(fn, (base, swept), ("explore", model, MODELS[model].key), **shardings)
    _EXECUTABLES[key] = exe
    return exe, time.perf_counter() - t0


@dataclasses.dataclass
class ChunkResult:
    """One evaluated chunk: its key, a results frame and timings."""

    combo: int
    index: int
    frame: pd.DataFrame
    compile_s: float
    eval_s: float
    raw_points: int


def chunk_size_for(space: Space, requested: int, minimum: int = _MIN_CHUNK) -> int:
    """The chunk size actually used: ``requested`` or, for small spaces, the next power of
    two ≥ the points of one static combination (so a 10k-point space is not padded to 256k),
    at least ``minimum``."""
    per = max(space.points_per_combo, 1)
    size = minimum
    while size < per and size < requested:
        size *= 2
    return max(min(size, requested), 1)


def evaluate_points(
    base: DesignPoint,
    swept: Mapping[str, np.ndarray],
    model: str = "pim_gemv",
    devices: int = 0,
) -> tuple[dict[str, np.ndarray], float, float]:
    """Evaluate ``len(swept[...])`` points around ``base`` in one compiled call.

    The design-point axis is sharded over ``devices`` local devices (0: all; see
    :func:`point_mesh`), padded by repeating the last point to a multiple of their count;
    the results are those of the unsharded call, bit for bit. Models that compile their own
    batches (``spec.batched``) split the points themselves.

    Returns (metrics as numpy arrays, compile seconds, evaluation seconds).
    """
    with x64(MODELS[model].x64):
        return _evaluate_points(base, swept, model, devices)


def _evaluate_points(
    base: DesignPoint, swept: Mapping[str, np.ndarray], model: str, devices: int
) -> tuple[dict[str, np.ndarray], float, float]:
    swept = {k: np.asarray(v) for k, v in swept.items()}
    if not swept:  # a single point: vmap needs one batched argument
        swept = {"workload.K": np.asarray([base.workload.K])}
    if MODELS[model].statics is not None:
        base = MODELS[model].statics(base, swept)
    mesh = None if MODELS[model].batched is not None else point_mesh(devices)
    n = len(next(iter(swept.values())))
    if mesh is not None:
        size = -(-n // mesh.size) * mesh.size
        swept = {k: _pad(v, size) for k, v in swept.items()}
    exe, compile_s = _executable(model, base, swept, mesh)
    t0 = time.perf_counter()
    if mesh is not None:
        swept = jax.device_put(swept, NamedSharding(mesh, P(AXIS)))
    out = jax.block_until_ready(exe(base, swept))
    eval_s = time.perf_counter() - t0
    return flag_invalid({k: np.asarray(v)[:n] for k, v in out.items()}), compile_s, eval_s


def evaluate(
    space: Space,
    model: str = "pim_gemv",
    chunk_size: int = 262144,
    labels: Mapping[str, str] | None = None,
    skip: Callable[[int, int], bool] | None = None,
    progress: bool = False,
    devices: int = 0,
) -> Iterator[ChunkResult]:
    """Evaluate every point of ``space`` chunk by chunk, yielding :class:`ChunkResult`.

    ``skip(combo, index)`` returning True skips a chunk (resume). ``labels`` become constant
    string columns (e.g. the preset name) in every frame. Each chunk's points are sharded
    over ``devices`` local devices (0: all; :func:`evaluate_points`); the chunks themselves,
    and so resuming, do not depend on the device count.
    """
    point_mesh(devices)  # a bad count fails before the first chunk
    size = chunk_size_for(space, chunk_size, 1 if MODELS[model].max_chunk else _MIN_CHUNK)
    per = space.points_per_combo
    n_chunks = -(-per // size) if per else 0
    total = n_chunks * space.num_combos
    bar = _Progress(total, enabled=progress and total > 1)
    try:
        for ci, combo in enumerate(space.combos):
            base = replace_paths(space.base, combo)
            for k in range(n_chunks):
                if skip is not None and skip(ci, k):
                    bar.advance()
                    continue
                start, stop = k * size, min((k + 1) * size, per)
                cols = space.raw_chunk(ci, start, stop)
                mask = space.accept(cols, combo)
                cols = {p: v[mask] for p, v in cols.items()}
                n = int(mask.sum())
                compile_s = eval_s = 0.0
                metrics: dict[str, np.ndarray] = {}
                if n:
                    padded = {p: _pad(v, size) for p, v in cols.items()}
                    if not padded:
                        padded = {"workload.K": np.full(size, base.workload.K)}
                    out, compile_s, eval_s = evaluate_points(base, padded, model, devices)
                    metrics = {m: v[:n] for m, v in out.items()}
                frame = results_frame(base, combo, cols, metrics, n, model, labels)
                yield ChunkResult(ci, k, frame, compile_s, eval_s, stop - start)
                bar.advance()
    finally:
        bar.close()


def _pad(values: np.ndarray, size: int) -> np.ndarray:
    if len(values) == size:
        return values
    return np.concatenate([values, np.repeat(values[-1:], size - len(values))])


def point_ids(
    base: DesignPoint, combo: Mapping[str, Any], cols: Mapping[str, np.ndarray], n: int
) -> np.ndarray:
    """Stable 64-bit design-point ids: a hash of every parameter value of each point.

    The same design point gets the same id whatever the sampler, chunking or run.
    """
    const = {p: v for p, v in _flat_values(replace_paths(base, combo)).items() if p not in cols}
    digest = pd.util.hash_pandas_object(
        pd.Series([repr(sorted(const.items()))]), index=False
    ).to_numpy()[0]
    if not cols:
        return np.full(n, digest, dtype=np.uint64)
    frame = pd.DataFrame({p: cols[p] for p in sorted(cols)})
    h = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    with np.errstate(over="ignore"):
        return h * np.uint64(0x9E3779B97F4A7C15) + np.uint64(digest)


def _flat_values(point: DesignPoint) -> dict[str, Any]:
    from dse._pytree import get_path

    out = {}
    for path in field_info(DesignPoint):
        v = get_path(point, path)
        out[path] = v if isinstance(v, str) else np.asarray(v).item()
    return out


def results_frame(
    base: DesignPoint,
    combo: Mapping[str, Any],
    cols: Mapping[str, np.ndarray],
    metrics: Mapping[str, np.ndarray],
    n: int,
    model: str = "pim_gemv",
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per point: id, labels, static and swept parameters (choices by name), metrics.

    Metrics of infeasible points are masked (NaN, or <NA> for integer metrics); ``status``
    names the reasons and ``feasible`` is False.
    """
    spec = MODELS[model]
    infos = field_info(DesignPoint)
    data: dict[str, Any] = {"point_id": point_ids(base, combo, cols, n)}
    for key, val in (labels or {}).items():
        data[key] = pd.Categorical([val] * n)
    for path, val in combo.items():
        data[path] = pd.Categorical([val] * n)
    for path, val in cols.items():
        ch = infos[path].choices
        if isinstance(ch, type):
            names = np.array([m.name for m in sorted(ch, key=int)], dtype=object)
            data[path] = pd.Categorical(names[val], categories=list(names))
        else:
            data[path] = val
    status = np.asarray(metrics.get("status", np.zeros(n, np.int64)), dtype=np.int64)
    ok = is_feasible(status)
    for name in spec.metrics:
        if name == "status":
            continue
        v = np.asarray(metrics[name]) if metrics else np.zeros(n, np.int64)
        if name in spec.categories:
            cats = spec.categories[name]
            names = np.array(cats, dtype=object)[v.astype(np.int64)]
            data[name] = pd.Categorical(np.where(ok, names, None), categories=list(cats))
        elif v.dtype.kind in "iu":
            data[name] = pd.array(np.where(ok, v, 0), dtype="Int64")
            data[name][~ok] = pd.NA
        else:
            data[name] = np.where(ok, v, np.nan)
    data["feasible"] = ok
    data["status"] = pd.Categorical(decode_status(status))
    data["status_code"] = status
    return pd.DataFrame(data)


class _Progress:
    """A rich progress bar on a terminal; elsewhere (batch jobs, logs) a line per ~10%."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar = None
        self._total, self._done, self._enabled = total, 0, enabled
        self._t0 = time.perf_counter()
        if enabled and sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("evaluating"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("chunks"),
                TimeRemainingColumn(),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("eval", total=total)

    def advance(self) -> None:
        self._done += 1
        if self._bar is not None:
            self._bar.advance(self._task)
        elif self._enabled and self._total >= 10:
            step = max(1, self._total // 10)
            if self._done % step == 0 or self._done == self._total:
                print(
                    f"dse: {self._done}/{self._total} chunks "
                    f"({time.perf_counter() - self._t0:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
