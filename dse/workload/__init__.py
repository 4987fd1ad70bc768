"""What runs: kernel and LLM shapes. Nothing here knows about models."""

from dse.workload.gemv import DTYPE_BYTES, Gemv

__all__ = ["DTYPE_BYTES", "Gemv"]
