"""Traced programs kept across processes (``jax.export``).

JAX's persistent compilation cache spares a later process XLA's compile, not the tracing
that comes before it: turning a model's Python into a program takes seconds for the system
step and about ten for the serving loop, every process. :func:`compile_cached` keeps the
traced program too. The first process exports it (StableHLO, serialized) into
``<compilation cache>/traces/``; a later one with the same key loads it and compiles it
(which the compilation cache then answers). The key holds everything the trace depends
on: a digest of the package's own source, the JAX version, the precision, the caller's key
(model, static options), the argument structure and every argument's shape and type, the
devices. It is used only where the compilation cache is on (:func:`dse.explore.
enable_compilation_cache`, as every command does) and ``DSE_TRACE_CACHE`` is not ``0``; a
program that cannot be exported, or a file that cannot be read or written, costs a trace,
never a result.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax

__all__ = ["compile_cached", "trace_dir"]

KEEP = 256  # traced programs kept; the least recently used beyond that are removed

#: programs this process traced and saved, and loaded instead of tracing
STATS = {"saved": 0, "loaded": 0}
#: seconds this process spent tracing (or loading traced programs) and compiling them
SECONDS = {"trace": 0.0, "compile": 0.0}

log = logging.getLogger(__name__)


@functools.cache
def _source_digest() -> str:
    """A digest of every Python file of the package: a changed model is a new key."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def trace_dir() -> Path | None:
    """Where traced programs are kept: ``traces/`` in JAX's compilation cache directory, or
    None where that cache is off or ``DSE_TRACE_CACHE=0``."""
    if os.environ.get("DSE_TRACE_CACHE", "1").strip() == "0":
        return None
    cache = jax.config.jax_compilation_cache_dir
    return Path(cache) / "traces" if cache else None


def _key(key: Any, leaves: Sequence[Any], treedef: Any, shardings: Any) -> str:
    import jaxlib

    parts = (
        _source_digest(),
        jax.__version__,
        jaxlib.__version__,
        bool(jax.config.jax_enable_x64),
        repr(key),
        str(treedef),
        [str(jax.typeof(v)) for v in leaves],
        repr(shardings),
        [d.device_kind for d in jax.local_devices()],
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _flat_shardings(args: tuple, in_shardings: tuple | None) -> tuple | None:
    """One sharding per leaf, from one per top-level argument."""
    if in_shardings is None:
        return None
    return tuple(
        s for a, s in zip(args, in_shardings, strict=True) for _ in jax.tree_util.tree_leaves(a)
    )


def compile_cached(
    fn: Callable,
    args: tuple,
    key: Any,
    in_shardings: tuple | None = None,
    out_shardings: Any = None,
) -> Callable:
    """``jax.jit(fn, in_shardings=..., out_shardings=...)`` compiled for ``args``, its trace
    loaded from / saved to :func:`trace_dir` under ``key`` (what else ``fn`` depends on:
    anything it closes over). Returns ``run(*args)`` → ``fn``'s outputs, with attributes
    ``compiled`` (the executable), ``trace_s`` (tracing, or loading the traced program),
    ``compile_s`` (lowering and XLA's compile) and ``loaded``.
    ``in_shardings``: one sharding per top-level argument (or None: one device)."""
    t0 = time.perf_counter()
    leaves, treedef = jax.tree_util.tree_flatten(args)
    flat_in = _flat_shardings(args, in_shardings)

    def flat(*lv):
        return fn(*jax.tree_util.tree_unflatten(treedef, lv))

    def jit(f):
        if flat_in is None:
            return jax.jit(f)
        return jax.jit(f, in_shardings=flat_in, out_shardings=out_shardings)

    folder = trace_dir()
    exported = None
    path = None
    if folder is not None:
        path = folder / f"{_key(key, leaves, treedef, (flat_in, out_shardings))}.jaxexport"
        exported = _load(path)
    loaded = exported is not None
    STATS["loaded"] += loaded
    if exported is None and path is not None:
        try:
            exported = jax.export.export(jit(flat))(*leaves)
            STATS["saved"] += _save(path, exported.serialize())
        except Exception as err:  # noqa: BLE001 - an unexportable program is traced as before
            log.debug("trace cache: %s not exported (%s)", key, err)
            exported = None
    if exported is not None:
        t1 = time.perf_counter()
        exe = jit(exported.call).lower(*leaves).compile()
    else:
        lowered = jit(flat).lower(*leaves)
        t1 = time.perf_counter()
        exe = lowered.compile()
    t2 = time.perf_counter()
    SECONDS["trace"] += t1 - t0
    SECONDS["compile"] += t2 - t1

    def run(*a):
        lv = jax.tree_util.tree_leaves(a)
        if flat_in is not None:
            lv = jax.device_put(tuple(lv), flat_in)
        return exe(*lv)

    run.compiled, run.trace_s, run.compile_s, run.loaded = exe, t1 - t0, t2 - t1, loaded
    return run


def _load(path: Path):
    try:
        blob = path.read_bytes()
        os.utime(path)  # recently used: kept by _prune
    except OSError:
        return None
    try:
        return jax.export.deserialize(bytearray(blob))
    except Exception as err:  # noqa: BLE001 - a damaged file is traced again and replaced
        log.debug("trace cache: %s unreadable (%s)", path, err)
        return None


def _save(path: Path, blob: bytes | bytearray) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".jaxexport")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        _prune(path.parent)
        return True
    except OSError as err:
        log.debug("trace cache: %s not written (%s)", path, err)
        return False


def _prune(folder: Path, keep: int = KEEP) -> None:
    """Remove all but the ``keep`` newest programs (a changed source makes new keys; the
    old files would otherwise stay for good)."""
    files = sorted(folder.glob("*.jaxexport"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[keep:]:
        old.unlink(missing_ok=True)
