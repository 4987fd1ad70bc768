"""How design points are evaluated: pure functions of ONE point (no jit/vmap inside).

Each model maps a :class:`~dse.point.DesignPoint` to a dict of scalar metrics that includes
an integer ``status``. :data:`MODELS` names them for configs and the evaluator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from dse.models import pim_attention, pim_gemv, pim_kernel, system

__all__ = ["MODELS", "ModelSpec", "pim_attention", "pim_gemv", "pim_kernel", "system"]

BLOCK = 4096


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model and how its results are summarised.

    ``metrics``: name → (unit, description); ``objective``: the metric the best-points table
    sorts by and whether lower is better; ``tradeoff``: default (x, y) of the plot.
    ``batched``: a model that compiles whole chunks itself, ``batched(base, swept)`` → a
    compiled ``(base, swept)`` → metrics of every point (serving: the points of a chunk step
    through one simulation loop together, split over the devices); ``fn`` is then unused.
    ``block``: points per vectorized block inside one call (0: all at once). Models with a
    data-dependent loop run each block until its own slowest point is done, on arrays that
    stay in cache. ``cost``: a point's loop trip count (cheap, closed form); the evaluator
    sorts each call's points by it so that every block holds points of similar length.
    ``x64``: the model computes in 64-bit types (:mod:`dse.precision`); every model does so
    far, since their cycle and byte counts exceed int32 at long contexts and large batches.
    """

    fn: Callable
    metrics: dict[str, tuple[str, str]]
    categories: dict[str, tuple[str, ...]]
    objective: str
    minimize: bool
    tradeoff: tuple[str, str]  # two metrics: the trade-off plot's x and y
    headline: tuple[str, ...]
    block: int = 0
    cost: Callable | None = None
    batched: Callable | None = None  # (base, swept) → compiled (base, swept) → metrics
    max_chunk: int = 0  # most points per call (0: the config's chunk_size)
    key: str = ""  # what else the compiled function depends on (a serving run's trace)
    statics: Callable | None = None  # (base, swept) → base with array sizes that hold swept
    tradeoff_min: tuple[bool, bool] = (True, False)  # lower x, higher y is better
    x64: bool = True


MODELS: dict[str, ModelSpec] = {
    "pim_gemv": ModelSpec(
        fn=pim_gemv.gemv,
        metrics=pim_gemv.METRICS,
        categories={"bottleneck": pim_gemv.BOTTLENECKS},
        objective="time_ns",
        minimize=True,
        tradeoff=("peak_internal_GBps", "internal_GBps"),
        headline=("time_ns", "internal_GBps", "mac_util", "bottleneck"),
    ),
    "pim_kernel": ModelSpec(
        fn=pim_kernel.kernel,
        metrics=pim_kernel.METRICS,
        categories={"bottleneck": pim_kernel.BOTTLENECKS},
        objective="time_ns",
        minimize=True,
        tradeoff=("time_ns", "mac_util"),
        headline=("time_ns", "mac_util", "frac_io", "bottleneck"),
        block=BLOCK,
        cost=pim_kernel.loop_steps,
    ),
    "pim_attention": ModelSpec(
        fn=pim_attention.attention,
        metrics=pim_attention.METRICS,
        categories={},
        objective="step_ns",
        minimize=True,
        tradeoff=("step_ns", "chan_util_mean"),
        headline=("step_ns", "chan_util_mean", "mac_util", "admitted"),
    ),
    "system": ModelSpec(
        fn=system.step,
        metrics=system.METRICS,
        categories={},
        objective="tokens_per_s",
        minimize=False,
        tradeoff=("J_per_token", "tokens_per_s"),
        headline=("step_ns", "tokens_per_s", "admitted", "host_busy", "pim_busy", "J_per_token"),
        block=1024,
        cost=system.channel_key,
        statics=system.fit_slots,
    ),
    # "serving" is installed by dse.serving.model.configure (the trace is part of the model)
    "steady": ModelSpec(
        fn=system.steady,
        metrics=system.METRICS,
        categories={},
        objective="tokens_per_s",
        minimize=False,
        tradeoff=("J_per_token", "tokens_per_s"),
        headline=("tokens_per_s", "batch", "max_batch", "J_per_token"),
        block=1024,
        cost=system.channel_key,
        statics=system.fit_slots,
    ),
}
