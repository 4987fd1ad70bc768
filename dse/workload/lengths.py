"""Seeded context lengths (KV tokens at a decode step) of the requests of a decode batch.

A vectorized point models a padded batch of up to ``batch_max`` requests (a static int);
:func:`sample_lengths` draws their context lengths from a named distribution
(:class:`LengthDist`) and a seed, in pure JAX so the distribution code, the seed, the
fixed length and the scale may all be traced (``jit``/``vmap``). The caller masks the
batch (``arange(batch_max) < n``). Request ``i``'s length depends only on
``(dist, seed, i, fixed_len, scale)``, so a smaller ``batch_max`` gives a prefix of the
same lengths.

Distributions:

* ``fixed``: every request has ``fixed_len`` tokens.
* ``qmsum``, ``musique`` (LongBench) and ``multifieldqa``, ``loogle_sd`` (LV-Eval): a Beta
  scaled to the set's ``[min, max]`` whose mean and std match the published statistics
  (:data:`STATS`, method of moments, :func:`beta_params`), rounded to whole tokens; drawn
  by its inverse CDF (a table of :data:`QUANTILES` cells from scipy, linear in between).
* ``sharegpt``, ``neupims_sharegpt``, ``mixed``: real traces (below). A request is drawn
  uniformly with replacement. For the two LLMServingSim traces the batch is a snapshot of
  running requests: a request with ``input_toks`` prompt and ``output_toks`` generated
  tokens is at a uniform decode step, context ``input_toks + 1 + floor(u * output_toks)``
  with ``u ~ U[0, 1)``. The NeuPIMs trace gives ``seq_len`` as is.

``scale`` stretches any of them: lengths become ``max(round(L * scale), 1)``. Every branch
is computed and the one ``dist`` names is selected, so ``dist`` may vary across a ``vmap``.

Trace files in ``dse/workload/data/`` (CSV, first line is the header, no comments; rows in
the source's order, other columns dropped):

* ``sharegpt_llama31_8b.csv`` (``input_toks,output_toks``): LLMServingSim
  ``workloads/sharegpt-llama-3.1-8b-300-sps10.noids.jsonl``, 300 ShareGPT requests for
  Llama-3.1-8B;
* ``mixed_first50.csv`` (``input_toks,output_toks``): LLMServingSim
  ``workloads/workload_me2_01_mixed.first50.jsonl``, the first 50 requests of a mixed
  short/long-context workload;
* ``neupims_sharegpt.csv`` (``seq_len``): NeuPIMs
  ``share-gpt2-bs512-ms7B-tp4-rr-0.csv``, 512 ShareGPT requests (GPT3-7B, TP 4,
  round-robin channel assignment).

x64 must be on for int64 lengths; importing :mod:`dse` enables it.
"""

from __future__ import annotations

import csv
import math
from enum import IntEnum
from functools import cache, partial
from importlib import resources
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

__all__ = [
    "STATS",
    "TRACE_FILES",
    "LengthDist",
    "LengthStats",
    "beta_params",
    "describe",
    "load_trace",
    "sample_lengths",
    "sample_lengths_np",
]


class LengthDist(IntEnum):
    """Integer codes of the context-length distributions (a traced leaf can select one)."""

    fixed = 0
    qmsum = 1
    musique = 2
    multifieldqa = 3
    loogle_sd = 4
    sharegpt = 5
    neupims_sharegpt = 6
    mixed = 7


class LengthStats(NamedTuple):
    """Published context-length statistics of a dataset, in tokens."""

    mean: float
    std: float
    max: int
    min: int


#: Published statistics of the long-context sets (tokens): (mean, std, max, min).
STATS: dict[LengthDist, LengthStats] = {
    LengthDist.qmsum: LengthStats(13_966, 6_182, 30_456, 2_651),
    LengthDist.musique: LengthStats(16_362, 1_651, 17_917, 6_820),
    LengthDist.multifieldqa: LengthStats(60_780, 31_025, 119_480, 20_333),
    LengthDist.loogle_sd: LengthStats(50_693, 26_506, 109_221, 13_347),
}

