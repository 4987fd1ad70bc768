"""The host's CPU cores as JAX devices.

XLA's CPU backend is one device whose operations split over a thread pool; for the many
small operations of a serving simulation's loop that split costs more than it gains. With
one device per core, the design points are sharded over the cores
(:func:`dse.explore.point_mesh`; :func:`dse.serving.sim.compile_batch` for serving) and each
core runs its own share side by side (about 1.5× the serving throughput on two cores).
"""

from __future__ import annotations

import os

FLAG = "--xla_force_host_platform_device_count"


def host_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def use_host_cores(n: int | None = None) -> None:
    """Ask XLA for ``n`` (default: every usable core) CPU devices, unless ``XLA_FLAGS``
    already sets the count or ``DSE_HOST_DEVICES`` (a positive integer) says otherwise. XLA
    reads the flag when JAX first starts its CPU backend, so this takes effect only if called
    before any JAX computation (``import dse`` does)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if FLAG in flags:
        return
    asked = os.environ.get("DSE_HOST_DEVICES", "")
    n = int(asked) if asked.strip().isdigit() else (n or host_cores())
    if n > 1:
        os.environ["XLA_FLAGS"] = f"{flags} {FLAG}={n}".strip()
