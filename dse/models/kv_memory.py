"""KV-cache memory: how many requests of a batch fit, and how well the memory is used.

A pure function of ONE batch (DESIGN.md §4.5), written for ``jax.jit(jax.vmap(...))`` over
many; :mod:`dse.reference.kv_memory` admits the same requests one by one with explicit
allocations, and the tests hold the two together. Byte counts are exact ``int64`` (x64 is
enabled by importing :mod:`dse`).

**Policies** (:class:`KvAlloc`). A request of context length ``L`` holds ``L · bpt`` live
bytes (``bpt``: :func:`kv_bytes_per_token`) and reserves

* ``static``: ``max_context · bpt`` — PIM commands carry fixed physical addresses, so each
  request reserves its worst case up front; a request longer than ``max_context`` cannot be
  placed at all (``rejected_too_long``).
* ``dynamic`` (dynamic chunked allocation, PIMphony's DPA): ``ceil(L · bpt / chunk_bytes)``
  chunks of ``chunk_bytes`` (a channels × banks × rows slice, e.g. 1 MB), grown lazily; only
  each request's last chunk is partly empty.
* ``paged`` (GPU/NPU side, vLLM-style): ``ceil(L / block_size)`` blocks of
  ``block_size · bpt`` bytes.

**Admission** is first-come first-served in index order over the masked-in requests (the
mask pads a batch to a fixed ``B_max``): request ``i`` is admitted iff the reservations of
the requests admitted before it plus its own fit in ``capacity_bytes``; the first request
that does not fit (or, under ``static``, is longer than ``max_context``) stops admission —
later ones are not tried. Capacity for KV is the PIM capacity itself or, on host/NPU memory,
:func:`kv_capacity`.

**Reported**: ``admitted`` and ``admitted_mask``; ``reserved_bytes``, ``used_bytes`` (live
KV of the admitted requests) and ``waste_bytes`` (their difference); ``units`` (allocation
units held: reservations, chunks or blocks) of ``unit_bytes`` each; ``capacity_util`` =
used / reserved and ``mem_util`` = reserved / capacity (0 when the denominator is 0);
``max_batch``: under ``static`` ``floor(capacity / (max_context · bpt))``, otherwise how
many requests fit when the batch's lengths repeat cyclically (full cycles in closed form,
then the FCFS prefix of the remainder; :data:`UNBOUNDED` when a cycle reserves nothing);
``rejected_too_long`` and ``status`` (``bad_parameter`` for a non-positive ``bpt``,
``max_context``, ``chunk_bytes`` or ``block_size``, a negative length or an unknown policy;
such parameters are clamped to 1, lengths to 0 and the policy to the nearest one, and the
results are not meaningful; a negative capacity counts as 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dse.point import STATUS_CODE
from dse.policy import KvAlloc

__all__ = [
    "KvAlloc",
    "METRICS",
    "UNBOUNDED",
    "kv_admission",
    "kv_bytes_per_token",
    "kv_capacity",
]

UNBOUNDED = int(np.iinfo(np.int64).max)  # max_batch when a cycle of the batch reserves nothing


METRICS = {
    "admitted": ("requests", "requests admitted FCFS before the first that does not fit"),
    "reserved_bytes": ("bytes", "KV bytes reserved by the admitted requests"),
    "used_bytes": ("bytes", "live KV bytes of the admitted requests (sum of L * bpt)"),
    "waste_bytes": ("bytes", "reserved_bytes - used_bytes"),
    "units": ("count", "allocation units held: reservations, chunks or blocks"),
    "unit_bytes": ("bytes", "bytes per allocation unit"),
    "capacity_util": ("1", "used_bytes / reserved_bytes"),
    "mem_util": ("1", "reserved_bytes / capacity_bytes"),
    "max_batch": ("requests", "requests of this length mix that fit the capacity"),
    "rejected_too_long": ("requests", "static: masked requests longer than max_context"),
    "status": ("bits", "0 = valid parameters; see dse.point.STATUS_BITS"),
}


def _cdiv(a, b):
    return -(-a // b)


def kv_bytes_per_token(layers, kv_heads, head_dim, dtype_bytes, tp=1, pp=1):
    """KV bytes one device holds per token: ``2 · ceil(layers/pp) · ceil(kv_heads/tp) ·
    head_dim · dtype_bytes`` (K and V; a KV head shared by more than one tensor-parallel
    rank is replicated). Python ints in, Python int out; traced values work as well."""
    return 2 * _cdiv(layers, pp) * _cdiv(kv_heads, tp) * head_dim * dtype_bytes


def kv_capacity(mem_bytes, utilization, weight_bytes, activation_bytes) -> jax.Array:
    """Bytes left for KV on a host/NPU device: ``floor(mem_bytes · utilization) −
    weight_bytes − activation_bytes``, clipped at 0 (``int64``)."""
    usable = jnp.floor(jnp.asarray(mem_bytes, jnp.float64) * utilization).astype(jnp.int64)
    left = usable - jnp.asarray(weight_bytes, jnp.int64) - jnp.asarray(activation_bytes, jnp.int64)
    return jnp.maximum(left, 0)


def kv_admission(
    lengths,
    mask,
    alloc,
    bytes_per_token,
    capacity_bytes,
    max_context,
    chunk_bytes,
    block_size,
) -> dict[str, jax.Array]:
    """Admit one padded batch FCFS under allocation policy ``alloc`` (see the module docstring).

    ``lengths``: ``int64[B_max]`` context lengths; ``mask``: ``bool[B_max]``, the requests
    that belong to the batch; the rest are scalars (traced or not).
    """
    i64 = jnp.int64
    lengths = jnp.asarray(lengths, i64)
    mask = jnp.asarray(mask, bool)
    alloc, bpt, cap, max_ctx, chunk, block = (
        jnp.asarray(x, i64)
        for x in (alloc, bytes_per_token, capacity_bytes, max_context, chunk_bytes, block_size)
    )
    bad = (
        (bpt < 1)
        | (max_ctx < 1)
        | (chunk < 1)
        | (block < 1)
        | (alloc < 0)
        | (alloc > 2)
        | jnp.any(mask & (lengths < 0))
    )
    bpt, max_ctx, chunk, block = (jnp.maximum(x, 1) for x in (bpt, max_ctx, chunk, block))
    cap = jnp.maximum(cap, 0)
    alloc = jnp.clip(alloc, KvAlloc.static, KvAlloc.paged)
    is_static, is_dynamic = alloc == KvAlloc.static, alloc == KvAlloc.dynamic

    L = jnp.where(mask, jnp.maximum(lengths, 0), 0)
    live = L * bpt
    unit_bytes = jnp.where(is_static, max_ctx * bpt, jnp.where(is_dynamic, chunk, block * bpt))
    units_each = jnp.where(
        mask,
        jnp.where(is_static, 1, jnp.where(is_dynamic, _cdiv(live, chunk), _cdiv(L, block))),
        0,
    )
    reserve = units_each * unit_bytes

    # FCFS: everything from the first masked-in request that fails onwards is turned away
    too_long = mask & is_static & (L > max_ctx)
    cum = jnp.cumsum(reserve)
    fails = mask & ((cum > cap) | too_long)
    admitted_mask = mask & (jnp.cumsum(fails.astype(i64)) == 0)

    admitted = jnp.sum(admitted_mask, dtype=i64)
    reserved = jnp.sum(jnp.where(admitted_mask, reserve, 0))
    used = jnp.sum(jnp.where(admitted_mask, live, 0))
    units = jnp.sum(jnp.where(admitted_mask, units_each, 0))

    # max_batch: static from the worst case; otherwise the lengths repeated cyclically
    n = jnp.sum(mask, dtype=i64)
    cycle = jnp.sum(reserve)
    full = cap // jnp.maximum(cycle, 1)
    prefix = jnp.sum(mask & (cum <= cap - full * cycle), dtype=i64)
    saturates = (cycle == 0) | (full > (UNBOUNDED - prefix) // jnp.maximum(n, 1))
    cyclic = jnp.where(n == 0, 0, jnp.where(saturates, UNBOUNDED, full * n + prefix))
    max_batch = jnp.where(is_static, cap // unit_bytes, cyclic)

    f64 = jnp.float64
    return {
        "admitted": admitted,
        "admitted_mask": admitted_mask,
        "reserved_bytes": reserved,
        "used_bytes": used,
        "waste_bytes": reserved - used,
        "units": units,
        "unit_bytes": unit_bytes,
        "capacity_util": jnp.where(
            reserved > 0, used.astype(f64) / jnp.maximum(reserved, 1).astype(f64), 0.0
        ),
        "mem_util": jnp.where(cap > 0, reserved.astype(f64) / jnp.maximum(cap, 1).astype(f64), 0.0),
        "max_batch": max_batch,
        "rejected_too_long": jnp.sum(too_long, dtype=i64),
        "status": jnp.where(bad, STATUS_CODE["bad_parameter"], 0).astype(i64),
    }
