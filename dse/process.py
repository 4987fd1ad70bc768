"""What a command sets up for its whole process: the host's CPU cores as JAX devices and
64-bit computation (:func:`command`). ``import dse`` sets up neither.

XLA's CPU backend is one device whose operations split over a thread pool; for the many
small operations of a serving simulation's loop that split costs more than it gains. With
one device per core, the design points are sharded over the cores
(:func:`dse.explore.point_mesh`; :func:`dse.serving.sim.compile_batch` for serving) and each
core runs its own share side by side (about 1.5× the serving throughput on two cores).

The device count is fixed when JAX starts its CPU backend, so it is a choice the process
makes once, early: every ``python -m dse...`` command calls :func:`use_host_cores` before
its first computation (:func:`command`); ``import dse`` does not, and a program that
embeds the package calls it itself (or sets ``XLA_FLAGS``) if it wants the cores as devices.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from dse.precision import x64

log = logging.getLogger(__name__)

P = ParamSpec("P")
AXIS = "points"  # the mesh axis design points are sharded along
R = TypeVar("R")

FLAG = "--xla_force_host_platform_device_count"


def host_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def use_host_cores(n: int | None = None, warn: bool = True) -> None:
    """Ask XLA for ``n`` (default: every usable core) CPU devices, unless ``XLA_FLAGS``
        already sets the count or ``DSE_HOST_DEVICES`` (a positive integer) says otherwise. XLA
        reads the flag when JAX first starts its CPU backend, so this takes effect only if called
        before any JAX computation of the process; afterwards it changes nothing and says so
    (unless ``warn`` is False: a command's ``main`` called again inside one process)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if FLAG in flags:
        return
    asked = os.environ.get("DSE_HOST_DEVICES", "")
    n = int(asked) if asked.strip().isdigit() else (n or host_cores())
    if n <= 1:
        return
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        if len(xla_bridge.local_devices()) >= n or not warn:
            return
        log.warning(
            "use_host_cores(): JAX's backend has already started with %d device(s); call it "
            "before the first JAX computation to get %d",
            len(xla_bridge.local_devices()),
            n,
        )
        return
    os.environ["XLA_FLAGS"] = f"{flags} {FLAG}={n}".strip()


def command(main: Callable[P, R]) -> Callable[P, R]:
    """A command line's ``main``: the host's cores as devices (before its first JAX
    computation) and its computations in 64-bit types (:mod:`dse.precision`)."""

    @functools.wraps(main)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        use_host_cores(warn=False)
        with x64():
            return main(*args, **kwargs)

    return wrapper


@functools.cache
def points_mesh(n: int):
    """The 1-D mesh ``("points",)`` over the first ``n`` local devices (one object per
    count, built once)."""
    import jax
    from jax.sharding import AxisType

    local = jax.local_devices()[:n]
    return jax.make_mesh((n,), (AXIS,), axis_types=(AxisType.Auto,), devices=local)
