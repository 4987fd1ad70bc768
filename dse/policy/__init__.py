"""How work is mapped and scheduled: integer-coded choices, compared side by side under vmap."""

from __future__ import annotations

from enum import IntEnum

from dse._pytree import leaf, pytree_dataclass

__all__ = ["IoPolicy", "Policy"]


class IoPolicy(IntEnum):
    """How external transfers relate to MAC streaming in the first-order channel model.

    ``serial``: WR-INP and RD-OUT block the MAC pipeline (their times add).
    ``overlap``: transfers run beside MAC streaming; only the first input fill and the last
    readout are exposed (the bound is the slower of the two).
    """

    serial = 0
    overlap = 1


@pytree_dataclass
class Policy:
    io: int = leaf("I/O vs MAC overlap (IoPolicy)", choices=IoPolicy)
