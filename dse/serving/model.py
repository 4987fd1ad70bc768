"""The serving simulation as an evaluator model (``python -m dse model=serving``).

The trace is part of the model, not of the design point: :func:`configure` builds it from
the config's ``serving`` node (an LLMServingSim dataset, a NeuPIMs CSV or a synthetic
workload) and installs :data:`dse.models.MODELS` ``["serving"]``, whose batched function
compiles :func:`dse.serving.sim.compile_batch` for a whole chunk of points (one call) and
returns :data:`dse.serving.sim.METRICS` per point.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from dse.errors import ConfigError
from dse.models import MODELS, ModelSpec
from dse.point import DesignPoint
from dse.serving import sim, traces

__all__ = ["SPEC", "configure", "load_trace"]

SPEC = ModelSpec(
    fn=None,
    metrics=sim.METRICS,
    categories={},
    objective="gen_tok_per_s",
    minimize=False,
    tradeoff=("gen_tok_per_s", "ttft_p99_ms"),
    tradeoff_min=(False, True),  # more tokens/s, a shorter tail TTFT
    headline=("gen_tok_per_s", "ttft_p50_ms", "tpot_p50_ms", "J_per_token", "slo_attainment"),
    max_chunk=1024,
)


def load_trace(node: Mapping[str, Any], source: str = "serving") -> traces.Trace:
    """The trace a ``serving`` config node names: ``dataset`` (LLMServingSim JSONL, or a
    NeuPIMs ``.csv`` with ``neupims_output_toks``) or, without one, ``synthetic``."""
    path = node.get("dataset")
    if path:
        if str(path).endswith(".csv"):
            return traces.read_neupims_csv(path, int(node.get("neupims_output_toks", 128)))
        return traces.read_jsonl(path)
    syn = dict(node.get("synthetic") or {})
    try:
        return traces.synthetic(
            int(syn.get("n", 1000)),
            float(syn.get("rate", 10.0)),
            int(syn.get("seed", 0)),
            syn.get("input_dist", "sharegpt"),
            syn.get("output_dist"),
            int(syn.get("input_len", 512)),
            int(syn.get("output_len", 128)),
        )
    except KeyError as err:
        raise ConfigError(source, "serving.synthetic", "a known length distribution", err) from None
    except ConfigError as err:  # synthetic(...) names its own argument: name the config key
        raise ConfigError(source, f"serving.synthetic.{err.key}", err.expected, err.got) from None


def _channel_slots(c: Mapping[str, Any], base: DesignPoint) -> int:
    """PIM channels the arrays hold: the next power of two ≥ the most any point of the
    config's space has (``hw.pim.channels`` of the base, or its axis: a list's largest
    value, a range's ``high``), at least :data:`dse.serving.step.C_SERVE`."""
    from dse.serving.step import C_SERVE

    most = int(base.hw.pim.channels)
    axis = ((c.get("space") or {}).get("axes") or {}).get("hw", {})
    axis = ((axis or {}).get("pim") or {}).get("channels")
    if isinstance(axis, Mapping):
        if axis.get("high") is not None:
            most = max(most, int(axis["high"]))
    elif axis is not None and not isinstance(axis, str | int | float):  # a list of values
        most = max(most, *(int(v) for v in axis))
    elif axis is not None:
        most = max(most, int(axis))
    slots = C_SERVE
    while slots < min(most, 1 << 16):
        slots *= 2
    return slots


def configure(c: Mapping[str, Any], base: DesignPoint) -> sim.Options:
    """Install ``MODELS["serving"]`` for the config's trace and options."""
    node = dict(c.get("serving") or {})
    tr = load_trace(node)
    if len(tr) == 0:
        raise ConfigError(tr.source or "serving", "serving.dataset", "at least one request", 0)
    for key, low, want in (
        ("max_skip", 1, "an integer >= 1 (steps one event interval may cover)"),
        ("slots", 0, "an integer >= 0 (0: policy.max_num_seqs)"),
    ):
        v = node.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
            raise ConfigError("serving", f"serving.{key}", want, v)
    for key in ("slo_ttft_ms", "slo_tpot_ms"):
        v = node.get(key)
        if v is not None and not (isinstance(v, (int, float)) and 0 < v < float("inf")):
            raise ConfigError("serving", f"serving.{key}", "a time in ms > 0", v)
    slots = max(int(node.get("slots") or 0), int(base.policy.max_num_seqs), 1)
    opt = sim.Options(
        slots=slots,
        channels=_channel_slots(c, base),
        max_len=int((tr.input_toks + tr.output_toks).max()) + 1,
        max_skip=int(node.get("max_skip", 256)),
        slo_ttft_ns=float(node.get("slo_ttft_ms", 1000.0)) * 1e6,
        slo_tpot_ns=float(node.get("slo_tpot_ms", 100.0)) * 1e6,
    )
    ta = sim.TraceArrays.from_trace(tr)

    def batched(b: DesignPoint, swept: dict):
        run = sim.compile_batch(b, swept, ta, opt, metrics=True)
        return lambda b, s: run(b, s, ta)

    digest = hashlib.sha1(
        np.concatenate([np.asarray(x) for x in (ta.arrival, ta.inp, ta.out)]).tobytes()
        + repr(opt).encode()
    ).hexdigest()[:12]
    MODELS["serving"] = dataclasses.replace(SPEC, batched=batched, key=digest)
    return opt
