"""KV-cache admission one request at a time, with explicit allocations.

Plain Python, one batch at a time, following the rules stated in
:mod:`dse.models.kv_memory`. The KV capacity is cut into equal allocation units — one
worst-case reservation (``static``), a chunk (``dynamic``) or a block (``paged``) — held in
a :class:`UnitPool`. Requests arrive in index order; each takes the run of unit ids its
context needs from the pool, and the first one the pool cannot serve ends admission. The
vectorized model sums bytes instead of counting units; the tests check that both agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from dse.models.kv_memory import UNBOUNDED, KvAlloc
from dse.point import STATUS_CODE

__all__ = ["Allocation", "UnitPool", "admit", "kv_admission", "max_batch", "units_needed"]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclasses.dataclass(frozen=True)
class Allocation:
    """The KV space one admitted request holds."""

    request: int  # index in the batch
    tokens: int  # context length L
    bytes_per_token: int
    units: range  # ids of the allocation units it holds
    unit_bytes: int

    @property
    def live_bytes(self) -> int:
        return self.tokens * self.bytes_per_token

    @property
    def reserved_bytes(self) -> int:
        return len(self.units) * self.unit_bytes

    @property
    def waste_bytes(self) -> int:
        return self.reserved_bytes - self.live_bytes


class UnitPool:
    """``capacity_bytes`` cut into ``floor(capacity_bytes / unit_bytes)`` units, handed out in
    order (admission never frees, so each request's units are one run of ids)."""

    def __init__(self, capacity_bytes: int, unit_bytes: int) -> None:
        self.unit_bytes = unit_bytes
        self.total = capacity_bytes // unit_bytes
        self.next_free = 0

    @property
    def free(self) -> int:
        return self.total - self.next_free

    def take(self, n: int) -> range | None:
        """The ids of ``n`` more units, or None when fewer than ``n`` are free."""
        if n > self.free:
            return None
        run = range(self.next_free, self.next_free + n)
        self.next_free += n
        return run


def unit_bytes(alloc: int, bpt: int, max_context: int, chunk_bytes: int, block_size: int) -> int:
    """Size of one allocation unit under ``alloc``."""
    if alloc == KvAlloc.static:
        return max_context * bpt  # one fixed-address reservation for the longest context
    if alloc == KvAlloc.dynamic:
        return chunk_bytes
    return block_size * bpt


def units_needed(alloc: int, tokens: int, bpt: int, chunk_bytes: int, block_size: int) -> int:
    """Units a request of ``tokens`` context holds under ``alloc``."""
    if alloc == KvAlloc.static:
        return 1
    if alloc == KvAlloc.dynamic:
        return _cdiv(tokens * bpt, chunk_bytes)  # a new chunk each time the last one fills
    return _cdiv(tokens, block_size)


def admit(
    lengths: Sequence[int],
    mask: Sequence[bool],
    alloc: int,
    bpt: int,
    capacity_bytes: int,
    max_context: int,
    chunk_bytes: int,
    block_size: int,
) -> list[Allocation]:
    """FCFS admission: the allocations of the requests admitted, in order."""
    size = unit_bytes(alloc, bpt, max_context, chunk_bytes, block_size)
    pool = UnitPool(capacity_bytes, size)
    admitted: list[Allocation] = []
    for i, (tokens, in_batch) in enumerate(zip(lengths, mask, strict=True)):
        if not in_batch:
            continue
        if alloc == KvAlloc.static and tokens > max_context:
            break  # no reservation can hold it; FCFS does not skip ahead
        units = pool.take(units_needed(alloc, tokens, bpt, chunk_bytes, block_size))
        if units is None:
            break  # does not fit; FCFS does not skip ahead
        admitted.append(Allocation(i, tokens, bpt, units, size))
    return admitted


def max_batch(
    lengths: Sequence[int],
    mask: Sequence[bool],
    alloc: int,
    bpt: int,
    capacity_bytes: int,
    max_context: int,
    chunk_bytes: int,
    block_size: int,
) -> int:
    """How many requests fit: ``static`` from the worst case; otherwise the batch's lengths
    repeated cyclically, admitted FCFS until the pool is full."""
    size = unit_bytes(alloc, bpt, max_context, chunk_bytes, block_size)
    pool = UnitPool(capacity_bytes, size)
    if alloc == KvAlloc.static:
        return pool.total
    needs = [
        units_needed(alloc, tokens, bpt, chunk_bytes, block_size)
        for tokens, in_batch in zip(lengths, mask, strict=True)
        if in_batch
    ]
    if not needs:
        return 0
    if sum(needs) == 0:
        return UNBOUNDED
    cycles, left = divmod(pool.total, sum(needs))
    count = cycles * len(needs)
    for need in needs:  # the next cycle, until a request does not fit
        if need > left:
            break
        left -= need
        count += 1
    return min(count, UNBOUNDED)


def kv_admission(
    lengths: Sequence[int],
    mask: Sequence[bool],
    alloc: int,
    bytes_per_token: int,
    capacity_bytes: int,
    max_context: int,
    chunk_bytes: int,
    block_size: int,
) -> dict:
    """The same dict as :func:`dse.models.kv_memory.kv_admission`, of plain ints and floats."""
    lengths, mask = [int(x) for x in lengths], [bool(m) for m in mask]
    bad = (
        min(bytes_per_token, max_context, chunk_bytes, block_size) < 1
        or alloc not in tuple(KvAlloc)
        or any(m and x < 0 for x, m in zip(lengths, mask, strict=True))
    )
    bpt, max_context, chunk_bytes, block_size = (
        max(int(x), 1) for x in (bytes_per_token, max_context, chunk_bytes, block_size)
    )
    capacity = max(int(capacity_bytes), 0)
    alloc = min(max(int(alloc), KvAlloc.static), KvAlloc.paged)
    lengths = [max(x, 0) for x in lengths]
    args = (lengths, mask, alloc, bpt, capacity, max_context, chunk_bytes, block_size)

    held = admit(*args)
    reserved = sum(a.reserved_bytes for a in held)
    used = sum(a.live_bytes for a in held)
    chosen = {a.request for a in held}
    too_long = sum(m and x > max_context for x, m in zip(lengths, mask, strict=True))
    return {
        "admitted": len(held),
        "admitted_mask": [i in chosen for i in range(len(lengths))],
        "reserved_bytes": reserved,
        "used_bytes": used,
        "waste_bytes": sum(a.waste_bytes for a in held),
        "units": sum(len(a.units) for a in held),
        "unit_bytes": unit_bytes(alloc, bpt, max_context, chunk_bytes, block_size),
        "capacity_util": used / reserved if reserved > 0 else 0.0,
        "mem_util": reserved / capacity if capacity > 0 else 0.0,
        "max_batch": max_batch(*args),
        "rejected_too_long": too_long if alloc == KvAlloc.static else 0,
        "status": STATUS_CODE["bad_parameter"] if bad else 0,
    }
