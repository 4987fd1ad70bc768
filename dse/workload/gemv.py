"""A matrix-vector product ``y = W x`` with ``W`` of shape ``M x K``."""

from __future__ import annotations

from dse._pytree import leaf, pytree_dataclass, static_field

__all__ = ["DTYPE_BYTES", "Gemv"]

#: bytes per element of each supported dtype
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}


@pytree_dataclass
class Gemv:
    K: int = leaf("input features: reduction length (elements)", low=1)
    M: int = leaf("output features: rows of W (elements)", low=1)
    dtype: str = static_field(
        "fp16",
        "element type of W and x; static: it fixes elements per column access",
        choices=tuple(DTYPE_BYTES),
    )