#: Trace file (in ``dse/workload/data``) of each trace-based distribution.
TRACE_FILES: dict[LengthDist, str] = {
    LengthDist.sharegpt: "sharegpt_llama31_8b.csv",
    LengthDist.neupims_sharegpt: "neupims_sharegpt.csv",
    LengthDist.mixed: "mixed_first50.csv",
}

_SOURCES: dict[LengthDist, str] = {
    LengthDist.fixed: "fixed_len for every request",
    LengthDist.qmsum: "LongBench QMSum statistics; scaled Beta",
    LengthDist.musique: "LongBench Musique statistics; scaled Beta",
    LengthDist.multifieldqa: "LV-Eval multifieldqa statistics; scaled Beta",
    LengthDist.loogle_sd: "LV-Eval Loogle-SD statistics; scaled Beta",
    LengthDist.sharegpt: "LLMServingSim sharegpt-llama-3.1-8b-300-sps10 (300 requests)",
    LengthDist.neupims_sharegpt: "NeuPIMs share-gpt2-bs512-ms7B-tp4-rr-0 (512 requests)",
    LengthDist.mixed: "LLMServingSim workload_me2_01_mixed, first 50 requests",
}


def beta_params(mean: float, std: float, lo: float, hi: float) -> tuple[float, float]:
    """Shape parameters of the Beta on ``[lo, hi]`` with the given mean and std.

    Method of moments: ``m = (mean - lo) / (hi - lo)``, ``v = std² / (hi - lo)²``,
    ``k = m (1 - m) / v - 1``, ``alpha = m k``, ``beta = (1 - m) k``.

    Raises:
        ValueError: if ``hi <= lo``, ``mean`` is not strictly inside ``(lo, hi)``,
            ``std <= 0``, or ``std`` is too large for any Beta (``v >= m (1 - m)``).
    """
    if not all(math.isfinite(x) for x in (mean, std, lo, hi)):
        raise ValueError(f"beta_params: non-finite input {(mean, std, lo, hi)}")
    if hi <= lo:
        raise ValueError(f"beta_params: need lo < hi, got lo={lo}, hi={hi}")
    if not lo < mean < hi:
        raise ValueError(f"beta_params: mean {mean} must lie strictly inside ({lo}, {hi})")
    if std <= 0:
        raise ValueError(f"beta_params: std must be > 0, got {std}")
    width = hi - lo
    m = (mean - lo) / width
    v = (std / width) ** 2
    if v >= m * (1.0 - m):
        raise ValueError(
            f"beta_params: std {std} too large for mean {mean} on [{lo}, {hi}]: a Beta needs "
            f"std < {width * math.sqrt(m * (1.0 - m)):.6g}"
        )
    k = m * (1.0 - m) / v - 1.0
    return m * k, (1.0 - m) * k


def _coerce_dist(dist: LengthDist | int | str) -> LengthDist:
    if isinstance(dist, str):
        try:
            return LengthDist[dist]
        except KeyError:
            names = ", ".join(d.name for d in LengthDist)
            raise ValueError(f"unknown length distribution {dist!r}; one of: {names}") from None
    try:
        return LengthDist(int(dist))
    except ValueError:
        raise ValueError(
            f"length distribution code {dist!r} not in 0..{len(LengthDist) - 1}"
        ) from None


@cache
def load_trace(dist: LengthDist | int | str) -> dict[str, np.ndarray]:
    """The packaged trace of a trace-based distribution, as int64 columns by name."""
    d = _coerce_dist(dist)
    if d not in TRACE_FILES:
        raise ValueError(f"{d.name} is not a trace-based distribution")
    text = resources.files("dse.workload").joinpath("data", TRACE_FILES[d]).read_text()
    rows = list(csv.reader(text.splitlines()))
    cols = {
        name: np.asarray([int(r[i]) for r in rows[1:]], dtype=np.int64)
        for i, name in enumerate(rows[0])
    }
    for a in cols.values():
        a.setflags(write=False)
    return cols


