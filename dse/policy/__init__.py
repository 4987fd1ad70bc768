"""How work is mapped and scheduled: integer-coded choices, compared side by side under vmap."""

from __future__ import annotations

from enum import IntEnum

from dse._pytree import leaf, pytree_dataclass

__all__ = ["IoPolicy", "Policy", "RefreshMode", "Sched"]


class IoPolicy(IntEnum):
    """How external transfers relate to MAC streaming in the first-order channel model.

    ``serial``: WR-INP and RD-OUT block the MAC pipeline (their times add).
    ``overlap``: transfers run beside MAC streaming; only the first input fill and the last
    readout are exposed (the bound is the slower of the two).
    """

    serial = 0
    overlap = 1


class Sched(IntEnum):
    """Command scheduling in the command-pipeline model (DESIGN.md §4.3).

    ``static``: one in-order queue, WR-INP → MAC → RD-OUT stacks, fixed worst-case gaps.
    ``pingpong``: buffers split in halves; transfers on one half while MACs use the other;
    roles swap when both sides are done. ``dynamic``: separate in-order I/O and compute
    queues ordered only by buffer-entry dependencies; row commands issue early.
    """

    static = 0
    pingpong = 1
    dynamic = 2


class RefreshMode(IntEnum):
    """``stall``: the channel freezes for tRFC every tREFI. ``skip``: a tile that would cross a
    refresh waits for it to end, so no tile is split by a refresh."""

    stall = 0
    skip = 1


@pytree_dataclass
class Policy:
    io: int = leaf("I/O vs MAC overlap (IoPolicy)", choices=IoPolicy)
    sched: int = leaf("command scheduling (Sched)", choices=Sched, default="dynamic")
    refresh: int = leaf("refresh handling (RefreshMode)", choices=RefreshMode, default="stall")
    row_reuse: int = leaf(
        "1: GQA row-reuse mapping (all g queries per open row); 0: one query per pass",
        low=0,
        high=1,
        default=0,
    )
