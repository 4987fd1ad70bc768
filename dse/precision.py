"""Numeric precision, chosen per computation rather than for the whole process.

The models count cycles and bytes in int64 and time in float64: a 1M-token context at a
0.5 ns clock overflows int32, and float32 loses the last cycles of a long run. JAX's
``jax_enable_x64`` is process-wide state; ``import dse`` leaves it as it found it. Each model
states its precision (:attr:`dse.models.ModelSpec.x64`) and the evaluator, the serving and
search entry points and the command lines run their computations inside :func:`x64`, a
thread-local scope (``jax.enable_x64``) that ends with the call. Code that calls a model
function directly, outside those entry points, wraps the call the same way::

    from dse.precision import x64
    with x64():
        out = jax.jit(system.step)(point)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import jax

__all__ = ["x64", "with_x64"]

P = ParamSpec("P")
R = TypeVar("R")


def x64(enabled: bool = True):
    """A scope in which JAX computes in 64-bit (``enabled``) or 32-bit types; nests, and
    restores the caller's setting on exit."""
    return jax.enable_x64(enabled)


def with_x64(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` run inside :func:`x64` (for functions that return, not generators)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    return wrapper