def _trace_base_span(d: LengthDist) -> tuple[np.ndarray, np.ndarray]:
    """Per request: smallest context and number of equally likely contexts above it."""
    t = load_trace(d)
    if "seq_len" in t:
        return t["seq_len"], np.zeros_like(t["seq_len"])
    return t["input_toks"] + 1, t["output_toks"]


QUANTILES = 4096  # cells of the inverse-CDF table each Beta model is sampled from


class _Tables(NamedTuple):
    kind: np.ndarray  # 0 fixed, 1 Beta, 2 trace
    ppf: np.ndarray  # (dists, QUANTILES + 1) Beta quantiles at u = k / QUANTILES
    lo: np.ndarray
    hi: np.ndarray
    offset: np.ndarray  # first row of the dist's trace in base/span
    count: np.ndarray  # rows of the dist's trace (1 for non-trace dists)
    base: np.ndarray
    span: np.ndarray


@cache
def _tables() -> _Tables:
    n = len(LengthDist)
    kind = np.zeros(n, np.int64)
    ppf = np.zeros((n, QUANTILES + 1))
    u = np.linspace(0.0, 1.0, QUANTILES + 1)
    lo, hi = np.zeros(n), np.ones(n)
    offset, count = np.zeros(n, np.int64), np.ones(n, np.int64)
    bases, spans = [np.ones(1, np.int64)], [np.zeros(1, np.int64)]
    for d, s in STATS.items():
        kind[d] = 1
        ppf[d] = scipy.stats.beta.ppf(u, *beta_params(s.mean, s.std, s.min, s.max))
        lo[d], hi[d] = s.min, s.max
    start = 1
    for d in TRACE_FILES:
        b, sp = _trace_base_span(d)
        kind[d], offset[d], count[d] = 2, start, len(b)
        bases.append(b)
        spans.append(sp)
        start += len(b)
    return _Tables(kind, ppf, lo, hi, offset, count, np.concatenate(bases), np.concatenate(spans))


@partial(jax.jit, static_argnames="batch_max")
def _sample(dist, seed, batch_max: int, fixed_len, scale):
    t = jax.tree.map(jnp.asarray, _tables())
    d = jnp.clip(dist, 0, len(LengthDist) - 1)
    key = jax.random.key(seed)

    def one(i):
        u = jax.random.uniform(jax.random.fold_in(key, i), (3,), dtype=jnp.float64)
        # Beta by its inverse CDF, linear between the table's quantiles
        pos = u[0] * QUANTILES
        k = jnp.minimum(jnp.floor(pos).astype(jnp.int64), QUANTILES - 1)
        x = t.ppf[d, k] + (pos - k) * (t.ppf[d, k + 1] - t.ppf[d, k])
        beta_len = jnp.round(t.lo[d] + (t.hi[d] - t.lo[d]) * x).astype(jnp.int64)
        j = t.offset[d] + jnp.minimum(jnp.floor(u[1] * t.count[d]), t.count[d] - 1).astype(
            jnp.int64
        )
        trace_len = t.base[j] + jnp.floor(u[2] * t.span[j]).astype(jnp.int64)
        return jnp.select([t.kind[d] == 1, t.kind[d] == 2], [beta_len, trace_len], fixed_len)

    lengths = jax.vmap(one)(jnp.arange(batch_max, dtype=jnp.int64))
    scaled = jnp.round(lengths * scale).astype(jnp.int64)
    return jnp.maximum(scaled, 1)


def sample_lengths(
    dist: int | jax.Array,
    seed: int | jax.Array,
    batch_max: int,
    fixed_len: int | jax.Array,
    scale: float | jax.Array = 1.0,
) -> jax.Array:
    """Context lengths of a padded batch of ``batch_max`` decode requests.

    Args:
        dist: a :class:`LengthDist` code (may be traced; out-of-range traced codes are
            clamped to the valid range, a concrete one raises).
        seed: integer seed (may be traced); the same seed gives the same lengths.
        batch_max: static batch size; request ``i`` depends on ``i``, not on ``batch_max``.
        fixed_len: length of every request under ``LengthDist.fixed`` (may be traced).
        scale: multiplies every length (result rounded; may be traced).

    Returns:
        int64 array of shape ``(batch_max,)``, every entry ``>= 1``.
    """
    if not isinstance(dist, jax.core.Tracer):
        if np.ndim(dist) == 0:
            _coerce_dist(int(dist))
        elif np.any((np.asarray(dist) < 0) | (np.asarray(dist) >= len(LengthDist))):
            raise ValueError(f"length distribution codes must be in 0..{len(LengthDist) - 1}")
    # fixed dtypes: one compilation per batch_max whatever Python/NumPy types come in
    return _sample(
        jnp.asarray(dist, jnp.int64),
        jnp.asarray(seed, jnp.int64),
        int(batch_max),
        jnp.asarray(fixed_len, jnp.int64),
        jnp.asarray(scale, jnp.float64),
    )


def sample_lengths_np(
    dist: LengthDist | int | str,
    seed: int,
    n: int,
    fixed_len: int = 4096,
    scale: float = 1.0,
) -> np.ndarray:
    """:func:`sample_lengths` as a NumPy array (same numbers); ``dist`` may be a name."""
    d = _coerce_dist(dist)
    return np.asarray(sample_lengths(int(d), seed, n, fixed_len, scale))


def _model_stats(d: LengthDist, fixed_len: int) -> tuple[float, float, float, float]:
    """Exact (mean, std, min, max) of a distribution's model (Beta before rounding)."""
    if d == LengthDist.fixed:
        return float(fixed_len), 0.0, float(fixed_len), float(fixed_len)
    if d in STATS:
        s = STATS[d]
        a, b = beta_params(s.mean, s.std, s.min, s.max)
        w = s.max - s.min
        var = w * w * a * b / ((a + b) ** 2 * (a + b + 1))
        return s.min + w * a / (a + b), math.sqrt(var), float(s.min), float(s.max)
    base, span = (x.astype(np.float64) for x in _trace_base_span(d))
    # request j: uniform over base_j + {0, ..., span_j - 1} (just base_j when span_j = 0)
    m_j = base + np.maximum(span - 1, 0) / 2
    v_j = np.maximum(span**2 - 1, 0) / 12
    mean = m_j.mean()
    var = (v_j + m_j**2).mean() - mean**2
    top = base + np.maximum(span - 1, 0)
    return float(mean), math.sqrt(max(var, 0.0)), float(base.min()), float(top.max())


def describe(fixed_len: int = 4096):
    """One row per distribution: its model's exact mean/std/min/max (tokens, ``scale=1``)
    and, for the long-context sets, the published targets.

    Returns:
        pandas.DataFrame with columns ``code, name, source, mean, std, min, max,
        target_mean, target_std, target_min, target_max``.
    """
    import pandas as pd

    rows = []
    for d in LengthDist:
        mean, std, lo, hi = _model_stats(d, fixed_len)
        s = STATS.get(d)
        rows.append(
            {
                "code": int(d),
                "name": d.name,
                "source": _SOURCES[d],
                "mean": mean,
                "std": std,
                "min": lo,
                "max": hi,
                "target_mean": s.mean if s else np.nan,
                "target_std": s.std if s else np.nan,
                "target_min": s.min if s else np.nan,
                "target_max": s.max if s else np.nan,
            }
        )
    return pd.DataFrame(rows)
